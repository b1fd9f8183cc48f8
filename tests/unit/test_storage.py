"""Storage layer: migrations, ticket numbers, repository functions and the async facade.

Tests that touch a database run twice, on SQLite (a file in tmp_path) and on PostgreSQL
(``postgres`` marker; the server comes from the ``tests.pgserver`` plugin).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from callcenter.state.queues import QueueStay
from callcenter.storage import models
from callcenter.storage import repository as repo
from callcenter.storage.db import (
    alembic_config,
    create_engine_for,
    current_revision,
    database_url,
    head_revision,
    make_session_factory,
    upgrade_database,
)
from callcenter.storage.records import (
    UNSET,
    CallRecordUpdate,
    CustomerUpdate,
    InvalidFieldError,
    NewCallRecord,
    NewCustomer,
    NewRecording,
    canonical_phone,
    normalize_phone,
)
from callcenter.storage.tickets import (
    TicketNumber,
    format_ticket_number,
    parse_ticket_number,
)
from tests.concurrency import run_at_once
from tests.syncrepository import in_tx

T = TypeVar("T")

MODEL_TABLES = {"customers", "call_records", "recordings", "campaigns", "lead_lists", "leads",
                "dial_attempts", "dnc_numbers", "audit_log", "qa_reviews", "faxes", "sms_broadcasts",
                "sms_messages", "sms_replies", "agent_state_changes"}
DAY = date(2023, 10, 27)
T0 = datetime(2023, 10, 27, 9, 30, tzinfo=UTC)


# --- fixtures -------------------------------------------------------------------------------



def new_call(**overrides: Any) -> NewCallRecord:
    fields: dict[str, Any] = {
        "started_at": T0,
        "direction": "inbound",
        "phone": "+8613800138000",
        "queue": "support",
        "uniqueid": "1698399000.1",
        "linkedid": "1698399000.1",
    }
    fields.update(overrides)
    return NewCallRecord(**fields)


# --- migrations -----------------------------------------------------------------------------


def test_migration_creates_exactly_the_model_tables(engine: sa.Engine) -> None:
    """upgrade_database creates the three tables (plus Alembic's) and stamps head."""
    tables = set(sa.inspect(engine).get_table_names())
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert MODEL_TABLES == set(models.Base.metadata.tables)
    assert current_revision(engine) == head_revision()


def test_migrated_schema_matches_models(engine: sa.Engine) -> None:
    """Alembic autogenerate finds no difference between the migrated schema and the models.

    A model change without a migration (or the other way round) fails here.
    """
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "target_metadata": models.Base.metadata},
        )
        assert compare_metadata(context, models.Base.metadata) == []


def test_upgrade_twice_and_downgrade_then_upgrade(engine: sa.Engine) -> None:
    """Re-running the upgrade is a no-op, and the downgrade path really drops the tables."""
    upgrade_database(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    assert current_revision(engine) is None
    upgrade_database(engine)
    assert MODEL_TABLES <= set(sa.inspect(engine).get_table_names())


def test_upgrade_database_accepts_a_url(tmp_path: Any) -> None:
    """upgrade_database(url) works from a plain URL string, without any alembic.ini."""
    url = f"sqlite:///{tmp_path / 'by-url.db'}"
    upgrade_database(url)
    engine = create_engine_for(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migration_command_line_needs_no_ini(tmp_path: Any, capsys: Any) -> None:
    """`python -m callcenter.storage.migrations --url URL <alembic command>` works."""
    from callcenter.storage.migrations.__main__ import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    main(["--url", url, "upgrade", "head"])
    main(["--url", url, "current"])
    assert f"{head_revision()} (head)" in capsys.readouterr().out
    main(["--url", url, "check"])  # raises if the models need a new revision


# --- engines --------------------------------------------------------------------------------


def test_postgresql_urls_use_psycopg3() -> None:
    """Driver-less PostgreSQL URLs are mapped to psycopg 3; other URLs are left alone."""
    assert database_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@h:5433/db").drivername == "postgresql+psycopg"
    assert (
        database_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    )
    assert database_url("sqlite:///x.db").drivername == "sqlite"


def test_alembic_config_keeps_percent_signs_in_urls() -> None:
    """A URL with %-escapes survives Alembic's ConfigParser interpolation."""
    url = "postgresql://u:p%40ss@h/db?options=-csearch_path%3Dx"
    config = alembic_config(url)
    assert database_url(config.get_main_option("sqlalchemy.url") or "") == database_url(
        url
    )


def test_sqlite_engine_settings(tmp_path: Any) -> None:
    """SQLite file databases enforce foreign keys, use WAL and work from other threads."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'settings.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        seen: list[object] = []

        def other_thread() -> None:
            with engine.connect() as connection:
                seen.append(connection.exec_driver_sql("SELECT 1").scalar())

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert seen == [1]
    finally:
        engine.dispose()


def test_sqlite_in_memory_database_is_shared_between_sessions() -> None:
    """An in-memory SQLite URL keeps one database for every session (handy in tests)."""
    engine = create_engine_for("sqlite://")
    try:
        upgrade_database(engine)
        sessions = make_session_factory(engine)
        created = in_tx(sessions, repo.create_customer, NewCustomer("Ann", "+3312345"))
        assert in_tx(sessions, repo.get_customer, created.id) == created
    finally:
        engine.dispose()


def test_postgres_fixture_skips_locally_but_fails_on_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a PostgreSQL server the postgres tests skip, except with CI=true: they fail."""
    from tests import pgserver

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        pgserver.skip_or_fail("no initdb")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no initdb"):
        pgserver.skip_or_fail("no initdb")


# --- ticket numbers (pure) ------------------------------------------------------------------


def test_ticket_number_format_and_parse_round_trip() -> None:
    """Tickets read like GD20231027001 and parse back into site, day and sequence."""
    assert format_ticket_number("GD", DAY, 1) == "GD20231027001"
    assert format_ticket_number("GD", DAY, 42) == "GD20231027042"
    assert format_ticket_number("GD", DAY, 1000) == "GD202310271000"
    assert parse_ticket_number("GD20231027001") == TicketNumber("GD", DAY, 1)
    assert parse_ticket_number("SH202401011234") == TicketNumber(
        "SH", date(2024, 1, 1), 1234
    )
    assert str(TicketNumber("GD", DAY, 7)) == "GD20231027007"


@pytest.mark.parametrize(
    "ticket",
    ["", "GD2023102701", "gd20231027001", "G120231027001", "GD20231327001",
     "GD20231027000", "GD202310270001", "GD20231027001 ", "GDX20231027001"],
)  # fmt: skip
def test_malformed_ticket_numbers_are_rejected(ticket: str) -> None:
    """Only canonical ticket numbers parse; the error names the ticket_number field."""
    with pytest.raises(ValueError, match="^ticket_number: "):
        parse_ticket_number(ticket)


def test_ticket_number_formatting_rejects_bad_parts() -> None:
    """The site prefix must be two upper-case letters and the sequence at least 1."""
    with pytest.raises(ValueError, match="^site_prefix: "):
        format_ticket_number("gd", DAY, 1)
    with pytest.raises(ValueError, match="^site_prefix: "):
        format_ticket_number("GDX", DAY, 1)
    with pytest.raises(ValueError, match="^sequence: "):
        format_ticket_number("GD", DAY, 0)


# --- ticket allocation ----------------------------------------------------------------------


def test_ticket_numbers_count_per_site_and_day(sessions: sessionmaker[Session]) -> None:
    """Each site and day has its own sequence starting at 001."""

    def ticket(prefix: str, started_at: datetime) -> str:
        record = in_tx(
            sessions,
            repo.create_call_record,
            new_call(started_at=started_at),
            site_prefix=prefix,
        )
        return record.ticket_number

    assert ticket("GD", T0) == "GD20231027001"
    assert ticket("GD", T0) == "GD20231027002"
    assert ticket("SH", T0) == "SH20231027001"
    assert ticket("GD", T0 + timedelta(days=1)) == "GD20231028001"
    assert ticket("GD", T0) == "GD20231027003"


def test_ticket_day_defaults_to_utc_date_and_can_be_local(
    sessions: sessionmaker[Session],
) -> None:
    """Without ticket_day the UTC date of the call is used; a site passes its local day."""
    late = datetime(2023, 10, 27, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    utc_day = in_tx(
        sessions, repo.create_call_record, new_call(started_at=late), site_prefix="GD"
    )
    assert utc_day.ticket_number == "GD20231028001"
    local = in_tx(
        sessions,
        repo.create_call_record,
        new_call(started_at=late),
        site_prefix="GD",
        ticket_day=late.date(),
    )
    assert local.ticket_number == "GD20231027001"


def test_ticket_sequence_grows_past_999(sessions: sessionmaker[Session]) -> None:
    """After 999 comes 1000 then 1001 (a longer number counts as a later one)."""
    with sessions.begin() as session:
        session.add(
            models.CallRecord(
                ticket_number="GD20231027999", started_at=T0, direction="inbound"
            )
        )
    first = in_tx(sessions, repo.create_call_record, new_call(), site_prefix="GD")
    second = in_tx(sessions, repo.create_call_record, new_call(), site_prefix="GD")
    assert (first.ticket_number, second.ticket_number) == (
        "GD202310271000",
        "GD202310271001",
    )


def test_concurrent_ticket_allocation_gives_no_duplicates(
    sessions: sessionmaker[Session],
) -> None:
    """Threads creating call records at once get distinct, gap-free ticket numbers."""
    threads, per_thread = 6, 5
    tickets = run_at_once(threads, per_thread, lambda: [
        in_tx(sessions, repo.create_call_record, new_call(), site_prefix="GD").ticket_number])
    expected = [
        format_ticket_number("GD", DAY, n) for n in range(1, threads * per_thread + 1)
    ]
    assert sorted(tickets) == expected


def test_sqlite_allocation_refuses_engines_without_begin_immediate(
    tmp_path: Any,
) -> None:
    """Ticket allocation on a plain SQLite engine (no BEGIN IMMEDIATE) fails loudly."""
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    upgrade_database(url)
    engine = sa.create_engine(url)
    try:
        with (
            Session(engine) as session,
            pytest.raises(repo.StorageError, match="BEGIN"),
        ):
            repo.allocate_ticket_number(session, "GD", DAY)
    finally:
        engine.dispose()


# --- customers ------------------------------------------------------------------------------


def test_customer_round_trip(sessions: sessionmaker[Session]) -> None:
    """Customers are created, found by (formatted) phone, updated and read back."""
    created = in_tx(
        sessions,
        repo.create_customer,
        NewCustomer(
            name=" Li Wei ", phone="+86 (20) 1234-5678", email="li@example.org"
        ),
    )
    assert created.name == "Li Wei"
    assert created.phone == "02012345678"
    assert created.vip is False and created.notes == ""
    assert created.created_at.tzinfo is UTC
    assert in_tx(sessions, repo.get_customer, created.id) == created
    assert in_tx(sessions, repo.find_customer_by_phone, "+86 20 1234 5678") == created
    # the inbound caller ID, however the trunk spells it, finds the same customer
    for caller in ("02012345678", "862012345678", "00862012345678", "+86 (0)20 1234 5678"):
        assert in_tx(sessions, repo.find_customer_by_phone, caller) == created
    assert in_tx(sessions, repo.find_customer_by_phone, "+8620000000") is None
    assert in_tx(sessions, repo.get_customer, created.id + 100) is None

    updated = in_tx(
        sessions,
        repo.update_customer,
        created.id,
        CustomerUpdate(vip=True, notes="prefers Cantonese", email=None),
    )
    assert (updated.vip, updated.notes, updated.email) == (
        True,
        "prefers Cantonese",
        None,
    )
    assert (updated.name, updated.phone) == (created.name, created.phone)
    assert updated.updated_at >= created.updated_at
    assert in_tx(sessions, repo.get_customer, created.id) == updated


def test_customer_phone_is_unique(sessions: sessionmaker[Session]) -> None:
    """A second customer with the same phone is a ConflictError naming the phone field,
    and the session stays usable afterwards."""
    first = in_tx(sessions, repo.create_customer, NewCustomer("Ann", "+3312345"))
    other = in_tx(sessions, repo.create_customer, NewCustomer("Bob", "+3399999"))
    with sessions.begin() as session:
        with pytest.raises(repo.ConflictError, match="^phone: "):
            repo.create_customer(session, NewCustomer("Eve", "+33 12345"))
        with pytest.raises(repo.ConflictError, match="^phone: "):
            repo.update_customer(session, other.id, CustomerUpdate(phone="+3312345"))
        assert repo.get_customer(session, first.id) == first
    # Keeping one's own number is not a conflict.
    same = in_tx(
        sessions, repo.update_customer, first.id, CustomerUpdate(phone="+3312345")
    )
    assert same.phone == first.phone


def test_updating_a_missing_customer_is_not_found(
    sessions: sessionmaker[Session],
) -> None:
    """Updating an unknown customer raises NotFoundError (a LookupError)."""
    with pytest.raises(repo.NotFoundError, match="customer 999 not found"):
        in_tx(sessions, repo.update_customer, 999, CustomerUpdate(name="x"))


def test_deleting_a_customer_keeps_their_call_records(
    sessions: sessionmaker[Session],
) -> None:
    """The customer foreign key is enforced (also on SQLite) with ON DELETE SET NULL."""
    customer = in_tx(sessions, repo.create_customer, NewCustomer("Ann", "+3312345"))
    record = in_tx(
        sessions,
        repo.create_call_record,
        new_call(customer_id=customer.id),
        site_prefix="GD",
    )
    with sessions.begin() as session:
        session.execute(
            sa.delete(models.Customer).where(models.Customer.id == customer.id)
        )
    kept = in_tx(sessions, repo.get_call_record, record.id)
    assert kept is not None and kept.customer_id is None
    with pytest.raises(repo.ConflictError, match="^customer_id: "):
        in_tx(
            sessions,
            repo.create_call_record,
            new_call(customer_id=customer.id),
            site_prefix="GD",
        )


# --- call records ---------------------------------------------------------------------------


def test_call_record_round_trip(sessions: sessionmaker[Session]) -> None:
    """Every field of a call record survives the database, datetimes as aware UTC."""
    customer = in_tx(sessions, repo.create_customer, NewCustomer("Ann", "+3312345"))
    paris = timezone(timedelta(hours=2))
    new = NewCallRecord(
        started_at=datetime(2023, 10, 27, 11, 30, 0, 123456, tzinfo=paris),
        direction="outbound",
        customer_id=customer.id,
        customer_name="Ann",
        phone="+3312345",
        issue_type="billing",
        description="asked about the October invoice",
        outcome="resolved",
        follow_up_at=datetime(2023, 10, 30, 8, 0, tzinfo=UTC),
        csat=4,
        agent_id="agent-7",
        queue="billing",
        uniqueid="1698399000.17",
        linkedid="1698399000.16",
        answered_at=datetime(2023, 10, 27, 9, 30, 12, tzinfo=UTC),
        ended_at=datetime(2023, 10, 27, 9, 35, 0, tzinfo=UTC),
        wait_seconds=12,
        talk_seconds=288,
        ivr_path=["welcome", "menu", "billing"],  # type: ignore[arg-type]
    )
    created = in_tx(sessions, repo.create_call_record, new, site_prefix="GD")
    assert created.ticket_number == "GD20231027001"
    assert created.started_at == datetime(2023, 10, 27, 9, 30, 0, 123456, tzinfo=UTC)
    assert created.started_at.tzinfo is UTC
    assert created.ivr_path == ("welcome", "menu", "billing")
    fetched = in_tx(sessions, repo.get_call_record_by_ticket, "GD20231027001")
    assert fetched == created
    for name in ("direction", "customer_id", "phone", "issue_type", "description", "outcome",
                 "follow_up_at", "csat", "agent_id", "queue", "uniqueid", "linkedid",
                 "answered_at", "ended_at", "wait_seconds", "talk_seconds"):  # fmt: skip
        assert getattr(fetched, name) == getattr(new, name), name
    assert in_tx(sessions, repo.get_call_record_by_ticket, "GD20231027002") is None


def test_update_call_record_disposition(sessions: sessionmaker[Session]) -> None:
    """Updating outcome, csat and notes changes only those fields; None clears a field."""
    created = in_tx(
        sessions, repo.create_call_record, new_call(outcome="open"), site_prefix="GD"
    )
    updated = in_tx(
        sessions,
        repo.update_call_record,
        created.id,
        CallRecordUpdate(outcome="callback", csat=5, description="call back Monday",
                         follow_up_at=T0 + timedelta(days=3), queue=None),
    )  # fmt: skip
    assert (updated.outcome, updated.csat, updated.description) == (
        "callback",
        5,
        "call back Monday",
    )
    assert updated.follow_up_at == T0 + timedelta(days=3)
    assert updated.queue is None
    assert (updated.ticket_number, updated.phone) == (
        created.ticket_number,
        created.phone,
    )
    assert in_tx(sessions, repo.get_call_record, created.id) == updated
    with pytest.raises(repo.NotFoundError):
        in_tx(
            sessions, repo.update_call_record, created.id + 50, CallRecordUpdate(csat=1)
        )


def test_an_outcome_if_none_never_replaces_an_agents_outcome(sessions: sessionmaker[Session]) -> None:
    """The engine's call-back note at hangup (``outcome_if_none``) fills an empty outcome and
    leaves an agent's disposition as it is; an outcome given with it wins."""
    written = in_tx(sessions, repo.create_call_record, new_call(outcome="sale"), site_prefix="GD")
    empty = in_tx(sessions, repo.create_call_record, new_call(outcome=None), site_prefix="GD")
    note = CallRecordUpdate(outcome_if_none="message left; callback requested: 13912345678", csat=4)
    kept = in_tx(sessions, repo.update_call_record, written.id, note)
    assert (kept.outcome, kept.csat) == ("sale", 4)
    filled = in_tx(sessions, repo.update_call_record, empty.id, note)
    assert filled.outcome == "message left; callback requested: 13912345678"
    both = in_tx(sessions, repo.update_call_record, written.id,
                 CallRecordUpdate(outcome="resolved", outcome_if_none="ignored"))
    assert both.outcome == "resolved"
    with pytest.raises(InvalidFieldError, match="sale_agent_id"):
        CallRecordUpdate(sale_agent_id="2101")  # names the seller of a sale given with it


def test_get_call_record_by_uniqueid_returns_latest(
    sessions: sessionmaker[Session],
) -> None:
    """Looking up an Asterisk uniqueid finds the most recent record of that channel."""
    in_tx(sessions, repo.create_call_record, new_call(uniqueid="u1"), site_prefix="GD")
    later = in_tx(
        sessions,
        repo.create_call_record,
        new_call(uniqueid="u1", started_at=T0 + timedelta(minutes=5)),
        site_prefix="GD",
    )
    assert in_tx(sessions, repo.get_call_record_by_uniqueid, "u1") == later
    assert in_tx(sessions, repo.get_call_record_by_uniqueid, "nope") is None


def test_list_recent_call_records(sessions: sessionmaker[Session]) -> None:
    """Recent call records come newest first, limited, and filterable by agent/queue."""
    for minute, agent, queue_name in [
        (0, "a1", "sales"),
        (1, "a2", "sales"),
        (2, "a1", "help"),
    ]:
        in_tx(
            sessions,
            repo.create_call_record,
            new_call(
                started_at=T0 + timedelta(minutes=minute),
                agent_id=agent,
                queue=queue_name,
            ),
            site_prefix="GD",
        )
    recent = in_tx(sessions, repo.list_recent_call_records)
    assert [r.ticket_number[-3:] for r in recent] == ["003", "002", "001"]
    assert len(in_tx(sessions, repo.list_recent_call_records, limit=2)) == 2
    by_agent = in_tx(sessions, repo.list_recent_call_records, agent_id="a1")
    assert [r.ticket_number[-3:] for r in by_agent] == ["003", "001"]
    by_queue = in_tx(
        sessions, repo.list_recent_call_records, queue="sales", agent_id="a2"
    )
    assert [r.ticket_number[-3:] for r in by_queue] == ["002"]
    with pytest.raises(ValueError, match="^limit: "):
        in_tx(sessions, repo.list_recent_call_records, limit=0)


def test_follow_ups_due_are_the_agents_until_the_customer_is_called_again(sessions: sessionmaker[Session]) -> None:
    """Due by ``until``, earliest first, the agent's own; a later call with the number closes one."""
    def call(minute: int, phone: str, agent: str, follow_up: int | None) -> str:
        record = in_tx(sessions, repo.create_call_record, new_call(
            started_at=T0 + timedelta(minutes=minute), phone=phone, agent_id=agent, uniqueid=f"u{minute}",
            follow_up_at=None if follow_up is None else T0 + timedelta(hours=follow_up)), site_prefix="GD")
        return str(record.ticket_number)

    late = call(0, "13900000001", "a1", 3)
    early = call(1, "13900000002", "a1", 2)
    tomorrow = call(2, "13900000003", "a1", 30)  # due tomorrow
    call(3, "13900000004", "a2", 1)  # another agent's
    call(4, "13900000005", "a1", None)  # no follow-up
    closed = call(5, "13900000006", "a1", 1)
    call(90, "13900000006", "a2", None)  # the customer was called again (by anyone)

    def due(hours: int) -> list[str]:
        return [r.ticket_number for r in in_tx(sessions, repo.follow_ups_due, "a1", until=T0 + timedelta(hours=hours))]

    assert due(4) == [early, late]
    assert due(2) == [early]
    assert closed not in due(48) and len(due(48)) == 3
    assert due(24 * 30 + 2) == [late, tomorrow]  # 30 days on: overdue by 30 days or more is no longer listed
    with pytest.raises(ValueError, match="^agent_id: "):
        in_tx(sessions, repo.follow_ups_due, "", until=T0)


def test_database_enforces_csat_range(sessions: sessionmaker[Session]) -> None:
    """The CHECK constraint keeps csat in 1..5 even for writes that skip validation."""
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            models.CallRecord(
                ticket_number="GD20231027001",
                started_at=T0,
                direction="inbound",
                csat=7,
            )
        )
        session.flush()


def test_naive_datetimes_never_reach_the_database(
    sessions: sessionmaker[Session],
) -> None:
    """A naive datetime is refused at the column type, not silently taken as local time."""
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        sessions.begin() as s,
    ):
        s.add(
            models.CallRecord(
                ticket_number="GD20231027001",
                started_at=datetime(2023, 10, 27, 9, 30),
                direction="inbound",
            )
        )
        s.flush()


def test_queue_stays_of_the_day_so_far(sessions: sessionmaker[Session]) -> None:
    """queue_stays: records started since the day began and ended before the daemon started,
    with how their queue stay ended; records without one (never queued) are left out."""
    rows = [  # (minutes after T0 started, minutes long, queue_result, wait, talk)
        (-60, 5, "answered", 5, 200),  # yesterday, say
        (0, 5, "answered", 12, 240), (10, 2, "abandoned", 40, 0), (20, 5, "unanswered", 300, 0),
        (30, 5, None, None, 0),  # hung up in the IVR
        (40, 30, "answered", 3, 1700),  # still going when the daemon started
    ]
    for i, (start, length, result, wait, talk) in enumerate(rows):
        started = T0 + timedelta(minutes=start)
        in_tx(sessions, repo.create_call_record,
              new_call(started_at=started, ended_at=started + timedelta(minutes=length), queue="support",
                       queue_result=result, wait_seconds=wait, talk_seconds=talk, uniqueid=f"q.{i}"),
              site_prefix="GD")
    stays = in_tx(sessions, repo.queue_stays, since=T0, ended_before=T0 + timedelta(minutes=60))
    assert stays == [QueueStay("support", "answered", 12.0, 240.0), QueueStay("support", "abandoned", 40.0),
                     QueueStay("support", "unanswered", 300.0)]
    with pytest.raises(InvalidFieldError, match="^since: must be timezone-aware"):
        in_tx(sessions, repo.queue_stays, since=datetime(2023, 1, 1), ended_before=T0)


# --- input validation (pure) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: new_call(csat=7), "csat: must be 1..5, got 7"),
        (lambda: new_call(csat=0), "csat: must be 1..5, got 0"),
        (lambda: new_call(csat=True), "csat: must be 1..5, got True"),
        (lambda: CallRecordUpdate(csat=6), "csat: must be 1..5, got 6"),
        (
            lambda: new_call(direction="sideways"),
            "direction: must be 'inbound' or 'outbound'",
        ),
        (
            lambda: new_call(started_at=datetime(2023, 1, 1)),
            "started_at: must be timezone-aware",
        ),
        (
            lambda: new_call(wait_seconds=-1),
            "wait_seconds: must be an integer >= 0, got -1",
        ),
        (lambda: new_call(ivr_path="menu"), "ivr_path: must be a sequence"),
        (lambda: new_call(queue_result="lost"), "queue_result: must be one of answered, abandoned, unanswered"),
        (lambda: CallRecordUpdate(queue_result=""), "queue_result: must be one of"),
        (
            lambda: new_call(agent_id="x" * 65),
            "agent_id: must be at most 64 characters",
        ),
        (lambda: new_call(customer_id=0), "customer_id: must be an integer >= 1"),
        (lambda: NewCustomer("Ann", "12"), "phone: must be 3 to 15 digits"),
        (lambda: NewCustomer("Ann", "+33abc"), "phone: must be 3 to 15 digits"),
        (lambda: NewCustomer("  ", "+3312345"), "name: must not be empty"),
        (lambda: NewCustomer("Ann", "+3312345", email="nope"), "email: must look like"),
        (lambda: CustomerUpdate(vip="yes"), "vip: must be True or False"),  # type: ignore[arg-type]
        (
            lambda: NewRecording(1, "/r/a.wav", T0, -1.0, 10, "wav"),
            "duration_seconds: must be",
        ),
        (
            lambda: NewRecording(1, "/r/a.wav", T0, 1.0, -1, "wav"),
            "size_bytes: must be",
        ),
        (lambda: NewRecording(1, "/r/a.wav", T0, 1.0, 1, "WAV"), "format: must be"),
    ],
)
def test_invalid_input_names_the_field(
    build: Callable[[], object], message: str
) -> None:
    """Invalid inputs raise ValueError (InvalidFieldError) whose message names the field."""
    with pytest.raises(InvalidFieldError) as raised:
        build()
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(message)
    assert raised.value.field == message.split(":")[0]


def test_updates_leave_unset_fields_alone_and_normalise_set_ones() -> None:
    """UNSET means "do not touch"; set fields are validated like on creation."""
    update = CustomerUpdate(phone="+33 1 23 45")
    assert update.phone == "+3312345"
    assert update.name is UNSET
    assert normalize_phone("0033-1-23.45") == "003312345"
    assert CustomerUpdate(phone="0033-1-23.45").phone == "+3312345"


@pytest.mark.parametrize(("written", "canonical"), [
    # Chinese mobiles: without the country code
    ("+86 138 0013 8000", "13800138000"), ("008613800138000", "13800138000"),
    ("8613800138000", "13800138000"), ("138-0013-8000", "13800138000"),
    # geographic numbers: the trunk 0 and the area code, however written
    ("+86 20 1234 5678", "02012345678"), ("0086 20 1234 5678", "02012345678"),
    ("862012345678", "02012345678"), ("+86 (0)20 1234 5678", "02012345678"),
    ("020-1234-5678", "02012345678"), ("+86 755 8765 4321", "075587654321"),
    ("+86 10 6552 9988", "01065529988"), ("+86 871 123 4567", "08711234567"),
    # 400 / 800 service numbers stand alone
    ("+86 400 123 4567", "4001234567"), ("864001234567", "4001234567"), ("400-123-4567", "4001234567"),
    # a mobile with the old long-distance 0 (as landline trunks present it) is the mobile; Beijing stays
    ("013800138000", "13800138000"), ("+86 0 138 0013 8000", "13800138000"), ("010 1234 5678", "01012345678"),
    # other countries: + instead of the international prefix 00
    ("0033 1 23 45 67 89", "+33123456789"), ("+1 (212) 555-0100", "+12125550100"),
    # left as written: short numbers, local numbers, what cannot be Chinese
    ("95588", "95588"), ("10086", "10086"), ("12345678", "12345678"), ("86123", "86123"),
    ("+86123", "+86123"), ("86123456789012", "86123456789012"),
])
def test_canonical_phone_spells_each_line_one_way(written: str, canonical: str) -> None:
    """canonical_phone follows China's numbering plan; a second pass changes nothing."""
    assert canonical_phone(written) == canonical
    assert canonical_phone(canonical) == canonical


def test_canonical_phone_errors_name_the_field() -> None:
    with pytest.raises(InvalidFieldError, match=r"^dnc\[2\]: must be 3 to 15 digits"):
        canonical_phone("call me", "dnc[2]")


def test_a_spreadsheets_decimal_number_is_refused_not_read_as_another_number() -> None:
    """A column a spreadsheet saved as numbers (``13800000001.0``) was read as 138000000010,
    another number: a DNC list of them protected nobody. Dotted groups still read."""
    for written in ("13800000001.0", " 13800000001.00 ", "+8613800000001.0"):
        with pytest.raises(InvalidFieldError, match=r"^dnc\[3\]: reads as a spreadsheet's decimal number"):
            canonical_phone(written, "dnc[3]")
    assert canonical_phone("020.1234.5678") == "02012345678"
    assert canonical_phone("01.23.45.67.00") == "0123456700"


# --- recordings -----------------------------------------------------------------------------


def test_recordings_retention(sessions: sessionmaker[Session]) -> None:
    """Recordings older than N days are listed oldest first until marked purged."""
    call = in_tx(sessions, repo.create_call_record, new_call(), site_prefix="GD")
    now = T0 + timedelta(days=40)
    ages = {"old.wav": 35, "older.wav": 39, "new.wav": 5}
    stored = {
        name: in_tx(
            sessions,
            repo.add_recording,
            NewRecording(
                call.id,
                f"/var/rec/{name}",
                now - timedelta(days=age),
                61.5,
                980000,
                "wav",
                agent_id="a1",
            ),
        )
        for name, age in ages.items()
    }
    assert stored["old.wav"].started_at.tzinfo is UTC
    due = in_tx(sessions, repo.list_recordings_older_than, 30, now=now)
    assert [r.path for r in due] == ["/var/rec/older.wav", "/var/rec/old.wav"]
    assert (
        in_tx(sessions, repo.list_recordings_older_than, 30, now=now, limit=1)
        == due[:1]
    )

    purged = in_tx(sessions, repo.mark_recording_purged, due[0].id, purged_at=now)
    assert purged.purged_at == now
    again = in_tx(
        sessions,
        repo.mark_recording_purged,
        due[0].id,
        purged_at=now + timedelta(hours=1),
    )
    assert again.purged_at == now
    remaining = in_tx(sessions, repo.list_recordings_older_than, 30, now=now)
    assert [r.path for r in remaining] == ["/var/rec/old.wav"]
    assert len(in_tx(sessions, repo.list_recordings_for_call, call.id)) == 3
    with pytest.raises(repo.NotFoundError):
        in_tx(sessions, repo.mark_recording_purged, 9999, purged_at=now)


def test_recording_conflicts(sessions: sessionmaker[Session]) -> None:
    """A recording path is stored once, and only for an existing call record."""
    call = in_tx(sessions, repo.create_call_record, new_call(), site_prefix="GD")
    in_tx(
        sessions,
        repo.add_recording,
        NewRecording(call.id, "/r/a.wav", T0, 1.0, 100, "wav"),
    )
    with pytest.raises(repo.ConflictError, match="^path: "):
        in_tx(
            sessions,
            repo.add_recording,
            NewRecording(call.id, "/r/a.wav", T0, 1.0, 1, "wav"),
        )
    with pytest.raises(repo.ConflictError, match="^call_record_id: "):
        in_tx(
            sessions,
            repo.add_recording,
            NewRecording(999, "/r/b.wav", T0, 1.0, 1, "wav"),
        )


def test_a_recording_keeps_where_the_agent_paused_it(sessions: sessionmaker[Session]) -> None:
    """Pauses (card numbers) round-trip as (start, end) seconds; none by default; bad spans refused."""
    call = in_tx(sessions, repo.create_call_record, new_call(), site_prefix="GD")
    paused = in_tx(sessions, repo.add_recording, NewRecording(call.id, "/r/p.wav", T0, 60.0, 100, "wav",
                                                               pauses=((12.5, 18.0), (40, 41.5))))
    plain = in_tx(sessions, repo.add_recording, NewRecording(call.id, "/r/q.wav", T0, 60.0, 100, "wav"))
    assert (paused.pauses, plain.pauses) == (((12.5, 18.0), (40.0, 41.5)), ())
    stored = {r.path: r.pauses for r in in_tx(sessions, repo.list_recordings_for_call, call.id)}
    assert stored == {"/r/p.wav": ((12.5, 18.0), (40.0, 41.5)), "/r/q.wav": ()}
    for bad in (((5.0, 2.0),), ((1.0, 2.0), (1.5, 3.0)), ((-1.0, 2.0),), ((1.0,),), ((float("nan"), 1.0),), "x"):
        with pytest.raises(InvalidFieldError, match="pauses"):
            NewRecording(call.id, "/r/z.wav", T0, 60.0, 100, "wav", pauses=bad)  # type: ignore[arg-type]


# --- the Deferred facade on a real thread pool ----------------------------------------------


class ThreadCalls:
    """Stands in for the reactor: deferToThreadPool only needs ``callFromThread``.

    Calls from the pool are queued and run on the test thread by :meth:`result_of`,
    like a reactor would run them on its own thread; nothing global is touched.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[
            tuple[Callable[..., object], tuple[object, ...]]
        ] = queue.SimpleQueue()

    def callFromThread(self, f: Callable[..., object], *args: object) -> None:
        self._calls.put((f, args))

    def result_of(self, d: Deferred[T], timeout: float = 30) -> T | Failure:
        outcome: list[T | Failure] = []
        d.addBoth(outcome.append)
        while not outcome:
            f, args = self._calls.get(timeout=timeout)
            f(*args)
        return outcome[0]


@pytest.fixture
def facade(engine: sa.Engine) -> Iterator[tuple[repo.Repository, ThreadCalls]]:
    reactor = ThreadCalls()
    repository = repo.Repository(engine, repo.make_threadpool(maxthreads=2), reactor)  # type: ignore[arg-type]
    repository.start()
    yield repository, reactor
    repository.stop()


def test_facade_runs_blocking_work_on_the_pool(
    facade: tuple[repo.Repository, ThreadCalls],
) -> None:
    """Repository methods run SQL on a pool thread, never on the calling (reactor) thread,
    and deliver plain dataclasses through the Deferred."""
    repository, reactor = facade
    caller = threading.get_ident()

    def where(session: Session, tag: str) -> tuple[int, str]:
        session.execute(sa.text("SELECT 1"))
        return threading.get_ident(), tag

    ran_on, tag = reactor.result_of(repository.run(where, "x"))  # type: ignore[misc]
    assert ran_on != caller and tag == "x"

    customer = reactor.result_of(
        repository.create_customer(NewCustomer("Ann", "+3312345"))
    )
    assert not isinstance(customer, Failure)
    assert reactor.result_of(repository.find_customer_by_phone("+3312345")) == customer
    record = reactor.result_of(
        repository.create_call_record(
            new_call(customer_id=customer.id), site_prefix="GD"
        )
    )
    assert not isinstance(record, Failure)
    assert record.ticket_number == "GD20231027001"
    assert (
        reactor.result_of(repository.get_call_record_by_ticket(record.ticket_number))
        == record
    )


def test_facade_reports_errors_and_rolls_back(
    facade: tuple[repo.Repository, ThreadCalls],
) -> None:
    """An error in the blocking function fails the Deferred and rolls its transaction back."""
    repository, reactor = facade

    def create_then_fail(session: Session) -> None:
        repo.create_customer(session, NewCustomer("Ann", "+3312345"))
        raise RuntimeError("boom")

    failure = reactor.result_of(repository.run(create_then_fail))
    assert isinstance(failure, Failure) and isinstance(failure.value, RuntimeError)
    assert reactor.result_of(repository.find_customer_by_phone("+3312345")) is None

    conflict = reactor.result_of(
        repository.update_customer(12345, CustomerUpdate(name="x"))
    )
    assert isinstance(conflict, Failure) and isinstance(
        conflict.value, repo.NotFoundError
    )
