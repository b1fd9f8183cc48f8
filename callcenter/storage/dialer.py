"""Dialer repository: campaigns, lead lists, leads, dial attempts, DNC, ledger, audit.

Like :mod:`callcenter.storage.repository`, every function takes a
:class:`~sqlalchemy.orm.Session` first, flushes but never commits (the caller owns the
transaction: ``Repository.run(fn, *args)`` gives each call its own), returns the frozen
dataclasses of :mod:`callcenter.storage.dialer_records`, raises :class:`NotFoundError`
for a missing row, :class:`ConflictError` for a write the rules forbid, and ValueError
naming the field for bad input. Time is passed in (``now``); nothing reads the clock.

The rules themselves (calling hours, what follows an attempt) live in the pure
:mod:`callcenter.dialer.campaign`; this module applies them to the stored rows:

* A lead waits to be dialed in state ``new`` or ``retry`` with ``next_attempt_at`` set
  (and only then: a CHECK constraint holds it). :func:`claim_leads` takes the oldest due
  first (``next_attempt_at``, then id), moves each to ``dialing`` with a new in-flight
  attempt row, and never dials a do-not-call or out-of-hours lead. ``dialing`` is the
  lock: a lead has at most one attempt in flight. On PostgreSQL concurrent claimers skip
  each other's rows (``FOR UPDATE SKIP LOCKED``); SQLite transactions from
  :func:`~callcenter.storage.db.create_engine_for` hold the write lock from their start.
* :func:`finish_attempt` records how the call ended and decides the lead;
  :func:`fail_stale_attempts` ends attempts left in flight by a crash as ``failed``, so
  every attempt ends in a recorded outcome.
* :func:`hand_out_to_team` and :func:`hand_out_to_agents` give waiting leads to a team and
  on to its agents, :func:`take_back` returns them, :func:`lead_holdings` says who holds
  what (each hand-out audited; the rules are :mod:`callcenter.dialer.handout`'s); a claim
  given :class:`~callcenter.dialer.handout.Owners` takes only their leads.
* :func:`destroy_lead_list` deletes a list's leads (personal data) after use; attempt
  rows keep a SHA-256 hash of the number, not the number, and an audit row says what was
  destroyed, by whom and when.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from callcenter.dialer.campaign import (
    ATTEMPT_OUTCOMES,
    Campaign,
    LeadDecision,
    LeadState,
    callable_at,
    decide_after_attempt,
    next_callable_at,
    zone,
)
from callcenter.dialer.handout import HandOut, Owners, shares
from callcenter.storage import models
from callcenter.storage.dialer_records import (
    DUPLICATE_REASON,
    AttemptRecord,
    AttemptResult,
    AuditEntry,
    CampaignProgress,
    CampaignRecord,
    DestroyResult,
    DncEntry,
    ImportResult,
    LeadBacklog,
    LeadHolding,
    LeadListRecord,
    LeadRecord,
    LeadRow,
    LeadToDial,
    LedgerDay,
    OpenAttempt,
    RowProblem,
)
from callcenter.storage.records import (
    CallRecord,
    CallRecordUpdate,
    InvalidFieldError,
    aware_datetime,
    canonical_phone,
    is_digits,
    positive_int,
    whole_number,
)
from callcenter.storage.repository import (
    MAX_LIST_LIMIT,
    ConflictError,
    NotFoundError,
    StorageError,
    update_call_record,
)

__all__ = [
    "CLAIM_BATCH_FACTOR",
    "CLAIM_MAX_EXAMINED",
    "IMPORT_CHUNK",
    "LEDGER_WINDOW_DAYS",
    "NOT_RECYCLABLE",
    "ConflictError",
    "NotFoundError",
    "StorageError",
    "abandon_ledger",
    "abandon_ledger_days",
    "add_dnc",
    "add_dnc_on_request",
    "campaign_progress",
    "claim_leads",
    "close_waiting_callback",
    "destroy_lead_list",
    "disposition_call",
    "dnc_entry",
    "dnc_numbers_among",
    "fail_stale_attempts",
    "finish_attempt",
    "get_campaign",
    "get_lead",
    "get_lead_list",
    "import_leads",
    "is_dnc",
    "lead_backlogs",
    "list_attempts",
    "list_audit",
    "list_campaigns",
    "list_lead_lists",
    "phone_hash",
    "recycle_leads",
    "remove_dnc",
    "replace_waiting_callback",
    "sync_campaigns",
]

IMPORT_CHUNK: Final = 5000
"""Leads per bulk INSERT (and phones per ``IN (...)`` lookup: at most 1000)."""

CLAIM_BATCH_FACTOR: Final = 4
""":func:`claim_leads` reads ``limit * CLAIM_BATCH_FACTOR`` candidates at a time."""

CLAIM_MAX_EXAMINED: Final = 5000
"""At most this many candidates are examined per claim, to keep the transaction short.

Out-of-hours and DNC leads are rescheduled or closed as they are examined, so a later
claim goes on where this one stopped.
"""

LEDGER_WINDOW_DAYS: Final = 30
"""The rolling window of the abandon ledger (TSR: each successive 30-day period)."""

NOT_RECYCLABLE: Final = frozenset({"human", "dnc", "abandoned"})
"""Final outcomes :func:`recycle_leads` refuses: the person was reached (``human``,
``abandoned``: a live answer, which Ofcom and the TSR treat as a contact already made) or
must not be called (``dnc``)."""

_LOOKUP_CHUNK: Final = 1000
_WAITING: Final = (LeadState.NEW.value, LeadState.RETRY.value)
_T = TypeVar("_T")


def phone_hash(phone: str) -> str:
    """SHA-256 hex of the normalised number: what attempt rows keep after destruction."""
    return hashlib.sha256(canonical_phone(phone).encode("ascii")).hexdigest()


def _chunks(items: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(field: str, value: object, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidFieldError(field, f"must be a non-empty string, got {value!r}")
    if len(value.strip()) > max_length:
        raise InvalidFieldError(field, f"must be at most {max_length} characters, got {len(value.strip())}")
    return value.strip()


def _counts(session: Session, stmt: Any) -> dict[Any, int]:
    """``{key: count}`` of a ``SELECT key, count(*) ... GROUP BY key``."""
    return {key: int(count) for key, count in session.execute(stmt)}


def _limit(limit: int) -> int:
    limit = positive_int("limit", limit)
    if limit > MAX_LIST_LIMIT:
        raise InvalidFieldError("limit", f"must be at most {MAX_LIST_LIMIT}, got {limit}")
    return limit


# --- ORM row -> dataclass ------------------------------------------------------------------


def _campaign(row: models.Campaign) -> CampaignRecord:
    return CampaignRecord(
        id=row.id, name=row.name, dial_mode=row.dial_mode, caller_id=row.caller_id,
        queue=row.queue, timezone=row.timezone, call_start=row.call_start, call_end=row.call_end,
        max_attempts=row.max_attempts, retry_minutes=dict(row.retry_minutes),
        machine_action=row.machine_action, machine_message=row.machine_message,
        safe_harbor_message=row.safe_harbor_message, active=row.active,
        created_at=row.created_at, updated_at=row.updated_at,
    )


def _lead_list(row: models.LeadList) -> LeadListRecord:
    return LeadListRecord(
        id=row.id, campaign_id=row.campaign_id, name=row.name, source_file=row.source_file,
        imported_at=row.imported_at, imported_by=row.imported_by, rows_ok=row.rows_ok,
        rows_bad=row.rows_bad, destroyed_at=row.destroyed_at, destroyed_by=row.destroyed_by,
    )


def _lead(row: models.Lead) -> LeadRecord:
    return LeadRecord(
        id=row.id, campaign_id=row.campaign_id, list_id=row.list_id, phone=row.phone,
        name=row.name, timezone=row.timezone, extra=dict(row.extra), state=row.state,
        attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_outcome=row.last_outcome, final_outcome=row.final_outcome,
        created_at=row.created_at, updated_at=row.updated_at, team=row.team, agent_id=row.agent_id,
    )


def _attempt(row: models.DialAttempt) -> AttemptRecord:
    return AttemptRecord(
        id=row.id, campaign_id=row.campaign_id, lead_id=row.lead_id, phone=row.phone,
        phone_hash=row.phone_hash, attempt_no=row.attempt_no, started_at=row.started_at,
        answered_at=row.answered_at, ended_at=row.ended_at, ring_seconds=row.ring_seconds,
        outcome=row.outcome, amd_status=row.amd_status, amd_cause=row.amd_cause,
        agent_id=row.agent_id, uniqueid=row.uniqueid, connect_seconds=row.connect_seconds,
        talk_seconds=row.talk_seconds, detail=row.detail,
    )


def _audit_entry(action: str, subject: str, actor: str, when: datetime, detail: dict[str, Any]) -> models.AuditEntry:
    """An ``audit_log`` row; its detail also names who and when."""
    return models.AuditEntry(at=when, actor=actor, action=action, subject=subject,
                             detail={**detail, "actor": actor, "at": when.isoformat()})


def _audit(row: models.AuditEntry) -> AuditEntry:
    return AuditEntry(id=row.id, at=row.at, actor=row.actor, action=row.action,
                      subject=row.subject, detail=dict(row.detail))


# --- campaigns -----------------------------------------------------------------------------


def _campaign_values(campaign: Campaign) -> dict[str, Any]:
    return {
        "dial_mode": campaign.dial_mode,
        "caller_id": campaign.caller_id,
        "queue": campaign.queue,
        "timezone": campaign.timezone,
        "call_start": campaign.calling_hours.start,
        "call_end": campaign.calling_hours.end,
        "max_attempts": campaign.retry.max_attempts,
        "retry_minutes": dict(campaign.retry.retry_minutes),
        "machine_action": campaign.machine_action,
        "machine_message": campaign.machine_message,
        "safe_harbor_message": campaign.safe_harbor_message,
        "active": campaign.active,
    }


def sync_campaigns(
    session: Session, campaigns: Sequence[Campaign], *, now: datetime | None = None
) -> list[CampaignRecord]:
    """Create or update the campaigns by name (as ``config/dialer.yaml`` defines them).

    A campaign keeps its id (and its leads and history) across edits; ``updated_at``
    (``now``, default the current time) moves only when a setting changed. Campaigns not
    given are left as they are. Returns the records in the order given; ValueError on a
    repeated name.
    """
    when = models.utcnow() if now is None else aware_datetime("now", now)
    names = [c.name for c in campaigns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidFieldError("campaigns", f"name {repeated[0]!r} given more than once")
    existing = {
        row.name: row
        for row in session.scalars(select(models.Campaign).where(models.Campaign.name.in_(names)))
    } if names else {}
    result: list[models.Campaign] = []
    for campaign in campaigns:
        values = _campaign_values(campaign)
        row = existing.get(campaign.name)
        if row is None:
            row = models.Campaign(name=campaign.name, created_at=when, updated_at=when, **values)
            session.add(row)
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = when
        result.append(row)
    session.flush()
    return [_campaign(row) for row in result]


def _campaign_row(session: Session, name_or_id: str | int) -> models.Campaign | None:
    if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
        return session.get(models.Campaign, positive_int("campaign_id", name_or_id))
    if isinstance(name_or_id, str):
        if is_digits(name_or_id):
            return session.get(models.Campaign, whole_number("campaign", name_or_id))
        return session.scalar(select(models.Campaign).where(models.Campaign.name == name_or_id))
    raise InvalidFieldError("campaign", f"must be a name or an id, got {name_or_id!r}")


def _require_campaign(session: Session, campaign_id: int) -> models.Campaign:
    row = session.get(models.Campaign, positive_int("campaign_id", campaign_id))
    if row is None:
        raise NotFoundError(f"campaign_id: campaign {campaign_id} not found")
    return row


def get_campaign(session: Session, name_or_id: str | int) -> CampaignRecord | None:
    """The campaign with this name or id (an all-digits string is an id), or None."""
    row = _campaign_row(session, name_or_id)
    return None if row is None else _campaign(row)


def list_campaigns(session: Session) -> list[CampaignRecord]:
    """Every stored campaign, by name."""
    return [_campaign(row) for row in session.scalars(select(models.Campaign).order_by(models.Campaign.name))]


# --- lead lists and import -----------------------------------------------------------------


def _existing(session: Session, column: Any, phones: Sequence[str], *where: Any) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(phones, _LOOKUP_CHUNK):
        found.update(session.scalars(select(column).where(column.in_(chunk), *where)))
    return found


def _insert_leads(session: Session, rows: Sequence[LeadRow], shared: dict[str, Any]) -> None:
    """Insert the leads ``rows``, each with the ``shared`` column values, in bulk.

    PostgreSQL with psycopg 3: one ``COPY leads FROM STDIN`` in the session's transaction
    (about four times faster than batched INSERTs). Elsewhere: Core INSERTs of
    :data:`IMPORT_CHUNK` rows, the shared values bound once by ``values()`` and the rest
    handed to the driver's executemany.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        columns = [*shared, "phone", "name", "timezone", "extra"]
        fixed = tuple(shared.values())
        raw: Any = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY leads ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*fixed, row.phone, row.name, row.timezone, json.dumps(dict(row.extra))))
        return
    bulk_insert = insert(models.Base.metadata.tables["leads"]).values(**shared)
    for chunk in _chunks(rows, IMPORT_CHUNK):
        session.execute(bulk_insert, [
            {"phone": row.phone, "name": row.name, "timezone": row.timezone, "extra": dict(row.extra)}
            for row in chunk
        ])


def import_leads(
    session: Session,
    campaign_id: int,
    rows: Iterable[LeadRow],
    *,
    list_name: str,
    source_file: str,
    actor: str,
    now: datetime,
    parse_problems: Iterable[RowProblem] = (),
) -> ImportResult:
    """Store a lead list and its leads (state ``new``, due at ``now``) in bulk.

    Rows are skipped, each with a :class:`RowProblem`, when their phone repeats an earlier
    row (``duplicate of line N``), is already a lead of the campaign, or is on the
    do-not-call list. ``parse_problems`` (the file's bad rows found by the parser) are
    counted in the list's ``rows_bad`` and returned with the others, sorted by line.
    The campaign's phones are read with one query, the DNC list is looked up in chunks,
    and leads are inserted with bulk INSERTs of :data:`IMPORT_CHUNK` rows.
    """
    when = aware_datetime("now", now)
    campaign = _require_campaign(session, campaign_id)
    problems = list(parse_problems)
    first_line: dict[str, int] = {}
    fresh: list[LeadRow] = []
    duplicates = sum(1 for p in problems if p.reason.startswith(DUPLICATE_REASON))
    for row in rows:
        if not isinstance(row, LeadRow):
            raise InvalidFieldError("rows", f"must be LeadRow values, got {type(row).__name__}")
        first = first_line.setdefault(row.phone, row.line)
        if first != row.line:
            duplicates += 1
            problems.append(RowProblem(row.line, "phone", f"{DUPLICATE_REASON} {first} ({row.phone})"))
        else:
            fresh.append(row)
    known = set(session.scalars(select(models.Lead.phone).where(models.Lead.campaign_id == campaign.id)))
    dnc = _existing(session, models.DncNumber.phone, [r.phone for r in fresh if r.phone not in known])
    keep: list[LeadRow] = []
    on_dnc = 0
    for row in fresh:
        if row.phone in known:
            duplicates += 1
            problems.append(RowProblem(row.line, "phone", f"already a lead of campaign {campaign.name!r}"))
        elif row.phone in dnc:
            on_dnc += 1
            problems.append(RowProblem(row.line, "phone", "on the do-not-call list"))
        else:
            keep.append(row)
    lead_list = models.LeadList(
        campaign_id=campaign.id, name=_text("list_name", list_name, 200),
        source_file=_text("source_file", source_file, 1024), imported_at=when,
        imported_by=_text("actor", actor, 64), rows_ok=len(keep), rows_bad=len(problems),
    )
    session.add(lead_list)
    session.flush()
    _insert_leads(session, keep, {
        "campaign_id": campaign.id, "list_id": lead_list.id, "state": LeadState.NEW.value, "attempts": 0,
        "next_attempt_at": when, "created_at": when, "updated_at": when,
    })
    problems.sort(key=lambda p: p.line)
    return ImportResult(list_id=lead_list.id, rows_ok=len(keep), problems=tuple(problems),
                        duplicates=duplicates, dnc=on_dnc)


def release_attempt(session: Session, attempt_id: int, *, due_at: datetime, now: datetime) -> bool:
    """Take back an attempt that placed no call: a previewed lead the agent chose not to dial.

    The in-flight attempt is deleted (no call was made, so there is nothing to record),
    and its lead waits again, due at ``due_at``, with its attempt count as before the
    claim (``new`` if it was never dialed, else ``retry``). False, and nothing changed,
    when the attempt has ended already (it was dialed, or closed at stop).
    """
    when = aware_datetime("now", now)
    due = aware_datetime("due_at", due_at)
    attempt = session.get(models.DialAttempt, positive_int("attempt_id", attempt_id), with_for_update=True)
    if attempt is None or attempt.outcome is not None:
        return False
    lead = session.get(models.Lead, attempt.lead_id, with_for_update=True) if attempt.lead_id is not None else None
    session.delete(attempt)
    if lead is not None and lead.state == LeadState.DIALING.value:
        lead.attempts = max(0, lead.attempts - 1)
        lead.state = (LeadState.NEW if lead.attempts == 0 else LeadState.RETRY).value
        lead.next_attempt_at = due
        lead.updated_at = when
    return True


def recheck_claim(session: Session, attempt_id: int, *, now: datetime) -> str | None:
    """Check a claimed lead again just before its call: None if it may be dialed now, else
    why not, with the claim undone (no call is placed, so no attempt is counted).

    A previewed lead stays claimed for its agent until they dial it, maybe hours later:
    since the claim its number may have gone on the do-not-call list (the lead is closed,
    final outcome ``dnc``), the calling hours in its time zone may have ended (it waits for
    the next window), the campaign may have been stopped (it waits again, due now), or the
    claim ended (the dialer stopped meanwhile).
    """
    when = aware_datetime("now", now)
    attempt = session.get(models.DialAttempt, positive_int("attempt_id", attempt_id), with_for_update=True)
    if attempt is None or attempt.outcome is not None or attempt.lead_id is None:
        return "its claim has ended (the dialer stopped meanwhile): ask for the next lead"
    lead = session.get(models.Lead, attempt.lead_id, with_for_update=True)
    if lead is None or lead.state != LeadState.DIALING.value:
        return "its claim has ended: ask for the next lead"
    campaign = _require_campaign(session, lead.campaign_id)
    if is_dnc(session, lead.phone):
        release_attempt(session, attempt.id, due_at=when, now=when)  # no call: the claim undone
        lead.state, lead.next_attempt_at, lead.final_outcome = LeadState.DONE.value, None, "dnc"
        return "the number went on the do-not-call list since it was offered: the lead is closed"
    if not campaign.active:
        release_attempt(session, attempt.id, due_at=when, now=when)
        return f"campaign {campaign.name} is stopped"
    tz_name = lead.timezone or campaign.timezone
    tz = zone(tz_name, f"lead timezone {tz_name!r}")
    hours = _campaign(campaign).rules().calling_hours
    if not callable_at(hours, tz, when):
        due = next_callable_at(hours, tz, when)
        release_attempt(session, attempt.id, due_at=due, now=when)
        return (f"outside the calling hours now ({hours.start:%H:%M}-{hours.end:%H:%M} {tz_name}): "
                f"the lead waits until {due.astimezone(tz):%Y-%m-%d %H:%M}")
    return None


def reopen_lead(session: Session, campaign_id: int, row: LeadRow, *, now: datetime) -> bool:
    """Dial a finished lead again: its number asked for it anew (a repeat call-back request).

    The campaign's ``done`` lead with ``row.phone`` is due ``now`` again with its attempts
    counted from 0 (the attempt history stays), ``row``'s name (if any) and extra columns
    over its own. False, and nothing changed, when the campaign has no such lead, when it is
    still due or being dialed (one call-back pending is enough), or when the number is on
    the do-not-call list (those leads are never reopened).
    """
    when = aware_datetime("now", now)
    lead = _lead_of_phone(session, campaign_id, row.phone)
    if lead is None or lead.state != LeadState.DONE.value or lead.final_outcome == "dnc" or is_dnc(session, row.phone):
        return False
    lead.state = LeadState.NEW.value
    lead.attempts = 0
    lead.next_attempt_at = when
    lead.final_outcome = None
    lead.updated_at = when
    if row.name:
        lead.name = row.name
    lead.extra = {**(lead.extra or {}), **row.extra}
    return True


def _lead_of_phone(session: Session, campaign_id: int, phone: str) -> models.Lead | None:
    """The campaign's lead for ``phone`` (one at most), locked for the transaction."""
    _require_campaign(session, campaign_id)
    return session.scalar(select(models.Lead).where(models.Lead.campaign_id == campaign_id,
                                                     models.Lead.phone == phone).with_for_update())


def _waiting_callback(session: Session, campaign_id: int, phone: str, column: str) -> models.Lead | None:
    """The campaign's lead for ``phone``, still due (not being dialed), with ``column``."""
    lead = _lead_of_phone(session, campaign_id, phone)
    if lead is None or lead.state not in _WAITING or column not in (lead.extra or {}):
        return None
    return lead


def replace_waiting_callback(session: Session, campaign_id: int, row: LeadRow, *, replaces: str,
                             now: datetime) -> bool:
    """A call back the customer asked for replaces one queued for them (``replaces``: the extra
    column that marks those, e.g. a call abandoned in the queue): the campaign's due lead
    for ``row.phone`` with that column takes ``row``'s extra columns instead of its own
    (and ``row``'s name, if any). False, and nothing changed, without such a lead."""
    when = aware_datetime("now", now)
    lead = _waiting_callback(session, campaign_id, row.phone, replaces)
    if lead is None:
        return False
    lead.extra = dict(row.extra)
    if row.name:
        lead.name = row.name
    lead.updated_at = when
    return True


def close_waiting_callback(session: Session, campaign_id: int, phone: str, *, only: str, outcome: str,
                           note: str, now: datetime) -> bool:
    """Close the campaign's due lead for ``phone`` that has the extra column ``only``: it is no
    longer needed (``outcome``, e.g. ``called_again``: the number talked with an agent on
    another call; ``note`` goes in its ``closed`` column). A lead being dialed is left alone.
    True if one was closed."""
    when = aware_datetime("now", now)
    lead = _waiting_callback(session, campaign_id, phone, only)
    if lead is None:
        return False
    lead.state = LeadState.DONE.value
    lead.final_outcome = _text("outcome", outcome, 16)
    lead.next_attempt_at = None
    lead.extra = {**(lead.extra or {}), "closed": note}
    lead.updated_at = when
    return True


def get_lead_list(session: Session, list_id: int) -> LeadListRecord | None:
    """The lead list with this id, or None."""
    row = session.get(models.LeadList, positive_int("list_id", list_id))
    return None if row is None else _lead_list(row)


def list_lead_lists(session: Session, campaign_id: int | None = None) -> list[LeadListRecord]:
    """Lead lists, newest first, of one campaign or of all."""
    stmt = select(models.LeadList).order_by(models.LeadList.imported_at.desc(), models.LeadList.id.desc())
    if campaign_id is not None:
        stmt = stmt.where(models.LeadList.campaign_id == positive_int("campaign_id", campaign_id))
    return [_lead_list(row) for row in session.scalars(stmt)]


def get_lead(session: Session, lead_id: int) -> LeadRecord | None:
    """The lead with this id, or None (also once its list was destroyed)."""
    row = session.get(models.Lead, positive_int("lead_id", lead_id))
    return None if row is None else _lead(row)


# --- claiming leads and finishing attempts -------------------------------------------------


def _lock_waiting(session: Session, ids: Sequence[int], when: datetime,
                  owners: Owners | None = None) -> list[models.Lead]:
    """Lock the leads ``ids`` that still wait, are due and (with ``owners``) are held by
    them, oldest due first.

    PostgreSQL skips rows another transaction holds and checks the condition on the
    newest committed version, so a lead claimed, or taken back, since the candidates were
    read drops out here.
    """
    if not ids:
        return []
    stmt = select(models.Lead).where(models.Lead.id.in_(ids), models.Lead.state.in_(_WAITING),
                                     models.Lead.next_attempt_at <= when)
    if owners is not None:
        stmt = stmt.where(_owned_by(owners))
    return list(session.scalars(
        stmt.order_by(models.Lead.next_attempt_at, models.Lead.id).with_for_update(skip_locked=True)))


def _owned_by(owners: Owners) -> Any:
    """The WHERE clause of the leads ``owners`` hold."""
    lead = models.Lead
    held = []
    if owners.teams:
        of_team = lead.team.in_(sorted(owners.teams))
        held.append(of_team & lead.agent_id.is_(None) if owners.unassigned_only else of_team)
    if owners.agents:
        held.append(lead.agent_id.in_(sorted(owners.agents)))
    return or_(*held)


def claim_leads(session: Session, campaign_id: int, *, limit: int, now: datetime,
                owners: Owners | None = None) -> list[LeadToDial]:
    """Claim up to ``limit`` leads of the campaign to dial now, oldest due first.

    With ``owners`` only the leads handed out to them are candidates (an empty
    :class:`~callcenter.dialer.handout.Owners`: none).

    Each candidate (``new`` or ``retry`` with ``next_attempt_at <= now``) is, in order:

    * on the do-not-call list: closed (``done``, final outcome ``dnc``), never dialed;
    * outside the calling hours in its time zone (the lead's, else the campaign's):
      rescheduled to the next window start, not returned;
    * otherwise: ``dialing``, ``attempts + 1``, a new in-flight attempt started at
      ``now``, and returned.

    Candidates are read without locks, :data:`CLAIM_BATCH_FACTOR` x ``limit`` at a time in
    (``next_attempt_at``, id) order, until ``limit`` are claimed, none remain, or
    :data:`CLAIM_MAX_EXAMINED` were examined. Only the rows changed are locked (``FOR
    UPDATE SKIP LOCKED`` on PostgreSQL): the DNC and out-of-hours ones, and no more
    dialable ones than still needed, so concurrent claimers share the due leads. An
    inactive campaign claims nothing.
    """
    when = aware_datetime("now", now)
    limit = positive_int("limit", limit)
    campaign = _require_campaign(session, campaign_id)
    if not campaign.active or (owners is not None and not owners):
        return []
    campaign_zone = zone(campaign.timezone, f"campaign {campaign.name} timezone")
    zones: dict[str | None, ZoneInfo] = {None: campaign_zone}
    hours = _campaign(campaign).rules().calling_hours
    batch = limit * CLAIM_BATCH_FACTOR
    lead = models.Lead
    claimed: list[tuple[models.Lead, models.DialAttempt]] = []
    examined = 0
    cursor: tuple[datetime, int] | None = None
    while len(claimed) < limit and examined < CLAIM_MAX_EXAMINED:
        stmt = select(lead.id, lead.phone, lead.timezone, lead.next_attempt_at).where(
            lead.campaign_id == campaign.id, lead.next_attempt_at <= when, lead.state.in_(_WAITING))
        if owners is not None:
            stmt = stmt.where(_owned_by(owners))
        if cursor is not None:
            stmt = stmt.where(tuple_(lead.next_attempt_at, lead.id) > tuple_(*cursor))
        candidates = session.execute(stmt.order_by(lead.next_attempt_at, lead.id).limit(batch)).all()
        if not candidates:
            break
        examined += len(candidates)
        cursor = (candidates[-1].next_attempt_at, candidates[-1].id)
        # canonical again: a row stored before canonical_phone learnt its spelling still meets its DNC entry
        line = {c.id: canonical_phone(c.phone) for c in candidates}
        dnc = _existing(session, models.DncNumber.phone, sorted(set(line.values())))
        barred = {c.id for c in candidates if line[c.id] in dnc}
        for tz_name in {c.timezone for c in candidates} - zones.keys():
            zones[tz_name] = zone(tz_name, f"lead timezone {tz_name!r}")
        dialable = [c.id for c in candidates if c.id not in barred and callable_at(hours, zones[c.timezone], when)]
        keep_out = [c.id for c in candidates if c.id in barred or not callable_at(hours, zones[c.timezone], when)]
        for row in _lock_waiting(session, keep_out, when):
            row.updated_at = when
            if row.id in barred:
                row.state, row.next_attempt_at, row.final_outcome = LeadState.DONE.value, None, "dnc"
            else:
                row.next_attempt_at = next_callable_at(hours, zones[row.timezone], when)
        while dialable and len(claimed) < limit:
            wanted, dialable = dialable[: limit - len(claimed)], dialable[limit - len(claimed) :]
            for row in _lock_waiting(session, wanted, when, owners):
                row.state, row.next_attempt_at = LeadState.DIALING.value, None
                row.attempts += 1
                row.updated_at = when
                attempt = models.DialAttempt(
                    campaign_id=campaign.id, lead_id=row.id, phone=row.phone, phone_hash=phone_hash(row.phone),
                    attempt_no=row.attempts, started_at=when,
                )
                session.add(attempt)
                claimed.append((row, attempt))
        session.flush()
        if len(candidates) < batch:
            break
    return [
        LeadToDial(
            lead_id=row.id, attempt_id=attempt.id, attempt_no=attempt.attempt_no, phone=row.phone,
            name=row.name, timezone=row.timezone or campaign.timezone, extra=dict(row.extra),
        )
        for row, attempt in claimed
    ]


def finish_attempt(session: Session, attempt_id: int, result: AttemptResult, *, now: datetime) -> LeadDecision:
    """Record how attempt ``attempt_id`` ended and decide its lead by the retry policy.

    The lead (if it is still ``dialing``) becomes ``retry`` at the policy's time or
    ``done`` with its final outcome; ``last_outcome`` is the attempt's outcome.
    ``ended_at`` defaults to ``now``. NotFoundError for an unknown attempt; ConflictError
    if it already ended (an attempt ends once).
    """
    when = aware_datetime("now", now)
    if not isinstance(result, AttemptResult):
        raise InvalidFieldError("result", f"must be an AttemptResult, got {type(result).__name__}")
    attempt = session.scalar(
        select(models.DialAttempt)
        .where(models.DialAttempt.id == positive_int("attempt_id", attempt_id))
        .with_for_update()
    )
    if attempt is None:
        raise NotFoundError(f"attempt_id: dial attempt {attempt_id} not found")
    if attempt.outcome is not None:
        raise ConflictError(f"attempt_id: dial attempt {attempt_id} already ended ({attempt.outcome})")
    attempt.outcome = result.outcome
    attempt.ring_seconds = result.ring_seconds
    attempt.answered_at = result.answered_at
    attempt.ended_at = result.ended_at or when
    attempt.amd_status = result.amd_status
    attempt.amd_cause = result.amd_cause
    attempt.agent_id = result.agent_id
    attempt.uniqueid = result.uniqueid
    attempt.connect_seconds = result.connect_seconds
    attempt.talk_seconds = result.talk_seconds
    attempt.detail = result.detail
    campaign = _require_campaign(session, attempt.campaign_id)
    decision = decide_after_attempt(_campaign(campaign).rules().retry, attempt.attempt_no, result.outcome, when)
    lead = None if attempt.lead_id is None else session.get(models.Lead, attempt.lead_id, with_for_update=True)
    if lead is not None and lead.state == LeadState.DIALING.value:
        lead.state = decision.state.value
        lead.next_attempt_at = decision.next_attempt_at
        lead.last_outcome = result.outcome
        lead.final_outcome = decision.final
        lead.updated_at = when
    session.flush()
    return decision


def open_attempts(session: Session, *, started_before: datetime) -> list[OpenAttempt]:
    """Every campaign's attempts still in flight that started before ``started_before``,
    oldest first, each with its lead's team: at start-up, the calls an earlier run left
    (live in Asterisk or lost)."""
    cutoff = aware_datetime("started_before", started_before)
    rows = session.execute(
        select(models.DialAttempt, models.Lead.team)
        .outerjoin(models.Lead, models.Lead.id == models.DialAttempt.lead_id)
        .where(models.DialAttempt.outcome.is_(None), models.DialAttempt.started_at < cutoff)
        .order_by(models.DialAttempt.id)
    )
    return [OpenAttempt(_attempt(attempt), team) for attempt, team in rows]


def fail_stale_attempts(
    session: Session, campaign_id: int, *, started_before: datetime, reason: str, now: datetime,
    keep: Collection[int] = (),
) -> int:
    """End the campaign's attempts still in flight that started before ``started_before``,
    but those in ``keep`` (calls found live and tracked again).

    Each ends as ``failed`` with ``detail=reason`` and its lead is decided as usual (for
    the daemon's start after a crash, or a call whose hangup was never seen). Returns the
    number of attempts ended.
    """
    cutoff = aware_datetime("started_before", started_before)
    detail = _text("reason", reason, 10_000)
    _require_campaign(session, campaign_id)
    stale = [attempt_id for attempt_id in session.scalars(
        select(models.DialAttempt.id)
        .where(models.DialAttempt.campaign_id == campaign_id, models.DialAttempt.outcome.is_(None),
               models.DialAttempt.started_at < cutoff)
        .order_by(models.DialAttempt.id)
    ) if attempt_id not in keep]
    for attempt_id in stale:
        finish_attempt(session, attempt_id, AttemptResult("failed", detail=detail), now=now)
    return len(stale)


def list_attempts(
    session: Session, campaign_id: int, *, limit: int = 100, outcome: str | None = None
) -> list[AttemptRecord]:
    """The campaign's attempts, newest first; ``outcome="in_flight"`` lists unfinished ones."""
    stmt = select(models.DialAttempt).where(models.DialAttempt.campaign_id == positive_int("campaign_id", campaign_id))
    if outcome == "in_flight":
        stmt = stmt.where(models.DialAttempt.outcome.is_(None))
    elif outcome is not None:
        if outcome not in ATTEMPT_OUTCOMES:
            raise InvalidFieldError("outcome", f"{outcome!r} is not 'in_flight' or one of {', '.join(ATTEMPT_OUTCOMES)}")
        stmt = stmt.where(models.DialAttempt.outcome == outcome)
    stmt = stmt.order_by(models.DialAttempt.started_at.desc(), models.DialAttempt.id.desc()).limit(_limit(limit))
    return [_attempt(row) for row in session.scalars(stmt)]


def campaign_progress(session: Session, campaign_id: int) -> CampaignProgress:
    """Leads by state and by final outcome, finished attempts by outcome, and in flight."""
    _require_campaign(session, campaign_id)
    lead, attempt = models.Lead, models.DialAttempt
    by_state = _counts(session, (
        select(lead.state, func.count()).where(lead.campaign_id == campaign_id).group_by(lead.state)
    ))
    by_final = _counts(session, (
        select(lead.final_outcome, func.count())
        .where(lead.campaign_id == campaign_id, lead.final_outcome.is_not(None))
        .group_by(lead.final_outcome)
    ))
    by_outcome = _counts(session, (
        select(attempt.outcome, func.count()).where(attempt.campaign_id == campaign_id).group_by(attempt.outcome)
    ))
    in_flight = by_outcome.pop(None, 0)
    return CampaignProgress(
        campaign_id=campaign_id,
        leads_by_state={state.value: by_state.get(state.value, 0) for state in LeadState},
        leads_by_final={str(k): v for k, v in sorted(by_final.items(), key=lambda kv: str(kv[0]))},
        attempts_by_outcome={o: by_outcome.get(o, 0) for o in ATTEMPT_OUTCOMES},
        in_flight=in_flight,
    )


def lead_backlogs(session: Session, campaign_ids: Collection[int], *, now: datetime) -> dict[int, LeadBacklog]:
    """Each campaign's leads still to call (:class:`LeadBacklog`), one grouped query; a
    campaign with none waiting gets ``LeadBacklog(0, 0, None)``."""
    when = aware_datetime("now", now)
    lead = models.Lead
    found = {campaign_id: LeadBacklog(0, 0, None) for campaign_id in campaign_ids}
    if not found:
        return found
    due = func.sum(case((lead.next_attempt_at <= when, 1), else_=0))
    rows = session.execute(
        select(lead.campaign_id, func.count(), due, func.min(lead.created_at))
        .where(lead.campaign_id.in_(list(found)), lead.state.in_(_WAITING))
        .group_by(lead.campaign_id))
    for campaign_id, waiting, due_now, oldest in rows:
        found[campaign_id] = LeadBacklog(int(waiting), int(due_now or 0), oldest)  # min() keeps UTCDateTime
    return found


def recycle_leads(session: Session, campaign_id: int, *, finals: Collection[str], now: datetime) -> int:
    """Put the campaign's ``done`` leads with one of ``finals`` back to ``retry``, due now.

    Attempts restart at 0 (the attempt history stays). ``finals`` may name ``exhausted``
    and the retryable outcomes (``busy``, ``noanswer``, ``machine``, ``failed``); the
    :data:`NOT_RECYCLABLE` ones raise ValueError. Returns the number of leads recycled.
    """
    when = aware_datetime("now", now)
    allowed = sorted({*ATTEMPT_OUTCOMES, "exhausted"} - NOT_RECYCLABLE)
    chosen = sorted(set(finals))
    if not chosen:
        raise InvalidFieldError("finals", f"name at least one of {', '.join(allowed)}")
    for final in chosen:
        if final in NOT_RECYCLABLE:
            raise InvalidFieldError("finals", f"{final!r} leads are never recycled (reached or do-not-call)")
        if final not in allowed:
            raise InvalidFieldError("finals", f"{final!r} is not one of {', '.join(allowed)}")
    _require_campaign(session, campaign_id)
    result = session.execute(
        update(models.Lead)
        .where(models.Lead.campaign_id == campaign_id, models.Lead.state == LeadState.DONE.value,
               models.Lead.final_outcome.in_(chosen))
        .values(state=LeadState.RETRY.value, attempts=0, next_attempt_at=when, final_outcome=None,
                updated_at=when)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- do-not-call ---------------------------------------------------------------------------


def _phones(phones: Iterable[str]) -> list[str]:
    if isinstance(phones, str):
        raise InvalidFieldError("phones", "must be a collection of numbers, not one string")
    result: dict[str, None] = {}
    for i, phone in enumerate(phones):
        result[canonical_phone(phone, f"phones[{i}]")] = None
    return list(result)


def add_dnc(session: Session, phones: Iterable[str], *, source: str, reason: str = "", now: datetime) -> int:
    """Add numbers to the do-not-call list; returns how many were new (others are kept)."""
    when = aware_datetime("now", now)
    source = _text("source", source, 64)
    if not isinstance(reason, str) or len(reason) > 255:
        raise InvalidFieldError("reason", "must be a string of at most 255 characters")
    numbers = _phones(phones)
    known = _existing(session, models.DncNumber.phone, numbers)
    new = [p for p in numbers if p not in known]
    for chunk in _chunks(new, IMPORT_CHUNK):
        session.execute(insert(models.DncNumber),
                        [{"phone": p, "source": source, "reason": reason, "added_at": when} for p in chunk])
    return len(new)


def add_dnc_on_request(session: Session, phone: str, *, source: str, actor: str, reason: str, now: datetime,
                       detail: Mapping[str, Any]) -> bool:
    """A person asked not to be called (or texted) again: their number on the do-not-call list,
    and, when it was not on it, an ``audit_log`` row (``dnc.add``, subject ``dnc:<sha256>``)
    with ``actor`` and ``detail``. Returns whether it was added (False: already there)."""
    when = aware_datetime("now", now)
    number = canonical_phone(phone)
    added = add_dnc(session, [number], source=source, reason=reason[:255], now=when) > 0
    if added:
        digest = phone_hash(number)
        session.add(_audit_entry("dnc.add", f"dnc:{digest}", _text("actor", actor, 64), when,
                                 {"phone_hash": digest, **detail}))
        session.flush()
    return added


def disposition_call(session: Session, call_record_id: int, changes: CallRecordUpdate, *, do_not_call_by: str | None,
                     now: datetime) -> tuple[CallRecord, bool]:
    """Write an agent's disposition on a call record and, with ``do_not_call_by`` (the writer),
    put the caller's number on the do-not-call list, in one transaction. Returns (the record,
    whether the number was added: False when it was already listed or not asked)."""
    record = update_call_record(session, call_record_id, changes)
    if do_not_call_by is None:
        return record, False
    if not record.phone:
        raise ConflictError(f"do_not_call: call {record.ticket_number} has no caller number")
    added = add_dnc_on_request(session, record.phone, source="agent",
                               reason=f"asked on call {record.ticket_number}", actor=do_not_call_by, now=now,
                               detail={"how": "asked the agent during a call", "ticket": record.ticket_number})
    return record, added


def is_dnc(session: Session, phone: str) -> bool:
    """True if the (normalised) number is on the do-not-call list."""
    return session.get(models.DncNumber, canonical_phone(phone)) is not None


def dnc_numbers_among(session: Session, phones: Iterable[str]) -> set[str]:
    """Which of ``phones`` (as given) are on the do-not-call list; strings that are no number are not."""
    canonical: dict[str, str] = {}
    for phone in phones:
        try:
            canonical[phone] = canonical_phone(phone)
        except InvalidFieldError:
            continue
    listed = _existing(session, models.DncNumber.phone, sorted(set(canonical.values())))
    return {given for given, number in canonical.items() if number in listed}


def dnc_entry(session: Session, phone: str) -> DncEntry | None:
    """The do-not-call entry of the number, or None (also for a string that is no phone number)."""
    try:
        number = canonical_phone(phone)
    except InvalidFieldError:
        return None
    row = session.get(models.DncNumber, number)
    return None if row is None else DncEntry(row.phone, row.source, row.reason, row.added_at)


def remove_dnc(session: Session, phones: Iterable[str], *, actor: str, now: datetime) -> int:
    """Take numbers off the do-not-call list; each removal is written to the audit log.

    Returns how many were on the list.
    """
    when = aware_datetime("now", now)
    actor = _text("actor", actor, 64)
    numbers = _phones(phones)
    removed = sorted(_existing(session, models.DncNumber.phone, numbers))
    for chunk in _chunks(removed, _LOOKUP_CHUNK):
        session.execute(delete(models.DncNumber).where(models.DncNumber.phone.in_(chunk)))
    for phone in removed:
        session.add(_audit_entry("dnc.remove", f"dnc:{phone_hash(phone)}", actor, when,
                                 {"phone_hash": phone_hash(phone)}))
    session.flush()
    return len(removed)


# --- hand-out: IT -> teams -> agents --------------------------------------------------------


def _move_waiting(session: Session, campaign_id: int, where: Sequence[Any], count: int | None,
                  values: dict[str, Any], when: datetime) -> int:
    """Set ``values`` on up to ``count`` (None: all) waiting leads of the campaign matching
    ``where``, in import order; leads being dialed or done stay where they are."""
    lead = models.Lead
    chosen = (select(lead.id).where(lead.campaign_id == campaign_id, lead.state.in_(_WAITING), *where)
              .order_by(lead.id))
    if count is not None:
        chosen = chosen.limit(count)
    ids = list(session.scalars(chosen.with_for_update(skip_locked=True)))
    moved = 0
    for chunk in _chunks(ids, 5000):
        moved += session.execute(
            update(lead).where(lead.id.in_(chunk), lead.state.in_(_WAITING))
            .values(updated_at=when, **values).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    return int(moved)


def _audit_handout(session: Session, campaign: models.Campaign, action: str, actor: str, when: datetime,
                   detail: dict[str, Any]) -> None:
    session.add(_audit_entry(action, f"campaign:{campaign.name}", actor, when,
                             {"campaign": campaign.name, "campaign_id": campaign.id, **detail}))
    session.flush()


def hand_out_to_team(session: Session, campaign_id: int, team: str, count: int, *, actor: str, now: datetime,
                     list_id: int | None = None) -> int:
    """Give up to ``count`` of the campaign's waiting leads no team holds (of lead list
    ``list_id``, if given) to ``team``, in import order; returns how many, and audits it
    (``leads.handout``). Who may is :func:`~callcenter.dialer.handout.check_team_handout`'s call."""
    when = aware_datetime("now", now)
    actor, team = _text("actor", actor, 64), _text("team", team, 64)
    campaign = _require_campaign(session, campaign_id)
    where: list[Any] = [models.Lead.team.is_(None)]
    if list_id is not None:
        lead_list = session.get(models.LeadList, positive_int("list_id", list_id))
        if lead_list is None or lead_list.campaign_id != campaign.id:
            raise NotFoundError(f"list_id: lead list {list_id} is not a list of campaign {campaign.name}")
        where.append(models.Lead.list_id == lead_list.id)
    moved = _move_waiting(session, campaign.id, where, positive_int("count", count),
                          {"team": team, "agent_id": None}, when)
    _audit_handout(session, campaign, "leads.handout", actor, when,
                   {"to_team": team, "asked": count, "given": moved, "list_id": list_id})
    return moved


def hand_out_to_agents(session: Session, campaign_id: int, team: str, wanted: Mapping[str, int], *, actor: str,
                       now: datetime) -> dict[str, int]:
    """Give each agent in ``wanted`` up to that many of ``team``'s waiting leads no agent
    holds yet, in import order; returns how many each got (in ``wanted``'s order), audited
    as one ``leads.handout``. Use :func:`team_pool_size` and
    :func:`~callcenter.dialer.handout.shares` to share a team's leads out evenly."""
    when = aware_datetime("now", now)
    actor, team = _text("actor", actor, 64), _text("team", team, 64)
    campaign = _require_campaign(session, campaign_id)
    given: dict[str, int] = {}
    for agent, count in wanted.items():
        agent = _text("agent", agent, 64)
        where = [models.Lead.team == team, models.Lead.agent_id.is_(None)]
        given[agent] = _move_waiting(session, campaign.id, where, positive_int(f"count of agent {agent}", count),
                                     {"agent_id": agent}, when)
    _audit_handout(session, campaign, "leads.handout", actor, when,
                   {"team": team, "to_agents": given, "asked": dict(wanted)})
    return given


def hand_out(session: Session, campaign_id: int, request: HandOut, *, now: datetime) -> dict[str, int]:
    """Carry out an authorised :class:`~callcenter.dialer.handout.HandOut`: ``{team: given}``
    for leads to a team, ``{agent: given}`` for a team's leads shared among its agents (as
    evenly as they go round: :func:`~callcenter.dialer.handout.shares`)."""
    if request.count is not None:
        return {request.team: hand_out_to_team(session, campaign_id, request.team, request.count,
                                               list_id=request.list_id, actor=request.actor, now=now)}
    assert request.agents is not None  # HandOut holds count or agents
    wanted = shares(team_pool_size(session, campaign_id, request.team), request.agents, request.each)
    given = hand_out_to_agents(session, campaign_id, request.team, wanted, actor=request.actor, now=now)
    return {agent: given.get(agent, 0) for agent in request.agents}


def team_pool_size(session: Session, campaign_id: int, team: str) -> int:
    """How many waiting leads ``team`` holds that no agent of it holds yet."""
    lead = models.Lead
    _require_campaign(session, campaign_id)
    return int(session.scalar(select(func.count()).select_from(lead).where(
        lead.campaign_id == campaign_id, lead.state.in_(_WAITING), lead.team == team,
        lead.agent_id.is_(None))) or 0)


def take_back(session: Session, campaign_id: int, team: str, *, actor: str, now: datetime,
              agents: Collection[str] | None = None, every_agent: bool = False) -> int:
    """Take back ``team``'s waiting leads that ``agents`` hold (to the team), or with
    ``every_agent`` those any agent holds (one moved to another team since included), or
    with neither all of ``team``'s waiting leads (to the campaign's pool); returns how many,
    audited (``leads.takeback``). Leads being dialed or done stay with their holder."""
    when = aware_datetime("now", now)
    actor, team = _text("actor", actor, 64), _text("team", team, 64)
    campaign = _require_campaign(session, campaign_id)
    where: list[Any] = [models.Lead.team == team]
    names: list[str] | str | None = None
    if every_agent:
        where.append(models.Lead.agent_id.is_not(None))
        values: dict[str, Any] = {"agent_id": None}
        names = "every agent holding them"
    elif agents is None:
        values = {"team": None, "agent_id": None}
    else:
        names = sorted({_text("agent", a, 64) for a in agents})
        if not names:
            raise InvalidFieldError("agents", "name at least one agent, or none to take back the whole team's leads")
        where.append(models.Lead.agent_id.in_(names))
        values = {"agent_id": None}
    moved = _move_waiting(session, campaign.id, where, None, values, when)
    _audit_handout(session, campaign, "leads.takeback", actor, when,
                   {"from_team": team, "from_agents": names, "taken": moved})
    return moved


def lead_holdings(session: Session, campaign_id: int) -> list[LeadHolding]:
    """Who holds the campaign's leads, by state: IT's pool first, then teams and their agents."""
    lead = models.Lead
    _require_campaign(session, campaign_id)
    counts: dict[tuple[str | None, str | None], dict[str, int]] = {}
    for team, agent, state, n in session.execute(
        select(lead.team, lead.agent_id, lead.state, func.count()).where(lead.campaign_id == campaign_id)
        .group_by(lead.team, lead.agent_id, lead.state)
    ):
        counts.setdefault((team, agent), {})[state] = int(n)
    return [
        LeadHolding(team=team, agent_id=agent, waiting=sum(by.get(s, 0) for s in _WAITING),
                    dialing=by.get(LeadState.DIALING.value, 0), done=by.get(LeadState.DONE.value, 0))
        for (team, agent), by in sorted(counts.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or ""))
    ]


# --- destruction and audit -----------------------------------------------------------------


def destroy_lead_list(
    session: Session, list_id: int, *, actor: str, now: datetime, force: bool = False
) -> DestroyResult:
    """Delete the leads of a list (personal data) after use, and audit it.

    Refused with ConflictError while any lead is ``dialing``, and while any lead is not
    ``done`` unless ``force``; also for a list destroyed before. The list's attempts lose
    their number and lead id (``phone_hash`` stays for the ledger and compliance counts);
    the list row stays, marked destroyed; an ``audit_log`` row (action ``leads.destroy``,
    subject ``lead_list:<id>``) records the counts, the file, the campaign, who and when.
    """
    when = aware_datetime("now", now)
    actor = _text("actor", actor, 64)
    lead_list = session.get(models.LeadList, positive_int("list_id", list_id), with_for_update=True)
    if lead_list is None:
        raise NotFoundError(f"list_id: lead list {list_id} not found")
    if lead_list.destroyed_at is not None:
        raise ConflictError(
            f"list_id: lead list {list_id} was destroyed at {lead_list.destroyed_at.isoformat()}"
            f" by {lead_list.destroyed_by}")
    campaign = _require_campaign(session, lead_list.campaign_id)
    by_state = _counts(session, (
        select(models.Lead.state, func.count()).where(models.Lead.list_id == lead_list.id)
        .group_by(models.Lead.state)
    ))
    dialing = by_state.get(LeadState.DIALING.value, 0)
    if dialing:
        raise ConflictError(f"list_id: lead list {list_id} has {dialing} lead(s) being dialed; try again later")
    waiting = sum(by_state.get(state, 0) for state in _WAITING)
    if waiting and not force:
        raise ConflictError(
            f"list_id: lead list {list_id} has {waiting} lead(s) not done (new or retry);"
            " destroy with force to delete them anyway")
    leads_of_list = select(models.Lead.id).where(models.Lead.list_id == lead_list.id).scalar_subquery()
    blanked = session.execute(
        update(models.DialAttempt).where(models.DialAttempt.lead_id.in_(leads_of_list))
        .values(phone=None, lead_id=None).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    deleted = session.execute(
        delete(models.Lead).where(models.Lead.list_id == lead_list.id).execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    lead_list.destroyed_at, lead_list.destroyed_by = when, actor
    entry = _audit_entry("leads.destroy", f"lead_list:{lead_list.id}", actor, when, {
        "list_id": lead_list.id, "list_name": lead_list.name, "source_file": lead_list.source_file,
        "campaign": campaign.name, "campaign_id": campaign.id, "leads_deleted": int(deleted),
        "leads_by_state": {k: int(v) for k, v in sorted(by_state.items())},
        "attempts_blanked": int(blanked), "forced": bool(force),
    })
    session.add(entry)
    session.flush()
    session.expire_all()
    return DestroyResult(list_id=lead_list.id, leads_deleted=int(deleted), attempts_blanked=int(blanked),
                         forced=bool(force and waiting > 0), audit_id=entry.id)


def list_audit(session: Session, *, limit: int = 50, action: str | None = None) -> list[AuditEntry]:
    """The newest audit rows first, optionally of one action (e.g. ``leads.destroy``)."""
    stmt = select(models.AuditEntry)
    if action is not None:
        stmt = stmt.where(models.AuditEntry.action == action)
    stmt = stmt.order_by(models.AuditEntry.at.desc(), models.AuditEntry.id.desc()).limit(_limit(limit))
    return [_audit(row) for row in session.scalars(stmt)]


# --- abandon ledger ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Counts:
    humans: int = 0
    abandoned: int = 0
    machines: int = 0

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(self.humans + other.humans, self.abandoned + other.abandoned, self.machines + other.machines)

    def live_and_abandoned(self, machine_share: float) -> tuple[float, float]:
        estimated = self.abandoned + machine_share * self.machines
        return self.humans + estimated, estimated


def _rate(live: float, abandoned: float) -> float:
    return abandoned / live if live > 0 else 0.0


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz)


def _day_counts(session: Session, campaign_id: int, day: date, tz: ZoneInfo) -> _Counts:
    attempt = models.DialAttempt
    counts = _counts(session, (
        select(attempt.outcome, func.count())
        .where(attempt.campaign_id == campaign_id,
               attempt.started_at >= _local_midnight(day, tz),
               attempt.started_at < _local_midnight(day + timedelta(days=1), tz),
               attempt.outcome.in_(("human", "abandoned", "machine")))
        .group_by(attempt.outcome)
    ))
    return _Counts(counts.get("human", 0), counts.get("abandoned", 0), counts.get("machine", 0))


def _machine_share(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidFieldError("machine_as_abandoned", f"must be a share from 0 to 1, got {value!r}")
    return float(value)


def abandon_ledger_days(
    session: Session, campaign_id: int, *, first: date, last: date, tz: ZoneInfo,
    machine_as_abandoned: float = 0.0,
) -> list[LedgerDay]:
    """The abandon ledger of each local day ``first`` .. ``last`` (see :func:`abandon_ledger`)."""
    if not isinstance(tz, ZoneInfo):
        raise InvalidFieldError("tz", f"must be a ZoneInfo, got {tz!r}")
    if last < first:
        raise InvalidFieldError("last", f"{last} is before first {first}")
    share = _machine_share(machine_as_abandoned)
    _require_campaign(session, campaign_id)
    started = session.scalar(select(func.min(models.DialAttempt.started_at))
                             .where(models.DialAttempt.campaign_id == campaign_id))
    first_day = None if started is None else started.astimezone(tz).date()
    window_start = first - timedelta(days=LEDGER_WINDOW_DAYS - 1)
    daily: dict[date, _Counts] = {}
    day = window_start
    while day <= last:
        daily[day] = _Counts() if first_day is None or day < first_day else _day_counts(session, campaign_id, day, tz)
        day += timedelta(days=1)
    result: list[LedgerDay] = []
    day = first
    while day <= last:
        window_first = day - timedelta(days=LEDGER_WINDOW_DAYS - 1)
        if first_day is not None and first_day > window_first:
            window_first = min(first_day, day)
        window = _Counts()
        for offset in range((day - window_first).days + 1):
            window = window + daily[window_first + timedelta(days=offset)]
        counts = daily[day]
        live, abandoned = counts.live_and_abandoned(share)
        window_live, window_abandoned = window.live_and_abandoned(share)
        result.append(LedgerDay(
            campaign_id=campaign_id, day=day, humans=counts.humans, abandoned_calls=counts.abandoned,
            machines=counts.machines, live_answers=live, abandoned=abandoned, rate=_rate(live, abandoned),
            window_first=window_first, window_live_answers=window_live, window_abandoned=window_abandoned,
            window_rate=_rate(window_live, window_abandoned),
        ))
        day += timedelta(days=1)
    return result


def abandon_ledger(
    session: Session, campaign_id: int, *, day: date, tz: ZoneInfo, machine_as_abandoned: float = 0.0
) -> LedgerDay:
    """Abandoned calls against live answers for the campaign's local ``day`` and its window.

    Attempts count on the local day (in ``tz``) they started. Live answers are ``human``
    and ``abandoned`` outcomes; ``machine_as_abandoned`` (0..1) counts that share of AMD
    ``machine`` verdicts as abandoned live answers, estimating AMD false positives
    (Ofcom). The window is the :data:`LEDGER_WINDOW_DAYS` days ending with ``day``, or
    since the campaign's first attempt when that is later.
    """
    (ledger,) = abandon_ledger_days(session, campaign_id, first=day, last=day, tz=tz,
                                    machine_as_abandoned=machine_as_abandoned)
    return ledger
