"""A campaign's dialing rules, pure: who may be called when, and what follows an attempt.

:class:`Campaign` is what ``config/dialer.yaml`` says of one campaign (validated by
:mod:`callcenter.dialer.config`, stored by :mod:`callcenter.storage.dialer`). The rules
here decide, without any I/O:

- :func:`callable_at` / :func:`next_callable_at`: the calling window in the *called
  party's* local time (the TSR's 8:00-21:00 by default), with the lead's own time zone
  when it has one and the campaign's otherwise;
- :func:`decide_after_attempt`: after an attempt ends in an outcome, whether the lead is
  done (a final state) or scheduled for a retry, and when.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ATTEMPT_OUTCOMES",
    "DIAL_MODES",
    "MACHINE_ACTIONS",
    "CallingHours",
    "Campaign",
    "LeadDecision",
    "LeadState",
    "RetryPolicy",
    "callable_at",
    "decide_after_attempt",
    "next_callable_at",
    "zone",
]

#: How an attempt ended (the pacer's outcomes; "abandoned" is a live answer left without
#: an agent, "failed" covers congestion, unreachable and the far end hanging up during AMD).
ATTEMPT_OUTCOMES: Final = ("human", "machine", "busy", "noanswer", "failed", "abandoned")
DIAL_MODES: Final = ("preview", "progressive", "predictive")
MACHINE_ACTIONS: Final = ("hangup", "message")


class LeadState(enum.Enum):
    """Where a lead is in its campaign."""

    NEW = "new"  # never dialed
    RETRY = "retry"  # dialed; another attempt is due at next_attempt_at
    DIALING = "dialing"  # an attempt is in flight (at most one per lead)
    DONE = "done"  # final: reached, exhausted, or not to be called (DNC)


@dataclass(frozen=True)
class CallingHours:
    """Daily window in the called party's local time, ``start`` inclusive, ``end`` exclusive."""

    start: time = time(8, 0)
    end: time = time(21, 0)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"calling_hours: start {self.start:%H:%M} must be before end {self.end:%H:%M}")


@dataclass(frozen=True)
class RetryPolicy:
    """What follows each outcome: retry after N minutes, or (absent / None) the lead is done.

    ``max_attempts`` caps all attempts of a lead; an outcome with a retry delay ends the
    lead as ``exhausted`` once the cap is reached. ``human`` (a conversation with an agent)
    always ends the lead.
    """

    max_attempts: int = 3
    retry_minutes: Mapping[str, int | None] = field(default_factory=lambda: {
        "busy": 30, "noanswer": 120, "machine": 240, "failed": 60,
        # Ofcom: no repeat call within 72 hours of an abandoned call.
        "abandoned": 72 * 60,
    })

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be at least 1, not {self.max_attempts}")
        for outcome, minutes in self.retry_minutes.items():
            if outcome not in ATTEMPT_OUTCOMES:
                raise ValueError(f"retry.{outcome}: not an outcome (one of {', '.join(ATTEMPT_OUTCOMES)})")
            if outcome == "human" and minutes is not None:
                raise ValueError("retry.human: a conversation ends the lead; it cannot be retried")
            if minutes is not None and minutes < 1:
                raise ValueError(f"retry.{outcome}: minutes must be at least 1, not {minutes}")


@dataclass(frozen=True)
class Campaign:
    """One outbound campaign's settings (identity, dialing, compliance, retries)."""

    name: str
    dial_mode: str = "predictive"
    caller_id: str = ""
    queue: str = "outbound"
    timezone: str = "Asia/Shanghai"
    calling_hours: CallingHours = field(default_factory=CallingHours)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    machine_action: str = "hangup"
    machine_message: str = ""
    safe_harbor_message: str = "custom/dialer/safe_harbor-zh"
    active: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name: {self.name!r} must be letters, digits, '-' or '_'")
        if self.dial_mode not in DIAL_MODES:
            raise ValueError(f"dial_mode: {self.dial_mode!r} is not one of {', '.join(DIAL_MODES)}")
        if self.machine_action not in MACHINE_ACTIONS:
            raise ValueError(f"machine_action: {self.machine_action!r} is not one of {', '.join(MACHINE_ACTIONS)}")
        if self.machine_action == "message" and not self.machine_message:
            raise ValueError("machine_message: needed when machine_action is 'message'")
        if not self.safe_harbor_message:
            raise ValueError("safe_harbor_message: abandoned calls must hear a message")
        zone(self.timezone, "timezone")


def zone(name: str, what: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name``; ValueError naming ``what`` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{what}: unknown time zone {name!r}") from exc


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now: naive datetime {now.isoformat()}; give an aware one")
    return now


def callable_at(hours: CallingHours, tz: ZoneInfo, now: datetime) -> bool:
    """True if ``now`` falls inside the calling window in time zone ``tz``."""
    local = _aware(now).astimezone(tz).time()
    return hours.start <= local < hours.end


def next_callable_at(hours: CallingHours, tz: ZoneInfo, now: datetime) -> datetime:
    """``now`` if callable, else the next window start (UTC), in the lead's local time."""
    now = _aware(now)
    if callable_at(hours, tz, now):
        return now.astimezone(UTC)
    local = now.astimezone(tz)
    day = local.date() if local.time() < hours.start else local.date() + timedelta(days=1)
    # Wall-clock start of that day in tz; fold=0 picks the first of an ambiguous time.
    start = datetime.combine(day, hours.start, tzinfo=tz)
    return start.astimezone(UTC)


@dataclass(frozen=True)
class LeadDecision:
    """A lead's state after an attempt: retry at ``next_attempt_at``, or done with ``final``."""

    state: LeadState
    next_attempt_at: datetime | None
    final: str | None  # "human", "exhausted", "busy", ... (the reason the lead is done)


def decide_after_attempt(policy: RetryPolicy, attempts: int, outcome: str, now: datetime) -> LeadDecision:
    """What follows attempt number ``attempts`` (1-based) ending in ``outcome`` at ``now``.

    A retry is scheduled ``retry_minutes[outcome]`` later, unless the outcome has no retry
    (the lead is done with that outcome) or ``attempts`` reached ``max_attempts`` (done,
    ``exhausted``; ``abandoned`` for an abandoned last call: the person was reached). The
    calling window is applied when the lead is next picked, not here.
    """
    if outcome not in ATTEMPT_OUTCOMES:
        raise ValueError(f"outcome: {outcome!r} is not one of {', '.join(ATTEMPT_OUTCOMES)}")
    if attempts < 1:
        raise ValueError(f"attempts: must be at least 1, not {attempts}")
    now = _aware(now)
    minutes = policy.retry_minutes.get(outcome)
    if outcome == "human" or minutes is None:
        return LeadDecision(LeadState.DONE, None, outcome)
    if attempts >= policy.max_attempts:
        # an abandoned call reached the person: its lead ends as such (never recycled, so
        # never called again within 72 hours), not as one the dialer failed to reach
        return LeadDecision(LeadState.DONE, None, "abandoned" if outcome == "abandoned" else "exhausted")
    return LeadDecision(LeadState.RETRY, now.astimezone(UTC) + timedelta(minutes=minutes), None)
