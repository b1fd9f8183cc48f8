"""Supervisor listen/whisper/barge: permissions, the agent's channel, the ChanSpy Originate.

A fake AMI client records every Originate it is asked to send and answers with an
``OriginateResponse`` the test chooses; the CallState is fed hand-made AMI events shaped
like Asterisk 22's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from callcenter.ami.actions import AmiAction
from callcenter.ami.client import AmiNotConnected
from callcenter.ami.codec import Message
from callcenter.settings import Settings, load_settings
from callcenter.state.calls import CallState, ChannelState
from callcenter.supervisor import (
    AgentNotOnCall,
    CallEndedFirst,
    NotPermitted,
    SpyFailed,
    SpyMode,
    SpySession,
    SupervisorService,
    check_permission,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "config")


class FakeAmi:
    """Records Originate actions; answers each with ``reply`` (or fails with ``error``)."""

    def __init__(self) -> None:
        self.sent: list[AmiAction] = []
        self.reply: dict[str, str] = {"Response": "Success", "Reason": "4"}
        self.error: Exception | None = None

    def originate(
        self, action: AmiAction, *, timeout: float | None = None, action_id: str | None = None
    ) -> Deferred[Message]:
        self.sent.append(action)
        if self.error is not None:
            return fail(self.error)
        pairs = [("Event", "OriginateResponse"), ("ActionID", "sup-1"), ("Channel", action.get("Channel") or "")]
        pairs += [("Uniqueid", "1800000000.99"), *self.reply.items()]
        return succeed(Message.from_pairs(pairs))


def channel_event(
    event: str, uid: str, name: str, *, linkedid: str | None = None, state: ChannelState = ChannelState.UP
) -> Message:
    """A channel event with Asterisk 22's channel snapshot headers."""
    return Message.from_pairs([
        ("Event", event), ("Privilege", "call,all"), ("Channel", name),
        ("ChannelState", str(int(state))), ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "13800138000"), ("CallerIDName", "Cust"),
        ("ConnectedLineNum", "<unknown>"), ("ConnectedLineName", "<unknown>"),
        ("Language", "en"), ("AccountCode", ""), ("Context", "agents"), ("Exten", "s"),
        ("Priority", "1"), ("Uniqueid", uid), ("Linkedid", linkedid or uid),
    ])


def bridge_enter(bridge_id: str, uid: str, name: str, linkedid: str) -> Message:
    """A BridgeEnter of channel ``uid`` into ``bridge_id``."""
    snapshot = channel_event("BridgeEnter", uid, name, linkedid=linkedid)
    pairs = [("Event", "BridgeEnter"), ("BridgeUniqueid", bridge_id), ("BridgeType", "basic"),
             ("BridgeTechnology", "simple_bridge"), ("BridgeCreator", "<unknown>"),
             ("BridgeName", "<unknown>"), ("BridgeNumChannels", "1")]
    pairs += [(k, v) for k, v in snapshot.headers if k != "Event"]
    return Message.from_pairs(pairs)


def make_service(
    settings: Settings, supervisor_channel: str = "PJSIP/{endpoint}"
) -> tuple[SupervisorService, FakeAmi, CallState, Clock]:
    clock = Clock()
    clock.advance(1_800_000_000)
    ami = FakeAmi()
    calls = CallState()
    service = SupervisorService(settings, ami, calls, clock, supervisor_channel=supervisor_channel)
    return service, ami, calls, clock


def put_agent_on_call(calls: CallState, agent_id: str, uid: str = "1800000000.2") -> str:
    """A customer's trunk channel bridged with the agent's softphone; the agent channel's name."""
    name = f"PJSIP/agent{agent_id}-0000002a"
    calls.handle(channel_event("Newchannel", "1800000000.1", "PJSIP/trunk-00000029"), 1.0)
    calls.handle(channel_event("Newchannel", uid, name, linkedid="1800000000.1"), 2.0)
    calls.handle(bridge_enter("b-1", "1800000000.1", "PJSIP/trunk-00000029", "1800000000.1"), 3.0)
    calls.handle(bridge_enter("b-1", uid, name, "1800000000.1"), 3.0)
    return name


def result_of(d: Deferred[SpySession]) -> SpySession | Failure:
    box: list[SpySession | Failure] = []
    d.addBoth(box.append)
    assert box, "the Deferred did not fire"
    return box[0]


# ------------------------------------------------------------------ permissions


@pytest.mark.parametrize(
    ("supervisor", "agent", "allowed"),
    [
        ("8001", "2101", True),   # lead of team1 on a team1 agent
        ("8001", "2108", True),
        ("8001", "2201", False),  # lead of team1 on a team2 agent
        ("8002", "2101", False),
        ("8001", "1001", False),  # hotline agent, not the lead's team
        ("9001", "2101", True),   # manager: everyone
        ("9001", "2608", True),
        ("9001", "1001", True),
        ("9001", "8003", True),   # manager on a lead
        ("2101", "2102", False),  # plain agent, same team
        ("1001", "2101", False),
        ("8001", "8001", False),  # oneself
        ("9001", "9001", False),
    ],
)
def test_permission_matrix(settings: Settings, supervisor: str, agent: str, allowed: bool) -> None:
    """Leads supervise only their own team, managers everyone, agents no one, nobody
    themselves; a refusal names both ids."""
    if allowed:
        sup, ag = check_permission(settings, supervisor, agent)
        assert (sup.id, ag.id) == (supervisor, agent)
    else:
        with pytest.raises(NotPermitted) as refused:
            check_permission(settings, supervisor, agent)
        assert f"supervisor {supervisor}" in str(refused.value)
        assert f"agent {agent}" in str(refused.value)
        assert (refused.value.supervisor_id, refused.value.agent_id) == (supervisor, agent)


@pytest.mark.parametrize(("supervisor", "agent", "unknown"), [("7777", "2101", "7777"), ("9001", "2999", "2999")])
def test_unknown_ids_are_refused_with_the_id(settings: Settings, supervisor: str, agent: str, unknown: str) -> None:
    """An unknown supervisor or agent id is refused, and the message says which id."""
    with pytest.raises(NotPermitted, match=f"unknown (supervisor|agent) id '{unknown}'"):
        check_permission(settings, supervisor, agent)


def test_refused_request_sends_nothing(settings: Settings) -> None:
    """A plain agent asking to barge gets NotPermitted and no AMI action is sent, even
    though the target agent is on a call."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2102")
    outcome = result_of(service.spy("2101", "2102", "barge"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, NotPermitted)
    assert "supervisor 2101" in str(outcome.value) and "agent 2102" in str(outcome.value)
    assert ami.sent == []


# ------------------------------------------------------------------ the Originate


@pytest.mark.parametrize(
    ("mode", "options"), [("listen", "qEu"), ("whisper", "qwEu"), ("barge", "qBEu"), (SpyMode.BARGE, "qBEu")]
)
def test_spy_originates_chanspy_to_the_supervisor_phone(settings: Settings, mode: str | SpyMode, options: str) -> None:
    """Each mode calls the supervisor's own endpoint into ChanSpy on the agent's live
    channel with that mode's options, Async, caller id naming the supervisor; the
    session records who, whom, how and when."""
    service, ami, calls, clock = make_service(settings)
    name = put_agent_on_call(calls, "2101")
    session = result_of(service.spy("8001", "2101", mode))
    assert isinstance(session, SpySession), session
    (action,) = ami.sent
    assert action.name == "Originate"
    assert action.get("Channel") == "PJSIP/agent8001"
    assert action.get("Application") == "ChanSpy"
    assert action.get("Data") == f"{name},{options}"
    assert action.get("Async") == "true"
    assert action.get("Timeout") == "30000"
    assert action.get("CallerID") == f'"Team lead 1 ({SpyMode.parse(mode).value} 2101)" <8001>'
    assert ("CC_SPY_SUPERVISOR", "8001") in action.variables
    assert session == SpySession(
        supervisor_id="8001", agent_id="2101", mode=SpyMode.parse(mode), spied_channel=name,
        spied_uniqueid="1800000000.2", linkedid="1800000000.1", supervisor_channel="PJSIP/agent8001",
        supervisor_uniqueid="1800000000.99", action_id="sup-1", started_at=clock.seconds(),
    )


def test_agent_not_on_call(settings: Settings) -> None:
    """A permitted supervisor on an agent without a live channel gets AgentNotOnCall
    naming the agent (another agent's call does not count) and nothing is sent."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2102")
    calls.handle(channel_event("Newchannel", "1800000000.7", "PJSIP/agent21010-00000001"), 4.0)
    outcome = result_of(service.spy("9001", "2101", "listen"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, AgentNotOnCall)
    assert "agent 2101 is not on a call" in str(outcome.value)
    assert ami.sent == []


def test_agent_channel_gone_after_hangup(settings: Settings) -> None:
    """Once the agent's channel hung up, spying is refused as not on a call."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2101")
    hangup = channel_event("Hangup", "1800000000.2", "PJSIP/agent2101-0000002a", linkedid="1800000000.1")
    calls.handle(hangup, 9.0)
    outcome = result_of(service.spy("8001", "2101", "listen"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, AgentNotOnCall)
    assert ami.sent == []


def test_local_agent_prefers_the_bridged_half(settings: Settings) -> None:
    """A Local-channel agent (Local/2101@lab-agents) is found too; of its two halves the
    one bridged with the caller is spied. While the agent's phone only rings (neither half
    answered nor in a bridge: an offer they may never answer) spying is refused as not on
    a call (before, the supervisor's phone went into ChanSpy on the ringing channel)."""
    service, ami, calls, _ = make_service(settings, supervisor_channel="Local/park@lab-test")
    half1, half2 = "Local/2101@lab-agents-00000001;1", "Local/2101@lab-agents-00000001;2"
    calls.handle(channel_event("Newchannel", "5.1", "PJSIP/trunk-1"), 1.0)
    calls.handle(channel_event("Newchannel", "5.2", half1, linkedid="5.1", state=ChannelState.RINGING), 2.0)
    calls.handle(channel_event("Newchannel", "5.3", half2, linkedid="5.1", state=ChannelState.RINGING), 2.0)
    ringing = result_of(service.spy("8001", "2101", "whisper"))
    assert isinstance(ringing, Failure) and isinstance(ringing.value, AgentNotOnCall)
    assert ami.sent == []
    calls.handle(bridge_enter("b-5", "5.1", "PJSIP/trunk-1", "5.1"), 3.0)
    calls.handle(bridge_enter("b-5", "5.3", half2, "5.1"), 3.0)
    session = result_of(service.spy("8001", "2101", "whisper"))
    assert isinstance(session, SpySession) and session.spied_channel == half2
    assert ami.sent[-1].get("Channel") == "Local/park@lab-test"

    calls.handle(channel_event("Newchannel", "6.1", "Local/2101@lab-agents-00000002;1", linkedid="5.1"), 4.0)
    calls.handle(bridge_enter("b-9", "5.1", "PJSIP/trunk-1", "5.1"), 5.0)
    calls.handle(bridge_enter("b-9", "5.3", half2, "5.1"), 5.0)
    session = result_of(service.spy("8001", "2101", "whisper"))
    assert isinstance(session, SpySession) and session.spied_channel == half2


def test_channel_override_template_and_bad_template(settings: Settings) -> None:
    """A per-request channel override is a template ({id}, {endpoint}); an unknown
    field is a clear ValueError before anything is sent."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2101")
    result_of(service.spy("9001", "2101", "listen", channel="Local/{id}@supervisors"))
    assert ami.sent[-1].get("Channel") == "Local/9001@supervisors"
    outcome = result_of(service.spy("9001", "2101", "listen", channel="PJSIP/{phone}"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, ValueError)
    assert "{id} and {endpoint}" in str(outcome.value)
    assert len(ami.sent) == 1


def test_unknown_mode_is_refused(settings: Settings) -> None:
    """A mode other than listen/whisper/barge fails with the choices and sends nothing."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2101")
    outcome = result_of(service.spy("8001", "2101", "coach"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, ValueError)
    assert "'coach'" in str(outcome.value) and "listen, whisper, barge" in str(outcome.value)
    assert ami.sent == []


def test_unanswered_supervisor_phone_fails(settings: Settings) -> None:
    """An OriginateResponse Failure (supervisor's phone busy / no answer) fails the
    request with SpyFailed naming the supervisor, the channel and the reason."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2101")
    ami.reply = {"Response": "Failure", "Reason": "5"}
    outcome = result_of(service.spy("8001", "2101", "barge"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, SpyFailed)
    assert "supervisor 8001" in str(outcome.value) and "PJSIP/agent8001" in str(outcome.value)
    assert "reason 5" in str(outcome.value)


def test_a_call_that_ended_while_the_supervisors_phone_rang_is_reported(settings: Settings) -> None:
    """The supervisor's phone rings (up to 30 s) while the agent's call ends: ChanSpy has
    nothing to join (``u``: that channel) and hangs up. The request fails with
    CallEndedFirst, not a session the page would report as listening."""
    service, ami, calls, _ = make_service(settings)
    name = put_agent_on_call(calls, "2101")
    answered: list[Deferred[Message]] = []

    def ringing(action: AmiAction, *, timeout: float | None = None, action_id: str | None = None) -> Deferred[Message]:
        ami.sent.append(action)
        answered.append(Deferred())
        return answered[-1]

    ami.originate = ringing  # type: ignore[method-assign]
    pending = service.spy("8001", "2101", "listen")
    calls.handle(channel_event("Hangup", "1800000000.2", name, linkedid="1800000000.1"), 20.0)
    answered[0].callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"),
                                             ("Channel", "PJSIP/agent8001-00000031"), ("Uniqueid", "1800000000.9")]))
    outcome = result_of(pending)
    assert isinstance(outcome, Failure) and isinstance(outcome.value, CallEndedFirst)
    assert str(outcome.value).startswith("agent 2101's call (PJSIP/agent2101-0000002a) ended before supervisor "
                                         "8001's phone answered")


def test_ami_errors_pass_through(settings: Settings) -> None:
    """An AMI client error (not connected) reaches the caller unchanged."""
    service, ami, calls, _ = make_service(settings)
    put_agent_on_call(calls, "2101")
    ami.error = AmiNotConnected("AMI: not connected; Originate not sent")
    outcome = result_of(service.spy("8001", "2101", "listen"))
    assert isinstance(outcome, Failure) and isinstance(outcome.value, AmiNotConnected)


def test_caller_name_cannot_break_the_caller_id(settings: Settings) -> None:
    """Quotes and angle brackets in a supervisor's configured name are dropped from the
    CallerID so the number stays the supervisor's id."""
    from dataclasses import replace

    odd = replace(settings.agent("9002"), name='Boss "<1234>"')
    changed = replace(settings, agents=tuple(odd if a.id == "9002" else a for a in settings.agents))
    service, ami, calls, _ = make_service(changed)
    put_agent_on_call(calls, "2101")
    result_of(service.spy("9002", "2101", "listen"))
    assert ami.sent[-1].get("CallerID") == '"Boss 1234 (listen 2101)" <9002>'


def test_bad_ring_timeout() -> None:
    """A non-positive ring timeout is refused when the service is built."""
    with pytest.raises(ValueError, match="ring_timeout"):
        SupervisorService(None, FakeAmi(), CallState(), Clock(), ring_timeout=0)  # type: ignore[arg-type]
