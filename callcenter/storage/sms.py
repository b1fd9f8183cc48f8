"""SMS broadcast repository: broadcasts, their messages, the sender's queue, replies.

Like :mod:`callcenter.storage.dialer`, every function takes a
:class:`~sqlalchemy.orm.Session` first, flushes but never commits (the caller owns the
transaction), returns frozen dataclasses (defined here), raises :class:`NotFoundError`
for a missing row, :class:`ConflictError` for a write the rules forbid, and
:class:`~callcenter.storage.records.InvalidFieldError` (a ValueError naming the field)
for bad input. Time is passed in (``now``); nothing reads the clock.

A message's life (``sms_messages.status``):

* :func:`create_broadcast` keeps every recipient given as a row: ``queued``, or
  ``skipped`` with the reason: ``invalid: <why>`` (not a telephone number, or not a
  mobile),
  ``duplicate`` (the number came earlier in the broadcast), ``dnc`` (on the
  do-not-call list) or, for a marketing broadcast, ``texted recently``. Marketing
  broadcasts are created one at a time (on PostgreSQL an advisory lock,
  :data:`MARKETING_LOCK_KEY`), so two created at once never both queue one number;
* :func:`take_queued` hands the sender the oldest queued messages of all broadcasts and
  marks them ``sending`` (a number that joined the do-not-call list since is ``skipped``,
  ``dnc`` instead). On PostgreSQL concurrent takers skip each other's rows (``FOR UPDATE
  SKIP LOCKED``); SQLite transactions hold the write lock from their start;
* :func:`finish_sms` records the outcome: ``sent`` or ``failed`` with the reason;
  :func:`requeue_sms` puts back one that never reached the gateway;
* :func:`fail_interrupted`, at start-up, fails what a stopped daemon left ``sending``
  (whether it went out is not known, so it is not sent again).

:func:`record_reply` stores a received text; an opt-out puts the number on the
do-not-call list (:func:`callcenter.storage.dialer.add_dnc`, audited), so no later
broadcast or call reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import case, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from callcenter.sms.compose import Contact
from callcenter.sms.text import is_mobile
from callcenter.storage import models
from callcenter.storage.dialer import (
    IMPORT_CHUNK,
    _audit_entry,
    _chunks,
    _existing,
    _limit,
    _require_campaign,
    _text,
    add_dnc_on_request,
)
from callcenter.storage.records import (
    InvalidFieldError,
    aware_datetime,
    canonical_phone,
    non_negative_int,
    positive_int,
)
from callcenter.storage.repository import ConflictError, NotFoundError

__all__ = [
    "INTERRUPTED_REASON",
    "MARKETING_LOCK_KEY",
    "SKIP_DNC",
    "SKIP_DUPLICATE",
    "SKIP_INVALID",
    "SKIP_RECENT",
    "SMS_STATUSES",
    "TAKE_MAX_EXAMINED",
    "BroadcastCreated",
    "BroadcastProgress",
    "ConflictError",
    "NotFoundError",
    "QueuedSms",
    "SmsRecipient",
    "SmsReply",
    "SmsReport",
    "broadcast_progress",
    "campaign_contacts",
    "create_broadcast",
    "fail_interrupted",
    "finish_sms",
    "list_broadcasts",
    "list_replies",
    "record_reply",
    "requeue_sms",
    "sms_report",
    "take_queued",
]

SMS_STATUSES: Final = ("queued", "sending", "sent", "failed", "skipped")
"""Where a message stands (``sms_messages.status``)."""

SKIP_INVALID: Final = "invalid"
"""How the reason of a message skipped for an invalid number starts (``invalid: <why>``)."""
SKIP_DUPLICATE: Final = "duplicate"
"""The reason of a message skipped because its number came earlier in the broadcast."""
SKIP_DNC: Final = "dnc"
"""The reason of a message skipped because its number is on the do-not-call list."""
SKIP_RECENT: Final = "texted recently"
"""The reason of a marketing message skipped because its number had one within ``min_days_between`` days."""

INTERRUPTED_REASON: Final = "interrupted: the daemon stopped while sending; not known whether it went out"
"""The reason :func:`fail_interrupted` gives the messages it fails."""

TAKE_MAX_EXAMINED: Final = 5000
"""At most this many queued messages are examined per :func:`take_queued`."""

MARKETING_LOCK_KEY: Final = int.from_bytes(b"sms-mktg", "big")
"""The PostgreSQL advisory lock key (``pg_advisory_xact_lock``) that serialises the
creation of marketing broadcasts, so the ``texted recently`` cap sees every marketing text
queued before it."""

_TAKE_BATCH_FACTOR: Final = 4
_LOOKUP_CHUNK: Final = 1000
_PHONE_LENGTH: Final = 32
_REASON_LENGTH: Final = 255


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsRecipient:
    """One message of a broadcast to create: the number, the rendered text and its parts."""

    phone: str
    body: str
    parts: int
    lead_id: int | None = None


@dataclass(frozen=True)
class BroadcastCreated:
    """A new broadcast: its id, how many messages are queued, and the skipped by reason."""

    broadcast_id: int
    queued: int
    skipped: dict[str, int]
    """Reason -> count; invalid numbers are counted together under ``invalid``."""


@dataclass(frozen=True)
class QueuedSms:
    """A message the sender is to send now (it is ``sending``)."""

    message_id: int
    broadcast_id: int
    phone: str
    body: str


@dataclass(frozen=True)
class BroadcastProgress:
    """A broadcast and its messages by status."""

    broadcast_id: int
    name: str
    campaign_id: int | None
    created_by: str
    created_at: datetime
    total: int
    by_status: dict[str, int]
    """Status -> count, in :data:`SMS_STATUSES` order, of the statuses its messages have (none left out
    but those no message has)."""
    skipped: dict[str, int]
    """Skip reason -> count; invalid numbers are counted together under ``invalid``."""


@dataclass(frozen=True)
class SmsReply:
    """A text message received, and whether it put the number on the do-not-call list."""

    reply_id: int
    phone: str
    to_number: str
    body: str
    opt_out: bool
    received_at: datetime
    added_to_dnc: bool


@dataclass(frozen=True)
class SmsReport:
    """The texts of a period: the broadcasts created in it and how their messages stand,
    and the replies received in it."""

    broadcasts: int
    by_status: dict[str, int]
    skipped: dict[str, int]
    replies: int
    opt_outs: int


# --- helpers ---------------------------------------------------------------------------------


def _string(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"must be a string, got {value!r}")
    return value


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidFieldError(field, f"must be True or False, got {value!r}")
    return value


def _skip_group(reason: str) -> str:
    """``invalid: <why>`` counts as ``invalid``; the other reasons as they are."""
    return SKIP_INVALID if reason.startswith(SKIP_INVALID + ":") else reason


def _group_skipped(reasons: Sequence[tuple[str, int]]) -> dict[str, int]:
    grouped: dict[str, int] = {}
    for reason, count in reasons:
        key = _skip_group(reason)
        grouped[key] = grouped.get(key, 0) + int(count)
    return dict(sorted(grouped.items()))


def _lock_marketing(session: Session) -> None:
    """Wait, until this transaction ends, for any other transaction creating a marketing
    broadcast, so that the ``texted recently`` check and the insert of the messages are one
    step.

    Without it two broadcasts created at once on PostgreSQL would each read only committed
    rows, miss the other's messages, and both queue the same number. With the lock, the second
    waits until the first has committed or rolled back; under READ COMMITTED (the default)
    its next statement then sees the first's messages. On SQLite the transaction already
    holds the database write lock (engines from
    :func:`~callcenter.storage.db.create_engine_for` begin with ``BEGIN IMMEDIATE``), so
    writers never overlap and nothing is done here.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MARKETING_LOCK_KEY})


def _texted_since(session: Session, phones: Sequence[str], since: datetime) -> set[str]:
    """The numbers among ``phones`` with a marketing text queued, being sent or sent since ``since``."""
    message, broadcast = models.SmsMessage, models.SmsBroadcast
    found: set[str] = set()
    for chunk in _chunks(phones, _LOOKUP_CHUNK):
        found.update(session.scalars(
            select(message.phone).join(broadcast, broadcast.id == message.broadcast_id)
            .where(message.phone.in_(chunk), message.created_at >= since,
                   message.status.in_(("queued", "sending", "sent")), broadcast.kind == "marketing")))
    return found


def _existing_leads(session: Session, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(ids, _LOOKUP_CHUNK):
        found.update(session.scalars(select(models.Lead.id).where(models.Lead.id.in_(chunk))))
    return found


def _recipient(index: int, value: object) -> SmsRecipient:
    field = f"recipients[{index}]"
    if not isinstance(value, SmsRecipient):
        raise InvalidFieldError(field, f"must be an SmsRecipient, got {type(value).__name__}")
    _string(f"{field}.body", value.body)
    non_negative_int(f"{field}.parts", value.parts)
    if value.lead_id is not None:
        positive_int(f"{field}.lead_id", value.lead_id)
    return value


# --- broadcasts ------------------------------------------------------------------------------


def create_broadcast(
    session: Session,
    *,
    name: str,
    template: str,
    recipients: Sequence[SmsRecipient],
    actor: str,
    now: datetime,
    campaign_id: int | None = None,
    kind: str = "marketing",
    min_days_between: int = 0,
) -> BroadcastCreated:
    """Store a broadcast and one message per recipient, in the order given.

    Each recipient's number is put in canonical form (:func:`canonical_phone`); its
    message is ``queued`` unless the number is invalid (``skipped``, reason ``invalid:
    <why>``, the number kept as given; a landline or service number cannot take a text
    either: :func:`~callcenter.sms.text.is_mobile`), came earlier in this broadcast (``duplicate``) or
    is on the do-not-call list (``dnc``); a ``marketing`` broadcast also skips a number that
    has a marketing text queued or sent in the last ``min_days_between`` days (``texted
    recently``; 0: no cap). A ``notice`` is neither capped nor counted. An ``audit_log`` row (action ``sms.broadcast``,
    subject ``sms_broadcast:<id>``) records the name, the campaign and the counts.
    A ``marketing`` broadcast first waits for any other transaction creating one (on
    PostgreSQL an advisory lock held until this transaction ends; SQLite writers never
    overlap), so the cap sees every marketing text queued before it.
    InvalidFieldError for an empty name, template or recipient list, or a bad recipient
    (``recipients[3].parts: ...``); NotFoundError for an unknown campaign or lead.
    """
    when = aware_datetime("now", now)
    name = _text("name", name, 128)
    template = _string("template", template)
    if not template.strip():
        raise InvalidFieldError("template", "must not be empty")
    actor = _text("actor", actor, 64)
    if isinstance(recipients, str) or not isinstance(recipients, Sequence):
        raise InvalidFieldError("recipients", f"must be a sequence of SmsRecipient, got {type(recipients).__name__}")
    if not recipients:
        raise InvalidFieldError("recipients", "must name at least one recipient")
    given = [_recipient(i, r) for i, r in enumerate(recipients)]
    if campaign_id is not None:
        campaign_id = _require_campaign(session, campaign_id).id
    lead_ids = sorted({r.lead_id for r in given if r.lead_id is not None})
    unknown = sorted(set(lead_ids) - _existing_leads(session, lead_ids))
    if unknown:
        index = next(i for i, r in enumerate(given) if r.lead_id == unknown[0])
        raise NotFoundError(f"recipients[{index}].lead_id: lead {unknown[0]} not found")

    phones: list[tuple[str, str | None]] = []  # (number to store, reason skipped or None)
    for recipient in given:
        try:
            phone = canonical_phone(recipient.phone)
        except InvalidFieldError as exc:
            raw = recipient.phone.strip() if isinstance(recipient.phone, str) else ""
            phones.append((raw[:_PHONE_LENGTH], f"{SKIP_INVALID}: {exc}"[:_REASON_LENGTH]))
            continue
        phones.append((phone, None if is_mobile(phone) else f"{SKIP_INVALID}: {phone} is not a mobile number"))
    if kind not in ("marketing", "notice"):
        raise InvalidFieldError("kind", f"expected marketing or notice, got {kind!r}")
    min_days_between = non_negative_int("min_days_between", min_days_between)
    valid = sorted({p for p, why in phones if why is None})
    if kind == "marketing":
        _lock_marketing(session)  # before the cap's read: held until the messages are committed
    dnc = _existing(session, models.DncNumber.phone, valid)
    recent = _texted_since(session, valid, when - timedelta(days=min_days_between)) \
        if kind == "marketing" and min_days_between else set()
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for recipient, (phone, why) in zip(given, phones, strict=True):
        if why is None:
            if phone in seen:
                why = SKIP_DUPLICATE
            elif phone in dnc:
                why = SKIP_DNC
            elif phone in recent:
                why = SKIP_RECENT
            seen.add(phone)
        rows.append({"phone": phone, "lead_id": recipient.lead_id, "body": recipient.body,
                     "parts": recipient.parts, "status": "queued" if why is None else "skipped",
                     "reason": why or ""})

    broadcast = models.SmsBroadcast(name=name, template=template, campaign_id=campaign_id, created_by=actor,
                                    created_at=when, total=len(rows), kind=kind)
    session.add(broadcast)
    session.flush()
    shared = {"broadcast_id": broadcast.id, "created_at": when, "updated_at": when}
    bulk_insert = insert(models.SmsMessage).values(**shared)
    for chunk in _chunks(rows, IMPORT_CHUNK):
        session.execute(bulk_insert, list(chunk))
    queued = sum(1 for row in rows if row["status"] == "queued")
    skipped = _group_skipped([(row["reason"], 1) for row in rows if row["status"] == "skipped"])
    session.add(_audit_entry("sms.broadcast", f"sms_broadcast:{broadcast.id}", actor, when, {
        "broadcast_id": broadcast.id, "name": name, "campaign_id": campaign_id, "total": len(rows),
        "queued": queued, "skipped": skipped,
    }))
    session.flush()
    return BroadcastCreated(broadcast_id=broadcast.id, queued=queued, skipped=skipped)


def campaign_contacts(
    session: Session, campaign_id: int, *, team: str | None = None, agent_id: str | None = None
) -> list[Contact]:
    """The campaign's leads in id order, optionally only those ``team`` / ``agent_id`` holds.

    Leads closed as do-not-call (final outcome ``dnc``) are left out; numbers put on the
    list since are skipped by :func:`create_broadcast`. NotFoundError for an unknown campaign.
    """
    lead = models.Lead
    campaign = _require_campaign(session, campaign_id)
    stmt = select(lead).where(lead.campaign_id == campaign.id,
                              or_(lead.final_outcome.is_(None), lead.final_outcome != "dnc"))
    if team is not None:
        stmt = stmt.where(lead.team == _text("team", team, 64))
    if agent_id is not None:
        stmt = stmt.where(lead.agent_id == _text("agent_id", agent_id, 64))
    return [Contact(lead_id=row.id, phone=row.phone, name=row.name, extra=dict(row.extra or {}))
            for row in session.scalars(stmt.order_by(lead.id))]


def _tally(counts: Iterable[tuple[str, str, int]]) -> tuple[dict[str, int], dict[str, int]]:
    """From (status, reason, count) rows: the messages by status, in :data:`SMS_STATUSES` order
    (only statuses some message has), and the skipped ones by reason (see :func:`_group_skipped`)."""
    by_status: dict[str, int] = {}
    reasons: list[tuple[str, int]] = []
    for status, reason, count in counts:
        by_status[status] = by_status.get(status, 0) + int(count)
        if status == "skipped":
            reasons.append((reason, int(count)))
    return {s: by_status[s] for s in SMS_STATUSES if by_status.get(s)}, _group_skipped(reasons)


def _progress_of(session: Session, rows: Sequence[models.SmsBroadcast]) -> list[BroadcastProgress]:
    """Each broadcast with its messages by status and skip reason (one query for all)."""
    message = models.SmsMessage
    counts: dict[int, list[tuple[str, str, int]]] = {row.id: [] for row in rows}
    if counts:
        for broadcast_id, status, reason, count in session.execute(
            select(message.broadcast_id, message.status, message.reason, func.count())
            .where(message.broadcast_id.in_(list(counts)))
            .group_by(message.broadcast_id, message.status, message.reason)
        ):
            counts[broadcast_id].append((status, reason, int(count)))
    progress = []
    for row in rows:
        by_status, skipped = _tally(counts[row.id])
        progress.append(BroadcastProgress(
            broadcast_id=row.id, name=row.name, campaign_id=row.campaign_id, created_by=row.created_by,
            created_at=row.created_at, total=row.total, by_status=by_status, skipped=skipped))
    return progress


def broadcast_progress(session: Session, broadcast_id: int) -> BroadcastProgress:
    """The broadcast and its messages by status and skip reason; NotFoundError if unknown."""
    row = session.get(models.SmsBroadcast, positive_int("broadcast_id", broadcast_id))
    if row is None:
        raise NotFoundError(f"broadcast_id: SMS broadcast {broadcast_id} not found")
    (progress,) = _progress_of(session, [row])
    return progress


def list_broadcasts(session: Session, *, limit: int = 20) -> list[BroadcastProgress]:
    """The newest broadcasts first, each with its progress."""
    broadcast = models.SmsBroadcast
    rows = list(session.scalars(
        select(broadcast).order_by(broadcast.created_at.desc(), broadcast.id.desc()).limit(_limit(limit))))
    return _progress_of(session, rows)


# --- the sender's queue ----------------------------------------------------------------------


def _lock_queued(session: Session, ids: Sequence[int]) -> list[models.SmsMessage]:
    """Lock the messages ``ids`` that are still queued, oldest first.

    PostgreSQL skips rows another transaction holds and checks the status on the newest
    committed version, so a message taken since the candidates were read drops out here.
    """
    if not ids:
        return []
    message = models.SmsMessage
    return list(session.scalars(
        select(message).where(message.id.in_(ids), message.status == "queued")
        .order_by(message.id).with_for_update(skip_locked=True)))


def take_queued(session: Session, *, limit: int, now: datetime) -> list[QueuedSms]:
    """Take up to ``limit`` queued messages to send now, oldest first over all broadcasts.

    Each becomes ``sending``; one whose number joined the do-not-call list since its
    broadcast was created becomes ``skipped`` (reason ``dnc``) and is not returned.
    Candidates are read without locks, a few times ``limit`` at a time, until ``limit``
    are taken, none remain or :data:`TAKE_MAX_EXAMINED` were examined; only the rows
    changed are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so concurrent takers
    share the queue and never take the same message.
    """
    when = aware_datetime("now", now)
    limit = _limit(limit)
    message = models.SmsMessage
    batch = limit * _TAKE_BATCH_FACTOR
    taken: list[models.SmsMessage] = []
    examined = 0
    after = 0
    while len(taken) < limit and examined < TAKE_MAX_EXAMINED:
        candidates = session.execute(
            select(message.id, message.phone).where(message.status == "queued", message.id > after)
            .order_by(message.id).limit(batch)
        ).all()
        if not candidates:
            break
        examined += len(candidates)
        after = candidates[-1].id
        dnc = _existing(session, models.DncNumber.phone, sorted({c.phone for c in candidates}))
        for row in _lock_queued(session, [c.id for c in candidates if c.phone in dnc]):
            row.status, row.reason, row.updated_at = "skipped", SKIP_DNC, when
        sendable = [c.id for c in candidates if c.phone not in dnc]
        while sendable and len(taken) < limit:
            wanted, sendable = sendable[: limit - len(taken)], sendable[limit - len(taken) :]
            for row in _lock_queued(session, wanted):
                row.status, row.updated_at = "sending", when
                taken.append(row)
        session.flush()
        if len(candidates) < batch:
            break
    return [QueuedSms(message_id=row.id, broadcast_id=row.broadcast_id, phone=row.phone, body=row.body)
            for row in taken]


def _sending(session: Session, message_id: int) -> models.SmsMessage:
    """The message ``message_id``, locked; NotFoundError, or ConflictError unless it is ``sending``."""
    row = session.scalar(select(models.SmsMessage)
                         .where(models.SmsMessage.id == positive_int("message_id", message_id)).with_for_update())
    if row is None:
        raise NotFoundError(f"message_id: SMS message {message_id} not found")
    if row.status != "sending":
        raise ConflictError(f"message_id: SMS message {message_id} is {row.status}, not sending")
    return row


def finish_sms(session: Session, message_id: int, *, ok: bool, reason: str = "", now: datetime) -> None:
    """Record how sending message ``message_id`` went: ``sent`` (at ``now``) or ``failed``.

    ``reason`` (cut to 255 characters) says why it failed, or anything worth keeping about
    a message sent. NotFoundError for an unknown message; ConflictError unless it is
    ``sending`` (a message is finished once, after :func:`take_queued`).
    """
    when = aware_datetime("now", now)
    ok = _flag("ok", ok)
    reason = _string("reason", reason)[:_REASON_LENGTH]
    row = _sending(session, message_id)
    row.status = "sent" if ok else "failed"
    row.reason = reason
    row.sent_at = when if ok else None
    row.updated_at = when
    session.flush()


def requeue_sms(session: Session, message_id: int, *, now: datetime) -> None:
    """Put a ``sending`` message back in the queue: it never reached the gateway (Asterisk
    was not connected), so it is sent on a later :func:`take_queued` (keeping its place:
    the oldest first). NotFoundError for an unknown message; ConflictError unless it is
    ``sending``."""
    when = aware_datetime("now", now)
    row = _sending(session, message_id)
    row.status, row.updated_at = "queued", when
    session.flush()


def fail_interrupted(session: Session, *, now: datetime) -> int:
    """Fail every message left ``sending`` (the daemon stopped between taking and finishing
    it), with :data:`INTERRUPTED_REASON`: whether it went out is not known, so it is not
    sent again. For the sender's start-up; returns how many were failed."""
    when = aware_datetime("now", now)
    result = session.execute(
        update(models.SmsMessage).where(models.SmsMessage.status == "sending")
        .values(status="failed", reason=INTERRUPTED_REASON, updated_at=when)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- replies ---------------------------------------------------------------------------------


def _reply(row: models.SmsReply) -> SmsReply:
    return SmsReply(reply_id=row.id, phone=row.phone, to_number=row.to_number, body=row.body,
                    opt_out=row.opt_out, received_at=row.received_at, added_to_dnc=row.added_to_dnc)


def record_reply(session: Session, *, phone: str, to_number: str, body: str, opt_out: bool,
                 now: datetime) -> SmsReply:
    """Store a text received from ``phone`` on ``to_number``; an opt-out goes on the DNC list.

    ``phone`` is kept in canonical form when it is a valid number, else as given (cut to
    32 characters; such a number cannot go on the do-not-call list). With ``opt_out`` a
    valid number is added to the do-not-call list (source ``sms``) and, when it was not on
    it, an ``audit_log`` row (action ``dnc.add``) says so; ``added_to_dnc`` tells which.
    """
    when = aware_datetime("now", now)
    given = _string("phone", phone).strip()
    if not given:
        raise InvalidFieldError("phone", "must not be empty")
    to_number = _string("to_number", to_number).strip()[:_PHONE_LENGTH]
    body = _string("body", body)
    opt_out = _flag("opt_out", opt_out)
    try:
        number: str | None = canonical_phone(given)
    except InvalidFieldError:
        number = None
    row = models.SmsReply(phone=number or given[:_PHONE_LENGTH], to_number=to_number, body=body,
                          opt_out=opt_out, added_to_dnc=False, received_at=when)
    session.add(row)
    session.flush()
    if opt_out and number is not None:
        row.added_to_dnc = add_dnc_on_request(
            session, number, source="sms", actor="sms", reason=f"SMS reply {body!r}"[:_REASON_LENGTH], now=when,
            detail={"how": "SMS reply asking to opt out", "reply_id": row.id})
        session.flush()
    return _reply(row)


def list_replies(session: Session, *, limit: int = 50) -> list[SmsReply]:
    """The newest replies first."""
    reply = models.SmsReply
    return [_reply(row) for row in session.scalars(
        select(reply).order_by(reply.received_at.desc(), reply.id.desc()).limit(_limit(limit)))]


def sms_report(session: Session, *, since: datetime, until: datetime) -> SmsReport:
    """The broadcasts created in ``[since, until)`` with their messages by status and skip
    reason, and the replies received then (opt-outs counted apart)."""
    start, end = aware_datetime("since", since), aware_datetime("until", until)
    broadcast, message, reply = models.SmsBroadcast, models.SmsMessage, models.SmsReply
    in_period = select(broadcast.id).where(broadcast.created_at >= start, broadcast.created_at < end)
    count = session.scalar(select(func.count()).select_from(in_period.subquery())) or 0
    by_status, skipped = _tally(session.execute(
        select(message.status, message.reason, func.count()).where(message.broadcast_id.in_(in_period))
        .group_by(message.status, message.reason)))
    replies = session.execute(
        select(func.count(), func.coalesce(func.sum(case((reply.opt_out, 1), else_=0)), 0))
        .where(reply.received_at >= start, reply.received_at < end)).one()
    return SmsReport(broadcasts=int(count), by_status=by_status, skipped=skipped, replies=int(replies[0]),
                     opt_outs=int(replies[1]))
