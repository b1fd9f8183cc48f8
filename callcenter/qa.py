"""Quality assurance: team leads sample recorded calls and score them on a scorecard (pure).

Each day a reviewer (a team lead: their team's agents; a manager: every agent) is offered
a sample of each agent's recorded calls not yet reviewed (:func:`choose_sample`: the same
calls on every request that day, in an order nobody can steer). They rate each item of the
scorecard (``qa.scorecard`` in ``config/callcenter.yaml``) from 0 (not done) to
:data:`RATING_MAX` (excellent), or ``null`` where it does not apply, with a comment.

The score is 100 x sum(weight x rating / 4) / sum(weights of the rated items). An item
marked ``critical`` (compliance) rated 0 fails the call: its score is 0 whatever the rest.

Pure: no Twisted, no SQL; :mod:`callcenter.http_api` and the repository do the I/O.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from callcenter.settings import AgentSettings, QaItem, did_you_mean
from callcenter.storage.records import InvalidFieldError

__all__ = [
    "COMMENT_MAX",
    "RATING_MAX",
    "QaCandidate",
    "QaReview",
    "QaReviewRecord",
    "QaSummaryLine",
    "ReviewRefused",
    "check_reviewer",
    "choose_sample",
    "parse_review",
    "qa_summary",
    "reviewable_agents",
    "score",
]

RATING_MAX: Final = 4
"""The top rating of a scorecard item (0: not done)."""

COMMENT_MAX: Final = 4000


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


@dataclass(frozen=True)
class QaCandidate:
    """A recorded call an agent took, not yet reviewed."""

    ticket: str
    agent_id: str
    started_at: datetime
    talk_seconds: int | None
    recording: str
    """The recording's path, to play."""
    pauses: tuple[tuple[float, float], ...] = ()
    """Where the agent paused that recording (card numbers): (start, end) seconds of silence."""


@dataclass(frozen=True)
class QaReviewRecord:
    """A stored review of the call ``ticket`` that ``agent_id`` took."""

    ticket: str
    agent_id: str
    call_started_at: datetime
    reviewer: str
    ratings: Mapping[str, int | None]
    score: float
    failed: bool
    comment: str
    reviewed_at: datetime


@dataclass(frozen=True)
class QaSummaryLine:
    """An agent's reviews of a period (``agent`` ``total``: everyone's)."""

    agent: str
    reviews: int
    score: float | None
    """Mean score, failed calls (0) included."""
    failed: int
    items: Mapping[str, float | None]
    """Mean rating (0..4) of each scorecard item where it applied."""


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
        if key not in ("reviewer", "ratings", "comment"):
            raise InvalidFieldError(str(key), "unknown field (fields: reviewer, ratings, comment)")
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
    total, failed = score(checked, scorecard)
    return QaReview(reviewer=reviewer, ratings=checked, score=total, failed=failed, comment=comment.strip())


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


def check_reviewer(agents: Iterable[AgentSettings], reviewer: str, call_agent: str | None) -> None:
    """Raise :class:`ReviewRefused` unless ``reviewer`` may score a call ``call_agent`` took."""
    allowed = reviewable_agents(agents, reviewer)
    if call_agent is None:
        raise ReviewRefused("no agent took this call: there is nothing to score")
    if call_agent == reviewer:
        raise ReviewRefused("nobody scores their own calls")
    if call_agent not in allowed:
        raise ReviewRefused(f"agent {call_agent} is not in {reviewer}'s team: a lead scores their own team's calls")


def choose_sample(candidates: Iterable[QaCandidate], agents: Iterable[str], per_agent: int,
                  day: date) -> list[QaCandidate]:
    """Up to ``per_agent`` calls of each agent in ``agents``, the same ones all ``day``.

    The order within an agent's calls is a hash of the day and the ticket: neither the
    agent nor the reviewer can steer which calls come up, and asking again gives the same.
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


def qa_summary(reviews: Iterable[QaReviewRecord], scorecard: Sequence[QaItem]) -> list[QaSummaryLine]:
    """One line per reviewed agent (by id) and a total: reviews, mean score, failed calls and
    each item's mean rating."""
    groups: dict[str, list[QaReviewRecord]] = defaultdict(list)
    everyone: list[QaReviewRecord] = []
    for review in reviews:
        groups[review.agent_id].append(review)
        everyone.append(review)

    def line(agent: str, rows: list[QaReviewRecord]) -> QaSummaryLine:
        items: dict[str, float | None] = {}
        for item in scorecard:
            rated = [r.ratings.get(item.id) for r in rows if r.ratings.get(item.id) is not None]
            items[item.id] = round(sum(v or 0 for v in rated) / len(rated), 2) if rated else None
        mean = round(sum(r.score for r in rows) / len(rows), 2) if rows else None
        return QaSummaryLine(agent=agent, reviews=len(rows), score=mean, failed=sum(r.failed for r in rows),
                             items=items)

    return [line(agent, groups[agent]) for agent in sorted(groups)] + [line("total", everyone)]
