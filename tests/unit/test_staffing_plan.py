"""The staffing plan: forecast reading, plan numbers, CSV, PNG and the CLI command."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from callcenter.staffing import cli
from callcenter.staffing.erlang import (
    erlang_a_required_agents,
    required_agents,
    service_level,
)
from callcenter.staffing.plan import (
    ForecastError,
    PlanSettings,
    compute_plan,
    draw_chart,
    format_table,
    read_forecast,
    write_csv,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "forecast-example.csv"


def run_cli(*argv: str) -> int:
    """Build a parser the way callcenter.cli does, register staffing, parse and run."""
    parser = argparse.ArgumentParser(prog="callcenter")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_parser(sub)
    args = parser.parse_args(list(argv))
    result: int = args.func(args)
    return result


def write(tmp_path: Path, text: str, name: str = "forecast.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_forecast_reads_two_queues_of_half_hours() -> None:
    """The shipped example is a full day of the hotline and a larger queue, with a roster."""
    forecast = read_forecast(EXAMPLE)
    assert forecast.interval_minutes == 30
    queues = {row.queue for row in forecast.rows}
    assert queues == {"hotline", "support"}
    assert all(row.scheduled is not None for row in forecast.rows)
    support = sum(r.calls for r in forecast.rows if r.queue == "support")
    hotline = sum(r.calls for r in forecast.rows if r.queue == "hotline")
    assert support > hotline > 0


def test_plan_matches_the_vectorised_core_row_by_row() -> None:
    """Each interval's agents, seats and SL are those of required_agents for its row."""
    forecast = read_forecast(EXAMPLE)
    settings = PlanSettings(target_sl=0.8, target_seconds=20, shrinkage=0.3)
    plans = compute_plan(forecast, settings)
    for row, plan in zip(forecast.rows, plans, strict=True):
        req = required_agents(row.calls, 1800, row.aht, 0.8, 20, shrinkage=0.3)
        assert (plan.agents, plan.seats) == (int(req.agents), int(req.seats))
        assert plan.service_level == float(req.service_level)
        productive = int(row.scheduled * 0.7 + 1e-9) if row.scheduled is not None else 0
        expected = float(service_level(plan.traffic, productive, row.aht, 20))
        assert plan.scheduled_service_level == pytest.approx(expected, rel=1e-15)
        assert plan.abandon is None


def test_erlang_a_plan_reports_abandonment_within_the_cap() -> None:
    """With a patience the plan uses Erlang A and keeps abandonment under the cap."""
    forecast = read_forecast(EXAMPLE)
    settings = PlanSettings(patience=180.0, max_abandon=0.05, shrinkage=0.3)
    plans = compute_plan(forecast, settings)
    assert all(p.abandon is not None and p.abandon <= 0.05 for p in plans)
    row = forecast.rows[5]
    req = erlang_a_required_agents(row.calls, 1800, row.aht, 180.0, 0.8, 20, 0.05,
                                   shrinkage=0.3)
    assert plans[5].agents == int(req.agents)


def test_table_csv_and_png_are_written(tmp_path: Path) -> None:
    """The table has one line per interval, the CSV round-trips, the PNG is an image."""
    forecast = read_forecast(EXAMPLE)
    settings = PlanSettings()
    plans = compute_plan(forecast, settings)
    table = format_table(plans, settings, forecast.interval_minutes)
    assert "80% in 20 s" in table and "hotline" in table and "sched SL" in table
    assert table.count("\nhotline ") + table.count("\nsupport ") == len(plans)
    out = tmp_path / "plan.csv"
    write_csv(plans, out)
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(plans)
    assert int(rows[0]["seats"]) == plans[0].seats
    assert float(rows[0]["service_level"]) == pytest.approx(plans[0].service_level, abs=1e-6)
    png = tmp_path / "plan.png"
    draw_chart(plans, png, settings, forecast.interval_minutes)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_plan_on_the_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`staffing plan` prints the table and writes the CSV and chart where asked."""
    out, png = tmp_path / "p.csv", tmp_path / "p.png"
    code = run_cli("staffing", "plan", str(EXAMPLE), "--out", str(out), "--png", str(png),
                   "--target-sl", "0.9", "--target-seconds", "15", "--max-occupancy", "0.85")
    assert code == 0
    printed = capsys.readouterr().out
    assert "90% in 15 s" in printed and "occupancy <= 85%" in printed
    assert out.exists() and png.exists()


def test_cli_defaults_write_next_to_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --out/--png the files are FORECAST-plan.csv/.png in the current directory."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("staffing", "plan", str(EXAMPLE)) == 0
    assert (tmp_path / "forecast-example-plan.csv").exists()
    assert (tmp_path / "forecast-example-plan.png").exists()


def test_bad_rows_name_file_line_and_column(tmp_path: Path) -> None:
    """Bad values are reported with the file, the line and the column."""
    path = write(tmp_path, "queue,start,calls,aht_seconds\nhotline,08:00,12,200\n"
                           "hotline,08:30,twelve,200\n")
    with pytest.raises(ForecastError) as info:
        read_forecast(path)
    assert str(info.value) == f"{path}:3: column 'calls': expected a number, got 'twelve'"
    assert (info.value.line, info.value.column) == (3, "calls")


def test_every_bad_row_is_named_in_one_run(tmp_path: Path) -> None:
    """All the bad cells of a forecast are listed, not only the first; nothing is planned."""
    path = write(tmp_path, "queue,start,calls,aht_seconds,scheduled\n"
                           "hotline,08:00,38,252,18\n"
                           "hotline,08:30,abc,246,x\n"     # two bad cells in one row
                           "hotline,09:00,-3,246,22\n"
                           "hotline,25:00,3,246,22\n"
                           "hotline,09:30,5,0,22\n"
                           "hotline,08:00,5,100,3\n"
                           ",10:00,5,100\n"                # a short row
                           "hotline,10:30,5,100,4\n")
    with pytest.raises(ForecastError) as info:
        read_forecast(path)
    assert [(e.line, e.column) for e in info.value.problems] == [
        (3, "calls"), (3, "scheduled"), (4, "calls"), (5, "start"), (6, "aht_seconds"),
        (7, "start"), (8, None)]
    assert str(info.value).splitlines()[-2:] == [
        f"{path}:7: column 'start': queue 'hotline' already has 08:00 on line 2",
        f"{path}:8: expected 5 fields, got 4"]
    assert (info.value.line, info.value.column) == (3, "calls")


def test_cli_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI prints one line per problem and how many there were; no plan is written."""
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "queue,start,calls,aht_seconds\nq,08:00,x,1\nq,08:30,1,y\n")
    assert run_cli("staffing", "plan", str(path)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {path}:2: column 'calls': expected a number, got 'x'",
                   f"error: {path}:3: column 'aht_seconds': expected a number, got 'y'",
                   f"{path}: 2 problems; nothing planned"]
    assert not list(tmp_path.glob("*-plan.*"))


@pytest.mark.parametrize(("text", "message"), [
    ("queue,start,calls\nq,08:00,1\n", ":1: column 'aht_seconds': missing"),
    ("queue,start,calls,aht_seconds\nq,8 o'clock,1,200\n", ":2: column 'start': expected HH:MM"),
    ("queue,start,calls,aht_seconds\nq,08:00,-3,200\n", ":2: column 'calls': expected a finite"),
    ("queue,start,calls,aht_seconds\nq,08:00,3\n", ":2: expected 4 fields, got 3"),
    ("queue,start,calls,aht_seconds\nq,08:00,3,200\nq,08:00,4,200\n",
     ":3: column 'start': queue 'q' already has 08:00 on line 2"),
    ("queue,start,calls,aht_seconds,scheduled\nq,08:00,3,200,2.5\nq,08:30,3,200,2\n",
     ":2: column 'scheduled': expected a whole number"),
    ("queue,start,calls,aht_seconds\nq,08:00,3,200\n", "cannot infer the interval length"),
    ("", "empty file"),
])
def test_forecast_errors(tmp_path: Path, text: str, message: str) -> None:
    """Every kind of bad forecast gives one clear message naming where it is."""
    path = write(tmp_path, text)
    with pytest.raises(ForecastError, match=message.replace("(", r"\(")):
        read_forecast(path)


def test_named_scheduled_column_and_iso_starts(tmp_path: Path) -> None:
    """--scheduled picks another column; ISO date-times and 15-minute gaps are understood."""
    path = write(tmp_path, "queue,start,calls,aht_seconds,roster\n"
                           "q,2026-03-02T08:00,40,180,9\nq,2026-03-02T08:15,50,180,\n")
    forecast = read_forecast(path, scheduled_column="roster")
    assert forecast.interval_minutes == 15
    assert [r.scheduled for r in forecast.rows] == [9, None]
    with pytest.raises(ForecastError, match="column 'rota': missing"):
        read_forecast(path, scheduled_column="rota")


def test_cli_reports_bad_forecast_and_options(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A bad file exits 1 with its location; --max-abandon without --patience exits 2."""
    path = write(tmp_path, "queue,start,calls,aht_seconds\nq,08:00,x,1\n")
    assert run_cli("staffing", "plan", str(path), "--interval-minutes", "30") == 1
    assert f"{path}:2: column 'calls'" in capsys.readouterr().err
    assert run_cli("staffing", "plan", str(EXAMPLE), "--max-abandon", "0.05") == 2
    with pytest.raises(SystemExit):
        run_cli("staffing", "plan", str(EXAMPLE), "--target-sl", "1.5")
