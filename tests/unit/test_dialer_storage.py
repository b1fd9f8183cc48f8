"""Dialer storage: campaigns, lead import, claiming, attempts, DNC, destruction, ledger.

Every test that touches a database runs twice, on SQLite (a file in tmp_path) and on
PostgreSQL (``postgres`` marker; the server comes from the ``tests.pgserver`` plugin).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.dialer.campaign import CallingHours, Campaign, LeadState, RetryPolicy
from callcenter.dialer.handout import Owners
from callcenter.storage import dialer as store
from callcenter.storage import models
from callcenter.storage.db import (
    alembic_config,
    create_engine_for,
    current_revision,
    head_revision,
    make_session_factory,
    upgrade_database,
)
from callcenter.storage.dialer_records import AttemptResult, LeadRow, RowProblem
from callcenter.storage.records import InvalidFieldError
from tests.concurrency import run_at_once
from tests.syncrepository import in_tx

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 10:00 in Shanghai (campaign zone, callable); 21:00 the day before in New York (not).
NOW = datetime(2024, 3, 5, 2, 0, tzinfo=UTC)
NY_MORNING = datetime(2024, 3, 5, 13, 0, tzinfo=UTC)  # 08:00 EST



def campaign(name: str = "spring", **overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "name": name, "caller_id": "02012345678", "queue": "outbound", "timezone": "Asia/Shanghai",
        "calling_hours": CallingHours(time(8, 0), time(21, 0)),
        "retry": RetryPolicy(max_attempts=2, retry_minutes={"busy": 30, "noanswer": 120, "failed": 60,
                                                           "machine": None, "abandoned": 72 * 60}),
    }
    fields.update(overrides)
    return Campaign(**fields)


@pytest.fixture
def campaign_id(sessions: sessionmaker[Session]) -> int:
    (record,) = in_tx(sessions, store.sync_campaigns, [campaign()], now=NOW)
    return record.id


def phones(n: int, start: int = 0) -> list[str]:
    return [f"138{start + i:08d}" for i in range(n)]


def import_phones(sessions: sessionmaker[Session], campaign_id: int, numbers: list[str],
                  now: datetime = NOW, **row: Any) -> int:
    rows = [LeadRow(line=i + 2, phone=p, **row) for i, p in enumerate(numbers)]
    result = in_tx(sessions, store.import_leads, campaign_id, rows, list_name="test",
                   source_file="test.csv", actor="ops", now=now)
    assert result.rows_ok == len(numbers), result.problems
    return result.list_id


def claim(sessions: sessionmaker[Session], campaign_id: int, limit: int, now: datetime = NOW) -> list[Any]:
    return in_tx(sessions, store.claim_leads, campaign_id, limit=limit, now=now)


def lead_of(sessions: sessionmaker[Session], lead_id: int) -> Any:
    lead = in_tx(sessions, store.get_lead, lead_id)
    assert lead is not None
    return lead


# --- migration ------------------------------------------------------------------------------

DIALER_TABLES = {"campaigns", "lead_lists", "leads", "dial_attempts", "dnc_numbers", "audit_log"}


def test_dialer_migration_adds_and_drops_exactly_its_tables(engine: sa.Engine) -> None:
    """Revision 0002 creates the six dialer tables; downgrading to 0001 drops exactly them."""
    assert DIALER_TABLES <= set(models.Base.metadata.tables)
    assert DIALER_TABLES <= set(sa.inspect(engine).get_table_names())
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert set(sa.inspect(engine).get_table_names()) == {"customers", "call_records", "recordings",
                                                         "alembic_version"}
    upgrade_database(engine)
    assert current_revision(engine) == head_revision()
    assert DIALER_TABLES <= set(sa.inspect(engine).get_table_names())


def test_lead_rows_enforce_the_waiting_invariant(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """The database refuses a waiting lead without next_attempt_at and an unknown attempt outcome."""
    list_id = import_phones(sessions, campaign_id, phones(1))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(models.Lead(campaign_id=campaign_id, list_id=list_id, phone="555000", state="new",
                                next_attempt_at=None, extra={}))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(models.DialAttempt(campaign_id=campaign_id, phone_hash="0" * 64, attempt_no=1,
                                       started_at=NOW, outcome="dropped"))


# --- campaigns ------------------------------------------------------------------------------


def test_sync_campaigns_upserts_by_name_and_round_trips_rules(sessions: sessionmaker[Session]) -> None:
    """A campaign keeps its id across edits, updated_at moves only on a change, rules() gives it back."""
    first = campaign()
    (created,) = in_tx(sessions, store.sync_campaigns, [first], now=NOW)
    assert created.rules() == first
    (same,) = in_tx(sessions, store.sync_campaigns, [first], now=NOW + timedelta(hours=1))
    assert same == created
    edited = campaign(dial_mode="progressive", calling_hours=CallingHours(time(9, 0), time(20, 30)))
    other = campaign("autumn")
    changed, added = in_tx(sessions, store.sync_campaigns, [edited, other], now=NOW + timedelta(hours=2))
    assert changed.id == created.id and changed.rules() == edited
    assert changed.updated_at == NOW + timedelta(hours=2) and changed.created_at == NOW
    assert added.id != created.id
    assert in_tx(sessions, store.get_campaign, "spring") == changed
    assert in_tx(sessions, store.get_campaign, created.id) == changed
    assert in_tx(sessions, store.get_campaign, str(created.id)) == changed
    assert in_tx(sessions, store.get_campaign, "nope") is None
    assert [c.name for c in in_tx(sessions, store.list_campaigns)] == ["autumn", "spring"]
    with pytest.raises(ValueError, match="^campaigns: name 'spring' given more than once"):
        in_tx(sessions, store.sync_campaigns, [first, first], now=NOW)


# --- import ---------------------------------------------------------------------------------


def test_import_keeps_good_rows_and_reports_duplicates_dnc_and_parse_problems(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """Duplicates (in the input and in the campaign) and DNC numbers are skipped by line; parse
    problems are counted; good rows become new leads due now, with their extra columns."""
    import_phones(sessions, campaign_id, ["13900000001"])
    in_tx(sessions, store.add_dnc, ["139-0000-0003"], source="national", now=NOW)
    rows = [
        LeadRow(2, "13900000001"),  # already a lead
        LeadRow(3, "13900000002", name="王伟", timezone="Asia/Shanghai", extra={"city": "广州"}),
        LeadRow(4, "13900000003"),  # DNC
        LeadRow(5, "139 0000 0002"),  # repeats line 3
        LeadRow(7, "13900000004"),
    ]
    parse = [RowProblem(6, "phone", "missing", ("", "x")),
             RowProblem(8, "phone", "duplicate of line 7 (13900000004)", ("13900000004",))]
    result = in_tx(sessions, store.import_leads, campaign_id, rows, list_name="march", source_file="m.csv",
                   actor="li", now=NOW, parse_problems=parse)
    assert result.rows_ok == 2 and result.duplicates == 3 and result.dnc == 1
    assert [(p.line, p.field, p.reason) for p in result.problems] == [
        (2, "phone", "already a lead of campaign 'spring'"),
        (4, "phone", "on the do-not-call list"),
        (5, "phone", "duplicate of line 3 (13900000002)"),
        (6, "phone", "missing"),
        (8, "phone", "duplicate of line 7 (13900000004)"),
    ]
    lead_list = in_tx(sessions, store.get_lead_list, result.list_id)
    assert lead_list is not None
    assert (lead_list.rows_ok, lead_list.rows_bad, lead_list.imported_by, lead_list.source_file) == (
        2, 5, "li", "m.csv")
    with sessions.begin() as session:
        leads = session.scalars(sa.select(models.Lead).where(models.Lead.list_id == result.list_id)
                                .order_by(models.Lead.id)).all()
        stored = [(x.phone, x.name, x.timezone, x.extra, x.state, x.attempts, x.next_attempt_at) for x in leads]
    assert stored == [
        ("13900000002", "王伟", "Asia/Shanghai", {"city": "广州"}, "new", 0, NOW),
        ("13900000004", None, None, {}, "new", 0, NOW),
    ]


def test_import_in_chunks_keeps_every_row(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """An import larger than one INSERT chunk and one lookup chunk stores every row exactly once."""
    numbers = phones(store.IMPORT_CHUNK * 2 + 7)
    in_tx(sessions, store.add_dnc, numbers[1500:1503], source="test", now=NOW)
    rows = [LeadRow(i + 2, p) for i, p in enumerate(numbers)]
    result = in_tx(sessions, store.import_leads, campaign_id, rows, list_name="big", source_file="big.csv",
                   actor="ops", now=NOW)
    assert result.rows_ok == len(numbers) - 3 and result.dnc == 3
    progress = in_tx(sessions, store.campaign_progress, campaign_id)
    assert progress.leads_by_state["new"] == len(numbers) - 3


def test_import_rejects_unknown_campaign_and_bad_arguments(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """A missing campaign is NotFoundError; an empty list name or actor names the field."""
    with pytest.raises(store.NotFoundError, match="^campaign_id: campaign 999 not found"):
        in_tx(sessions, store.import_leads, 999, [], list_name="x", source_file="x", actor="a", now=NOW)
    with pytest.raises(ValueError, match="^actor: "):
        in_tx(sessions, store.import_leads, campaign_id, [], list_name="x", source_file="x", actor=" ", now=NOW)


# --- claiming -------------------------------------------------------------------------------


def test_claim_takes_oldest_due_first_and_opens_one_attempt_each(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """Leads come oldest due first, move to dialing with attempts+1 and an in-flight attempt row."""
    import_phones(sessions, campaign_id, phones(3, 10), now=NOW - timedelta(minutes=5))
    import_phones(sessions, campaign_id, phones(3, 0), now=NOW - timedelta(minutes=10))
    import_phones(sessions, campaign_id, phones(2, 20), now=NOW + timedelta(minutes=1))  # not due yet
    claimed = claim(sessions, campaign_id, 4)
    assert [c.phone for c in claimed] == phones(3, 0) + phones(1, 10)
    assert all(c.attempt_no == 1 and c.timezone == "Asia/Shanghai" for c in claimed)
    lead = lead_of(sessions, claimed[0].lead_id)
    assert (lead.state, lead.attempts, lead.next_attempt_at) == ("dialing", 1, None)
    attempts = in_tx(sessions, store.list_attempts, campaign_id, outcome="in_flight")
    assert {a.id for a in attempts} == {c.attempt_id for c in claimed}
    first = next(a for a in attempts if a.id == claimed[0].attempt_id)
    assert (first.started_at, first.outcome, first.phone, first.lead_id) == (NOW, None, phones(1)[0], lead.id)
    assert first.phone_hash == store.phone_hash(phones(1)[0])
    assert [c.phone for c in claim(sessions, campaign_id, 10)] == phones(2, 11)
    assert claim(sessions, campaign_id, 10) == []  # the rest are in flight or not due


def test_the_backlog_counts_leads_still_to_call_due_now_and_the_oldest(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """Waiting (new or retry), due now, and the oldest waiting lead's creation; a lead being
    dialed is not waiting; another campaign's and a campaign with none are apart."""
    (other,) = in_tx(sessions, store.sync_campaigns, [campaign("autumn")], now=NOW)
    assert in_tx(sessions, store.lead_backlogs, [campaign_id, other.id], now=NOW) == {
        campaign_id: store.LeadBacklog(0, 0, None), other.id: store.LeadBacklog(0, 0, None)}
    import_phones(sessions, campaign_id, phones(3, 0), now=NOW - timedelta(hours=2))
    import_phones(sessions, campaign_id, phones(2, 10), now=NOW + timedelta(minutes=30))  # not due yet
    import_phones(sessions, other.id, phones(1, 20), now=NOW - timedelta(days=1))
    claim(sessions, campaign_id, 1)  # the oldest is being dialed
    found = in_tx(sessions, store.lead_backlogs, [campaign_id, other.id], now=NOW)
    assert found[campaign_id] == store.LeadBacklog(4, 2, NOW - timedelta(hours=2))
    assert found[other.id] == store.LeadBacklog(1, 1, NOW - timedelta(days=1))
    assert in_tx(sessions, store.lead_backlogs, [], now=NOW) == {}


def test_claims_in_a_row_never_return_a_lead_in_flight(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """dialing is the lock: repeated claims hand out each lead once until its attempt ends."""
    import_phones(sessions, campaign_id, phones(30))
    seen: list[int] = []
    for _ in range(10):
        seen += [c.lead_id for c in claim(sessions, campaign_id, 4)]
    assert len(seen) == 30 and len(set(seen)) == 30


def test_claim_never_dials_dnc_and_closes_those_leads(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """A lead whose number joined the DNC list after import is closed as 'dnc', with no attempt."""
    import_phones(sessions, campaign_id, phones(12))
    in_tx(sessions, store.add_dnc, phones(10), source="complaint", reason="asked", now=NOW)
    claimed = claim(sessions, campaign_id, 1)  # 10 DNC leads come first: several batches of 4
    assert [c.phone for c in claimed] == [phones(11)[10]]
    progress = in_tx(sessions, store.campaign_progress, campaign_id)
    assert progress.leads_by_final == {"dnc": 10}
    assert progress.leads_by_state == {"new": 1, "retry": 0, "dialing": 1, "done": 10}
    assert progress.in_flight == 1 and progress.attempts == 1


def test_claim_reschedules_out_of_hours_leads_in_their_own_time_zone(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """A New York lead at 21:00 local waits for 08:00 New York time; Shanghai leads are dialed."""
    ny = import_phones(sessions, campaign_id, phones(2), timezone="America/New_York")
    import_phones(sessions, campaign_id, phones(1, 50), now=NOW + timedelta(seconds=1))
    claimed = claim(sessions, campaign_id, 5, now=NOW + timedelta(seconds=1))
    assert [c.phone for c in claimed] == phones(1, 50)
    with sessions.begin() as session:
        waiting = session.scalars(sa.select(models.Lead).where(models.Lead.list_id == ny)).all()
        assert {(x.state, x.next_attempt_at, x.attempts) for x in waiting} == {("new", NY_MORNING, 0)}
    assert in_tx(sessions, store.list_attempts, campaign_id, outcome="in_flight")[0].phone == phones(1, 50)[0]
    later = claim(sessions, campaign_id, 5, now=NY_MORNING)
    assert sorted(c.phone for c in later) == phones(2)
    assert {c.timezone for c in later} == {"America/New_York"}


def test_claim_outside_campaign_hours_dials_nobody(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """At 22:00 in the campaign's zone leads without their own zone wait for 08:00 there."""
    import_phones(sessions, campaign_id, phones(3), now=NOW)
    night = datetime(2024, 3, 5, 14, 0, tzinfo=UTC)  # 22:00 Shanghai
    assert claim(sessions, campaign_id, 3, now=night) == []
    morning = datetime(2024, 3, 6, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    with sessions.begin() as session:
        assert set(session.scalars(sa.select(models.Lead.next_attempt_at))) == {morning}
    assert len(claim(sessions, campaign_id, 3, now=morning)) == 3


def test_inactive_campaign_claims_nothing(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """A campaign switched off in the configuration hands out no leads."""
    import_phones(sessions, campaign_id, phones(2))
    in_tx(sessions, store.sync_campaigns, [campaign(active=False)], now=NOW)
    assert claim(sessions, campaign_id, 2) == []


def test_concurrent_claimers_never_share_a_lead(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Threads claiming at once (each in its own transaction) never get the same lead."""
    import_phones(sessions, campaign_id, phones(120))
    threads, rounds = 4, 8
    got = run_at_once(threads, rounds, lambda: [c.lead_id for c in claim(sessions, campaign_id, 3)])
    assert len(got) == len(set(got)) == threads * rounds * 3


@pytest.mark.postgres
def test_postgres_open_claims_skip_each_others_leads(pg_sessions: sessionmaker[Session]) -> None:
    """Two open transactions on PostgreSQL claim disjoint leads without waiting (SKIP LOCKED)."""
    sessions = pg_sessions
    (record,) = in_tx(sessions, store.sync_campaigns, [campaign()], now=NOW)
    import_phones(sessions, record.id, phones(10))
    with sessions() as first, sessions() as second:
        a = store.claim_leads(first, record.id, limit=4, now=NOW)
        b = store.claim_leads(second, record.id, limit=4, now=NOW)
        assert not {x.lead_id for x in a} & {x.lead_id for x in b}
        assert len(a) == len(b) == 4
        first.commit()
        second.rollback()
    assert len(claim(sessions, record.id, 10)) == 6  # b's leads came back after its rollback


# --- finishing attempts ---------------------------------------------------------------------


def test_finish_applies_the_retry_policy(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """busy -> retry 30 min later, then reclaimed as attempt 2; the max attempts end it 'exhausted';
    human ends it 'human'; machine (no retry in this campaign) ends it 'machine'."""
    import_phones(sessions, campaign_id, phones(3))
    busy, human, machine = claim(sessions, campaign_id, 3)
    end = NOW + timedelta(seconds=40)
    decision = in_tx(sessions, store.finish_attempt, busy.attempt_id,
                     AttemptResult("busy", ring_seconds=3.5, uniqueid="dial-1"), now=end)
    assert (decision.state, decision.next_attempt_at, decision.final) == (
        LeadState.RETRY, end + timedelta(minutes=30), None)
    lead = lead_of(sessions, busy.lead_id)
    assert (lead.state, lead.next_attempt_at, lead.last_outcome, lead.final_outcome) == (
        "retry", end + timedelta(minutes=30), "busy", None)
    in_tx(sessions, store.finish_attempt, human.attempt_id,
          AttemptResult("human", ring_seconds=8.0, answered_at=NOW + timedelta(seconds=8), agent_id="2101",
                        amd_status="HUMAN", connect_seconds=0.4, talk_seconds=180.0), now=end)
    in_tx(sessions, store.finish_attempt, machine.attempt_id, AttemptResult("machine", amd_status="MACHINE"), now=end)
    assert lead_of(sessions, human.lead_id).final_outcome == "human"
    assert (lead_of(sessions, machine.lead_id).state, lead_of(sessions, machine.lead_id).final_outcome) == (
        "done", "machine")

    assert claim(sessions, campaign_id, 3, now=end + timedelta(minutes=29)) == []
    (again,) = claim(sessions, campaign_id, 3, now=end + timedelta(minutes=31))
    assert (again.lead_id, again.attempt_no) == (busy.lead_id, 2)
    last = in_tx(sessions, store.finish_attempt, again.attempt_id, AttemptResult("noanswer"),
                 now=end + timedelta(minutes=32))
    assert (last.state, last.final) == (LeadState.DONE, "exhausted")
    lead = lead_of(sessions, busy.lead_id)
    assert (lead.state, lead.attempts, lead.last_outcome, lead.final_outcome) == ("done", 2, "noanswer", "exhausted")
    stored = {a.id: a for a in in_tx(sessions, store.list_attempts, campaign_id)}
    talk = stored[human.attempt_id]
    assert (talk.outcome, talk.agent_id, talk.connect_seconds, talk.talk_seconds, talk.ended_at) == (
        "human", "2101", 0.4, 180.0, end)
    assert stored[busy.attempt_id].uniqueid == "dial-1"


def test_an_attempt_ends_once(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Finishing a finished attempt is a ConflictError naming it; an unknown one is NotFoundError."""
    import_phones(sessions, campaign_id, phones(1))
    (lead,) = claim(sessions, campaign_id, 1)
    in_tx(sessions, store.finish_attempt, lead.attempt_id, AttemptResult("noanswer"), now=NOW)
    with pytest.raises(store.ConflictError, match=f"^attempt_id: dial attempt {lead.attempt_id} already ended"):
        in_tx(sessions, store.finish_attempt, lead.attempt_id, AttemptResult("human"), now=NOW)
    with pytest.raises(store.NotFoundError, match="^attempt_id: dial attempt 9999 not found"):
        in_tx(sessions, store.finish_attempt, 9999, AttemptResult("human"), now=NOW)
    assert lead_of(sessions, lead.lead_id).last_outcome == "noanswer"


def test_attempt_result_validates_its_fields() -> None:
    """Unknown outcomes, negative seconds and naive datetimes name the field."""
    with pytest.raises(InvalidFieldError, match="^outcome: 'dropped' is not one of"):
        AttemptResult("dropped")
    with pytest.raises(InvalidFieldError, match="^ring_seconds: "):
        AttemptResult("busy", ring_seconds=-1)
    with pytest.raises(InvalidFieldError, match="^answered_at: "):
        AttemptResult("human", answered_at=datetime(2024, 1, 1))


def test_stale_attempts_end_failed_and_their_leads_are_decided(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """Attempts left in flight before the cutoff end as 'failed' with the reason; newer ones stay."""
    import_phones(sessions, campaign_id, phones(2))
    (old,) = claim(sessions, campaign_id, 1)
    (new,) = claim(sessions, campaign_id, 1, now=NOW + timedelta(minutes=10))
    restart = NOW + timedelta(minutes=5)
    ended = in_tx(sessions, store.fail_stale_attempts, campaign_id, started_before=restart,
                  reason="open when the dialer restarted", now=restart)
    assert ended == 1
    (failed,) = in_tx(sessions, store.list_attempts, campaign_id, outcome="failed")
    assert (failed.id, failed.detail, failed.ended_at) == (old.attempt_id, "open when the dialer restarted", restart)
    lead = lead_of(sessions, old.lead_id)
    assert (lead.state, lead.next_attempt_at) == ("retry", restart + timedelta(minutes=60))
    assert [a.id for a in in_tx(sessions, store.list_attempts, campaign_id, outcome="in_flight")] == [new.attempt_id]
    assert in_tx(sessions, store.fail_stale_attempts, campaign_id, started_before=restart, reason="again",
                 now=restart) == 0


def test_a_start_reads_the_open_attempts_and_keeps_those_it_adopted(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """open_attempts lists what an earlier run left in flight (not newer ones); the stale
    ones end as failed but those kept (calls found live and adopted)."""
    import_phones(sessions, campaign_id, phones(3))
    first, second = claim(sessions, campaign_id, 2)
    (new,) = claim(sessions, campaign_id, 1, now=NOW + timedelta(minutes=10))
    restart = NOW + timedelta(minutes=5)
    left = in_tx(sessions, store.open_attempts, started_before=restart)
    assert [(a.attempt.id, a.attempt.lead_id, a.attempt.campaign_id, a.lead_team) for a in left] == [
        (first.attempt_id, first.lead_id, campaign_id, None), (second.attempt_id, second.lead_id, campaign_id, None)]
    assert in_tx(sessions, store.fail_stale_attempts, campaign_id, started_before=restart, reason="gone",
                 now=restart, keep={second.attempt_id}) == 1
    assert sorted(a.id for a in in_tx(sessions, store.list_attempts, campaign_id, outcome="in_flight")) == [
        second.attempt_id, new.attempt_id]


def test_recycle_puts_exhausted_leads_back_and_refuses_reached_ones(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """Recycling 'exhausted' makes those leads due now with attempts reset; human/dnc are refused."""
    import_phones(sessions, campaign_id, phones(2))
    a, b = claim(sessions, campaign_id, 2)
    in_tx(sessions, store.finish_attempt, a.attempt_id, AttemptResult("human"), now=NOW)
    in_tx(sessions, store.finish_attempt, b.attempt_id, AttemptResult("noanswer"), now=NOW)
    (b2,) = claim(sessions, campaign_id, 1, now=NOW + timedelta(hours=3))
    in_tx(sessions, store.finish_attempt, b2.attempt_id, AttemptResult("noanswer"), now=NOW + timedelta(hours=3))
    assert lead_of(sessions, b.lead_id).final_outcome == "exhausted"
    later = NOW + timedelta(days=7)
    assert in_tx(sessions, store.recycle_leads, campaign_id, finals={"exhausted"}, now=later) == 1
    lead = lead_of(sessions, b.lead_id)
    assert (lead.state, lead.attempts, lead.next_attempt_at, lead.final_outcome) == ("retry", 0, later, None)
    assert lead_of(sessions, a.lead_id).state == "done"
    for final in ("human", "dnc", "abandoned"):
        with pytest.raises(ValueError, match=f"^finals: '{final}' leads are never recycled"):
            in_tx(sessions, store.recycle_leads, campaign_id, finals=[final], now=later)
    with pytest.raises(ValueError, match="^finals: 'reached' is not one of"):
        in_tx(sessions, store.recycle_leads, campaign_id, finals=["reached"], now=later)


def test_release_takes_back_a_claim_that_placed_no_call(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """A skipped preview: the in-flight attempt goes, the lead waits again with its count as before
    (new, or retry after an earlier call); an attempt that ended is left alone."""
    import_phones(sessions, campaign_id, phones(2))
    a, b = claim(sessions, campaign_id, 2)
    in_tx(sessions, store.finish_attempt, b.attempt_id, AttemptResult("busy"), now=NOW)
    later = NOW + timedelta(hours=1)
    assert in_tx(sessions, store.release_attempt, a.attempt_id, due_at=later, now=NOW) is True
    lead = lead_of(sessions, a.lead_id)
    assert (lead.state, lead.attempts, lead.next_attempt_at) == ("new", 0, later)
    assert in_tx(sessions, store.release_attempt, b.attempt_id, due_at=later, now=NOW) is False  # it ended
    (b2,) = claim(sessions, campaign_id, 1, now=NOW + timedelta(hours=3))
    assert b2.lead_id == b.lead_id and b2.attempt_no == 2
    assert in_tx(sessions, store.release_attempt, b2.attempt_id, due_at=later, now=NOW) is True
    lead = lead_of(sessions, b.lead_id)
    assert (lead.state, lead.attempts) == ("retry", 1)
    with sessions() as session:
        outcomes = [x.outcome for x in store.list_attempts(session, campaign_id, limit=10)]
    assert outcomes == ["busy"]  # only the call that was placed is in the history


def test_reopen_dials_a_done_lead_again_but_not_a_waiting_or_dnc_one(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """A repeat call-back request: the done lead is due again (attempts from 0, new ticket); a lead
    still waiting, a number not in the campaign and a number on the DNC list are left alone."""
    import_phones(sessions, campaign_id, phones(3))
    a, b, c = claim(sessions, campaign_id, 3)
    in_tx(sessions, store.finish_attempt, a.attempt_id, AttemptResult("human"), now=NOW)
    in_tx(sessions, store.finish_attempt, b.attempt_id, AttemptResult("busy"), now=NOW)
    in_tx(sessions, store.finish_attempt, c.attempt_id, AttemptResult("human"), now=NOW)
    later = NOW + timedelta(days=1)
    row = LeadRow(line=1, phone=a.phone, name="Li Lei", extra={"ticket": "GD20261203001"})
    assert in_tx(sessions, store.reopen_lead, campaign_id, row, now=later) is True
    lead = lead_of(sessions, a.lead_id)
    assert (lead.state, lead.attempts, lead.next_attempt_at, lead.final_outcome) == ("new", 0, later, None)
    assert (lead.name, lead.extra["ticket"]) == ("Li Lei", "GD20261203001")
    assert in_tx(sessions, store.reopen_lead, campaign_id, row, now=later) is False  # waiting already
    busy = LeadRow(line=1, phone=b.phone)
    assert in_tx(sessions, store.reopen_lead, campaign_id, busy, now=later) is False  # a retry is due
    assert lead_of(sessions, b.lead_id).state == "retry"
    assert in_tx(sessions, store.reopen_lead, campaign_id, LeadRow(line=1, phone="13999999999"), now=later) is False
    in_tx(sessions, store.add_dnc, [c.phone], source="test", now=later)
    assert in_tx(sessions, store.reopen_lead, campaign_id, LeadRow(line=1, phone=c.phone), now=later) is False
    assert lead_of(sessions, c.lead_id).state == "done"


# --- DNC ------------------------------------------------------------------------------------


def test_dnc_add_check_remove(sessions: sessionmaker[Session]) -> None:
    """Numbers are normalised, repeats ignored, and each removal leaves an audit row."""
    assert in_tx(sessions, store.add_dnc, ["+86 138-0013-8000", "+8613800138000", "12345"],
                 source="national", reason="registry", now=NOW) == 2
    assert in_tx(sessions, store.add_dnc, ["12345", "67890"], source="complaint", now=NOW) == 1
    assert in_tx(sessions, store.is_dnc, "+86 (138) 0013 8000")
    assert not in_tx(sessions, store.is_dnc, "+8613800138001")
    assert in_tx(sessions, store.remove_dnc, ["12345", "99999"], actor="compliance", now=NOW) == 1
    assert not in_tx(sessions, store.is_dnc, "12345")
    (entry,) = in_tx(sessions, store.list_audit, limit=10)
    assert (entry.action, entry.actor, entry.subject) == ("dnc.remove", "compliance", f"dnc:{store.phone_hash('12345')}")
    with pytest.raises(ValueError, match=r"^phones\[1\]: "):
        in_tx(sessions, store.add_dnc, ["12345", "call me"], source="x", now=NOW)


# --- destruction ----------------------------------------------------------------------------


def test_destroy_refuses_while_leads_are_dialing_or_waiting(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """No destruction while a lead is being dialed; waiting leads need force; the errors name the list."""
    list_id = import_phones(sessions, campaign_id, phones(3))
    (dialing,) = claim(sessions, campaign_id, 1)
    with pytest.raises(store.ConflictError, match=f"^list_id: lead list {list_id} has 1 lead\\(s\\) being dialed"):
        in_tx(sessions, store.destroy_lead_list, list_id, actor="dpo", now=NOW, force=True)
    in_tx(sessions, store.finish_attempt, dialing.attempt_id, AttemptResult("human"), now=NOW)
    with pytest.raises(store.ConflictError, match="has 2 lead\\(s\\) not done"):
        in_tx(sessions, store.destroy_lead_list, list_id, actor="dpo", now=NOW)
    with pytest.raises(store.NotFoundError, match="^list_id: lead list 999 not found"):
        in_tx(sessions, store.destroy_lead_list, 999, actor="dpo", now=NOW)
    assert in_tx(sessions, store.campaign_progress, campaign_id).leads == 3


def test_destroy_deletes_leads_blanks_numbers_keeps_hashes_and_audits(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """After use a list's leads are gone, their attempts keep only the number's hash, the other
    list is untouched, the ledger still counts, and the audit row says what, who and when."""
    list_id = import_phones(sessions, campaign_id, phones(2))
    other = import_phones(sessions, campaign_id, phones(1, 100), now=NOW + timedelta(seconds=1))
    a, b = claim(sessions, campaign_id, 2)
    in_tx(sessions, store.finish_attempt, a.attempt_id, AttemptResult("abandoned"), now=NOW)
    in_tx(sessions, store.finish_attempt, b.attempt_id, AttemptResult("human"), now=NOW)
    with pytest.raises(store.ConflictError):
        in_tx(sessions, store.destroy_lead_list, list_id, actor="dpo", now=NOW)  # a waits to retry
    when = NOW + timedelta(days=1)
    result = in_tx(sessions, store.destroy_lead_list, list_id, actor="dpo", now=when, force=True)
    assert (result.leads_deleted, result.attempts_blanked, result.forced) == (2, 2, True)
    assert in_tx(sessions, store.get_lead, a.lead_id) is None
    attempts = in_tx(sessions, store.list_attempts, campaign_id)
    assert {(x.phone, x.lead_id, x.phone_hash) for x in attempts} == {
        (None, None, store.phone_hash(p)) for p in phones(2)}
    lead_list = in_tx(sessions, store.get_lead_list, list_id)
    assert lead_list is not None and (lead_list.destroyed_at, lead_list.destroyed_by) == (when, "dpo")
    assert in_tx(sessions, store.campaign_progress, campaign_id).leads == 1
    assert in_tx(sessions, store.get_lead_list, other) is not None
    (entry,) = in_tx(sessions, store.list_audit, limit=5)
    assert (entry.id, entry.at, entry.actor, entry.action, entry.subject) == (
        result.audit_id, when, "dpo", "leads.destroy", f"lead_list:{list_id}")
    assert entry.detail == {
        "list_id": list_id, "list_name": "test", "source_file": "test.csv", "campaign": "spring",
        "campaign_id": campaign_id, "leads_deleted": 2, "leads_by_state": {"done": 1, "retry": 1},
        "attempts_blanked": 2, "forced": True, "actor": "dpo", "at": when.isoformat(),
    }
    ledger = in_tx(sessions, store.abandon_ledger, campaign_id, day=date(2024, 3, 5), tz=SHANGHAI)
    assert (ledger.humans, ledger.abandoned_calls, ledger.rate) == (1, 1, 0.5)
    with pytest.raises(store.ConflictError, match=f"^list_id: lead list {list_id} was destroyed at"):
        in_tx(sessions, store.destroy_lead_list, list_id, actor="dpo", now=when)


# --- abandon ledger -------------------------------------------------------------------------


def add_attempts(sessions: sessionmaker[Session], campaign_id: int, when: datetime, outcomes: dict[str, int]) -> None:
    """Finished attempts started at ``when`` (straight into the table: the ledger only reads)."""
    with sessions.begin() as session:
        for outcome, count in outcomes.items():
            for _ in range(count):
                session.add(models.DialAttempt(campaign_id=campaign_id, phone_hash="0" * 64, attempt_no=1,
                                               started_at=when, ended_at=when, outcome=outcome))


def test_ledger_counts_local_days_and_machine_share(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Attempts count on their local start day; a share of machine verdicts counts as abandoned."""
    day = date(2024, 3, 5)
    late = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: still the 5th
    after_midnight = datetime(2024, 3, 5, 16, 30, tzinfo=UTC)  # 00:30 on the 6th
    add_attempts(sessions, campaign_id, late, {"human": 95, "abandoned": 5, "machine": 20, "busy": 40})
    add_attempts(sessions, campaign_id, after_midnight, {"abandoned": 50})
    ledger = in_tx(sessions, store.abandon_ledger, campaign_id, day=day, tz=SHANGHAI)
    assert (ledger.humans, ledger.abandoned_calls, ledger.machines) == (95, 5, 20)
    assert (ledger.live_answers, ledger.abandoned, ledger.rate) == (100, 5, 0.05)
    estimated = in_tx(sessions, store.abandon_ledger, campaign_id, day=day, tz=SHANGHAI, machine_as_abandoned=0.25)
    assert (estimated.live_answers, estimated.abandoned) == (105, 10)
    assert estimated.rate == pytest.approx(10 / 105)
    # In UTC the late attempts and the ones after Shanghai's midnight fall on the same day.
    utc = in_tx(sessions, store.abandon_ledger, campaign_id, day=day, tz=ZoneInfo("UTC"))
    assert (utc.humans, utc.abandoned_calls) == (95, 55)
    with pytest.raises(ValueError, match="^machine_as_abandoned: "):
        in_tx(sessions, store.abandon_ledger, campaign_id, day=day, tz=SHANGHAI, machine_as_abandoned=1.5)


def test_ledger_window_is_30_days_or_since_the_first_attempt(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """The rolling window covers the 30 days ending with the day (or since the campaign's
    first attempt); older attempts drop out; a day without live answers has rate 0."""
    noon = time(12, 0)

    def at(day: date) -> datetime:
        return datetime.combine(day, noon, tzinfo=SHANGHAI)

    start = date(2024, 1, 1)
    add_attempts(sessions, campaign_id, at(start), {"human": 10, "abandoned": 10})
    add_attempts(sessions, campaign_id, at(start + timedelta(days=10)), {"human": 90})
    young = in_tx(sessions, store.abandon_ledger, campaign_id, day=start + timedelta(days=10), tz=SHANGHAI)
    assert (young.window_first, young.window_live_answers, young.window_abandoned) == (start, 110, 10)
    assert (young.rate, young.window_rate) == (0.0, pytest.approx(10 / 110))
    last_in = in_tx(sessions, store.abandon_ledger, campaign_id, day=start + timedelta(days=29), tz=SHANGHAI)
    assert (last_in.window_first, last_in.window_abandoned, last_in.live_answers) == (start, 10, 0)
    out = in_tx(sessions, store.abandon_ledger, campaign_id, day=start + timedelta(days=30), tz=SHANGHAI)
    assert (out.window_first, out.window_live_answers, out.window_abandoned) == (
        start + timedelta(days=1), 90, 0)
    before = in_tx(sessions, store.abandon_ledger, campaign_id, day=start - timedelta(days=3), tz=SHANGHAI)
    assert (before.window_first, before.window_live_answers) == (start - timedelta(days=3), 0)
    days = in_tx(sessions, store.abandon_ledger_days, campaign_id, first=start, last=start + timedelta(days=31),
                 tz=SHANGHAI)
    assert len(days) == 32 and days[0].abandoned_calls == 10 and days[10].humans == 90
    assert [d.window_rate for d in days[28:31]] == [pytest.approx(10 / 110), pytest.approx(10 / 110), 0.0]
    with pytest.raises(ValueError, match="^last: "):
        in_tx(sessions, store.abandon_ledger_days, campaign_id, first=start, last=start - timedelta(days=1),
              tz=SHANGHAI)


def test_one_number_in_any_notation_is_one_lead_and_one_dnc_entry(sessions: sessionmaker[Session]) -> None:
    """+86 138..., 0086138... and 138... are the same mobile line, and +86 20 ... and 020 ...
    the same landline: a duplicate at import, and a DNC entry in one notation stops a lead
    written in another."""
    with sessions.begin() as session:
        (campaign,) = store.sync_campaigns(session, [Campaign("notation", timezone="Asia/Shanghai")])
        result = store.import_leads(session, campaign.id, [LeadRow(line=2, phone="+86 138 0013 8000"),
                                                           LeadRow(line=3, phone="13800138000"),
                                                           LeadRow(line=4, phone="13900139000"),
                                                           LeadRow(line=5, phone="+86 20 1234 5678"),
                                                           LeadRow(line=6, phone="020-1234-5678"),
                                                           LeadRow(line=7, phone="0755 8765 4321")],
                                    list_name="n", source_file="n.csv", actor="t", now=NOW)
        assert result.rows_ok == 4 and [p.line for p in result.problems] == [3, 6]
        assert "duplicate of line 5 (02012345678)" in result.problems[1].reason
        store.add_dnc(session, ["0086 139 0013 9000", "+86 755 8765 4321"], source="t", now=NOW)
        assert store.is_dnc(session, "+8613900139000")
        assert store.is_dnc(session, "075587654321")
        claimed = store.claim_leads(session, campaign.id, limit=5, now=NOW)
    assert sorted(lead.phone for lead in claimed) == ["02012345678", "13800138000"]


def test_migration_0003_rewrites_stored_phones_and_loses_nothing(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Numbers stored before canonical_phone knew landlines are rewritten by revision 0003;
    a clash keeps the row's spelling with a warning, the DNC list keeps every line, and
    the claim still meets the DNC entry of a lead left in its old spelling."""
    engine = create_engine_for(db_url)
    try:
        upgrade_database(engine, "0002")
        sessions = make_session_factory(engine)
        old_hash = hashlib.sha256(b"+8675512345678").hexdigest()  # phone_hash of this spelling before 0003
        with sessions.begin() as session:
            first, second = store.sync_campaigns(session, [Campaign("a", timezone="Asia/Shanghai"),
                                                           Campaign("b", timezone="Asia/Shanghai")])
            lists = [models.LeadList(campaign_id=c.id, name="old", source_file="old.csv", imported_at=NOW,
                                     imported_by="t", rows_ok=2, rows_bad=0) for c in (first, second)]
            session.add_all(lists)
            session.flush()
            customers = [models.Customer(name=name, phone=phone) for name, phone in (
                ("Landline", "+862012345678"), ("Canonical", "02087654321"), ("Twin", "+862087654321"),
                ("Mobile", "13800138000"), ("Paris", "0033123456"))]

            def lead(campaign: Any, lead_list: models.LeadList, phone: str) -> int:
                # a Core insert names only the columns given (and those with Python defaults), all of
                # which revision 0002 has: later revisions add columns to leads
                inserted = session.execute(sa.insert(models.Lead.__table__).values(
                    campaign_id=campaign.id, list_id=lead_list.id, phone=phone, state="new", next_attempt_at=NOW))
                return int(inserted.inserted_primary_key[0])
            session.add_all(customers)
            lead_ids = [lead(first, lists[0], "+8675512345678"), lead(first, lists[0], "02011112222"),
                        lead(first, lists[0], "862011112222"), lead(second, lists[1], "862011112222")]
            session.flush()
            attempts = [models.DialAttempt(campaign_id=first.id, lead_id=lead_ids[0], phone="+8675512345678",
                                           phone_hash=old_hash, attempt_no=1, started_at=NOW),
                        models.DialAttempt(campaign_id=first.id, lead_id=None, phone=None,
                                           phone_hash="0" * 64, attempt_no=1, started_at=NOW)]
            session.add_all(attempts)
            session.add_all([models.DncNumber(phone="+862099998888", source="old", added_at=NOW),
                             models.DncNumber(phone="02099998888", source="new",
                                              added_at=NOW + timedelta(days=1)),
                             models.DncNumber(phone="00862033334444", source="old", added_at=NOW)])
            session.flush()
            ids = ([c.id for c in customers], lead_ids, [a.id for a in attempts])
        with caplog.at_level("INFO", logger="callcenter.storage.migrations"):
            upgrade_database(engine)
        assert current_revision(engine) == head_revision()
        customer_ids, lead_ids, attempt_ids = ids
        with sessions.begin() as session:
            phones = [session.get(models.Customer, i).phone for i in customer_ids]  # type: ignore[union-attr]
            assert phones == ["02012345678", "02087654321", "+862087654321", "13800138000", "+33123456"]
            phones = [session.get(models.Lead, i).phone for i in lead_ids]  # type: ignore[union-attr]
            assert phones == ["075512345678", "02011112222", "862011112222", "02011112222"]
            rewritten, destroyed = (session.get(models.DialAttempt, i) for i in attempt_ids)
            assert rewritten is not None and destroyed is not None
            assert (rewritten.phone, rewritten.phone_hash) == ("075512345678", store.phone_hash("075512345678"))
            assert rewritten.phone_hash != old_hash
            assert (destroyed.phone, destroyed.phone_hash) == (None, "0" * 64)
            dnc = {row.phone: row.source for row in session.scalars(sa.select(models.DncNumber))}
            assert dnc == {"02099998888": "new", "02033334444": "old"}
            # the lead left as "862011112222" still meets the DNC entry of its line
            store.add_dnc(session, ["020 1111 2222"], source="t", now=NOW)
            claimed = store.claim_leads(session, first.id, limit=5, now=NOW)
            assert [c.phone for c in claimed] == ["075512345678"]
            assert session.get(models.Lead, lead_ids[2]).final_outcome == "dnc"  # type: ignore[union-attr]
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 2
        assert f"customers {customer_ids[2]} keeps phone '+862087654321'" in warnings[0]
        assert f"customer {customer_ids[1]}" in warnings[0]
        assert f"leads {lead_ids[2]} keeps phone '862011112222'" in warnings[1]
        assert f"lead {lead_ids[1]} of campaign_id {first.id}" in warnings[1]
    finally:
        engine.dispose()


def test_migration_0018_restates_zero_prefixed_mobiles(db_url: str) -> None:
    """``013800138000`` (a mobile as a landline trunk presents it) was stored as a number of its
    own; revision 0018 restates it as the mobile everywhere: a customer, a lead and its
    attempt (with its hash), the do-not-call list (merged with the entry already there), a
    call record. A customer whose new spelling another has keeps its own (a warning says to
    merge them). The claim then meets the DNC entry whatever the lead's spelling was."""
    engine = create_engine_for(db_url)
    try:
        upgrade_database(engine, "0017")
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            (campaign,) = store.sync_campaigns(session, [Campaign("a", timezone="Asia/Shanghai")])
            lead_list = models.LeadList(campaign_id=campaign.id, name="old", source_file="old.csv", imported_at=NOW,
                                        imported_by="t", rows_ok=2, rows_bad=0)
            session.add(lead_list)
            session.flush()
            customer = session.execute(sa.insert(models.Customer.__table__).values(
                name="Wang", phone="013800138000", vip=False, notes="", created_at=NOW)).inserted_primary_key[0]
            lead = session.execute(sa.insert(models.Lead.__table__).values(
                campaign_id=campaign.id, list_id=lead_list.id, phone="013700137000", state="new",
                next_attempt_at=NOW)).inserted_primary_key[0]
            session.execute(sa.insert(models.DialAttempt.__table__).values(
                campaign_id=campaign.id, lead_id=lead, phone="013700137000",
                phone_hash=store.phone_hash("013700137000"), attempt_no=1, started_at=NOW, outcome="busy"))
            session.add_all([models.DncNumber(phone="013600136000", source="old", added_at=NOW),
                             models.DncNumber(phone="13600136000", source="new", added_at=NOW)])
            session.execute(sa.insert(models.CallRecord.__table__).values(
                ticket_number="GD20261102001", started_at=NOW, direction="inbound", phone="013800138000"))
            twin = session.execute(sa.insert(models.Customer.__table__).values(
                name="Wang again", phone="+86013900139000", vip=False, notes="", created_at=NOW)).inserted_primary_key[0]
            session.execute(sa.insert(models.Customer.__table__).values(
                name="Wang", phone="13900139000", vip=False, notes="", created_at=NOW))
        upgrade_database(engine)
        with sessions.begin() as session:
            assert session.get(models.Customer, customer).phone == "13800138000"  # type: ignore[union-attr]
            assert session.get(models.Lead, lead).phone == "13700137000"  # type: ignore[union-attr]
            (attempt,) = session.scalars(sa.select(models.DialAttempt))
            assert (attempt.phone, attempt.phone_hash) == ("13700137000", store.phone_hash("13700137000"))
            assert [row.phone for row in session.scalars(sa.select(models.DncNumber))] == ["13600136000"]
            assert session.scalar(sa.select(models.CallRecord.phone)) == "13800138000"
            assert store.is_dnc(session, "013600136000")
            assert session.get(models.Customer, twin).phone == "+86013900139000"  # type: ignore[union-attr]
    finally:
        engine.dispose()


# --- hand-out --------------------------------------------------------------------------------


def holdings(sessions: sessionmaker[Session], campaign_id: int) -> dict[tuple[str | None, str | None], tuple[int, ...]]:
    return {(h.team, h.agent_id): (h.waiting, h.dialing, h.done)
            for h in in_tx(sessions, store.lead_holdings, campaign_id)}


def test_leads_go_from_it_to_teams_to_agents_and_back(sessions: sessionmaker[Session], campaign_id: int) -> None:
    first = import_phones(sessions, campaign_id, phones(10))
    second = import_phones(sessions, campaign_id, phones(6, start=100))
    assert holdings(sessions, campaign_id) == {(None, None): (16, 0, 0)}
    # IT: 4 of the second list to team1, then 20 more (only 12 are left) to team2
    assert in_tx(sessions, store.hand_out_to_team, campaign_id, "team1", 4, list_id=second, actor="9001",
                 now=NOW) == 4
    assert in_tx(sessions, store.hand_out_to_team, campaign_id, "team2", 20, actor="9001", now=NOW) == 12
    assert holdings(sessions, campaign_id) == {("team1", None): (4, 0, 0), ("team2", None): (12, 0, 0)}
    # the team lead shares team1's leads: 3 to 2101, 3 asked for 2102 (1 left)
    assert in_tx(sessions, store.hand_out_to_agents, campaign_id, "team1", {"2101": 3, "2102": 3}, actor="2100",
                 now=NOW) == {"2101": 3, "2102": 1}
    assert in_tx(sessions, store.team_pool_size, campaign_id, "team1") == 0
    assert in_tx(sessions, store.team_pool_size, campaign_id, "team2") == 12
    # 2101 starts on a lead: it is being dialed, so taking back leaves it with them
    (dialing,) = claim(sessions, campaign_id, 1)
    lead = in_tx(sessions, store.get_lead, dialing.lead_id)
    assert lead is not None and lead.list_id == first and lead.team == "team2"  # team2 holds the oldest due lead
    claimed = in_tx(sessions, store.claim_leads, campaign_id, limit=5, now=NOW,
                    owners=Owners(agents=frozenset({"2101"})))
    assert len(claimed) == 3
    assert {in_tx(sessions, store.get_lead, c.lead_id).agent_id for c in claimed} == {"2101"}  # type: ignore[union-attr]
    in_tx(sessions, store.finish_attempt, claimed[0].attempt_id, AttemptResult(outcome="human"), now=NOW)
    in_tx(sessions, store.release_attempt, claimed[1].attempt_id, due_at=NOW, now=NOW)
    assert holdings(sessions, campaign_id) == {
        ("team1", "2101"): (1, 1, 1), ("team1", "2102"): (1, 0, 0), ("team2", None): (11, 1, 0)}
    # at night: the agents' undialed leads back to the team, then the team's back to IT
    assert in_tx(sessions, store.take_back, campaign_id, "team1", agents=["2101", "2102"], actor="2100", now=NOW) == 2
    assert holdings(sessions, campaign_id) == {
        ("team1", None): (2, 0, 0), ("team1", "2101"): (0, 1, 1), ("team2", None): (11, 1, 0)}
    assert in_tx(sessions, store.take_back, campaign_id, "team2", actor="9001", now=NOW) == 11
    assert holdings(sessions, campaign_id)[(None, None)] == (11, 0, 0)
    entries = in_tx(sessions, store.list_audit, limit=10)
    assert [e.action for e in entries] == ["leads.takeback", "leads.takeback", "leads.handout", "leads.handout",
                                           "leads.handout"]
    assert entries[0].subject == "campaign:spring" and entries[0].actor == "9001"
    assert entries[0].detail["from_team"] == "team2" and entries[0].detail["taken"] == 11
    assert entries[2].detail["to_agents"] == {"2101": 3, "2102": 1}
    assert entries[2].detail["asked"] == {"2101": 3, "2102": 3}
    assert (entries[4].detail["to_team"], entries[4].detail["given"], entries[4].detail["list_id"]) == (
        "team1", 4, second)


def test_every_agent_take_back_includes_an_agent_who_moved_team(sessions: sessionmaker[Session],
                                                                 campaign_id: int) -> None:
    """Team1's leads held by 2101 (who has moved to team2 since) and 2102 come back to team1
    with ``every_agent``; team2's leads held by 2201 stay theirs."""
    import_phones(sessions, campaign_id, phones(6))
    in_tx(sessions, store.hand_out_to_team, campaign_id, "team1", 4, actor="9001", now=NOW)
    in_tx(sessions, store.hand_out_to_team, campaign_id, "team2", 2, actor="9001", now=NOW)
    in_tx(sessions, store.hand_out_to_agents, campaign_id, "team1", {"2101": 2, "2102": 2}, actor="2100", now=NOW)
    in_tx(sessions, store.hand_out_to_agents, campaign_id, "team2", {"2201": 2}, actor="2200", now=NOW)
    assert in_tx(sessions, store.take_back, campaign_id, "team1", every_agent=True, actor="2100", now=NOW) == 4
    assert holdings(sessions, campaign_id) == {("team1", None): (4, 0, 0), ("team2", "2201"): (2, 0, 0)}
    (entry, *_) = in_tx(sessions, store.list_audit, limit=1)
    assert (entry.action, entry.detail["from_agents"], entry.detail["taken"]) == (
        "leads.takeback", "every agent holding them", 4)


def test_a_claim_takes_only_the_leads_its_owners_hold(sessions: sessionmaker[Session], campaign_id: int) -> None:
    import_phones(sessions, campaign_id, phones(9))
    in_tx(sessions, store.hand_out_to_team, campaign_id, "team1", 4, actor="9001", now=NOW)
    in_tx(sessions, store.hand_out_to_team, campaign_id, "team2", 3, actor="9001", now=NOW)
    in_tx(sessions, store.hand_out_to_agents, campaign_id, "team1", {"2101": 2}, actor="2100", now=NOW)

    def claimable(owners: Owners) -> set[tuple[str | None, str | None]]:
        with sessions.begin() as session:
            claimed = store.claim_leads(session, campaign_id, limit=20, now=NOW, owners=owners)
            held = {(lead.team, lead.agent_id) for lead in (store.get_lead(session, c.lead_id) for c in claimed)
                    if lead is not None}
            session.rollback()  # look, do not take
            return held

    assert claimable(Owners(teams=frozenset({"team1"}))) == {("team1", None), ("team1", "2101")}
    assert claimable(Owners(teams=frozenset({"team1"}), unassigned_only=True)) == {("team1", None)}
    assert claimable(Owners(agents=frozenset({"2101"}))) == {("team1", "2101")}
    assert claimable(Owners(teams=frozenset({"team2"}), agents=frozenset({"2101"}))) == {
        ("team2", None), ("team1", "2101")}
    assert claimable(Owners()) == set()  # nobody: nothing, not everything
    assert len(claim(sessions, campaign_id, 20)) == 9  # without owners: every lead (the pool's two too)


@pytest.mark.postgres
def test_postgres_claim_skips_a_lead_taken_back_after_it_was_read(pg_sessions: sessionmaker[Session],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim for agent 2101 reads its leads, then the team lead takes them back (committed)
    before the claim locks them: the lock re-checks who holds them, so none is dialed for 2101.
    (SQLite's BEGIN IMMEDIATE makes the two take turns; PostgreSQL re-reads the row.)"""
    sessions = pg_sessions
    (record,) = in_tx(sessions, store.sync_campaigns, [campaign()], now=NOW)
    import_phones(sessions, record.id, phones(4))
    in_tx(sessions, store.hand_out_to_team, record.id, "team1", 4, actor="9001", now=NOW)
    in_tx(sessions, store.hand_out_to_agents, record.id, "team1", {"2101": 4}, actor="2100", now=NOW)
    lock_waiting = store._lock_waiting
    taken: list[int] = []

    def take_back_first(session: Session, ids: Any, when: datetime, *args: Any) -> Any:
        if ids and not taken:  # between the candidates' read and their lock
            taken.append(in_tx(sessions, store.take_back, record.id, "team1", agents=["2101"], actor="2100",
                               now=NOW))
        return lock_waiting(session, ids, when, *args)

    monkeypatch.setattr(store, "_lock_waiting", take_back_first)
    claimed = in_tx(sessions, store.claim_leads, record.id, limit=4, now=NOW,
                    owners=Owners(agents=frozenset({"2101"})))
    assert taken == [4] and claimed == []
    holding = {(h.team, h.agent_id): (h.waiting, h.dialing) for h in in_tx(sessions, store.lead_holdings,
                                                                            record.id)}
    assert holding == {("team1", None): (4, 0)}


def test_hand_out_refuses_bad_arguments(sessions: sessionmaker[Session], campaign_id: int) -> None:
    import_phones(sessions, campaign_id, phones(2))
    (other,) = in_tx(sessions, store.sync_campaigns, [campaign("other")], now=NOW)
    other_list = import_phones(sessions, other.id, phones(1))
    with pytest.raises(InvalidFieldError, match="^count: "):
        in_tx(sessions, store.hand_out_to_team, campaign_id, "team1", 0, actor="9001", now=NOW)
    with pytest.raises(store.NotFoundError, match=f"^list_id: lead list {other_list} is not a list of campaign spring"):
        in_tx(sessions, store.hand_out_to_team, campaign_id, "team1", 1, list_id=other_list, actor="9001", now=NOW)
    with pytest.raises(InvalidFieldError, match="^count of agent 2101: "):
        in_tx(sessions, store.hand_out_to_agents, campaign_id, "team1", {"2101": -1}, actor="2100", now=NOW)
    with pytest.raises(InvalidFieldError, match="^agents: name at least one agent"):
        in_tx(sessions, store.take_back, campaign_id, "team1", agents=[], actor="2100", now=NOW)
    with pytest.raises(IntegrityError), sessions.begin() as session:  # an agent's lead always names its team
        session.execute(sa.update(models.Lead).values(agent_id="2101", team=None))
    assert holdings(sessions, campaign_id) == {(None, None): (2, 0, 0)}
