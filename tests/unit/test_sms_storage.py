"""SMS broadcast storage: broadcasts, the sender's queue, outcomes, progress, replies.

Every test that touches a database runs twice, on SQLite (a file in tmp_path) and on
PostgreSQL (``postgres`` marker; the server comes from the ``tests.pgserver`` plugin).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from time import monotonic, sleep
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callcenter.dialer.campaign import CallingHours, Campaign
from callcenter.storage import dialer, models
from callcenter.storage import sms as store
from callcenter.storage.db import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_database,
)
from callcenter.storage.dialer_records import LeadRow
from callcenter.storage.records import InvalidFieldError
from callcenter.storage.sms import SmsRecipient
from tests.concurrency import run_at_once
from tests.syncrepository import in_tx

NOW = datetime(2024, 3, 5, 2, 0, tzinfo=UTC)
SMS_TABLES = {"sms_broadcasts", "sms_messages", "sms_replies"}



def phones(n: int, start: int = 0) -> list[str]:
    return [f"138{start + i:08d}" for i in range(n)]


def to(*numbers: str, body: str = "Hello", parts: int = 1) -> list[SmsRecipient]:
    return [SmsRecipient(phone=n, body=body, parts=parts) for n in numbers]


def broadcast(sessions: sessionmaker[Session], recipients: list[SmsRecipient], now: datetime = NOW,
              name: str = "spring sale", **kw: Any) -> store.BroadcastCreated:
    return in_tx(sessions, store.create_broadcast, name=name, template="Hello {name}", recipients=recipients,
                 actor="2100", now=now, **kw)


def take(sessions: sessionmaker[Session], limit: int, now: datetime = NOW) -> list[store.QueuedSms]:
    return in_tx(sessions, store.take_queued, limit=limit, now=now)


def messages(sessions: sessionmaker[Session], broadcast_id: int) -> list[tuple[str, str, str]]:
    with sessions.begin() as session:
        rows = session.scalars(sa.select(models.SmsMessage).where(models.SmsMessage.broadcast_id == broadcast_id)
                               .order_by(models.SmsMessage.id)).all()
        return [(row.phone, row.status, row.reason) for row in rows]


def message(sessions: sessionmaker[Session], message_id: int) -> models.SmsMessage:
    with sessions.begin() as session:
        row = session.get(models.SmsMessage, message_id)
        assert row is not None
        return row


@pytest.fixture
def campaign_id(sessions: sessionmaker[Session]) -> int:
    spring = Campaign(name="spring", caller_id="02012345678", queue="outbound", timezone="Asia/Shanghai",
                      calling_hours=CallingHours(time(8, 0), time(21, 0)))
    (record,) = in_tx(sessions, dialer.sync_campaigns, [spring], now=NOW)
    return record.id


def import_phones(sessions: sessionmaker[Session], campaign_id: int, numbers: list[str]) -> int:
    rows = [LeadRow(line=i + 2, phone=p, name=f"n{i}", extra={"city": "广州"}) for i, p in enumerate(numbers)]
    result = in_tx(sessions, dialer.import_leads, campaign_id, rows, list_name="test", source_file="test.csv",
                   actor="ops", now=NOW)
    assert result.rows_ok == len(numbers), result.problems
    return result.list_id


# --- migration -------------------------------------------------------------------------------


def test_sms_migration_adds_and_drops_exactly_its_tables(engine: sa.Engine) -> None:
    """Revision 0009 creates the three SMS tables; downgrading to 0008 drops exactly them, and the
    upgrade brings them back."""
    assert SMS_TABLES <= set(models.Base.metadata.tables)
    head = set(sa.inspect(engine).get_table_names())
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")  # the later revisions' tables go first
    at_0009 = set(sa.inspect(engine).get_table_names())
    assert SMS_TABLES <= at_0009
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    assert current_revision(engine) == "0008"
    assert set(sa.inspect(engine).get_table_names()) == at_0009 - SMS_TABLES
    upgrade_database(engine)
    assert current_revision(engine) == head_revision()
    assert set(sa.inspect(engine).get_table_names()) == head


def test_sms_rows_enforce_their_constraints(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Unknown statuses and negative parts are refused; deleting a broadcast deletes its messages;
    a lead's deletion (its list destroyed) leaves its messages without the lead."""
    list_id = import_phones(sessions, campaign_id, phones(1))
    (lead,) = in_tx(sessions, store.campaign_contacts, campaign_id)
    created = broadcast(sessions, [SmsRecipient(lead.phone, "Hi", 1, lead_id=lead.lead_id)])
    for bad in ({"status": "lost"}, {"parts": -1}):
        with pytest.raises(IntegrityError), sessions.begin() as session:
            values = {"broadcast_id": created.broadcast_id, "phone": "1", "body": "x", "parts": 1,
                      "status": "queued", "created_at": NOW, "updated_at": NOW, **bad}
            session.add(models.SmsMessage(**values))
    in_tx(sessions, dialer.destroy_lead_list, list_id, actor="dpo", now=NOW, force=True)
    with sessions.begin() as session:
        row = session.scalars(sa.select(models.SmsMessage)).one()
        assert (row.phone, row.lead_id) == (phones(1)[0], None)
        session.delete(session.get(models.SmsBroadcast, created.broadcast_id))
    with sessions.begin() as session:
        assert session.scalars(sa.select(models.SmsMessage)).all() == []


# --- creating broadcasts ---------------------------------------------------------------------


def test_create_keeps_every_recipient_with_its_status_and_audits(
    sessions: sessionmaker[Session], campaign_id: int
) -> None:
    """Valid numbers are queued in canonical form; invalid ones, repeats and DNC numbers are kept
    as skipped rows with the reason; the audit row has the counts."""
    in_tx(sessions, dialer.add_dnc, ["139-0000-0003"], source="national", now=NOW)
    recipients = [
        SmsRecipient("+86 138 0013 8000", "Hello Wang", 1),
        SmsRecipient("call me", "Hello Li", 1),
        SmsRecipient("13800138000", "Hello again", 1),  # the first number, another spelling
        SmsRecipient("13900000003", "Hello Zhao", 2),  # on the DNC list
        SmsRecipient("020-1234-5678", "Hello Chen", 3),  # a landline: no texts
        SmsRecipient("139 0000 0003", "Hello Zhao twice", 2),  # DNC and a repeat: a repeat
    ]
    created = broadcast(sessions, recipients, campaign_id=campaign_id)
    assert created.queued == 1
    assert created.skipped == {"dnc": 1, "duplicate": 2, "invalid": 2}
    rows = messages(sessions, created.broadcast_id)
    assert [(phone, status) for phone, status, _ in rows] == [
        ("13800138000", "queued"), ("call me", "skipped"), ("13800138000", "skipped"),
        ("13900000003", "skipped"), ("02012345678", "skipped"), ("13900000003", "skipped")]
    reasons = [reason for _, _, reason in rows]
    assert reasons[0] == "" and reasons[4] == "invalid: 02012345678 is not a mobile number"
    assert reasons[1].startswith("invalid: phone: must be 3 to 15 digits") and "'call me'" in reasons[1]
    assert reasons[2:4] + reasons[5:] == ["duplicate", "dnc", "duplicate"]
    with sessions.begin() as session:
        row = session.get(models.SmsBroadcast, created.broadcast_id)
        assert row is not None
        assert (row.name, row.template, row.campaign_id, row.created_by, row.created_at, row.total) == (
            "spring sale", "Hello {name}", campaign_id, "2100", NOW, 6)
        stored = session.scalars(sa.select(models.SmsMessage).order_by(models.SmsMessage.id)).all()
        assert [(m.body, m.parts, m.created_at, m.sent_at) for m in stored][3] == ("Hello Zhao", 2, NOW, None)
    (entry,) = in_tx(sessions, dialer.list_audit, action="sms.broadcast")
    assert (entry.actor, entry.subject, entry.at) == ("2100", f"sms_broadcast:{created.broadcast_id}", NOW)
    assert {k: entry.detail[k] for k in ("name", "campaign_id", "queued", "skipped", "total")} == {
        "name": "spring sale", "campaign_id": campaign_id, "queued": 1,
        "skipped": {"dnc": 1, "duplicate": 2, "invalid": 2}, "total": 6}


def test_create_in_chunks_keeps_every_recipient(sessions: sessionmaker[Session]) -> None:
    """A broadcast larger than one INSERT chunk and one DNC lookup chunk stores each recipient once."""
    numbers = phones(dialer.IMPORT_CHUNK + 1200)
    in_tx(sessions, dialer.add_dnc, numbers[1100:1103], source="test", now=NOW)
    created = broadcast(sessions, to(*numbers))
    assert (created.queued, created.skipped) == (len(numbers) - 3, {"dnc": 3})
    progress = in_tx(sessions, store.broadcast_progress, created.broadcast_id)
    assert progress.total == len(numbers) and progress.by_status["queued"] == len(numbers) - 3


def test_create_refuses_bad_arguments(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Each bad argument names its field; an unknown campaign or lead is NotFoundError; nothing is stored."""
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (InvalidFieldError, "^name: ", {"name": " "}),
        (InvalidFieldError, "^template: ", {"template": ""}),
        (InvalidFieldError, "^actor: ", {"actor": ""}),
        (InvalidFieldError, "^now: ", {"now": datetime(2024, 3, 5)}),
        (InvalidFieldError, "^recipients: must name at least one", {"recipients": []}),
        (InvalidFieldError, r"^recipients\[1\]: must be an SmsRecipient", {"recipients": [*to("1"), "13800138000"]}),
        (InvalidFieldError, r"^recipients\[0\]\.parts: ", {"recipients": to("13800138000", parts=-1)}),
        (InvalidFieldError, r"^recipients\[0\]\.body: ", {"recipients": [SmsRecipient("13800138000", None, 1)]}),  # type: ignore[arg-type]
        (InvalidFieldError, r"^recipients\[0\]\.lead_id: ", {"recipients": [SmsRecipient("1", "x", 1, lead_id=0)]}),
        (store.NotFoundError, r"^recipients\[1\]\.lead_id: lead 999 not found",
         {"recipients": [*to("1"), SmsRecipient("2", "x", 1, lead_id=999)]}),
        (store.NotFoundError, "^campaign_id: campaign 999 not found", {"campaign_id": 999}),
        (InvalidFieldError, "^campaign_id: ", {"campaign_id": 0}),
    ]
    for error, match, overrides in cases:
        arguments: dict[str, Any] = {"name": "x", "template": "t", "recipients": to("13800138000"),
                                     "actor": "2100", "now": NOW, **overrides}
        with pytest.raises(error, match=match):
            in_tx(sessions, store.create_broadcast, **arguments)
    assert in_tx(sessions, store.list_broadcasts) == []


# --- campaign contacts -----------------------------------------------------------------------


def test_campaign_contacts_by_holder_without_dnc_closed_leads(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """All the campaign's leads in id order, or a team's / an agent's; leads closed as DNC left out."""
    import_phones(sessions, campaign_id, phones(6))
    in_tx(sessions, dialer.hand_out_to_team, campaign_id, "team1", 4, actor="9001", now=NOW)
    in_tx(sessions, dialer.hand_out_to_agents, campaign_id, "team1", {"2101": 2}, actor="2100", now=NOW)
    in_tx(sessions, dialer.add_dnc, phones(1), source="complaint", now=NOW)
    (dialing,) = in_tx(sessions, dialer.claim_leads, campaign_id, limit=1, now=NOW)  # closes the DNC lead first
    assert dialing.phone == phones(2)[1]

    def contacts(**holder: Any) -> list[str]:
        return [c.phone for c in in_tx(sessions, store.campaign_contacts, campaign_id, **holder)]

    assert contacts() == phones(6)[1:]
    assert contacts(team="team1") == phones(4)[1:]
    assert contacts(team="team1", agent_id="2101") == contacts(agent_id="2101") == [phones(2)[1]]
    assert contacts(team="team2") == []
    first = in_tx(sessions, store.campaign_contacts, campaign_id)[0]
    assert (first.lead_id, first.name, first.extra) == (dialing.lead_id, "n1", {"city": "广州"})
    with pytest.raises(store.NotFoundError, match="^campaign_id: campaign 999 not found"):
        in_tx(sessions, store.campaign_contacts, 999)
    with pytest.raises(InvalidFieldError, match="^team: "):
        in_tx(sessions, store.campaign_contacts, campaign_id, team=" ")
    with pytest.raises(InvalidFieldError, match="^agent_id: "):
        in_tx(sessions, store.campaign_contacts, campaign_id, agent_id="")


# --- the sender's queue ----------------------------------------------------------------------


def test_take_queued_oldest_first_over_broadcasts_and_skips_new_dnc(sessions: sessionmaker[Session]) -> None:
    """Messages come in creation order over all broadcasts, up to the limit, each once; a number
    put on the DNC list after creation is skipped (dnc), never handed out."""
    first = broadcast(sessions, to(*phones(3)))
    second = broadcast(sessions, to(*phones(3, 10), body="Second"), now=NOW + timedelta(minutes=1), name="second")
    in_tx(sessions, dialer.add_dnc, [phones(2)[1], phones(1, 11)[0]], source="complaint", now=NOW)
    got = take(sessions, 3)
    assert [q.phone for q in got] == [phones(3)[0], phones(3)[2], phones(1, 10)[0]]
    assert [q.broadcast_id for q in got] == [first.broadcast_id, first.broadcast_id, second.broadcast_id]
    assert got[2].body == "Second"
    sending = message(sessions, got[0].message_id)
    assert (sending.status, sending.updated_at, sending.sent_at) == ("sending", NOW, None)
    assert messages(sessions, first.broadcast_id)[1] == (phones(2)[1], "skipped", "dnc")
    assert [q.phone for q in take(sessions, 10)] == [phones(1, 12)[0]]
    assert take(sessions, 10) == []
    progress = in_tx(sessions, store.broadcast_progress, second.broadcast_id)
    assert progress.by_status == {"sending": 2, "skipped": 1}
    assert progress.skipped == {"dnc": 1}


def test_take_queued_goes_past_many_dnc_messages(sessions: sessionmaker[Session]) -> None:
    """Many DNC numbers ahead of the first sendable one take several batches; all are skipped."""
    created = broadcast(sessions, to(*phones(12)))
    in_tx(sessions, dialer.add_dnc, phones(10), source="complaint", now=NOW)
    assert [q.phone for q in take(sessions, 1)] == [phones(11)[10]]
    assert in_tx(sessions, store.broadcast_progress, created.broadcast_id).by_status == {
        "queued": 1, "sending": 1, "skipped": 10}


def test_concurrent_takers_never_share_a_message(sessions: sessionmaker[Session]) -> None:
    """Threads taking at once (each in its own transaction) never get the same message."""
    broadcast(sessions, to(*phones(120)))
    threads, rounds = 4, 8
    got = run_at_once(threads, rounds, lambda: [q.message_id for q in take(sessions, 3)])
    assert len(got) == len(set(got)) == threads * rounds * 3


@pytest.mark.postgres
def test_postgres_open_takes_skip_each_others_messages(pg_sessions: sessionmaker[Session]) -> None:
    """Two open transactions on PostgreSQL take disjoint messages without waiting (SKIP LOCKED)."""
    sessions = pg_sessions
    broadcast(sessions, to(*phones(10)))
    with sessions() as first, sessions() as second:
        a = store.take_queued(first, limit=4, now=NOW)
        b = store.take_queued(second, limit=4, now=NOW)
        assert not {x.message_id for x in a} & {x.message_id for x in b}
        assert len(a) == len(b) == 4
        first.commit()
        second.rollback()
    assert len(take(sessions, 10)) == 6  # b's messages came back after its rollback


def test_concurrent_marketing_broadcasts_text_a_number_once(sessions: sessionmaker[Session]) -> None:
    """Marketing broadcasts created at once in several threads (each in its own transaction)
    queue a number once in ``min_days_between`` days: the others skip it as texted recently."""
    threads = 4
    got = run_at_once(threads, 1, lambda: [in_tx(
        sessions, store.create_broadcast, name="offer", template="t", recipients=to("13800138000"), actor="9001",
        now=NOW, min_days_between=7)])
    assert sorted(created.queued for created in got) == [0] * (threads - 1) + [1]
    assert len(take(sessions, 10)) == 1


def _waits_for_a_lock(sessions: sessionmaker[Session], pid: int) -> bool:
    """Whether the PostgreSQL backend ``pid`` is waiting for a lock (read in a new transaction)."""
    with sessions.begin() as session:
        return bool(session.scalar(sa.text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"),
                                   {"pid": pid}))


@pytest.mark.postgres
def test_postgres_a_marketing_broadcast_waits_for_one_being_created(pg_sessions: sessionmaker[Session]) -> None:
    """While one transaction has created a marketing broadcast and not yet committed, a second
    one to the same number waits for it, then skips the number as texted recently: read
    committed alone would let both queue it."""
    sessions = pg_sessions

    def create(session: Session, name: str) -> store.BroadcastCreated:
        return store.create_broadcast(session, name=name, template="t", recipients=to("13800138000"),
                                      actor="9001", now=NOW, min_days_between=7)

    outcome: list[store.BroadcastCreated | BaseException] = []
    with sessions() as first, sessions() as second:
        created = create(first, "team1 offer")  # not committed yet
        second_pid = int(second.scalar(sa.text("SELECT pg_backend_pid()")) or 0)

        def create_second() -> None:
            try:
                outcome.append(create(second, "manager's list"))
                second.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                outcome.append(exc)

        worker = threading.Thread(target=create_second)
        worker.start()
        deadline = monotonic() + 30  # a bound on the wait, not a timing under test
        while worker.is_alive() and not _waits_for_a_lock(sessions, second_pid):
            assert monotonic() < deadline, "the second broadcast neither finished nor waited"
            sleep(0.01)
        first.commit()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the second broadcast was still waiting after the first committed"
    (other,) = outcome
    assert isinstance(other, store.BroadcastCreated), other
    assert (created.queued, created.skipped) == (1, {})
    assert (other.queued, other.skipped) == (0, {"texted recently": 1})
    assert len(take(sessions, 10)) == 1


def test_finish_sms_records_sent_or_failed_once(sessions: sessionmaker[Session]) -> None:
    """sending -> sent (sent_at) or failed (the reason, cut to 255); anything else is a conflict."""
    broadcast(sessions, to(*phones(3)))
    ok, bad = take(sessions, 2)
    later = NOW + timedelta(seconds=5)
    in_tx(sessions, store.finish_sms, ok.message_id, ok=True, now=later)
    in_tx(sessions, store.finish_sms, bad.message_id, ok=False, reason="x" * 300, now=later)
    sent, failed = message(sessions, ok.message_id), message(sessions, bad.message_id)
    assert (sent.status, sent.sent_at, sent.updated_at, sent.reason) == ("sent", later, later, "")
    assert (failed.status, failed.sent_at, failed.reason) == ("failed", None, "x" * 255)
    with pytest.raises(store.ConflictError, match=f"^message_id: SMS message {ok.message_id} is sent, not sending"):
        in_tx(sessions, store.finish_sms, ok.message_id, ok=False, now=later)
    queued_id = ok.message_id + 2
    with pytest.raises(store.ConflictError, match="is queued, not sending"):
        in_tx(sessions, store.finish_sms, queued_id, ok=True, now=later)
    with pytest.raises(store.NotFoundError, match="^message_id: SMS message 999 not found"):
        in_tx(sessions, store.finish_sms, 999, ok=True, now=later)
    with pytest.raises(InvalidFieldError, match="^message_id: "):
        in_tx(sessions, store.finish_sms, 0, ok=True, now=later)
    with pytest.raises(InvalidFieldError, match="^ok: "):
        in_tx(sessions, store.finish_sms, queued_id, ok="yes", now=later)
    with pytest.raises(InvalidFieldError, match="^reason: "):
        in_tx(sessions, store.finish_sms, queued_id, ok=False, reason=None, now=later)
    with pytest.raises(InvalidFieldError, match="^now: "):
        in_tx(sessions, store.finish_sms, queued_id, ok=False, now=datetime(2024, 1, 1))


def test_requeue_puts_a_message_back_in_its_place(sessions: sessionmaker[Session]) -> None:
    """A message that never reached the gateway goes back to queued and is taken again first."""
    broadcast(sessions, to(*phones(3)))
    first, second = take(sessions, 2)
    later = NOW + timedelta(seconds=5)
    in_tx(sessions, store.requeue_sms, first.message_id, now=later)
    row = message(sessions, first.message_id)
    assert (row.status, row.updated_at, row.sent_at) == ("queued", later, None)
    assert [q.message_id for q in take(sessions, 5)] == [first.message_id, second.message_id + 1]
    in_tx(sessions, store.finish_sms, first.message_id, ok=True, now=later)
    with pytest.raises(store.ConflictError, match="is sent, not sending"):
        in_tx(sessions, store.requeue_sms, first.message_id, now=later)
    with pytest.raises(store.NotFoundError, match="^message_id: SMS message 999 not found"):
        in_tx(sessions, store.requeue_sms, 999, now=later)


def test_fail_interrupted_fails_only_what_was_sending(sessions: sessionmaker[Session]) -> None:
    """At start-up the messages left sending are failed as interrupted; sent and queued ones stay."""
    created = broadcast(sessions, to(*phones(4)))
    done, *left = take(sessions, 3)
    in_tx(sessions, store.finish_sms, done.message_id, ok=True, now=NOW)
    restart = NOW + timedelta(minutes=3)
    assert in_tx(sessions, store.fail_interrupted, now=restart) == 2
    assert in_tx(sessions, store.fail_interrupted, now=restart) == 0
    for item in left:
        row = message(sessions, item.message_id)
        assert (row.status, row.reason, row.updated_at) == ("failed", store.INTERRUPTED_REASON, restart)
    assert row.reason == "interrupted: the daemon stopped while sending; not known whether it went out"
    progress = in_tx(sessions, store.broadcast_progress, created.broadcast_id)
    assert progress.by_status == {"queued": 1, "sent": 1, "failed": 2}
    with pytest.raises(InvalidFieldError, match="^now: "):
        in_tx(sessions, store.fail_interrupted, now=None)


# --- progress --------------------------------------------------------------------------------


def test_progress_and_list_of_broadcasts(sessions: sessionmaker[Session], campaign_id: int) -> None:
    """Counts by status (those some message has) and skipped by reason, invalid ones grouped; newest first."""
    first = broadcast(sessions, to("13800000001", "abc", "12", "13800000001", "13800000002"),
                      campaign_id=campaign_id)
    second = broadcast(sessions, to("13800000003"), now=NOW + timedelta(hours=1), name="later")
    (taken,) = take(sessions, 1)
    in_tx(sessions, store.finish_sms, taken.message_id, ok=True, now=NOW)
    progress = in_tx(sessions, store.broadcast_progress, first.broadcast_id)
    assert progress == store.BroadcastProgress(
        broadcast_id=first.broadcast_id, name="spring sale", campaign_id=campaign_id, created_by="2100",
        created_at=NOW, total=5, by_status={"queued": 1, "sent": 1, "skipped": 3},
        skipped={"duplicate": 1, "invalid": 2})
    assert list(progress.by_status) == ["queued", "sent", "skipped"]  # in the order of a message's life
    listed = in_tx(sessions, store.list_broadcasts)
    assert [p.broadcast_id for p in listed] == [second.broadcast_id, first.broadcast_id]
    assert listed[1] == progress
    assert (listed[0].name, listed[0].total, listed[0].by_status["queued"], listed[0].skipped) == ("later", 1, 1, {})
    assert [p.broadcast_id for p in in_tx(sessions, store.list_broadcasts, limit=1)] == [second.broadcast_id]
    with pytest.raises(store.NotFoundError, match="^broadcast_id: SMS broadcast 999 not found"):
        in_tx(sessions, store.broadcast_progress, 999)
    with pytest.raises(InvalidFieldError, match="^limit: "):
        in_tx(sessions, store.list_broadcasts, limit=0)
    with pytest.raises(InvalidFieldError, match="^limit: "):
        in_tx(sessions, store.take_queued, limit=0, now=NOW)
    with pytest.raises(InvalidFieldError, match="^now: "):
        in_tx(sessions, store.take_queued, limit=1, now=datetime(2024, 3, 5))


# --- replies ---------------------------------------------------------------------------------


def test_opt_out_reply_goes_on_the_dnc_list_once_and_is_never_sent_to(sessions: sessionmaker[Session]) -> None:
    """An opt-out reply adds the number to the DNC list (audited) once; a queued message to it is
    skipped by the sender and a later broadcast skips it; other replies change nothing."""
    created = broadcast(sessions, to("13800138000", "13800138001"))
    reply = in_tx(sessions, store.record_reply, phone="+86 138 0013 8000", to_number="10690000", body="TD",
                  opt_out=True, now=NOW)
    assert (reply.phone, reply.to_number, reply.body, reply.opt_out, reply.received_at, reply.added_to_dnc) == (
        "13800138000", "10690000", "TD", True, NOW, True)
    assert in_tx(sessions, dialer.is_dnc, "13800138000")
    with sessions.begin() as session:
        entry = session.get(models.DncNumber, "13800138000")
        assert entry is not None and (entry.source, entry.reason) == ("sms", "SMS reply 'TD'")
    again = in_tx(sessions, store.record_reply, phone="13800138000", to_number="10690000", body="stop " * 80,
                  opt_out=True, now=NOW + timedelta(minutes=1))
    assert again.added_to_dnc is False and again.reply_id != reply.reply_id
    (audit,) = in_tx(sessions, dialer.list_audit, action="dnc.add")
    digest = dialer.phone_hash("13800138000")
    assert (audit.subject, audit.actor, audit.detail["phone_hash"], audit.detail["reply_id"]) == (
        f"dnc:{digest}", "sms", digest, reply.reply_id)
    assert "SMS reply" in audit.detail["how"]
    chat = in_tx(sessions, store.record_reply, phone="13800138001", to_number="10690000", body="when?",
                 opt_out=False, now=NOW + timedelta(minutes=2))
    assert chat.added_to_dnc is False and not in_tx(sessions, dialer.is_dnc, "13800138001")
    assert [q.phone for q in take(sessions, 10)] == ["13800138001"]
    assert messages(sessions, created.broadcast_id)[0] == ("13800138000", "skipped", "dnc")
    later = broadcast(sessions, to("138-0013-8000"), name="later")
    assert (later.queued, later.skipped) == (0, {"dnc": 1})
    assert [r.reply_id for r in in_tx(sessions, store.list_replies)] == [chat.reply_id, again.reply_id, reply.reply_id]
    assert in_tx(sessions, store.list_replies, limit=1) == [chat]
    assert in_tx(sessions, store.list_replies)[2] == reply


def test_reply_from_an_invalid_number_is_kept_as_given(sessions: sessionmaker[Session]) -> None:
    """A sender that is not a telephone number is stored as given (cut to 32) and cannot opt out."""
    reply = in_tx(sessions, store.record_reply, phone=" BANK-" + "X" * 40, to_number="10690000", body="STOP",
                  opt_out=True, now=NOW)
    assert (reply.phone, reply.added_to_dnc, reply.opt_out) == (("BANK-" + "X" * 40)[:32], False, True)
    assert in_tx(sessions, dialer.list_audit, action="dnc.add") == []


def test_record_reply_refuses_bad_arguments(sessions: sessionmaker[Session]) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("^phone: ", {"phone": " "}), ("^phone: ", {"phone": None}), ("^to_number: ", {"to_number": 10690000}),
        ("^body: ", {"body": None}), ("^opt_out: ", {"opt_out": "yes"}), ("^now: ", {"now": datetime(2024, 3, 5)}),
    ]
    for match, overrides in cases:
        arguments: dict[str, Any] = {"phone": "13800138000", "to_number": "10690000", "body": "TD",
                                     "opt_out": True, "now": NOW, **overrides}
        with pytest.raises(InvalidFieldError, match=match):
            in_tx(sessions, store.record_reply, **arguments)
    with pytest.raises(InvalidFieldError, match="^limit: "):
        in_tx(sessions, store.list_replies, limit=-1)
    assert in_tx(sessions, store.list_replies) == []


def test_the_periods_texts_report(sessions: sessionmaker[Session]) -> None:
    """Broadcasts created in the period with their messages by status and skip reason; replies
    received in it, opt-outs apart; what falls outside the period is not counted."""
    first = broadcast(sessions, to("13800000001", "13800000002", "020-1234-5678", "13800000001"))
    broadcast(sessions, to("13800000009"), now=NOW + timedelta(days=1))  # the next day
    (a, b) = take(sessions, 2)
    in_tx(sessions, store.finish_sms, a.message_id, ok=True, now=NOW)
    in_tx(sessions, store.finish_sms, b.message_id, ok=False, reason="refused", now=NOW)
    in_tx(sessions, store.record_reply, phone="13800000001", to_number="10690000", body="T", opt_out=True, now=NOW)
    in_tx(sessions, store.record_reply, phone="13800000002", to_number="10690000", body="ok", opt_out=False,
          now=NOW + timedelta(hours=1))
    in_tx(sessions, store.record_reply, phone="13800000003", to_number="10690000", body="hi", opt_out=False,
          now=NOW + timedelta(days=2))
    report = in_tx(sessions, store.sms_report, since=NOW - timedelta(hours=1), until=NOW + timedelta(hours=12))
    assert report == store.SmsReport(broadcasts=1, by_status={"sent": 1, "failed": 1, "skipped": 2},
                                     skipped={"duplicate": 1, "invalid": 1}, replies=2, opt_outs=1)
    assert first.queued == 2
    empty = in_tx(sessions, store.sms_report, since=NOW + timedelta(days=5), until=NOW + timedelta(days=6))
    assert empty == store.SmsReport(broadcasts=0, by_status={}, skipped={}, replies=0, opt_outs=0)


def test_marketing_texts_are_capped_per_number_and_notices_are_not(sessions: sessionmaker[Session]) -> None:
    """One marketing text per number in ``min_days_between`` days, whoever sends it; a notice (a
    ticket number) is neither capped nor counted; a text that failed or was skipped does not count."""
    def send(numbers: tuple[str, ...], at: datetime, kind: str = "marketing") -> store.BroadcastCreated:
        return in_tx(sessions, store.create_broadcast, name="n", template="t", recipients=to(*numbers), actor="9001",
                     now=at, kind=kind, min_days_between=7)

    assert send(("13800000001", "13800000002"), NOW).queued == 2
    (failed, _) = take(sessions, 2)
    in_tx(sessions, store.finish_sms, failed.message_id, ok=False, reason="refused", now=NOW)  # 13800000001
    again = send(("13800000001", "13800000002", "13800000003"), NOW + timedelta(days=6))
    assert (again.queued, again.skipped) == (2, {"texted recently": 1})  # 0002 was sent; 0001 failed
    notice = send(("13800000002",), NOW + timedelta(days=6), kind="notice")
    assert (notice.queued, notice.skipped) == (1, {})
    assert send(("13800000004",), NOW, kind="notice").queued == 1
    assert send(("13800000004",), NOW + timedelta(hours=1)).queued == 1  # a notice does not count
    later = send(("13800000002",), NOW + timedelta(days=13, hours=1))  # 7 days after the day-6 marketing text
    assert (later.queued, later.skipped) == (1, {})
    uncapped = in_tx(sessions, store.create_broadcast, name="n", template="t", recipients=to("13800000002"),
                     actor="9001", now=NOW + timedelta(days=13, hours=2))
    assert uncapped.queued == 1  # min_days_between 0 (the default): no cap
    with pytest.raises(InvalidFieldError, match="^kind: "):
        send(("13800000005",), NOW, kind="promo")
