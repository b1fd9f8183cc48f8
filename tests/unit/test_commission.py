"""Sales commission: the shares computed by hand, the configuration, the SQL read, CLI and HTTP."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter.cli import main
from callcenter.commission import (
    CommissionRates,
    Sale,
    commission_lines,
    commission_totals,
    fen,
    team_maps,
)
from callcenter.http_api import ApiResource
from callcenter.settings import ConfigError, load_settings
from callcenter.storage import repository as repo
from callcenter.storage.records import (
    CallRecordUpdate,
    InvalidFieldError,
    NewCallRecord,
)
from tests.httpapi import get_json
from tests.sitedb import sqlite_site
from tests.syncrepository import SyncRepository

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal


def test_each_share_of_each_sale_goes_to_its_payee_rounded_to_the_fen() -> None:
    """11% to the agent, 1.5% to the team's lead (co-leads split it), 1% to the director, 1.5% to the
    others' pool; a share nobody receives is 'unassigned'. Worked by hand."""
    team_of = {"a1": "t1", "a2": "t1", "a3": "t2", "a4": "t3"}
    leads_of = {"t1": ["L1"], "t2": ["L2a", "L2b"]}  # t3 has no lead
    rates = CommissionRates(director_id="D")
    sales = [Sale("a1", D("1000.00")), Sale("a1", D("999.99")), Sale("a2", D("500.00")), Sale("a3", D("333.33")),
             Sale("a4", D("100.00")), Sale(None, D("10.00")), Sale("a2", D("0.00"))]  # no sale: no line
    lines = commission_lines(sales, rates, team_of=team_of, leads_of=leads_of)
    assert [(line.share, line.payee, line.basis, line.amount, line.sales) for line in lines] == [
        ("agent", "a1", D("1999.99"), D("220.00"), 2),  # 219.9989
        ("agent", "a2", D("500.00"), D("55.00"), 1),
        ("agent", "a3", D("333.33"), D("36.67"), 1),  # 36.6663
        ("agent", "a4", D("100.00"), D("11.00"), 1),
        ("agent", "unassigned", D("10.00"), D("1.10"), 1),
        ("lead", "L1", D("2499.99"), D("37.50"), 3),  # 37.49985: half up
        ("lead", "L2a", D("166.665"), D("2.50"), 1),  # half of 333.33 each
        ("lead", "L2b", D("166.665"), D("2.50"), 1),
        ("lead", "unassigned", D("110.00"), D("1.65"), 2),
        ("director", "D", D("2943.32"), D("29.43"), 6),
        ("others", "others", D("2943.32"), D("44.15"), 6),
    ]
    totals = commission_totals(lines, rates)
    assert (totals.sales, totals.sales_amount, totals.due, totals.paid, totals.rounding) == (
        6, D("2943.32"), D("441.50"), D("441.50"), D("0.00"))
    assert rates.total == D("0.15")


def test_rounding_each_line_is_reported_not_hidden() -> None:
    lines = commission_lines([Sale("a1", D("0.05"))], CommissionRates(director_id="D"), team_of={"a1": "t1"},
                             leads_of={"t1": ["L1"]})
    assert [line.amount for line in lines] == [D("0.01"), D("0.00"), D("0.00"), D("0.00")]  # 0.0055 -> 0.01
    totals = commission_totals(lines, CommissionRates())
    assert (totals.due, totals.paid, totals.rounding) == (D("0.01"), D("0.01"), D("0.00"))  # 0.0075 -> 0.01
    assert fen(D("0.005")) == D("0.01") and fen(D("0.0049")) == D("0.00")


def test_teams_and_leads_come_from_the_agents() -> None:
    team_of, leads_of = team_maps(load_settings(CONFIG).agents)
    assert team_of["2101"] == "team1" and leads_of["team1"] == ["8001"]
    assert "hotline" not in leads_of  # the hotline team has no lead: its lead share is unassigned


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_the_configured_shares_are_exact_and_checked(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, [_write(tmp_path, "commission:\n  agent: 0.1\n  director_id: '9001'\n")])
    assert settings.commission == CommissionRates(agent=D("0.1"), director_id="9001")
    assert load_settings(CONFIG).commission == CommissionRates()
    bad = _write(tmp_path, "commission:\n  agent: 0.9\n  lead: 0.2\n  director_id: '9010'\n  other: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    assert str(info.value).splitlines() == [
        (f"{bad}:4:3: commission.director_id: unknown agent id '9010' (did you mean '9003'?); agents are listed "
         "in agents.yaml"),
        (f"{bad}:2:3: commission.agent: the shares add up to 1.125 (agent 0.9, lead 0.2, director 0.01, "
         "others 0.015), more than the whole sale"),
        f"{bad}:5:3: commission.other: unknown setting",
    ]


# --- SQL, CLI and HTTP -----------------------------------------------------------------------


def _store(sessions: sessionmaker[Session]) -> None:
    """Three sales on two days (one then changed by a disposition) and a call without one."""
    with sessions.begin() as session:
        for i, (when, agent, amount) in enumerate((
                (datetime(2026, 11, 2, 10, tzinfo=SHANGHAI), "2101", "1000.00"),
                (datetime(2026, 11, 2, 11, tzinfo=SHANGHAI), "2102", "500.50"),
                (datetime(2026, 11, 3, 9, tzinfo=SHANGHAI), "2201", "99.99"),
                (datetime(2026, 11, 3, 10, tzinfo=SHANGHAI), "2202", None))):
            record = repo.create_call_record(session, NewCallRecord(
                started_at=when, direction="outbound", agent_id=agent, queue="outbound",
                sale_amount=None if amount is None else D(amount)), site_prefix="GD", ticket_day=when.date())
            if i == 1:
                repo.update_call_record(session, record.id, CallRecordUpdate(sale_amount=D("600.50")))


def test_sales_are_stored_to_the_fen_and_read_for_a_period(sessions: sessionmaker[Session]) -> None:
    _store(sessions)
    with sessions.begin() as session:
        sales = repo.report_sales(session, since=datetime(2026, 11, 2, tzinfo=SHANGHAI),
                                  until=datetime(2026, 11, 4, tzinfo=SHANGHAI))
        (first,) = repo.list_recent_call_records(session, agent_id="2101")
    assert sales == [Sale("2101", D("1000.00")), Sale("2102", D("600.50")), Sale("2201", D("99.99"))]
    assert first.sale_amount == D("1000.00") and str(first.sale_amount) == "1000.00"


def test_a_sale_is_its_sellers_when_the_customer_is_handed_on_after(sessions: sessionmaker[Session]) -> None:
    """2101 records a 1,000.00 sale, then hands the customer to 1001: the record's agent
    becomes the call's last agent (1001) when it ends, the sale stays 2101's (and so the lead
    share team1's). A sale cleared is no one's."""
    when = datetime(2026, 11, 2, 10, tzinfo=SHANGHAI)
    with sessions.begin() as session:
        record = repo.create_call_record(session, NewCallRecord(
            started_at=when, direction="outbound", agent_id="2101", queue="outbound"),
            site_prefix="GD", ticket_day=when.date())
        repo.update_call_record(session, record.id, CallRecordUpdate(sale_amount=D("1000.00")))
        repo.update_call_record(session, record.id, CallRecordUpdate(agent_id="1001", transfers=("2101>agent:1001@60",)))
        other = repo.create_call_record(session, NewCallRecord(
            started_at=when, direction="outbound", agent_id="2102", queue="outbound", sale_amount=D("10.00")),
            site_prefix="GD", ticket_day=when.date())
        repo.update_call_record(session, other.id, CallRecordUpdate(sale_amount=None))
    with sessions.begin() as session:
        sales = repo.report_sales(session, since=when - timedelta(hours=1), until=when + timedelta(hours=1))
    assert sales == [Sale("2101", D("1000.00"))]
    settings = load_settings(CONFIG)
    team_of, leads_of = team_maps(settings.agents)
    lines = {(line.share, line.payee): line.amount
             for line in commission_lines(sales, settings.commission, team_of=team_of, leads_of=leads_of)}
    assert (lines[("agent", "2101")], lines[("lead", "8001")]) == (D("110.00"), D("15.00"))


def test_the_lead_share_is_the_sellers_team_at_the_sale(sessions: sessionmaker[Session]) -> None:
    """2101 (team1, lead 8001) records a sale, then moves to team2: the sale's lead share
    stays 8001's (before: read from today's teams, it went to team2's lead). A sale recorded
    before the team was kept (NULL) follows today's team as before."""
    settings = load_settings(CONFIG)
    team_of, leads_of = team_maps(settings.agents)
    assert team_of["2101"] == "team1" and leads_of["team1"] == ["8001"]
    (team2_lead,) = leads_of["team2"]
    when = datetime(2026, 11, 2, 10, tzinfo=SHANGHAI)
    with sessions.begin() as session:
        for amount, team in (("1000.00", "team1"), ("200.00", None)):
            record = repo.create_call_record(session, NewCallRecord(
                started_at=when, direction="outbound", agent_id="2101", queue="outbound"),
                site_prefix="GD", ticket_day=when.date())
            changes = CallRecordUpdate(sale_amount=D(amount)) if team is None else \
                CallRecordUpdate(sale_amount=D(amount), sale_team=team)
            repo.update_call_record(session, record.id, changes)
    with sessions.begin() as session:
        sales = repo.report_sales(session, since=when - timedelta(hours=1), until=when + timedelta(hours=1))
    assert sales == [Sale("2101", D("1000.00"), "team1"), Sale("2101", D("200.00"))]
    moved = {**team_of, "2101": "team2"}
    lines = {(line.share, line.payee): (line.basis, line.amount)
             for line in commission_lines(sales, settings.commission, team_of=moved, leads_of=leads_of)}
    assert lines[("lead", "8001")] == (D("1000.00"), D("15.00"))
    assert lines[("lead", team2_lead)] == (D("200.00"), D("3.00"))
    with pytest.raises(InvalidFieldError, match="sale_team"):
        CallRecordUpdate(sale_team="team1")  # names the seller's team of a sale given with it
    with sessions.begin() as session:  # the form sent back with the same amount (notes edited) by 2101 in team2
        (first, _) = sorted(repo.list_recent_call_records(session, agent_id="2101"), key=lambda r: r.id)
        repo.update_call_record(session, first.id, CallRecordUpdate(
            sale_amount=D("1000.00"), sale_agent_id="2101", sale_team="team2", description="paid by card"))
        kept = repo.report_sales(session, since=when - timedelta(hours=1), until=when + timedelta(hours=1))
        repo.update_call_record(session, first.id, CallRecordUpdate(sale_amount=D("1200.00"), sale_team="team2"))
        sales = repo.report_sales(session, since=when - timedelta(hours=1), until=when + timedelta(hours=1))
    assert kept[0] == Sale("2101", D("1000.00"), "team1")  # the same sale: its team at the sale kept
    assert sales[0] == Sale("2101", D("1200.00"), "team2")  # a new amount is a new sale: today's team


def test_cli_prints_the_commission_and_writes_csv_and_json(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    site, _ = sqlite_site(tmp_path, _store, "commission:\n  director_id: '9001'\n")
    out = tmp_path / "commission.csv"
    assert main(["--config", str(site), "report", "commission", "--from", "2026-11-02", "--to", "2026-11-03",
                 "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert ("commission 2026-11-02 .. 2026-11-03 (Asia/Shanghai): 3 sales, 1,700.49 yuan; commission due 255.07, "
            "paid 255.08 (rounding +0.01)") in text  # the fen each line's rounding adds
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in text.splitlines()[2:] if line.strip()}
    assert rows[("2101", "agent")] == ["11%", "1", "1,000.00", "110.00"]
    assert rows[("8001", "lead")] == ["1.5%", "2", "1,600.50", "24.01"]  # 24.0075
    assert rows[("9001", "director")] == ["1%", "3", "1,700.49", "17.00"]
    with out.open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert table[-1] == {"payee": "others", "share": "others", "rate": "0.015", "sales": "3", "basis": "1700.49",
                         "amount": "25.51"}
    assert main(["--config", str(site), "report", "commission", "--from", "2026-11-03", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["totals"] == {"sales": "1", "sales_amount": "99.99", "due": "15.00", "paid": "15.00",
                              "rounding": "0.00"}
    assert main(["--config", str(site), "report", "commission", "--from", "2026-11-03", "--to", "2026-11-02"]) == 2
    assert "to: 2026-11-02 is before from 2026-11-03" in capsys.readouterr().err


def test_http_route_serves_the_commission_as_exact_strings(sessions: sessionmaker[Session]) -> None:
    _store(sessions)
    engine = SimpleNamespace(repository=SyncRepository(sessions), settings=load_settings(CONFIG))
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = get_json(api, [b"reports", b"commission"], {b"from": [b"2026-11-02"]})
    assert status == 200, body
    assert body["totals"] == {"sales": 2, "sales_amount": "1600.50", "due": "240.08", "paid": "240.09",
                              "rounding": "0.01"}  # 240.075 due; 66.055, 16.005 and 24.0075 each round up
    assert body["lines"][0] == {"payee": "2101", "share": "agent", "basis": "1000.00", "rate": "0.11",
                                "amount": "110.00", "sales": 1}
    assert body["lines"][-2]["payee"] == "unassigned"  # no director_id in the shipped configuration
    status, body = get_json(api, [b"reports", b"commission"], {b"from": [b"2026-13-01"]})
    assert (status, body) == (400, {"error": "expected YYYY-MM-DD, got '2026-13-01'", "field": "from"})

