"""``callcenter dialer ...``: the dialer's administration from the command line.

Sub-commands: ``campaigns`` (each campaign with its progress and lead lists), ``import``
(a CSV lead file into a campaign: good rows in, bad rows listed by line and written to a
rejects file, the time taken), ``dnc add|import|remove|check`` (the do-not-call list),
``destroy`` (a lead list's personal data after use, audited), ``ledger`` (abandoned
calls per day and over 30 days), ``audit`` and ``simulate`` (the pacing simulator of
:mod:`callcenter.dialer.simulate`, imported when run).

Each command migrates the database to the newest schema and stores the campaigns of
``config/dialer.yaml`` (:func:`~callcenter.storage.dialer.sync_campaigns`) before it
works. Registered on the main parser by :func:`register`; exit status 0 on success, 1 on
an error (printed on stderr).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from callcenter.dialer.leads_csv import LeadFileError, read_leads_file
from callcenter.storage.dialer_records import CampaignRecord, ImportResult, RowProblem

if TYPE_CHECKING:
    from callcenter.settings import Settings

__all__ = ["LEGAL_ABANDON_LIMIT", "import_lead_file", "register", "report_rejects", "write_rejects"]

LEGAL_ABANDON_LIMIT = 0.03
"""Abandoned / live answers allowed (TSR and Ofcom); ledger rows above it are flagged."""

SHOW_PROBLEMS = 20
"""Bad rows printed by ``import`` unless ``--show`` says otherwise (all are in the rejects file)."""


class CommandError(Exception):
    """A dialer command cannot go on; the message is printed on stderr."""


@dataclass(frozen=True)
class _Context:
    sessions: sessionmaker[Session]
    state_dir: Path
    machine_as_abandoned: float
    settings: Settings


def _actor(args: argparse.Namespace) -> str:
    actor: str | None = getattr(args, "actor", None)
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _dialer_config_path(args: argparse.Namespace, root: Path) -> tuple[Path, bool]:
    """The dialer configuration file, and whether it was named explicitly."""
    if args.dialer_config:
        return Path(args.dialer_config), True
    config_dir = Path(args.config_dir) if args.config_dir else root / "config"
    return config_dir / "dialer.yaml", False


@contextmanager
def _context(args: argparse.Namespace) -> Iterator[_Context]:
    """Settings -> migrated database -> campaigns of the dialer configuration stored."""
    from callcenter.cli import _settings
    from callcenter.service import database_url
    from callcenter.storage.db import (
        create_engine_for,
        make_session_factory,
        upgrade_database,
    )
    from callcenter.storage.dialer import sync_campaigns

    settings = _settings(args)
    settings.site.state_dir.mkdir(parents=True, exist_ok=True)
    url = database_url(settings)
    engine = create_engine_for(url)
    try:
        upgrade_database(engine)
        sessions = make_session_factory(engine)
        path, explicit = _dialer_config_path(args, settings.root)
        machine_share = 0.0
        if explicit or path.exists():
            from callcenter.dialer.config import load_dialer_config

            config = load_dialer_config(path)  # ConfigError: printed by callcenter.cli.main
            machine_share = config.amd.machine_as_abandoned
            with sessions.begin() as session:
                sync_campaigns(session, [c.campaign for c in config.campaigns], now=datetime.now(UTC))
        else:
            print(f"note: no {path}; using the campaigns stored in the database", file=sys.stderr)
        yield _Context(sessions, settings.site.state_dir, machine_share, settings)
    finally:
        engine.dispose()


def _campaign(session: Session, name: str) -> CampaignRecord:
    from callcenter.storage.dialer import get_campaign, list_campaigns

    found = get_campaign(session, name)
    if found is None:
        known = ", ".join(c.name for c in list_campaigns(session)) or "none"
        raise CommandError(f"--campaign: no campaign {name!r} (known: {known}); campaigns are defined in"
                           " config/dialer.yaml")
    return found


# --- import ----------------------------------------------------------------------------------


def import_lead_file(
    sessions: sessionmaker[Session], campaign: str | int, path: Path, *, encoding: str = "utf-8",
    list_name: str | None = None, actor: str, now: datetime,
) -> ImportResult:
    """Parse ``path`` and import its good rows into ``campaign`` in one transaction.

    The same path as ``callcenter dialer import`` (and ``bench/lead_import.py``):
    :func:`~callcenter.dialer.leads_csv.read_leads_file` then
    :func:`~callcenter.storage.dialer.import_leads` with the parser's problems. Raises
    LeadFileError for an unreadable file, CommandError for an unknown campaign.
    """
    from callcenter.storage.dialer import import_leads

    with sessions.begin() as session:
        record = _campaign(session, str(campaign))
    rows, problems = read_leads_file(path, encoding=encoding)
    with sessions.begin() as session:
        return import_leads(session, record.id, rows, list_name=list_name or path.stem, source_file=str(path),
                            actor=actor, now=now, parse_problems=problems)


def write_rejects(path: Path, problems: Sequence[RowProblem]) -> None:
    """Write every rejected row as CSV: ``line,field,reason,row`` (the row as read, CSV-encoded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "field", "reason", "row"])
        for problem in problems:
            row = io.StringIO()
            if problem.raw:
                csv.writer(row, lineterminator="").writerow(problem.raw)
            writer.writerow([problem.line, problem.field, problem.reason, row.getvalue()])


def report_rejects(source: Path, problems: Sequence[RowProblem], *, show: int, rejects: Path, noun: str) -> None:
    """Print the first ``show`` problems by line (``FILE:LINE: field: reason``) on stderr and,
    if there are any, write them all to ``rejects`` and say where; ``noun`` names them
    (``bad row(s)``)."""
    for problem in problems[:show]:
        print(problem.format(str(source)), file=sys.stderr)
    if problems:
        write_rejects(rejects, problems)
        hidden = len(problems) - show
        more = f"{hidden} more {noun}; " if hidden > 0 else ""
        print(f"{more}all {len(problems)} {noun} are in {rejects}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    """Import a CSV lead file; print the count, the bad rows by line and the time taken."""
    path = Path(args.csv)
    list_name = args.list_name or path.stem
    started = time.perf_counter()
    with _context(args) as ctx:
        result = import_lead_file(ctx.sessions, args.campaign, path, encoding=args.encoding,
                                  list_name=list_name, actor=_actor(args), now=datetime.now(UTC))
        elapsed = time.perf_counter() - started
        rejects = Path(args.rejects) if args.rejects else ctx.state_dir / "imports" / f"{list_name}-rejects.csv"
    report_rejects(path, result.problems, show=args.show, rejects=rejects, noun="bad row(s)")
    total = result.rows_ok + result.rows_bad
    rate = total / elapsed if elapsed > 0 else float("inf")
    print(f"{path}: {result.rows_ok} of {total} row(s) imported into campaign {args.campaign!r} as lead list "
          f"{result.list_id} ({list_name!r}); {result.rows_bad} rejected ({result.duplicates} duplicate, "
          f"{result.dnc} on the do-not-call list); {elapsed:.2f} s, {rate:,.0f} rows/s")
    return 0 if result.rows_ok else 1


# --- campaigns and lists ---------------------------------------------------------------------


def _counts(counts: dict[str, int] | Any) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items() if value) or "none"


def cmd_campaigns(args: argparse.Namespace) -> int:
    """List the campaigns with lead counts by state and final outcome, and their lead lists."""
    from callcenter.storage.dialer import (
        campaign_progress,
        list_campaigns,
        list_lead_lists,
    )

    with _context(args) as ctx, ctx.sessions.begin() as session:
        campaigns = list_campaigns(session)
        if not campaigns:
            print("no campaigns (define them in config/dialer.yaml)")
        for record in campaigns:
            progress = campaign_progress(session, record.id)
            status = "active" if record.active else "inactive"
            print(f"{record.name} (id {record.id}, {record.dial_mode}, {status}, queue {record.queue}, "
                  f"{record.call_start:%H:%M}-{record.call_end:%H:%M} {record.timezone})")
            print(f"  leads {progress.leads}: {_counts(progress.leads_by_state)}")
            print(f"  final outcomes: {_counts(progress.leads_by_final)}")
            print(f"  attempts {progress.attempts}: {_counts(progress.attempts_by_outcome)}; "
                  f"in flight {progress.in_flight}")
            for lead_list in list_lead_lists(session, record.id):
                gone = (f", destroyed {lead_list.destroyed_at:%Y-%m-%d %H:%M} UTC by {lead_list.destroyed_by}"
                        if lead_list.destroyed_at else "")
                print(f"  list {lead_list.id} {lead_list.name!r} from {lead_list.source_file}: "
                      f"{lead_list.rows_ok} ok, {lead_list.rows_bad} bad, imported "
                      f"{lead_list.imported_at:%Y-%m-%d %H:%M} UTC by {lead_list.imported_by}{gone}")
    return 0


# --- DNC -------------------------------------------------------------------------------------


def cmd_dnc(args: argparse.Namespace) -> int:
    """Add numbers to, import a file into, remove from or look up the do-not-call list."""
    from callcenter.storage.dialer import add_dnc, is_dnc, remove_dnc
    from callcenter.storage.records import canonical_phone

    now = datetime.now(UTC)
    numbers: list[str] = list(getattr(args, "phones", []) or [])
    problems: list[RowProblem] = []
    if args.dnc_command == "import":
        rows, problems = read_leads_file(Path(args.csv), encoding=args.encoding)
        numbers = [row.phone for row in rows]
        for problem in problems[:SHOW_PROBLEMS]:
            print(problem.format(args.csv), file=sys.stderr)
        if len(problems) > SHOW_PROBLEMS:
            print(f"{len(problems) - SHOW_PROBLEMS} more bad row(s)", file=sys.stderr)
    with _context(args) as ctx, ctx.sessions.begin() as session:
        if args.dnc_command == "check":
            listed = False
            for phone in numbers:
                on = is_dnc(session, phone)
                listed = listed or on
                print(f"{phone}: {'on' if on else 'not on'} the do-not-call list")
            return 0 if listed else 1
        if args.dnc_command == "remove":
            removed = remove_dnc(session, numbers, actor=_actor(args), now=now)
            print(f"{removed} of {len(numbers)} number(s) removed from the do-not-call list (audited)")
            return 0
        added = add_dnc(session, numbers, source=args.source, reason=args.reason, now=now)
    unique = len({canonical_phone(phone) for phone in numbers})  # valid: add_dnc checked them
    print(f"{added} number(s) added to the do-not-call list, {unique - added} already on it"
          + (f", {len(problems)} bad row(s) skipped" if problems else ""))
    return 0


# --- hand-out ----------------------------------------------------------------------------------


def _agent_list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise CommandError('--agents: name agents (comma-separated) or "all"')
    return names


def _authorised(ctx: _Context, request: Any) -> Any:
    from callcenter.dialer.handout import HandOutRefused, authorise

    try:
        return authorise(request, ctx.settings.people, [t.id for t in ctx.settings.teams])
    except HandOutRefused as exc:
        raise CommandError(f"--by {request.actor}: {exc}") from None


def cmd_handout(args: argparse.Namespace) -> int:
    """Give leads of IT's pool to a team (--count), or share a team's leads among its agents (--agents)."""
    from callcenter.dialer.handout import HandOut
    from callcenter.storage.dialer import hand_out

    request = HandOut(actor=args.by, team=args.team, count=args.count, list_id=args.list_id,
                      agents=_agent_list(args.agents), each=args.each)
    with _context(args) as ctx, ctx.sessions.begin() as session:
        request = _authorised(ctx, request)
        record = _campaign(session, args.campaign)
        given = hand_out(session, record.id, request, now=datetime.now(UTC))
    if request.count is not None:
        print(f"{given[request.team]} of {request.count} lead(s) of {record.name} handed out to team {request.team}"
              + ("" if given[request.team] == request.count else " (no more waiting leads in IT's pool)"))
    else:
        for agent, n in given.items():
            print(f"{agent}: {n} lead(s)")
        print(f"{sum(given.values())} lead(s) of team {request.team} shared among {len(given)} agent(s) (audited)")
    return 0


def cmd_takeback(args: argparse.Namespace) -> int:
    """Take back the leads not dialed yet: of agents (to their team), or of a team (to IT's pool)."""
    from callcenter.dialer.handout import TakeBack
    from callcenter.storage.dialer import take_back

    request = TakeBack(actor=args.by, team=args.team, agents=_agent_list(args.agents))
    with _context(args) as ctx, ctx.sessions.begin() as session:
        request = _authorised(ctx, request)
        record = _campaign(session, args.campaign)
        taken = take_back(session, record.id, request.team, agents=request.agents, every_agent=request.every_agent,
                          actor=request.actor, now=datetime.now(UTC))
    whence = f"team {request.team} (back to IT's pool)" if request.agents is None else (
        f"{'its agents' if request.every_agent else ', '.join(request.agents)} (back to team {request.team})")
    print(f"{taken} lead(s) of {record.name} taken back from {whence} (audited)")
    return 0


def cmd_holdings(args: argparse.Namespace) -> int:
    """Who holds a campaign's leads: IT's pool, each team, each agent; waiting, dialing, done."""
    from callcenter.storage.dialer import lead_holdings

    with _context(args) as ctx, ctx.sessions.begin() as session:
        record = _campaign(session, args.campaign)
        rows = lead_holdings(session, record.id)
    print(f"{'holder':<24} {'waiting':>8} {'dialing':>8} {'done':>8}")
    for h in rows:
        holder = "IT (not handed out)" if h.team is None else (
            f"team {h.team}" if h.agent_id is None else f"  {h.agent_id} ({h.team})")
        print(f"{holder:<24} {h.waiting:>8} {h.dialing:>8} {h.done:>8}")
    return 0


# --- destroy, ledger, audit ------------------------------------------------------------------


def cmd_destroy(args: argparse.Namespace) -> int:
    """Delete a lead list's leads after use (refused while any is dialing or, without --force, waiting)."""
    from callcenter.storage.dialer import destroy_lead_list

    with _context(args) as ctx, ctx.sessions.begin() as session:
        result = destroy_lead_list(session, args.list_id, actor=args.actor, now=datetime.now(UTC), force=args.force)
    print(f"lead list {result.list_id} destroyed: {result.leads_deleted} lead(s) deleted, "
          f"{result.attempts_blanked} attempt(s) keep only the number's hash; audit entry {result.audit_id}")
    return 0


def cmd_recycle(args: argparse.Namespace) -> int:
    """Put a campaign's finished leads with the given final outcomes back in line, due now."""
    from callcenter.storage.dialer import recycle_leads

    with _context(args) as ctx, ctx.sessions.begin() as session:
        record = _campaign(session, args.campaign)
        count = recycle_leads(session, record.id, finals=args.finals, now=datetime.now(UTC))
    print(f"{count} lead(s) of {record.name} with final outcome {', '.join(sorted(set(args.finals)))} "
          "recycled: attempts reset, due now")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    """Print the abandon ledger of a campaign: each day and its rolling 30-day window."""
    from callcenter.dialer.campaign import zone
    from callcenter.storage.dialer import abandon_ledger_days

    if args.days < 1:
        raise CommandError(f"--days: expected at least 1, got {args.days}")
    with _context(args) as ctx, ctx.sessions.begin() as session:
        record = _campaign(session, args.campaign)
        tz = zone(record.timezone)
        last = date.fromisoformat(args.day) if args.day else datetime.now(tz).date()
        share = ctx.machine_as_abandoned if args.machine_share is None else args.machine_share
        days = abandon_ledger_days(session, record.id, first=last - timedelta(days=args.days - 1), last=last,
                                   tz=tz, machine_as_abandoned=share)
    print(f"abandon ledger of {record.name} ({record.timezone} days; machine verdicts counted as abandoned: "
          f"{share:.0%}; limit {LEGAL_ABANDON_LIMIT:.0%})")
    print(f"{'day':<10}  {'human':>6}  {'abandoned':>9}  {'machine':>7}  {'rate':>7}  {'30-day':>7}  since")
    for day in days:
        flag = "  OVER" if day.window_rate > LEGAL_ABANDON_LIMIT else ""
        print(f"{day.day.isoformat():<10}  {day.humans:>6}  {day.abandoned_calls:>9}  {day.machines:>7}  "
              f"{day.rate:>7.2%}  {day.window_rate:>7.2%}  {day.window_first.isoformat()}{flag}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the newest audit entries."""
    from callcenter.storage.dialer import list_audit

    with _context(args) as ctx, ctx.sessions.begin() as session:
        entries = list_audit(session, limit=args.limit, action=args.action)
    for entry in entries:
        print(f"{entry.at:%Y-%m-%d %H:%M:%S} UTC  {entry.actor}  {entry.action}  {entry.subject}  "
              f"{json.dumps(dict(entry.detail), ensure_ascii=False, sort_keys=True)}")
    if not entries:
        print("no audit entries")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the pacing simulator of :mod:`callcenter.dialer.simulate`."""
    from callcenter.dialer import simulate

    return simulate.run(args)


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    from callcenter.dialer import simulate

    simulate.add_arguments(parser)


class _LazyParser(argparse.ArgumentParser):
    """A sub-parser whose options are added only when it is used (``populate``).

    ``dialer simulate`` gets its options from :mod:`callcenter.dialer.simulate` this way,
    so building the ``callcenter`` parser does not import the simulator.
    """

    def __init__(self, *args: Any, populate: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._populate = populate

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate(self)
        return super().parse_known_args(args, namespace)


# --- parser ----------------------------------------------------------------------------------


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Print the storage and input errors of ``command`` on stderr and return 1."""
    from callcenter.settings import ConfigError
    from callcenter.storage.repository import StorageError

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ConfigError:
            raise  # callcenter.cli.main prints each problem as file:line:column: key: message
        except (CommandError, LeadFileError, StorageError, ValueError) as exc:
            print(f"callcenter dialer {args.dialer_command}: {exc}", file=sys.stderr)
            return 1

    run.__doc__ = command.__doc__
    return run


def register(sub: Any) -> argparse.ArgumentParser:
    """Register ``callcenter dialer ...`` on the main parser's sub-parsers object."""
    dialer: argparse.ArgumentParser = sub.add_parser("dialer", help="outbound dialer: campaigns, leads, DNC, ledger")
    dialer.add_argument("--dialer-config", metavar="FILE",
                        help="dialer configuration (default: dialer.yaml in the config directory)")
    commands = dialer.add_subparsers(dest="dialer_command", required=True, metavar="COMMAND",
                                     parser_class=_LazyParser)

    p = commands.add_parser("campaigns", help="campaigns with their progress and lead lists")
    p.set_defaults(func=_guarded(cmd_campaigns))

    p = commands.add_parser("import", help="import a CSV lead file into a campaign")
    p.add_argument("csv", metavar="CSV", help="header row with a phone column; name, timezone optional")
    p.add_argument("--campaign", required=True, help="campaign name (from config/dialer.yaml) or id")
    p.add_argument("--list-name", help="name of the lead list (default: the file name without extension)")
    p.add_argument("--encoding", default="utf-8", help="utf-8 (with or without BOM, the default) or gb18030")
    p.add_argument("--actor", help="who imports (default: the login name)")
    p.add_argument("--rejects", metavar="FILE", help="where to write all bad rows "
                   "(default: <state_dir>/imports/<list name>-rejects.csv)")
    p.add_argument("--show", type=int, default=SHOW_PROBLEMS, help="bad rows to print (default 20)")
    p.set_defaults(func=_guarded(cmd_import))

    dnc = commands.add_parser("dnc", help="the do-not-call list")
    dnc_commands = dnc.add_subparsers(dest="dnc_command", required=True, metavar="COMMAND")
    for name, text in (("add", "add numbers"), ("check", "say whether numbers are listed (exit 1 if none)")):
        p = dnc_commands.add_parser(name, help=text)
        p.add_argument("phones", nargs="+", metavar="PHONE")
        p.set_defaults(func=_guarded(cmd_dnc))
    p = dnc_commands.add_parser("import", help="add the phone column of a CSV file")
    p.add_argument("csv", metavar="CSV")
    p.add_argument("--encoding", default="utf-8", help="utf-8 (the default) or gb18030")
    p.set_defaults(func=_guarded(cmd_dnc))
    for parser in (dnc_commands.choices["add"], p):
        parser.add_argument("--source", default="cli", help="where the numbers come from (e.g. national, complaint)")
        parser.add_argument("--reason", default="", help="free text kept with each number")
    p = dnc_commands.add_parser("remove", help="take numbers off the list (audited)")
    p.add_argument("phones", nargs="+", metavar="PHONE")
    p.add_argument("--actor", help="who removes them (default: the login name)")
    p.set_defaults(func=_guarded(cmd_dnc))

    p = commands.add_parser("destroy", help="delete a lead list's leads after use (audited)")
    p.add_argument("list_id", type=int, metavar="LIST_ID", help="see `callcenter dialer campaigns`")
    p.add_argument("--actor", required=True, help="who destroys the data (kept in the audit log)")
    p.add_argument("--force", action="store_true", help="also delete leads not yet done")
    p.set_defaults(func=_guarded(cmd_destroy))

    p = commands.add_parser("handout", help="give IT's leads to a team, or a team's leads to its agents (audited)")
    p.add_argument("--campaign", required=True, help="campaign name or id")
    p.add_argument("--by", required=True, metavar="AGENT_ID",
                   help="who hands out: a manager to teams, the team's lead (or a manager) to agents")
    p.add_argument("--team", required=True, help="the team (from agents.yaml)")
    p.add_argument("--count", type=int, help="leads of IT's pool to give the team")
    p.add_argument("--list", dest="list_id", type=int, help="with --count: only leads of this lead list")
    p.add_argument("--agents", help='"all" (the team\'s agents) or agent ids, comma-separated: share the '
                   "team's leads among them")
    p.add_argument("--each", type=int, help="with --agents: leads per agent (default: all the team holds)")
    p.set_defaults(func=_guarded(cmd_handout))

    p = commands.add_parser("takeback", help="take back leads not dialed yet (audited)")
    p.add_argument("--campaign", required=True, help="campaign name or id")
    p.add_argument("--by", required=True, metavar="AGENT_ID", help="who takes them back")
    p.add_argument("--team", required=True, help="the team")
    p.add_argument("--agents", help='"all" or agent ids, comma-separated: their leads go back to the team; '
                   "without: the team's go back to IT")
    p.set_defaults(func=_guarded(cmd_takeback))

    p = commands.add_parser("holdings", help="who holds a campaign's leads: IT, teams, agents")
    p.add_argument("--campaign", required=True, help="campaign name or id")
    p.set_defaults(func=_guarded(cmd_holdings))

    p = commands.add_parser("recycle", help="put finished leads (e.g. exhausted, noanswer) back in line")
    p.add_argument("--campaign", required=True, help="campaign name or id")
    p.add_argument("finals", nargs="+", metavar="FINAL",
                   help="final outcomes to recycle: exhausted, busy, noanswer, machine, failed")
    p.set_defaults(func=_guarded(cmd_recycle))

    p = commands.add_parser("ledger", help="abandoned calls per day and over the rolling 30 days")
    p.add_argument("--campaign", required=True, help="campaign name or id")
    p.add_argument("--days", type=int, default=30, help="days to show, ending with --day (default 30)")
    p.add_argument("--day", help="last day, YYYY-MM-DD (default: today in the campaign's time zone)")
    p.add_argument("--machine-share", type=float, help="share of machine verdicts counted as abandoned "
                   "(default: dialer.amd.machine_as_abandoned)")
    p.set_defaults(func=_guarded(cmd_ledger))

    p = commands.add_parser("audit", help="the newest audit entries")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--action", help="only this action, e.g. leads.destroy")
    p.set_defaults(func=_guarded(cmd_audit))

    p = commands.add_parser("simulate", help="seeded pacing simulation, pacers side by side",
                            populate=_simulate_arguments)
    p.set_defaults(func=cmd_simulate)
    return dialer
