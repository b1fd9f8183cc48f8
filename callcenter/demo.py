"""``callcenter demo``: the engine on a real Asterisk, with real calls, narrated.

Brings up a lab Asterisk instance (Debian sid's Asterisk 22) configured from the
project's files, starts the whole engine against it (AMI client, FastAGI server, storage,
HTTP API, metrics), logs three lab agents into the hotline queue (the hotline agent and
two outbound agents who take overflow; the agents are Local channels that answer and talk
for a few seconds), registers a known customer, and places calls to the 400 number. It
prints every call fact as it happens, then the call records and recordings the engine
wrote. Then a short predictive campaign: leads imported and handed out (IT to team1, its
lead to four agents, over the HTTP API), the four outbound agents logged in,
the dialer calling the lab's simulated telephone network (busy, no answer, machines,
people) through AMD and the outbound queue, and a summary of how each attempt ended.
Last, team1's lead texts the team's leads through the lab's SMS gateway, and the handsets
that reply "T" go on the do-not-call list. Exit status 0 only if every call got its
record, every lead was dialed to an outcome and every text went out.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task, threads

from callcenter.agent_page import describe_hops
from callcenter.ami import actions
from callcenter.asterisk.render import lab_sms_gateway
from callcenter.engine import Engine, RecordingPaths
from callcenter.settings import Settings
from callcenter.state.calls import (
    CallAnswered,
    CallBridged,
    CallEnded,
    CallStarted,
    Fact,
)
from callcenter.wallboard_page import share

DEMO_AGENTS = ("1001", "2101", "2102")
#: Takes the hotline call an agent hands on to the outbound queue (docs/agents.md, "Handing a call on").
TRANSFER_AGENT = "2108"
CAMPAIGN_AGENTS = ("2103", "2104", "2105", "2106")
CAMPAIGN_LEADS = 40
CAMPAIGN = "demo-campaign"


def zone_at_local_hour(hours_from: int, hours_to: int, now: datetime) -> str:
    """An ``Etc/GMT`` zone whose local hour at ``now`` is in [hours_from, hours_to).

    The demo and the lab tests give their leads such a zone so that calling hours hold
    (or, for the out-of-hours leads, do not) whatever the time of day they run.
    """
    for offset in (8, 9, 7, 10, 6, 11, 5, 12, 4, 3, 2, 1, 0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, 13, 14):
        if hours_from <= (now + timedelta(hours=offset)).hour < hours_to:
            return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # tzdata's Etc signs are inverted
    raise ValueError(f"no whole-hour zone has a local hour in [{hours_from}, {hours_to})")


def demo_dialer_yaml(timezone: str) -> str:
    """The demo campaign: predictive pacing on the outbound queue, the lab's simulated network."""
    return f"""\
dialer:
  trunk: "Local/{{phone}}@sim-pstn"
  tick_seconds: 0.5
  connect_timeout: 1
  pacing: {{pacer: predictive, target_abandon: 0.03, max_ratio: 3.0, ring_timeout: 15}}
  callbacks_campaign: demo-callbacks   # customers who ask for a call back (the IVR, SMS replies)
  campaigns:
    demo-callbacks:
      dial_mode: preview
      caller_id: "4008001234"
      queue: outbound
      timezone: {timezone}
      safe_harbor_message: custom/dialer/safe_harbor-zh
    {CAMPAIGN}:
      dial_mode: predictive
      caller_id: "4008001234"
      queue: outbound
      timezone: {timezone}
      safe_harbor_message: custom/dialer/safe_harbor-zh
      handout: agent               # only leads handed out to an agent who is logged in
"""
KNOWN_CUSTOMER = ("13800138000", "Zhang Wei")
CALLERS = ("13800138000", "13911112222", "02087654321", "13700001111", "18600002222", "13500003333")


def publish_prompts(settings: Settings, runtime: Any) -> int:
    """Render the IVR prompts (espeak-ng + sox) and make them playable by the lab Asterisk.

    Asterisk looks ``custom/<flow>/<prompt>-<lang>`` up under its sounds directory, whose
    ``custom`` entry Debian links to ``/usr/local/share/asterisk/sounds``, and its own sounds
    (queue announcements, numbers) under ``sounds/<channel language>``; for the chroot lab
    the rendered files are copied there. Returns the number of sound files available.
    """
    from callcenter.lab.instance import ChrootRuntime
    from callcenter.prompts import PromptError, build_prompts

    sounds = settings.ivr.sounds_dir
    try:
        build_prompts(settings.root / "ivr_flows", sounds)
    except PromptError as exc:
        _say(f"prompts not rendered ({exc}); the IVR falls back to stock sounds")
        return 0
    files = list(sounds.rglob("*.wav")) if sounds.exists() else []
    if isinstance(runtime, ChrootRuntime):
        runtime.install_sounds(sounds)
    return len(files)


def flow_with_hours(flow: Path, out: Path, hours: str, *, holidays: bool = True) -> Path:
    """Write a copy of ``flow`` whose ``business_hours`` are ``hours`` on every day (e.g.
    ``'00:00-24:00'`` or ``closed``), without its holidays unless ``holidays``."""
    text = flow.read_text(encoding="utf-8")
    start, end = text.index("business_hours:"), text.index("\nholidays:" if holidays else "\nprompts:")
    days = ", ".join(f"{day}: {hours}" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    tail = "" if holidays else "\nholidays: []"
    out.write_text(text[:start] + f"business_hours: {{{days}}}{tail}" + text[end:], encoding="utf-8")
    return out


def open_around_the_clock(flow: Path, out: Path) -> Path:
    """A copy of ``flow`` open the whole week with no holidays, so the demo reaches agents at
    any hour (the shipped hours are tested separately)."""
    return flow_with_hours(flow, out, "'00:00-24:00'", holidays=False)  # 23:59 would close the last minute


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


#: Where the fax step's calls run: the Local channel's target, the Originate's context, the hangup handler.
_FAX_CONTEXTS = ("sim-pstn", "fax-out", "fax-in", "fax-report", "lab-fax-sender")


def _narrate(engine: Engine, fact: Fact) -> None:
    linkedid = getattr(fact, "linkedid", None) or "?"
    call = engine.calls.call(linkedid, engine.clock.seconds())
    who = call.caller_id_num if call is not None else "?"
    if linkedid.startswith("dial-"):  # the dialer's calls (its ChannelIds): only the conversations
        if isinstance(fact, CallBridged) and fact.first and call is not None:
            agent = engine.connected_agent(linkedid)
            phone, name = call.variables.get("CC_PHONE", "?"), call.variables.get("CC_CUSTOMER_NAME", "")
            _say(f"dialer: {name} {phone} answered (a person, says AMD) and talks to agent {agent or '?'}")

            def pop_outbound(record: Any) -> None:
                if record is not None:
                    _say(f"screen pop on agent {agent}'s desk: ticket {record.ticket_number}, "
                         f"{record.customer_name} {record.phone}, {record.description}")

            if agent is not None:
                engine.open_record(linkedid, agent).addCallback(pop_outbound)
        return
    seen = call if call is not None else getattr(fact, "call", None)  # an ended call: its last snapshot
    if seen is not None and (seen.context in _FAX_CONTEXTS or seen.exten == engine.settings.fax.number):
        return  # the fax step's calls (a fax machine calling in, the daemon faxing out) tell their own story
    if isinstance(fact, CallStarted):
        _say(f"call {linkedid}: a caller dials the 400 hotline")
    elif isinstance(fact, CallAnswered):
        _say(f"call {linkedid}: answered by the hotline after {fact.ring_time:.1f} s (recording starts)")
    elif isinstance(fact, CallBridged) and fact.first:
        agent = engine.connected_agent(linkedid)
        _say(f"call {linkedid}: {who} talks to {agent or 'an agent'}, {fact.wait_time:.1f} s after dialing "
             "(the IVR, then the queue)")

        def pop(record: Any) -> None:
            if record is not None:
                choices = " ".join(p for p in record.ivr_path if "=" in p)
                _say(f"screen pop on agent {agent}'s desk: ticket {record.ticket_number}, "
                     f"{record.customer_name or 'unknown caller'} {record.phone}, IVR {choices}")

        if agent is not None:
            engine.open_record(linkedid, agent).addCallback(pop)
    elif isinstance(fact, CallEnded):
        _say(f"call {fact.linkedid}: ended after {fact.duration:.1f} s, talk {fact.talk_time:.1f} s "
             f"({fact.cause_txt or 'normal'})")


async def _demo(reactor: Any, settings: Settings, calls: int, work: Path) -> int:
    from callcenter.cli import lab_project_files
    from callcenter.lab.instance import (
        ChrootRuntime,
        HostRuntime,
        LabInstance,
        LabPorts,
        free_engine_port,
    )
    from callcenter.lab.rootfs import default_cache_dir, provision_rootfs
    from callcenter.service import make_service

    cache = settings.lab.cache_dir or default_cache_dir()
    if settings.lab.asterisk == "host":
        runtime: Any = HostRuntime.detect()
    else:
        runtime = ChrootRuntime(provision_rootfs(cache, log=_say))
    prompts = publish_prompts(settings, runtime)
    _say(f"IVR prompts: {prompts} files rendered from ivr_flows/ and Asterisk's queue sounds in Mandarin "
         "(espeak-ng, 8 kHz)")
    agi_port = free_engine_port()  # never a port the lab instance may take
    instance = LabInstance("demo", cache / "instances", runtime, LabPorts.allocate(), work / "recordings")
    instance.write_config(dict(lab_project_files(settings, agi_port)(instance.endpoints)))
    _say(f"lab Asterisk booting ({runtime.describe()})")
    services: Any = None
    stopped = False

    async def stop_everything() -> None:
        """The engine, then the lab Asterisk: at the end, or when SIGTERM / Ctrl-C stops the reactor
        mid-demo (then the code after an ``await`` never runs, and the repository's threads would
        keep the process alive and Asterisk running)."""
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if services is not None and services.root.running:
            await services.root.stopService()
        await threads.deferToThreadPool(reactor, reactor.getThreadPool(), instance.stop)
        _say("engine and lab Asterisk stopped")

    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(stop_everything()))
    seconds = instance.start(timeout=60)
    ep = instance.endpoints
    _say(f"Asterisk 22 fully booted in {seconds:.1f} s: AMI 127.0.0.1:{ep.ami_port}, SIP 127.0.0.1:{ep.sip_port}")
    if settings.ivr.hotline_flow is not None:
        flow = open_around_the_clock(settings.ivr.hotline_flow, work / "hotline-24h.yaml")
        settings = replace(settings, ivr=replace(settings.ivr, hotline_flow=flow))
        _say("IVR: ivr_flows/hotline.yaml, opened around the clock for the demo")
    settings = replace(
        settings,
        ami=replace(settings.ami, port=ep.ami_port, ping_interval=5.0),
        agi=replace(settings.agi, port=agi_port),
        http=replace(settings.http, port=0),
        metrics=replace(settings.metrics, port=0),
        database=replace(settings.database, url=f"sqlite:///{work / 'demo.sqlite3'}"),
        # the lab's SMS gateway is the lab Asterisk itself (docs/sms.md); the demo texts at any hour
        sms=replace(settings.sms, gateway=lab_sms_gateway(ep), hours=(day_time(0), day_time.max),
                    rate_per_second=20.0, signature="【演示公司】"),
    )
    dialer_yaml = work / "dialer.yaml"
    dialer_yaml.write_text(demo_dialer_yaml(zone_at_local_hour(10, 19, datetime.now(UTC))), encoding="utf-8")
    services = make_service(settings, reactor, recordings=RecordingPaths(ep.recordings_dir, instance.recordings_dir),
                            lab=True, dialer_config=dialer_yaml)
    engine = services.engine
    engine.fact_listeners.append(lambda fact: _narrate(engine, fact))
    services.root.startService()
    try:
        await services.ami.when_connected()
        _say(f"engine up: AMI logged in and resynced, FastAGI :{services.agi_port}, "
             f"API http://127.0.0.1:{services.http_port}/api/health, metrics :{services.metrics_port}")
        repo = engine.repository
        assert repo is not None
        status, body = await _api(reactor, services, "POST", "customers", {
            "phone": KNOWN_CUSTOMER[0], "name": KNOWN_CUSTOMER[1], "vip": True, "notes": "prefers mornings"})
        if status != 200:
            _say(f"FAILED: POST /api/customers: HTTP {status} {body}")
            return 1
        customer_id = body["customer"]["id"]
        _say(f"CRM: known customer {KNOWN_CUSTOMER[1]} ({KNOWN_CUSTOMER[0]}), VIP, added as customer {customer_id} "
             "(POST /api/customers)")
        for agent in DEMO_AGENTS:
            penalty = settings.agent(agent).queues.get("hotline", 0)
            await services.ami.send(actions.command(f"devstate change Custom:agent{agent} NOT_INUSE"))
            await engine.agent_service.login(agent, ["hotline"])
            for _ in range(20):  # QueueMemberAdded follows the QueueAdd response
                if engine.agents.state_of(agent).value != "logged_out":
                    break
                await task.deferLater(reactor, 0.1, lambda: None)
            state = engine.agents.state_of(agent)
            _say(f"agent {agent} logs in to the hotline queue (penalty {penalty}): {state.value}")
            # the hotline agents talk 8 s (long enough to consult and hand a call over), the one
            # taking it 6 s from answering the consult
            await services.ami.send(actions.setvar(f"LAB_TALK_{agent}", 8))
        await services.ami.send(actions.setvar(f"LAB_TALK_{TRANSFER_AGENT}", 6))
        await services.ami.send(actions.command(f"devstate change Custom:agent{TRANSFER_AGENT} NOT_INUSE"))
        await engine.agent_service.login(TRANSFER_AGENT, ["outbound"])
        _say(f"agent {TRANSFER_AGENT} logs in to the outbound queue, to take a call handed over from the hotline")
        ended: list[CallEnded] = []
        engine.fact_listeners.append(lambda f: ended.append(f) if isinstance(f, CallEnded) else None)
        originated = []
        for i in range(calls):
            number = CALLERS[i % len(CALLERS)]
            action = actions.originate(
                "Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                caller_id=f"Caller {i + 1} <{number}>", timeout_ms=20000,
                # language 1 (Mandarin) during the language menu, 0 (agent) during the main
                # menu, then 5 for the survey after the agent hangs up
                variables={"LAB_SECONDS": 120, "LAB_DELAY": 12, "LAB_DTMF": "1", "LAB_DELAY2": 16,
                           "LAB_DTMF2": "0", "LAB_REPEAT_DTMF": "5"},
            )
            originated.append(services.ami.originate(action, action_id=f"demo-{i + 1}"))
            await task.deferLater(reactor, 1.0, lambda: None)
        responses = await defer.gatherResults(originated)
        answered = sum(1 for r in responses if r.get("Response") == "Success")
        _say(f"{answered}/{calls} originates answered (OriginateResponse matched by ActionID)")
        deadline = reactor.seconds() + 90
        most_waiting = 0
        dispositioned: Any = None  # the record the agent dispositions during its call
        handed_on = False  # then hands on to the outbound queue
        while reactor.seconds() < deadline and (len(ended) < calls or engine.records_written < calls):
            if dispositioned is None:
                live = [r for r in await repo.list_recent_call_records(limit=calls)
                        if r.agent_id and r.ended_at is None]
                if live:
                    dispositioned = live[0]
                    status, body = await _api(
                        reactor, services, "POST", f"call-records/{dispositioned.ticket_number}/disposition",
                        {"agent": dispositioned.agent_id, "outcome": "resolved", "issue_type": "billing",
                         "notes": "asked about the November invoice; explained the charges"})
                    if status != 200:
                        _say(f"FAILED: disposition of {dispositioned.ticket_number}: HTTP {status} {body}")
                        return 1
                    saved = body["record"]
                    _say(f"agent {dispositioned.agent_id} sets the disposition of {dispositioned.ticket_number} "
                         f"during the call (POST /api/call-records/<ticket>/disposition): outcome "
                         f"{saved['outcome']}, issue {saved['issue_type']}, notes {saved['description']!r}")
                    status, page = await _page(reactor, services, f"agent/{dispositioned.agent_id}")
                    html = page.decode("utf-8", "replace")
                    if status != 200 or f"Call {dispositioned.ticket_number}" not in html \
                            or "<td>Outcome</td><td>resolved</td>" not in html:
                        _say(f"FAILED: GET /agent/{dispositioned.agent_id} did not show the call: HTTP {status}")
                        return 1
                    _say(f"agent {dispositioned.agent_id}'s page (GET /agent/{dispositioned.agent_id}) shows the "
                         f"screen pop of {dispositioned.ticket_number} with its outcome and the disposition form")
                    status, _ = await _page(reactor, services, f"agent/{dispositioned.agent_id}", signed_in=False)
                    if status != 401:
                        _say(f"FAILED: GET /agent/{dispositioned.agent_id} without signing in: HTTP {status}, not 401")
                        return 1
                    _say(f"without signing in, the same page answers HTTP {status} (agents sign in with the web "
                         "password `callcenter web password ID` gives them; the demo uses the host's API token)")
                    if not await _masked_for_the_agent(reactor, services, engine, dispositioned):
                        return 1
            if dispositioned is not None and not handed_on and dispositioned.agent_id is not None \
                    and engine.agents.state_of(dispositioned.agent_id).value == "on_call":
                handed_on = True
                if not await _consult_and_hand_over(reactor, services, dispositioned.agent_id,
                                                    dispositioned.ticket_number):
                    return 1
            hotline_now = next(v for v in engine.queue_views() if v["queue"] == "hotline")
            if hotline_now["waiting"] > most_waiting:
                most_waiting = hotline_now["waiting"]
                overflow = engine.settings.queue("hotline").overflow_after
                _say(f"wallboard: {most_waiting} caller(s) waiting in the hotline queue, the longest for "
                     f"{hotline_now['longest_wait']:.0f} s; agents {hotline_now['agents']} (the overflow "
                     f"agents ring once a caller has waited {overflow} s)")
            await task.deferLater(reactor, 0.5, lambda: None)
        await task.deferLater(reactor, 2.0, lambda: None)  # recordings settle
        records = await repo.list_recent_call_records(limit=calls)
        print()
        print(f"{'ticket':<15} {'phone':<13} {'customer':<10} {'agent':<6} {'wait s':>6} {'talk s':>6} "
              f"{'csat':>4}  {'ivr choices':<22} recording")
        ok = True
        for record in sorted(records, key=lambda r: r.ticket_number):
            recs = await repo.list_recordings_for_call(record.id)
            rec = (f"{Path(recs[0].path).name} {recs[0].duration_seconds:.1f} s {recs[0].size_bytes} B"
                   if recs else "missing")
            ok = ok and bool(recs) and recs[0].size_bytes > 0
            print(f"{record.ticket_number:<15} {record.phone or '-':<13} {(record.customer_name or '-')[:10]:<10} "
                  f"{record.agent_id or '-':<6} {record.wait_seconds or 0:>6} {record.talk_seconds or 0:>6} "
                  f"{record.csat or '-':>4}  {' '.join(p for p in record.ivr_path if '=' in p):<22} {rec}")
        print()
        health = engine.health()
        _say(f"engine: {health['records_written']} call records, AMI connections {health['ami_connections']}, "
             f"channels still up {health['channels']}")
        ok = ok and all(r.csat == 5 and "main_menu=0" in r.ivr_path for r in records)
        if len(records) < calls or not ok:
            _say(f"FAILED: expected {calls} call records with recordings, IVR choices and CSAT 5, "
                 f"got {len(records)}")
            return 1
        _say("hotline part complete: every call went through the IVR to an agent, was recorded, rated 5 in "
             "the survey and written as a call record")
        status, body = await _api(reactor, services, "GET", "queues")
        hotline = next(q for q in body["queues"] if q["queue"] == "hotline") if status == 200 else None
        if hotline is None or hotline["answered"] < calls:
            _say(f"FAILED: GET /api/queues: HTTP {status} {body}")
            return 1
        sl = share(hotline["service_level"])
        _say(f"wallboard (GET /api/queues) hotline today: offered {hotline['offered']}, answered "
             f"{hotline['answered']}, abandoned {hotline['abandoned']}, service level {sl} within "
             f"{hotline['service_level_seconds']} s, ASA {hotline['asa']:.0f} s, average talk "
             f"{hotline['average_talk'] or 0:.0f} s, waiting now {hotline['waiting']}")
        kept = next((r for r in records if dispositioned is not None and r.id == dispositioned.id), None)
        if kept is None or (kept.outcome, kept.issue_type) != ("resolved", "billing"):
            _say(f"FAILED: the agent's disposition did not survive the hangup: {kept}")
            return 1
        _say(f"after the hangup {kept.ticket_number} keeps the agent's disposition: outcome {kept.outcome}, "
             f"issue {kept.issue_type} (the IVR's topic did not overwrite it), talk {kept.talk_seconds} s")
        if kept.agent_id != TRANSFER_AGENT or len(kept.transfers) != 1:
            _say(f"FAILED: the call handed over is not {TRANSFER_AGENT}'s with one hop: {kept}")
            return 1
        _say(f"{kept.ticket_number} is one record: the last agent {kept.agent_id}, handed on "
             f"{describe_hops(kept.transfers)}, the caller's wait {kept.wait_seconds} s in {kept.queue}, "
             f"rated {kept.csat}")
        await engine.agent_service.logout(TRANSFER_AGENT)
        status, body = await _api(reactor, services, "GET", f"customers/{customer_id}")
        known_calls = body.get("calls", []) if status == 200 else []
        if not known_calls:
            _say(f"FAILED: GET /api/customers/{customer_id}: HTTP {status} {body}")
            return 1
        _say(f"CRM (GET /api/customers/{customer_id}): {body['customer']['name']}'s calls today: "
             + ", ".join(f"{c['ticket_number']} with agent {c['agent_id']}" for c in known_calls)
             + "; the next call's screen pop lists them")
        if not await _quality_review(reactor, services):
            return 1
        if not await _faxes(reactor, services, runtime, instance):
            return 1
        if not await _campaign(reactor, services, settings):
            return 1
        if not await _sms(reactor, services):
            return 1
        status, body = await _api(reactor, services, "GET", "reports/calls?by=queue")
        total = body["lines"][-1] if status == 200 else None
        if total is None or total["inbound"] < calls or total["csat_responses"] < calls:
            _say(f"FAILED: GET /api/reports/calls: HTTP {status} {body}")
            return 1
        for line in body["lines"]:
            _say(f"report (GET /api/reports/calls?by=queue) today, {line['key']}: {line['calls']} calls "
                 f"({line['inbound']} in, {line['outbound']} out), answered {line['answered']}, abandoned "
                 f"{line['abandoned']}, service level {share(line['service_level'])}, ASA {_secs(line['asa'])}, "
                 f"AHT {_secs(line['aht'])}, CSAT "
                 + ("-" if line["csat"] is None else f"{line['csat']:.2f} from {line['csat_responses']} answers"))
        status, body = await _api(reactor, services, "GET", "reports/agents")
        talked = [line for line in body.get("lines", []) if line["on_call"] > 0] if status == 200 else []
        if not talked:
            _say(f"FAILED: GET /api/reports/agents: HTTP {status} {body}")
            return 1
        for line in talked:
            _say(f"agent time (GET /api/reports/agents) today, {line['agent_id']}: logged in "
                 f"{_secs(line['logged_in'])}, ready {_secs(line['ready'])}, ringing {_secs(line['ringing'])}, "
                 f"on calls {_secs(line['on_call'])}, wrap-up {_secs(line['wrap_up'])}, paused "
                 f"{_secs(line['paused'])}, occupancy {share(line['occupancy'])}")
        _say("demo complete")
        return 0
    finally:
        await stop_everything()


async def _consult_and_hand_over(reactor: Any, services: Any, agent: str, ticket: str) -> bool:
    """The agent consults TRANSFER_AGENT while the caller holds, then hands the caller over
    (docs/agents.md, "Consult first"), all over the HTTP API."""
    status, body = await _api(reactor, services, "POST", f"agents/{agent}/consult", {"to_agent": TRANSFER_AGENT})
    if status != 200:
        _say(f"FAILED: consult about {ticket}: HTTP {status} {body}")
        return False
    _say(f"agent {agent} consults agent {TRANSFER_AGENT} about {ticket} (POST /api/agents/{agent}/consult): the "
         f"caller holds with music, {TRANSFER_AGENT}'s phone rings with the same ticket and the notes")
    for _ in range(40):
        status, body = await _api(reactor, services, "GET", f"agents/{agent}/consult")
        if status == 200 and body["answered"]:
            break
        await task.deferLater(reactor, 0.25, lambda: None)
    else:
        _say(f"FAILED: agent {TRANSFER_AGENT} never answered the consult: HTTP {status} {body}")
        return False
    status, body = await _api(reactor, services, "POST", f"agents/{agent}/consult/complete", {})
    if status != 200:
        _say(f"FAILED: handing {ticket} over: HTTP {status} {body}")
        return False
    _say(f"agent {TRANSFER_AGENT} answers; the two agents talk, then {agent} hands the caller over "
         f"(POST /api/agents/{agent}/consult/complete): {agent}'s phone hangs up, {TRANSFER_AGENT} has the caller")
    return True


def _api(reactor: Any, services: Any, method: str, path: str,
         body: dict[str, Any] | None = None) -> defer.Deferred[tuple[int, Any]]:
    """The running daemon's HTTP API, called as the CLI would (cli.call_api with the host's
    API token, in a thread)."""
    from callcenter.cli import call_api

    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), call_api, "127.0.0.1", services.http_port,
                                     method, path, body, token=services.api_token)


def _page(reactor: Any, services: Any, path: str, *, signed_in: bool = True,
          person: tuple[str, str] | None = None) -> defer.Deferred[tuple[int, bytes]]:
    """One of the daemon's pages (or a recording they play), fetched as a browser would (in a
    thread), signed in with the host's API token unless ``signed_in`` is false, or as
    ``person`` (id, web password)."""
    import base64
    import urllib.error
    import urllib.request

    headers = {"authorization": f"Bearer {services.api_token}"} if signed_in else {}
    if person is not None:
        headers = {"authorization": "Basic " + base64.b64encode(f"{person[0]}:{person[1]}".encode()).decode()}

    def fetch() -> tuple[int, bytes]:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{services.http_port}/{path}", headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, b""
        except OSError as exc:
            return 0, str(exc).encode()

    return threads.deferToThreadPool(reactor, reactor.getThreadPool(), fetch)


async def _masked_for_the_agent(reactor: Any, services: Any, engine: Engine, record: Any) -> bool:
    """The agent signs in with a web password of their own: their page shows the caller's
    number masked (privacy.agent_numbers), where the host's token saw it whole."""
    from callcenter.privacy import mask_number
    from callcenter.secrets import set_web_password
    from callcenter.web_access import hash_password, new_password

    if not record.phone or mask_number(record.phone) == record.phone or not engine.settings.privacy.mask_for_agents:
        return True
    password = new_password()
    state_dir = engine.settings.site.state_dir  # scrypt and the file write, off the reactor
    await threads.deferToThreadPool(reactor, reactor.getThreadPool(),
                                    lambda: set_web_password(state_dir, record.agent_id, hash_password(password)))
    status, page = await _page(reactor, services, f"agent/{record.agent_id}", person=(record.agent_id, password))
    html = page.decode("utf-8", "replace")
    shown = mask_number(record.phone)
    if status != 200 or f"<td>Caller</td><td>{shown}</td>" not in html or record.phone in html:
        _say(f"FAILED: agent {record.agent_id}'s own page did not show the caller as {shown}: HTTP {status}")
        return False
    _say(f"signed in as agent {record.agent_id} (a web password of their own), the same page shows the caller "
         f"as {shown}: agents see customers' numbers masked, on their softphone too (privacy.agent_numbers); "
         "team leads see them whole")
    return True


async def _quality_review(reactor: Any, services: Any) -> bool:
    """A manager takes today's QA sample of recorded calls and scores the first one (over HTTP)."""
    status, sample = await _api(reactor, services, "GET", "qa/sample?reviewer=9001")
    if status != 200 or not sample["calls"]:
        _say(f"FAILED: GET /api/qa/sample: HTTP {status} {sample}")
        return False
    call = sample["calls"][0]
    status, audio = await _page(reactor, services, f"lead/9001/recording/{call['ticket']}")
    if status != 200 or not audio.startswith(b"RIFF") or len(audio) <= 44:
        _say(f"FAILED: GET /lead/9001/recording/{call['ticket']}: HTTP {status}, {len(audio)} bytes")
        return False
    _say(f"the manager's page plays the recording of {call['ticket']} (GET /lead/9001/recording/...): "
         f"{len(audio)} bytes of WAV")
    ratings = {item["id"]: 4 for item in sample["scorecard"]}
    ratings["close"] = 3
    status, body = await _api(reactor, services, "POST", f"call-records/{call['ticket']}/qa",
                             {"reviewer": "9001", "ratings": ratings, "comment": "clear and friendly; sum up first"})
    if status != 200:
        _say(f"FAILED: POST /api/call-records/{call['ticket']}/qa: HTTP {status} {body}")
        return False
    _say(f"QA: manager 9001 is offered {len(sample['calls'])} recorded call(s) today (GET /api/qa/sample) and "
         f"scores {call['ticket']} of agent {call['agent_id']} from its recording: {body['review']['score']:.1f} "
         "of 100 (POST /api/call-records/<ticket>/qa)")
    return True


async def _faxes(reactor: Any, services: Any, runtime: Any, instance: Any) -> bool:
    """A fax machine faxes the fax number, and the daemon faxes a page to a fax machine (over HTTP)."""
    from callcenter.lab.pages import fax_page

    host, seen = await threads.deferToThreadPool(reactor, reactor.getThreadPool(), fax_page, runtime,
                                                 instance.recordings_dir, instance.endpoints.recordings_dir)
    number = services.engine.settings.fax.number
    _say(f"fax: a fax machine (02098765432) calls the fax number {number}; the daemon faxes {host.name} to "
         "19900070001 (POST /api/faxes)")
    status, body = await _api(reactor, services, "POST", "faxes", {"to": "19900070001", "file": str(host)})
    if status != 200:
        _say(f"FAILED: POST /api/faxes: HTTP {status} {body}")
        return False
    action = actions.originate(f"Local/{number}@from-pstn/n", context="lab-fax-sender", exten="s", priority=1,
                               caller_id="Fax <02098765432>", timeout_ms=20000, variables={"LAB_FAX_FILE": seen})
    await services.ami.originate(action, timeout=30)
    filed: list[Any] = []
    for _ in range(180):  # a page takes 10 to 20 s
        status, listed = await _api(reactor, services, "GET", "faxes?limit=10")
        filed = [f for f in listed.get("faxes", []) if f["status"] != "SENDING"] if status == 200 else []
        if len(filed) >= 2:
            break
        await task.deferLater(reactor, 0.5, lambda: None)
    for fax in sorted(filed, key=lambda f: f["direction"]):
        where = "from" if fax["direction"] == "inbound" else "to"
        _say(f"fax {fax['direction']} {where} {fax['number']}: {fax['status']}, {fax['pages']} page(s) at "
             f"{fax['bitrate']} bit/s, {fax['size_bytes']} bytes in {Path(fax['path']).name} (GET /api/faxes)")
    if sorted((f["direction"], f["status"]) for f in filed) != [("inbound", "SUCCESS"), ("outbound", "SUCCESS")]:
        _say(f"FAILED: expected one fax received and one sent, got {filed}")
        return False
    return True


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


async def _campaign(reactor: Any, services: Any, settings: Settings) -> bool:
    """A short predictive campaign on the simulated network; True if every lead got an outcome."""
    from callcenter.dialer.campaign import zone
    from callcenter.storage import dialer as store
    from callcenter.storage.dialer_records import LeadRow

    dialer, engine = services.dialer, services.engine
    await dialer.ready
    campaign_id = dialer.campaigns[CAMPAIGN].record.id
    print()
    _say(f"campaign {CAMPAIGN}: predictive pacing (target abandonment 3%), the lab's simulated network "
         "(50% no answer, 10% busy, 10% answering machines, 30% people)")
    for name, value in {"SIM_RING_MIN": 1, "SIM_RING_MAX": 5, "SIM_TALK_MIN": 4, "SIM_TALK_MAX": 8,
                        "SIM_MACHINE_LISTEN": 3, "LAB_TALK": 5}.items():
        await services.ami.send(actions.setvar(name, value))
    rows = [LeadRow(line=i + 2, phone=f"1390000{i:04d}", name=f"Lead {i + 1}") for i in range(CAMPAIGN_LEADS)]
    imported = await dialer.repository.run(store.import_leads, campaign_id, rows, list_name="demo",
                                           source_file="demo", actor="demo", now=datetime.now(UTC))
    _say(f"{imported.rows_ok} leads imported")
    # the morning hand-out, over the HTTP API as a manager's and a team lead's screens do it
    status, body = await _api(reactor, services, "POST", f"dialer/{CAMPAIGN}/handout",
                              {"by": "9001", "team": "team1", "count": imported.rows_ok})
    if status != 200:
        _say(f"FAILED: POST /api/dialer/{CAMPAIGN}/handout (to team1): HTTP {status} {body}")
        return False
    _say(f"IT (manager 9001) hands {body['given']['team1']} leads to team1 (POST /api/dialer/{CAMPAIGN}/handout)")
    status, body = await _api(reactor, services, "POST", f"dialer/{CAMPAIGN}/handout",
                              {"by": "8001", "team": "team1", "agents": list(CAMPAIGN_AGENTS)})
    if status != 200:
        _say(f"FAILED: POST /api/dialer/{CAMPAIGN}/handout (to agents): HTTP {status} {body}")
        return False
    _say("team lead 8001 shares them: " + ", ".join(f"{a} {n}" for a, n in body["given"].items())
         + "; the campaign (handout: agent) dials each agent's leads while they are logged in")
    for agent in CAMPAIGN_AGENTS:
        await engine.agent_service.login(agent, ["outbound"])
    _say(f"agents {', '.join(CAMPAIGN_AGENTS)} log in to the outbound queue")
    started = reactor.seconds()
    seen: dict[str, int] = {}
    while reactor.seconds() - started < 240:
        await task.deferLater(reactor, 5.0, lambda: None)
        progress = await dialer.repository.run(store.campaign_progress, campaign_id)
        status = dialer.status()[0]
        if status.outcomes != seen:
            seen = dict(status.outcomes)
            _say(f"t={reactor.seconds() - started:5.0f} s  placed {status.placed:3d}  in flight {status.in_flight:2d}  "
                 f"agents ready {status.agents_ready} busy {status.agents_busy}  outcomes {dict(sorted(seen.items()))}")
        if progress.leads_by_state.get("new", 0) == 0 and progress.in_flight == 0 and status.in_flight == 0:
            break
    progress = await dialer.repository.run(store.campaign_progress, campaign_id)
    tz = dialer.campaigns[CAMPAIGN].config.campaign.timezone
    ledger = await dialer.repository.run(store.abandon_ledger, campaign_id, day=datetime.now(zone(tz)).date(),
                                         tz=zone(tz))
    latencies = sorted(dialer.connect_latencies(CAMPAIGN))
    p95 = f"{latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]:.2f} s" if latencies else "-"
    _say(f"leads: { {k: v for k, v in progress.leads_by_state.items() if v} }; "
         f"attempts: { {k: v for k, v in progress.attempts_by_outcome.items() if v} }")
    _say(f"abandon ledger today: {ledger.abandoned:g} abandoned of {ledger.live_answers:g} live answers "
         f"({ledger.rate:.1%}); answer -> agent p95 {p95}")
    done = bool(progress.leads_by_state.get("new", 0) == 0 and progress.in_flight == 0)
    if not done:
        _say("FAILED: the campaign did not dial every lead to an outcome in 4 minutes")
        return False
    return await _do_not_call(reactor, services)


async def _do_not_call(reactor: Any, services: Any) -> bool:
    """A customer the campaign reached says "don't call me again": the agent's disposition puts
    the number on the do-not-call list (the SMS broadcast after it skips the number)."""
    status, body = await _api(reactor, services, "GET", "call-records?limit=100")
    talked = [r for r in body.get("call_records", []) if status == 200 and r["direction"] == "outbound" and r["agent_id"]
              and (r["phone"] or "")[-1:] not in ("7", "8")]  # 7 and 8 answer the SMS step's texts
    if not talked:
        _say("FAILED: no outbound conversation to disposition (GET /api/call-records)")
        return False
    record = talked[-1]
    status, body = await _api(reactor, services, "POST", f"call-records/{record['ticket_number']}/disposition",
                              {"agent": record["agent_id"], "outcome": "not interested", "do_not_call": True})
    if status != 200:
        _say(f"FAILED: the do-not-call disposition of {record['ticket_number']}: HTTP {status} {body}")
        return False
    _say(f"agent {record['agent_id']} dispositions {record['ticket_number']} \"not interested\"; the customer asks "
         f"not to be called again: {record['phone']} goes on the do-not-call list, audited (POST "
         "/api/call-records/<ticket>/disposition with do_not_call)")
    return True


async def _sms(reactor: Any, services: Any) -> bool:
    """Team lead 8001 texts the leads team1 holds (over HTTP); the lab's simulated network
    delivers them, and the handsets ending in 7 reply "T" (onto the DNC list), in 8 a sentence."""
    print()
    status, body = await _api(reactor, services, "POST", "sms/broadcasts", {
        "by": "8001", "name": "spring offer", "campaign": CAMPAIGN, "team": "team1",
        "template": "{name}您好，感谢您今天接听，春季套餐八折，详询4008001234。"})
    if status != 200:
        _say(f"FAILED: POST /api/sms/broadcasts: HTTP {status} {body}")
        return False
    created = body["broadcast"]
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(created["skipped"].items())) or "none"
    _say(f"SMS: team lead 8001 texts the {created['queued']} leads team1 holds (POST /api/sms/broadcasts), "
         f"through the lab's SMS gateway (SIP MESSAGE), 20 a second; skipped: {skipped}")
    progress: dict[str, Any] = {}
    replies: list[dict[str, Any]] = []
    for _ in range(60):
        await task.deferLater(reactor, 0.5, lambda: None)
        status, body = await _api(reactor, services, "GET", f"sms/broadcasts/{created['broadcast_id']}")
        progress = body.get("broadcast", {}) if status == 200 else {}
        status, body = await _api(reactor, services, "GET", "sms/replies")
        replies = body.get("replies", []) if status == 200 else []
        if progress.get("by_status", {}).get("sent") == created["queued"] and len(replies) >= 8:
            break
    opted_out = sorted(r["phone"] for r in replies if r["opt_out"])
    _say(f"SMS: {progress.get('by_status')} (GET /api/sms/broadcasts/<id>); {len(replies)} replies "
         f"(GET /api/sms/replies), {len(opted_out)} of them \"T\": {', '.join(opted_out)} now on the "
         "do-not-call list")
    example = next((r for r in replies if not r["opt_out"]), None)
    if example is not None:
        callbacks = 0
        for _ in range(20):  # each reply is a call-back request, queued in the dialer's thread
            status, body = await _api(reactor, services, "GET", "dialer/demo-callbacks/holdings")
            callbacks = sum(h["waiting"] for h in body.get("holdings", [])) if status == 200 else 0
            if callbacks >= len(replies) - len(opted_out):
                break
            await task.deferLater(reactor, 0.25, lambda: None)
        _say(f"SMS: {example['phone']} replied {example['body']!r}; the {callbacks} customers who answered are "
             "call-backs waiting for an agent (preview campaign demo-callbacks)")
    if progress.get("by_status", {}).get("sent") != created["queued"] or len(opted_out) != 4:
        _say("FAILED: expected every text sent and four handsets (numbers ending in 7) to unsubscribe")
        return False
    return True


def run_demo(settings: Settings, calls: int = 4) -> int:
    """Run the demo on the global reactor; return the exit status."""
    work = Path(tempfile.mkdtemp(prefix="callcenter-demo-"))
    result: list[int] = []

    async def main(reactor: Any) -> None:
        result.append(await _demo(reactor, settings, calls, work))

    started = datetime.now(UTC)
    try:
        task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    except SystemExit as exc:
        if exc.code not in (0, None):
            return int(exc.code) if isinstance(exc.code, int) else 1
    finally:
        _say(f"demo took {(datetime.now(UTC) - started).total_seconds():.0f} s; files in {work}")
        if result and result[0] == 0:
            shutil.rmtree(work, ignore_errors=True)
    return result[0] if result else 1
