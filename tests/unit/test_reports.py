"""Call reports: the pure measures, the SQL read on both databases, the CLI and the HTTP route."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter.cli import main
from callcenter.http_api import ApiResource
from callcenter.reports import CallFacts, ReportLine, build_report, period
from callcenter.settings import load_settings
from callcenter.storage import repository as repo
from callcenter.storage.records import NewCallRecord, NewCustomer
from tests.httpapi import get_json
from tests.sitedb import sqlite_site
from tests.syncrepository import SyncRepository

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 11, 2)
TARGETS = {"hotline": 20, "outbound": 2}
WRAPUP = {"hotline": 10, "outbound": 15}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def hotline(when: datetime, result: str | None, *, wait: int | None = None, talk: int = 0, csat: int | None = None,
            caller: str | None = None, agent: str | None = None) -> CallFacts:
    return CallFacts(started_at=when, direction="inbound", queue="hotline", queue_result=result, agent_id=agent,
                     caller=caller, wait_seconds=wait, talk_seconds=talk, csat=csat)


def day_of_calls() -> list[CallFacts]:
    day2 = DAY1 + timedelta(days=1)
    return [
        hotline(at(DAY1, 9), "answered", wait=10, talk=100, csat=5, caller="customer:1", agent="1001"),
        hotline(at(DAY1, 10), "answered", wait=30, talk=200, csat=3, caller="13800000002", agent="1001"),
        hotline(at(DAY1, 11), "abandoned", wait=40, caller="13800000003"),
        hotline(at(DAY1, 12), "unanswered", wait=300, caller="13800000004"),
        hotline(at(DAY1, 13), None, caller="13800000005"),  # hung up in the IVR
        CallFacts(started_at=at(DAY1, 14), direction="outbound", queue="outbound", agent_id="2101",
                  caller="13900000001", talk_seconds=60),
        hotline(at(day2, 9), "answered", wait=5, talk=50, csat=4, caller="customer:1", agent="1002"),  # a repeat
        hotline(at(DAY1 + timedelta(days=10), 9), "answered", wait=1, talk=10, caller="13800000002"),  # after
    ]


def report(by: str, now: datetime, calls: list[CallFacts] | None = None) -> list[ReportLine]:
    return build_report(day_of_calls() if calls is None else calls, period(DAY1, DAY1 + timedelta(days=1), SHANGHAI),
                        by=by, service_level_seconds=TARGETS, wrapup_seconds=WRAPUP, now=now)


def test_a_day_by_day_report_counts_each_measure_as_defined() -> None:
    lines = report("day", now=at(DAY1 + timedelta(days=30), 0))
    assert [line.key for line in lines] == ["2026-11-02", "2026-11-03", "total"]
    first, second, total = lines
    assert (first.calls, first.inbound, first.outbound, first.answered, first.abandoned, first.unanswered) == (
        6, 5, 1, 3, 1, 1)
    assert (first.answered_within_target, first.service_level, first.asa) == (1, 0.25, 20.0)
    assert first.aht == pytest.approx((100 + 10 + 200 + 10 + 60 + 15) / 3)
    # customer 1 called again the next day: not resolved; 138...02 called again after 9 days: resolved
    assert (first.fcr, first.fcr_calls) == (0.5, 2)
    assert (first.csat, first.csat_responses, first.csat_scores) == (4.0, 2, (0, 0, 1, 0, 1))
    assert (second.calls, second.service_level, second.asa, second.aht, second.fcr, second.csat) == (
        1, 1.0, 5.0, 60.0, 1.0, 4.0)
    assert (total.calls, total.answered, total.fcr_calls, total.csat_responses) == (7, 4, 3, 3)
    assert total.fcr == pytest.approx(2 / 3) and total.service_level == pytest.approx(2 / 5)


def test_the_dialers_connect_window_is_not_the_hotlines_service_level() -> None:
    """Dialer calls wait in their queue for the connect window (a second): their stays are not
    the callers' service level, speed of answer or abandons (the dialer's ledger has those).
    100 hotline callers, 30 answered in target, 30 late, 40 abandoned; 1,500 dialer connects
    and 20 dropped in the connect window: the day's SL is the hotline's 30%."""
    calls = [hotline(at(DAY1, 9), "answered", wait=10, talk=300, caller=f"1380000{n:04d}", agent="1001")
             for n in range(30)]
    calls += [hotline(at(DAY1, 10), "answered", wait=90, talk=300, caller=f"1381000{n:04d}", agent="1001")
              for n in range(30)]
    calls += [hotline(at(DAY1, 11), "abandoned", wait=60, caller=f"1382000{n:04d}") for n in range(40)]
    calls += [CallFacts(started_at=at(DAY1, 14), direction="outbound", queue="outbound", queue_result="answered",
                        agent_id="2101", caller=f"1390000{n:04d}", wait_seconds=1, talk_seconds=60)
              for n in range(1500)]
    calls += [CallFacts(started_at=at(DAY1, 15), direction="outbound", queue="outbound", queue_result="abandoned",
                        caller=f"1391000{n:04d}", wait_seconds=2) for n in range(20)]
    day, _, total = report("day", at(DAY1, 20), calls)
    for line in (day, total):
        assert (line.calls, line.inbound, line.outbound, line.answered) == (1620, 100, 1520, 1560)
        assert (line.abandoned, line.unanswered, line.answered_within_target) == (40, 0, 30)
        assert line.service_level == pytest.approx(0.30) and line.asa == pytest.approx(50.0)
    by_queue = {line.key: line for line in report("queue", at(DAY1, 20), calls)}
    assert by_queue["hotline"].service_level == pytest.approx(0.30)
    assert (by_queue["outbound"].answered, by_queue["outbound"].service_level, by_queue["outbound"].abandoned) == (
        1500, None, 0)


def test_handed_on_counts_the_answered_calls_an_agent_transferred() -> None:
    """One record per call: a call handed on counts once, in its day (and by agent, its last
    agent's line); a record marked transferred but not answered does not count."""
    calls = [replace(c, transferred=True) if c.started_at == at(DAY1, 10) or c.queue_result == "abandoned" else c
             for c in day_of_calls()]
    first, second, total = report("day", now=at(DAY1 + timedelta(days=30), 0), calls=calls)
    assert (first.transferred, second.transferred, total.transferred) == (1, 0, 1)
    by_agent = {line.key: line.transferred for line in report("agent", now=at(DAY1, 0), calls=calls)}
    assert by_agent == {"-": 0, "1001": 1, "1002": 0, "2101": 0, "total": 1}


def test_the_calls_are_read_once_in_any_order() -> None:
    """A stream (a generator, read once) in reverse order gives the same report as the list."""
    now = at(DAY1 + timedelta(days=30), 0)
    streamed = build_report((c for c in reversed(day_of_calls())), period(DAY1, DAY1 + timedelta(days=1), SHANGHAI),
                            by="day", service_level_seconds=TARGETS, wrapup_seconds=WRAPUP, now=now)
    assert streamed == report("day", now=now)


def test_lines_by_agent_and_by_queue() -> None:
    now = at(DAY1 + timedelta(days=30), 0)
    by_agent = {line.key: line for line in report("agent", now)}
    assert list(by_agent) == ["-", "1001", "1002", "2101", "total"]
    assert (by_agent["1001"].answered, by_agent["1001"].csat) == (2, 4.0)
    assert (by_agent["-"].calls, by_agent["-"].abandoned, by_agent["-"].answered) == (3, 1, 0)
    by_queue = {line.key: line for line in report("queue", now)}
    assert list(by_queue) == ["hotline", "outbound", "total"]
    assert (by_queue["outbound"].outbound, by_queue["outbound"].service_level, by_queue["outbound"].aht) == (
        1, None, 75.0)


def test_fcr_counts_only_calls_whose_window_has_passed_and_quiet_days_show() -> None:
    lines = report("day", now=at(DAY1 + timedelta(days=3), 0))
    assert all((line.fcr, line.fcr_calls) == (None, 0) for line in lines)
    empty = build_report([], period(DAY1, DAY1 + timedelta(days=2), SHANGHAI), by="day",
                         service_level_seconds=TARGETS, wrapup_seconds=WRAPUP, now=at(DAY1, 0))
    assert [(line.key, line.calls, line.service_level, line.csat) for line in empty] == [
        ("2026-11-02", 0, None, None), ("2026-11-03", 0, None, None), ("2026-11-04", 0, None, None),
        ("total", 0, None, None)]


def test_bad_report_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="^by: expected one of day, agent, queue, got 'team'"):
        report("team", now=at(DAY1, 0))
    with pytest.raises(ValueError, match="^fcr_days: expected whole days >= 1, got 0"):
        build_report([], period(DAY1, DAY1, SHANGHAI), by="day", service_level_seconds={}, wrapup_seconds={},
                     now=at(DAY1, 0), fcr_days=0)
    with pytest.raises(ValueError, match="^to: 2026-11-01 is before from 2026-11-02"):
        period(DAY1, DAY1 - timedelta(days=1), SHANGHAI)


# --- SQL -------------------------------------------------------------------------------------


def _store(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        customer = repo.create_customer(session, NewCustomer(name="Li", phone="020-1234-5678"))
        for when, phone, customer_id, result in (
                (at(DAY1, 9), "+86 20 1234 5678", customer.id, "answered"),
                (at(DAY1, 10), "+86 138 0000 0002", None, "answered"),
                (at(DAY1 + timedelta(days=1), 9), "008613800000002", None, "abandoned"),
                (at(DAY1 + timedelta(days=9), 9), "13800000003", None, "answered")):
            repo.create_call_record(session, NewCallRecord(
                started_at=when, direction="inbound", phone=phone, customer_id=customer_id, queue="hotline",
                queue_result=result, wait_seconds=5, talk_seconds=60 if result == "answered" else 0, csat=5,
                agent_id="1001", transfers=("2101>hotline@30",) if when.hour == 10 else ()),
                site_prefix="GD", ticket_day=when.date())


def test_report_facts_reads_the_calls_with_one_caller_per_line(sessions: sessionmaker[Session]) -> None:
    _store(sessions)
    with sessions.begin() as session:
        calls = list(repo.report_facts(session, since=at(DAY1, 0), until=at(DAY1 + timedelta(days=2), 0)))
    assert [(c.caller, c.queue_result, c.talk_seconds, c.transferred) for c in calls] == [
        ("customer:1", "answered", 60, False), ("13800000002", "answered", 60, True),
        ("13800000002", "abandoned", 0, False)]
    assert all(c.started_at.tzinfo is not None for c in calls)
    lines = build_report(calls, period(DAY1, DAY1, SHANGHAI), by="day", service_level_seconds=TARGETS,
                         wrapup_seconds=WRAPUP, now=at(DAY1 + timedelta(days=30), 0))
    assert (lines[0].fcr, lines[0].fcr_calls) == (0.5, 2)  # 138...02 called back the next day
    with sessions.begin() as session:  # the same, streamed from SQL inside the repository's transaction
        assert repo.call_report(session, period(DAY1, DAY1, SHANGHAI), by="day", service_level_seconds=TARGETS,
                                wrapup_seconds=WRAPUP, now=at(DAY1 + timedelta(days=30), 0)) == lines


def test_a_caller_is_one_caller_before_and_after_the_crm_knows_them(sessions: sessionmaker[Session]) -> None:
    """An unknown number calls on day 1 and again on day 2, when the agent adds them to the
    CRM (that record linked): day 1's call was not resolved. Withheld callers (``anonymous``)
    are each someone else and not judged at all; the CRM customer with a number of their own
    is still found by it."""
    with sessions.begin() as session:
        for when, phone in ((at(DAY1, 9), "13800000007"), (at(DAY1 + timedelta(days=1), 9), "13800000007"),
                            (at(DAY1, 10), "anonymous"), (at(DAY1, 11), "anonymous"), (at(DAY1, 12), "anonymous")):
            repo.create_call_record(session, NewCallRecord(
                started_at=when, direction="inbound", phone=phone, queue="hotline", queue_result="answered",
                wait_seconds=5, talk_seconds=60, agent_id="1001"), site_prefix="GD", ticket_day=when.date())
        customer = repo.create_customer(session, NewCustomer(name="Wang", phone="13800000007"))
    with sessions.begin() as session:
        calls = list(repo.report_facts(session, since=at(DAY1, 0), until=at(DAY1 + timedelta(days=2), 0)))
    assert [c.caller for c in calls] == [f"customer:{customer.id}", None, None, None, f"customer:{customer.id}"]
    lines = build_report(calls, period(DAY1, DAY1, SHANGHAI), by="day", service_level_seconds=TARGETS,
                         wrapup_seconds=WRAPUP, now=at(DAY1 + timedelta(days=30), 0))
    assert (lines[0].answered, lines[0].fcr, lines[0].fcr_calls) == (4, 0.0, 1)


# --- CLI and HTTP ----------------------------------------------------------------------------


def test_cli_prints_the_table_and_writes_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, _ = sqlite_site(tmp_path, _store)
    out_csv = tmp_path / "out" / "report.csv"
    assert main(["--config", str(site), "report", "calls", "--from", "2026-11-02", "--to", "2026-11-03",
                 "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out
    assert "calls 2026-11-02 .. 2026-11-03 (Asia/Shanghai), by day" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:] if line.strip() and "written" not in line}
    assert rows["2026-11-02"][1:7] == ["2", "2", "0", "2", "0", "0"]
    assert rows["total"][7] == "66.7%" and rows["total"][-3:] == ["5.00", "(3)", "1"]  # CSAT, handed on
    with out_csv.open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [r["key"] for r in table] == ["2026-11-02", "2026-11-03", "total"]
    assert (table[0]["csat_5"], table[2]["abandoned"], table[2]["fcr_calls"], table[2]["transferred"]) == (
        "2", "1", "2", "1")
    assert main(["--config", str(site), "report", "calls", "--from", "2026-11-02", "--by", "agent", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [line["key"] for line in body["lines"]] == ["1001", "total"]
    assert main(["--config", str(site), "report", "calls", "--from", "2026-11-03", "--to", "2026-11-02"]) == 2
    assert "error: to: 2026-11-02 is before from 2026-11-03" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", str(site), "report", "calls", "--from", "1 Dec"])
    assert "expected a day as YYYY-MM-DD, got '1 Dec'" in capsys.readouterr().err


def test_http_route_serves_the_report_and_names_bad_fields(sessions: sessionmaker[Session]) -> None:
    _store(sessions)
    engine = SimpleNamespace(repository=SyncRepository(sessions), settings=load_settings(ROOT / "config"))
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = get_json(api, [b"reports", b"calls"], {b"from": [b"2026-11-02"], b"to": [b"2026-11-03"], b"by": [b"queue"]})
    assert status == 200, body
    assert (body["from"], body["to"], body["by"], body["fcr_days"]) == ("2026-11-02", "2026-11-03", "queue", 7)
    assert [(line["key"], line["calls"], line["abandoned"]) for line in body["lines"]] == [
        ("hotline", 3, 1), ("total", 3, 1)]
    for query, field, message in (
            ({b"from": [b"yesterday"]}, "from", "expected YYYY-MM-DD, got 'yesterday'"),
            ({b"by": [b"team"]}, "by", "expected one of day, agent, queue, got 'team'"),
            ({b"fcr_days": [b"0"]}, "fcr_days", "expected an integer 1..365, got 0"),
            ({b"from": [b"2026-11-03"], b"to": [b"2026-11-02"]}, "to", "2026-11-02 is before from 2026-11-03"),
            ({b"from": [b"2024-01-01"], b"to": [b"2026-01-01"]}, "to", "at most 367 days at once, got 732")):
        status, body = get_json(api, [b"reports", b"calls"], query)
        assert (status, body) == (400, {"error": message, "field": field})


def test_cli_agent_time_table_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`callcenter report agents`: each agent's day from the recorded state changes."""
    from callcenter.agent_time import StateChange
    from callcenter.storage.agent_time import record_agent_states

    def at(hour: int, minute: int = 0) -> datetime:  # 08:00 in Shanghai is 00:00 UTC
        return datetime(2026, 11, 2, hour, minute, tzinfo=UTC)

    def fill(sessions: sessionmaker[Session]) -> None:
        with sessions.begin() as session:
            record_agent_states(session, [
                StateChange("1001", at(0), "ready"), StateChange("1001", at(1), "ringing"),
                StateChange("1001", at(1, 1), "on_call"), StateChange("1001", at(2), "wrap_up"),
                StateChange("1001", at(2, 1), "paused", "coaching"), StateChange("1001", at(3), "logged_out"),
                StateChange("2101", at(4), "paused"), StateChange("2101", at(5), "unknown")])

    site, _ = sqlite_site(tmp_path, fill)
    out_csv = tmp_path / "agents.csv"
    assert main(["--config", str(site), "report", "agents", "--from", "2026-11-02", "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("agent time 2026-11-02 .. 2026-11-02 (Asia/Shanghai); occupancy = ")
    assert text[1].split()[:5] == ["agent", "team", "logged", "in", "ready"]
    assert text[2].split() == ["1001", "hotline", "3:00:00", "1:00:00", "0:01:00", "0:59:00", "0:01:00", "0:59:00",
                               "49.6%", "11-02", "08:00", "11-02", "11:00", "0:00:00", "coaching", "0:59:00"]
    assert text[3].split() == ["2101", "team1", "1:00:00", "0:00:00", "0:00:00", "0:00:00", "0:00:00", "1:00:00",
                               "-", "11-02", "12:00", "11-02", "13:00", "11:00:00", "-", "1:00:00"]  # to the day's end
    with out_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["agent"], r["paused"], r["pauses"], r["unknown"]) for r in rows] == [
        ("1001", "0:59:00", "coaching 0:59:00", "0:00:00"), ("2101", "1:00:00", "- 1:00:00", "11:00:00")]
    assert main(["--config", str(site), "report", "agents", "--from", "2026-11-02", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [(line["agent_id"], line["unknown"]) for line in body["lines"]] == [("1001", 0.0), ("2101", 11 * 3600.0)]
    assert body["lines"][0]["occupancy"] == pytest.approx((59 + 1) / (60 + 1 + 59 + 1))
