"""``callcenter report calls``, ``commission``, ``qa`` and ``agents``: a period's call report,
sales commission, QA scores and agent time as a table, CSV or JSON.

Reads the call records from the configured database (blocking: a command, not the
reactor) and prints :func:`callcenter.reports.build_report`'s and
:func:`callcenter.commission.commission_report`'s lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from callcenter.agent_time import AgentTime, hms, pauses
from callcenter.commission import CommissionLine, CommissionTotals, commission_report
from callcenter.qa import QaSummaryLine, qa_summary
from callcenter.reports import (
    FCR_DAYS,
    GROUPINGS,
    ReportLine,
    ReportPeriod,
    period,
    queue_targets,
)

__all__ = ["add_parser", "agent_time_json", "agent_time_rows", "format_agent_time", "format_commission", "format_qa",
           "format_table", "on_database", "run", "run_agent_time", "run_commission", "run_qa", "run_records"]

_T = TypeVar("_T")

_COLUMNS = ("key", "calls", "inbound", "outbound", "answered", "abandoned", "unanswered",
            "answered_within_target", "service_level", "asa", "aht", "fcr", "fcr_calls", "csat",
            "csat_responses", "csat_1", "csat_2", "csat_3", "csat_4", "csat_5", "transferred")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected whole days >= 1, got {text!r}")
    return value


def _options(parser: argparse.ArgumentParser, *, csv_file: bool) -> None:
    """The options every report takes: the period, JSON output and (``csv_file``) a CSV file."""
    parser.add_argument("--from", dest="first", type=_day, metavar="YYYY-MM-DD", help="first day (default: today)")
    parser.add_argument("--to", dest="last", type=_day, metavar="YYYY-MM-DD", help="last day (default: --from)")
    if csv_file:
        parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the lines as CSV")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")


def _command(sub: Any, name: str, help_text: str, description: str, *, csv_file: bool,
             run_with: Callable[[argparse.Namespace, Any], int],
             settings_of: Callable[[argparse.Namespace], Any]) -> argparse.ArgumentParser:
    """One ``report NAME`` command: the period options, then ``run_with(args, settings)``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=description)
    _options(parser, csv_file=csv_file)
    parser.set_defaults(func=lambda args: run_with(args, settings_of(args)))
    return parser


def add_parser(subparsers: Any, settings_of: Callable[[argparse.Namespace], Any]) -> argparse.ArgumentParser:
    """Register ``report calls``, ``commission``, ``qa`` and ``agents`` on an ``argparse`` sub-parsers object."""
    report = subparsers.add_parser("report", help="reports from the call records")
    sub = report.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    p = _command(sub, "calls", "volume, answered, abandoned, service level, ASA, AHT, FCR, CSAT",
                 "The call report of local days FROM to TO (the site's time zone), one line per "
                 "day, agent or queue and a total. docs/reports.md defines each measure.",
                 csv_file=True, run_with=run, settings_of=settings_of)
    p.add_argument("--by", choices=GROUPINGS, default="day", help="one line per day (default), agent or queue")
    p.add_argument("--fcr-days", type=_days, default=FCR_DAYS,
                   help=f"a repeat call within this many days means not resolved (default {FCR_DAYS})")
    _command(sub, "commission", "sales commission of a period, per agent, lead, director and the others' pool",
             "Each role's share of the sales recorded on the calls of local days FROM to TO "
             "(commission in callcenter.yaml; docs/reports.md).", csv_file=True, run_with=run_commission,
             settings_of=settings_of)
    _command(sub, "qa", "each agent's QA scores of the period's calls",
             "Reviews, mean score, failed calls and each scorecard item's mean rating of the calls "
             "started on local days FROM to TO (docs/qa.md).", csv_file=False, run_with=run_qa,
             settings_of=settings_of)
    r = _command(sub, "records", "the call log: every call record of the period, one CSV row each",
                 "The call records started on local days FROM to TO as CSV (date, time, ticket, customer, phone, "
                 "issue type, description, outcome, follow-up, CSAT, agent, ...; docs/reports.md, 'The call log'): "
                 "to standard output, or --csv FILE (UTF-8 with a BOM, as Excel reads Chinese).",
                 csv_file=True, run_with=run_records, settings_of=settings_of)
    r.add_argument("--team", help="only the calls of this team's agents")
    r.add_argument("--agent", help="only this agent's calls")
    _command(sub, "agents", "each agent's time: logged in, ready, ringing, on calls, wrap-up, paused (by reason)",
             "Where each agent's time went on local days FROM to TO, from the agent state changes "
             "the daemon records, counted up to now for today, and occupancy (docs/reports.md, 'Agent time').",
             csv_file=True, run_with=run_agent_time, settings_of=settings_of)
    return p


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _aligned(rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """``rows`` as text columns two spaces apart: the first ``left`` flush left, the rest right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i < left else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))) for row in rows)


def format_table(lines: Sequence[ReportLine], by: str) -> str:
    """The report as an aligned text table."""
    head = (by, "calls", "in", "out", "answered", "abandoned", "unanswered", "SL", "ASA", "AHT", "FCR", "CSAT",
            "handed on")
    rows = [head]
    for line in lines:
        fcr = "-" if line.fcr is None else f"{line.fcr:.0%} of {line.fcr_calls}"
        csat = "-" if line.csat is None else f"{line.csat:.2f} ({line.csat_responses})"
        rows.append((line.key, str(line.calls), str(line.inbound), str(line.outbound), str(line.answered),
                     str(line.abandoned), str(line.unanswered), _percent(line.service_level), _seconds(line.asa),
                     _seconds(line.aht), fcr, csat, str(line.transferred)))
    return _aligned(rows)


def _flat(line: ReportLine) -> dict[str, Any]:
    values = asdict(line)
    scores = values.pop("csat_scores")
    values.update({f"csat_{i + 1}": n for i, n in enumerate(scores)})
    return values


def _period(args: argparse.Namespace, settings: Any, now: datetime) -> ReportPeriod | None:
    """The period of ``--from`` and ``--to`` (today by default), or None after printing why not."""
    tz = ZoneInfo(settings.site.timezone)
    first = args.first or now.astimezone(tz).date()
    try:
        return period(first, args.last or first, tz)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def on_database(settings: Any, function: Callable[..., _T], **kwargs: Any) -> _T:
    """``function(session, **kwargs)`` on the configured database (migrated first)."""
    from callcenter.service import database_url
    from callcenter.storage.db import (
        create_engine_for,
        make_session_factory,
        upgrade_database,
    )

    engine = create_engine_for(database_url(settings))
    try:
        upgrade_database(engine)
        with make_session_factory(engine).begin() as session:
            return function(session, **kwargs)
    finally:
        engine.dispose()


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def run(args: argparse.Namespace, settings: Any) -> int:
    """Execute ``report calls``; 0 on success, 2 on a bad period."""
    from callcenter.storage.repository import call_report

    now = datetime.now(UTC)
    span = _period(args, settings, now)
    if span is None:
        return 2
    first, last = span.first, span.last
    targets, wrapups = queue_targets(settings.queues)
    lines = on_database(settings, call_report, report_period=span, by=args.by, now=now, fcr_days=args.fcr_days,
                  service_level_seconds=targets, wrapup_seconds=wrapups)
    if args.csv is not None:
        _write_csv(args.csv, _COLUMNS, (_flat(line) for line in lines))
    if args.json:
        print(json.dumps({"from": first.isoformat(), "to": last.isoformat(), "by": args.by,
                          "timezone": settings.site.timezone, "fcr_days": args.fcr_days,
                          "lines": [asdict(line) for line in lines]}, indent=2))
    else:
        print(f"calls {first.isoformat()} .. {last.isoformat()} ({settings.site.timezone}), by {args.by}")
        print(format_table(lines, args.by))
        if args.csv is not None:
            print(f"written: {args.csv}")
    return 0


def format_commission(lines: Sequence[CommissionLine], totals: CommissionTotals) -> str:
    """The commission lines as an aligned text table, the totals first."""
    head = (f"{totals.sales} sales, {totals.sales_amount:,.2f} yuan; commission due {totals.due:,.2f}, "
            f"paid {totals.paid:,.2f} (rounding {totals.rounding:+.2f})")
    rows = [("payee", "share", "rate", "sales", "basis", "amount")]
    rows += [(line.payee, line.share, f"{(line.rate * 100).normalize():f}%", str(line.sales), f"{line.basis:,.2f}",
              f"{line.amount:,.2f}") for line in lines]
    return head + "\n" + _aligned(rows, left=2)


def run_commission(args: argparse.Namespace, settings: Any) -> int:
    """Execute ``report commission``; 0 on success, 2 on a bad period."""
    from callcenter.storage.repository import report_sales

    span = _period(args, settings, datetime.now(UTC))
    if span is None:
        return 2
    sales = on_database(settings, report_sales, since=span.start, until=span.end)
    lines, totals = commission_report(sales, settings.commission, settings.agents)
    if args.csv is not None:
        _write_csv(args.csv, ("payee", "share", "rate", "sales", "basis", "amount"),
                   ({k: str(v) for k, v in asdict(line).items()} for line in lines))
    if args.json:
        print(json.dumps({"from": span.first.isoformat(), "to": span.last.isoformat(),
                          "totals": {k: str(v) for k, v in asdict(totals).items()},
                          "lines": [{k: str(v) for k, v in asdict(line).items()} for line in lines]}, indent=2))
    else:
        print(f"commission {span.first.isoformat()} .. {span.last.isoformat()} ({settings.site.timezone}): "
              + format_commission(lines, totals))
        if args.csv is not None:
            print(f"written: {args.csv}")
    return 0


def format_qa(lines: Sequence[QaSummaryLine], scorecard: Sequence[Any]) -> str:
    """The QA lines as an aligned text table: one column per scorecard item (mean 0..4)."""
    head = ("agent", "reviews", "score", "failed", *(item.id for item in scorecard))
    rows = [head]
    for line in lines:
        means = ("-" if line.items.get(item.id) is None else f"{line.items[item.id]:.2f}" for item in scorecard)
        rows.append((line.agent, str(line.reviews), "-" if line.score is None else f"{line.score:.1f}",
                     str(line.failed), *means))
    return _aligned(rows)


def run_qa(args: argparse.Namespace, settings: Any) -> int:
    """Execute ``report qa``; 0 on success, 2 on a bad period."""
    from callcenter.storage.repository import list_qa_reviews

    span = _period(args, settings, datetime.now(UTC))
    if span is None:
        return 2
    lines = qa_summary(on_database(settings, list_qa_reviews, since=span.start, until=span.end), settings.qa.scorecard)
    if args.json:
        print(json.dumps({"from": span.first.isoformat(), "to": span.last.isoformat(),
                          "lines": [asdict(line) for line in lines]}, indent=2))
    else:
        print(f"QA {span.first.isoformat()} .. {span.last.isoformat()} ({settings.site.timezone}): "
              "mean score 0-100, items rated 0-4")
        print(format_qa(lines, settings.qa.scorecard))
    return 0


AGENT_TIME_COLUMNS = ("agent", "team", "logged_in", "ready", "ringing", "on_call", "wrap_up", "paused",
                      "pauses", "unknown", "occupancy", "first_logged_in", "last_logged_in")


def agent_time_rows(lines: Sequence[AgentTime], people: Any, tz: ZoneInfo) -> list[dict[str, str]]:
    """The lines as text, column by column (:data:`AGENT_TIME_COLUMNS`): times H:MM:SS, the first
    and last logged-in instants as local HH:MM, occupancy as a percentage."""

    def clock(at: datetime | None) -> str:
        return "-" if at is None else at.astimezone(tz).strftime("%m-%d %H:%M")

    rows = []
    for line in lines:
        person = people.get(line.agent_id)
        rows.append({
            "agent": line.agent_id, "team": person.team if person is not None else "-",
            **{name: hms(getattr(line, name)) for name in ("logged_in", "ready", "ringing", "on_call", "wrap_up",
                                                           "paused", "unknown")},
            "pauses": pauses(line) or "-", "occupancy": _percent(line.occupancy),
            "first_logged_in": clock(line.first_logged_in), "last_logged_in": clock(line.last_logged_in)})
    return rows


def format_agent_time(lines: Sequence[AgentTime], people: Any, tz: ZoneInfo) -> str:
    """The agent time lines as an aligned text table."""
    head = ("agent", "team", "logged in", "ready", "ringing", "on calls", "wrap-up", "paused", "occupancy",
            "first in", "last in", "daemon down", "pauses")
    keys = ("agent", "team", "logged_in", "ready", "ringing", "on_call", "wrap_up", "paused", "occupancy",
            "first_logged_in", "last_logged_in", "unknown", "pauses")
    rows = [head, *(tuple(row[key] for key in keys) for row in agent_time_rows(lines, people, tz))]
    table = _aligned([row[:-1] for row in rows], left=2)
    return "\n".join(f"{text}  {row[-1]}" for text, row in zip(table.splitlines(), rows, strict=True))


def agent_time_json(line: AgentTime) -> dict[str, Any]:
    """One line as JSON: seconds, the instants in ISO 8601 (UTC), occupancy 0..1."""
    values = asdict(line)
    values["occupancy"] = line.occupancy
    for key in ("first_logged_in", "last_logged_in"):
        values[key] = values[key].isoformat() if values[key] is not None else None
    return values


def run_agent_time(args: argparse.Namespace, settings: Any) -> int:
    """Execute ``report agents``; 0 on success, 2 on a bad period."""
    from callcenter.storage.agent_time import agent_time_report

    now = datetime.now(UTC)
    span = _period(args, settings, now)
    if span is None:
        return 2
    tz = ZoneInfo(settings.site.timezone)
    lines = on_database(settings, agent_time_report, start=span.start, end=span.end, now=now)
    if args.csv is not None:
        _write_csv(args.csv, AGENT_TIME_COLUMNS, agent_time_rows(lines, settings.people, tz))
    if args.json:
        print(json.dumps({"from": span.first.isoformat(), "to": span.last.isoformat(),
                          "timezone": settings.site.timezone, "lines": [agent_time_json(line) for line in lines]},
                         indent=2))
    else:
        print(f"agent time {span.first.isoformat()} .. {span.last.isoformat()} ({settings.site.timezone}); "
              "occupancy = (on calls + wrap-up) / (ready + ringing + on calls + wrap-up)")
        print(format_agent_time(lines, settings.people, tz) if lines else "no agent logged in")
        if args.csv is not None:
            print(f"written: {args.csv}")
    return 0


def run_records(args: argparse.Namespace, settings: Any) -> int:
    """Execute ``report records``; 0 on success, 2 on a bad period or an unknown team or agent."""
    from callcenter.call_log import call_log_csv, call_log_row
    from callcenter.storage.repository import call_records_between

    span = _period(args, settings, datetime.now(UTC))
    if span is None:
        return 2
    agents: set[str] | None = None
    if args.team is not None:
        if args.team not in {team.id for team in settings.teams}:
            print(f"error: team: no team {args.team!r} in config/agents.yaml", file=sys.stderr)
            return 2
        agents = set(settings.team_members(args.team))
    if args.agent is not None:
        if args.agent not in settings.people:
            print(f"error: agent: no agent {args.agent!r} in config/agents.yaml", file=sys.stderr)
            return 2
        agents = {args.agent} if agents is None else agents & {args.agent}
    tz = ZoneInfo(settings.site.timezone)
    records = on_database(settings, call_records_between, since=span.start, until=span.end, agents=agents)
    if args.json:
        print(json.dumps([call_log_row(record, tz, settings.people) for record in records], ensure_ascii=False,
                         indent=2))
        return 0
    text = call_log_csv(records, tz, settings.people)
    if args.csv is None:
        sys.stdout.write(text)
        return 0
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    args.csv.write_text(text, encoding="utf-8-sig", newline="")
    print(f"call log {span.first.isoformat()} .. {span.last.isoformat()} ({settings.site.timezone}): "
          f"{len(records)} call(s) written to {args.csv}")
    return 0
