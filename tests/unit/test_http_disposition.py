"""POST /api/call-records/<ticket>/disposition on a real database (SQLite and PostgreSQL).

The HTTP resource with the engine's repository calls run synchronously on the test
database: the record changes, bad bodies are 400 naming the field, a writer who may not
is 403, an unknown ticket 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy.orm import Session, sessionmaker

from callcenter.commission import Sale
from callcenter.dialer.campaign import CallingHours, Campaign
from callcenter.http_api import ApiResource
from callcenter.settings import load_settings
from callcenter.storage import dialer as dialer_store
from callcenter.storage import repository as repo_fns
from callcenter.storage.dialer_records import LeadRow
from callcenter.storage.records import NewCallRecord
from tests.httpapi import post_json
from tests.syncrepository import SyncRepository

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")


def test_the_agent_dispositions_the_call_others_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        record = repo_fns.create_call_record(session, NewCallRecord(
            started_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC), direction="inbound", phone="13912345678",
            agent_id="2101", queue="hotline", outcome="callback requested: 13912345678"), site_prefix="GD")
    api = ApiResource(SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS))  # type: ignore[arg-type]
    path = [b"call-records", record.ticket_number.encode(), b"disposition"]

    status, body = post_json(api, path, {"agent": "2101", "outcome": "resolved", "issue_type": "billing",
                                     "notes": "refund sent", "follow_up_at": "2026-12-07T10:00:00+08:00"})
    assert status == 200, body
    saved = body["record"]
    assert (saved["outcome"], saved["issue_type"], saved["description"]) == ("resolved", "billing", "refund sent")
    assert saved["follow_up_at"].startswith("2026-12-07T02:00:00")
    with sessions() as session:
        stored = repo_fns.get_call_record_by_ticket(session, record.ticket_number)
    assert stored is not None and (stored.outcome, stored.agent_id, stored.phone) == ("resolved", "2101", "13912345678")

    status, body = post_json(api, path, {"agent": "8001", "notes": "lead checked"})  # team1's lead
    assert status == 200 and body["record"]["description"] == "lead checked"
    status, body = post_json(api, path, {"agent": "2101", "outcome": "sale", "sale_amount": "1999.9"})
    assert (status, body["record"]["outcome"], body["record"]["sale_amount"]) == (200, "sale", "1999.90")
    status, body = post_json(api, path, {"agent": "2101", "sale_amount": 1999.9})
    assert (status, body["field"]) == (400, "sale_amount")
    status, body = post_json(api, path, {"agent": "2101", "outcome": "resolved", "sale_amount": None})
    assert (status, body["record"]["sale_amount"]) == (200, None)
    status, body = post_json(api, path, {"agent": "2102", "outcome": "sale"})
    assert status == 403 and "agent 2102 may disposition only their own calls" in body["error"]
    status, body = post_json(api, path, {"agent": "2101", "follow_up_at": "2026-12-07 10:00"})
    assert (status, body["field"]) == (400, "follow_up_at")
    status, body = post_json(api, path, {"agent": "2101", "outcome": "x" * 65})
    assert (status, body["field"]) == (400, "outcome")
    status, body = post_json(api, [b"call-records", b"GD20261205999", b"disposition"], {"agent": "2101", "outcome": "ok"})
    assert (status, body["field"]) == (404, "ticket")
    with sessions() as session:
        stored = repo_fns.get_call_record_by_ticket(session, record.ticket_number)
    assert stored is not None and (stored.outcome, stored.description) == ("resolved", "lead checked")


def test_a_customer_who_asks_not_to_be_called_again_goes_on_the_dnc_list(sessions: sessionmaker[Session]) -> None:
    """``do_not_call: true``: the disposition is saved and the number is on the DNC list, with an
    audit row naming the agent and the ticket, in one transaction; asking twice adds nothing; a
    call without a number is refused (409) and nothing is written; leads with the number are then
    never dialed (the claim closes them as dnc)."""
    now = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)
    with sessions() as session, session.begin():
        record = repo_fns.create_call_record(session, NewCallRecord(
            started_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC), direction="outbound", phone="+86 139 1234 5678",
            agent_id="2101", queue="outbound"), site_prefix="GD")
        silent = repo_fns.create_call_record(session, NewCallRecord(
            started_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC), direction="inbound", phone=None,
            agent_id="2101", queue="hotline"), site_prefix="GD")
        campaign = dialer_store.sync_campaigns(session, [Campaign(
            name="spring", dial_mode="predictive", caller_id="4008001234", queue="outbound",
            timezone="Asia/Shanghai", calling_hours=CallingHours(time(0, 0), time(23, 59)),
            safe_harbor_message="custom/dialer/safe_harbor-zh")])[0]
        dialer_store.import_leads(session, campaign.id, [LeadRow(line=2, phone="13912345678")], list_name="l",
                                  source_file="l.csv", actor="test", now=now)
    api = ApiResource(SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS,  # type: ignore[arg-type]
                                      clock=SimpleNamespace(seconds=now.timestamp)))
    path = [b"call-records", record.ticket_number.encode(), b"disposition"]
    status, body = post_json(api, path, {"agent": "2101", "outcome": "not interested", "do_not_call": True})
    assert (status, body["record"]["outcome"]) == (200, "not interested"), body
    with sessions() as session:
        assert dialer_store.is_dnc(session, "13912345678")
        (entry,) = [a for a in dialer_store.list_audit(session) if a.action == "dnc.add"]
        assert dialer_store.claim_leads(session, campaign.id, limit=5, now=now) == []
    assert (entry.actor, entry.at, entry.detail["ticket"], entry.detail["how"]) == (
        "2101", now, record.ticket_number, "asked the agent during a call")
    assert "13912345678" not in str(entry.detail)  # the audit names the number by its hash only
    status, body = post_json(api, path, {"agent": "2101", "do_not_call": True})  # asked again: already listed
    assert status == 200
    status, body = post_json(api, [b"call-records", silent.ticket_number.encode(), b"disposition"],
                             {"agent": "2101", "outcome": "resolved", "do_not_call": True})
    assert (status, body["field"]) == (409, "do_not_call")
    with sessions() as session:
        assert len([a for a in dialer_store.list_audit(session) if a.action == "dnc.add"]) == 1
        kept = repo_fns.get_call_record_by_ticket(session, silent.ticket_number)
        assert kept is not None and kept.outcome is None  # the refused disposition wrote nothing


def test_the_agents_of_a_call_under_way_and_of_a_call_handed_on_write_it(sessions: sessionmaker[Session]) -> None:
    """A hotline call first offered to 2101, whose phone rang unanswered, then connected by
    the queue to 2102: while it is under way 2102 (the agent talking, whose screen shows it)
    dispositions it and records a sale, paid to 2102; 2101 is refused. An outbound call 2101
    sold, then handed to 2201 (the record's agent once it ended): 2101 still records the
    sale, which stays 2101's (before, both were refused: the writer had to be the record's
    agent of the moment, and a sale went to that agent)."""
    when = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    with sessions() as session, session.begin():
        live = repo_fns.create_call_record(session, NewCallRecord(
            started_at=when, direction="inbound", phone="13912345678", agent_id="2101", queue="hotline",
            linkedid="1733364000.7"), site_prefix="GD")
        handed = repo_fns.create_call_record(session, NewCallRecord(
            started_at=when, direction="outbound", phone="13912345679", agent_id="2201", queue="outbound",
            linkedid="1733364000.9", ended_at=when + timedelta(minutes=5), transfers=("2101>agent:2201@60",)),
            site_prefix="GD")
    connected = {"1733364000.7": "2102"}
    engine = SimpleNamespace(repository=SyncRepository(sessions), settings=SETTINGS,
                             connected_agent=connected.get, transfers_of=lambda linkedid: ())
    api = ApiResource(engine)  # type: ignore[arg-type]
    path = [b"call-records", live.ticket_number.encode(), b"disposition"]
    status, body = post_json(api, path, {"agent": "2102", "outcome": "sale", "sale_amount": "300"})
    assert (status, body.get("record", {}).get("outcome")) == (200, "sale"), body
    status, body = post_json(api, path, {"agent": "2101", "outcome": "resolved"})
    assert status == 403 and body["error"].endswith("this call was taken by agent 2102"), body

    path = [b"call-records", handed.ticket_number.encode(), b"disposition"]
    status, body = post_json(api, path, {"agent": "2101", "outcome": "sale", "sale_amount": "1000"})
    assert status == 200, body
    status, body = post_json(api, path, {"agent": "2201", "notes": "set up the service"})
    assert status == 200, body
    status, body = post_json(api, path, {"agent": "2102", "notes": "not mine"})
    assert status == 403 and body["error"].endswith("taken by agent 2101, agent 2201"), body
    with sessions() as session:
        sales = repo_fns.report_sales(session, since=when - timedelta(hours=1), until=when + timedelta(hours=1))
    # each with the seller's team at the sale: its lead's share stays theirs if the seller moves
    assert sorted(sales, key=repr) == [Sale("2101", Decimal("1000.00"), "team1"),
                                       Sale("2102", Decimal("300.00"), "team1")]
