"""The dialer's telephony on the real Asterisk 22: sim-pstn calls through ``[dialer-answered]``.

The lab instance runs the project's rendered files (``dialplans/dialer.conf`` and the lab's
``dialplans/lab/sim-pstn.conf`` included, the ``outbound`` queue from
``config/queues.yaml``). Calls are originated the way the DialerService does it (the
contract in ``docs/dialer-telephony.md``): ``Local/<number>@sim-pstn`` into
``dialer-answered,s,1`` with a pre-assigned ``ChannelId`` and the ``CC_*`` variables, by
the project's :class:`~callcenter.ami.client.AmiClient` on the reactor thread. Agents are
Local channels (``Local/<ID>@lab-agents/n``, state ``Custom:agent<ID>``). The dialer's
prompts are rendered from ``ivr_flows/dialer.yaml`` and published into the lab's sounds
under a name unique to the test session. Times between events are read from Asterisk's
own event ``Timestamp`` headers.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from twisted.internet.endpoints import TCP4ClientEndpoint

from callcenter.agents import LAB_INTERFACES
from callcenter.ami import actions
from callcenter.ami.client import AmiClient, AmiCredentials
from callcenter.ami.codec import Message
from callcenter.cli import lab_project_files
from callcenter.prompts import build_prompts
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import Settings, load_settings
from tests.labfixture import LabFactory, LabHandle, need_prompt_tools
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
# Unique per test session: several sessions share one root file system (and its sounds).
PROMPT_DIR = f"dialer-test{os.getpid()}"
SAFE_HARBOR_ZH = f"custom/{PROMPT_DIR}/safe_harbor-zh"
SAFE_HARBOR_EN = f"custom/{PROMPT_DIR}/safe_harbor-en"
MACHINE_EN = f"custom/{PROMPT_DIR}/machine-en"

BUSY, NO_ANSWER, HUMAN, MACHINE, CONGESTION, HANGS_UP = (
    "1990001001", "1990002001", "1990003001", "1990004001", "1990005001", "1990006001")


@dataclass
class DialerLab:
    handle: LabHandle
    settings: Settings
    credentials: AmiCredentials

    @property
    def outbound_sets_interface_var(self) -> bool:
        """Whether the rendered ``[outbound]`` queue sets MEMBERINTERFACE on the caller."""
        text = self.handle.files["queues.conf"]
        section = text[text.index("[outbound]"):]
        section = section[: section.find("\n[", 1)] if "\n[" in section[1:] else section
        return "setinterfacevar = yes" in section


@pytest.fixture(scope="module")
def dialer_lab(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DialerLab]:
    """One lab instance with the project's rendered files (lab contexts included)."""
    settings = load_settings(ROOT / "config")
    secrets = load_or_create_secrets(tmp_path_factory.mktemp("state"), [a.id for a in settings.agents])

    project_files = lab_project_files(settings, 1, secrets=secrets, agi_host="127.0.0.1")

    handle = lab_factory.start(project_files=project_files,
                               ami_credentials=(settings.ami.username, secrets.ami_secret))
    try:
        yield DialerLab(handle, settings, AmiCredentials(settings.ami.username, secrets.ami_secret))
    finally:
        lab_factory.stop(handle)


@pytest.fixture(scope="module")
def dialer_prompts(dialer_lab: DialerLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The prompts of ivr_flows/dialer.yaml, rendered and playable as custom/PROMPT_DIR/..."""
    need_prompt_tools()
    work = tmp_path_factory.mktemp("dialer-prompts")
    (work / "flows").mkdir()
    shutil.copy(ROOT / "ivr_flows" / "dialer.yaml", work / "flows" / "dialer.yaml")
    report = build_prompts(work / "flows", work / "sounds")
    assert sorted(s.prompt.playback_name for s in report.rendered if not s.prompt.asterisk_sound) == [
        "custom/dialer/machine-en", "custom/dialer/machine-zh",
        "custom/dialer/safe_harbor-en", "custom/dialer/safe_harbor-zh"]
    instance = dialer_lab.handle.instance
    target = instance.runtime.host_path(f"{instance.directories.data}/sounds/custom") / PROMPT_DIR
    shutil.copytree(work / "sounds" / "custom" / "dialer", target)
    try:
        yield
    finally:
        shutil.rmtree(target, ignore_errors=True)


@dataclass
class Wire:
    """The AMI client on the reactor and every event it received (reactor thread only)."""

    client: AmiClient
    events: list[Message] = field(default_factory=list)

    def of(self, uniqueid: str) -> list[Message]:
        return [m for m in self.events if m.get("Uniqueid") == uniqueid]

    def user_events(self, uniqueid: str, kind: str) -> list[Message]:
        return [m for m in self.of(uniqueid) if m.name == "UserEvent" and m.get("UserEvent") == kind]

    def hung_up(self, uniqueid: str) -> bool:
        return any(m.name == "Hangup" for m in self.of(uniqueid))


@pytest.fixture(scope="module")
def wire(reactor_thread: ReactorThread, dialer_lab: DialerLab) -> Iterator[Wire]:
    """A connected AmiClient collecting every event; sim-pstn answers after 1 s of ringing."""
    rt = reactor_thread

    def build() -> Wire:
        endpoint = TCP4ClientEndpoint(rt.reactor, dialer_lab.handle.ami_host, dialer_lab.handle.ami_port, timeout=5)
        client = AmiClient(endpoint, dialer_lab.credentials, rt.clock, retry_policy=lambda attempt: 0.25,
                           action_timeout=10.0)
        built = Wire(client)
        client.subscribe(built.events.append)
        client.startService()
        return built

    built: Wire = rt.call(build)
    try:
        rt.call(built.client.when_connected, timeout=20)
        for name, value in (("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1)):
            rt.call(built.client.send, actions.setvar(name, value))
        yield built
    finally:
        rt.call(built.client.stopService, timeout=10)


_attempts = itertools.count(7001)


def _set_talk(rt: ReactorThread, wire: Wire, seconds: int) -> None:
    """How long the sim-pstn's humans stay on the line after their greeting."""
    for name in ("SIM_TALK_MIN", "SIM_TALK_MAX"):
        rt.call(wire.client.send, actions.setvar(name, seconds))


def _dial(rt: ReactorThread, wire: Wire, number: str, *, ring_timeout_ms: int = 20000,
          **variables: object) -> tuple[str, str, Message]:
    """Originate as the DialerService does; return (channel id, attempt id, OriginateResponse)."""
    channel_id = f"dialer-test-{uuid.uuid4().hex[:16]}"
    attempt = str(next(_attempts))
    chosen: dict[str, object] = {
        "CC_CAMPAIGN": "901", "CC_LEAD": f"5{attempt}", "CC_ATTEMPT": attempt, "CC_QUEUE": "outbound",
        "CC_CONNECT_TIMEOUT": 2, "CC_MACHINE_ACTION": "hangup", "CC_MACHINE_MESSAGE": "",
        "CC_SAFE_HARBOR": SAFE_HARBOR_ZH, "CC_AMD": 1,
    }
    chosen.update(variables)
    action = actions.originate(
        f"Local/{number}@sim-pstn", context="dialer-answered", exten="s", priority=1,
        caller_id="Dialer test <4008001234>", timeout_ms=ring_timeout_ms, variables=chosen,
        channel_id=channel_id)
    response: Message = rt.call(wire.client.originate, action, timeout=ring_timeout_ms / 1000 + 15)
    return channel_id, attempt, response


def _finish(rt: ReactorThread, wire: Wire, channel_id: str, timeout: float = 60) -> list[Message]:
    """Wait until the answered call's channel is gone; return all its events."""
    rt.wait_for(lambda: wire.hung_up(channel_id), timeout=timeout,
                message=lambda: f"{channel_id} still up; its events: {[m.get('UserEvent') or m.name for m in wire.of(channel_id)]}")
    return rt.call(wire.of, channel_id)  # type: ignore[no-any-return]


def _only(events: list[Message], kind: str) -> Message:
    found = [m for m in events if m.name == "UserEvent" and m.get("UserEvent") == kind]
    assert len(found) == 1, f"expected exactly one {kind}, got {len(found)}: {[m.fields for m in found]}"
    return found[0]


def _at(message: Message) -> float:
    """Asterisk's own time of an event (manager.conf timestampevents = yes)."""
    return float(message["Timestamp"])


def _playbacks(events: list[Message]) -> list[Message]:
    return [m for m in events if m.name == "Newexten" and m.get("Application") == "Playback"]


def _login(rt: ReactorThread, wire: Wire, agent: str, device_state: str = "NOT_INUSE") -> str:
    interface = LAB_INTERFACES.interface(agent)
    rt.call(wire.client.send, actions.command(f"devstate change {LAB_INTERFACES.state_interface(agent)} {device_state}"))
    rt.call(wire.client.send, actions.queue_add("outbound", interface, member_name=f"Agent {agent}",
                                                state_interface=LAB_INTERFACES.state_interface(agent)))
    return interface


def _logout(rt: ReactorThread, wire: Wire, agent: str) -> None:
    rt.call(wire.client.send, actions.queue_remove("outbound", LAB_INTERFACES.interface(agent)))


@pytest.mark.parametrize(("number", "ring_timeout_ms", "reason"), [
    pytest.param(BUSY, 20000, "5", id="busy"),
    pytest.param(NO_ANSWER, 3000, "3", id="no-answer"),
    pytest.param(CONGESTION, 20000, "8", id="congestion"),
    pytest.param("not-a-number", 20000, "0", id="failed"),
])
def test_unanswered_calls_end_in_the_originate_response(
    reactor_thread: ReactorThread, wire: Wire, number: str, ring_timeout_ms: int, reason: str,
) -> None:
    """An unanswered call is reported only by its OriginateResponse (Response Failure, the
    documented Reason, the pre-assigned Uniqueid) and never enters the dialer's dialplan;
    a no-answer rings until the originate Timeout."""
    rt = reactor_thread
    started = rt.reactor.seconds()
    channel_id, _attempt, response = _dial(rt, wire, number, ring_timeout_ms=ring_timeout_ms)
    elapsed = rt.reactor.seconds() - started
    assert (response.get("Response"), response.get("Reason"), response.get("Uniqueid")) == ("Failure", reason, channel_id)
    if reason == "3":
        assert elapsed >= ring_timeout_ms / 1000 - 0.5, f"gave up after {elapsed:.1f} s"
    assert rt.call(lambda: [m.get("UserEvent") for m in wire.of(channel_id) if m.name == "UserEvent"]) == []


@pytest.mark.usefixtures("dialer_prompts")
def test_machine_is_hung_up_on(reactor_thread: ReactorThread, wire: Wire) -> None:
    """An answering machine: DialerAMD says MACHINE, and with CC_MACHINE_ACTION=hangup the
    call ends at once with one DialerResult machine, no message, no queue."""
    rt = reactor_thread
    channel_id, attempt, response = _dial(rt, wire, MACHINE)
    assert response.get("Reason") == "4"
    events = _finish(rt, wire, channel_id)
    amd = _only(events, "DialerAMD")
    result = _only(events, "DialerResult")
    assert (amd.get("Attempt"), amd.get("AMDStatus")) == (attempt, "MACHINE")
    assert (result.get("Attempt"), result.get("Outcome"), result.get("AMDStatus"), result.get("Message")) == (
        attempt, "machine", "MACHINE", "")
    assert not [m for m in events if m.name == "QueueCallerJoin"]
    assert _playbacks(events) == []


@pytest.mark.usefixtures("dialer_prompts")
def test_machine_gets_the_message_after_its_beep(reactor_thread: ReactorThread, wire: Wire) -> None:
    """With CC_MACHINE_ACTION=message the dialplan waits for the silence after the
    machine's greeting and beep, plays CC_MACHINE_MESSAGE to the end (PLAYBACKSTATUS
    SUCCESS) and reports one DialerResult machine naming the message."""
    rt = reactor_thread
    channel_id, attempt, _response = _dial(rt, wire, MACHINE, CC_MACHINE_ACTION="message",
                                           CC_MACHINE_MESSAGE=MACHINE_EN)
    events = _finish(rt, wire, channel_id, timeout=90)
    amd = _only(events, "DialerAMD")
    result = _only(events, "DialerResult")
    assert amd.get("AMDStatus") == "MACHINE"
    assert (result.get("Attempt"), result.get("Outcome"), result.get("Message"), result.get("MessageStatus"),
            result.get("MachineWait")) == (attempt, "machine", MACHINE_EN, "SUCCESS", "SILENCE")
    played = _playbacks(events)
    assert [m.get("AppData") for m in played] == [MACHINE_EN]
    # the sim machine's greeting + beep last 6 s from answer: the message starts after them
    answered = _only(events, "DialerAnswered")
    assert _at(played[0]) - _at(answered) >= 6.0


def test_human_reaches_a_ready_agent_within_the_connect_timeout(
    reactor_thread: ReactorThread, wire: Wire, dialer_lab: DialerLab,
) -> None:
    """A person answers, AMD says HUMAN, and the ready agent is connected (AgentConnect for
    this Uniqueid) within CC_CONNECT_TIMEOUT of the verdict; the one DialerResult says
    human, with the agent's channel (and its member interface when the queue sets
    setinterfacevar); the whole call is recorded under RECORDINGS_DIR/YYYYMMDD/."""
    rt = reactor_thread
    _set_talk(rt, wire, 20)
    interface = _login(rt, wire, "2101")
    try:
        channel_id, attempt, _response = _dial(rt, wire, HUMAN)
        events = _finish(rt, wire, channel_id)
    finally:
        _logout(rt, wire, "2101")
    answered = _only(events, "DialerAnswered")
    amd = _only(events, "DialerAMD")
    result = _only(events, "DialerResult")
    connects = [m for m in events if m.name == "AgentConnect"]
    assert len(connects) == 1 and connects[0].get("Interface") == interface
    latency = _at(connects[0]) - _at(amd)
    print(f"\nDialerAMD -> AgentConnect: {latency * 1000:.0f} ms "
          f"(answer -> AMD verdict {_at(amd) - _at(answered):.2f} s)")
    assert 0 <= latency < 2
    assert amd.get("AMDStatus") == "HUMAN"
    assert (result.get("Attempt"), result.get("Outcome"), result.get("Stage"), result.get("AMDStatus")) == (
        attempt, "human", "connected", "HUMAN")
    assert result.get("AgentChannel") == connects[0].get("DestChannel")
    assert result.get("Agent") == (interface if dialer_lab.outbound_sets_interface_var else "")
    assert float(result["AgentConnectedAt"]) - float(result["AnsweredAt"]) >= 0
    assert _playbacks(events) == []
    day = datetime.fromtimestamp(float(result["AnsweredAt"]), UTC).strftime("%Y%m%d")
    recording = dialer_lab.handle.recordings_dir / day / f"{channel_id}.{dialer_lab.settings.recordings.format}"
    assert (result.get("Recording") or "").endswith(f"/{day}/{channel_id}.{dialer_lab.settings.recordings.format}")
    assert recording.is_file() and recording.stat().st_size > 1000, recording


def test_without_amd_every_answer_goes_to_the_queue(reactor_thread: ReactorThread, wire: Wire) -> None:
    """CC_AMD=0: no AMD runs (no DialerAMD, empty AMDStatus); the answered call goes
    straight to the queue and the ready agent."""
    rt = reactor_thread
    _set_talk(rt, wire, 20)
    interface = _login(rt, wire, "2103")
    try:
        channel_id, _attempt, _response = _dial(rt, wire, HUMAN, CC_AMD=0)
        events = _finish(rt, wire, channel_id)
    finally:
        _logout(rt, wire, "2103")
    assert [m.get("UserEvent") for m in events if m.name == "UserEvent"] == ["DialerAnswered", "DialerResult"]
    result = _only(events, "DialerResult")
    assert (result.get("Outcome"), result.get("AMDStatus")) == ("human", "")
    assert [m.get("Interface") for m in events if m.name == "AgentConnect"] == [interface]


@pytest.mark.usefixtures("dialer_prompts")
@pytest.mark.parametrize(("agent_state", "connect_timeout", "prompt"), [
    pytest.param(None, 2, SAFE_HARBOR_ZH, id="no-agent-logged-in"),
    pytest.param("INUSE", 1, SAFE_HARBOR_EN, id="all-agents-busy"),
])
def test_human_without_an_agent_hears_the_safe_harbor_message(
    reactor_thread: ReactorThread, wire: Wire, agent_state: str | None, connect_timeout: int, prompt: str,
) -> None:
    """A person with no agent free (none logged in, or all on calls) leaves the queue
    within CC_CONNECT_TIMEOUT of AMD's HUMAN verdict, hears the whole safe-harbor message,
    and the one DialerResult says abandoned with the queue's reason."""
    rt = reactor_thread
    _set_talk(rt, wire, 40)
    if agent_state is not None:
        _login(rt, wire, "2102", agent_state)
    try:
        channel_id, attempt, _response = _dial(rt, wire, HUMAN, CC_CONNECT_TIMEOUT=connect_timeout,
                                               CC_SAFE_HARBOR=prompt)
        events = _finish(rt, wire, channel_id, timeout=90)
    finally:
        if agent_state is not None:
            _logout(rt, wire, "2102")
    amd = _only(events, "DialerAMD")
    result = _only(events, "DialerResult")
    assert amd.get("AMDStatus") == "HUMAN"
    assert not [m for m in events if m.name == "AgentConnect"]
    played = _playbacks(events)
    assert [m.get("AppData") for m in played] == [prompt]
    waited = _at(played[0]) - _at(amd)
    print(f"\nDialerAMD -> safe-harbor message: {waited:.2f} s (connect timeout {connect_timeout} s)")
    assert waited <= connect_timeout + 0.5
    assert (result.get("Attempt"), result.get("Outcome"), result.get("Stage")) == (attempt, "abandoned", "safe_harbor")
    assert result.get("QueueStatus") in ("TIMEOUT", "JOINEMPTY", "LEAVEEMPTY")
    assert (result.get("Message"), result.get("MessageStatus"), result.get("Agent")) == (prompt, "SUCCESS", "")


def test_far_end_hanging_up_during_amd_gives_one_failed_result(reactor_thread: ReactorThread, wire: Wire) -> None:
    """The called party answers and hangs up while AMD listens: the call ends with exactly
    one DialerResult, outcome failed, AMDStatus HANGUP, stage amd."""
    rt = reactor_thread
    channel_id, attempt, response = _dial(rt, wire, HANGS_UP)
    assert response.get("Reason") == "4"
    events = _finish(rt, wire, channel_id)
    result = _only(events, "DialerResult")
    assert (result.get("Attempt"), result.get("Outcome"), result.get("AMDStatus"), result.get("Stage")) == (
        attempt, "failed", "HANGUP", "amd")
    assert result.get("HangupCause") == "16"
    assert not [m for m in events if m.name == "QueueCallerJoin"]
