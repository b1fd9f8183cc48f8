"""Blind transfers to a queue: the pure rules, the event, the engine's record, the service.

The ``BlindTransfer`` event below is the one the lab Asterisk 22 sent when agent 1001 (a
Local-channel agent) handed a hotline caller on to ``outbound``
(tests/integration/test_transfer_lab.py), cut to the headers the engine reads and a few more.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from callcenter.agent_channels import agent_of_channel
from callcenter.agents import AgentService, UnknownAgentError
from callcenter.ami.actions import AmiAction
from callcenter.ami.codec import Message
from callcenter.engine import Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.settings import Settings, load_settings
from callcenter.state.agents import Agent, AgentBoard, AgentState
from callcenter.state.calls import Channel, ChannelState
from callcenter.storage import repository as repo
from callcenter.storage.records import (
    CallRecordUpdate,
    InvalidFieldError,
    NewCallRecord,
)
from callcenter.transfer import (
    TO_AGENT_PHONE,
    TRANSFER_CONTEXT,
    TRANSFER_FALLBACK,
    TransferRefused,
    UnknownQueue,
    UnknownTarget,
    check_transfer,
    check_transfer_to_agent,
    hop,
    parse_blind_transfer,
    parse_hop,
    transfer_action,
    transfer_exten,
    transfer_to_agent_actions,
)
from tests.cliapi import cli_with_fake_daemon
from tests.syncrepository import SyncRepository, in_tx
from tests.unit.test_engine import FakeAmi

ROOT = Path(__file__).resolve().parents[2]

LAB_BLIND_TRANSFER = """\
Event: BlindTransfer
Privilege: call,all
Result: Success
TransfererChannel: Local/1001@lab-agents-00000001;1
TransfererChannelState: 6
TransfererContext: lab-agents
TransfererUniqueid: 1796576761.2
TransfererLinkedid: 1796576755.0
TransfereeChannel: Local/400@from-pstn-00000000;2
TransfereeChannelState: 6
TransfereeContext: hotline
TransfereeUniqueid: 1796576755.1
TransfereeLinkedid: 1796576755.0
BridgeUniqueid: d32be016-832f-481e-8e93-6e5a05e4b30a
BridgeType: basic
IsExternal: Yes
Context: cc-transfer
Extension: queue-outbound"""


def _message(text: str, **changes: str) -> Message:
    pairs = dict(line.split(": ", 1) for line in text.splitlines())
    pairs.update(changes)
    return Message.from_pairs(pairs.items())


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "config")


# ------------------------------------------------------------------------------- pure


def test_the_lab_asterisks_event_reads_as_a_hop_from_the_agent_to_the_queue() -> None:
    transfer = parse_blind_transfer(_message(LAB_BLIND_TRANSFER))
    assert transfer is not None
    assert (transfer.ok, transfer.agent_id, transfer.target, transfer.linkedid, transfer.transferee_uniqueid) == (
        True, "1001", "outbound", "1796576755.0", "1796576755.1")


def test_other_transfers_and_failures_are_read_too() -> None:
    """A softphone's REFER to an extension of its own context, and a refused transfer."""
    refer = parse_blind_transfer(_message(LAB_BLIND_TRANSFER, TransfererChannel="PJSIP/agent2101-0000002a",
                                          Context="from-agents", Extension="2105"))
    assert refer is not None and (refer.agent_id, refer.target) == ("2101", "2105@from-agents")
    failed = parse_blind_transfer(_message(LAB_BLIND_TRANSFER, Result="Invalid"))
    assert failed is not None and (failed.ok, failed.result) == (False, "Invalid")
    no_agent = parse_blind_transfer(_message(LAB_BLIND_TRANSFER, TransfererChannel="PJSIP/trunk-00000001"))
    assert no_agent is not None and no_agent.agent_id is None
    assert parse_blind_transfer(_message(LAB_BLIND_TRANSFER, Event="AttendedTransfer")) is None
    # the phone's own transfer key, followed in the endpoints' TRANSFER_CONTEXT
    key = parse_blind_transfer(_message(LAB_BLIND_TRANSFER, Context="cc-transfer-refer", Extension="2105"),
                               {"1001", "2105"})
    assert key is not None and key.target == "agent:2105"
    stray = parse_blind_transfer(_message(LAB_BLIND_TRANSFER, Context="cc-transfer-refer", Extension="13800138000"),
                                 {"1001", "2105"})
    assert stray is not None and stray.target == "13800138000@cc-transfer-refer"
    assert parse_blind_transfer(_message(LAB_BLIND_TRANSFER, TransfereeLinkedid="", TransfererLinkedid="")) is None


@pytest.mark.parametrize(("name", "agent"), [
    ("PJSIP/agent2101-0000002a", "2101"), ("Local/2101@lab-agents-00000003;1", "2101"),
    ("PJSIP/trunk-00000001", None), ("PJSIP/agent-0001", None), ("Local/park@lab-test-0001;1", None),
])
def test_agent_of_channel(name: str, agent: str | None) -> None:
    assert agent_of_channel(name) == agent


def test_hops_round_trip_and_refuse_what_is_not_one() -> None:
    assert hop("1001", "billing", 125.7) == "1001>billing@125"
    assert parse_hop("1001>billing@125") == ("1001", "billing", 125)
    assert parse_hop(hop(None, "2105@from-agents", -3)) == (None, "2105@from-agents", 0)
    for bad in ("1001>billing", "1001-billing@3", ">@4", "1001>bil ling@3"):
        with pytest.raises(ValueError, match="not a transfer hop"):
            parse_hop(bad)


def test_the_record_keeps_only_well_formed_hops() -> None:
    record = NewCallRecord(started_at=datetime(2026, 12, 6, 9, 0, tzinfo=UTC), direction="inbound",
                           transfers=("1001>outbound@12",))
    assert record.transfers == ("1001>outbound@12",)
    for bad in ("1001>outbound", ["1001>outbound@x"], "1001>outbound@12"):
        with pytest.raises(InvalidFieldError, match="transfers"):
            CallRecordUpdate(transfers=bad)  # type: ignore[arg-type]


def _channel(name: str, *, bridged: bool = True) -> Channel:
    return Channel(uniqueid="1.2", linkedid="1.0", name=name, state=ChannelState.UP, caller_id_num="",
                   caller_id_name="", connected_line_num="", connected_line_name="", context="", exten="",
                   priority=1, application="", created_at=0.0, answered_at=0.0, variables=MappingProxyType({}),
                   bridge_id="b1" if bridged else None, local_peer=None, dial_status=None)


def _agent(agent_id: str, state: AgentState, *queues: str) -> Agent:
    return Agent(id=agent_id, state=state, since=0.0, queues=queues, paused_queues=(), pause_reason=None,
                 last_pause_reason=None, interface=None, state_interface=None, device_state=None,
                 call_uniqueid=None, call_linkedid=None, call_queue=None, wrapup_until=None, calls_handled=0,
                 talk_time=0.0)


def test_check_transfer_names_why_not(settings: Settings) -> None:
    on_call = _agent("1001", AgentState.ON_CALL, "hotline")
    other = _agent("2101", AgentState.READY, "outbound")
    talking = [_channel("PJSIP/agent1001-00000001")]
    channel = check_transfer(settings, on_call, "1001", "outbound", talking, [on_call, other])
    assert channel.name == "PJSIP/agent1001-00000001"
    action = transfer_action(channel, "outbound")
    assert (action.name, dict(action.headers)) == ("BlindTransfer", {
        "Channel": "PJSIP/agent1001-00000001", "Context": TRANSFER_CONTEXT, "Exten": "queue-outbound"})
    cases: list[tuple[Any, ...]] = [
        (on_call, "billing", talking, [on_call, other], UnknownQueue, "no queue 'billing' to transfer to .*hotline"),
        (None, "outbound", talking, [other], TransferRefused, "1001 is logged out"),
        (on_call, "outbound", [], [on_call, other], TransferRefused, "1001 is not on a call"),
        (on_call, "outbound", [_channel("PJSIP/agent1001-00000001", bridged=False)], [on_call, other],
         TransferRefused, "not connected yet"),
        (on_call, "outbound", talking, [on_call, replace(other, state=AgentState.LOGGED_OUT)], TransferRefused,
         "nobody else is logged in to queue 'outbound'"),
        (on_call, "hotline", talking, [on_call], TransferRefused, "nobody else is logged in to queue 'hotline'"),
    ]
    for agent, queue, channels, board, error, message in cases:
        with pytest.raises(error, match=message):
            check_transfer(settings, agent, "1001", queue, channels, board)


# ----------------------------------------------------------------------------- service


class _Ami:
    def __init__(self) -> None:
        self.sent: list[AmiAction] = []

    def send(self, action: AmiAction, timeout: float | None = None, *, action_id: str | None = None) -> Deferred[Any]:
        self.sent.append(action)
        return succeed("sent")


def _failure_of(d: Deferred[Any]) -> BaseException:
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert failures, "the Deferred did not fail"
    return failures[0].value  # type: ignore[no-any-return]


def test_the_service_sends_the_transfer_only_when_the_rules_allow(settings: Settings) -> None:
    ami, board = _Ami(), AgentBoard()
    channels: list[Channel] = []
    service = AgentService(settings, ami, board, Clock(), channels=lambda: channels)
    assert isinstance(_failure_of(service.transfer("9999", "outbound")), UnknownAgentError)
    assert "logged out" in str(_failure_of(service.transfer("1001", "outbound")))
    now = 100.0
    for agent, queue in (("1001", "hotline"), ("2101", "outbound")):
        board.handle(Message.from_pairs([("Event", "QueueMemberAdded"), ("Queue", queue),
                                         ("Interface", f"PJSIP/agent{agent}"), ("StateInterface", f"PJSIP/agent{agent}"),
                                         ("MemberName", agent), ("Paused", "0"), ("Status", "1")]), now)
    assert "not on a call" in str(_failure_of(service.transfer("1001", "outbound")))
    assert ami.sent == []
    channels.append(_channel("PJSIP/agent1001-00000007"))
    result: list[Any] = []
    service.transfer("1001", "outbound").addCallback(result.append)
    assert result == ["sent"]
    assert [(a.name, a.get("Channel"), a.get("Exten")) for a in ami.sent] == [
        ("BlindTransfer", "PJSIP/agent1001-00000007", "queue-outbound")]

    assert transfer_exten("hotline") == "queue-hotline"


# ------------------------------------------------------------------------------ engine


def _event(**fields: str) -> Message:
    return Message.from_pairs(fields.items())


def test_the_call_record_keeps_the_hop_the_callers_first_wait_and_the_last_agent(
        sessions: sessionmaker[Session]) -> None:
    """Caller waits 12 s in the hotline, 1001 talks 20 s and hands them on to outbound, the
    caller waits 7 s more, 2101 talks 30 s: one record, agent 2101, wait 12 s in the hotline
    (answered), talk 50 s, and the hop 1001>outbound@32."""
    clock = Clock()
    clock.advance(1_795_400_000)
    ami = FakeAmi()
    registry = CollectorRegistry()
    engine = Engine(load_settings(ROOT / "config"), ami, SyncRepository(sessions), EngineMetrics(registry),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    send = ami.events[0]
    uid = "7.1"
    caller = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": "13800138000",
              "CallerIDName": "Zhang", "Context": "hotline", "Exten": "s"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    send(_event(Event="VarSet", Variable="CC_DIRECTION", Value="inbound", **caller))

    def served(agent: str, queue: str, wait: int, talk: int, bridge: str) -> dict[str, str]:
        send(_event(Event="QueueCallerJoin", Queue=queue, Uniqueid=uid, Position="1", Count="1"))
        clock.advance(wait)
        member = {**caller, "Channel": f"PJSIP/agent{agent}-0000000{agent[-1]}", "Uniqueid": f"{uid}.{agent}",
                  "CallerIDNum": agent, "Context": "from-agents"}
        send(_event(Event="AgentCalled", Queue=queue, Interface=f"PJSIP/agent{agent}", **caller))
        send(_event(Event="QueueCallerLeave", Queue=queue, Uniqueid=uid, Count="0"))
        send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **member))
        send(_event(Event="AgentConnect", Queue=queue, HoldTime=str(wait), Interface=f"PJSIP/agent{agent}",
                    MemberName=agent, **caller))
        for channel in (caller, member):
            send(_event(Event="BridgeEnter", BridgeUniqueid=bridge, BridgeType="basic", **channel))
        clock.advance(talk)
        return member

    first = served("1001", "hotline", 12, 20, "b1")
    assert engine.screen_pops["1001"] == uid
    send(_message(LAB_BLIND_TRANSFER, TransfererChannel=first["Channel"], TransfereeUniqueid=uid,
                  TransfereeLinkedid=uid, TransfererLinkedid=uid))
    assert engine.transfers_of(uid) == ("1001>outbound@32",)
    for channel in (first, caller):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b1", BridgeType="basic", **channel))
    send(_event(Event="AgentComplete", Queue="hotline", Uniqueid=uid, HoldTime="12", TalkTime="20",
                Interface="PJSIP/agent1001", Reason="transfer"))
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **first))
    second = served("2101", "outbound", 7, 30, "b2")
    assert engine.screen_pops["2101"] == uid  # the same call, the same record on 2101's screen
    for channel in (second, caller):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b2", BridgeType="basic", **channel))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **channel))
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.agent_id, record.queue, record.queue_result, record.wait_seconds, record.talk_seconds,
            record.transfers) == ("2101", "hotline", "answered", 12, 50, ("1001>outbound@32",))
    assert engine.transfers_of(uid) == ()
    assert registry.get_sample_value("callcenter_transfers_total", {"queue": "outbound", "result": "done"}) == 1.0
    # the wallboard counted a stay in each queue: the hotline's answered in 12 s, outbound's in 7 s
    views = {v["queue"]: v for v in engine.queue_views()}
    assert (views["hotline"]["answered"], views["outbound"]["answered"]) == (1, 1)


def test_a_failed_transfer_is_counted_and_leaves_the_record_alone() -> None:
    clock = Clock()
    ami = FakeAmi()
    registry = CollectorRegistry()
    engine = Engine(load_settings(ROOT / "config"), ami, None, EngineMetrics(registry), clock,  # type: ignore[arg-type]
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    ami.events[0](_message(LAB_BLIND_TRANSFER, Result="Fail", Extension="queue-nowhere"))
    assert engine.transfers_of("1796576755.0") == ()
    assert registry.get_sample_value("callcenter_transfers_total", {"queue": "other", "result": "failed"}) == 1.0


def _wav(path: Path, seconds: float) -> None:
    import wave
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


def test_an_agents_own_call_handed_on_keeps_both_recordings(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """2101's own call records on 2101's channel; handed on to the hotline, the customer's
    channel records the rest (dialplans/transfer.conf). The record gets both files, each
    with the agent whose part it is and when it started."""
    clock = Clock()
    clock.advance(1_795_400_000)
    ami = FakeAmi()
    repository = SyncRepository(sessions)
    engine = Engine(load_settings(ROOT / "config"), ami, repository, EngineMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", tmp_path))
    engine.startService()
    send = ami.events[0]
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
    send(_message(LAB_BLIND_TRANSFER, TransfererChannel=agent["Channel"], TransfererLinkedid="9.1",
                  TransfereeUniqueid="9.2", TransfereeLinkedid="9.1", Extension="queue-hotline"))
    for channel in (agent, customer):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b1", BridgeType="basic", **channel))
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **agent))
    send(_event(Event="VarSet", Variable="CC_RECORDING", Value="/srv/rec/20261206/9.2.wav", **customer))
    send(_event(Event="QueueCallerJoin", Queue="hotline", Uniqueid="9.2", Position="1", Count="1"))
    clock.advance(5)
    member = {**customer, "Channel": "PJSIP/agent1001-00000003", "Uniqueid": "9.3", "CallerIDNum": "1001"}
    send(_event(Event="QueueCallerLeave", Queue="hotline", Uniqueid="9.2", Count="0"))
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **member))
    send(_event(Event="AgentConnect", Queue="hotline", HoldTime="5", Interface="PJSIP/agent1001", **customer))
    for channel in (customer, member):
        send(_event(Event="BridgeEnter", BridgeUniqueid="b2", BridgeType="basic", **channel))
    clock.advance(20)
    _wav(tmp_path / "20261206/9.1.wav", 30.0)
    _wav(tmp_path / "20261206/9.2.wav", 25.0)
    for channel in (member, customer):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b2", BridgeType="basic", **channel))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **channel))
    clock.advance(engine.recording_settle_seconds)
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.agent_id, record.transfers, record.queue, record.wait_seconds, record.talk_seconds) == (
        "1001", ("2101>hotline@30",), "hotline", 5, 50)
    recordings = in_tx(sessions, repo.list_recordings_for_call, record.id)
    assert [(Path(r.path).name, r.agent_id, r.duration_seconds) for r in sorted(recordings, key=lambda r: r.id)] == [
        ("9.1.wav", "2101", 30.0), ("9.2.wav", "1001", 25.0)]
    first, second = sorted(recordings, key=lambda r: r.id)
    assert (second.started_at - first.started_at).total_seconds() == 30


# ------------------------------------------------------------------------- to one agent


def test_a_call_goes_to_an_agent_only_when_they_are_ready(settings: Settings) -> None:
    me = _agent("1001", AgentState.ON_CALL, "hotline")
    ready = _agent("2105", AgentState.READY, "outbound")
    mine = _channel("PJSIP/agent1001-00000001")
    customer = replace(_channel("PJSIP/trunk-00000002"), uniqueid="1.3")
    elsewhere = replace(_channel("PJSIP/trunk-00000009", bridged=False), uniqueid="1.9")
    assert check_transfer_to_agent(settings, me, "1001", ready, "2105", [mine, customer, elsewhere]) == (
        mine, customer)
    actions = transfer_to_agent_actions(mine, customer, "2105", "PJSIP/agent2105", "hotline")
    assert [(a.name, dict(a.headers)) for a in actions] == [
        ("Setvar", {"Channel": "PJSIP/trunk-00000002", "Variable": TO_AGENT_PHONE, "Value": "PJSIP/agent2105"}),
        ("Setvar", {"Channel": "PJSIP/trunk-00000002", "Variable": TRANSFER_FALLBACK, "Value": "hotline"}),
        ("BlindTransfer", {"Channel": "PJSIP/agent1001-00000001", "Context": TRANSFER_CONTEXT, "Exten": "desk-2105"}),
    ]
    third = replace(_channel("PJSIP/agent8001-00000003"), uniqueid="1.4")  # a supervisor barged in
    cases: list[tuple[Any, ...]] = [
        (ready, "7777", [mine, customer], UnknownTarget, "no agent '7777' to transfer to"),
        (me, "1001", [mine, customer], TransferRefused, "cannot hand a call to themselves"),
        (None, "2105", [mine, customer], TransferRefused, r"agent 2105 is not ready \(logged out\)"),
        (replace(ready, state=AgentState.WRAP_UP), "2105", [mine, customer], TransferRefused, r"\(wrap up\)"),
        (ready, "2105", [customer], TransferRefused, "1001 is not on a call"),
        (ready, "2105", [mine, customer, third], TransferRefused, "has 2 other parties"),
    ]
    for target, target_id, channels, error, message in cases:
        with pytest.raises(error, match=message):
            check_transfer_to_agent(settings, me, "1001", target, target_id, channels)


def test_the_service_sets_the_phone_and_the_fallback_before_the_transfer(settings: Settings) -> None:
    ami, board = _Ami(), AgentBoard()
    for agent, queue in (("1001", "hotline"), ("2105", "outbound")):
        board.handle(Message.from_pairs([("Event", "QueueMemberAdded"), ("Queue", queue),
                                         ("Interface", f"PJSIP/agent{agent}"), ("StateInterface", f"PJSIP/agent{agent}"),
                                         ("MemberName", agent), ("Paused", "0"), ("Status", "1")]), 100.0)
    channels = [_channel("PJSIP/agent1001-00000001"), replace(_channel("PJSIP/trunk-00000002"), uniqueid="1.3")]
    service = AgentService(settings, ami, board, Clock(), channels=lambda: channels)
    result: list[Any] = []
    service.transfer_to_agent("1001", "2105").addCallback(result.append)
    assert result == ["sent"]
    assert [(a.name, a.get("Value") or a.get("Exten")) for a in ami.sent] == [
        ("Setvar", "PJSIP/agent2105"), ("Setvar", "hotline"), ("BlindTransfer", "desk-2105")]
    ami.sent.clear()
    assert "cannot hand a call to themselves" in str(_failure_of(service.transfer_to_agent("1001", "1001")))
    assert ami.sent == []


@pytest.mark.parametrize("dial_first", [False, True])
def test_the_agent_who_answers_a_call_handed_to_them_is_its_agent(sessions: sessionmaker[Session],
                                                                  dial_first: bool) -> None:
    """cc-transfer dials 2105 directly (no queue): their screen pops at DialBegin, and once
    they answer (DialEnd ANSWER) they are the record's agent; the caller's first wait stays.
    Asterisk may publish the Dial from cc-transfer's desk-2105 before its BlindTransfer event
    (``dial_first``, seen on the lab): the same."""
    clock = Clock()
    clock.advance(1_795_400_000)
    ami = FakeAmi()
    engine = Engine(load_settings(ROOT / "config"), ami, SyncRepository(sessions), EngineMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    send = ami.events[0]
    uid = "8.1"
    caller = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": "13800138000",
              "CallerIDName": "Zhang", "Context": "hotline", "Exten": "s"}
    first = {**caller, "Channel": "PJSIP/agent1001-00000002", "Uniqueid": "8.2", "CallerIDNum": "1001"}
    second = {**caller, "Channel": "PJSIP/agent2105-00000003", "Uniqueid": "8.3", "CallerIDNum": "2105"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    send(_event(Event="VarSet", Variable="CC_DIRECTION", Value="inbound", **caller))
    send(_event(Event="QueueCallerJoin", Queue="hotline", Uniqueid=uid, Position="1", Count="1"))
    clock.advance(9)
    send(_event(Event="AgentCalled", Queue="hotline", Interface="PJSIP/agent1001", **caller))
    send(_event(Event="QueueCallerLeave", Queue="hotline", Uniqueid=uid, Count="0"))
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **first))
    send(_event(Event="AgentConnect", Queue="hotline", HoldTime="9", Interface="PJSIP/agent1001", **caller))
    for channel in (caller, first):
        send(_event(Event="BridgeEnter", BridgeUniqueid="b1", BridgeType="basic", **channel))
    clock.advance(15)
    dial = {"DestChannel": second["Channel"], "DestUniqueid": "8.3", "DestLinkedid": uid}
    transferred = {**caller, "Context": TRANSFER_CONTEXT, "Exten": "desk-2105"}

    def ring() -> None:
        send(_event(Event="Newchannel", ChannelState="5", ChannelStateDesc="Ringing", **second))
        send(_event(Event="DialBegin", DialString="agent2105", **transferred, **dial))

    if dial_first:
        ring()
    send(_message(LAB_BLIND_TRANSFER, TransfererChannel=first["Channel"], TransfereeUniqueid=uid,
                  TransfereeLinkedid=uid, TransfererLinkedid=uid, Extension="desk-2105"))
    for channel in (first, caller):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b1", BridgeType="basic", **channel))
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **first))
    if not dial_first:
        ring()
    assert engine.screen_pops["2105"] == uid
    clock.advance(3)
    send(_event(Event="Newstate", ChannelState="6", ChannelStateDesc="Up", **second))
    send(_event(Event="DialEnd", DialStatus="ANSWER", **transferred, **dial))
    for channel in (caller, second):
        send(_event(Event="BridgeEnter", BridgeUniqueid="b2", BridgeType="basic", **channel))
    clock.advance(20)
    for channel in (second, caller):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b2", BridgeType="basic", **channel))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **channel))
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.agent_id, record.transfers, record.queue, record.wait_seconds, record.talk_seconds) == (
        "2105", ("1001>agent:2105@24",), "hotline", 9, 35)


def test_callcenter_agent_transfer_posts_the_queue_or_the_agent(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    posted, run = cli_with_fake_daemon(monkeypatch, tmp_path)
    assert run("agent", "transfer", "1001", "outbound") == 0
    assert run("agent", "transfer", "1001", "--to-agent", "2105") == 0
    assert posted == [("POST", "agents/1001/transfer", {"queue": "outbound"}),
                      ("POST", "agents/1001/transfer", {"to_agent": "2105"})]
    assert run("agent", "transfer", "1001", "outbound", "--to-agent", "2105") == 2
    assert run("agent", "transfer", "1001") == 2
    assert "give either a queue or --to-agent ID" in capsys.readouterr().err
    assert len(posted) == 2
