"""The predictive dialer end to end on the real lab Asterisk: 300 leads, 6 agents.

The daemon's own service tree (``make_service`` with ``config/dialer.yaml`` semantics)
dials a simulated telephone network (``dialplans/lab/sim-pstn.conf``: busy, no answer,
congestion, answering machines and people, at random) through ``[dialer-answered]``
(AMD, the outbound queue within the connect timeout, the safe-harbor message). Agents
are Local channels (``Local/<ID>@lab-agents/n``) logged in by the engine's AgentService.

It protects what the issue asks to see on a real Asterisk:

- every dialable lead ends in a final state or a scheduled retry, and every attempt has
  an outcome; no number rings twice at once (watched on the AMI channel events);
- numbers on the DNC list (added after the import) and leads outside their calling hours
  are never dialed;
- over the abandonment guard's limit the campaign dials one call per ready agent;
- abandoned calls heard the safe-harbor prompt (Playback seen on their channel) and are
  counted in the abandon ledger;
- the answer -> agent bridged latency p95 is reported (and stays under the 2 s rule);
- editing the dialer's YAML while the campaign runs changes the pacing within seconds,
  and an invalid edit is logged and the running settings are kept;
- a campaign with ``handout: agent`` dials the leads of a logged-in agent and none of a
  logged-out agent's or of IT's pool (docs/lead-handout.md);
- a campaign with ``route: team`` connects each team's leads to that team's agents, in the
  team's queue (the lab's ``outbound`` is ``per_team``);
- a preview campaign with ``auto_dial`` calls a logged-in agent's own leads one after the
  other, their phone first, with no click.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from callcenter.ami import actions
from callcenter.ami.codec import Message
from callcenter.cli import lab_project_files
from callcenter.demo import zone_at_local_hour
from callcenter.dialer.campaign import zone
from callcenter.engine import RecordingPaths
from callcenter.lab.instance import ChrootRuntime, free_engine_port
from callcenter.prompts import build_prompts
from callcenter.secrets import load_or_create_secrets
from callcenter.service import EngineServices, make_service
from callcenter.settings import load_settings
from callcenter.storage import dialer as store
from callcenter.storage.dialer_records import LeadRow
from callcenter.transfer import consult_leg, parse_hop
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ("2103", "2104", "2105", "2106", "2107", "2108")  # outbound-only agents of team 1
LEADS, DNC, OUT_OF_HOURS = 300, 10, 10
CAMPAIGN = "lab-campaign"
PREVIEW = "lab-preview"
OWNED = "lab-owned"  # dials only leads handed out to an agent who is logged in
TEAMS = "lab-teams"  # each team's handed-out leads go to that team's agents
AUTO = "lab-auto"  # preview with auto-dial: each ready agent's own next lead is dialed for them


def dialer_yaml(callable_zone: str, pacer: str = "predictive", fixed_ratio: float = 1.5,
                max_ratio: str = "3.0", guard: str = "{enabled: true}") -> str:
    return textwrap.dedent(f"""\
        dialer:
          trunk: "Local/{{phone}}@sim-pstn"
          tick_seconds: 0.5
          connect_timeout: 1
          abandon_guard: {guard}
          pacing:
            pacer: {pacer}
            fixed_ratio: {fixed_ratio}
            max_ratio: {max_ratio}
            ring_timeout: 15
          campaigns:
            {CAMPAIGN}:
              dial_mode: predictive
              caller_id: "4008001234"
              queue: outbound
              timezone: {callable_zone}
              max_attempts: 3
              safe_harbor_message: custom/dialer/safe_harbor-zh
            {PREVIEW}:
              dial_mode: preview
              caller_id: "4008001234"
              queue: outbound
              timezone: {callable_zone}
              safe_harbor_message: custom/dialer/safe_harbor-zh
            {OWNED}:
              dial_mode: progressive
              caller_id: "4008001234"
              queue: outbound
              timezone: {callable_zone}
              safe_harbor_message: custom/dialer/safe_harbor-zh
              handout: agent
            {TEAMS}:
              dial_mode: progressive
              caller_id: "4008001234"
              queue: outbound
              timezone: {callable_zone}
              safe_harbor_message: custom/dialer/safe_harbor-zh
              handout: team
              route: team
            {AUTO}:
              dial_mode: preview
              caller_id: "4008001234"
              queue: outbound
              timezone: {callable_zone}
              safe_harbor_message: custom/dialer/safe_harbor-zh
              handout: agent
              auto_dial: 3
        """)


@dataclass
class Watch:
    """What the AMI shows of the simulated network's calls, by called number."""

    alive: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    overlaps: list[str] = field(default_factory=list)
    dialed: set[str] = field(default_factory=set)
    channels: dict[str, str] = field(default_factory=dict)  # uniqueid -> number
    safe_harbor: set[str] = field(default_factory=set)  # uniqueids that played the prompt
    max_in_flight: int = 0
    connects: list[tuple[str, str]] = field(default_factory=list)  # AgentConnect: (queue, member interface)

    def on_event(self, msg: Message) -> None:
        channel = msg.get("Channel") or ""
        if msg.name == "Newchannel" and "@sim-pstn-" in channel and channel.endswith(";1"):
            number = channel.split("/", 1)[1].split("@", 1)[0]
            self.dialed.add(number)
            self.channels[msg.get("Uniqueid") or ""] = number
            self.alive[number] += 1
            if self.alive[number] > 1:
                self.overlaps.append(number)
        elif msg.name == "Hangup" and (msg.get("Uniqueid") or "") in self.channels:
            self.alive[self.channels[msg.get("Uniqueid") or ""]] -= 1
        elif msg.name == "AgentConnect":
            self.connects.append((msg.get("Queue") or "", msg.get("Interface") or ""))
        elif (msg.name == "Newexten" and msg.get("Application") == "Playback"
              and "safe_harbor" in (msg.get("AppData") or "")):
            self.safe_harbor.add(msg.get("Uniqueid") or "")


@dataclass
class DialerLab:
    services: EngineServices
    rt: ReactorThread
    config_path: Path
    callable_zone: str
    watch: Watch
    log: list[dict[str, Any]]

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        dialer = self.services.dialer
        assert dialer is not None
        return self.rt.call(dialer.repository.run, fn, *args, timeout=60, **kwargs)

    @property
    def campaign_id(self) -> int:
        return self.id_of(CAMPAIGN)

    def id_of(self, campaign: str) -> int:
        dialer = self.services.dialer
        assert dialer is not None
        return self.rt.call(lambda: dialer.campaigns[campaign].record.id)  # type: ignore[no-any-return]

    def status(self, campaign: str = CAMPAIGN) -> Any:
        dialer = self.services.dialer
        assert dialer is not None
        return self.rt.call(lambda: next(s for s in dialer.status() if s.name == campaign))

    def setvar(self, name: str, value: object) -> None:
        self.rt.call(self.services.ami.send, actions.setvar(name, value), timeout=10)


@pytest.fixture
def dialer_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[DialerLab]:
    lab_queues = tmp_path / "lab-queues.yaml"  # quick wrap-ups; a queue per team for route: team
    lab_queues.write_text("queues:\n  outbound:\n    wrapup_time: 2\n    per_team: true\n", encoding="utf-8")
    base = load_settings(ROOT / "config", [lab_queues])
    settings = replace(
        base,
        site=replace(base.site, state_dir=tmp_path / "var"),
        database=replace(base.database, url=f"sqlite:///{tmp_path / 'cc.sqlite3'}"),
        http=replace(base.http, port=0), metrics=replace(base.metrics, port=0),
        ivr=replace(base.ivr, sounds_dir=tmp_path / "sounds"),
    )
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    agi_port = free_engine_port()

    project_files = lab_project_files(settings, agi_port, secrets=secrets, agi_host="127.0.0.1")

    # The safe-harbor prompt, rendered from ivr_flows/dialer.yaml, where the lab Asterisk plays it.
    build_prompts(ROOT / "ivr_flows", settings.ivr.sounds_dir)
    if isinstance(lab_factory.runtime, ChrootRuntime):
        shutil.copytree(settings.ivr.sounds_dir / "custom", lab_factory.runtime.root / "usr/local/share/asterisk/sounds",
                        dirs_exist_ok=True)
    handle = lab_factory.start(project_files=project_files, ami_credentials=(settings.ami.username, secrets.ami_secret))
    settings = replace(settings, ami=replace(settings.ami, port=handle.ami_port), agi=replace(settings.agi, port=agi_port))

    callable_zone = zone_at_local_hour(10, 19, datetime.now(UTC))
    config_path = tmp_path / "dialer.yaml"
    config_path.write_text(dialer_yaml(callable_zone), encoding="utf-8")
    log: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if str(event.get("log_namespace", "")).startswith("callcenter.dialer"):
            log.append(event)

    globalLogPublisher.addObserver(observe)
    from twisted.internet import reactor

    services = make_service(settings, reactor, lab=True, dialer_config=config_path,
                            recordings=RecordingPaths(handle.endpoints.recordings_dir, handle.recordings_dir))
    watch = Watch()
    reactor_thread.call(services.ami.subscribe, watch.on_event)
    reactor_thread.call(services.root.startService)
    try:
        reactor_thread.call(services.ami.when_connected, timeout=30)
        assert services.dialer is not None
        reactor_thread.call(lambda: services.dialer.ready, timeout=30)  # type: ignore[union-attr]
        yield DialerLab(services, reactor_thread, config_path, callable_zone, watch, log)
    finally:
        reactor_thread.call(services.root.stopService, timeout=30)
        globalLogPublisher.removeObserver(observe)
        lab_factory.stop(handle)


def _wait(what: str, predicate: Any, timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def test_a_300_lead_predictive_campaign_on_the_simulated_network(dialer_lab: DialerLab) -> None:
    """300 leads (10 DNC, 10 out of hours), 6 agents: every lead final or scheduled, the
    rules kept, abandoned calls told and counted, YAML edits applied or refused live."""
    lab = dialer_lab
    night_zone = zone_at_local_hour(22, 24, datetime.now(UTC))
    phones = [f"139{n:08d}" for n in range(10_000_001, 10_000_001 + LEADS)]
    dnc_phones, night_phones = phones[:DNC], phones[DNC:DNC + OUT_OF_HOURS]
    rows = [LeadRow(line=i + 2, phone=p, name=f"Lead {i}", timezone=night_zone if p in night_phones else None)
            for i, p in enumerate(phones)]
    now = datetime.now(UTC)
    for name, value in {"SIM_BUSY_PCT": 15, "SIM_NOANSWER_PCT": 20, "SIM_MACHINE_PCT": 15, "SIM_FAILED_PCT": 5,
                        "SIM_RING_MIN": 1, "SIM_RING_MAX": 4, "SIM_TALK_MIN": 3, "SIM_TALK_MAX": 5,
                        "SIM_MACHINE_LISTEN": 5, "LAB_TALK": 3}.items():
        lab.setvar(name, value)
    campaign_id = lab.campaign_id
    imported = lab.run(store.import_leads, campaign_id, rows, list_name="lab", source_file="lab.csv",
                       actor="test", now=now)
    assert imported.rows_ok == LEADS
    # Numbers put on the DNC list after the import: the dialer must check before each dial.
    assert lab.run(store.add_dnc, dnc_phones, source="test", reason="asked not to be called", now=now) == DNC
    dialer = lab.services.dialer
    engine = lab.services.engine
    assert dialer is not None
    for agent in AGENTS:
        lab.rt.call(engine.agent_service.login, agent, timeout=20)
    _wait("the six agents in the outbound queue",
          lambda: lab.status().agents_ready + lab.status().agents_busy == len(AGENTS), timeout=20)

    # Predictive pacing for a while, then a live edit to a fixed ratio of 3 with every
    # called party a person: more calls in flight than agents within seconds (and abandons).
    _wait("the first answered calls", lambda: lab.status().outcomes.get("human", 0) >= 10, timeout=120)
    for name in ("SIM_BUSY_PCT", "SIM_NOANSWER_PCT", "SIM_MACHINE_PCT", "SIM_FAILED_PCT"):
        lab.setvar(name, 0)
    edited_at = time.monotonic()
    _edit(lab.config_path, dialer_yaml(lab.callable_zone, pacer="fixed", fixed_ratio=3.0))
    _wait("the fixed-ratio pacer", lambda: lab.status().pacer == "fixed", timeout=10)
    applied_after = time.monotonic() - edited_at
    _wait("more calls in flight than agents", lambda: lab.status().in_flight > len(AGENTS), timeout=15, every=0.2)
    print(f"\ndialer.yaml edit applied after {applied_after:.1f} s")
    assert any("dialer.config_reloaded" in str(e.get("log_format", "")) for e in lab.log)

    # An invalid edit: rejected with the file and line, the fixed ratio stays in use.
    _edit(lab.config_path, dialer_yaml(lab.callable_zone, pacer="fixed", fixed_ratio=3.0, max_ratio="0.5"))
    _wait("the rejection in the log", lambda: any("dialer.config_rejected" in str(e.get("log_format", ""))
                                                  for e in lab.log), timeout=10)
    rejected = next(e for e in lab.log if "dialer.config_rejected" in str(e.get("log_format", "")))
    assert "max_ratio" in str(rejected) and "dialer.yaml" in str(rejected)
    time.sleep(2)
    assert lab.status().pacer == "fixed"

    # The abandonment guard on the real ledger: over its limit (10% here, judged from 20 live
    # answers, read every 5 s) the campaign is held to one call per ready agent.
    _edit(lab.config_path, dialer_yaml(lab.callable_zone, pacer="fixed", fixed_ratio=3.0,
                                       guard="{limit: 0.1, min_live_answers: 20, check_seconds: 5}"))
    _wait("the abandonment guard engaged", lambda: bool(lab.status().abandon_guard), timeout=90)
    reason = lab.status().abandon_guard
    print(f"abandonment guard engaged: {reason}")
    assert reason.startswith("today: ") and "> 10.00%" in reason
    assert any("dialer.abandon_guard_engaged" in str(e.get("log_format", "")) for e in lab.log)
    _wait("no more calls in flight than agents", lambda: lab.status().in_flight <= len(AGENTS), timeout=60)
    for _ in range(10):  # one call per ready agent, though the fixed ratio of 3 is configured
        time.sleep(0.5)
        assert lab.status().in_flight <= len(AGENTS)

    # Back to predictive pacing and the mixed network until the campaign has dialed everything it may.
    for name, value in {"SIM_BUSY_PCT": 15, "SIM_NOANSWER_PCT": 20, "SIM_MACHINE_PCT": 15,
                        "SIM_FAILED_PCT": 5}.items():
        lab.setvar(name, value)
    _edit(lab.config_path, dialer_yaml(lab.callable_zone, guard="{enabled: false}"))
    _wait("predictive pacing again", lambda: lab.status().pacer == "predictive", timeout=10)
    _wait("the guard released (disabled)", lambda: not lab.status().abandon_guard, timeout=10)
    assert any("dialer.abandon_guard_released" in str(e.get("log_format", "")) for e in lab.log)

    def finished() -> bool:
        progress = lab.run(store.campaign_progress, campaign_id)
        return progress.leads_by_state.get("new", 0) <= OUT_OF_HOURS and progress.in_flight == 0 \
            and lab.status().in_flight == 0
    _wait("every dialable lead dialed and ended", finished, timeout=420, every=2)

    progress = lab.run(store.campaign_progress, campaign_id)
    attempts = lab.run(store.list_attempts, campaign_id, limit=1000)
    by_phone: dict[str, list[Any]] = defaultdict(list)
    for attempt in attempts:
        by_phone[attempt.phone].append(attempt)
    print(f"leads by state {dict(progress.leads_by_state)}, final {dict(progress.leads_by_final)}, "
          f"attempts {dict(progress.attempts_by_outcome)}")

    # Every lead: final, or a retry scheduled; every attempt has an outcome.
    stuck = [(lead.id, lead.phone, lead.attempts, [(a.id, a.outcome, a.detail) for a in by_phone.get(lead.phone, [])])
             for lead in lab.run(_all_leads, campaign_id) if lead.state == "dialing"]
    failures = [e for e in lab.log if "failed" in str(e.get("log_format", ""))]
    assert not stuck, f"leads still dialing: {stuck}; dialer failures logged: {failures[:5]}"
    assert {state for state, count in progress.leads_by_state.items() if count} <= {"done", "retry", "new"}
    assert all(a.outcome is not None for a in attempts)
    for phone in phones:
        lead_attempts = by_phone.get(phone, [])
        if phone in dnc_phones or phone in night_phones:
            assert not lead_attempts, f"{phone} was dialed"
        else:
            assert lead_attempts, f"{phone} was never dialed"
    leads = {lead.phone: lead for lead in lab.run(_all_leads, campaign_id)}
    assert all(leads[p].final_outcome == "dnc" and leads[p].attempts == 0 for p in dnc_phones)
    for phone in night_phones:
        lead = leads[phone]
        assert lead.attempts == 0 and lead.next_attempt_at is not None and lead.next_attempt_at > now
    for phone, lead in leads.items():
        if phone in dnc_phones or phone in night_phones:
            continue
        assert lead.state in ("done", "retry"), (phone, lead.state)
        if lead.state == "retry":
            assert lead.next_attempt_at is not None and lead.next_attempt_at > now

    # The network never saw those numbers, nor any number twice at once.
    assert not lab.watch.dialed & set(dnc_phones) and not lab.watch.dialed & set(night_phones)
    assert not lab.watch.overlaps, f"rung twice at once: {lab.watch.overlaps}"

    # Abandoned calls: told (the safe-harbor prompt played on their channel) and in the ledger.
    abandoned = [a for a in attempts if a.outcome == "abandoned"]
    assert abandoned, "the fixed ratio of 3 with only people answering should have abandoned calls"
    untold = [a.uniqueid for a in abandoned if a.uniqueid not in lab.watch.safe_harbor]
    assert not untold, f"abandoned without the safe-harbor message: {untold}"
    tz = zone(lab.callable_zone)
    ledger = lab.run(store.abandon_ledger, campaign_id, day=datetime.now(tz).date(), tz=tz)
    assert ledger.abandoned == len(abandoned)
    assert ledger.live_answers == len(abandoned) + sum(1 for a in attempts if a.outcome == "human")

    # Each conversation is a call record (outbound): the lead's number and name, the agent, a ticket.
    engine_repo = lab.services.engine.repository
    assert engine_repo is not None
    _wait("the call records of the last conversations",
          lambda: lab.rt.call(lambda: lab.services.engine.writes_pending) == 0, timeout=20)
    records = [r for r in lab.rt.call(engine_repo.list_recent_call_records, limit=1000, queue="outbound")
               if r.direction == "outbound"]
    humans = [a for a in attempts if a.outcome == "human"]
    assert len(records) == len(humans)
    assert {r.phone for r in records} == {a.phone for a in humans}
    assert all(r.agent_id in AGENTS and r.customer_name and r.ticket_number for r in records)
    assert len({r.ticket_number for r in records}) == len(records)

    # Answer (AMD verdict) -> agent bridged latency.
    latencies = [a.connect_seconds for a in attempts if a.outcome == "human" and a.connect_seconds is not None]
    assert len(latencies) >= 20
    p95 = _p95(latencies)
    print(f"answer -> agent bridged: n={len(latencies)} p50={sorted(latencies)[len(latencies) // 2]:.3f} "
          f"p95={p95:.3f} s max={max(latencies):.3f} s; abandoned {len(abandoned)} of {ledger.live_answers} live "
          f"answers ({ledger.rate:.1%}, fixed-ratio phase included)")
    assert p95 < 2.0


def _all_leads(session: Any, campaign_id: int) -> list[Any]:
    from sqlalchemy import select

    from callcenter.storage import models

    ids = session.scalars(select(models.Lead.id).where(models.Lead.campaign_id == campaign_id)).all()
    return [store.get_lead(session, i) for i in ids]


def test_a_preview_campaign_rings_the_agent_then_the_lead(dialer_lab: DialerLab) -> None:
    """Preview on the real Asterisk: the agent is given a lead, dials it from their own phone;
    a person answering is a conversation with that agent (attempt and call record), a busy
    number is a busy attempt with a retry scheduled."""
    lab = dialer_lab
    dialer = lab.services.dialer
    assert dialer is not None
    lab.setvar("LAB_TALK", 20)  # the Local agent stays on the line while the lead rings and talks
    lab.setvar("SIM_TALK_MIN", 3)
    lab.setvar("SIM_TALK_MAX", 4)
    campaign_id = lab.id_of(PREVIEW)
    rows = [LeadRow(line=2, phone="19900030001", name="Preview Person"),
            LeadRow(line=3, phone="19900010001", name="Preview Busy")]
    lab.run(store.import_leads, campaign_id, rows, list_name="preview", source_file="preview.csv", actor="test",
            now=datetime.now(UTC))
    for phone, outcome in (("19900030001", "human"), ("19900010001", "busy")):
        lead = lab.rt.call(dialer.preview_next, "2103", PREVIEW)
        assert lead is not None and lead.phone == phone
        lab.rt.call(dialer.preview_dial, "2103", timeout=40)

        def ended(attempt_id: int = lead.attempt_id) -> bool:
            return any(a.id == attempt_id and a.outcome for a in lab.run(store.list_attempts, campaign_id))
        _wait(f"the preview call to {phone}", ended, timeout=60)
        attempt = next(a for a in lab.run(store.list_attempts, campaign_id) if a.id == lead.attempt_id)
        assert attempt.outcome == outcome, attempt
        if outcome == "human":
            assert attempt.agent_id == "2103" and attempt.talk_seconds is not None and attempt.talk_seconds >= 2
        time.sleep(2)
    assert lab.rt.call(dialer.preview_next, "2103", PREVIEW) is None  # nothing more is due
    engine_repo = lab.services.engine.repository
    assert engine_repo is not None
    _wait("the call record", lambda: lab.rt.call(lambda: lab.services.engine.writes_pending) == 0, timeout=20)
    records = [r for r in lab.rt.call(engine_repo.list_recent_call_records, limit=10) if r.direction == "outbound"]
    assert [(r.phone, r.agent_id, r.customer_name) for r in records] == [("19900030001", "2103", "Preview Person")]


def test_a_preview_call_is_handed_to_a_colleague_after_a_consult(dialer_lab: DialerLab) -> None:
    """The agent of a preview call consults a colleague (the engine's Atxfer: the preview
    Dial lets the agent's side transfer, T) and hands the lead over: the call record is the
    colleague's, with the hop."""
    lab = dialer_lab
    dialer, engine = lab.services.dialer, lab.services.engine
    assert dialer is not None and engine.repository is not None
    for name, value in (("LAB_TALK", 60), ("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1), ("SIM_TALK_MIN", 30),
                        ("SIM_TALK_MAX", 30)):
        lab.setvar(name, value)
    campaign_id = lab.id_of(PREVIEW)
    lab.run(store.import_leads, campaign_id, [LeadRow(line=2, phone="19900030002", name="Consult Person")],
            list_name="consult", source_file="consult.csv", actor="test", now=datetime.now(UTC))
    for agent in ("2103", "2104"):  # 2103 on the board (a preview call makes them busy), 2104 to consult
        lab.rt.call(engine.agent_service.login, agent, timeout=20)
        _wait(f"{agent} ready", lambda a=agent: lab.rt.call(lambda: engine.agents.state_of(a).value) == "ready",
              timeout=15)
    lead = lab.rt.call(dialer.preview_next, "2103", PREVIEW)
    assert lead is not None and lead.phone == "19900030002"
    lab.rt.call(dialer.preview_dial, "2103", timeout=40)
    _wait("2103 on the preview call", lambda: lab.rt.call(lambda: engine.agents.state_of("2103").value) == "on_call",
          timeout=20)
    time.sleep(4)  # the lead answers after a second and says hello
    lab.rt.call(engine.agent_service.consult, "2103", "2104", timeout=10)

    def answered() -> bool:
        leg = consult_leg("2103", engine.calls.channels.values())
        return leg is not None and leg.answered
    _wait("2104 answering the consult", lambda: lab.rt.call(answered), timeout=20)
    time.sleep(1)
    lab.rt.call(engine.agent_service.complete_consult, "2103", timeout=10)
    _wait("the call record", lambda: lab.rt.call(lambda: engine.records_written >= 1
                                                 and engine.writes_pending == 0), timeout=60)
    records = [r for r in lab.rt.call(engine.repository.list_recent_call_records, limit=10) if r.direction == "outbound"]
    assert [(r.phone, r.agent_id) for r in records] == [("19900030002", "2104")], records
    (hop_text,) = records[0].transfers
    assert parse_hop(hop_text)[:2] == ("2103", "agent:2104")


def test_a_handout_agent_campaign_dials_only_the_leads_of_agents_logged_in(dialer_lab: DialerLab) -> None:
    """IT gives team1 8 of 12 leads; its lead gives 4 to 2103 and 4 to 2105. With 2103 and 2104
    logged in, the real calls go to 2103's numbers only (busy lines: each ends at once)."""
    lab = dialer_lab
    campaign_id = lab.id_of(OWNED)
    phones = [f"1990001{n:04d}" for n in range(1, 13)]  # the simulated network's busy lines
    now = datetime.now(UTC)
    imported = lab.run(store.import_leads, campaign_id, [LeadRow(line=i + 2, phone=p) for i, p in enumerate(phones)],
                       list_name="owned", source_file="owned.csv", actor="test", now=now)
    assert lab.run(store.hand_out_to_team, campaign_id, "team1", 8, list_id=imported.list_id, actor="9001",
                   now=now) == 8
    assert lab.run(store.hand_out_to_agents, campaign_id, "team1", {"2103": 4, "2105": 4}, actor="8001",
                   now=now) == {"2103": 4, "2105": 4}
    mine, theirs, pool = phones[:4], phones[4:8], phones[8:]
    engine = lab.services.engine
    for agent in ("2103", "2104"):
        lab.rt.call(engine.agent_service.login, agent, timeout=20)

    def attempted() -> dict[str, str | None]:
        with_outcome = {a.phone: a.outcome for a in lab.run(store.list_attempts, campaign_id, limit=100)}
        return with_outcome

    _wait("an ended attempt to each of 2103's leads", lambda: all(attempted().get(p) for p in mine), timeout=60)
    time.sleep(3)  # a few more ticks: nothing else may be dialed
    assert {phone: outcome for phone, outcome in attempted().items()} == dict.fromkeys(mine, "busy")
    assert lab.watch.dialed.isdisjoint(theirs + pool)
    assert set(mine) <= lab.watch.dialed  # the calls were real: Asterisk saw each one
    holdings = {(h.team, h.agent_id): (h.waiting, h.dialing, h.done) for h in lab.run(store.lead_holdings, campaign_id)}
    assert holdings == {(None, None): (4, 0, 0), ("team1", "2103"): (4, 0, 0), ("team1", "2105"): (4, 0, 0)}


def test_a_route_team_campaign_connects_each_teams_leads_to_that_teams_agents(dialer_lab: DialerLab) -> None:
    """Team1 and team2 get 4 answering leads each; 2103 (team1) and 2203 (team2) log in. Every
    call is a conversation with the agent of the lead's team, connected in that team's queue
    (in the pooled queue either agent could have taken any of them)."""
    lab = dialer_lab
    campaign_id = lab.id_of(TEAMS)
    for name, value in {"SIM_RING_MIN": 1, "SIM_RING_MAX": 2, "SIM_TALK_MIN": 2, "SIM_TALK_MAX": 3,
                        "LAB_TALK": 2}.items():
        lab.setvar(name, value)
    team1 = [f"1990003{n:04d}" for n in range(1, 5)]  # the simulated network's people
    team2 = [f"1990003{n:04d}" for n in range(5, 9)]
    now = datetime.now(UTC)
    imported = lab.run(store.import_leads, campaign_id, [LeadRow(line=i + 2, phone=p) for i, p in enumerate(team1 + team2)],
                       list_name="teams", source_file="teams.csv", actor="test", now=now)
    assert imported.rows_ok == 8
    assert lab.run(store.hand_out_to_team, campaign_id, "team1", 4, list_id=imported.list_id, actor="9001", now=now) == 4
    assert lab.run(store.hand_out_to_team, campaign_id, "team2", 4, list_id=imported.list_id, actor="9001", now=now) == 4
    engine = lab.services.engine
    for agent in ("2103", "2203"):
        lab.rt.call(engine.agent_service.login, agent, timeout=20)

    def ended() -> dict[str, tuple[str | None, str | None]]:
        return {a.phone: (a.outcome, a.agent_id) for a in lab.run(store.list_attempts, campaign_id, limit=100)
                if a.outcome is not None}

    _wait("a conversation with each of the 8 leads", lambda: len(ended()) == 8, timeout=120)
    assert ended() == {**{p: ("human", "2103") for p in team1}, **{p: ("human", "2203") for p in team2}}
    assert sorted(set(lab.watch.connects)) == [("outbound-team1", "Local/2103@lab-agents/n"),
                                               ("outbound-team2", "Local/2203@lab-agents/n")]


def test_auto_dial_calls_a_ready_agents_own_leads_one_after_the_other(dialer_lab: DialerLab) -> None:
    """2103 holds three leads (a person, a busy line, a person), 2105 one; 2103 logs in and clicks
    nothing: each of 2103's leads is called from 2103's phone in turn, 3 s of readiness apart, the
    people talk to 2103; 2105's lead (2105 is not logged in) is not dialed."""
    lab = dialer_lab
    campaign_id = lab.id_of(AUTO)
    for name, value in {"SIM_RING_MIN": 1, "SIM_RING_MAX": 2, "SIM_TALK_MIN": 2, "SIM_TALK_MAX": 3,
                        "LAB_TALK": 8}.items():
        lab.setvar(name, value)
    mine = ["19900030011", "19900010011", "19900030012"]
    theirs = "19900030013"
    now = datetime.now(UTC)
    imported = lab.run(store.import_leads, campaign_id,
                       [LeadRow(line=i + 2, phone=p, name=f"Auto {i}") for i, p in enumerate([*mine, theirs])],
                       list_name="auto", source_file="auto.csv", actor="test", now=now)
    assert lab.run(store.hand_out_to_team, campaign_id, "team1", 4, list_id=imported.list_id, actor="9001",
                   now=now) == 4
    assert lab.run(store.hand_out_to_agents, campaign_id, "team1", {"2103": 3, "2105": 1}, actor="8001",
                   now=now) == {"2103": 3, "2105": 1}
    lab.rt.call(lab.services.engine.agent_service.login, "2103", ["outbound"], timeout=20)

    def attempts() -> list[Any]:
        return sorted(lab.run(store.list_attempts, campaign_id, limit=100), key=lambda a: a.id)

    _wait("an ended attempt to each of 2103's leads", lambda: sum(1 for a in attempts() if a.outcome) == 3,
          timeout=150)
    done = attempts()
    assert [(a.phone, a.outcome, a.agent_id) for a in done] == [
        ("19900030011", "human", "2103"), ("19900010011", "busy", "2103"), ("19900030012", "human", "2103")]
    for earlier, later in pairwise(done):  # one at a time, after the last one ended
        assert earlier.ended_at is not None and later.started_at >= earlier.ended_at, (earlier, later)
    time.sleep(5)
    assert theirs not in lab.watch.dialed and len(attempts()) == 3
    assert set(mine) <= lab.watch.dialed


def test_a_restarted_dialer_adopts_the_conversation_the_earlier_one_placed(dialer_lab: DialerLab) -> None:
    """The dialer's call to a person is talking with 2103 when the dialer restarts (stopped,
    then a new one on the same AMI session and database). The new dialer finds the call in
    Asterisk's channels, in a bridge with 2103's phone, and tracks it: when it hangs up the
    attempt is a conversation with 2103 and the lead is done (before: the stop recorded it as
    failed and the lead was called again within the hour)."""
    lab = dialer_lab
    old = lab.services.dialer
    assert old is not None
    for name, value in {"SIM_BUSY_PCT": 0, "SIM_NOANSWER_PCT": 0, "SIM_MACHINE_PCT": 0, "SIM_FAILED_PCT": 0,
                        "SIM_RING_MIN": 1, "SIM_RING_MAX": 1, "SIM_TALK_MIN": 20, "SIM_TALK_MAX": 20,
                        "LAB_TALK": 40}.items():
        lab.setvar(name, value)
    campaign_id = lab.campaign_id
    lab.run(store.import_leads, campaign_id, [LeadRow(line=2, phone="19900030077", name="Restart Person")],
            list_name="restart", source_file="restart.csv", actor="test", now=datetime.now(UTC))
    lab.rt.call(lab.services.engine.agent_service.login, "2103", timeout=20)

    def talking() -> bool:
        return any(d.connected_at is not None for d in old.book.dials())
    _wait("the call talking with 2103", lambda: lab.rt.call(talking), timeout=60, every=0.2)
    lab.rt.call(old.stopService, timeout=30)
    assert [a.outcome for a in lab.run(store.list_attempts, campaign_id)] == [None]  # left for the next start

    new = _restarted(lab)
    try:
        lab.rt.call(lambda: new.ready, timeout=30)
        _wait("the call adopted", lambda: lab.rt.call(lambda: len(new.book)) == 1, timeout=20, every=0.2)
        (dial,) = lab.rt.call(new.book.dials)
        assert dial.adopted and dial.agent == "2103" and dial.connected_at is not None, dial
        assert any(e.get("log_format", "").startswith("dialer.call_adopted") for e in lab.log)

        def ended() -> list[Any]:
            return [a for a in lab.run(store.list_attempts, campaign_id) if a.outcome is not None]
        _wait("the adopted call's end", lambda: bool(ended()), timeout=60)
        (attempt,) = ended()
        assert (attempt.outcome, attempt.agent_id) == ("human", "2103"), attempt
        assert attempt.talk_seconds is not None and attempt.talk_seconds > 0
        lead = lab.run(store.get_lead, attempt.lead_id)
        assert (lead.state, lead.final_outcome) == ("done", "human")
    finally:
        lab.rt.call(new.stopService, timeout=30)


def _restarted(lab: DialerLab, *, crash: bool = False) -> Any:
    """Stop the lab's dialer and start a new one on the same AMI session and database.

    ``crash``: the old one dies instead, forgetting its calls at once (a graceful stop waits
    for the answers to its Originates and records those, as a process that exits would).
    """
    from prometheus_client import CollectorRegistry

    from callcenter.dialer.calls import DialBook
    from callcenter.dialer.service import DialerMetrics, DialerService

    old = lab.services.dialer
    assert old is not None
    if crash:
        def die() -> None:
            old.stopService()
            old.book = DialBook()  # an Originate's late answer finds nothing to end
        lab.rt.call(die)
    elif old.running:
        lab.rt.call(old.stopService, timeout=30)
    new = DialerService(
        old.config, ami=old.ami, repository=old.repository, agents=old.agents, clock=old.clock,
        metrics=DialerMetrics(CollectorRegistry()), trunk=old.trunk, wrapup_seconds=old.wrapup_seconds,
        agent_channel=old.agent_channel, on_conversation=old.on_conversation, people=old.people,
        team_queues=old.team_queues)
    lab.rt.call(new.startService)
    return new


def test_a_restarted_dialer_ends_a_ringing_call_of_the_earlier_one_by_its_originate_response(
        dialer_lab: DialerLab) -> None:
    """The dialer dies while its call to a number nobody answers rings. The new dialer
    adopts the ringing call, and Asterisk's OriginateResponse for it (broadcast to every AMI
    session, with the call's Uniqueid) ends it as no answer at the ring timeout (15 s), not
    as failed at the ring limit (35 s), nor as failed at the start."""
    lab = dialer_lab
    old = lab.services.dialer
    assert old is not None
    campaign_id = lab.campaign_id
    lab.run(store.import_leads, campaign_id, [LeadRow(line=2, phone="19900020077")],
            list_name="restart-ring", source_file="restart-ring.csv", actor="test", now=datetime.now(UTC))
    lab.rt.call(lab.services.engine.agent_service.login, "2103", timeout=20)
    _wait("the call ringing", lambda: lab.rt.call(lambda: len(old.book)) == 1, timeout=30, every=0.2)
    new = _restarted(lab, crash=True)
    try:
        lab.rt.call(lambda: new.ready, timeout=30)
        _wait("the call adopted", lambda: lab.rt.call(lambda: len(new.book)) == 1, timeout=10, every=0.2)
        (dial,) = lab.rt.call(new.book.dials)
        assert dial.adopted and not dial.answered, dial

        def ended() -> list[Any]:
            return [a for a in lab.run(store.list_attempts, campaign_id) if a.outcome is not None]
        _wait("the adopted call's end", lambda: bool(ended()), timeout=30)
        (attempt,) = ended()
        assert attempt.outcome == "noanswer", attempt
        lead = lab.run(store.get_lead, attempt.lead_id)
        assert lead.state == "retry"
    finally:
        lab.rt.call(new.stopService, timeout=30)


def test_a_restarted_dialer_adopts_a_preview_call_on_the_agents_phone(dialer_lab: DialerLab) -> None:
    """2103 previews a lead and dials it: their phone rings first, then the lead, who talks.
    The dialer dies during the call; the new one adopts it as 2103's (the call's channel is
    2103's phone), placed when the channel was made (not when the lead was offered), and its
    end is a conversation with 2103."""
    lab = dialer_lab
    old = lab.services.dialer
    assert old is not None
    for name, value in {"LAB_TALK": 40, "SIM_RING_MIN": 1, "SIM_RING_MAX": 1, "SIM_TALK_MIN": 15,
                        "SIM_TALK_MAX": 15}.items():
        lab.setvar(name, value)
    campaign_id = lab.id_of(PREVIEW)
    lab.run(store.import_leads, campaign_id, [LeadRow(line=2, phone="19900030078", name="Preview Restart")],
            list_name="preview-restart", source_file="preview-restart.csv", actor="test", now=datetime.now(UTC))
    lead = lab.rt.call(old.preview_next, "2103", PREVIEW)
    assert lead is not None and lead.phone == "19900030078"
    time.sleep(12)  # the lead on the agent's screen a while before the click
    lab.rt.call(old.preview_dial, "2103", timeout=40)
    _wait("the preview call talking", lambda: lab.rt.call(lambda: any(d.connected_at is not None
                                                                      for d in old.book.dials())),
          timeout=30, every=0.2)
    new = _restarted(lab, crash=True)
    try:
        lab.rt.call(lambda: new.ready, timeout=30)
        _wait("the call adopted", lambda: lab.rt.call(lambda: len(new.book)) == 1, timeout=10, every=0.2)
        (dial,) = lab.rt.call(new.book.dials)
        assert dial.adopted and dial.to_agent and dial.agent == "2103", dial
        assert lab.rt.call(new.clock.seconds) - dial.placed_at < 10, dial  # the call's age, not the offer's (12 s+)

        def ended() -> list[Any]:
            return [a for a in lab.run(store.list_attempts, campaign_id) if a.outcome is not None]
        _wait("the adopted call's end", lambda: bool(ended()), timeout=60)
        (attempt,) = ended()
        assert (attempt.outcome, attempt.agent_id) == ("human", "2103"), attempt
    finally:
        lab.rt.call(new.stopService, timeout=30)
