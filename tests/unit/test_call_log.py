"""The call log (callcenter.call_log, pure; storage on SQLite and PostgreSQL; the CLI and the
reports page's download): every field of the site's call record, local times, a team lead
sees their team's calls, and no cell can run as a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from callcenter.call_log import COLUMNS, call_log_csv, call_log_row
from callcenter.cli import main
from callcenter.http_api import ReportsPage
from callcenter.settings import load_settings
from callcenter.storage import repository as repo_fns
from callcenter.storage.records import CallRecordUpdate, NewCallRecord
from callcenter.web_access import Caller
from tests.sitedb import sqlite_site
from tests.syncrepository import SyncRepository, in_tx

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _store(sessions: sessionmaker[Session]) -> list[str]:
    tickets = []
    for minutes, agent, phone, notes in ((0, "2101", "13900000001", "=HYPERLINK(\"http://x\")"),
                                          (30, "2201", "+33123456789", "asked for a brochure"),
                                          (60, None, "13900000003", "")):
        record = in_tx(sessions, repo_fns.create_call_record, NewCallRecord(
            started_at=DAY + timedelta(minutes=minutes),
            direction="inbound", phone=phone, agent_id=agent, queue="hotline", queue_result="answered" if agent else
            "abandoned", wait_seconds=12, talk_seconds=95 if agent else 0, customer_name="张伟" if agent else None,
            description=notes, ivr_path=("language=1", "main_menu=0")), site_prefix="GD")
        tickets.append(record.ticket_number)
    in_tx(sessions, repo_fns.update_call_record, in_tx(sessions, repo_fns.get_call_record_by_ticket, tickets[0]).id,
          CallRecordUpdate(outcome="sale", issue_type="billing", csat=5, sale_amount=Decimal("99.50"),
                           follow_up_at=datetime(2026, 12, 6, 1, 30, tzinfo=UTC),
                           transfers=("1001>outbound@30", "2102>hotline@95")))
    return tickets


def test_a_record_is_one_row_with_every_field_in_local_time(sessions: sessionmaker[Session]) -> None:
    tickets = _store(sessions)
    records = in_tx(sessions, repo_fns.call_records_between, since=DAY.replace(hour=0), until=DAY.replace(hour=23))
    assert [r.ticket_number for r in records] == tickets  # oldest first
    row = call_log_row(records[0], SHANGHAI, SETTINGS.people)
    assert row == {
        "date": "2026-12-05", "time": "10:00:00", "ticket": tickets[0], "customer_name": "张伟",
        "phone": "13900000001", "issue_type": "billing", "description": "'=HYPERLINK(\"http://x\")",  # not a formula
        "outcome": "sale", "follow_up_at": "2026-12-06 09:30", "csat": "5", "agent_id": "2101", "team": "team1",
        "direction": "inbound", "queue": "hotline", "queue_result": "answered", "wait_seconds": "12",
        "talk_seconds": "95", "sale_amount": "99.50", "ivr_path": "language=1 > main_menu=0",
        "transfers": "1001>outbound@30 2102>hotline@95"}
    assert call_log_row(records[1], SHANGHAI, SETTINGS.people)["phone"] == "'+33123456789"
    abandoned = call_log_row(records[2], SHANGHAI, SETTINGS.people)
    assert (abandoned["agent_id"], abandoned["team"], abandoned["customer_name"]) == ("", "", "")
    table = list(csv.DictReader(io.StringIO(call_log_csv(records, SHANGHAI, SETTINGS.people))))
    assert tuple(table[0]) == COLUMNS and [r["ticket"] for r in table] == tickets
    team2 = in_tx(sessions, repo_fns.call_records_between, since=DAY.replace(hour=0), until=DAY.replace(hour=23),
                  agents={"2201", "2202"})
    assert [r.agent_id for r in team2] == ["2201"]


def test_the_cli_writes_the_log_for_excel_and_filters_by_team(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, tickets = sqlite_site(tmp_path, _store)
    base = ["--config", str(site), "report", "records", "--from", "2026-12-05"]
    out = tmp_path / "log.csv"
    assert main([*base, "--csv", str(out)]) == 0
    assert capsys.readouterr().out.startswith("call log 2026-12-05 .. 2026-12-05 (Asia/Shanghai): 3 call(s) written")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read 张伟
    assert [r["ticket"] for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))] == tickets
    assert main([*base, "--team", "team2"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["agent_id"], r["team"]) for r in rows] == [("2201", "team2")]
    assert main([*base, "--agent", "2101", "--json"]) == 0
    assert [r["ticket"] for r in json.loads(capsys.readouterr().out)] == [tickets[0]]
    assert main([*base, "--team", "team9"]) == 2
    assert "team: no team 'team9'" in capsys.readouterr().err


def test_the_reports_page_offers_the_log_and_a_lead_downloads_their_teams(sessions: sessionmaker[Session]) -> None:
    tickets = _store(sessions)
    page = ReportsPage(SimpleNamespace(settings=SETTINGS, repository=SyncRepository(sessions)))  # type: ignore[arg-type]

    def download(caller: Caller | None) -> tuple[int, DummyRequest, list[dict[str, str]]]:
        request = DummyRequest([b"records.csv"])
        request.args = {b"from": [b"2026-12-05"], b"to": [b"2026-12-05"]}
        if caller is not None:
            request._callcenter_caller = caller  # what the sign-in guard sets
        page.render_GET(request)  # type: ignore[arg-type]
        text = b"".join(request.written).decode("utf-8-sig")
        return request.responseCode or 200, request, list(csv.DictReader(io.StringIO(text)))

    status, request, rows = download(Caller(person=SETTINGS.people["9001"]))
    assert status == 200 and [r["ticket"] for r in rows] == tickets  # a manager: every call
    assert request.responseHeaders.getRawHeaders(b"content-disposition") == [
        b'attachment; filename="calls-2026-12-05-2026-12-05.csv"']
    _, _, rows = download(Caller(person=SETTINGS.people["8001"]))
    assert [r["agent_id"] for r in rows] == ["2101"]  # team1's lead: team1's calls
    request = DummyRequest([])
    request.args = {b"from": [b"2026-12-05"]}
    html = page.render_GET(request)  # type: ignore[arg-type]
    html = (html if isinstance(html, bytes) else b"".join(request.written)).decode()
    assert '<a href="/reports/records.csv?from=2026-12-05&amp;to=2026-12-05">' in html
    request = DummyRequest([b"records.csv"])
    request.args = {b"from": [b"yesterday"]}
    assert b"expected YYYY-MM-DD" in page.render_GET(request)  # type: ignore[operator]
    request = DummyRequest([b"records.csv"])  # a quarter at most: ~450k records at the reference site
    request.args = {b"from": [b"2026-01-01"], b"to": [b"2026-04-02"]}
    assert page.render_GET(request) == NOT_DONE_YET and (request.responseCode or 200) == 200  # type: ignore[arg-type]
    assert b"".join(request.written).decode("utf-8-sig").startswith("date,time,ticket,")
    request = DummyRequest([b"records.csv"])
    request.args = {b"from": [b"2026-01-01"], b"to": [b"2026-04-03"]}
    refused = page.render_GET(request)  # type: ignore[arg-type]
    assert request.responseCode == 400 and b"to: the call log is at most 92 days at once (a quarter), got 93" in refused
