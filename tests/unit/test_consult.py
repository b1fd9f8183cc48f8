"""Consult first (attended transfers): the pure rules, the event, the service, the engine.

``LAB_ATTENDED_TRANSFER`` is the event the lab Asterisk 22 sent when agent 1001 (a
Local-channel agent) consulted 2105 about a hotline caller and then hung up
(tests/integration/test_consult_lab.py), cut to the headers the engine reads and a few more.
When the consult leg was optimised away before the transfer completed, Asterisk left the
``TransferTarget*`` headers out (seen in the lab too): :data:`NO_TARGET` drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from callcenter.agents import AgentService, UnknownAgentError
from callcenter.ami.actions import AmiAction
from callcenter.ami.codec import Message
from callcenter.engine import Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.settings import Settings, load_settings
from callcenter.state.agents import AgentBoard, AgentState
from callcenter.state.calls import Channel, ChannelState
from callcenter.storage import repository as repo
from callcenter.transfer import (
    CONSULT_PHONE,
    REFER_CONTEXT,
    ConsultRefused,
    TransferRefused,
    check_consult_end,
    check_transfer,
    consult_actions,
    consult_leg,
    consult_outside_actions,
    hop,
    parse_attended_transfer,
    parse_hop,
)
from tests.cliapi import cli_with_fake_daemon
from tests.syncrepository import SyncRepository, in_tx
from tests.unit.test_engine import FakeAmi
from tests.unit.test_transfer import _agent, _Ami, _channel, _failure_of, _message, _wav

ROOT = Path(__file__).resolve().parents[2]

LAB_ATTENDED_TRANSFER = """\
Event: AttendedTransfer
Privilege: call,all
Result: Success
OrigTransfererChannel: Local/1001@lab-agents-00000001;1
OrigTransfererContext: lab-agents
OrigTransfererUniqueid: 1796588390.2
OrigTransfererLinkedid: 1796588384.0
OrigBridgeUniqueid: 486ae01b-4a4c-49a0-a194-ed4a7c630288
SecondTransfererChannel: Local/1001@lab-agents-00000001;1
SecondTransfererUniqueid: 1796588390.2
SecondBridgeUniqueid: 25e06236-0b9a-4c26-a090-29bb1c35b9d5
TransfereeChannel: Local/400@from-pstn-00000000;2
TransfereeContext: hotline
TransfereeUniqueid: 1796588384.1
TransfereeLinkedid: 1796588384.0
TransferTargetChannel: Local/2105@cc-transfer-refer-00000002;1
TransferTargetContext: cc-transfer-refer
TransferTargetExten: 2105
TransferTargetUniqueid: 1796588396.4
TransferTargetLinkedid: 1796588384.0
IsExternal: No
DestType: Bridge
DestBridgeUniqueid: 486ae01b-4a4c-49a0-a194-ed4a7c630288"""

NO_TARGET = "\n".join(line for line in LAB_ATTENDED_TRANSFER.splitlines() if not line.startswith("TransferTarget"))
AGENTS = {"1001", "2101", "2105"}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "config")


# ------------------------------------------------------------------------------- pure


def test_the_lab_asterisks_event_reads_as_a_hop_to_the_consulted_agent() -> None:
    transfer = parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER), AGENTS)
    assert transfer is not None
    assert (transfer.ok, transfer.agent_id, transfer.target, transfer.linkedid, transfer.transferee_uniqueid,
            transfer.transferee_channel) == (True, "1001", "agent:2105", "1796588384.0", "1796588384.1",
                                             "Local/400@from-pstn-00000000;2")


def test_other_attended_transfers_are_read_too() -> None:
    # without the target headers: the engine names the colleague the consult leg rang
    bare = parse_attended_transfer(_message(NO_TARGET), AGENTS)
    assert bare is not None and (bare.ok, bare.target) == (True, "")
    # a softphone that called the colleague itself and transferred (REFER with Replaces)
    phone = parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER, TransferTargetChannel="PJSIP/agent2105-0000000b",
                                             TransferTargetContext="from-agents", TransferTargetExten=""), AGENTS)
    assert phone is not None and phone.target == "agent:2105"
    outside = parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER, TransferTargetChannel="PJSIP/trunk-00000004",
                                               TransferTargetContext="agent-dial", TransferTargetExten="13800138000"),
                                      AGENTS)
    assert outside is not None and outside.target == "13800138000@agent-dial"
    failed = parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER, Result="Fail"), AGENTS)
    assert failed is not None and (failed.ok, failed.result) == (False, "Fail")
    assert parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER, Event="BlindTransfer"), AGENTS) is None
    assert parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER, TransfereeLinkedid="",
                                            OrigTransfererLinkedid=""), AGENTS) is None


def _leg(state: ChannelState = ChannelState.UP) -> Channel:
    return replace(_channel("Local/2105@cc-transfer-refer-00000002;1"), uniqueid="1.5", context=REFER_CONTEXT,
                   exten="2105", state=state)


def test_a_consult_is_read_from_the_agents_bridge() -> None:
    mine = _channel("PJSIP/agent1001-00000001")
    customer = replace(_channel("PJSIP/trunk-00000002", bridged=False), uniqueid="1.3")  # on hold
    assert consult_leg("1001", [mine, customer]) is None
    ringing = consult_leg("1001", [mine, customer, _leg(ChannelState.RING)])
    assert ringing is not None and (ringing.target_id, ringing.answered) == ("2105", False)
    answered = consult_leg("1001", [mine, customer, _leg()])
    assert answered is not None and answered.answered and answered.agent_channel == mine
    # a Local channel of another context in the bridge is no consult (a lab agent, a supervisor)
    assert consult_leg("1001", [mine, replace(_leg(), context="lab-agents")]) is None
    assert consult_leg("2105", [mine, _leg()]) is None


def test_completing_needs_an_answered_consult_and_cancelling_any_consult() -> None:
    mine = _channel("PJSIP/agent1001-00000001")
    with pytest.raises(ConsultRefused, match="1001 is not consulting anyone"):
        check_consult_end("1001", [mine], completing=False)
    with pytest.raises(ConsultRefused, match="2105 has not answered yet: wait, or cancel"):
        check_consult_end("1001", [mine, _leg(ChannelState.RINGING)], completing=True)
    assert check_consult_end("1001", [mine, _leg(ChannelState.RINGING)], completing=False).target_id == "2105"
    assert check_consult_end("1001", [mine, _leg()], completing=True).leg.uniqueid == "1.5"


def test_no_other_transfer_while_consulting(settings: Settings) -> None:
    on_call = _agent("1001", AgentState.ON_CALL, "hotline")
    other = _agent("2101", AgentState.READY, "outbound")
    with pytest.raises(TransferRefused, match="consulting agent 2105: complete or cancel that first"):
        check_transfer(settings, on_call, "1001", "outbound", [_channel("PJSIP/agent1001-00000001"), _leg()],
                       [on_call, other])


def test_the_consult_sets_the_colleagues_phone_then_asks_asterisk() -> None:
    mine = _channel("PJSIP/agent1001-00000001")
    built = consult_actions(mine, "2105", "PJSIP/agent2105")
    assert [(a.name, dict(a.headers)) for a in built] == [
        ("Setvar", {"Channel": "PJSIP/agent1001-00000001", "Variable": f"_{CONSULT_PHONE}_2105",
                    "Value": "PJSIP/agent2105"}),
        ("Atxfer", {"Channel": "PJSIP/agent1001-00000001", "Context": REFER_CONTEXT, "Exten": "2105#"}),
    ]


def _outside_leg(state: ChannelState = ChannelState.UP) -> Channel:
    return replace(_channel("Local/00002012345678@cc-transfer-refer-00000002;1"), uniqueid="1.6",
                   context=REFER_CONTEXT, exten="00002012345678", state=state)


def test_an_outside_number_is_consulted_through_its_own_extension_and_read_back() -> None:
    """Atxfer to out<number> (an international + number dialed with 00); the leg reads as a
    consult of that number, not of an agent; its AttendedTransfer is a hop to outside:<number>."""
    mine = _channel("PJSIP/agent1001-00000001")
    assert [(a.name, dict(a.headers)) for a in consult_outside_actions(mine, "02012345678")] == [
        ("Atxfer", {"Channel": "PJSIP/agent1001-00000001", "Context": REFER_CONTEXT, "Exten": "00002012345678#"})]
    assert consult_outside_actions(mine, "+33123456789")[0].get("Exten") == "0000033123456789#"
    consult = consult_leg("1001", [mine, _outside_leg(ChannelState.RINGING)])
    assert consult is not None
    assert (consult.target_id, consult.outside, consult.who, consult.answered) == (
        "02012345678", True, "02012345678", False)
    with pytest.raises(ConsultRefused, match="^02012345678 has not answered yet"):
        check_consult_end("1001", [mine, _outside_leg(ChannelState.RINGING)], completing=True)
    agent_consult = consult_leg("1001", [mine, _leg()])
    assert agent_consult is not None and (agent_consult.outside, agent_consult.who) == (False, "agent 2105")
    handed = parse_attended_transfer(_message(LAB_ATTENDED_TRANSFER, TransferTargetChannel=_outside_leg().name,
                                              TransferTargetExten="00002012345678"), AGENTS)
    assert handed is not None and handed.target == "outside:02012345678"
    assert parse_hop(hop("1001", handed.target, 75)) == ("1001", "outside:02012345678", 75)


# ----------------------------------------------------------------------------- service


def _board() -> AgentBoard:
    board = AgentBoard()
    for agent, queue in (("1001", "hotline"), ("2105", "outbound")):
        board.handle(Message.from_pairs([("Event", "QueueMemberAdded"), ("Queue", queue),
                                         ("Interface", f"PJSIP/agent{agent}"), ("StateInterface", f"PJSIP/agent{agent}"),
                                         ("MemberName", agent), ("Paused", "0"), ("Status", "1")]), 100.0)
    return board


def _talking(settings: Settings) -> tuple[_Ami, list[Channel], AgentService]:
    """1001 talks to a customer (a trunk channel): the service, its AMI and the channels."""
    ami = _Ami()
    channels = [_channel("PJSIP/agent1001-00000001"), replace(_channel("PJSIP/trunk-00000002"), uniqueid="1.3")]
    return ami, channels, AgentService(settings, ami, _board(), Clock(), channels=lambda: channels)


def test_the_service_consults_completes_and_cancels(settings: Settings) -> None:
    ami, channels, service = _talking(settings)
    assert isinstance(_failure_of(service.consult("9999", "2105")), UnknownAgentError)
    assert "cannot hand a call to themselves" in str(_failure_of(service.consult("1001", "1001")))
    assert "not consulting anyone" in str(_failure_of(service.complete_consult("1001")))
    assert "not consulting anyone" in str(_failure_of(service.cancel_consult("1001")))
    assert ami.sent == []
    result: list[Any] = []
    service.consult("1001", "2105").addCallback(result.append)
    assert result == ["sent"]
    assert [(a.name, a.get("Value") or a.get("Exten")) for a in ami.sent] == [
        ("Setvar", "PJSIP/agent2105"), ("Atxfer", "2105#")]
    ami.sent.clear()
    channels[1] = replace(channels[1], bridge_id=None)  # the customer holds
    channels.append(_leg(ChannelState.RINGING))
    assert "has not answered yet" in str(_failure_of(service.complete_consult("1001")))
    assert "consulting agent 2105" in str(_failure_of(service.consult("1001", "2105")))
    assert "has not answered yet" in str(_failure_of(service.conference_consult("1001")))
    service.cancel_consult("1001")
    channels[-1] = _leg()
    service.complete_consult("1001")
    assert [(a.name, a.get("Channel")) for a in ami.sent] == [
        ("CancelAtxfer", "PJSIP/agent1001-00000001"), ("Hangup", "PJSIP/agent1001-00000001")]
    ami.sent.clear()
    service.conference_consult("1001")  # *3, as if the agent's phone pressed it
    assert [(a.name, dict(a.headers)) for a in ami.sent] == [
        ("PlayDTMF", {"Channel": "PJSIP/agent1001-00000001", "Digit": digit, "Receive": "true"}) for digit in "*3"]


def test_the_service_consults_an_outside_number(settings: Settings) -> None:
    """Any number the site can dial, read as every number is; refused when not talking to a
    customer, with a bad number, or while consulting already."""
    ami, channels, service = _talking(settings)
    assert isinstance(_failure_of(service.consult_number("9999", "02012345678")), UnknownAgentError)
    assert "must be 3 to 15 digits" in str(_failure_of(service.consult_number("1001", "call me")))
    assert "2105 is not on a call" in str(_failure_of(service.consult_number("2105", "02012345678")))
    assert ami.sent == []
    service.consult_number("1001", "+86 20 1234 5678")
    assert [(a.name, a.get("Exten")) for a in ami.sent] == [("Atxfer", "00002012345678#")]
    channels.append(_outside_leg(ChannelState.RINGING))
    assert "consulting 02012345678: complete or cancel" in str(_failure_of(service.consult_number("1001", "110")))
    assert "consulting 02012345678" in str(_failure_of(service.consult("1001", "2105")))


# ------------------------------------------------------------------------------ engine


class _SendingAmi(FakeAmi):
    """The engine's AMI, which also records the actions the engine sends (the recording's)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[AmiAction] = []

    def send(self, action: AmiAction, timeout: float | None = None, *, action_id: str | None = None) -> Deferred[Any]:
        self.sent.append(action)
        return succeed("sent")


def _event(**fields: str) -> Message:
    return Message.from_pairs(fields.items())


@dataclass
class _Running:
    """An engine started on the test database, fed events by ``send``; its AMI records what it sends."""

    engine: Engine
    ami: _SendingAmi
    clock: Clock
    registry: CollectorRegistry
    send: Callable[[Message], None]


def _running(sessions: sessionmaker[Session], tmp_path: Path, *, at: float = 0.0) -> _Running:
    clock, ami, registry = Clock(), _SendingAmi(), CollectorRegistry()
    clock.advance(at)
    engine = Engine(load_settings(ROOT / "config"), ami, SyncRepository(sessions), EngineMetrics(registry),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", tmp_path))
    engine.startService()
    engine.on_resync([], [])  # connected: what a connection sends (the overflow device) is not this test's
    ami.sent.clear()
    return _Running(engine, ami, clock, registry, ami.events[0])


def test_a_consulted_colleague_gets_the_call_its_record_and_the_rest_of_the_recording(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """2101's own call (recorded on 2101's channel): 2101 consults 2105, whose screen pops at
    the consult's ring but who is not the call's agent until the transfer completes; the
    event names no target (the leg was optimised away). The hop names 2105 all the same, the
    customer's channel starts recording the rest, and the record is 2105's with both files."""
    run = _running(sessions, tmp_path, at=1_795_400_000)
    engine, ami, clock, registry, send = run.engine, run.ami, run.clock, run.registry, run.send
    agent = {"Channel": "PJSIP/agent2101-00000001", "Uniqueid": "9.1", "Linkedid": "9.1", "CallerIDNum": "2101",
             "CallerIDName": "Agent 2101", "Context": "agent-dial", "Exten": "13800138000"}
    customer = {**agent, "Channel": "PJSIP/pstn-00000002", "Uniqueid": "9.2", "CallerIDNum": "13800138000"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **agent))
    for name, value in (("CC_DIRECTION", "outbound"), ("CC_PHONE", "13800138000"),
                        ("CC_RECORDING", "/srv/rec/20261206/9.1.wav")):
        send(_event(Event="VarSet", Variable=name, Value=value, **agent))
    send(_event(Event="UserEvent", UserEvent="AgentDial", Agent="2101", Phone="13800138000", **agent))
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **customer))
    for channel in (agent, customer):
        send(_event(Event="BridgeEnter", BridgeUniqueid="b1", BridgeType="basic", **channel))
    clock.advance(30)
    # the consult: the leg (cc-transfer ask-2105) dials 2105's phone, who answers
    leg = {**agent, "Channel": "Local/2105@cc-transfer-refer-00000003;2", "Uniqueid": "9.4",
           "Context": "cc-transfer", "Exten": "ask-2105"}
    colleague = {"DestChannel": "PJSIP/agent2105-00000005", "DestUniqueid": "9.5", "DestLinkedid": "9.1"}
    send(_event(Event="DialBegin", **leg, **colleague))
    assert engine.screen_pops["2105"] == "9.1"
    send(_event(Event="DialEnd", DialStatus="ANSWER", **leg, **colleague))
    clock.advance(10)
    send(_message(NO_TARGET, OrigTransfererChannel=agent["Channel"], OrigTransfererLinkedid="9.1",
                  TransfereeChannel=customer["Channel"], TransfereeUniqueid="9.2", TransfereeLinkedid="9.1"))
    assert engine.transfers_of("9.1") == ("2101>agent:2105@40",)
    # CC_RECORDING first (its VarSet files the recording), then the recording itself
    assert [(a.name, dict(a.headers)) for a in ami.sent] == [
        ("Setvar", {"Channel": "PJSIP/pstn-00000002", "Variable": "CC_RECORDING", "Value": "/srv/rec/20261206/9.2.wav"}),
        ("MixMonitor", {"Channel": "PJSIP/pstn-00000002", "File": "/srv/rec/20261206/9.2.wav"}),
    ]
    send(_event(Event="VarSet", Variable="CC_RECORDING", Value="/srv/rec/20261206/9.2.wav", **customer))
    send(_event(Event="BridgeLeave", BridgeUniqueid="b1", BridgeType="basic", **agent))
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **agent))
    member = {**customer, "Channel": "PJSIP/agent2105-00000005", "Uniqueid": "9.5", "CallerIDNum": "2105"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **member))
    send(_event(Event="BridgeEnter", BridgeUniqueid="b1", BridgeType="basic", **member))
    clock.advance(20)
    _wav(tmp_path / "20261206/9.1.wav", 40.0)
    _wav(tmp_path / "20261206/9.2.wav", 20.0)
    for channel in (member, customer):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b1", BridgeType="basic", **channel))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **channel))
    clock.advance(engine.recording_settle_seconds)
    assert engine.screen_pops["2105"] == "9.1"  # handed over: the call stays on 2105's screen
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.agent_id, record.transfers) == ("2105", ("2101>agent:2105@40",))
    recordings = in_tx(sessions, repo.list_recordings_for_call, record.id)
    assert [(Path(r.path).name, r.agent_id) for r in sorted(recordings, key=lambda r: r.id)] == [
        ("9.1.wav", "2101"), ("9.2.wav", "2105")]
    assert registry.get_sample_value("callcenter_transfers_total", {"queue": "other", "result": "done"}) == 1.0


@pytest.mark.parametrize("ending", ["unanswered", "answered, then cancelled"])
def test_a_colleague_consulted_but_not_handed_the_call_gets_their_screen_pop_back(
        sessions: sessionmaker[Session], tmp_path: Path, ending: str) -> None:
    """2105 was dispositioning their own last call (8.1) when 2101 consulted them about
    2101's caller: the consult's ring shows the caller; once the consult ends without the
    handover (stopped ringing, or the two talked and 2101 took the caller back), 2105's
    screen shows 8.1 again, whose disposition is theirs to finish."""
    run = _running(sessions, tmp_path)
    engine, clock, send = run.engine, run.clock, run.send
    engine.screen_pops["2105"] = "8.1"
    leg = {"Channel": "Local/2105@cc-transfer-refer-00000003;2", "Uniqueid": "9.4", "Linkedid": "9.1",
           "CallerIDNum": "2101", "Context": "cc-transfer", "Exten": "ask-2105"}
    colleague = {"DestChannel": "PJSIP/agent2105-00000005", "DestUniqueid": "9.5", "DestLinkedid": "9.1"}
    send(_event(Event="DialBegin", **leg, **colleague))
    assert engine.screen_pops["2105"] == "9.1"
    if ending == "unanswered":
        send(_event(Event="DialEnd", DialStatus="CANCEL", **leg, **colleague))
    else:
        send(_event(Event="DialEnd", DialStatus="ANSWER", **leg, **colleague))
        clock.advance(20)
        assert engine.screen_pops["2105"] == "9.1"  # talking about the caller
        send(_event(Event="Hangup", Cause="16", Channel="Local/2101@lab-agents-00000009;1", Uniqueid="9.3",
                    Linkedid="9.1"))
        assert engine.screen_pops["2105"] == "9.1"  # another channel of the call
        send(_event(Event="Hangup", Cause="16", Channel="PJSIP/agent2105-00000005", Uniqueid="9.5",
                    Linkedid="9.1"))
    assert engine.screen_pops["2105"] == "8.1"


def test_a_colleague_without_an_earlier_call_has_no_screen_pop_after_the_consult(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    engine = Engine(load_settings(ROOT / "config"), _SendingAmi(), SyncRepository(sessions),  # type: ignore[arg-type]
                    EngineMetrics(CollectorRegistry()), Clock(), RecordingPaths("/srv/rec", tmp_path))
    leg = {"Channel": "Local/2105@cc-transfer-refer-00000003;2", "Uniqueid": "9.4", "Linkedid": "9.1",
           "Context": "cc-transfer", "Exten": "ask-2105", "DestChannel": "PJSIP/agent2105-00000005",
           "DestUniqueid": "9.5"}
    engine.on_event(_event(Event="DialBegin", **leg))
    assert engine.screen_pops == {"2105": "9.1"}
    engine.on_event(_event(Event="DialEnd", DialStatus="NOANSWER", **leg))
    assert engine.screen_pops == {}


@pytest.mark.parametrize(("target", "hop_text", "agent"), [
    ({}, "1001>agent:2105@0", "2105"),
    ({"TransferTargetChannel": "Local/00002012345678@cc-transfer-refer-00000002;1",
      "TransferTargetExten": "00002012345678"}, "1001>outside:02012345678@0", None),
])
def test_a_hotline_call_recorded_on_the_callers_channel_needs_no_second_recording(
        sessions: sessionmaker[Session], tmp_path: Path, target: dict[str, str], hop_text: str,
        agent: str | None) -> None:
    """Handed to a colleague, or to an outside number (then no colleague takes the call: it
    stays the consulting agent's); the caller's own recording goes on either way."""
    run = _running(sessions, tmp_path)
    engine, ami, send = run.engine, run.ami, run.send
    caller = {"Channel": "Local/400@from-pstn-00000000;2", "Uniqueid": "1796588384.1", "Linkedid": "1796588384.0",
              "CallerIDNum": "13800138000", "Context": "hotline", "Exten": "s"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    send(_event(Event="VarSet", Variable="CC_RECORDING", Value="/srv/rec/20261206/1796588384.1.wav", **caller))
    send(_message(LAB_ATTENDED_TRANSFER, **target))
    assert engine.transfers_of("1796588384.0") == (hop_text,)
    connected = engine._connected_agent.get("1796588384.0")
    assert (connected[0] if connected else None) == agent
    assert ami.sent == []


def test_an_outside_consult_whose_event_names_no_target_is_named_from_its_ring(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Seen in the lab: the outside number's leg was optimised away before the hand-over, so
    AttendedTransfer names no target; the engine names the number the leg rang."""
    engine = Engine(load_settings(ROOT / "config"), _SendingAmi(), SyncRepository(sessions),  # type: ignore[arg-type]
                    EngineMetrics(CollectorRegistry()), Clock(), RecordingPaths("/srv/rec", tmp_path))
    engine.on_event(_event(Event="DialBegin", Channel="Local/00002012345678@cc-transfer-refer-00000002;2",
                           Uniqueid="1796588396.5", Linkedid="1796588384.0", Context="cc-transfer",
                           Exten="ask-00002012345678", DestChannel="PJSIP/trunk-00000007", DestUniqueid="1796588396.6"))
    assert engine.screen_pops == {}  # no agent's phone rang
    engine.on_event(_message(NO_TARGET))
    assert engine.transfers_of("1796588384.0") == ("1001>outside:02012345678@0",)


def test_callcenter_agent_consult_posts_the_colleague_then_completes_or_cancels(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    posted, run = cli_with_fake_daemon(monkeypatch, tmp_path)
    for argv in (["1001", "2105"], ["1001", "--number", "020-1234-5678"], ["1001", "--complete"],
                 ["1001", "--conference"], ["1001", "--cancel"]):
        assert run("agent", "consult", *argv) == 0
    assert posted == [("POST", "agents/1001/consult", {"to_agent": "2105"}),
                      ("POST", "agents/1001/consult", {"phone": "020-1234-5678"}),
                      ("POST", "agents/1001/consult/complete", {}),
                      ("POST", "agents/1001/consult/conference", {}),
                      ("POST", "agents/1001/consult/cancel", {})]
    for argv in (["1001"], ["1001", "2105", "--complete"], ["1001", "--complete", "--cancel"],
                 ["1001", "2105", "--number", "110"], ["1001", "--number", "110", "--cancel"]):
        assert run("agent", "consult", *argv) == 2
    assert ("give a colleague to consult, --number N, or one of --complete, --conference, --cancel"
            in capsys.readouterr().err)
    assert len(posted) == 5


def test_play_dtmf_takes_one_digit() -> None:
    from callcenter.ami import actions as ami_actions

    action = ami_actions.play_dtmf("PJSIP/agent1001-00000001", "*", receive=True)
    assert dict(action.headers) == {"Channel": "PJSIP/agent1001-00000001", "Digit": "*", "Receive": "true"}
    assert "Receive" not in dict(ami_actions.play_dtmf("PJSIP/agent1001-00000001", "3").headers)
    for bad in ("", "*3", "x", "\r"):
        with pytest.raises(ami_actions.AmiActionError, match="one DTMF digit"):
            ami_actions.play_dtmf("PJSIP/agent1001-00000001", bad)
