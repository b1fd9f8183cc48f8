"""POST /api/call-records/<ticket>/disposition on a real database (SQLite and PostgreSQL).

The HTTP resource with the engine's repository calls run synchronously on the test
database: the record changes, bad bodies are 400 naming the field, a writer who may not
is 403, an unknown ticket 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy.orm import Session, sessionmaker

from callcenter.http_api import ApiResource
from callcenter.settings import load_settings
from callcenter.storage import repository as repo_fns
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
