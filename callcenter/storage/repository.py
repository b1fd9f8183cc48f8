"""Repository: the only code that reads and writes the call center's tables.

Blocking functions take a :class:`~sqlalchemy.orm.Session` as first argument, flush but
never commit (the caller owns the transaction), and return the frozen dataclasses of
:mod:`callcenter.storage.records`, never ORM rows. Lookups return None when nothing
matches; updates of a missing row raise :class:`NotFoundError`; a write that would break
a unique or foreign key rule raises :class:`ConflictError`; invalid input raises
ValueError naming the field.

:class:`Repository` is the reactor-side facade: each method runs one blocking function
in its own transaction on a dedicated :class:`~twisted.python.threadpool.ThreadPool` and
returns a Deferred, so no SQL ever runs on the reactor thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from callcenter.commission import Sale
from callcenter.fax import FaxRecord, FaxResult
from callcenter.qa import QaCandidate, QaReview, QaReviewRecord, call_parts
from callcenter.reports import (
    FCR_DAYS,
    CallFacts,
    ReportLine,
    ReportPeriod,
    build_report,
)
from callcenter.state.queues import QueueStay
from callcenter.storage import models
from callcenter.storage.db import SQLITE_BEGIN_IMMEDIATE, make_session_factory
from callcenter.storage.records import (
    CallRecord,
    CallRecordUpdate,
    Customer,
    CustomerUpdate,
    InvalidFieldError,
    NewCallRecord,
    NewCustomer,
    NewRecording,
    Recording,
    _required_text,
    aware_datetime,
    canonical_phone,
    changed_fields,
    dialable,
    non_negative_int,
    positive_int,
)
from callcenter.storage.tickets import (
    format_ticket_number,
    parse_ticket_number,
    ticket_day_prefix,
)

__all__ = [
    "ConflictError",
    "NotFoundError",
    "Repository",
    "StorageError",
    "add_found_faxes",
    "add_outgoing_fax",
    "add_recording",
    "allocate_ticket_number",
    "call_records_between",
    "call_report",
    "create_call_record",
    "create_customer",
    "file_fax",
    "filed_fax_ids",
    "find_customer_by_phone",
    "follow_ups_due",
    "get_call_record",
    "get_call_record_by_ticket",
    "get_call_record_by_uniqueid",
    "get_customer",
    "give_up_fax",
    "list_faxes",
    "list_qa_reviews",
    "list_recent_call_records",
    "list_recordings_for_call",
    "list_recordings_older_than",
    "make_threadpool",
    "mark_recording_purged",
    "qa_candidates",
    "queue_stays",
    "report_facts",
    "report_sales",
    "save_qa_review",
    "sending_faxes",
    "update_call_record",
    "update_customer",
]

_P = ParamSpec("_P")
_REPORT_BATCH = 2000  # rows fetched at a time when a report streams the call records
_R = TypeVar("_R")

MAX_LIST_LIMIT = 1000
"""Upper bound of ``limit`` in the list functions."""


class StorageError(Exception):
    """Base class of the storage layer's own errors."""


class NotFoundError(StorageError, LookupError):
    """The row to update does not exist."""


class ConflictError(StorageError, ValueError):
    """The write would break a unique or foreign key rule (message names the field)."""


# --- ORM row -> dataclass -------------------------------------------------------------------


def _customer(row: models.Customer) -> Customer:
    return Customer(
        id=row.id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        vip=row.vip,
        notes=row.notes,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _call_record(row: models.CallRecord) -> CallRecord:
    return CallRecord(
        id=row.id,
        ticket_number=row.ticket_number,
        started_at=row.started_at,
        direction=row.direction,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        phone=row.phone,
        issue_type=row.issue_type,
        description=row.description,
        outcome=row.outcome,
        follow_up_at=row.follow_up_at,
        csat=row.csat,
        agent_id=row.agent_id,
        queue=row.queue,
        uniqueid=row.uniqueid,
        linkedid=row.linkedid,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
        queue_result=row.queue_result,
        ivr_path=tuple(row.ivr_path),
        created_at=row.created_at,
        sale_amount=None if row.sale_cents is None else _yuan(row.sale_cents),
        transfers=tuple(row.transfers or ()),
    )


def _cents(amount: Decimal | None) -> int | None:
    """Yuan (validated: two decimals at most) as whole fen, for ``sale_cents``."""
    return None if amount is None else int(amount.scaleb(2))


def _yuan(cents: int) -> Decimal:
    """Whole fen (``sale_cents``) as yuan with two decimals."""
    return Decimal(cents).scaleb(-2)


def _recording(row: models.Recording) -> Recording:
    return Recording(
        id=row.id,
        call_record_id=row.call_record_id,
        agent_id=row.agent_id,
        path=row.path,
        started_at=row.started_at,
        duration_seconds=row.duration_seconds,
        size_bytes=row.size_bytes,
        format=row.format,
        purged_at=row.purged_at,
        pauses=tuple((float(start), float(end)) for start, end in row.pauses or ()),
    )


def _flush(session: Session, conflict: str) -> None:
    """Flush inside a savepoint; a constraint violation becomes ConflictError(conflict).

    The savepoint keeps the caller's transaction usable after the error.
    """
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(conflict) from exc


def _limit(limit: int) -> int:
    limit = positive_int("limit", limit)
    if limit > MAX_LIST_LIMIT:
        raise ValueError(f"limit: must be at most {MAX_LIST_LIMIT}, got {limit}")
    return limit


# --- customers ------------------------------------------------------------------------------


def _check_phone_free(
    session: Session, phone: str, customer_id: int | None = None
) -> None:
    owner = session.scalar(
        select(models.Customer.id).where(models.Customer.phone == phone)
    )
    if owner is not None and owner != customer_id:
        raise ConflictError(f"phone: customer {owner} already has {phone}")


def create_customer(session: Session, new: NewCustomer) -> Customer:
    """Create a customer; ConflictError if another customer has the same phone."""
    _check_phone_free(session, new.phone)
    row = models.Customer(
        name=new.name, phone=new.phone, email=new.email, vip=new.vip, notes=new.notes
    )
    session.add(row)
    _flush(session, f"phone: another customer already has {new.phone}")
    return _customer(row)


def update_customer(
    session: Session, customer_id: int, changes: CustomerUpdate, *, vip_number_locked: bool = False
) -> Customer:
    """Change the given fields of customer ``customer_id``; NotFoundError if missing.

    ``vip_number_locked`` (an agent writing): a VIP customer's number is not changed
    (ConflictError): the VIP greeting and place in the queue would go to another line, and
    marking VIPs is for team leads and managers.
    """
    row = session.get(models.Customer, positive_int("customer_id", customer_id))
    if row is None:
        raise NotFoundError(f"customer_id: customer {customer_id} not found")
    values = changed_fields(changes)
    if "phone" in values:
        assert isinstance(values["phone"], str)
        if vip_number_locked and row.vip and values["phone"] != row.phone:
            raise ConflictError(f"phone: customer {customer_id} is a VIP: only a team lead or a manager changes "
                                "a VIP's number")
        _check_phone_free(session, values["phone"], customer_id)
    for name, value in values.items():
        setattr(row, name, value)
    _flush(session, f"phone: another customer already has {row.phone}")
    return _customer(row)


def get_customer(session: Session, customer_id: int) -> Customer | None:
    """The customer with this id, or None."""
    row = session.get(models.Customer, positive_int("customer_id", customer_id))
    return None if row is None else _customer(row)


def find_customer_by_phone(session: Session, phone: str) -> Customer | None:
    """The customer with this phone number (in :func:`canonical_phone` form first), or None."""
    number = canonical_phone(phone)
    row = session.scalar(select(models.Customer).where(models.Customer.phone == number))
    return None if row is None else _customer(row)


# --- call records ---------------------------------------------------------------------------


def _advisory_lock_key(day_prefix: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` of one site and day."""
    digest = hashlib.blake2b(
        f"callcenter.ticket:{day_prefix}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def allocate_ticket_number(session: Session, site_prefix: str, day: date) -> str:
    """Reserve the next ticket number of ``site_prefix`` on ``day`` for this transaction.

    The number stays reserved until the transaction ends; insert the call record in the
    same transaction. Concurrent transactions get distinct numbers:

    * PostgreSQL: a transaction-scoped advisory lock per site and day serialises
      allocators; under READ COMMITTED (the default) the next statement sees every
      number committed before the lock was granted.
    * SQLite: the transaction already holds the database write lock (engines from
      :func:`~callcenter.storage.db.create_engine_for` begin with ``BEGIN IMMEDIATE``).
    """
    day_prefix = ticket_day_prefix(site_prefix, day)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": _advisory_lock_key(day_prefix)},
        )
    elif connection.dialect.name == "sqlite" and not connection.info.get(
        SQLITE_BEGIN_IMMEDIATE
    ):
        raise StorageError(
            "ticket numbers on SQLite need an engine from create_engine_for()"
            " (transactions must start with BEGIN IMMEDIATE)"
        )
    ticket = models.CallRecord.ticket_number
    last = session.scalar(
        select(ticket)
        # The range lets the unique index serve the lookup; "Z" sorts after any digit.
        .where(
            ticket >= day_prefix,
            ticket < day_prefix + "Z",
            ticket.like(day_prefix + "%"),
        )
        # The sequence grows past 999: a longer number is a later one.
        .order_by(func.length(ticket).desc(), ticket.desc())
        .limit(1)
    )
    sequence = 1 if last is None else parse_ticket_number(last).sequence + 1
    return format_ticket_number(site_prefix, day, sequence)


def create_call_record(
    session: Session,
    new: NewCallRecord,
    *,
    site_prefix: str,
    ticket_day: date | None = None,
) -> CallRecord:
    """Create a call record with the next ticket number of ``site_prefix``.

    ``ticket_day`` is the day in the ticket; it defaults to the UTC date of
    ``new.started_at`` (pass the site's local date to number by local days). The number is
    stored in its canonical spelling (one that is no number, ``anonymous``, as given), and a
    record naming no customer is linked to the CRM customer with that number.
    """
    if (
        new.customer_id is not None
        and session.get(models.Customer, new.customer_id) is None
    ):
        raise ConflictError(f"customer_id: customer {new.customer_id} does not exist")
    phone = new.phone
    if phone is not None and dialable(phone):
        phone = canonical_phone(phone)  # one spelling: the number's earlier calls, follow-ups, last agent
    customer_id = new.customer_id
    if customer_id is None and phone is not None:
        # the CRM customer with this number (a dialer's or an agent's own call, a hotline call
        # whose lookup was given up): their screen pop, their history
        customer_id = session.scalar(select(models.Customer.id).where(models.Customer.phone == phone))
    day = (
        ticket_day if ticket_day is not None else new.started_at.astimezone(UTC).date()
    )
    ticket_number = allocate_ticket_number(session, site_prefix, day)
    row = models.CallRecord(
        ticket_number=ticket_number,
        started_at=new.started_at,
        direction=new.direction,
        customer_id=customer_id,
        customer_name=new.customer_name,
        phone=phone,
        issue_type=new.issue_type,
        description=new.description,
        outcome=new.outcome,
        follow_up_at=new.follow_up_at,
        csat=new.csat,
        agent_id=new.agent_id,
        queue=new.queue,
        uniqueid=new.uniqueid,
        linkedid=new.linkedid,
        answered_at=new.answered_at,
        ended_at=new.ended_at,
        wait_seconds=new.wait_seconds,
        talk_seconds=new.talk_seconds,
        queue_result=new.queue_result,
        ivr_path=list(new.ivr_path),
        sale_cents=_cents(new.sale_amount),
        sale_agent_id=new.agent_id if new.sale_amount is not None else None,
        transfers=list(new.transfers),
    )
    session.add(row)
    _flush(session, f"ticket_number: {ticket_number} is already taken")
    return _call_record(row)


def update_call_record(
    session: Session, call_record_id: int, changes: CallRecordUpdate
) -> CallRecord:
    """Change the given fields (outcome, csat, description...); NotFoundError if missing."""
    row = session.get(models.CallRecord, positive_int("call_record_id", call_record_id))
    if row is None:
        raise NotFoundError(f"call_record_id: call record {call_record_id} not found")
    values = changed_fields(changes)
    customer_id = values.get("customer_id")
    if customer_id is not None and session.get(models.Customer, customer_id) is None:
        raise ConflictError(f"customer_id: customer {customer_id} does not exist")
    fallback = values.pop("outcome_if_none", None)
    if fallback is not None and row.outcome is None and "outcome" not in values:
        row.outcome = str(fallback)
    if "sale_amount" in values:
        sale = values.pop("sale_amount")
        cents = _cents(sale if isinstance(sale, Decimal) else None)  # validated: Decimal or None
        # the seller named, else the call's agent now: agent_id becomes its last agent when it ends
        seller = values.pop("sale_agent_id", None) or values.get("agent_id") or row.agent_id
        team = values.pop("sale_team", None)
        if cents is None or cents != row.sale_cents or row.sale_agent_id is None:
            # a new sale (the same amount written again, as a form sent back with it does,
            # keeps its seller and team: they may have moved since)
            row.sale_cents = cents
            row.sale_agent_id = seller if isinstance(seller, str) and cents is not None else None
            row.sale_team = team if isinstance(team, str) and team and cents is not None else None
    for name, value in values.items():
        setattr(row, name, list(value) if name in ("ivr_path", "transfers") else value)  # type: ignore[call-overload]
    _flush(session, f"call record {call_record_id}: update rejected by the database")
    return _call_record(row)


def open_call_record_of(session: Session, linkedid: str) -> CallRecord | None:
    """The record of call ``linkedid`` not ended yet (the newest, were there two), or None."""
    record = models.CallRecord
    row = session.scalars(select(record).where(record.linkedid == linkedid, record.ended_at.is_(None))
                          .order_by(record.id.desc()).limit(1)).first()
    return None if row is None else _call_record(row)


def get_call_record(session: Session, call_record_id: int) -> CallRecord | None:
    """The call record with this id, or None."""
    row = session.get(models.CallRecord, positive_int("call_record_id", call_record_id))
    return None if row is None else _call_record(row)


def get_call_record_by_ticket(
    session: Session, ticket_number: str
) -> CallRecord | None:
    """The call record with this ticket number, or None (ValueError if malformed)."""
    parse_ticket_number(ticket_number)
    row = session.scalar(
        select(models.CallRecord).where(
            models.CallRecord.ticket_number == ticket_number
        )
    )
    return None if row is None else _call_record(row)


def get_call_record_by_uniqueid(session: Session, uniqueid: str) -> CallRecord | None:
    """The latest call record of the Asterisk channel ``uniqueid``, or None."""
    row = session.scalar(
        select(models.CallRecord)
        .where(models.CallRecord.uniqueid == uniqueid)
        .order_by(models.CallRecord.started_at.desc(), models.CallRecord.id.desc())
        .limit(1)
    )
    return None if row is None else _call_record(row)


def list_recent_call_records(
    session: Session,
    *,
    limit: int = 50,
    agent_id: str | None = None,
    queue: str | None = None,
    customer_id: int | None = None,
) -> list[CallRecord]:
    """The newest call records first, optionally of one agent, queue or customer."""
    stmt = select(models.CallRecord)
    if agent_id is not None:
        stmt = stmt.where(models.CallRecord.agent_id == agent_id)
    if queue is not None:
        stmt = stmt.where(models.CallRecord.queue == queue)
    if customer_id is not None:
        stmt = stmt.where(models.CallRecord.customer_id == customer_id)
    stmt = stmt.order_by(
        models.CallRecord.started_at.desc(), models.CallRecord.id.desc()
    )
    return [_call_record(row) for row in session.scalars(stmt.limit(_limit(limit)))]


FOLLOW_UP_DAYS = 30
"""How far back :func:`follow_ups_due` looks: a follow-up overdue by more is not listed."""


def follow_ups_due(session: Session, agent_id: str, *, until: datetime, limit: int = 50) -> list[CallRecord]:
    """The agent's calls whose follow-up time is at or before ``until`` (and at most
    :data:`FOLLOW_UP_DAYS` before it), earliest due first, and still to do: no later call
    with the same number has a record yet (calling the customer back, or the customer
    calling in, is what closes a follow-up)."""
    until = aware_datetime("until", until)
    record = models.CallRecord
    later = aliased(models.CallRecord)
    newer_call = (select(later.id).where(later.phone == record.phone, later.started_at > record.started_at)
                  .exists())
    stmt = (select(record)
            .where(record.agent_id == _required_text("agent_id", agent_id, 64), record.follow_up_at.is_not(None),
                   record.follow_up_at <= until, record.follow_up_at > until - timedelta(days=FOLLOW_UP_DAYS),
                   ~newer_call)
            .order_by(record.follow_up_at, record.id))
    return [_call_record(row) for row in session.scalars(stmt.limit(_limit(limit)))]


def queue_stays(session: Session, *, since: datetime, ended_before: datetime) -> list[QueueStay]:
    """The queue stays of the call records started at or after ``since`` and ended before
    ``ended_before`` (those with a ``queue_result``), oldest first: the wallboard's history."""
    record = models.CallRecord
    stmt = (select(record.queue, record.queue_result, record.wait_seconds, record.talk_seconds)
            .where(record.queue_result.is_not(None), record.queue.is_not(None),
                   record.started_at >= aware_datetime("since", since),
                   record.ended_at < aware_datetime("ended_before", ended_before))
            .order_by(record.started_at, record.id))
    return [QueueStay(queue or "", result or "", float(wait or 0),  # both NOT NULL by the WHERE
                      float(talk) if result == "answered" and talk is not None else None)
            for queue, result, wait, talk in session.execute(stmt)]


def call_records_between(session: Session, *, since: datetime, until: datetime,
                         agents: Collection[str] | None = None) -> list[CallRecord]:
    """The call records started in [since, until), oldest first; with ``agents``, only those
    agents' calls (a team lead's log of their team)."""
    return list(iter_call_records_between(session, since=since, until=until, agents=agents))


def iter_call_records_between(session: Session, *, since: datetime, until: datetime,
                              agents: Collection[str] | None = None) -> Iterator[CallRecord]:
    """:func:`call_records_between` streamed from SQL in batches (a month is ~150k records)."""
    record = models.CallRecord
    stmt = (select(record).where(record.started_at >= aware_datetime("since", since),
                                 record.started_at < aware_datetime("until", until))
            .order_by(record.started_at, record.id).execution_options(yield_per=_REPORT_BATCH))
    if agents is not None:
        stmt = stmt.where(record.agent_id.in_(sorted(agents)))
    for row in session.scalars(stmt):
        yield _call_record(row)


def report_facts(session: Session, *, since: datetime, until: datetime) -> Iterator[CallFacts]:
    """The facts of the records started in [since, until), streamed in batches, oldest first."""
    record, customer = models.CallRecord, models.Customer
    # the caller: the record's CRM customer, else the customer whose number it is (a call before
    # the number was added to the CRM is the same caller as the calls after), else the number
    stmt = (select(record.started_at, record.direction, record.queue, record.queue_result, record.agent_id,
                   func.coalesce(record.customer_id, customer.id).label("customer_id"), record.phone,
                   record.wait_seconds, record.talk_seconds, record.csat, record.transfers)
            .outerjoin(customer, customer.phone == record.phone)  # unique: one customer a number at most
            .where(record.started_at >= aware_datetime("since", since),
                   record.started_at < aware_datetime("until", until))
            .order_by(record.started_at, record.id)
            .execution_options(yield_per=_REPORT_BATCH))
    for row in session.execute(stmt):
        yield CallFacts(started_at=row.started_at, direction=row.direction, queue=row.queue,
                        queue_result=row.queue_result, agent_id=row.agent_id,
                        caller=f"customer:{row.customer_id}" if row.customer_id is not None else _line(row.phone),
                        wait_seconds=row.wait_seconds, talk_seconds=row.talk_seconds, csat=row.csat,
                        transferred=bool(row.transfers))


def call_report(session: Session, report_period: ReportPeriod, *, by: str, service_level_seconds: Mapping[str, int],
                wrapup_seconds: Mapping[str, int], now: datetime, fcr_days: int = FCR_DAYS) -> list[ReportLine]:
    """:func:`callcenter.reports.build_report` over the period's records and the FCR window after
    it, streamed from SQL here, in the repository's thread: memory grows with the inbound calls
    only, and the report is never built on the reactor."""
    facts = report_facts(session, since=report_period.start, until=report_period.end + timedelta(days=fcr_days))
    return build_report(facts, report_period, by=by, service_level_seconds=service_level_seconds,
                        wrapup_seconds=wrapup_seconds, now=now, fcr_days=fcr_days)


def report_sales(session: Session, *, since: datetime, until: datetime) -> list[Sale]:
    """The sales recorded on the calls started in [since, until), oldest first."""
    record = models.CallRecord
    stmt = (select(func.coalesce(record.sale_agent_id, record.agent_id), record.sale_cents, record.sale_team)
            .where(record.sale_cents > 0, record.started_at >= aware_datetime("since", since),
                   record.started_at < aware_datetime("until", until))
            .order_by(record.started_at, record.id))
    return [Sale(agent_id, _yuan(cents or 0), team)  # > 0 by the WHERE
            for agent_id, cents, team in session.execute(stmt)]


def qa_candidates(session: Session, *, since: datetime, until: datetime) -> list[QaCandidate]:
    """The recorded parts of the calls started in [since, until) that an agent took (talk time
    above 0), reviewed or not, oldest call first: what QA samples from.

    A part is an agent's first recording of the call still on disk (:func:`callcenter.qa.call_parts`:
    a call handed on has one for each agent), labelled with that agent and who has reviewed it."""
    record, recording, review = models.CallRecord, models.Recording, models.QaReview
    window = (record.started_at >= aware_datetime("since", since), record.started_at < aware_datetime("until", until))
    stmt = (select(record.id, record.ticket_number, record.agent_id, record.started_at, record.talk_seconds, recording)
            .join(recording, recording.call_record_id == record.id)
            .where(record.agent_id.is_not(None), record.talk_seconds > 0, recording.purged_at.is_(None), *window)
            .order_by(record.started_at, record.id, recording.started_at, recording.id))
    reviewers: dict[tuple[int, str], list[str]] = {}
    for call_id, agent, reviewer in session.execute(
            select(review.call_record_id, review.agent_id, review.reviewer)
            .join(record, record.id == review.call_record_id).where(*window).order_by(review.reviewer)):
        reviewers.setdefault((call_id, agent), []).append(reviewer)
    candidates = []
    for _, rows in groupby(session.execute(stmt), key=lambda row: row.id):
        of_call = list(rows)
        call = of_call[0]
        for part in call_parts([_recording(row.Recording) for row in of_call], call.agent_id):
            agent = part.agent_id or ""  # call_parts names every part's agent
            candidates.append(QaCandidate(
                ticket=call.ticket_number, agent_id=agent, started_at=call.started_at,
                talk_seconds=call.talk_seconds, recording=part.path, pauses=part.pauses, recording_id=part.id,
                reviewed_by=tuple(reviewers.get((call.id, agent), ()))))
    return candidates


def _qa_record(row: models.QaReview, call: models.CallRecord) -> QaReviewRecord:
    return QaReviewRecord(ticket=call.ticket_number, agent_id=row.agent_id, call_started_at=call.started_at,
                          reviewer=row.reviewer, ratings=dict(row.ratings), score=row.score, failed=row.failed,
                          comment=row.comment, reviewed_at=row.reviewed_at, recording_id=row.recording_id)


def save_qa_review(session: Session, call_record_id: int, review: QaReview, *, now: datetime) -> QaReviewRecord:
    """Store ``review`` of a part of the call record: the agent's whose recording is
    ``review.recording_id`` (the recording's agent, else the call's), or without one the
    call's agent's; it replaces the reviewer's earlier review of that part. NotFoundError for
    an unknown record or a recording not of this call, ConflictError for a call no agent took.
    Who may score which part is the caller's check (:func:`callcenter.qa.review_part`)."""
    call = session.get(models.CallRecord, positive_int("call_record_id", call_record_id))
    if call is None:
        raise NotFoundError(f"call_record_id: call record {call_record_id} not found")
    if call.agent_id is None:
        raise ConflictError(f"ticket: no agent took call {call.ticket_number}: there is nothing to score")
    ticket = call.ticket_number
    agent = call.agent_id
    if review.recording_id is not None:
        heard = session.get(models.Recording, positive_int("recording", review.recording_id))
        if heard is None or heard.call_record_id != call.id:
            raise NotFoundError(f"recording: call {ticket} has no recording {review.recording_id}")
        agent = heard.agent_id or call.agent_id
    row = session.scalar(select(models.QaReview).where(models.QaReview.call_record_id == call.id,
                                                       models.QaReview.agent_id == agent,
                                                       models.QaReview.reviewer == review.reviewer))
    if row is None:
        row = models.QaReview(call_record_id=call.id, agent_id=agent, reviewer=review.reviewer)
        session.add(row)
    row.recording_id = review.recording_id
    row.ratings = dict(review.ratings)
    row.score = review.score
    row.failed = review.failed
    row.comment = review.comment
    row.reviewed_at = aware_datetime("now", now)
    _flush(session, f"ticket: the review of {ticket} was rejected by the database")
    return _qa_record(row, call)


def list_qa_reviews(session: Session, *, since: datetime, until: datetime) -> list[QaReviewRecord]:
    """The reviews of the calls started in [since, until), oldest call first."""
    stmt = (select(models.QaReview, models.CallRecord)
            .join(models.CallRecord, models.CallRecord.id == models.QaReview.call_record_id)
            .where(models.CallRecord.started_at >= aware_datetime("since", since),
                   models.CallRecord.started_at < aware_datetime("until", until))
            .order_by(models.CallRecord.started_at, models.QaReview.id))
    return [_qa_record(review, call) for review, call in session.execute(stmt)]


def _fax(row: models.Fax) -> FaxRecord:
    return FaxRecord(fax_id=row.fax_id, direction=row.direction, number=row.number, status=row.status,
                     error=row.error, pages=row.pages, bitrate=row.bitrate, remote_station=row.remote_station,
                     path=row.path, size_bytes=row.size_bytes, created_at=row.created_at, ended_at=row.ended_at)


def add_outgoing_fax(session: Session, fax_id: str, number: str, path: str, size_bytes: int,
                     now: datetime) -> FaxRecord:
    """Log a fax about to be sent (status ``SENDING``)."""
    row = models.Fax(fax_id=fax_id, direction="outbound", number=number, status="SENDING", path=path,
                     size_bytes=size_bytes, created_at=aware_datetime("now", now))
    session.add(row)
    _flush(session, f"fax_id: {fax_id} is already logged")
    return _fax(row)


def file_fax(session: Session, result: FaxResult, path: str, size_bytes: int, now: datetime) -> FaxRecord:
    """Log how a fax ended: the outgoing one of the same id, or a new row for a received one."""
    row = session.scalar(select(models.Fax).where(models.Fax.fax_id == result.fax_id))
    when = aware_datetime("now", now)
    if row is None:
        row = models.Fax(fax_id=result.fax_id, direction=result.direction, created_at=when)
        session.add(row)
    row.number = result.number[:64] or row.number
    row.status = result.status[:32]
    row.error = result.error[:255]
    row.pages = result.pages
    row.bitrate = result.bitrate
    row.remote_station = result.remote_station[:64]
    row.path = path or row.path
    row.size_bytes = size_bytes or row.size_bytes
    row.ended_at = when
    _flush(session, f"fax {result.fax_id}: rejected by the database")
    return _fax(row)


def list_faxes(session: Session, *, limit: int = 50) -> list[FaxRecord]:
    """The newest faxes first."""
    stmt = select(models.Fax).order_by(models.Fax.created_at.desc(), models.Fax.id.desc()).limit(_limit(limit))
    return [_fax(row) for row in session.scalars(stmt)]


def sending_faxes(session: Session) -> list[FaxRecord]:
    """The outgoing faxes still ``SENDING`` (no result filed yet), oldest first."""
    stmt = (select(models.Fax).where(models.Fax.direction == "outbound", models.Fax.status == "SENDING")
            .order_by(models.Fax.created_at, models.Fax.id))
    return [_fax(row) for row in session.scalars(stmt)]


def give_up_fax(session: Session, fax_id: str, error: str, now: datetime) -> FaxRecord | None:
    """File the outgoing fax ``fax_id`` ``FAILED`` with ``error`` if it is still ``SENDING``;
    None when it is not (its result came meanwhile, or there is no such fax)."""
    row = session.scalar(select(models.Fax).where(models.Fax.fax_id == fax_id, models.Fax.status == "SENDING"))
    if row is None:
        return None
    row.status = "FAILED"
    row.error = error[:255]
    row.ended_at = aware_datetime("now", now)
    _flush(session, f"fax {fax_id}: rejected by the database")
    return _fax(row)


def filed_fax_ids(session: Session, fax_ids: Collection[str]) -> set[str]:
    """Those of ``fax_ids`` that have a row."""
    wanted = list(fax_ids)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bounded IN lists
        chunk = wanted[start:start + 500]
        found.update(session.scalars(select(models.Fax.fax_id).where(models.Fax.fax_id.in_(chunk))))
    return found


def add_found_faxes(session: Session, faxes: Collection[FaxRecord]) -> list[FaxRecord]:
    """Add the faxes known only from their files (:func:`callcenter.fax.found_in_inbox`), those
    of them with no row yet."""
    filed = filed_fax_ids(session, [fax.fax_id for fax in faxes])
    added = []
    for fax in faxes:
        if fax.fax_id in filed:
            continue
        filed.add(fax.fax_id)
        row = models.Fax(fax_id=fax.fax_id, direction=fax.direction, number=fax.number[:64], status=fax.status[:32],
                         error=fax.error[:255], pages=fax.pages, bitrate=fax.bitrate,
                         remote_station=fax.remote_station[:64], path=fax.path, size_bytes=fax.size_bytes,
                         created_at=aware_datetime("created_at", fax.created_at),
                         ended_at=None if fax.ended_at is None else aware_datetime("ended_at", fax.ended_at))
        session.add(row)
        added.append(row)
    _flush(session, "faxes found in the fax inbox: rejected by the database")
    return [_fax(row) for row in added]


def _line(phone: str | None) -> str | None:
    """The caller's number in canonical form; None when it is no number (``anonymous``, a
    withheld caller id: every such caller is someone else, never one repeat caller)."""
    if phone is None:
        return None
    try:
        return canonical_phone(phone)
    except InvalidFieldError:
        return None


# --- recordings -----------------------------------------------------------------------------


def add_recording(session: Session, new: NewRecording) -> Recording:
    """Store a recording of a call record; ConflictError for a known path or missing call."""
    if session.get(models.CallRecord, new.call_record_id) is None:
        raise ConflictError(
            f"call_record_id: call record {new.call_record_id} does not exist"
        )
    taken = session.scalar(
        select(models.Recording.id).where(models.Recording.path == new.path)
    )
    if taken is not None:
        raise ConflictError(f"path: {new.path} is already recording {taken}")
    row = models.Recording(
        call_record_id=new.call_record_id,
        agent_id=new.agent_id,
        path=new.path,
        started_at=new.started_at,
        duration_seconds=new.duration_seconds,
        size_bytes=new.size_bytes,
        format=new.format,
        pauses=[[start, end] for start, end in new.pauses],
    )
    session.add(row)
    _flush(session, f"path: {new.path} is already stored")
    return _recording(row)


def list_recordings_for_call(session: Session, call_record_id: int) -> list[Recording]:
    """The recordings of one call record, oldest first."""
    stmt = (
        select(models.Recording)
        .where(
            models.Recording.call_record_id
            == positive_int("call_record_id", call_record_id)
        )
        .order_by(models.Recording.started_at, models.Recording.id)
    )
    return [_recording(row) for row in session.scalars(stmt)]


def list_recordings_older_than(
    session: Session, days: int, *, now: datetime, limit: int = MAX_LIST_LIMIT,
    after: tuple[datetime, int] | None = None,
) -> list[Recording]:
    """Recordings not yet purged that started more than ``days`` days before ``now``.

    Oldest first (by ``started_at``, then ``id``), at most ``limit``, and with ``after``
    (the ``(started_at, id)`` of the last one seen) only those after it: a purge job pages
    through them so, and a recording it could not delete never hides the ones after it.
    """
    recording = models.Recording
    cutoff = aware_datetime("now", now) - timedelta(days=non_negative_int("days", days))
    stmt = (
        select(recording)
        .where(recording.purged_at.is_(None), recording.started_at < cutoff)
        .order_by(recording.started_at, recording.id)
        .limit(_limit(limit))
    )
    if after is not None:
        since, last_id = aware_datetime("after", after[0]), after[1]
        stmt = stmt.where(or_(recording.started_at > since,
                              and_(recording.started_at == since, recording.id > last_id)))
    return [_recording(row) for row in session.scalars(stmt)]


def mark_recording_purged(
    session: Session, recording_id: int, *, purged_at: datetime
) -> Recording:
    """Record that the file of ``recording_id`` was deleted at ``purged_at``.

    Marking an already purged recording keeps the first time; NotFoundError if missing.
    """
    when = aware_datetime("purged_at", purged_at)
    row = session.get(models.Recording, positive_int("recording_id", recording_id))
    if row is None:
        raise NotFoundError(f"recording_id: recording {recording_id} not found")
    if row.purged_at is None:
        row.purged_at = when
        session.flush()
    return _recording(row)


# --- reactor-side facade --------------------------------------------------------------------


def make_threadpool(
    *, maxthreads: int = 4, name: str = "callcenter-storage"
) -> ThreadPool:
    """A dedicated, not yet started thread pool for :class:`Repository`."""
    return ThreadPool(
        minthreads=0, maxthreads=positive_int("maxthreads", maxthreads), name=name
    )


class Repository:
    """Deferred-returning access to the storage, for code on the reactor thread.

    Every method runs the blocking function of the same name in one transaction
    (committed on success, rolled back on error) on ``threadpool`` and fires its Deferred
    through ``reactor.callFromThread``. The composition root calls :meth:`start` before
    use and :meth:`stop` at shutdown (e.g. from a ``"during", "shutdown"`` trigger).
    """

    def __init__(
        self, engine: Engine, threadpool: ThreadPool, reactor: IReactorFromThreads
    ) -> None:
        self._sessions: sessionmaker[Session] = make_session_factory(engine)
        self._threadpool = threadpool
        self._reactor = reactor

    def start(self) -> None:
        """Start the thread pool."""
        self._threadpool.start()

    def stop(self) -> None:
        """Stop the thread pool and wait for its threads to exit."""
        self._threadpool.stop()

    def run(
        self,
        function: Callable[Concatenate[Session, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Deferred[_R]:
        """Run ``function(session, *args, **kwargs)`` in a transaction on the pool."""

        def in_transaction() -> _R:
            with self._sessions.begin() as session:
                return function(session, *args, **kwargs)

        return deferToThreadPool(self._reactor, self._threadpool, in_transaction)

    def create_customer(self, new: NewCustomer) -> Deferred[Customer]:
        """See :func:`create_customer`."""
        return self.run(create_customer, new)

    def update_customer(
        self, customer_id: int, changes: CustomerUpdate, *, vip_number_locked: bool = False
    ) -> Deferred[Customer]:
        """See :func:`update_customer`."""
        return self.run(update_customer, customer_id, changes, vip_number_locked=vip_number_locked)

    def get_customer(self, customer_id: int) -> Deferred[Customer | None]:
        """See :func:`get_customer`."""
        return self.run(get_customer, customer_id)

    def find_customer_by_phone(self, phone: str) -> Deferred[Customer | None]:
        """See :func:`find_customer_by_phone`."""
        return self.run(find_customer_by_phone, phone)

    def create_call_record(
        self, new: NewCallRecord, *, site_prefix: str, ticket_day: date | None = None
    ) -> Deferred[CallRecord]:
        """See :func:`create_call_record`."""
        return self.run(
            create_call_record, new, site_prefix=site_prefix, ticket_day=ticket_day
        )

    def update_call_record(
        self, call_record_id: int, changes: CallRecordUpdate
    ) -> Deferred[CallRecord]:
        """See :func:`update_call_record`."""
        return self.run(update_call_record, call_record_id, changes)

    def queue_stays(self, *, since: datetime, ended_before: datetime) -> Deferred[list[QueueStay]]:
        """See :func:`queue_stays`."""
        return self.run(queue_stays, since=since, ended_before=ended_before)

    def call_report(self, report_period: ReportPeriod, *, by: str, service_level_seconds: Mapping[str, int],
                    wrapup_seconds: Mapping[str, int], now: datetime,
                    fcr_days: int = FCR_DAYS) -> Deferred[list[ReportLine]]:
        """See :func:`call_report`."""
        return self.run(call_report, report_period, by=by, service_level_seconds=service_level_seconds,
                        wrapup_seconds=wrapup_seconds, now=now, fcr_days=fcr_days)

    def report_sales(self, *, since: datetime, until: datetime) -> Deferred[list[Sale]]:
        """See :func:`report_sales`."""
        return self.run(report_sales, since=since, until=until)

    def qa_candidates(self, *, since: datetime, until: datetime) -> Deferred[list[QaCandidate]]:
        """See :func:`qa_candidates`."""
        return self.run(qa_candidates, since=since, until=until)

    def save_qa_review(self, call_record_id: int, review: QaReview, *, now: datetime) -> Deferred[QaReviewRecord]:
        """See :func:`save_qa_review`."""
        return self.run(save_qa_review, call_record_id, review, now=now)

    def list_qa_reviews(self, *, since: datetime, until: datetime) -> Deferred[list[QaReviewRecord]]:
        """See :func:`list_qa_reviews`."""
        return self.run(list_qa_reviews, since=since, until=until)

    def list_faxes(self, *, limit: int = 50) -> Deferred[list[FaxRecord]]:
        """See :func:`list_faxes`."""
        return self.run(list_faxes, limit=limit)

    def get_call_record(self, call_record_id: int) -> Deferred[CallRecord | None]:
        """See :func:`get_call_record`."""
        return self.run(get_call_record, call_record_id)

    def get_call_record_by_ticket(
        self, ticket_number: str
    ) -> Deferred[CallRecord | None]:
        """See :func:`get_call_record_by_ticket`."""
        return self.run(get_call_record_by_ticket, ticket_number)

    def get_call_record_by_uniqueid(self, uniqueid: str) -> Deferred[CallRecord | None]:
        """See :func:`get_call_record_by_uniqueid`."""
        return self.run(get_call_record_by_uniqueid, uniqueid)

    def list_recent_call_records(
        self,
        *,
        limit: int = 50,
        agent_id: str | None = None,
        queue: str | None = None,
        customer_id: int | None = None,
    ) -> Deferred[list[CallRecord]]:
        """See :func:`list_recent_call_records`."""
        return self.run(
            list_recent_call_records,
            limit=limit,
            agent_id=agent_id,
            queue=queue,
            customer_id=customer_id,
        )

    def follow_ups_due(self, agent_id: str, *, until: datetime, limit: int = 50) -> Deferred[list[CallRecord]]:
        """See :func:`follow_ups_due`."""
        return self.run(follow_ups_due, agent_id, until=until, limit=limit)

    def add_recording(self, new: NewRecording) -> Deferred[Recording]:
        """See :func:`add_recording`."""
        return self.run(add_recording, new)

    def list_recordings_for_call(
        self, call_record_id: int
    ) -> Deferred[list[Recording]]:
        """See :func:`list_recordings_for_call`."""
        return self.run(list_recordings_for_call, call_record_id)

    def list_recordings_older_than(
        self, days: int, *, now: datetime, limit: int = MAX_LIST_LIMIT,
        after: tuple[datetime, int] | None = None,
    ) -> Deferred[list[Recording]]:
        """See :func:`list_recordings_older_than`."""
        return self.run(list_recordings_older_than, days, now=now, limit=limit, after=after)

    def mark_recording_purged(
        self, recording_id: int, *, purged_at: datetime
    ) -> Deferred[Recording]:
        """See :func:`mark_recording_purged`."""
        return self.run(mark_recording_purged, recording_id, purged_at=purged_at)
