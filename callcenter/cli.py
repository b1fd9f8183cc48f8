"""The ``callcenter`` command line.

Sub-commands: ``run`` (the daemon), ``check-config``, ``lab`` (the real Asterisk lab),
``asterisk render``, ``db upgrade``, ``demo`` and ``staffing plan``. Heavy imports happen
inside each command so ``callcenter check-config`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter import __version__
from callcenter.settings import ConfigError, Settings, default_config_dir, load_settings

if TYPE_CHECKING:
    from callcenter.ivr.flow import Flow

__all__ = ["build_parser", "main"]


def _settings(args: argparse.Namespace) -> Settings:
    config_dir = Path(args.config_dir) if args.config_dir else None
    return load_settings(config_dir, [Path(p) for p in args.config])


def _dialer_yaml(args: argparse.Namespace) -> Path | None:
    """``--dialer-config``, else ``dialer.yaml`` of the configuration directory if it exists."""
    given = getattr(args, "dialer_config", None)
    if given:
        return Path(given)
    path = (Path(args.config_dir) if args.config_dir else default_config_dir()) / "dialer.yaml"
    return path if path.exists() else None


def _refused_hotline_flow(settings: Settings, verdict: str) -> bool:
    """Print the hotline flow's problems and ``verdict: N problem(s) in FILE``; True if any."""
    return _refused(settings, verdict, _hotline_flow(settings)[1])


def _refused(settings: Settings, verdict: str, problems: list[str]) -> bool:
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{verdict}: {len(problems)} problem(s) in {settings.ivr.hotline_flow}", file=sys.stderr)
    return bool(problems)


def _hotline_flow(settings: Settings) -> tuple[Flow | None, list[str]]:
    """The hotline IVR flow (None when off or refused) and its problems (file:line: key:
    message): unreadable, invalid, or a busy prompt naming another key than its queue's
    ``message_key``."""
    path = settings.ivr.hotline_flow
    if path is None:
        return None, []
    from callcenter.ivr.check import check_message_keys, load_flow
    from callcenter.ivr.flow import FlowError

    try:
        flow = load_flow(path)
        problems = check_message_keys(flow, {q.name: q.message_key for q in settings.queues})
    except FlowError as error:
        return None, [str(p) for p in error.problems]
    except OSError as error:
        return None, [f"ivr.hotline_flow: cannot read {path}: {error.strerror or error}"]
    return (None if problems else flow), [str(p) for p in problems]


def _whole_days(text: str) -> int:
    """An argparse type: a whole number of days, 0 or more."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if days < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more days, got {days}")
    return days


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the configuration; print each problem as file:line:column: key: message."""
    try:
        settings = _settings(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"configuration invalid: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    dialer_yaml = _dialer_yaml(args)
    notes: list[str] = []
    if dialer_yaml is not None:
        from callcenter.dialer.config import callback_notes, load_dialer_config
        from callcenter.dialer.config import check as check_dialer

        problems = check_dialer(dialer_yaml, settings)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print(f"configuration invalid: {len(problems)} problem(s) in {dialer_yaml}", file=sys.stderr)
            return 1
        notes = callback_notes(load_dialer_config(dialer_yaml), settings)
    flow, problems = _hotline_flow(settings)
    if _refused(settings, "configuration invalid", problems):
        return 1
    if flow is not None:
        import datetime as dt
        from zoneinfo import ZoneInfo

        from callcenter.ivr.flow import holidays_note

        holidays = holidays_note(flow, dt.datetime.now(ZoneInfo(settings.site.timezone)).date())
        notes += [holidays] if holidays else []
    team_queues = sum(1 for q in settings.queues if q.parent)
    queues = f"{len(settings.queues) - team_queues} queues" + (f" (+{team_queues} team queues)" if team_queues else "")
    print(f"configuration OK ({', '.join([*settings.sources, *([str(dialer_yaml)] if dialer_yaml else [])])}): "
          f"{queues}, {len(settings.teams)} teams, {len(settings.agents)} agents")
    for note in notes:
        print(f"note: {note}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT."""
    from callcenter.service import run_daemon

    dialer_yaml = None if args.no_dialer else _dialer_yaml(args)
    settings = _settings(args)
    if _refused_hotline_flow(settings, "not started"):
        return 1
    return run_daemon(settings, lab=args.lab, dialer_config=dialer_yaml)


def cmd_render(args: argparse.Namespace) -> int:
    """Write the project's Asterisk files (manager, extensions, queues, pjsip) into a directory."""
    from callcenter.asterisk.render import (
        TRUNK_FILE,
        AsteriskEndpoints,
        render_project_config,
    )
    from callcenter.secrets import load_or_create_secrets

    settings = _settings(args)
    if _refused_hotline_flow(settings, "nothing rendered"):  # the dialplan speaks its language
        return 1
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    endpoints = AsteriskEndpoints(
        ami_host=settings.ami.host, ami_port=settings.ami.port,
        sip_host=settings.sip.bind, sip_port=settings.sip.port,
        agi_host=settings.agi.advertise_host, agi_port=settings.agi.port,
        recordings_dir=str(settings.recordings.directory), lab=False,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_project_config(settings, secrets, endpoints).items():
        write_config_file(out / name, text)
        print(f"wrote {out / name}")
    if not (out / TRUNK_FILE).exists():
        print(f"note: no {out / TRUNK_FILE}: without the site's SIP trunk no call reaches the hotline "
              "and the dialer cannot dial (docs/deploy.md)")
    return 0


def cmd_softphone(args: argparse.Namespace) -> int:
    """Print each person's softphone account: the SIP server, user name and password (from
    var/secrets.yaml), as ops hand them out; docs/deploy.md."""
    from callcenter.secrets import load_or_create_secrets

    settings = _settings(args)
    people = {a.id: a for a in settings.agents}
    unknown = [i for i in args.people if i not in people]
    if unknown:
        print(f"callcenter asterisk softphone: unknown id(s) {', '.join(unknown)} (not in agents.yaml)",
              file=sys.stderr)
        return 2
    secrets = load_or_create_secrets(settings.site.state_dir, list(people))
    server = args.server or settings.sip.bind
    if server in ("0.0.0.0", "::", ""):
        print("callcenter asterisk softphone: asterisk.sip.bind listens on every address: "
              "say which one the phones reach with --server", file=sys.stderr)
        return 2
    for person in (people[i] for i in (args.people or list(people))):
        print(f"{person.id} {person.name} ({person.role}{', ' + person.team if person.team else ''})\n"
              f"  SIP server : {server}:{settings.sip.port} (UDP)\n"
              f"  user name  : {person.endpoint}\n"
              f"  password   : {secrets.sip_secret(person.id)}\n"
              f"  codecs     : G.711 (a-law, u-law) or GSM; DTMF RFC 4733 (out of band)\n")
    return 0


def write_config_file(target: Path, text: str) -> None:
    """Replace ``target`` atomically (written next to it, then renamed: Asterisk never reads a
    half-written file). An existing file keeps its mode and owner (ops may have given it to
    the asterisk group); a new one is 0640: manager.conf and pjsip.conf hold secrets."""
    from callcenter.files import replace_file

    replace_file(target, text, mode=0o640, keep_existing=True)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or migrate the database to the newest schema."""
    from callcenter.storage.db import upgrade_database

    settings = _settings(args)
    settings.site.state_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.database.url)
    print(f"database at newest revision: {settings.database.url}")
    return 0


def cmd_recordings_purge(args: argparse.Namespace) -> int:
    """Delete recordings older than the retention period and mark their rows purged."""
    from callcenter.retention import purge_recordings
    from callcenter.service import database_url
    from callcenter.storage.db import create_engine_for, make_session_factory

    settings = _settings(args)
    days = args.days if args.days is not None else settings.recordings.retention_days
    engine = create_engine_for(database_url(settings))
    try:
        report = purge_recordings(make_session_factory(engine), days, dry_run=args.dry_run,
                                  progress=print if args.verbose or args.dry_run else None)
    finally:
        engine.dispose()
    print(f"recordings older than {days} days: {report.purged} purged ({report.bytes_freed} bytes freed, "
          f"{report.missing} files already gone), {len(report.failed)} failed")
    for failure in report.failed:
        print(f"  could not delete {failure}", file=sys.stderr)
    return 1 if report.failed else 0


def _api(settings: Settings, method: str, path: str, body: Mapping[str, object] | None = None) -> tuple[int, Any]:
    """Call the running daemon's JSON API as the host (its API token); return (status, decoded body)."""
    from callcenter.secrets import load_or_create_secrets

    host = "127.0.0.1" if settings.http.bind in ("0.0.0.0", "") else settings.http.bind
    try:
        token = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents]).api_token
    except OSError as exc:
        return 0, {"error": f"cannot read the API token in {settings.site.state_dir}/secrets.yaml "
                            f"(run as the daemon's user): {exc}", "field": None}
    return call_api(host, settings.http.port, method, path, body, token=token)


def call_api(host: str, port: int, method: str, path: str, body: Mapping[str, Any] | None = None, *,
             token: str | None = None) -> tuple[int, Any]:
    """One request to the daemon's JSON API at ``host:port`` (blocking: not on the reactor),
    signed in with the host's API ``token`` (docs/web-access.md).

    Returns (status, decoded body); an unreachable daemon is status 0 with the reason.
    """
    import json
    import urllib.error
    import urllib.request

    url = f"http://{host}:{port}/api/{path}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            try:
                return exc.code, json.load(exc)
            except ValueError:
                return exc.code, {"error": exc.reason, "field": None}
    except OSError as exc:
        return 0, {"error": f"the daemon is not answering at {url}: {exc}", "field": None}


def _report(status: int, body: Any) -> int:
    import json

    if status == 200:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    field = f" ({body.get('field')})" if isinstance(body, dict) and body.get("field") else ""
    error = body.get("error") if isinstance(body, dict) else body
    print(f"error{field}: {error}" + (f" [HTTP {status}]" if status else ""), file=sys.stderr)
    return 1


def cmd_agent(args: argparse.Namespace) -> int:
    """Agent actions through the running daemon: login, logout, pause, unpause, call, transfer, consult,
    recording, screen-pop, follow-ups."""
    settings = _settings(args)
    if args.agent_command in ("screen-pop", "follow-ups"):
        return _report(*_api(settings, "GET", f"agents/{args.agent}/{args.agent_command}"))
    if args.agent_command == "recording":
        if args.how == "status":
            return _report(*_api(settings, "GET", f"agents/{args.agent}/recording"))
        return _report(*_api(settings, "POST", f"agents/{args.agent}/recording/{args.how}", {}))
    body: dict[str, str] = {}
    if args.agent_command == "pause":
        body = {"reason": args.reason}
    elif args.agent_command == "call":
        body = {"phone": args.phone, **({"name": args.name} if args.name else {})}
    elif args.agent_command == "consult":
        ends = [how for how in ("complete", "conference", "cancel") if getattr(args, how)]
        if [bool(args.to_agent), bool(args.number), bool(ends)].count(True) != 1 or len(ends) > 1:
            print("error: give a colleague to consult, --number N, or one of --complete, --conference, --cancel",
                  file=sys.stderr)
            return 2
        if ends:
            return _report(*_api(settings, "POST", f"agents/{args.agent}/consult/{ends[0]}", {}))
        body = {"to_agent": args.to_agent} if args.to_agent else {"phone": args.number}
    elif args.agent_command == "transfer":
        body = {"to_agent": args.to_agent} if args.to_agent else {"queue": args.queue}
        if bool(args.to_agent) == bool(args.queue):
            print("error: give either a queue or --to-agent ID", file=sys.stderr)
            return 2
    return _report(*_api(settings, "POST", f"agents/{args.agent}/{args.agent_command}", body))


def cmd_disposition(args: argparse.Namespace) -> int:
    """Record a call's outcome, issue type, notes, follow-up time and sale through the running daemon."""
    from callcenter.disposition import FIELDS

    settings = _settings(args)
    body: dict[str, str | bool] = {"agent": args.writer}
    for name in FIELDS:
        value = getattr(args, name)
        if value is not None and value is not False:
            body[name] = value
    return _report(*_api(settings, "POST", f"call-records/{args.ticket}/disposition", body))


def _rating(text: str) -> tuple[str, int | None]:
    """``item=N`` (0..4) or ``item=na`` for ``qa score --rate``."""
    item, sep, value = text.partition("=")
    if not sep or not item:
        raise argparse.ArgumentTypeError(f"expected ITEM=0..4 or ITEM=na, got {text!r}")
    if value.lower() in ("na", "n/a", "null"):
        return item, None
    try:
        return item, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ITEM=0..4 or ITEM=na, got {text!r}") from None


def cmd_qa(args: argparse.Namespace) -> int:
    """QA through the running daemon: the day's sample of calls to score, or one call's score."""
    from urllib.parse import urlencode

    settings = _settings(args)
    if args.qa_command == "sample":
        query = {"reviewer": args.reviewer, **({"day": args.day} if args.day else {})}
        return _report(*_api(settings, "GET", f"qa/sample?{urlencode(query)}"))
    body: dict[str, Any] = {"reviewer": args.reviewer, "ratings": dict(args.ratings), "comment": args.comment}
    if args.recording is not None:
        body["recording"] = args.recording
    return _report(*_api(settings, "POST", f"call-records/{args.ticket}/qa", body))


def cmd_fax(args: argparse.Namespace) -> int:
    """Faxes through the running daemon: send a TIFF, list the latest received and sent."""
    settings = _settings(args)
    if args.fax_command == "send":
        body = {"to": args.number, "file": str(Path(args.file).resolve())}
        return _report(*_api(settings, "POST", "faxes", body))
    return _report(*_api(settings, "GET", f"faxes?limit={args.limit}"))


def cmd_sms(args: argparse.Namespace) -> int:
    """SMS broadcast through the running daemon: send one, its progress, the replies."""
    settings = _settings(args)
    if args.sms_command == "status":
        return _report(*_api(settings, "GET", f"sms/broadcasts/{args.id}" if args.id else "sms/broadcasts"))
    if args.sms_command == "replies":
        return _report(*_api(settings, "GET", f"sms/replies?limit={args.limit}"))
    body: dict[str, Any] = {"by": args.by, "name": args.name, "template": args.template}
    if args.campaign is not None:
        body.update({"campaign": args.campaign, "team": args.team, "agent": args.agent})
        if args.phones or args.phones_file:
            print("error: give --campaign or numbers, not both", file=sys.stderr)
            return 2
    else:
        phones = list(args.phones)
        if args.phones_file:
            read = _phones_file(Path(args.phones_file), args.encoding)
            if read is None:
                return 2
            phones += read
            if not phones:
                print(f"error: {args.phones_file}: no number to text", file=sys.stderr)
                return 1
        body["phones"] = phones
    return _report(*_api(settings, "POST", "sms/broadcasts", {k: v for k, v in body.items() if v is not None}))


class _PhonesFileError(Exception):
    """A file of numbers that cannot be read or decoded (the message says where)."""


def _phones_file(path: Path, encoding: str = "utf-8") -> list[str] | None:
    """The numbers of a file with one per line (blank lines and ``#`` comments skipped). A
    line that is not a phone number is named on stderr (file:line) and left out; None (and
    the reason on stderr) when the file cannot be read or decoded in ``encoding``."""
    from callcenter.csvfile import open_text
    from callcenter.storage.records import InvalidFieldError, canonical_phone

    try:
        text = open_text(path, encoding, _PhonesFileError)
    except _PhonesFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    phones = []
    for number, line in enumerate(text, start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        try:
            canonical_phone(value)
        except InvalidFieldError as exc:
            print(f"{path}:{number}: {exc.field}: {exc.problem} (left out)", file=sys.stderr)
            continue
        phones.append(value)
    return phones


def cmd_supervisor(args: argparse.Namespace) -> int:
    """Listen, whisper or barge on an agent's call through the running daemon."""
    settings = _settings(args)
    body = {"supervisor": args.supervisor, "agent": args.agent, "mode": args.mode}
    return _report(*_api(settings, "POST", "supervisor/spy", body))


def cmd_web(args: argparse.Namespace) -> int:
    """``callcenter web password ID | password --missing | remove ID | list``: people's web
    passwords (docs/web-access.md)."""
    from callcenter.secrets import read_web_passwords, set_web_password
    from callcenter.web_access import hash_password, new_password, password_problem

    settings = _settings(args)
    if args.web_command == "list":
        have = read_web_passwords(settings.site.state_dir)
        for someone in settings.agents:
            print(f"{someone.id:<8} {someone.role:<8} {'password set' if someone.id in have else 'no password':<13} "
                  f"{someone.name}")
        return 0
    if args.web_command == "password" and args.missing:
        if args.person or args.stdin:
            print("callcenter web password: --missing sets everyone's who has none: give no person and no --stdin",
                  file=sys.stderr)
            return 1
        have = read_web_passwords(settings.site.state_dir)
        missing = [someone for someone in settings.agents if someone.id not in have]
        for someone in missing:
            password = new_password()
            set_web_password(settings.site.state_dir, someone.id, hash_password(password))
            print(f"{someone.id:<8} {someone.role:<8} {password}  {someone.name}")
        print(f"{len(missing)} web password(s) set; hand each to its person: only the hashes are kept, "
              "so they are not shown again" if missing else "everyone has a web password already")
        return 0
    person = settings.people.get(args.person or "")
    if person is None:
        print(f"callcenter web {args.web_command}: person: no {args.person!r} among the configured people "
              "(config/agents.yaml)", file=sys.stderr)
        return 1
    if args.web_command == "remove":
        set_web_password(settings.site.state_dir, person.id, None)
        print(f"{person.id} ({person.name}) has no web password now: they cannot sign in to the pages or the API")
        return 0
    password = sys.stdin.readline().rstrip("\r\n") if args.stdin else new_password()
    problem = password_problem(password)
    if problem is not None:
        print(f"callcenter web password: standard input: {problem}", file=sys.stderr)
        return 1
    set_web_password(settings.site.state_dir, person.id, hash_password(password))
    shown = "" if args.stdin else f": {password}"
    print(f"web password of {person.id} ({person.name}, {person.role}) set{shown}")
    if not args.stdin:
        print("hand it to them; only its hash is kept (var/secrets.yaml), so it is not shown again")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Bring up a lab Asterisk, run the engine against it and place real calls."""
    from callcenter.demo import run_demo

    return run_demo(_settings(args), calls=args.calls)


def lab_project_files(
    settings: Settings,
    agi_port: int | Callable[[Any], int] | None = None,
    *,
    secrets: Any = None,
    agi_host: str | None = None,
) -> Callable[[Any], dict[str, str]]:
    """Renders the project's Asterisk files for a lab instance's endpoints.

    ``agi_port`` is the engine's FastAGI port, or a function of the instance's endpoints
    choosing one (tests pick a free or a closed port); default ``settings.agi.port``.
    ``secrets`` default to the install's (``var/secrets.yaml``); ``agi_host`` to
    ``settings.agi.advertise_host``.
    """
    from callcenter.asterisk.render import AsteriskEndpoints, render_project_config
    from callcenter.secrets import load_or_create_secrets

    if secrets is None:
        secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])

    def render(ep: Any) -> dict[str, str]:
        port = agi_port(ep) if callable(agi_port) else agi_port or settings.agi.port
        return dict(render_project_config(settings, secrets, AsteriskEndpoints(
            ami_host=ep.ami_host, ami_port=ep.ami_port, sip_host=ep.sip_host, sip_port=ep.sip_port,
            agi_host=agi_host or settings.agi.advertise_host, agi_port=port,
            recordings_dir=ep.recordings_dir, lab=True,
        )))

    return render


def cmd_lab(args: argparse.Namespace) -> int:
    """``callcenter lab ...``: the real Asterisk lab, configured from the project's files."""
    from callcenter.lab import cli as lab_cli

    project_files = None
    if args.lab_command == "up":
        lab_settings = _settings(args)
        if _refused_hotline_flow(lab_settings, "lab not started"):  # its dialplan is rendered
            return 1
        project_files = lab_project_files(lab_settings)
    try:
        settings = _settings(args)
    except ConfigError:
        settings = None  # the lab runs without a valid configuration: its own defaults
    if settings is not None:  # config/callcenter.yaml's lab section, under the command line's
        if args.cache_dir is None and settings.lab.cache_dir is not None:
            args.cache_dir = settings.lab.cache_dir
        if args.runtime is None and not os.environ.get(lab_cli.RUNTIME_ENV) and settings.lab.asterisk != "auto":
            args.runtime = settings.lab.asterisk
        if args.lab_command == "provision" and args.mirror is None and settings.lab.mirror:
            args.mirror = settings.lab.mirror
    return lab_cli.run(args, project_files=project_files)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``callcenter`` command."""
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"callcenter {__version__}")
    parser.add_argument("--config-dir", help="directory of the shipped configuration (default ./config)")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="extra YAML file overriding the configuration (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--lab", metavar="NAME", help="drive the running lab instance NAME (its AMI port, recordings)")
    p.add_argument("--dialer-config", metavar="FILE", help="the dialer's YAML (default: dialer.yaml of the config dir)")
    p.add_argument("--no-dialer", action="store_true", help="do not run the outbound dialer")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate the configuration (dialer.yaml included)")
    p.add_argument("--dialer-config", metavar="FILE", help="the dialer's YAML (default: dialer.yaml of the config dir)")
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("demo", help="lab Asterisk + engine + a few real calls")
    p.add_argument("--calls", type=int, default=4, help="hotline calls to place")
    p.set_defaults(func=cmd_demo)

    asterisk = sub.add_parser("asterisk", help="Asterisk configuration").add_subparsers(dest="asterisk_command", required=True)
    p = asterisk.add_parser("render", help="write manager/extensions/queues/queuerules/pjsip/features.conf "
                                           "from the configuration")
    p.add_argument("--out", required=True, help="target directory, e.g. /etc/asterisk")
    p.set_defaults(func=cmd_render)
    p = asterisk.add_parser("softphone", help="the SIP account to set up on a person's softphone "
                            "(server, user name, password)")
    p.add_argument("people", nargs="*", metavar="ID", help="agent ids (default: everyone)")
    p.add_argument("--server", help="the address phones register to (default: asterisk.sip.bind)")
    p.set_defaults(func=cmd_softphone)

    agent = sub.add_parser("agent", help="agent actions (through the running daemon)").add_subparsers(
        dest="agent_command", required=True)
    for name, text in (("login", "join the agent's configured queues"), ("logout", "leave every queue"),
                       ("unpause", "take calls again"), ("screen-pop", "the call last offered to the agent"),
                       ("follow-ups", "the agent's calls to follow up by the end of today")):
        p = agent.add_parser(name, help=text)
        p.add_argument("agent", help="agent id, e.g. 2101")
        p.set_defaults(func=cmd_agent)
    p = agent.add_parser("pause", help="stop taking calls, with a reason")
    p.add_argument("agent", help="agent id, e.g. 2101")
    p.add_argument("--reason", required=True, help="e.g. lunch, training, after-call work")
    p.set_defaults(func=cmd_agent)
    p = agent.add_parser("call", help="call a customer: the agent's phone rings, then the customer's")
    p.add_argument("agent", help="agent id, e.g. 2101")
    p.add_argument("phone", help="the customer's number")
    p.add_argument("--name", help="the customer's name, shown on the agent's phone and the call record")
    p.set_defaults(func=cmd_agent)
    p = agent.add_parser("transfer", help="hand the agent's caller on to another queue, or to an agent ready now")
    p.add_argument("agent", help="agent id, e.g. 1001")
    p.add_argument("queue", nargs="?", help="the queue the caller waits in next, e.g. outbound")
    p.add_argument("--to-agent", dest="to_agent", metavar="ID", help="ring this agent instead (they must be ready)")
    p.set_defaults(func=cmd_agent)

    p = agent.add_parser("consult", help="consult an agent ready now (or an outside --number) while the caller "
                                         "holds, then hand the caller over (--complete) or take them back (--cancel)")
    p.add_argument("agent", help="agent id, e.g. 1001")
    p.add_argument("to_agent", nargs="?", metavar="COLLEAGUE", help="the agent to consult, e.g. 2105")
    p.add_argument("--number", metavar="N", help="consult an outside number instead, e.g. 020-1234-5678")
    p.add_argument("--complete", action="store_true", help="hand the caller to the colleague consulted")
    p.add_argument("--conference", action="store_true", help="the caller, the agent and the colleague on one call")
    p.add_argument("--cancel", action="store_true", help="end the consult: back to the caller")
    p.set_defaults(func=cmd_agent)

    p = agent.add_parser("recording", help="pause the recording of the agent's call while the customer reads out "
                                           "a card number, resume it, or show whether it is paused")
    p.add_argument("agent", help="agent id, e.g. 1001")
    p.add_argument("how", choices=("pause", "resume", "status"))
    p.set_defaults(func=cmd_agent)

    p = agent.add_parser("disposition", help="record what came of a call (outcome, issue type, notes, follow-up)")
    p.add_argument("ticket", help="the call record's ticket, e.g. GD20261205001")
    p.add_argument("--as", dest="writer", required=True, help="your agent id (the call's agent, its team lead or a manager)")
    p.add_argument("--outcome", help="e.g. resolved, sale, not interested")
    p.add_argument("--issue-type", dest="issue_type", help="e.g. billing, installation")
    p.add_argument("--notes", help="free text (the record's description)")
    p.add_argument("--follow-up-at", dest="follow_up_at", help="ISO 8601 with offset, e.g. 2026-12-07T10:00:00+08:00")
    p.add_argument("--customer-name", dest="customer_name", help="correct the caller's name")
    p.add_argument("--sale-amount", dest="sale_amount", help="the sale made on the call, in yuan, e.g. 1999.00")
    p.add_argument("--do-not-call", dest="do_not_call", action="store_true",
                   help="the customer asks not to be called again: their number goes on the do-not-call list")
    p.set_defaults(func=cmd_disposition)

    qa = sub.add_parser("qa", help="score sampled calls (team leads and managers, through the running daemon)")
    qa_sub = qa.add_subparsers(dest="qa_command", required=True)
    p = qa_sub.add_parser("sample", help="the recorded calls to score today (docs/qa.md)")
    p.add_argument("--as", dest="reviewer", required=True, help="your agent id (a team lead or a manager)")
    p.add_argument("--day", help="YYYY-MM-DD (default: today)")
    p.set_defaults(func=cmd_qa)
    p = qa_sub.add_parser("score", help="score one call on the scorecard (qa.scorecard)")
    p.add_argument("ticket", help="the call record's ticket, e.g. GD20261205001")
    p.add_argument("--as", dest="reviewer", required=True, help="your agent id (a team lead or a manager)")
    p.add_argument("--rate", dest="ratings", type=_rating, action="append", default=[], metavar="ITEM=N",
                   help="one scorecard item rated 0..4, or ITEM=na; repeat for every item")
    p.add_argument("--comment", default="", help="what went well, what to work on")
    p.add_argument("--recording", type=int, metavar="ID",
                   help="the part of a call handed on to score: its recording's id (qa sample lists them; "
                        "default: the last part you may score)")
    p.set_defaults(func=cmd_qa)

    fax = sub.add_parser("fax", help="send faxes and list the faxes received and sent (through the running daemon)")
    fax_sub = fax.add_subparsers(dest="fax_command", required=True)
    p = fax_sub.add_parser("send", help="send a TIFF fax page file (docs/fax.md)")
    p.add_argument("number", help="the fax number to dial")
    p.add_argument("file", help="the pages: a TIFF file (gs -sDEVICE=tiffg3 -r204x196 -o page.tif doc.pdf)")
    p.set_defaults(func=cmd_fax)
    p = fax_sub.add_parser("list", help="the latest faxes, received and sent")
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    p.set_defaults(func=cmd_fax)

    sms = sub.add_parser("sms", help="SMS broadcast (through the running daemon; docs/sms.md)")
    sms_sub = sms.add_subparsers(dest="sms_command", required=True)
    p = sms_sub.add_parser("send", help="text a campaign's leads (a team's, an agent's) or a list of numbers")
    p.add_argument("--as", dest="by", required=True, help="who sends: a manager, or a team's lead for its leads")
    p.add_argument("--name", required=True, help="the broadcast's name, for the reports")
    p.add_argument("--template", required=True,
                   help="the text; {name}, {phone} and the lead's CSV columns are filled in")
    p.add_argument("--campaign", help="text this campaign's leads")
    p.add_argument("--team", help="only the leads this team holds")
    p.add_argument("--agent", help="only the leads this agent holds")
    p.add_argument("--phones-file", help="a file of numbers, one per line (managers)")
    p.add_argument("--encoding", default="utf-8", help="of --phones-file: utf-8 (the default) or e.g. gb18030")
    p.add_argument("phones", nargs="*", help="numbers to text (managers)")
    p.set_defaults(func=cmd_sms)
    p = sms_sub.add_parser("status", help="the broadcasts' progress: queued, sent, failed, skipped and why")
    p.add_argument("id", nargs="?", type=int, help="one broadcast (default: the latest ones)")
    p.set_defaults(func=cmd_sms)
    p = sms_sub.add_parser("replies", help="the latest texts received (a T puts the number on the DNC list)")
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    p.set_defaults(func=cmd_sms)

    supervisor = sub.add_parser("supervisor", help="supervisor actions (through the running daemon)")
    supervisor_sub = supervisor.add_subparsers(dest="supervisor_command", required=True)
    p = supervisor_sub.add_parser("spy", help="listen, whisper or barge on an agent's live call")
    p.add_argument("--as", dest="supervisor", required=True, help="the supervisor's id (team lead or manager)")
    p.add_argument("agent", help="the agent's id")
    p.add_argument("--mode", choices=("listen", "whisper", "barge"), default="listen")
    p.set_defaults(func=cmd_supervisor)

    web = sub.add_parser("web", help="sign-in to the pages and the API (docs/web-access.md)").add_subparsers(
        dest="web_command", required=True)
    p = web.add_parser("password", help="set a person's web password: a new random one, printed once")
    p.add_argument("person", nargs="?", help="the person's id (config/agents.yaml)")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input instead")
    p.add_argument("--missing", action="store_true",
                   help="a new password for everyone who has none (a first install), printed once as a list")
    p.set_defaults(func=cmd_web)
    p = web.add_parser("list", help="everyone configured, and whether they have a web password")
    p.set_defaults(func=cmd_web)
    p = web.add_parser("remove", help="remove a person's web password: they can no longer sign in")
    p.add_argument("person", help="the person's id")
    p.set_defaults(func=cmd_web)

    recordings = sub.add_parser("recordings", help="call recordings").add_subparsers(
        dest="recordings_command", required=True)
    p = recordings.add_parser("purge", help="delete recordings past recordings.retention_days")
    p.add_argument("--days", type=_whole_days, help="override the retention period (days, 0: everything)")
    p.add_argument("--dry-run", action="store_true", help="list what would be purged, change nothing")
    p.add_argument("--verbose", action="store_true", help="print every purged file")
    p.set_defaults(func=cmd_recordings_purge)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="create or migrate the schema")
    p.set_defaults(func=cmd_db_upgrade)

    from callcenter.lab import cli as lab_cli

    lab_cli.add_parser(sub).set_defaults(func=cmd_lab)

    from callcenter import prompts_cli
    from callcenter.ivr import cli as ivr_cli

    prompts_cli.add_parser(sub)
    ivr_cli.add_parser(sub)

    from callcenter.dialer import cli as dialer_cli

    dialer_cli.register(sub)

    from callcenter import crm_cli, reports_cli

    reports_cli.add_parser(sub, _settings)
    crm_cli.add_parser(sub, _settings)

    try:
        from callcenter.staffing import cli as staffing_cli
    except ImportError:  # pragma: no cover - the staffing package ships with the engine
        pass
    else:
        staffing_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callcenter`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
