"""SQLAlchemy 2.0 models of the call center's own records.

Tables: ``customers`` (who calls), ``call_records`` (the call center's record of one
call, identified to the caller by a ticket number) and ``recordings`` (audio files of a
call, purged after the retention period).

Every datetime column is timezone-aware UTC on the Python side (:class:`UTCDateTime`):
PostgreSQL stores ``timestamp with time zone``; SQLite stores the UTC wall time as text.
Constraint names follow :data:`NAMING_CONVENTION` so Alembic can address them on both
dialects (SQLite batch migrations need named constraints).

These classes stay inside ``callcenter.storage``: callers get the frozen dataclasses of
:mod:`callcenter.storage.records` from :mod:`callcenter.storage.repository`.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
    TypeDecorator,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
        Index("ix_call_records_agent_id_started_at", "agent_id", "started_at"),
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
    ivr_path: Mapped[list[str]] = mapped_column(JSON, default=list)
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
