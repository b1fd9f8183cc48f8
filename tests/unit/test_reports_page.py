"""The reports page (callcenter.reports_page, http_api.ReportsPage) on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy.orm import Session, sessionmaker
from twisted.web.test.requesthelper import DummyRequest

from callcenter.http_api import ReportsPage
from callcenter.qa import parse_review
from callcenter.settings import load_settings
from callcenter.storage import sms as sms_store
from callcenter.storage.records import CallRecordUpdate, NewCallRecord
from tests.syncrepository import SyncRepository

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")
DAY = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, 5 December


def _get(page: ReportsPage, **args: str) -> tuple[int, str]:
    request = DummyRequest([])
    request.args = {k.encode(): [v.encode()] for k, v in args.items()}
    body = page.render_GET(request)  # type: ignore[arg-type]
    text = body if isinstance(body, bytes) else b"".join(request.written)
    return request.responseCode or 200, text.decode()


def test_the_days_calls_commission_and_qa_on_one_page(sessions: sessionmaker[Session]) -> None:
    repo = SyncRepository(sessions)
    sold = repo.create_call_record(NewCallRecord(
        started_at=DAY, direction="inbound", phone="13900000001", agent_id="2101", queue="hotline",
        queue_result="answered", wait_seconds=5, talk_seconds=120, csat=5), site_prefix="GD").result
    repo.update_call_record(sold.id, CallRecordUpdate(outcome="sale", sale_amount=Decimal("1999.00")))
    repo.save_qa_review(sold.id, parse_review({"reviewer": "8001", "ratings": {
        item.id: 4 for item in SETTINGS.qa.scorecard}}, SETTINGS.qa.scorecard), now=DAY)
    page = ReportsPage(SimpleNamespace(settings=SETTINGS, repository=repo))  # type: ignore[arg-type]
    status, html = _get(page, **{"from": "2026-12-05", "to": "2026-12-05", "by": "agent"})
    assert status == 200
    assert '<input type="date" name="from" value="2026-12-05">' in html and '<option value="agent" selected>' in html
    assert "2026-12-05 (Asia/Shanghai)" in html and "<h2>Calls by agent</h2>" in html
    calls = html.split("<h2>Calls by agent</h2>\n<pre>")[1]
    rows = [line.split() for line in calls.split("</pre>")[0].splitlines()]
    assert rows[0][:3] == ["agent", "calls", "in"] and rows[1][:3] == ["2101", "1", "1"]
    assert "1 sales, 1,999.00 yuan; commission due 299.85" in html  # 15% of the sale
    assert "<h2>QA scores</h2>" in html and "100.0" in html
    assert "<h2>Texts</h2>\n<p class=muted>No texts sent or received in the period.</p>" in html


def test_the_periods_texts(sessions: sessionmaker[Session]) -> None:
    """The broadcasts of the period by status, skipped ones by reason, and the replies (docs/sms.md)."""
    repo = SyncRepository(sessions)
    repo.run(sms_store.create_broadcast, name="offer", template="hi", actor="9001", now=DAY, recipients=[
        sms_store.SmsRecipient(phone=p, body="hi", parts=1) for p in ("13900000001", "13900000002", "12345")])
    repo.run(sms_store.record_reply, phone="13900000001", to_number="10690000", body="T", opt_out=True, now=DAY)
    page = ReportsPage(SimpleNamespace(settings=SETTINGS, repository=repo))  # type: ignore[arg-type]
    status, html = _get(page, **{"from": "2026-12-05", "to": "2026-12-05"})
    assert status == 200
    assert ("<h2>Texts</h2>\n<p>1 broadcast(s): 2 queued, 1 skipped (skipped: 1 invalid). 1 reply received, "
            "1 of them unsubscribing.</p>") in html, html
    assert "1 broadcast(s)" not in _get(page, **{"from": "2026-12-04", "to": "2026-12-04"})[1]


def test_a_bad_period_or_grouping_says_which_field(sessions: sessionmaker[Session]) -> None:
    page = ReportsPage(SimpleNamespace(settings=SETTINGS, repository=SyncRepository(sessions)))  # type: ignore[arg-type]
    status, html = _get(page, **{"from": "yesterday"})
    assert status == 400 and "from: expected YYYY-MM-DD, got &#x27;yesterday&#x27;" in html
    assert '<form method="get" action="/reports">' in html and "<h2>" not in html
    status, html = _get(page, by="week")
    assert status == 400 and "by: expected one of day, agent, queue, got &#x27;week&#x27;" in html
    status, html = _get(page, **{"from": "2026-12-06", "to": "2026-12-05"})
    assert status == 400 and "to: 2026-12-05 is before from 2026-12-06" in html


def test_the_agents_time_on_the_page_and_over_the_api(sessions: sessionmaker[Session]) -> None:
    """Where each agent's time went (docs/reports.md, "Agent time"): the page's table, with the
    team, the pause reasons and occupancy; the API's lines in seconds."""
    from callcenter.agent_time import StateChange
    from callcenter.http_api import ApiResource
    from callcenter.storage.agent_time import record_agent_states
    from tests.httpapi import get_json

    repo = SyncRepository(sessions)
    hour = 3600
    repo.run(record_agent_states, [
        StateChange("2101", DAY, "ready"), StateChange("2101", datetime(2026, 12, 5, 3, 0, tzinfo=UTC), "on_call"),
        StateChange("2101", datetime(2026, 12, 5, 4, 0, tzinfo=UTC), "paused", "lunch"),
        StateChange("2101", datetime(2026, 12, 5, 4, 30, tzinfo=UTC), "logged_out")])
    engine = SimpleNamespace(settings=SETTINGS, repository=repo)
    status, html = _get(ReportsPage(engine), **{"from": "2026-12-05"})  # type: ignore[arg-type]
    assert status == 200
    table = html.split("<h2>Agent time</h2>\n<pre>")[1].split("</pre>")[0].splitlines()
    assert table[0].split()[:4] == ["agent", "team", "logged", "in"]
    assert table[1].split() == ["2101", "team1", "2:30:00", "1:00:00", "0:00:00", "1:00:00", "0:00:00", "0:30:00",
                                "50.0%", "12-05", "10:00", "12-05", "12:30", "0:00:00", "lunch", "0:30:00"]
    assert "No agent logged in" in _get(ReportsPage(engine), **{"from": "2026-12-04"})[1]  # type: ignore[arg-type]
    status, body = get_json(ApiResource(engine), [b"reports", b"agents"],  # type: ignore[arg-type]
                            {b"from": [b"2026-12-05"]})
    assert status == 200 and body["from"] == "2026-12-05"
    [line] = body["lines"]
    assert (line["agent_id"], line["logged_in"], line["on_call"], line["paused_by_reason"], line["occupancy"]) == (
        "2101", 2.5 * hour, hour, {"lunch": 0.5 * hour}, 0.5)
    assert line["first_logged_in"] == "2026-12-05T02:00:00+00:00"
