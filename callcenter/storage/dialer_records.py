"""Plain values exchanged with the dialer's storage (pure: no SQLAlchemy, no I/O).

Inputs validate and normalise themselves when built, raising
:class:`~callcenter.storage.records.InvalidFieldError` (a ValueError whose message starts
with the field name): :class:`LeadRow` (one lead to import) and :class:`AttemptResult`
(how a call ended). Everything :mod:`callcenter.storage.dialer` returns is a frozen
dataclass defined here, never an ORM row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any, Final

from callcenter.dialer.campaign import (
    ATTEMPT_OUTCOMES,
    CallingHours,
    Campaign,
    RetryPolicy,
    zone,
)
from callcenter.storage.records import (
    InvalidFieldError,
    aware_datetime,
    canonical_phone,
    optional_text,
    positive_int,
)

__all__ = [
    "DUPLICATE_REASON",
    "MAX_NAME_LENGTH",
    "AttemptRecord",
    "AttemptResult",
    "AuditEntry",
    "CampaignProgress",
    "CampaignRecord",
    "DestroyResult",
    "DncEntry",
    "ImportResult",
    "LeadBacklog",
    "LeadHolding",
    "LeadListRecord",
    "LeadRecord",
    "LeadRow",
    "LeadToDial",
    "LedgerDay",
    "OpenAttempt",
    "RowProblem",
]

MAX_NAME_LENGTH: Final = 200
"""Longest lead name kept (the ``leads.name`` column)."""

DUPLICATE_REASON: Final = "duplicate of line"
"""How the reason of a row repeating an earlier row's phone starts (``duplicate of line 5 ...``)."""

_SHORT_TEXT: Final = 64


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _optional_seconds(field_name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidFieldError(field_name, f"must be a number of seconds >= 0, got {value!r}")
    return float(value)


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row of a lead file was not imported.

    ``line`` is the physical line in the file where the row starts (the header is line
    1); ``field`` names the column at fault (``row`` for the row as a whole); ``raw`` holds
    the row's fields as read, for the rejects file.
    """

    line: int
    field: str
    reason: str
    raw: tuple[str, ...] = ()

    def format(self, source: str) -> str:
        """``FILE:LINE: field: reason``, the way the CLI prints it."""
        return f"{source}:{self.line}: {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LeadRow:
    """One lead to import: ``phone`` is normalised, ``timezone`` a known IANA zone or None.

    ``line`` is where the row starts in its file (used to report duplicates and DNC hits);
    ``extra`` keeps the file's other columns by header name.
    """

    line: int
    phone: str
    name: str | None = None
    timezone: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "line", positive_int("line", self.line))
        object.__setattr__(self, "phone", canonical_phone(self.phone))
        object.__setattr__(self, "name", optional_text("name", self.name, MAX_NAME_LENGTH))
        tz = optional_text("timezone", self.timezone, _SHORT_TEXT)
        if tz is not None:
            try:
                zone(tz)
            except ValueError as exc:
                raise InvalidFieldError("timezone", f"unknown time zone {tz!r}") from exc
        object.__setattr__(self, "timezone", tz)
        for key, value in self.extra.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidFieldError("extra", f"keys and values must be strings, got {key!r}: {value!r}")
        object.__setattr__(self, "extra", _frozen_mapping(self.extra))


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How a dial attempt ended; only ``outcome`` is required.

    ``ring_seconds``: dial to answer (or to giving up); ``connect_seconds``: from the AMD
    verdict to the agent being bridged; ``talk_seconds``: the conversation with the agent.
    """

    outcome: str
    ring_seconds: float | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    agent_id: str | None = None
    uniqueid: str | None = None
    connect_seconds: float | None = None
    talk_seconds: float | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in ATTEMPT_OUTCOMES:
            raise InvalidFieldError("outcome", f"{self.outcome!r} is not one of {', '.join(ATTEMPT_OUTCOMES)}")
        for name in ("ring_seconds", "connect_seconds", "talk_seconds"):
            object.__setattr__(self, name, _optional_seconds(name, getattr(self, name)))
        for name in ("answered_at", "ended_at"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else aware_datetime(name, value))
        for name, length in (("amd_status", 32), ("amd_cause", 64), ("agent_id", 64), ("uniqueid", 64)):
            object.__setattr__(self, name, optional_text(name, getattr(self, name), length))
        if self.detail is not None and not isinstance(self.detail, str):
            raise InvalidFieldError("detail", f"must be a string or None, got {self.detail!r}")


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    """A stored campaign; :meth:`rules` gives back the pure :class:`Campaign`."""

    id: int
    name: str
    dial_mode: str
    caller_id: str
    queue: str
    timezone: str
    call_start: time
    call_end: time
    max_attempts: int
    retry_minutes: Mapping[str, int | None]
    machine_action: str
    machine_message: str
    safe_harbor_message: str
    active: bool
    created_at: datetime
    updated_at: datetime

    def rules(self) -> Campaign:
        """The campaign's dialing rules as :mod:`callcenter.dialer.campaign` uses them."""
        return Campaign(
            name=self.name,
            dial_mode=self.dial_mode,
            caller_id=self.caller_id,
            queue=self.queue,
            timezone=self.timezone,
            calling_hours=CallingHours(self.call_start, self.call_end),
            retry=RetryPolicy(max_attempts=self.max_attempts, retry_minutes=dict(self.retry_minutes)),
            machine_action=self.machine_action,
            machine_message=self.machine_message,
            safe_harbor_message=self.safe_harbor_message,
            active=self.active,
        )


@dataclass(frozen=True, slots=True)
class LeadListRecord:
    """An imported lead file; ``destroyed_at`` is set once its leads were deleted."""

    id: int
    campaign_id: int
    name: str
    source_file: str
    imported_at: datetime
    imported_by: str
    rows_ok: int
    rows_bad: int
    destroyed_at: datetime | None
    destroyed_by: str | None


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """A stored lead and where it stands (``state`` is a LeadState value)."""

    id: int
    campaign_id: int
    list_id: int
    phone: str
    name: str | None
    timezone: str | None
    extra: Mapping[str, str]
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_outcome: str | None
    final_outcome: str | None
    created_at: datetime
    updated_at: datetime
    team: str | None = None
    """The team it was handed out to (None: in the campaign's pool)."""
    agent_id: str | None = None
    """The agent of ``team`` it was handed on to."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What :func:`~callcenter.storage.dialer.import_leads` did with a file's rows.

    ``problems`` holds every row not imported, sorted by line: the parser's and those
    found against the database (duplicates, do-not-call numbers). ``duplicates`` (of an
    earlier row or of a lead already in the campaign) and ``dnc`` count two kinds of them.
    """

    list_id: int
    rows_ok: int
    problems: tuple[RowProblem, ...]
    duplicates: int
    dnc: int

    @property
    def rows_bad(self) -> int:
        """Rows not imported."""
        return len(self.problems)


@dataclass(frozen=True, slots=True)
class LeadToDial:
    """A claimed lead: dial ``phone`` now and finish attempt ``attempt_id`` afterwards.

    ``timezone`` is the zone its calling hours were checked in (the lead's own, or the
    campaign's when the lead has none).
    """

    lead_id: int
    attempt_id: int
    attempt_no: int
    phone: str
    name: str | None
    timezone: str
    extra: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A stored dial attempt; ``outcome`` is None while it is in flight."""

    id: int
    campaign_id: int
    lead_id: int | None
    phone: str | None
    phone_hash: str
    attempt_no: int
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    ring_seconds: float | None
    outcome: str | None
    amd_status: str | None
    amd_cause: str | None
    agent_id: str | None
    uniqueid: str | None
    connect_seconds: float | None
    talk_seconds: float | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """An attempt still in flight at a start, with its lead's team (the pacing lane of a
    ``route: team`` campaign); None: the lead is in the campaign's pool, or destroyed."""

    attempt: AttemptRecord
    lead_team: str | None


@dataclass(frozen=True, slots=True)
class LeadHolding:
    """The leads of a campaign one holder has: a team (``agent_id`` None: not yet given to an
    agent), an agent of it, or IT's pool (both None); by state, destroyed leads not counted."""

    team: str | None
    agent_id: str | None
    waiting: int
    """``new`` or ``retry``: still to be dialed."""
    dialing: int
    done: int


@dataclass(frozen=True, slots=True)
class LeadBacklog:
    """A campaign's leads still to call (``new`` or ``retry``): how many, how many are due now,
    and since when the oldest has waited (its ``created_at``: for a call back, when the caller
    asked; None with none waiting)."""

    waiting: int
    due: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    """Counts of a campaign: leads by state and by final outcome, attempts by outcome."""

    campaign_id: int
    leads_by_state: Mapping[str, int]
    leads_by_final: Mapping[str, int]
    attempts_by_outcome: Mapping[str, int]
    in_flight: int

    @property
    def leads(self) -> int:
        """All leads of the campaign."""
        return sum(self.leads_by_state.values())

    @property
    def attempts(self) -> int:
        """All attempts, finished or in flight."""
        return sum(self.attempts_by_outcome.values()) + self.in_flight


@dataclass(frozen=True, slots=True)
class LedgerDay:
    """The abandon ledger of one campaign for one local day and its rolling window.

    ``live_answers`` = humans + abandoned + ``machine_as_abandoned`` x machines, and
    ``abandoned`` = abandoned + ``machine_as_abandoned`` x machines (AMD false positives
    estimated Ofcom-style); ``rate`` = abandoned / live answers, 0.0 with no live answer.
    The ``window_*`` fields cover ``window_first`` .. ``day`` (30 days, or since the
    campaign's first attempt when that is later).
    """

    campaign_id: int
    day: date
    humans: int
    abandoned_calls: int
    machines: int
    live_answers: float
    abandoned: float
    rate: float
    window_first: date
    window_live_answers: float
    window_abandoned: float
    window_rate: float


@dataclass(frozen=True, slots=True)
class DestroyResult:
    """What destroying a lead list removed, and the audit row that says so."""

    list_id: int
    leads_deleted: int
    attempts_blanked: int
    forced: bool
    audit_id: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row: ``actor`` did ``action`` to ``subject`` at ``at``."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DncEntry:
    """A number on the do-not-call list: since when, from where (``agent``, ``sms``, ``csv`` ...) and why."""

    phone: str
    source: str
    reason: str
    added_at: datetime
