"""Quality assurance: team leads sample recorded calls and score them on a scorecard (pure).

Each day a reviewer (a team lead: their team's agents; a manager: every agent) is offered
a sample of each agent's recorded calls (:func:`choose_sample`: drawn from all of them,
reviewed or not, in an order nobody can steer). What is scored is an agent's part of a call
(:func:`call_parts`): a call handed on from one agent to another has a recording of each
agent's part, and each part is sampled, played and scored as that agent's. Reviewers rate
each item of the scorecard (``qa.scorecard`` in ``config/callcenter.yaml``) from 0 (not done)
to :data:`RATING_MAX` (excellent), or ``null`` where it does not apply, with a comment.

The score is 100 x sum(weight x rating / 4) / sum(weights of the rated items). An item
marked ``critical`` (compliance) rated 0 fails the call: its score is 0 whatever the rest.

Pure: no Twisted, no SQL; :mod:`callcenter.http_api` and the repository do the I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Final

from callcenter.settings import AgentSettings, QaItem, did_you_mean
from callcenter.storage.records import InvalidFieldError, Recording

__all__ = [
    "COMMENT_MAX",
    "RATING_MAX",
    "QaCandidate",
    "QaPart",
    "QaReview",
    "QaReviewRecord",
    "QaSummaryLine",
    "ReviewRefused",
    "call_parts",
    "check_reviewer",
    "choose_sample",
    "parse_review",
    "qa_summary",
    "review_part",
    "reviewable_agents",
    "score",
]

RATING_MAX: Final = 4
"""The top rating of a scorecard item (0: not done)."""

COMMENT_MAX: Final = 4000

_MESSAGE_SUFFIX: Final = "-message"
"""A message a caller left is ``<recording>-message.<format>`` (``callcenter.engine.MESSAGE_SUFFIX``,
spelled again here: the engine imports this module through the repository). A message is
filed as a recording of the call, but it is no agent's conversation: it is never scored."""


class ReviewRefused(Exception):
    """The reviewer may not score this call (HTTP 403)."""


@dataclass(frozen=True)
class QaReview:
    """A validated review: who, the ratings (None: not applicable), the score and the comment."""

    reviewer: str
    ratings: Mapping[str, int | None]
    score: float
    failed: bool
    """A critical item was rated 0."""
    comment: str
    recording_id: int | None = None
    """The recording of the part scored (``"recording"`` in the body; None: see :func:`review_part`)."""


@dataclass(frozen=True)
class QaCandidate:
    """An agent's recorded part of a call they took: what QA samples from."""

    ticket: str
    agent_id: str
    """The agent whose part ``recording`` is (for a call handed on, not always the call's agent)."""
    started_at: datetime
    talk_seconds: int | None
    recording: str
    """The recording's path, to play."""
    pauses: tuple[tuple[float, float], ...] = ()
    """Where the agent paused that recording (card numbers): (start, end) seconds of silence."""
    recording_id: int | None = None
    """The recording's id: ``?recording=`` of the player, ``"recording"`` of the review."""
    reviewed_by: tuple[str, ...] = ()
    """The reviewers who have scored this part (sorted); empty: nobody yet."""


@dataclass(frozen=True)
class QaPart:
    """The part of a call a review scores: ``agent_id``'s, heard in ``recording`` (None: the
    call has no recording, and the call's agent is scored)."""

    agent_id: str
    recording: Recording | None = None


@dataclass(frozen=True)
class QaReviewRecord:
    """A stored review of ``agent_id``'s part of the call ``ticket``."""

    ticket: str
    agent_id: str
    call_started_at: datetime
    reviewer: str
    ratings: Mapping[str, int | None]
    score: float
    failed: bool
    comment: str
    reviewed_at: datetime
    recording_id: int | None = None
    """The recording of the part scored (None: a call with no recording, or a review stored
    before revision 0016)."""


@dataclass(frozen=True)
class QaSummaryLine:
    """An agent's reviews of a period (``agent`` ``total``: everyone's).

    A scored call is one agent's part of one call: reviewed by a lead and by a manager, it
    counts once, with the mean of its reviews."""

    agent: str
    reviews: int
    calls: int
    """Scored calls: the calls (agents' parts of calls) with at least one review."""
    score: float | None
    """The mean over the scored calls of each call's mean score, failed calls (0) included."""
    failed: int
    """Scored calls that at least one of their reviewers failed (a critical item rated 0)."""
    items: Mapping[str, float | None]
    """Mean rating (0..4) of each scorecard item, over the calls where it applied (each call
    weighing the mean of its reviews' ratings of the item)."""


def score(ratings: Mapping[str, int | None], scorecard: Sequence[QaItem]) -> tuple[float, bool]:
    """(score 0..100, failed) of complete, valid ``ratings`` (see :func:`parse_review`)."""
    rated = [(item, ratings[item.id]) for item in scorecard if ratings.get(item.id) is not None]
    if any(item.critical and rating == 0 for item, rating in rated):
        return 0.0, True
    weights = sum(item.weight for item, _ in rated)
    earned = sum(item.weight * (rating or 0) for item, rating in rated)
    return round(100.0 * earned / (weights * RATING_MAX), 2), False


def parse_review(body: Mapping[str, Any], scorecard: Sequence[QaItem]) -> QaReview:
    """Validate ``{"reviewer", "ratings": {item: 0..4 | null}, "comment"}``; every item rated.

    :class:`InvalidFieldError` names the field (``ratings.<item>`` for one rating).
    """
    for key in body:
        if key not in ("reviewer", "ratings", "comment", "recording"):
            raise InvalidFieldError(str(key), "unknown field (fields: reviewer, ratings, comment, recording)")
    reviewer = body.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer:
        raise InvalidFieldError("reviewer", f"expected the reviewer's agent id, got {reviewer!r}")
    ratings = body.get("ratings")
    if not isinstance(ratings, Mapping):
        raise InvalidFieldError("ratings", f"expected an object of item -> 0..{RATING_MAX} or null, got {ratings!r}")
    ids = [item.id for item in scorecard]
    for key in ratings:
        if key not in ids:
            hint = did_you_mean(str(key), ids)
            raise InvalidFieldError(f"ratings.{key}", f"not on the scorecard ({hint}items: {', '.join(ids)})")
    checked: dict[str, int | None] = {}
    for item in scorecard:
        if item.id not in ratings:
            raise InvalidFieldError(f"ratings.{item.id}", f"missing: rate {item.label!r} 0..{RATING_MAX}, "
                                                           "or null if it does not apply")
        value = ratings[item.id]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= RATING_MAX):
            raise InvalidFieldError(f"ratings.{item.id}", f"expected 0..{RATING_MAX} or null, got {value!r}")
        checked[item.id] = value
    if all(value is None for value in checked.values()):
        raise InvalidFieldError("ratings", "every item is null: rate at least one")
    comment = body.get("comment", "")
    if not isinstance(comment, str):
        raise InvalidFieldError("comment", f"expected a string, got {comment!r}")
    if len(comment) > COMMENT_MAX:
        raise InvalidFieldError("comment", f"at most {COMMENT_MAX} characters, got {len(comment)}")
    recording = body.get("recording")
    if recording is not None and (isinstance(recording, bool) or not isinstance(recording, int) or recording < 1):
        raise InvalidFieldError("recording", f"expected the id of the call's recording scored, got {recording!r}")
    total, failed = score(checked, scorecard)
    return QaReview(reviewer=reviewer, ratings=checked, score=total, failed=failed, comment=comment.strip(),
                    recording_id=recording)


def reviewable_agents(agents: Iterable[AgentSettings], reviewer: str) -> list[str]:
    """The agents whose calls ``reviewer`` scores: a lead their team (but themselves), a
    manager everyone but themselves; :class:`ReviewRefused` for anyone else."""
    agents = list(agents)
    who = next((a for a in agents if a.id == reviewer), None)
    if who is None:
        raise ReviewRefused(f"unknown agent id {reviewer!r}")
    if who.role == "manager" or (who.role == "lead" and who.team):
        return [a.id for a in agents if who.oversees(a.team) and a.id != reviewer]
    raise ReviewRefused(f"agent {reviewer} is not a team lead or a manager: only they score calls")


def check_reviewer(agents: Iterable[AgentSettings], reviewer: str, call_agent: str | None) -> str:
    """``call_agent``; :class:`ReviewRefused` unless ``reviewer`` may score a call (a part of
    one) ``call_agent`` took."""
    allowed = reviewable_agents(agents, reviewer)
    if call_agent is None:
        raise ReviewRefused("no agent took this call: there is nothing to score")
    if call_agent == reviewer:
        raise ReviewRefused("nobody scores their own calls")
    if call_agent not in allowed:
        raise ReviewRefused(f"agent {call_agent} is not in {reviewer}'s team: a lead scores their own team's calls")
    return call_agent


def _is_message(recording: Recording) -> bool:
    return PurePath(recording.path).stem.endswith(_MESSAGE_SUFFIX)


def call_parts(recordings: Iterable[Recording], call_agent: str | None) -> list[Recording]:
    """The parts of a call to score, oldest first: each agent's first recording of it, with
    ``agent_id`` set (a recording that names no agent is the call's agent's, ``call_agent``).

    A call an agent handed on to another has a recording of each agent's part (the first on
    the first agent's channel, the next on the caller's from the hand-off): a part for each
    agent who had it. A message the caller left is no part; a recording of no agent neither."""
    parts: dict[str, Recording] = {}
    for recording in sorted(recordings, key=lambda r: (r.started_at, r.id)):
        agent = recording.agent_id or call_agent
        if agent is not None and agent not in parts and not _is_message(recording):
            parts[agent] = dataclasses.replace(recording, agent_id=agent)
    return list(parts.values())


def _may_score(agents: Sequence[AgentSettings], reviewer: str, agent: str | None) -> bool:
    try:
        check_reviewer(agents, reviewer, agent)
    except ReviewRefused:
        return False
    return True


def review_part(agents: Iterable[AgentSettings], reviewer: str, call_agent: str | None,
                recordings: Iterable[Recording], recording_id: int | None = None) -> QaPart:
    """The part of a call (``call_agent``'s, with ``recordings``) that ``reviewer`` scores or
    plays: the one recorded in ``recording_id``, else the last part they may score (a call
    nobody handed on has one part); the call's agent's for a call with no recording.

    :class:`InvalidFieldError` (``recording``) for a recording not of this call (or a message
    the caller left), :class:`ReviewRefused` unless the reviewer may score that part's agent."""
    agents = list(agents)
    recordings = list(recordings)
    if recording_id is not None:
        found = next((r for r in recordings if r.id == recording_id and not _is_message(r)), None)
        if found is None:
            known = ", ".join(str(p.id) for p in call_parts(recordings, call_agent)) or "none"
            raise InvalidFieldError("recording", f"recording {recording_id} is not one of this call's "
                                                 f"(its parts: {known})")
        agent = check_reviewer(agents, reviewer, found.agent_id or call_agent)
        return QaPart(agent, dataclasses.replace(found, agent_id=agent))
    parts = call_parts(recordings, call_agent)
    if not parts:
        return QaPart(check_reviewer(agents, reviewer, call_agent))
    allowed = [part for part in parts if _may_score(agents, reviewer, part.agent_id)]
    chosen = allowed[-1] if allowed else parts[-1]
    return QaPart(check_reviewer(agents, reviewer, chosen.agent_id), chosen)  # refused: names the last part's agent


def choose_sample(candidates: Iterable[QaCandidate], agents: Iterable[str], per_agent: int,
                  day: date) -> list[QaCandidate]:
    """Up to ``per_agent`` recorded parts of calls of each agent in ``agents``, the same ones
    all ``day`` for the same ``candidates``.

    ``candidates`` are all the day's recorded parts, reviewed or not: scoring a part drawn
    leaves it drawn (its ``reviewed_by`` says so) and brings no other in. The order within an
    agent's parts is a hash of the day and the ticket: neither the agent nor the reviewer can
    steer which calls come up, and asking again gives the same. While the day is under way
    its later calls join the draw, and one of them can take the place of a part drawn before.
    """
    wanted = set(agents)
    by_agent: dict[str, list[QaCandidate]] = defaultdict(list)
    for call in candidates:
        if call.agent_id in wanted:
            by_agent[call.agent_id].append(call)

    def draw(call: QaCandidate) -> str:
        return hashlib.sha256(f"{day.isoformat()}|{call.ticket}".encode()).hexdigest()

    chosen: list[QaCandidate] = []
    for agent in sorted(by_agent):
        chosen.extend(sorted(by_agent[agent], key=draw)[:per_agent])
    return chosen


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def qa_summary(reviews: Iterable[QaReviewRecord], scorecard: Sequence[QaItem]) -> list[QaSummaryLine]:
    """One line per reviewed agent (by id) and a total: reviews, scored calls, mean score,
    failed calls and each item's mean rating.

    A call is an agent's part of a call (ticket and agent): the reviews of one call by a lead
    and by a manager make one call, weighing the mean of its reviews, failed if either failed it."""
    groups: dict[str, list[QaReviewRecord]] = defaultdict(list)
    everyone: list[QaReviewRecord] = []
    for review in reviews:
        groups[review.agent_id].append(review)
        everyone.append(review)

    def line(agent: str, rows: list[QaReviewRecord]) -> QaSummaryLine:
        by_call: dict[tuple[str, str], list[QaReviewRecord]] = defaultdict(list)
        for row in rows:
            by_call[(row.ticket, row.agent_id)].append(row)
        calls = list(by_call.values())
        items: dict[str, float | None] = {}
        for item in scorecard:
            means = [_mean([float(v) for r in call if (v := r.ratings.get(item.id)) is not None]) for call in calls]
            mean_item = _mean([m for m in means if m is not None])
            items[item.id] = None if mean_item is None else round(mean_item, 2)
        mean = _mean([sum(r.score for r in call) / len(call) for call in calls])
        return QaSummaryLine(agent=agent, reviews=len(rows), calls=len(calls),
                             score=None if mean is None else round(mean, 2),
                             failed=sum(any(r.failed for r in call) for call in calls), items=items)

    return [line(agent, groups[agent]) for agent in sorted(groups)] + [line("total", everyone)]
