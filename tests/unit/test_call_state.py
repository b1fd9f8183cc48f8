"""Tests of the sans-IO call-state model (``callcenter.state.calls``).

Two kinds: the real Asterisk 22 capture (``tests/fixtures/ami/``) fed through the
AMI parser and the model, and handmade event sequences with exact times. Times are a
logical clock passed as ``now`` (the capture has no ``Timestamp`` headers), so every
result is deterministic.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import random
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

import callcenter.state
from callcenter.ami.codec import AmiParser, Message
from callcenter.state import (
    TRANSITIONS,
    CallAnswered,
    CallBridged,
    CallEnded,
    CallStarted,
    CallState,
    Channel,
    ChannelHungUp,
    ChannelState,
    Fact,
    OriginateResult,
    StateAnomaly,
    Transition,
)

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"


@cache
def capture_bytes() -> bytes:
    """The decompressed capture (read once per test session)."""
    return gzip.decompress(CAPTURE.read_bytes())


@cache
def raw_blocks() -> tuple[dict[str, str], ...]:
    """The capture's messages split on the raw bytes, not with the codec under test
    (first value of each header; the capture has no Follows block)."""
    body = capture_bytes().split(b"\r\n", 1)[1]
    blocks = []
    for block in body.split(b"\r\n\r\n"):
        if block:
            pairs = (line.split(b": ", 1) for line in reversed(block.split(b"\r\n")))
            blocks.append({p[0].decode(): p[-1].decode() for p in pairs})
    return tuple(blocks)


@cache
def capture_messages() -> tuple[Message, ...]:
    """The capture parsed in one go."""
    return tuple(AmiParser().feed(capture_bytes()))


def run(chunks: Iterable[bytes]) -> tuple[CallState, list[Fact]]:
    """Parse ``chunks`` and apply each message at ``now`` = its index in the stream."""
    parser = AmiParser()
    state = CallState()
    facts: list[Fact] = []
    feed = parser.feed
    handle = state.handle
    index = 0
    for chunk in chunks:
        for msg in feed(chunk):
            facts += handle(msg, float(index))
            index += 1
    assert index == 21_221
    return state, facts


@cache
def run_whole() -> tuple[CallState, tuple[Fact, ...]]:
    """The capture through parser and model in one chunk (shared by several tests)."""
    state, facts = run([capture_bytes()])
    return state, tuple(facts)


def channels_left_by_raw_count() -> set[str]:
    """Unique ids with a ``Newchannel`` and no ``Hangup``, from the raw bytes."""
    created = {b["Uniqueid"] for b in raw_blocks() if b.get("Event") == "Newchannel"}
    hung_up = {b["Uniqueid"] for b in raw_blocks() if b.get("Event") == "Hangup"}
    return created - hung_up


def ended(facts: Iterable[Fact]) -> list[CallEnded]:
    """The ``CallEnded`` facts."""
    return [f for f in facts if isinstance(f, CallEnded)]


# ----------------------------------------------------------------------- the capture


def test_capture_leaves_exactly_the_channels_still_up() -> None:
    """Fed the whole capture, the model ends with exactly the channels that have a
    ``Newchannel`` and no ``Hangup`` (counted independently on the raw bytes), their
    calls, and no bridge (every bridge of the capture is destroyed)."""
    state, _ = run_whole()
    expected = channels_left_by_raw_count()
    assert expected == {"1795415357.1090"}
    assert state.channel_ids == expected
    assert set(state.channels) == expected
    assert {c.linkedid for c in state.channels.values()} == set(state.calls(0.0))
    assert state.bridges == {}
    assert state.counters == {}  # no anomaly, no adoption, no stray event


@pytest.mark.parametrize("chunking", ["64KiB", "one-byte", "random-1-to-7"])
def test_capture_same_result_whatever_the_chunking(chunking: str) -> None:
    """Byte by byte, in 64 KiB chunks or random small chunks: the same final channels
    (full snapshots) and the very same list of facts as the whole stream at once."""
    data = capture_bytes()
    chunks: Iterable[bytes]
    if chunking == "64KiB":
        chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    elif chunking == "one-byte":
        chunks = (data[i : i + 1] for i in range(len(data)))
    else:
        rng = random.Random(7)
        cuts = [0]
        while cuts[-1] < len(data):
            cuts.append(cuts[-1] + rng.randint(1, 7))
        chunks = (data[a:b] for a, b in itertools.pairwise(cuts))
    state, facts = run(chunks)
    whole_state, whole_facts = run_whole()
    assert state.channels == whole_state.channels
    assert state.calls(21_221.0) == whole_state.calls(21_221.0)
    assert len(facts) == len(whole_facts)
    assert facts == list(whole_facts)


def test_capture_fact_counts() -> None:
    """One CallStarted per linkedid, one CallEnded per call that ended, one
    ChannelHungUp per Hangup, one OriginateResult per OriginateResponse, no anomaly."""
    _, facts = run_whole()
    kinds = Counter(type(f).__name__ for f in facts)
    blocks = raw_blocks()
    linkedids = {b["Linkedid"] for b in blocks if b.get("Event") == "Newchannel"}
    assert kinds["CallStarted"] == len(linkedids) == 245
    assert kinds["CallEnded"] == 244  # one call is still up at the end
    assert kinds["ChannelHungUp"] == sum(
        1 for b in blocks if b.get("Event") == "Hangup"
    )
    assert kinds["OriginateResult"] == 245
    assert kinds["CallAnswered"] == 200
    assert kinds["CallBridged"] == 159  # one per queue call that reached an agent
    assert kinds["StateAnomaly"] == 0


def test_capture_durations_are_consistent() -> None:
    """Every CallEnded has non-negative durations; answered calls have ring + talk
    within the total; unanswered ones ring for the whole call and never talk."""
    _, facts = run_whole()
    calls = ended(facts)
    assert calls
    for fact in calls:
        call = fact.call
        assert fact.duration >= 0 and fact.ring_time >= 0 and fact.talk_time >= 0
        assert fact.duration == fact.at - call.started_at
        assert call.ended_at == fact.at
        if fact.answered:
            assert call.answered_at is not None
            assert fact.talk_time <= fact.duration
            assert fact.ring_time + fact.talk_time <= fact.duration
        else:
            assert fact.ring_time == fact.duration
            assert fact.talk_time == 0
        if call.bridged_at is None:
            assert fact.talk_time == 0
        else:
            assert 0 < fact.talk_time <= fact.at - call.bridged_at


def test_capture_lead_ids_land_on_the_dialer_calls() -> None:
    """The ``LEAD_ID`` each dialer Originate set (seen as VarSet) is on the call's
    facts; answered dialer calls also carry their ``dial-N`` ActionID, and the
    busy/no-answer ones end unanswered with their lead."""
    state, facts = run_whole()
    lead_by_linkedid = {
        b["Linkedid"]: b["Value"]
        for b in raw_blocks()
        if b.get("Event") == "VarSet" and b.get("Variable") == "LEAD_ID"
    }
    assert len(lead_by_linkedid) == 118
    calls = {f.linkedid: f for f in ended(facts)}
    live = state.calls(0.0)
    for linkedid, lead in lead_by_linkedid.items():
        call = calls[linkedid].call if linkedid in calls else live[linkedid]
        assert call.lead_id == lead
    assert all(
        f.lead_id is None for f in calls.values() if f.linkedid not in lead_by_linkedid
    )
    results = [f for f in facts if isinstance(f, OriginateResult)]
    dial_ok = [
        r for r in results if r.success and (r.action_id or "").startswith("dial-")
    ]
    assert dial_ok
    for result in dial_ok:
        assert result.linkedid is not None
        assert calls[result.linkedid].call.originate_action_id == result.action_id
        assert calls[result.linkedid].lead_id == lead_by_linkedid[result.linkedid]
    failed = [r for r in results if not r.success]
    assert Counter(r.reason_txt for r in failed) == {"ringing": 30, "busy": 15}
    assert all(r.uniqueid is None and r.linkedid is None for r in failed)
    unanswered: list[str | None] = [
        f.lead_id for f in calls.values() if f.lead_id and not f.answered
    ]
    # the capture ends between the Originate's failure and its ;1 channel's Hangup
    unanswered += [c.lead_id for c in live.values() if c.answered_at is None]
    assert all(unanswered) and len(unanswered) == len(failed) == 45


def test_capture_local_channels_pair_into_paths() -> None:
    """Every LocalBridge pairs its ;1 and ;2 halves: the ended calls' paths group
    them, e.g. an inbound queue call is two paths (caller pair, agent pair)."""
    _, facts = run_whole()
    for fact in ended(facts):
        call = fact.call
        assert sorted(u for path in call.paths for u in path) == sorted(call.channels)
        assert all(len(path) == 2 for path in call.paths)  # only Local channels here
    first = ended(facts)[0].call
    assert first.originate_action_id == "in-1"
    assert len(first.paths) == 2


def test_capture_handle_all_equals_handle() -> None:
    """``handle_all(messages, now)`` gives the same facts and state as ``handle`` on
    each message with the same ``now`` (the bench and the client use it per read)."""
    data = capture_bytes()
    one, many = CallState(), CallState()
    parser_one, parser_many = AmiParser(), AmiParser()
    facts_one: list[Fact] = []
    facts_many: list[Fact] = []
    for n, i in enumerate(range(0, len(data), 65536)):
        chunk = data[i : i + 65536]
        for msg in parser_one.feed(chunk):
            facts_one += one.handle(msg, float(n))
        facts_many += many.handle_all(parser_many.feed(chunk), float(n))
    assert facts_many == facts_one
    assert many.channels == one.channels


# ----------------------------------------------------------------------- resync


def list_items(action_id: str) -> list[Message]:
    """The ``CoreShowChannel`` items of one list of the capture."""
    return [
        m
        for m in capture_messages()
        if m.name == "CoreShowChannel" and m["ActionID"] == action_id
    ]


def test_resync_from_scratch_rebuilds_channels_calls_and_bridges() -> None:
    """A fresh model resynced from a CoreShowChannels list has exactly the listed
    channels, late calls dated by the channels' ``Duration``, and the bridges the
    list names, with their calls talking."""
    items = list_items("cs-10")
    assert len(items) == 26
    state = CallState()
    facts = state.resync(items, now=1000.0)
    assert state.channel_ids == {m["Uniqueid"] for m in items}
    started = [f for f in facts if isinstance(f, CallStarted)]
    assert {f.linkedid for f in started} == {m["Linkedid"] for m in items}
    assert all(f.late for f in started)
    oldest = {m["Linkedid"]: 0 for m in items}
    for m in items:
        h, mi, s = (int(x) for x in m["Duration"].split(":"))
        oldest[m["Linkedid"]] = max(oldest[m["Linkedid"]], h * 3600 + mi * 60 + s)
    for call in state.calls(1000.0).values():
        assert call.late and call.started_at == 1000.0 - oldest[call.linkedid]
    bridge_ids = {m["BridgeId"] for m in items if m["BridgeId"]}
    assert set(state.bridges) == bridge_ids
    bridged = [f for f in facts if isinstance(f, CallBridged)]
    assert {f.bridge_id for f in bridged} == bridge_ids
    for m in items:
        channel = state.channel(m["Uniqueid"])
        assert channel is not None
        assert channel.state == ChannelState(int(m["ChannelState"]))
        assert channel.context == m["Context"] and channel.exten == m["Exten"]
        assert channel.bridge_id == (m["BridgeId"] or None)
    assert not ended(facts)


def test_resync_after_a_disconnection_in_the_capture() -> None:
    """Simulated reconnection: the model misses a stretch of the capture, then
    resyncs from the first CoreShowChannels list after it while still handling live
    events. Channels hung up unseen end with ``disconnected=True`` (exactly those),
    nothing stale survives, and the capture still ends with the right channels."""
    messages = capture_messages()
    k = 6000  # the AMI session drops here ...
    r = next(  # ... and a new one starts just before this list request
        i
        for i, m in enumerate(messages)
        if i > k + 1500 and m.get("Message") == "Channels will follow"
    )
    list_id = messages[r]["ActionID"]
    state = CallState()
    for i in range(k):
        state.handle(messages[i], float(i))
    alive_at_k = set(state.channel_ids)
    calls_at_k = set(state.calls(float(k)))

    state.begin_resync()
    items: list[Message] = []
    facts: list[Fact] = []
    for i in range(r, len(messages)):
        msg = messages[i]
        if msg.name == "CoreShowChannel" and msg["ActionID"] == list_id:
            items.append(msg)
        elif msg.name == "CoreShowChannelsComplete" and msg["ActionID"] == list_id:
            facts += state.resync(items, float(i))
        facts += state.handle(msg, float(i))
    assert items

    hangup_index = {
        m["Uniqueid"]: i for i, m in enumerate(messages) if m.name == "Hangup"
    }
    gone_unseen = {u for u in alive_at_k if k <= hangup_index.get(u, -1) < r}
    assert gone_unseen  # the gap is long enough to lose some calls
    lost = {
        f.uniqueid for f in facts if isinstance(f, ChannelHungUp) and f.disconnected
    }
    assert lost == gone_unseen
    last_hangup: dict[str, int] = {}
    for i, m in enumerate(messages):
        if m.name == "Hangup":
            last_hangup[m["Linkedid"]] = i
    expected_calls = {
        lid for lid in calls_at_k if k <= last_hangup.get(lid, len(messages)) < r
    }
    assert {f.linkedid for f in ended(facts) if f.disconnected} == expected_calls
    assert state.channel_ids == channels_left_by_raw_count()
    assert state.bridges == {}


# ----------------------------------------------------------------------- handmade

_DESC = {s: s.desc for s in ChannelState}


def chan(
    event: str,
    uid: str,
    linkedid: str | None = None,
    *,
    state: ChannelState = ChannelState.DOWN,
    name: str | None = None,
    context: str = "from-trunk",
    exten: str = "400",
    priority: int = 1,
    caller: str = "5551234",
    extra: Iterable[tuple[str, str]] = (),
) -> Message:
    """A channel event shaped like Asterisk 22's (channel snapshot, then ``extra``)."""
    return Message.from_pairs(
        [
            ("Event", event),
            ("Privilege", "call,all"),
            ("Channel", name or f"PJSIP/trunk-{uid}"),
            ("ChannelState", str(int(state))),
            ("ChannelStateDesc", _DESC[state]),
            ("CallerIDNum", caller),
            ("CallerIDName", "Cust"),
            ("ConnectedLineNum", "<unknown>"),
            ("ConnectedLineName", "<unknown>"),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", context),
            ("Exten", exten),
            ("Priority", str(priority)),
            ("Uniqueid", uid),
            ("Linkedid", linkedid or uid),
            *extra,
        ]
    )


def bridge_event(event: str, bridge_id: str, channel: Message | None = None) -> Message:
    """A Bridge* event; with ``channel`` (a channel event) for Enter/Leave."""
    pairs = [
        ("Event", event),
        ("Privilege", "call,all"),
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", "0"),
    ]
    if channel is not None:
        pairs += [(k, v) for k, v in channel.headers if k not in ("Event", "Privilege")]
    return Message.from_pairs(pairs)


def event(name: str, *pairs: tuple[str, str]) -> Message:
    """Any event from its headers."""
    return Message.from_pairs([("Event", name), *pairs])


UP, RING, DOWN = ChannelState.UP, ChannelState.RING, ChannelState.DOWN


def test_answer_bridge_hangup_facts_with_exact_durations() -> None:
    """Inbound call answered at 2 s, agent bridged at 7.5 s, caller leaves at 20 s,
    agent hangs up at 21 s: exact facts, durations and ended-call data."""
    s = CallState()
    caller = "100.1"
    agent = "100.2"
    trunk = "PJSIP/trunk-00000001"
    assert s.handle(chan("Newchannel", caller, state=RING, name=trunk), 0.0) == [
        CallStarted(
            0.0,
            caller,
            caller,
            trunk,
            "5551234",
            "Cust",
            "from-trunk",
            "400",
            late=False,
        )
    ]
    assert s.handle(chan("Newstate", caller, state=UP, name=trunk), 2.0) == [
        CallAnswered(2.0, caller, caller, trunk, ring_time=2.0)
    ]
    q = [("Application", "Queue"), ("AppData", "hotline")]
    assert (
        s.handle(
            chan("Newexten", caller, state=UP, name=trunk, priority=4, extra=q), 3.0
        )
        == []
    )
    a = "PJSIP/agent7-00000002"
    assert (
        s.handle(chan("Newchannel", agent, caller, name=a, context="agents"), 5.0) == []
    )
    dest = [(("Dest" + k), v) for k, v in chan("X", agent, caller, name=a).headers[2:]]
    assert s.handle(event("DialBegin", *dest), 5.0) == []
    assert s.handle(chan("Newstate", agent, caller, state=UP, name=a), 7.0) == []
    assert s.handle(event("DialEnd", *dest, ("DialStatus", "ANSWER")), 7.0) == []
    assert s.handle(bridge_event("BridgeCreate", "br-1"), 7.0) == []
    agent_up = chan("X", agent, caller, state=UP, name=a)
    caller_up = chan("X", caller, state=UP, name=trunk)
    assert s.handle(bridge_event("BridgeEnter", "br-1", agent_up), 7.0) == []
    assert s.handle(bridge_event("BridgeEnter", "br-1", caller_up), 7.5) == [
        CallBridged(7.5, caller, "br-1", (agent, caller), wait_time=7.5, first=True)
    ]
    live = s.call(caller, 10.0)
    assert live is not None and live.talk_time == 2.5 and live.bridged_at == 7.5
    assert s.bridges["br-1"].channels == (agent, caller)
    assert s.handle(bridge_event("BridgeLeave", "br-1", caller_up), 20.0) == []
    cause = [("Cause", "16"), ("Cause-txt", "Normal Clearing")]
    hung = s.handle(chan("Hangup", caller, state=UP, name=trunk, extra=cause), 20.0)
    assert hung == [
        ChannelHungUp(
            20.0, caller, caller, trunk, 16, "Normal Clearing", 0.0, 2.0, None, False
        )
    ]
    assert s.handle(bridge_event("BridgeLeave", "br-1", agent_up), 20.25) == []
    assert s.handle(bridge_event("BridgeDestroy", "br-1"), 20.25) == []
    other = [("Cause", "17"), ("Cause-txt", "User busy")]
    facts = s.handle(chan("Hangup", agent, caller, state=UP, name=a, extra=other), 21.0)
    assert [type(f) for f in facts] == [ChannelHungUp, CallEnded]
    assert isinstance(facts[0], ChannelHungUp) and facts[0].dial_status == "ANSWER"
    end = facts[1]
    assert isinstance(end, CallEnded)
    assert (end.at, end.duration, end.ring_time, end.talk_time) == (
        21.0,
        21.0,
        2.0,
        12.5,
    )
    assert end.answered and not end.disconnected
    assert (end.cause, end.cause_txt) == (16, "Normal Clearing")  # the caller's cause
    assert end.call.channels == (caller, agent)
    assert end.call.paths == ((caller,), (agent,))
    assert (end.call.started_at, end.call.answered_at, end.call.bridged_at) == (
        0.0,
        2.0,
        7.5,
    )
    assert end.call.ended_at == 21.0 and end.call.caller_id_num == "5551234"
    assert s.channel_ids == frozenset() and s.calls(21.0) == {} and s.bridges == {}


def test_unanswered_call_rings_for_its_whole_duration() -> None:
    """A call that never goes Up ends unanswered: ring time = duration, no talk, and
    the cause of its hangup."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", state=RING), 10.0)
    cause = [("Cause", "19"), ("Cause-txt", "User alerting, no answer")]
    facts = s.handle(chan("Hangup", "1.1", state=RING, extra=cause), 40.0)
    end = facts[-1]
    assert isinstance(end, CallEnded)
    assert (end.duration, end.ring_time, end.talk_time, end.answered) == (
        30.0,
        30.0,
        0.0,
        False,
    )
    assert end.cause == 19 and end.call.answered_at is None


def test_talk_time_adds_up_over_several_bridges() -> None:
    """Talk time is the sum of the bridged stretches (e.g. a transfer), and each new
    bridge gives a CallBridged fact, only the first with ``first=True``."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", state=UP), 0.0)
    s.handle(chan("Newchannel", "1.2", "1.1", state=UP), 0.0)
    s.handle(chan("Newchannel", "1.3", "1.1", state=UP), 0.0)
    a, b, c = (chan("X", u, "1.1", state=UP) for u in ("1.1", "1.2", "1.3"))
    s.handle(bridge_event("BridgeEnter", "b1", a), 1.0)
    first = s.handle(bridge_event("BridgeEnter", "b1", b), 2.0)
    s.handle(bridge_event("BridgeLeave", "b1", b), 5.0)  # 3 s of talk
    s.handle(bridge_event("BridgeLeave", "b1", a), 6.0)
    s.handle(bridge_event("BridgeEnter", "b2", a), 10.0)
    second = s.handle(bridge_event("BridgeEnter", "b2", c), 10.5)
    assert [f.first for f in first + second if isinstance(f, CallBridged)] == [
        True,
        False,
    ]
    s.handle(chan("Hangup", "1.2", "1.1"), 11.0)
    s.handle(chan("Hangup", "1.3", "1.1"), 14.5)  # 4 s more, bridge implicitly left
    end = s.handle(chan("Hangup", "1.1"), 15.0)[-1]
    assert isinstance(end, CallEnded)
    assert end.talk_time == 7.0 and end.ring_time == 0.0 and end.duration == 15.0


def test_transition_table_is_total_and_says_what_changes_mean() -> None:
    """Every (old, new) pair of the 10 channel states has exactly one meaning: Up
    from any pre-answer state answers, a repeat is a repeat, leaving Up is illegal."""
    states = list(ChannelState)
    assert len(states) == 10 and [int(s) for s in states] == list(range(10))
    assert set(TRANSITIONS) == {(a, b) for a in states for b in states}
    assert TRANSITIONS[RING, UP] is Transition.ANSWER
    assert TRANSITIONS[UP, UP] is Transition.REPEAT
    assert TRANSITIONS[UP, ChannelState.RINGING] is Transition.ILLEGAL
    assert TRANSITIONS[RING, ChannelState.BUSY] is Transition.PROGRESS
    assert ChannelState.DIALING_OFFHOOK.desc == "Dialing Offhook"
    assert ChannelState.PRERING.desc == "Pre-ring"


def test_repeated_and_illegal_transitions_do_not_stop_the_stream() -> None:
    """``Newstate Up`` twice is counted, not a second answer; Up -> Ringing is applied
    and reported as an anomaly; an unknown state code is reported and ignored; the
    stream goes on and the call still ends normally."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", state=RING), 0.0)
    assert [type(f) for f in s.handle(chan("Newstate", "1.1", state=UP), 1.0)] == [
        CallAnswered
    ]
    assert s.handle(chan("Newstate", "1.1", state=UP), 2.0) == []
    assert s.counters == {"repeated_state": 1}
    (anomaly,) = s.handle(chan("Newstate", "1.1", state=ChannelState.RINGING), 3.0)
    assert anomaly == StateAnomaly(3.0, "illegal_transition", "1.1", "Up -> Ringing")
    channel = s.channel("1.1")
    assert channel is not None and channel.state is ChannelState.RINGING
    assert channel.answered_at == 1.0
    weird = Message.from_pairs(
        [
            (k, "42" if k == "ChannelState" else v)
            for k, v in chan("Newstate", "1.1").headers
        ]
    )
    (unknown,) = s.handle(weird, 4.0)
    assert isinstance(unknown, StateAnomaly) and unknown.kind == "unknown_state"
    assert s.handle(chan("Newstate", "1.1", state=UP), 5.0) == []  # already answered
    end = s.handle(chan("Hangup", "1.1"), 6.0)[-1]
    assert isinstance(end, CallEnded) and end.ring_time == 1.0
    assert s.counters == {
        "repeated_state": 1,
        "illegal_transition": 1,
        "unknown_state": 1,
    }


def test_hangup_of_an_unknown_channel_does_not_crash() -> None:
    """A Hangup for a channel never seen (created before the session) adopts it on
    the fly: a late call starts and ends; a second Hangup for it is only counted."""
    s = CallState()
    facts = s.handle(chan("Hangup", "9.9", state=UP, extra=[("Cause", "16")]), 50.0)
    assert [type(f) for f in facts] == [
        CallStarted,
        CallAnswered,
        ChannelHungUp,
        CallEnded,
    ]
    assert isinstance(facts[0], CallStarted) and facts[0].late
    end = facts[-1]
    assert isinstance(end, CallEnded) and end.call.late and end.duration == 0.0
    assert s.handle(chan("Hangup", "9.9", state=UP), 51.0) == []
    assert s.handle(chan("Newexten", "9.9", state=UP), 51.0) == []
    assert s.counters == {"adopted_channel": 1, "event_after_hangup": 2}
    assert s.channel_ids == frozenset()


def test_events_for_unknown_channels_create_them_on_the_fly() -> None:
    """Any channel event for an unknown unique id (here a Newexten, a DialBegin's
    destination, a LocalBridge) creates the channel from the event's snapshot."""
    s = CallState()
    facts = s.handle(
        chan("Newexten", "5.1", state=UP, context="queue", exten="s", priority=3), 1.0
    )
    assert [type(f) for f in facts] == [CallStarted, CallAnswered]
    channel = s.channel("5.1")
    assert channel is not None
    assert (channel.context, channel.exten, channel.priority, channel.state) == (
        "queue",
        "s",
        3,
        UP,
    )
    dest = [(("Dest" + k), v) for k, v in chan("X", "5.2", "5.1").headers[2:]]
    assert s.handle(event("DialBegin", *dest), 2.0) == []
    assert s.channel("5.2") is not None and s.channel_ids == {"5.1", "5.2"}
    assert len(s.calls(2.0)) == 1


def test_malformed_events_become_anomalies() -> None:
    """A channel event without Uniqueid, or with a non-numeric Priority, is reported
    as ``malformed_event`` and later events still apply."""
    s = CallState()
    (a,) = s.handle(event("Newstate", ("ChannelState", "6")), 1.0)
    assert isinstance(a, StateAnomaly) and a.kind == "malformed_event"
    s.handle(chan("Newchannel", "1.1"), 2.0)
    bad = Message.from_pairs(
        [(k, "x" if k == "Priority" else v) for k, v in chan("Newexten", "1.1").headers]
    )
    (b,) = s.handle(bad, 3.0)
    assert (
        isinstance(b, StateAnomaly)
        and b.kind == "malformed_event"
        and b.uniqueid == "1.1"
    )
    assert [type(f) for f in s.handle(chan("Newstate", "1.1", state=UP), 4.0)] == [
        CallAnswered
    ]
    assert s.counters["malformed_event"] == 2


def test_responses_and_unused_events_are_ignored() -> None:
    """Responses (even with a Uniqueid) and events the model does not use change
    nothing and give no fact."""
    s = CallState()
    assert (
        s.handle(
            Message.from_pairs([("Response", "Success"), ("Uniqueid", "1.1")]), 0.0
        )
        == []
    )
    assert s.handle(event("TestEvent", ("Uniqueid", "1.1")), 0.0) == []
    assert (
        s.handle(chan("CoreShowChannel", "1.1"), 0.0) == []
    )  # only resync() uses these
    assert s.channel_ids == frozenset() and s.counters == {}


def test_timestamp_header_wins_over_now() -> None:
    """With ``timestampevents = yes`` Asterisk's ``Timestamp`` dates the facts; without
    it the caller's ``now`` does."""
    s = CallState()
    stamped = chan(
        "Newchannel", "1.1", state=RING, extra=[("Timestamp", "1700000000.250000")]
    )
    (started,) = s.handle(stamped, 5.0)
    assert started.at == 1700000000.25
    (answered,) = s.handle(chan("Newstate", "1.1", state=UP), 1700000003.0)
    assert isinstance(answered, CallAnswered) and answered.ring_time == 2.75


def test_variables_lead_and_campaign_on_channel_and_call() -> None:
    """VarSet of LEAD_ID and CAMPAIGN_ID (inheritance underscores stripped) lands on
    the channel and the call; other names are ignored by default; an empty value
    unsets the channel's variable but the call remembers its lead."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1"), 0.0)
    s.handle(
        chan("VarSet", "1.1", extra=[("Variable", "LEAD_ID"), ("Value", "42")]), 0.1
    )
    s.handle(
        chan("VarSet", "1.1", extra=[("Variable", "__CAMPAIGN_ID"), ("Value", "c7")]),
        0.2,
    )
    s.handle(
        chan("VarSet", "1.1", extra=[("Variable", "BRIDGEPEER"), ("Value", "x")]), 0.3
    )
    channel = s.channel("1.1")
    assert channel is not None and channel.variables == {
        "LEAD_ID": "42",
        "CAMPAIGN_ID": "c7",
    }
    call = s.call("1.1", 1.0)
    assert call is not None and (call.lead_id, call.campaign_id) == ("42", "c7")
    s.handle(chan("VarSet", "1.1", extra=[("Variable", "LEAD_ID"), ("Value", "")]), 0.4)
    channel = s.channel("1.1")
    assert channel is not None and channel.variables == {"CAMPAIGN_ID": "c7"}
    end = s.handle(chan("Hangup", "1.1"), 1.0)[-1]
    assert (
        isinstance(end, CallEnded)
        and end.lead_id == "42"
        and end.call.campaign_id == "c7"
    )


def test_keep_all_variables_with_a_cap_and_chanvariable_headers() -> None:
    """``variables=None`` keeps every name up to ``max_variables`` per channel (the
    rest counted); ``ChanVariable`` headers on Newchannel are read too."""
    s = CallState(variables=None, max_variables=2)
    s.handle(chan("Newchannel", "1.1", extra=[("ChanVariable", "LEAD_ID=5")]), 0.0)
    for name in ("A", "B", "C"):
        s.handle(chan("VarSet", "1.1", extra=[("Variable", name), ("Value", "v")]), 1.0)
    channel = s.channel("1.1")
    assert channel is not None and channel.variables == {"LEAD_ID": "5", "A": "v"}
    assert s.counters == {"variables_dropped": 2}
    custom = CallState(variables={"TICKET"})
    custom.handle(chan("Newchannel", "2.1"), 0.0)
    custom.handle(
        chan("VarSet", "2.1", extra=[("Variable", "TICKET"), ("Value", "T1")]), 0.0
    )
    custom.handle(
        chan("VarSet", "2.1", extra=[("Variable", "LEAD_ID"), ("Value", "1")]), 0.0
    )
    call = custom.call("2.1", 0.0)
    assert (
        call is not None and call.variables == {"TICKET": "T1"} and call.lead_id is None
    )


def test_local_bridge_pairs_halves_into_one_path() -> None:
    """LocalBridge links ;1 and ;2 (``local_peer`` both ways) and the call shows them
    as one path next to the other channel."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", name="Local/400@default-0001;1"), 0.0)
    s.handle(chan("Newchannel", "1.2", "1.1", name="Local/400@default-0001;2"), 0.0)
    one = [("LocalOne" + k, v) for k, v in chan("X", "1.1").headers[2:]]
    two = [("LocalTwo" + k, v) for k, v in chan("X", "1.2", "1.1").headers[2:]]
    assert (
        s.handle(event("LocalBridge", *one, *two, ("LocalOptimization", "Yes")), 0.0)
        == []
    )
    s.handle(chan("Newchannel", "1.3", "1.1", name="PJSIP/agent-0003"), 1.0)
    ch1, ch2 = s.channel("1.1"), s.channel("1.2")
    assert ch1 is not None and ch2 is not None
    assert (ch1.local_peer, ch2.local_peer) == ("1.2", "1.1")
    call = s.call("1.1", 1.0)
    assert call is not None and call.paths == (("1.1", "1.2"), ("1.3",))


def test_originate_response_results() -> None:
    """OriginateResponse gives an OriginateResult; on success the call learns its
    ActionID; a failure with ``Uniqueid: <unknown>`` has no call."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", name="Local/555@sim-pstn-0001;1"), 0.0)
    ok = event(
        "OriginateResponse",
        ("ActionID", "dial-7"),
        ("Response", "Success"),
        ("Channel", "Local/555@sim-pstn-0001;1"),
        ("Reason", "4"),
        ("Uniqueid", "1.1"),
    )
    assert s.handle(ok, 3.0) == [
        OriginateResult(
            3.0,
            "dial-7",
            True,
            4,
            "answered",
            "1.1",
            "Local/555@sim-pstn-0001;1",
            "1.1",
        )
    ]
    call = s.call("1.1", 3.0)
    assert call is not None and call.originate_action_id == "dial-7"
    busy = event(
        "OriginateResponse",
        ("ActionID", "dial-8"),
        ("Response", "Failure"),
        ("Channel", "Local/556@sim-pstn"),
        ("Reason", "5"),
        ("Uniqueid", "<unknown>"),
    )
    assert s.handle(busy, 4.0) == [
        OriginateResult(
            4.0, "dial-8", False, 5, "busy", None, "Local/556@sim-pstn", None
        )
    ]


def test_rename_caller_id_connected_line_and_dial_status() -> None:
    """Rename, NewCallerid, NewConnectedLine and DialBegin/DialEnd update the channel."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", caller="<unknown>"), 0.0)
    s.handle(
        event(
            "Rename",
            ("Channel", "PJSIP/trunk-1.1"),
            ("Newname", "PJSIP/trunk-1.1<ZOMBIE>"),
            ("Uniqueid", "1.1"),
        ),
        1.0,
    )
    s.handle(chan("NewCallerid", "1.1", caller="5559999"), 1.0)
    connected = Message.from_pairs(
        [
            (k, {"ConnectedLineNum": "100", "ConnectedLineName": "Agent"}.get(k, v))
            for k, v in chan("NewConnectedLine", "1.1").headers
        ]
    )
    s.handle(connected, 1.0)
    dest = [(("Dest" + k), v) for k, v in chan("X", "1.1").headers[2:]]
    s.handle(event("DialBegin", *dest), 1.0)
    channel = s.channel("1.1")
    assert channel is not None and channel.dial_status == ""
    s.handle(event("DialEnd", *dest, ("DialStatus", "BUSY")), 2.0)
    channel = s.channel("1.1")
    assert channel == Channel(
        uniqueid="1.1",
        linkedid="1.1",
        name="PJSIP/trunk-1.1<ZOMBIE>",
        state=DOWN,
        caller_id_num="5559999",
        caller_id_name="Cust",
        connected_line_num="100",
        connected_line_name="Agent",
        context="from-trunk",
        exten="400",
        priority=1,
        application="",
        created_at=0.0,
        answered_at=None,
        variables={},
        bridge_id=None,
        local_peer=None,
        dial_status="BUSY",
    )


def test_resync_ends_calls_gone_while_disconnected() -> None:
    """Handmade reconnection: a bridged call survives (no new bridge fact), a call
    whose channel vanished ends ``disconnected``, and a call that started meanwhile
    appears late, dated by its ``Duration``, answered at the resync."""
    s = CallState()
    for uid in ("1.1", "1.2"):
        s.handle(chan("Newchannel", uid, "1.1", state=UP), 0.0)
        s.handle(
            bridge_event("BridgeEnter", "br", chan("X", uid, "1.1", state=UP)), 1.0
        )
    s.handle(chan("Newchannel", "2.1", state=RING), 2.0)
    s.begin_resync()
    listing = [
        chan(
            "CoreShowChannel",
            "1.1",
            state=UP,
            extra=[("Duration", "00:01:40"), ("BridgeId", "br")],
        ),
        chan(
            "CoreShowChannel",
            "1.2",
            "1.1",
            state=UP,
            extra=[("Duration", "00:01:40"), ("BridgeId", "br")],
        ),
        chan(
            "CoreShowChannel",
            "3.1",
            state=UP,
            extra=[("Duration", "00:01:05"), ("BridgeId", "")],
        ),
        Message.from_pairs([("Event", "CoreShowChannelsComplete"), ("ListItems", "3")]),
    ]
    facts = s.resync(listing, 100.0)
    assert [type(f) for f in facts] == [
        CallStarted,
        CallAnswered,
        ChannelHungUp,
        CallEnded,
    ]
    started, answered, hung, end = facts
    assert isinstance(started, CallStarted) and started.late and started.at == 35.0
    assert isinstance(answered, CallAnswered) and answered.at == 100.0
    assert (
        isinstance(hung, ChannelHungUp) and hung.disconnected and hung.uniqueid == "2.1"
    )
    assert isinstance(end, CallEnded) and end.disconnected and end.linkedid == "2.1"
    assert end.duration == 98.0 and not end.answered
    assert s.channel_ids == {"1.1", "1.2", "3.1"}
    call = s.call("1.1", 100.0)
    assert call is not None and call.talk_time == 99.0


def test_resync_keeps_what_live_events_said_since_begin_resync() -> None:
    """After ``begin_resync`` live events beat the (older) list: a channel created
    since is not dropped for being unlisted, a state change since is not undone, and
    a channel whose Hangup came before the list is not resurrected."""
    s = CallState()
    s.handle(chan("Newchannel", "1.1", state=RING), 0.0)
    s.handle(chan("Newchannel", "2.1", state=RING), 0.0)
    s.begin_resync()
    s.handle(chan("Newstate", "1.1", state=UP), 1.0)
    s.handle(chan("Hangup", "2.1"), 1.5)
    s.handle(chan("Newchannel", "4.1", state=RING), 2.0)
    listing = [
        chan("CoreShowChannel", "1.1", state=RING, extra=[("Duration", "00:00:01")]),
        chan("CoreShowChannel", "2.1", state=RING, extra=[("Duration", "00:00:01")]),
    ]
    facts = s.resync(listing, 3.0)
    assert facts == []
    assert s.channel_ids == {"1.1", "4.1"}
    channel = s.channel("1.1")
    assert channel is not None and channel.state is UP
    assert s.counters == {"listed_after_hangup": 1}


# ----------------------------------------------------------------------- API


def test_public_api_is_locked() -> None:
    """The names ``callcenter.state`` exports (other modules build on them)."""
    assert sorted(callcenter.state.__all__) == sorted(
        [
            "DEFAULT_VARIABLES",
            "TRANSITIONS",
            "Bridge",
            "Call",
            "CallAnswered",
            "CallBridged",
            "CallEnded",
            "CallStarted",
            "CallState",
            "Channel",
            "ChannelHungUp",
            "ChannelState",
            "Fact",
            "OriginateResult",
            "StateAnomaly",
            "Transition",
        ]
    )
    for name in callcenter.state.__all__:
        assert getattr(callcenter.state, name) is getattr(callcenter.state.calls, name)


def test_facts_and_snapshots_are_frozen() -> None:
    """Facts and snapshots cannot be changed by whoever receives them."""
    s = CallState()
    (started,) = s.handle(chan("Newchannel", "1.1"), 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        started.at = 1.0  # type: ignore[misc]
    channel = s.channel("1.1")
    assert channel is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        channel.state = UP  # type: ignore[misc]


def test_asterisks_message_routing_channel_is_no_call() -> None:
    """A SIP MESSAGE runs the dialplan on ``Message/ast_msg_queue``, announced Up and never
    hung up (seen on the lab Asterisk 22 when an SMS reply arrives): no call, no channel, by
    its Newchannel or by any later event of it, nor from a resync list."""
    s = CallState()
    name = "Message/ast_msg_queue"
    assert s.handle(chan("Newchannel", "50.1", state=UP, name=name, context="sms-in"), 0.0) == []
    assert s.handle(chan("Newexten", "50.1", state=UP, name=name, context="sms-in", priority=2), 0.1) == []
    assert s.handle(chan("Newstate", "50.2", state=UP, name=name), 0.2) == []  # first seen mid-way
    s.begin_resync()
    assert s.resync([chan("CoreShowChannel", "50.3", state=UP, name=name)], 1.0) == []
    assert s.channels == {} and s.calls(1.0) == {}
    assert s.counters == {"message_channel": 4}
    assert s.handle(chan("Newchannel", "51.1", state=RING, name="PJSIP/trunk-00000001"), 2.0) != []  # a call is one
