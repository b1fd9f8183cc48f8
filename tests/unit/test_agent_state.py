"""The sans-IO agent board: hand-made app_queue frames and the real Asterisk 22 capture.

Hand-made frames carry the headers Asterisk 22 writes (see the capture); the capture
(``tests/fixtures/ami/``) has agents 1001-1006 as static ``Local/100X@agents/n``
members, fed through the real parser.
"""

from __future__ import annotations

import gzip
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from callcenter.ami.codec import AmiParser, Message
from callcenter.state.agents import (
    NO_ANSWER,
    TRANSITIONS,
    AgentAnomaly,
    AgentAutoPaused,
    AgentBoard,
    AgentFact,
    AgentState,
    AgentStateChanged,
    Trigger,
    agent_id_of,
    pause_reason,
)

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"

S = AgentState
IFACE = "PJSIP/agent2101"


def ev(name: str, **headers: object) -> Message:
    """An AMI event ``name`` with ``headers`` (values as Asterisk writes them)."""
    return Message.from_pairs([("Event", name), *((k, str(v)) for k, v in headers.items())])


def added(queue: str = "hotline", interface: str = IFACE, paused: int = 0, reason: str = "") -> Message:
    return ev(
        "QueueMemberAdded", Queue=queue, MemberName="Agent 2101", Interface=interface,
        StateInterface=interface, Membership="dynamic", Penalty=0, InCall=0, Status=1,
        Paused=paused, PausedReason=reason, Wrapuptime=0,
    )


def removed(queue: str = "hotline", interface: str = IFACE) -> Message:
    return ev("QueueMemberRemoved", Queue=queue, Interface=interface, StateInterface=interface)


def pause(queue: str = "hotline", paused: int = 1, reason: str = "") -> Message:
    return ev("QueueMemberPause", Queue=queue, Interface=IFACE, StateInterface=IFACE, Paused=paused, PausedReason=reason)


def call_event(name: str, queue: str = "hotline", **extra: object) -> Message:
    return ev(
        name, Channel="PJSIP/trunk-00000001", Uniqueid="1700000000.1", Linkedid="1700000000.1",
        DestChannel="PJSIP/agent2101-00000002", DestUniqueid="1700000000.2", Queue=queue,
        Interface=IFACE, MemberName="Agent 2101", **extra,
    )


def states(facts: list[AgentFact]) -> list[tuple[str, str]]:
    return [(f.old.value, f.new.value) for f in facts if isinstance(f, AgentStateChanged)]


def logged_in(board: AgentBoard, *queues: str) -> None:
    for queue in queues or ("hotline",):
        board.handle(added(queue), 0.0)


# ------------------------------------------------------------------- identity


@pytest.mark.parametrize(
    ("interface", "agent"),
    [
        ("PJSIP/agent2101", "2101"),
        ("Local/2101@lab-agents/n", "2101"),
        ("Local/1001@agents/n", "1001"),
        ("SIP/frontdesk", None),
        ("", None),
        (None, None),
    ],
)
def test_agent_id_comes_from_the_interface_digits(interface: str | None, agent: str | None) -> None:
    """Production (PJSIP/agentNNNN) and lab (Local/NNNN@ctx/n) members map to the same
    agent id; a member without digits is not an agent."""
    assert agent_id_of(interface) == agent


def test_transition_table_only_names_real_states_and_triggers() -> None:
    """The table is the single source of legal moves: nothing leaves LOGGED_OUT except a
    login, and logout is legal from every logged-in state."""
    assert {t for (s, t) in TRANSITIONS if s is S.LOGGED_OUT} == {Trigger.LOGIN}
    assert {s for (s, t) in TRANSITIONS if t is Trigger.LOGOUT} == set(S) - {S.LOGGED_OUT}


# ------------------------------------------------------------------- life cycle


def test_full_cycle_login_ring_talk_wrapup_ready_logout() -> None:
    """An agent logs in, is rung, answers, finishes, wraps up for the queue's
    wrap-up seconds (tick), becomes ready and logs out; totals and call ids follow."""
    board = AgentBoard({"hotline": 10})
    facts = board.handle(added(), 1.0)
    assert states(facts) == [("logged_out", "ready")]
    board.handle(call_event("AgentCalled"), 2.0)
    assert board.state_of("2101") is S.RINGING
    board.handle(call_event("AgentConnect", HoldTime=5, RingTime=1), 3.0)
    agent = board.agent("2101")
    assert agent is not None
    assert (agent.state, agent.call_uniqueid, agent.call_linkedid, agent.since) == (
        S.ON_CALL, "1700000000.1", "1700000000.1", 3.0,
    )
    facts = board.handle(call_event("AgentComplete", TalkTime=42, HoldTime=5, Reason="caller"), 45.0)
    assert states(facts) == [("on_call", "wrap_up")]
    assert board.next_deadline() == 55.0
    assert board.tick(54.9) == []
    assert states(board.tick(55.0)) == [("wrap_up", "ready")]
    assert board.next_deadline() is None
    agent = board.agent("2101")
    assert agent is not None
    assert (agent.calls_handled, agent.talk_time, agent.call_uniqueid) == (1, 42.0, None)
    assert states(board.handle(removed(), 60.0)) == [("ready", "logged_out")]


def test_an_agent_who_leaves_a_call_the_caller_stays_on_is_done_with_it() -> None:
    """The agent's channel hangs up before app_queue's AgentComplete (an agent leaving a
    three-way call, or the hangup simply arriving first): their part of the call ends there,
    with its wrap-up; the AgentComplete that comes when the caller hangs up, maybe while the
    agent is rung for another call, is only counted (their talk up to their hangup)."""
    board = AgentBoard({"hotline": 10})
    board.handle(added(), 1.0)
    board.handle(call_event("AgentCalled"), 2.0)
    board.handle(call_event("AgentConnect", HoldTime=5, RingTime=1), 3.0)
    facts = board.handle(ev("Hangup", Channel="PJSIP/agent2101-00000002", Uniqueid="1700000000.2", Cause=16), 33.0)
    assert states(facts) == [("on_call", "wrap_up")]
    assert board.next_deadline() == 43.0
    assert states(board.tick(43.0)) == [("wrap_up", "ready")]
    board.handle(ev("AgentCalled", Channel="PJSIP/trunk-00000009", Uniqueid="1700000000.9",
                    Linkedid="1700000000.9", DestChannel="PJSIP/agent2101-0000000a", DestUniqueid="1700000000.10",
                    Queue="hotline", Interface=IFACE, MemberName="Agent 2101"), 50.0)
    facts = board.handle(call_event("AgentComplete", TalkTime=200, HoldTime=5, Reason="caller"), 203.0)
    assert facts == [] and board.state_of("2101") is S.RINGING and board.anomalies == 0
    agent = board.agent("2101")
    assert agent is not None and (agent.calls_handled, agent.talk_time) == (1, 30.0)
    # a hangup of the agent's channel after AgentComplete (the usual order) changes nothing
    second = {"Channel": "PJSIP/trunk-00000009", "Uniqueid": "1700000000.9", "Linkedid": "1700000000.9",
              "DestChannel": "PJSIP/agent2101-0000000a", "DestUniqueid": "1700000000.10", "Queue": "hotline",
              "Interface": IFACE, "MemberName": "Agent 2101"}
    board.handle(ev("AgentConnect", HoldTime=1, RingTime=1, **second), 205.0)
    board.handle(ev("AgentComplete", TalkTime=10, Reason="agent", **second), 215.0)
    assert board.handle(ev("Hangup", Uniqueid="1700000000.10", Cause=16), 215.0) == []
    agent = board.agent("2101")
    assert agent is not None and (agent.state, agent.calls_handled, agent.talk_time) == (S.WRAP_UP, 2, 40.0)


def test_queue_without_wrapup_goes_straight_back_to_ready() -> None:
    """A queue with 0 wrap-up seconds (or not configured) makes the agent ready at once."""
    board = AgentBoard({"outbound": 0})
    logged_in(board, "outbound")
    board.handle(call_event("AgentConnect", queue="outbound"), 1.0)
    assert states(board.handle(call_event("AgentComplete", queue="outbound", TalkTime=3), 4.0)) == [
        ("on_call", "ready")
    ]


def test_new_ring_ends_wrapup_early() -> None:
    """When Asterisk rings the agent during the engine's wrap-up, the event wins."""
    board = AgentBoard({"hotline": 30})
    logged_in(board)
    board.handle(call_event("AgentConnect"), 1.0)
    board.handle(call_event("AgentComplete", TalkTime=3), 4.0)
    assert states(board.handle(call_event("AgentCalled"), 5.0)) == [("wrap_up", "ringing")]
    assert board.next_deadline() is None


def test_ring_no_answer_and_cancelled_ring_return_to_ready() -> None:
    """AgentRingNoAnswer ends a ring; so does a Hangup of the ringing channel (ringall
    or an abandoning caller: app_queue sends no AgentRingNoAnswer then)."""
    board = AgentBoard()
    logged_in(board)
    board.handle(call_event("AgentCalled"), 1.0)
    assert states(board.handle(call_event("AgentRingNoAnswer", RingTime=15), 16.0)) == [("ringing", "ready")]
    board.handle(call_event("AgentCalled"), 20.0)
    assert board.handle(ev("Hangup", Uniqueid="9.9"), 21.0) == []
    assert states(board.handle(ev("Hangup", Uniqueid="1700000000.2"), 22.0)) == [("ringing", "ready")]
    agent = board.agent("2101")
    assert agent is not None and agent.call_uniqueid is None


def test_agent_dump_ends_the_call_without_wrapup() -> None:
    """AgentDump (the agent hung up before talking) makes the agent available again."""
    board = AgentBoard({"hotline": 30})
    logged_in(board)
    board.handle(call_event("AgentCalled"), 1.0)
    assert states(board.handle(call_event("AgentDump"), 2.0)) == [("ringing", "ready")]


# ------------------------------------------------------------------- pause


def test_pause_with_reason_and_unpause() -> None:
    """QueueMemberPause pauses with its reason and unpausing makes the agent ready;
    the reason survives app_queue's empty PausedReason on unpause."""
    board = AgentBoard()
    logged_in(board)
    facts = board.handle(pause(reason="lunch"), 5.0)
    assert states(facts) == [("ready", "paused")]
    assert isinstance(facts[0], AgentStateChanged) and "lunch" in facts[0].reason
    agent = board.agent("2101")
    assert agent is not None and agent.pause_reason == "lunch"
    assert states(board.handle(pause(paused=0), 9.0)) == [("paused", "ready")]
    agent = board.agent("2101")
    assert agent is not None and (agent.pause_reason, agent.last_pause_reason) == (None, "lunch")


def test_pause_reason_kept_when_asterisk_forgets_it() -> None:
    """A pause reported without a reason (app_queue lost it) keeps the known reason."""
    board = AgentBoard()
    logged_in(board)
    board.handle(pause(reason="training"), 1.0)
    board.handle(pause(reason=""), 2.0)
    agent = board.agent("2101")
    assert agent is not None and agent.pause_reason == "training"


def test_asterisks_auto_pause_is_a_no_answer_pause() -> None:
    """queues.conf ``autopause``: Asterisk pauses a member who let a call ring out, reason
    ``Auto-Pause``; the board says "no answer" (live, and from a resync's QueueMember)."""
    board = AgentBoard()
    logged_in(board)
    facts = board.handle(pause(reason="Auto-Pause"), 5.0)
    assert states(facts) == [("ready", "paused")] and NO_ANSWER in facts[0].reason  # type: ignore[union-attr]
    agent = board.agent("2101")
    assert agent is not None and agent.pause_reason == NO_ANSWER == "no answer"
    assert pause_reason("lunch") == "lunch" and pause_reason("") == "" and pause_reason(None) is None


def test_paused_only_when_paused_in_every_queue() -> None:
    """An agent paused in one of two queues can still be rung: it stays ready until
    the pause reaches every queue it joined."""
    board = AgentBoard()
    logged_in(board, "hotline", "outbound")
    assert states(board.handle(pause("hotline", reason="break"), 1.0)) == []
    assert states(board.handle(pause("outbound", reason="break"), 1.0)) == [("ready", "paused")]
    assert states(board.handle(pause("hotline", paused=0), 2.0)) == [("paused", "ready")]


def test_pause_during_call_wins_over_wrapup() -> None:
    """Paused on a call: the agent stays on_call, then goes to paused, not wrap-up; after
    unpausing within the wrap-up window, wrap-up resumes until its deadline."""
    board = AgentBoard({"hotline": 30})
    logged_in(board)
    board.handle(call_event("AgentConnect"), 1.0)
    assert states(board.handle(pause(reason="after-call"), 2.0)) == []
    assert board.state_of("2101") is S.ON_CALL
    assert states(board.handle(call_event("AgentComplete", TalkTime=9), 10.0)) == [("on_call", "paused")]
    assert states(board.handle(pause(paused=0), 20.0)) == [("paused", "wrap_up")]
    assert states(board.tick(40.0)) == [("wrap_up", "ready")]


def test_login_paused_starts_paused() -> None:
    """QueueAdd with Paused=true (QueueMemberAdded Paused: 1) logs the agent in paused."""
    board = AgentBoard()
    facts = board.handle(added(paused=1, reason="briefing"), 1.0)
    assert states(facts) == [("logged_out", "paused")]
    agent = board.agent("2101")
    assert agent is not None and agent.pause_reason == "briefing"


# ------------------------------------------------------------------- anomalies


def test_illegal_transitions_are_anomalies_not_exceptions() -> None:
    """AgentComplete without a call, a ring-no-answer while idle, and removal from a
    queue never joined are reported as anomalies; the state is kept."""
    board = AgentBoard()
    logged_in(board)
    facts = board.handle(call_event("AgentComplete", TalkTime=3), 1.0)
    facts += board.handle(call_event("AgentRingNoAnswer"), 2.0)
    facts += board.handle(removed("outbound"), 3.0)
    anomalies = [f for f in facts if isinstance(f, AgentAnomaly)]
    assert [(a.trigger, a.state) for a in anomalies] == [
        (Trigger.COMPLETE, S.READY), (Trigger.RING_END, S.READY), (Trigger.LOGOUT, S.READY),
    ]
    assert board.anomalies == 3
    agent = board.agent("2101")
    assert agent is not None and (agent.state, agent.calls_handled, agent.queues) == (S.READY, 0, ("hotline",))


def test_events_after_logout_are_anomalies() -> None:
    """A call event for an agent that logged out does not log it back in."""
    board = AgentBoard()
    logged_in(board)
    board.handle(removed(), 1.0)
    facts = board.handle(call_event("AgentConnect"), 2.0)
    assert [type(f) for f in facts] == [AgentAnomaly]
    assert board.state_of("2101") is S.LOGGED_OUT


def test_non_agent_members_and_other_events_are_ignored() -> None:
    """Members without an agent id and unrelated events produce nothing."""
    board = AgentBoard()
    assert board.handle(added(interface="SIP/frontdesk"), 1.0) == []
    assert board.handle(ev("Newchannel", Uniqueid="1.1"), 1.0) == []
    assert board.agents() == []


def test_device_state_of_the_state_interface_is_recorded() -> None:
    """DeviceStateChange for the member's state interface lands on the agent."""
    board = AgentBoard()
    lab_member = ev(
        "QueueMemberAdded", Queue="hotline", Interface="Local/2101@lab-agents/n",
        StateInterface="Custom:agent2101", Paused=0,
    )
    board.handle(lab_member, 0.0)
    board.handle(ev("DeviceStateChange", Device="Custom:agent2101", State="INUSE"), 1.0)
    board.handle(ev("DeviceStateChange", Device="Custom:agent9999", State="INUSE"), 1.0)
    agent = board.agent("2101")
    assert agent is not None and (agent.device_state, agent.state_interface) == ("INUSE", "Custom:agent2101")


# ------------------------------------------------------------------- calls of their own


def own(kind: str, agent: str = "2101", uniqueid: str = "1700000100.9") -> Message:
    return ev("UserEvent", UserEvent=kind, Agent=agent, Channel="PJSIP/agent2101-00000009", Uniqueid=uniqueid)


def test_a_call_of_the_agents_own_is_a_call_then_they_wait_as_before() -> None:
    """AgentBusy/AgentFree ([agent-dial], [dialer-preview]): a ready agent is on a call and ready
    after; a paused one paused again after; one in wrap-up ends it by calling out."""
    board = AgentBoard({"hotline": 30})
    logged_in(board)
    assert states(board.handle(own("AgentBusy"), 1.0)) == [("ready", "on_call")]
    assert board.handle(own("AgentBusy"), 1.5) == []  # said twice: still the one call
    assert states(board.handle(own("AgentFree"), 9.0)) == [("on_call", "ready")]
    board.handle(pause(reason="after-call work"), 10.0)
    assert states(board.handle(own("AgentBusy"), 11.0)) == [("paused", "on_call")]
    assert states(board.handle(own("AgentFree"), 20.0)) == [("on_call", "paused")]
    board.handle(pause(paused=0), 21.0)
    board.handle(call_event("AgentConnect", HoldTime=3), 22.0)
    board.handle(call_event("AgentComplete", HoldTime=3, TalkTime=10), 32.0)
    assert board.state_of("2101") is S.WRAP_UP
    assert states(board.handle(own("AgentBusy"), 33.0)) == [("wrap_up", "on_call")]
    assert states(board.handle(own("AgentFree"), 40.0)) == [("on_call", "ready")]  # no wrap-up left
    assert board.next_deadline() is None and board.anomalies == 0


def test_a_colleagues_ring_unanswered_during_an_own_call_does_not_end_it() -> None:
    """The agent is on a call of their own ([agent-dial]); a colleague's call rings their phone
    too ([agent-callee]: AgentBusy and AgentFree from that ring's own channel) and is not
    answered: the agent stays on their call until its own channel says AgentFree. A stale
    channel left from before (its AgentFree never seen) does not hold the agent busy later."""
    board = AgentBoard({"hotline": 30})
    logged_in(board)
    assert states(board.handle(own("AgentBusy", uniqueid="1.1"), 1.0)) == [("ready", "on_call")]
    assert board.handle(own("AgentBusy", uniqueid="1.2"), 5.0) == []  # the colleague's ring
    assert board.handle(own("AgentFree", uniqueid="1.2"), 25.0) == []  # rang out
    assert board.state_of("2101") is S.ON_CALL
    assert states(board.handle(own("AgentFree", uniqueid="1.1"), 60.0)) == [("on_call", "ready")]
    # one call whose AgentFree comes from a channel of another id (renamed): still its end
    board.handle(own("AgentBusy", uniqueid="2.1"), 70.0)
    assert states(board.handle(own("AgentFree", uniqueid="2.7"), 80.0)) == [("on_call", "ready")]
    board.handle(own("AgentBusy", uniqueid="3.1"), 90.0)
    board.handle(own("AgentBusy", uniqueid="3.2"), 91.0)
    board.handle(removed(), 92.0)  # logged out with both legs up; 3.1's AgentFree never seen
    board.handle(own("AgentFree", uniqueid="3.2"), 93.0)
    logged_in(board)
    assert states(board.handle(own("AgentBusy", uniqueid="4.1"), 100.0)) == [("ready", "on_call")]
    assert states(board.handle(own("AgentFree", uniqueid="4.1"), 110.0)) == [("on_call", "ready")]
    assert board.anomalies == 0


def test_own_call_words_out_of_place_change_nothing() -> None:
    """AgentBusy during a queue call, AgentFree without an own call, unknown or logged-out
    agents, other user events: no state change, no anomaly (the queue call is app_queue's)."""
    board = AgentBoard()
    logged_in(board)
    board.handle(call_event("AgentConnect", HoldTime=1), 1.0)
    assert board.handle(own("AgentBusy"), 2.0) == [] and board.state_of("2101") is S.ON_CALL
    assert board.handle(own("AgentFree"), 3.0) == [] and board.state_of("2101") is S.ON_CALL
    assert board.handle(own("AgentBusy", agent="9999"), 3.0) == []
    assert board.handle(own("DialerResult"), 3.0) == []
    board.handle(call_event("AgentComplete", HoldTime=1, TalkTime=2), 4.0)
    board.handle(removed(), 5.0)
    assert board.handle(own("AgentBusy"), 6.0) == [] and board.state_of("2101") is S.LOGGED_OUT
    assert board.anomalies == 0


# ------------------------------------------------------------------- resync


def member_item(queue: str, location: str, *, paused: int = 0, reason: str = "", in_call: int = 0, status: int = 1) -> Message:
    return ev(
        "QueueMember", Queue=queue, Name="x", Location=location, StateInterface=location,
        Membership="dynamic", Penalty=0, CallsTaken=0, InCall=in_call, Status=status,
        Paused=paused, PausedReason=reason, ActionID="qs-1",
    )


def test_resync_rebuilds_the_board() -> None:
    """A QueueStatus snapshot is the truth: absent agents log out, InCall puts an agent
    on a call, Status ringing rings, Paused pauses (keeping a known reason when
    PausedReason comes back empty)."""
    board = AgentBoard()
    logged_in(board)  # 2101, will vanish
    board.handle(ev("QueueMemberAdded", Queue="hotline", Interface="PJSIP/agent2104", Paused=1, PausedReason="lunch"), 0.0)
    snapshot = [
        ev("QueueParams", Queue="hotline"),
        member_item("hotline", "PJSIP/agent2102", in_call=1, status=2),
        member_item("outbound", "PJSIP/agent2102"),
        member_item("hotline", "PJSIP/agent2103", status=6),
        member_item("hotline", "PJSIP/agent2104", paused=1, reason=""),
        member_item("hotline", "PJSIP/agent2105"),
    ]
    facts = board.resync(snapshot, 100.0)
    assert {(f.agent, f.new.value) for f in facts if isinstance(f, AgentStateChanged)} == {
        ("2101", "logged_out"), ("2102", "on_call"), ("2103", "ringing"), ("2105", "ready"),
    }
    assert all(f.reason == "resync" for f in facts if isinstance(f, AgentStateChanged))
    a2102, a2104 = board.agent("2102"), board.agent("2104")
    assert a2102 is not None and a2102.queues == ("hotline", "outbound")
    assert a2104 is not None and (a2104.state, a2104.pause_reason) == (S.PAUSED, "lunch")
    assert board.resync(snapshot, 101.0) == []


def test_a_resync_during_an_agents_own_call_keeps_them_on_it_until_agent_free() -> None:
    """InCall counts queue calls only: an agent whose phone is in use (Status 2) outside them
    is on a call of their own. A resync (AMI reconnect, daemon restart) keeps them on it and
    the next AgentFree ends it; before, they were made ready for the whole call (the dialer
    and the queues counted them). A phone no longer in use at the resync ends a call whose
    AgentFree came while AMI was down."""
    board = AgentBoard()
    logged_in(board)
    board.handle(own("AgentBusy"), 1.0)
    assert board.resync([member_item("hotline", IFACE, status=2)], 5.0) == []
    assert board.state_of("2101") is S.ON_CALL
    assert states(board.handle(own("AgentFree"), 60.0)) == [("on_call", "ready")]
    fresh = AgentBoard()  # a restarted daemon: the call's AgentBusy came before it
    assert states(fresh.resync([member_item("hotline", IFACE, status=2)], 5.0)) == [("logged_out", "on_call")]
    assert states(fresh.handle(own("AgentFree", uniqueid="1700000100.77"), 60.0)) == [("on_call", "ready")]
    again = AgentBoard()  # a colleague rings them during the call the resync found: both end
    again.resync([member_item("hotline", IFACE, status=2)], 5.0)
    again.handle(own("AgentBusy", uniqueid="1700000100.88"), 10.0)
    assert again.handle(own("AgentFree", uniqueid="1700000100.77"), 20.0) == []
    assert states(again.handle(own("AgentFree", uniqueid="1700000100.88"), 30.0)) == [("on_call", "ready")]
    quiet = AgentBoard()  # a call that sends no AgentFree: the member status ends it
    quiet.resync([member_item("hotline", IFACE, status=2)], 5.0)
    status = ev("QueueMemberStatus", Queue="hotline", Interface=IFACE, StateInterface=IFACE, Status=1, Paused=0,
                InCall=0)
    assert states(quiet.handle(status, 40.0)) == [("on_call", "ready")]
    fresh.handle(own("AgentBusy"), 70.0)
    assert states(fresh.resync([member_item("hotline", IFACE, status=1)], 90.0)) == [("on_call", "ready")]
    assert states(fresh.handle(own("AgentBusy", uniqueid="1700000100.80"), 95.0)) == [("ready", "on_call")]


def test_an_agent_resynced_ringing_is_ready_again_when_the_ring_stops() -> None:
    """A resync finds the phone ringing (Status 6) without knowing its channel; the caller
    gives up (no AgentRingNoAnswer: app_queue hangs the ringing channel up) and the member
    status goes back to not in use: ready again (before, ringing for good)."""
    board = AgentBoard()
    assert states(board.resync([member_item("hotline", IFACE, status=6)], 0.0)) == [("logged_out", "ringing")]
    status = ev("QueueMemberStatus", Queue="hotline", Interface=IFACE, StateInterface=IFACE, Status=1, Paused=0,
                InCall=0)
    assert states(board.handle(status, 12.0)) == [("ringing", "ready")]


def test_a_new_pause_reason_is_a_new_stretch_of_the_pause() -> None:
    """Paused for a break, then the reason becomes lunch: a paused -> paused change with the
    new reason (the agent time report splits the pause by reason; before, the whole pause
    was the break)."""
    board = AgentBoard()
    logged_in(board)
    board.handle(pause(reason="break"), 10.0)
    facts = board.handle(pause(reason="lunch"), 600.0)
    assert [(f.old.value, f.new.value, f.at, f.reason) for f in facts if isinstance(f, AgentStateChanged)] == [
        ("paused", "paused", 600.0, "pause reason: lunch")]
    assert board.handle(pause(reason="lunch"), 601.0) == []  # said again (another queue): nothing new


def test_an_auto_pause_is_one_fact_not_repeated_after_a_call_or_a_resync() -> None:
    """Asterisk's Auto-Pause gives one AgentAutoPaused; the agent calling a customer back
    while still paused, or a resync finding them paused, gives none."""
    board = AgentBoard()
    logged_in(board)
    auto = [f for f in board.handle(pause(reason="Auto-Pause"), 5.0) if isinstance(f, AgentAutoPaused)]
    assert auto == [AgentAutoPaused("2101", 5.0)]
    board.handle(own("AgentBusy"), 10.0)
    after_call = board.handle(own("AgentFree"), 40.0)
    assert states(after_call) == [("on_call", "paused")]
    assert not any(isinstance(f, AgentAutoPaused) for f in after_call)
    fresh = AgentBoard()
    found = fresh.resync([member_item("hotline", IFACE, paused=1, reason="Auto-Pause")], 50.0)
    assert states(found) == [("logged_out", "paused")] and not any(isinstance(f, AgentAutoPaused) for f in found)


def test_the_calls_handled_count_from_the_log_in() -> None:
    """The wallboard's calls and talk time are since the agent logged in: a new log-in (the
    next shift) starts them at 0 (before, they ran on since the daemon started)."""
    board = AgentBoard()
    logged_in(board)
    board.handle(call_event("AgentCalled"), 1.0)
    board.handle(call_event("AgentConnect", HoldTime=1), 2.0)
    board.handle(call_event("AgentComplete", TalkTime=300, Reason="caller"), 302.0)
    agent = board.agent("2101")
    assert agent is not None and (agent.calls_handled, agent.talk_time) == (1, 300.0)
    board.handle(removed(), 400.0)
    board.handle(added(), 90_000.0)
    agent = board.agent("2101")
    assert agent is not None and (agent.calls_handled, agent.talk_time) == (0, 0.0)


# ------------------------------------------------------------------- the real capture


@cache
def capture_messages() -> tuple[Message, ...]:
    return tuple(AmiParser().feed(gzip.decompress(CAPTURE.read_bytes())))


def test_capture_every_connect_is_on_call_and_every_complete_ends_it() -> None:
    """Fed the real Asterisk 22 capture, the board finds agents 1001-1006 (static
    members), puts an agent on_call at each AgentConnect and out of it at each
    AgentComplete, counts every call, and reports no anomaly."""
    messages = capture_messages()
    board = AgentBoard({"hotline": 3, "outbound": 2})
    facts: list[AgentFact] = []
    after: Counter[tuple[str, AgentState]] = Counter()
    for index, message in enumerate(messages):
        now = index * 0.005
        facts += board.tick(now)
        facts += board.handle(message, now)
        if message.name in ("AgentConnect", "AgentComplete", "AgentCalled"):
            agent = agent_id_of(message["Interface"])
            assert agent is not None
            after[(message.name, board.state_of(agent))] += 1
    names = Counter(m.name for m in messages)
    assert after[("AgentConnect", S.ON_CALL)] == names["AgentConnect"] == 159
    assert after[("AgentCalled", S.RINGING)] == names["AgentCalled"]
    assert sum(n for (name, state), n in after.items() if name == "AgentComplete" and state is not S.ON_CALL) == 159
    assert board.anomalies == 0 and not [f for f in facts if isinstance(f, AgentAnomaly)]
    agents = board.agents()
    assert [a.id for a in agents] == ["1001", "1002", "1003", "1004", "1005", "1006"]
    assert sum(a.calls_handled for a in agents) == names["AgentComplete"]
    assert {a.queues for a in agents} == {("hotline",), ("outbound",)}
    assert all(a.state_interface == f"Custom:agent{a.id}" for a in agents)
    # Besides the six discovery logins, only the call cycle appears (Asterisk itself
    # has no wrap-up here, so it rings agents again during the engine's wrap-up).
    moves = Counter((f.old, f.new) for f in facts if isinstance(f, AgentStateChanged) and f.reason != "discovered")
    assert set(moves) == {
        (S.READY, S.RINGING), (S.RINGING, S.ON_CALL), (S.ON_CALL, S.WRAP_UP), (S.WRAP_UP, S.RINGING),
    }
    assert moves[(S.RINGING, S.ON_CALL)] == moves[(S.ON_CALL, S.WRAP_UP)] == 159
    # The capture's own QueueStatus snapshots agree with the board when replayed.
    last_snapshot = [m for m in messages if m.name == "QueueMember" and m.get("ActionID") == "qs-10"]
    assert last_snapshot
    resynced = board.resync(last_snapshot, 1000.0)
    assert {a.id for a in board.agents() if a.state is not S.LOGGED_OUT} == {
        agent_id_of(m["Location"]) for m in last_snapshot
    }
    assert not [f for f in resynced if isinstance(f, AgentAnomaly)]
