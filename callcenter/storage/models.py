"""SQLAlchemy 2.0 models of the call center's own records.

Tables: ``customers`` (who calls), ``call_records`` (the call center's record of one
call, identified to the caller by a ticket number) and ``recordings`` (audio files of a
call, purged after the retention period). The outbound dialer adds ``campaigns``,
``lead_lists`` (imported CSV files), ``leads`` (numbers to call and where each stands),
``dial_attempts`` (every call placed and how it ended), ``dnc_numbers`` (do not call)
and ``audit_log`` (who destroyed or changed what, and when); see
:mod:`callcenter.storage.dialer`.

Every datetime column is timezone-aware UTC on the Python side (:class:`UTCDateTime`):
PostgreSQL stores ``timestamp with time zone``; SQLite stores the UTC wall time as text.
Constraint names follow :data:`NAMING_CONVENTION` so Alembic can address them on both
dialects (SQLite batch migrations need named constraints).

These classes stay inside ``callcenter.storage``: callers get the frozen dataclasses of
:mod:`callcenter.storage.records` from :mod:`callcenter.storage.repository`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from callcenter.agent_time import STATES
from callcenter.storage.records import MAX_PAUSE_REASON

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names of indexes and constraints; the initial migration spells out the same names."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every dialect.

    Binding a naive datetime raises ValueError: the database never guesses a time zone.
    Results always come back with ``tzinfo=UTC``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; use an aware datetime"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite has no time zone type: store the UTC wall time.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the storage models, with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Customer(Base):
    """A caller the call center knows, identified by phone number."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), index=True, unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    vip: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


QUEUE_RESULTS_SQL = "'answered', 'abandoned', 'unanswered'"
"""The values of :data:`callcenter.state.queues.QUEUE_RESULTS`, for the CHECK constraint."""


class CallRecord(Base):
    """The call center's record of one call: who, why, how it ended, and its timings."""

    __tablename__ = "call_records"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        CheckConstraint("csat IS NULL OR (csat >= 1 AND csat <= 5)", name="csat_range"),
        CheckConstraint(
            "wait_seconds IS NULL OR wait_seconds >= 0", name="wait_seconds"
        ),
        CheckConstraint(
            "talk_seconds IS NULL OR talk_seconds >= 0", name="talk_seconds"
        ),
        CheckConstraint(
            f"queue_result IS NULL OR queue_result IN ({QUEUE_RESULTS_SQL})", name="queue_result"
        ),
        CheckConstraint("sale_cents IS NULL OR sale_cents >= 0", name="sale_cents"),
        Index("ix_call_records_agent_id_started_at", "agent_id", "started_at"),
        Index("ix_call_records_agent_id_follow_up_at", "agent_id", "follow_up_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_number: Mapped[str] = mapped_column(String(32), unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    customer_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    issue_type: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    outcome: Mapped[str | None] = mapped_column(String(64))
    follow_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    csat: Mapped[int | None] = mapped_column(SmallInteger)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wait_seconds: Mapped[int | None] = mapped_column(Integer)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    queue_result: Mapped[str | None] = mapped_column(String(16))
    sale_cents: Mapped[int | None] = mapped_column(BigInteger)
    """The sale made on the call, in fen (``CallRecord.sale_amount`` in yuan)."""
    sale_agent_id: Mapped[str | None] = mapped_column(String(64))
    """Who made the sale: the call's agent when it was recorded (``agent_id`` is the call's
    last agent: a customer handed on after buying stays the seller's sale)."""
    sale_team: Mapped[str | None] = mapped_column(String(64))
    """The seller's team when the sale was recorded, whose lead the lead share is paid to
    (NULL: the seller's team now; sales recorded before revision 0019, or by no team)."""
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    transfers: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    """Each time an agent handed the call on: ``AGENT>QUEUE@SECONDS`` (callcenter.transfer)."""
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class Recording(Base):
    """An audio recording of (part of) a call, on disk at ``path`` until purged."""

    __tablename__ = "recordings"
    __table_args__ = (
        CheckConstraint("duration_seconds >= 0", name="duration_seconds"),
        CheckConstraint("size_bytes >= 0", name="size_bytes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_record_id: Mapped[int] = mapped_column(
        ForeignKey("call_records.id"), index=True
    )
    agent_id: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    duration_seconds: Mapped[float] = mapped_column(Float)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pauses: Mapped[list[list[float]]] = mapped_column(JSON, default=list, server_default="[]")
    """``[start, end]`` seconds into the file where an agent paused the recording (silence)."""


class QaReview(Base):
    """A reviewer's score of an agent's part of one call (quality assurance; one review per
    call, agent and reviewer: a call handed on has a part for each agent, docs/qa.md)."""

    __tablename__ = "qa_reviews"
    __table_args__ = (
        UniqueConstraint("call_record_id", "agent_id", "reviewer",
                         name="uq_qa_reviews_call_record_id_agent_id_reviewer"),
        CheckConstraint("score >= 0 AND score <= 100", name="score"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_record_id: Mapped[int] = mapped_column(ForeignKey("call_records.id"), index=True)
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    """The agent whose part of the call was scored: the recording's agent, else the call's
    (copied: reports group by it)."""
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    """The recording of that part the reviewer heard (None: the call has none, or a review
    stored before revision 0016)."""
    reviewer: Mapped[str] = mapped_column(String(64))
    ratings: Mapped[dict[str, int | None]] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    failed: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Fax(Base):
    """A fax received on the fax number or sent (docs/fax.md)."""

    __tablename__ = "faxes"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        CheckConstraint("pages >= 0 AND bitrate >= 0 AND size_bytes >= 0", name="counts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fax_id: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(64), default="", server_default="")
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(String(255), default="", server_default="")
    pages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bitrate: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    remote_station: Mapped[str] = mapped_column(String(64), default="", server_default="")
    path: Mapped[str] = mapped_column(String(1024), default="", server_default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- outbound dialer --------------------------------------------------------------------------

BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
"""Primary key type of the big dialer tables: BIGINT, and SQLite's INTEGER rowid alias
(only ``INTEGER PRIMARY KEY`` autoincrements there)."""

LEAD_STATES_SQL = "'new', 'retry', 'dialing', 'done'"
"""The values of :class:`callcenter.dialer.campaign.LeadState`, for CHECK constraints."""

ATTEMPT_OUTCOMES_SQL = "'human', 'machine', 'busy', 'noanswer', 'failed', 'abandoned'"
""":data:`callcenter.dialer.campaign.ATTEMPT_OUTCOMES`, for CHECK constraints."""


class Campaign(Base):
    """An outbound campaign as defined in ``config/dialer.yaml``, with a stable id."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(
            "dial_mode IN ('preview', 'progressive', 'predictive')", name="dial_mode"
        ),
        CheckConstraint("machine_action IN ('hangup', 'message')", name="machine_action"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        CheckConstraint("call_start < call_end", name="calling_hours"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    dial_mode: Mapped[str] = mapped_column(String(16))
    caller_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    queue: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    call_start: Mapped[time] = mapped_column(Time())
    call_end: Mapped[time] = mapped_column(Time())
    max_attempts: Mapped[int] = mapped_column(Integer)
    retry_minutes: Mapped[dict[str, int | None]] = mapped_column(JSON)
    machine_action: Mapped[str] = mapped_column(String(16))
    machine_message: Mapped[str] = mapped_column(
        String(255), default="", server_default=""
    )
    safe_harbor_message: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class LeadList(Base):
    """One imported lead file; its leads are deleted (``destroyed_at``) after use."""

    __tablename__ = "lead_lists"
    __table_args__ = (
        CheckConstraint("rows_ok >= 0", name="rows_ok"),
        CheckConstraint("rows_bad >= 0", name="rows_bad"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source_file: Mapped[str] = mapped_column(String(1024))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    imported_by: Mapped[str] = mapped_column(String(64))
    rows_ok: Mapped[int] = mapped_column(Integer)
    rows_bad: Mapped[int] = mapped_column(Integer)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    destroyed_by: Mapped[str | None] = mapped_column(String(64))


class Lead(Base):
    """A number to call in a campaign and where it stands.

    ``next_attempt_at`` is set exactly while the lead waits to be dialed (``new`` or
    ``retry``): the claim query is one range scan of ``ix_leads_claim``.
    """

    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_leads_campaign_id_phone"),
        CheckConstraint(f"state IN ({LEAD_STATES_SQL})", name="state"),
        CheckConstraint(
            "(state IN ('new', 'retry') AND next_attempt_at IS NOT NULL)"
            " OR (state IN ('dialing', 'done') AND next_attempt_at IS NULL)",
            name="next_attempt_at",
        ),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("agent_id IS NULL OR team IS NOT NULL", name="owner"),
        Index("ix_leads_claim", "campaign_id", "next_attempt_at", "id"),
        Index("ix_leads_campaign_id_state", "campaign_id", "state"),
        Index("ix_leads_owner", "campaign_id", "team", "agent_id"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lead_lists.id"), index=True)
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    final_outcome: Mapped[str | None] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(64))
    """The team the lead was handed out to (None: still with IT, in the campaign's pool)."""
    agent_id: Mapped[str | None] = mapped_column(String(64))
    """The agent of ``team`` the team lead handed it to (None: with the team)."""
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class DialAttempt(Base):
    """One call placed to a lead: in flight while ``outcome`` is NULL, then how it ended.

    ``phone`` is blanked when the lead's list is destroyed; ``phone_hash`` (SHA-256 of
    the normalised number) stays, so compliance counts survive the destruction.
    """

    __tablename__ = "dial_attempts"
    __table_args__ = (
        CheckConstraint(
            f"outcome IS NULL OR outcome IN ({ATTEMPT_OUTCOMES_SQL})", name="outcome"
        ),
        CheckConstraint("attempt_no >= 1", name="attempt_no"),
        CheckConstraint("ring_seconds IS NULL OR ring_seconds >= 0", name="ring_seconds"),
        CheckConstraint(
            "connect_seconds IS NULL OR connect_seconds >= 0", name="connect_seconds"
        ),
        CheckConstraint("talk_seconds IS NULL OR talk_seconds >= 0", name="talk_seconds"),
        Index("ix_dial_attempts_campaign_id_started_at", "campaign_id", "started_at"),
        Index("ix_dial_attempts_campaign_id_outcome", "campaign_id", "outcome"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True
    )
    phone: Mapped[str | None] = mapped_column(String(32))
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))
    amd_status: Mapped[str | None] = mapped_column(String(32))
    amd_cause: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    connect_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(Text)


class DncNumber(Base):
    """A number that must never be dialed (do-not-call), stored normalised."""

    __tablename__ = "dnc_numbers"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """Who did what to which subject, and when (e.g. ``leads.destroy`` of a lead list)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- SMS broadcast ------------------------------------------------------------------------------

SMS_STATUSES_SQL = "'queued', 'sending', 'sent', 'failed', 'skipped'"
"""The values of :data:`callcenter.storage.sms.SMS_STATUSES`, for the CHECK constraint."""


class SmsBroadcast(Base):
    """One SMS broadcast: a template sent to a list of numbers (see :mod:`callcenter.storage.sms`)."""

    __tablename__ = "sms_broadcasts"
    __table_args__ = (CheckConstraint("total >= 0", name="total"),
                      CheckConstraint("kind IN ('marketing', 'notice')", name="kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    template: Mapped[str] = mapped_column(Text)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    total: Mapped[int] = mapped_column(Integer)
    """Messages created for it, skipped ones included."""
    kind: Mapped[str] = mapped_column(String(16), default="marketing", server_default="marketing")
    """``marketing`` (capped per number: ``sms.min_days_between``) or ``notice`` (a caller's
    ticket number: neither capped nor counted)."""


class SmsMessage(Base):
    """One message of a broadcast to one number, and where it stands.

    Every recipient given is kept: those not to be sent (an invalid number, a repeat, a
    do-not-call number) as ``skipped`` with the reason.
    """

    __tablename__ = "sms_messages"
    __table_args__ = (
        CheckConstraint(f"status IN ({SMS_STATUSES_SQL})", name="status"),
        CheckConstraint("parts >= 0", name="parts"),
        Index("ix_sms_messages_broadcast_id_status_id", "broadcast_id", "status", "id"),
        Index("ix_sms_messages_status_id", "status", "id"),
        Index("ix_sms_messages_phone_created_at", "phone", "created_at"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("sms_broadcasts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    """The canonical number (as given, cut to 32 characters, when it is not a valid number)."""
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    body: Mapped[str] = mapped_column(Text)
    parts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SmsReply(Base):
    """A text message received from a number (an answer to a broadcast, or an opt-out)."""

    __tablename__ = "sms_replies"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    opt_out: Mapped[bool] = mapped_column(Boolean)
    added_to_dnc: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether this reply put the number on the do-not-call list (it was not on it before)."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


AGENT_STATES_SQL = ", ".join(f"'{state}'" for state in STATES)


class AgentStateChange(Base):
    """An agent went into ``state`` at ``at`` (the engine's agent board; :mod:`callcenter.agent_time`).

    A state lasts until the agent's next row. ``unknown`` marks the daemon stopping (or
    starting after a stop it could not mark), so that time never counts as work.
    """

    __tablename__ = "agent_state_changes"
    __table_args__ = (
        CheckConstraint(f"state IN ({AGENT_STATES_SQL})", name="state"),
        Index("ix_agent_state_changes_agent_id_at", "agent_id", "at"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(16))
    pause_reason: Mapped[str | None] = mapped_column(String(MAX_PAUSE_REASON))
