"""``callcenter dialer ...``: import, campaigns, DNC, destroy, ledger and audit on a SQLite file."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from callcenter.cli import main
from callcenter.dialer.campaign import Campaign
from callcenter.dialer.config import load_dialer_config
from callcenter.storage import dialer as store
from callcenter.storage import models
from callcenter.storage.db import (
    create_engine_for,
    make_session_factory,
    upgrade_database,
)

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cc.sqlite3'}"


@pytest.fixture
def run(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """``callcenter dialer ARGS`` on a temporary database, with a configuration directory that
    has no dialer.yaml (campaigns come from the database) unless ``shipped=True``."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    for path in (ROOT / "config").glob("*.yaml"):
        if path.name != "dialer.yaml":
            shutil.copy(path, config_dir / path.name)
    override = tmp_path / "site.yaml"
    override.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\ndatabase:\n  url: {db_url}\n")
    upgrade_database(db_url)
    engine = create_engine_for(db_url)
    with make_session_factory(engine).begin() as session:
        store.sync_campaigns(session, [Campaign("spring", timezone="Asia/Shanghai")])
    engine.dispose()

    def invoke(*args: str, shipped: bool = False) -> tuple[int, str, str]:
        base = ["--config-dir", str(ROOT / "config" if shipped else config_dir), "--config", str(override)]
        capsys.readouterr()
        code = main([*base, "dialer", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def write_leads(path: Path, good: int, bad: list[str]) -> Path:
    lines = ["phone,name,city"] + [f"1380000{i:04d},Lead {i},Guangzhou" for i in range(good)] + bad
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_prints_count_bad_rows_by_line_and_writes_all_rejects(run: Run, tmp_path: Path) -> None:
    """Good rows go in; bad rows print as FILE:LINE: field: reason (capped, the rest counted) and
    all of them land in the rejects file; importing the same file again imports nothing: exit 1."""
    leads = write_leads(tmp_path / "march.csv", 5, ["bad-1,x,y", "13800000001,dup,z", "123,short", "nope,a,b"])
    code, out, err = run("import", str(leads), "--campaign", "spring", "--actor", "li", "--show", "2")
    assert code == 0
    assert f"{leads}: 5 of 9 row(s) imported into campaign 'spring' as lead list 1 ('march'); 4 rejected" in out
    assert "rows/s" in out
    assert err.splitlines()[0] == f"note: no {tmp_path / 'config' / 'dialer.yaml'}; using the campaigns stored in the database"
    assert err.splitlines()[1:4] == [
        f"{leads}:7: phone: must be 3 to 15 digits with an optional leading +, got 'bad-1'",
        f"{leads}:8: phone: duplicate of line 3 (13800000001)",
        f"2 more bad row(s); all 4 bad row(s) are in {tmp_path / 'var' / 'imports' / 'march-rejects.csv'}",
    ]
    with (tmp_path / "var" / "imports" / "march-rejects.csv").open(encoding="utf-8", newline="") as rejects:
        rows = list(csv.DictReader(rejects))
    assert [(r["line"], r["field"], r["row"]) for r in rows] == [
        ("7", "phone", "bad-1,x,y"), ("8", "phone", "13800000001,dup,z"), ("9", "row", "123,short"),
        ("10", "phone", "nope,a,b")]

    again = tmp_path / "again-rejects.csv"
    code, out, err = run("import", str(leads), "--campaign", "spring", "--rejects", str(again))
    assert code == 1
    assert "0 of 9 row(s) imported" in out and "(6 duplicate, 0 on the do-not-call list)" in out
    assert f"{leads}:2: phone: already a lead of campaign 'spring'" in err
    assert again.exists()


def test_import_errors_name_the_file_or_the_campaign(run: Run, tmp_path: Path) -> None:
    """A file without a phone column, an unreadable file and an unknown campaign fail with exit 1."""
    nophone = tmp_path / "x.csv"
    nophone.write_text("name\nAnn\n")
    code, _, err = run("import", str(nophone), "--campaign", "spring")
    assert code == 1 and f"{nophone}:1: header: no phone column" in err
    code, _, err = run("import", str(tmp_path / "missing.csv"), "--campaign", "spring")
    assert code == 1 and "missing.csv: cannot read" in err
    code, _, err = run("import", str(nophone), "--campaign", "winter")
    assert code == 1 and "--campaign: no campaign 'winter' (known: spring)" in err


def test_campaigns_show_progress_and_lists(run: Run, tmp_path: Path) -> None:
    """The campaign list shows lead counts by state and each lead list with its id and counts."""
    run("import", str(write_leads(tmp_path / "a.csv", 3, ["x,y,z"])), "--campaign", "spring", "--actor", "li")
    code, out, _ = run("campaigns")
    assert code == 0
    assert "spring (id 1, predictive, active, queue outbound, 08:00-21:00 Asia/Shanghai)" in out
    assert "  leads 3: new 3" in out
    assert "  list 1 'a' from " in out and ": 3 ok, 1 bad, imported " in out and " by li" in out


def test_campaigns_of_the_shipped_dialer_yaml_are_stored(run: Run) -> None:
    """With config/dialer.yaml present its campaigns are synced into the database first."""
    names = [c.campaign.name for c in load_dialer_config(ROOT / "config" / "dialer.yaml").campaigns]
    code, out, _ = run("campaigns", shipped=True)
    assert code == 0
    for name in [*names, "spring"]:
        assert f"{name} (id " in out


def test_dnc_add_check_import_remove(run: Run, tmp_path: Path) -> None:
    """Numbers are added (repeats counted), looked up, imported from a CSV, and removed with an audit row."""
    code, out, _ = run("dnc", "add", "138 0013 8000", "13800138000", "12345", "--source", "complaint")
    assert code == 0 and "2 number(s) added to the do-not-call list, 0 already on it" in out
    code, out, _ = run("dnc", "check", "138-0013-8000", "99999")
    assert code == 0
    assert "138-0013-8000: on the do-not-call list" in out and "99999: not on the do-not-call list" in out
    assert run("dnc", "check", "99999")[0] == 1
    listing = tmp_path / "national.csv"
    listing.write_text("手机\n12345\n67890\nnot-a-number\n", encoding="utf-8")
    code, out, err = run("dnc", "import", str(listing), "--source", "national")
    assert code == 0 and "1 number(s) added to the do-not-call list, 1 already on it, 1 bad row(s) skipped" in out
    assert f"{listing}:4: phone: " in err
    missing = tmp_path / "missing.csv"
    code, _, err = run("dnc", "import", str(missing))
    assert code == 1 and f"{missing}: cannot read: No such file or directory" in err
    code, _, err = run("dnc", "import", str(tmp_path))
    assert code == 1 and f"{tmp_path}: cannot read: Is a directory" in err
    code, out, _ = run("dnc", "remove", "12345", "--actor", "compliance")
    assert code == 0 and "1 of 1 number(s) removed" in out
    code, out, _ = run("audit", "--action", "dnc.remove")
    assert "compliance  dnc.remove  dnc:" in out
    code, _, err = run("dnc", "add", "call me")
    assert code == 1 and "phones[0]: must be 3 to 15 digits" in err


def test_destroy_refuses_waiting_leads_then_forced_and_audited(run: Run, tmp_path: Path) -> None:
    """destroy without --force refuses a list with leads not done; with it the leads go and the
    audit log says who destroyed which list."""
    run("import", str(write_leads(tmp_path / "old.csv", 4, [])), "--campaign", "spring")
    code, _, err = run("destroy", "1", "--actor", "dpo")
    assert code == 1 and "list_id: lead list 1 has 4 lead(s) not done" in err
    code, out, _ = run("destroy", "1", "--actor", "dpo", "--force")
    assert code == 0 and "lead list 1 destroyed: 4 lead(s) deleted" in out
    code, out, _ = run("audit")
    assert "dpo  leads.destroy  lead_list:1" in out and '"source_file": "' in out and '"leads_deleted": 4' in out
    assert run("destroy", "1", "--actor", "dpo")[0] == 1
    code, out, _ = run("campaigns")
    assert "leads 0: none" in out and ", destroyed " in out and " by dpo" in out


def test_ledger_prints_days_and_flags_the_window_over_the_limit(run: Run, db_url: str) -> None:
    """The ledger lists each local day with its rate and the 30-day rate, flagging those over 3%."""
    engine = create_engine_for(db_url)
    shanghai = ZoneInfo("Asia/Shanghai")
    with make_session_factory(engine).begin() as session:
        for day, outcomes in ((date(2024, 3, 4), {"human": 100}), (date(2024, 3, 5), {"human": 90, "abandoned": 10})):
            for outcome, count in outcomes.items():
                for _ in range(count):
                    session.add(models.DialAttempt(
                        campaign_id=1, phone_hash="0" * 64, attempt_no=1, outcome=outcome,
                        started_at=datetime.combine(day, time(12), tzinfo=shanghai).astimezone(UTC)))
    engine.dispose()
    code, out, _ = run("ledger", "--campaign", "spring", "--days", "2", "--day", "2024-03-05")
    assert code == 0
    assert out.splitlines()[2:] == [
        "2024-03-04     100          0        0    0.00%    0.00%  2024-03-04",
        "2024-03-05      90         10        0   10.00%    5.00%  2024-03-04  OVER",
    ]
    code, _, err = run("ledger", "--campaign", "spring", "--days", "0")
    assert code == 1 and "--days: expected at least 1" in err


def test_recycle_puts_exhausted_leads_back_and_refuses_reached_ones(run: Run, tmp_path: Path, db_url: str) -> None:
    """recycle re-queues leads that ended exhausted; asking for reached (human) leads is refused."""
    run("import", str(write_leads(tmp_path / "leads.csv", 3, [])), "--campaign", "spring")
    engine = create_engine_for(db_url)
    with make_session_factory(engine).begin() as session:
        session.execute(sa.update(models.Lead).where(models.Lead.id == 1).values(
            state="done", final_outcome="exhausted", attempts=3, next_attempt_at=None))
    code, out, _ = run("recycle", "--campaign", "spring", "exhausted")
    assert code == 0 and "1 lead(s) of spring with final outcome exhausted recycled" in out
    with make_session_factory(engine).begin() as session:
        lead = store.get_lead(session, 1)
    engine.dispose()
    assert lead is not None and (lead.state, lead.attempts, lead.final_outcome) == ("retry", 0, None)
    code, _, err = run("recycle", "--campaign", "spring", "human")
    assert code == 1 and "finals" in err and "never recycled" in err


def test_the_morning_hand_out_it_to_team_to_agents_and_back(run: Run, tmp_path: Path) -> None:
    """IT (a manager) gives team1 20 leads; its lead shares them among the team's 8 agents, 2 each,
    then the rest; at night takes back what was not dialed; each step audited; others refused."""
    run("import", str(write_leads(tmp_path / "batch.csv", 30, [])), "--campaign", "spring")
    code, out, _ = run("handout", "--campaign", "spring", "--by", "9001", "--team", "team1", "--count", "20")
    assert (code, out) == (0, "20 of 20 lead(s) of spring handed out to team team1\n")
    code, out, _ = run("handout", "--campaign", "spring", "--by", "8001", "--team", "team1", "--agents", "all",
                       "--each", "2")
    assert code == 0 and out.splitlines()[0] == "2101: 2 lead(s)"
    assert out.splitlines()[-1] == "16 lead(s) of team team1 shared among 8 agent(s) (audited)"
    code, out, _ = run("handout", "--campaign", "spring", "--by", "8001", "--team", "team1",
                       "--agents", "2101,2102,2103")
    assert code == 0 and out.splitlines()[:3] == ["2101: 2 lead(s)", "2102: 1 lead(s)", "2103: 1 lead(s)"]
    code, out, _ = run("holdings", "--campaign", "spring")
    lines = out.splitlines()
    assert lines[1].split() == ["IT", "(not", "handed", "out)", "10", "0", "0"]
    assert lines[2].split() == ["2101", "(team1)", "4", "0", "0"]  # team1 keeps none itself: no line
    assert [line.split()[0] for line in lines[3:]] == ["2102", "2103", "2104", "2105", "2106", "2107", "2108"]
    code, out, _ = run("takeback", "--campaign", "spring", "--by", "8001", "--team", "team1", "--agents", "2101")
    assert (code, out) == (0, "4 lead(s) of spring taken back from 2101 (back to team team1) (audited)\n")
    code, out, _ = run("takeback", "--campaign", "spring", "--by", "9001", "--team", "team1")
    assert (code, out) == (0, "20 lead(s) of spring taken back from team team1 (back to IT's pool) (audited)\n")
    code, out, _ = run("audit", "--limit", "10")
    assert out.count("leads.handout") == 3 and out.count("leads.takeback") == 2 and "8001" in out
    # who may not
    code, _, err = run("handout", "--campaign", "spring", "--by", "8001", "--team", "team1", "--count", "5")
    assert code == 1 and "--by 8001: agent 8001 is a lead: only a manager (IT) hands leads out to teams" in err
    code, _, err = run("handout", "--campaign", "spring", "--by", "8002", "--team", "team1", "--agents", "all")
    assert code == 1 and "a lead hands out only their own team's leads (team2), not team team1's" in err
    code, _, err = run("handout", "--campaign", "spring", "--by", "9001", "--team", "team1", "--count", "5",
                       "--agents", "all")
    assert code == 1 and "count: give either count" in err
    code, _, err = run("handout", "--campaign", "spring", "--by", "9001", "--team", "team9", "--count", "5")
    assert code == 1 and "unknown team 'team9'" in err
