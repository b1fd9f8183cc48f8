"""The dialer service with a fake AMI, a real SQLite schema and an injected clock.

What it protects: a tick places as many calls as the pacer says, each for a claimed
lead, with the variables the dialplan needs; each call's AMI outcome ends its attempt
once, in SQL, with the retry rules applied; a failed Originate is a recorded failure;
a new dialer.yaml changes the pacing of the running campaign; stopping closes every
attempt in flight.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from callcenter.ami.client import AmiNotConnected
from callcenter.ami.codec import Message
from callcenter.dialer.config import DialerConfig, parse_dialer_config
from callcenter.dialer.service import DialerMetrics, DialerService
from callcenter.settings import AgentSettings
from callcenter.state.agents import AgentBoard
from callcenter.storage import dialer as store
from callcenter.storage import models
from callcenter.storage.db import (
    create_engine_for,
    make_session_factory,
    upgrade_database,
)
from callcenter.storage.dialer_records import LeadRow
from tests.httpapi import get_json, post_json

_R = TypeVar("_R")
successResultOf = SynchronousTestCase().successResultOf
failureResultOf = SynchronousTestCase().failureResultOf

#: 03:00 UTC is 11:00 in Shanghai: inside the campaign's calling hours.
WALL = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def config_text(pacer: str = "progressive", fixed_ratio: float = 1.5, dial_mode: str = "predictive",
                guard: str = "{enabled: true}", callbacks: str = "null", handout: str = "none") -> str:
    return textwrap.dedent(f"""\
        dialer:
          trunk: "Local/{{phone}}@sim-pstn"
          tick_seconds: 1.0
          connect_timeout: 1
          abandon_guard: {guard}
          callbacks_campaign: {callbacks}
          pacing:
            pacer: {pacer}
            fixed_ratio: {fixed_ratio}
            ring_timeout: 20
          campaigns:
            test-campaign:
              dial_mode: {dial_mode}
              caller_id: "4008001234"
              queue: outbound
              timezone: Asia/Shanghai
              safe_harbor_message: custom/dialer/safe_harbor-zh
              handout: {handout}
        """)


class SyncRepository:
    """Repository.run, but synchronous: one transaction per call on the test database."""

    def __init__(self, factory: Callable[[], Session]) -> None:
        self.factory = factory

    def run(self, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> Deferred[_R]:
        with self.factory() as session, session.begin():
            try:
                return succeed(fn(session, *args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - delivered as a failed Deferred like the real one
                return fail(exc)


class FakeAmi:
    """Subscriptions, and Originates answered by the test through their Deferreds."""

    connected = True

    def __init__(self) -> None:
        self.listeners: list[Callable[[Message], None]] = []
        self.originates: list[tuple[Any, Deferred[Message]]] = []
        self.refuse: Exception | None = None
        self.resync_listeners: list[Callable[[list[Message], list[Message]], None]] = []
        self.sent: list[Any] = []
        self.channels: list[Message] | None = []

    def subscribe(self, callback: Callable[[Message], None], name: str | None = None) -> Any:
        self.listeners.append(callback)
        return _Handle()

    def on_resync(self, callback: Any) -> Any:
        self.resync_listeners.append(callback)
        return _Handle()

    def send(self, action: Any, timeout: float | None = None) -> Deferred[Any]:
        """``CoreShowChannels`` (what a start asks when the session was already up): ``channels``."""
        assert action.name == "CoreShowChannels"
        self.sent.append(action)
        if self.channels is None:
            return Deferred()
        return succeed(SimpleNamespace(events=list(self.channels)))

    def resync(self, channels: list[Message]) -> None:
        for listener in list(self.resync_listeners):
            listener(channels, [])

    def originate(self, action: Any, *, timeout: float | None = None) -> Deferred[Message]:
        if self.refuse is not None:
            return fail(self.refuse)
        d: Deferred[Message] = Deferred()
        self.originates.append((action, d))
        return d

    def emit(self, name: str, **headers: object) -> None:
        msg = Message.from_pairs([("Event", name), *((k, str(v)) for k, v in headers.items())])
        for listener in list(self.listeners):
            listener(msg)


class _Handle:
    def cancel(self) -> None:
        pass


class World:
    def __init__(self, tmp_path: Path, text: str, agents: int) -> None:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'd.sqlite3'}")
        upgrade_database(engine)
        self.sessions = make_session_factory(engine)
        self.repo = SyncRepository(self.sessions)
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.wall = WALL
        self.ami = FakeAmi()
        self.board = AgentBoard({"outbound": 15})
        for i in range(agents):
            self.board.handle(Message.from_pairs([
                ("Event", "QueueMemberAdded"), ("Queue", "outbound"), ("Interface", f"PJSIP/agent210{i + 1}"),
                ("StateInterface", f"PJSIP/agent210{i + 1}"), ("Paused", "0"), ("Status", "1")]), self.clock.seconds())
        self.config = parse_dialer_config(text, "dialer.yaml")
        self.service = DialerService(
            self.config, ami=self.ami, repository=self.repo, agents=self.board,  # type: ignore[arg-type]
            clock=self.clock, metrics=DialerMetrics(CollectorRegistry()), now=lambda: self.wall,
            wrapup_seconds=lambda queue: 15.0)

    def session(self) -> Session:
        return self.sessions()

    def import_leads(self, phones: list[str], timezone: str | None = None) -> int:
        with self.session() as session, session.begin():
            campaign = store.get_campaign(session, "test-campaign")
            assert campaign is not None
            rows = [LeadRow(line=i + 2, phone=p, timezone=timezone) for i, p in enumerate(phones)]
            store.import_leads(session, campaign.id, rows, list_name="t", source_file="t.csv", actor="test",
                               now=self.wall - timedelta(minutes=1))
            return campaign.id

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.wall += timedelta(seconds=seconds)

    def attempts(self, campaign_id: int) -> list[Any]:
        with self.session() as session:
            return sorted(store.list_attempts(session, campaign_id, limit=100), key=lambda a: a.id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, config_text(), agents=2)
    w.service.startService()
    assert w.service.ready.called
    yield w
    if w.service.running:
        w.service.stopService()


def _variables(action: Any) -> dict[str, str]:
    return dict(action.variables)


def test_a_tick_dials_one_claimed_lead_per_ready_agent_with_the_dialplan_variables(world: World) -> None:
    """Progressive pacing with 2 ready agents: 2 Originates into [dialer-answered], ChannelId set."""
    campaign_id = world.import_leads(["13800000001", "13800000002", "13800000003"])
    world.advance(1.0)
    assert len(world.ami.originates) == 2
    action, _ = world.ami.originates[0]
    assert action.get("Channel") == "Local/13800000001@sim-pstn"
    assert (action.get("Context"), action.get("Exten"), action.get("Timeout")) == ("dialer-answered", "s", "20000")
    variables = _variables(action)
    assert variables["CC_CAMPAIGN"] == str(campaign_id) and variables["CC_QUEUE"] == "outbound"
    assert variables["CC_CONNECT_TIMEOUT"] == "1" and variables["CC_SAFE_HARBOR"]
    assert (action.get("ChannelId") or "").endswith("-" + variables["CC_ATTEMPT"])
    assert variables["CC_ATTEMPT_NO"] == "1"  # the lead's first call (the attempt id is the row's)
    world.advance(1.0)  # both agents covered by ringing dials: nothing more
    assert len(world.ami.originates) == 2


def test_outcomes_end_each_attempt_once_with_the_retry_rules(world: World) -> None:
    """Busy -> retry in 30 min; human via AMD and the queue -> done, agent and latency stored."""
    campaign_id = world.import_leads(["13800000001", "13800000002"])
    world.advance(1.0)
    (_busy_action, busy), (human_action, human) = world.ami.originates
    busy.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "5")]))
    attempt = _variables(human_action)["CC_ATTEMPT"]
    uniqueid = human_action.get("ChannelId")
    world.advance(3.0)
    human.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    world.ami.emit("UserEvent", UserEvent="DialerAnswered", Attempt=attempt)
    world.advance(2.5)
    world.ami.emit("UserEvent", UserEvent="DialerAMD", Attempt=attempt, AMDStatus="HUMAN", AMDCause="HUMAN-800-800")
    world.advance(0.4)
    world.ami.emit("AgentConnect", Queue="outbound", Uniqueid=uniqueid, Interface="PJSIP/agent2101")
    world.advance(30.0)
    world.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=attempt, Outcome="human")
    world.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=attempt, Outcome="abandoned")  # a duplicate
    first, second = world.attempts(campaign_id)
    assert first.outcome == "busy" and second.outcome == "human"
    assert second.agent_id == "2101" and second.amd_status == "HUMAN"
    assert second.connect_seconds == pytest.approx(0.4) and second.talk_seconds == pytest.approx(30.0, abs=1.1)
    with world.session() as session:
        busy_lead = store.get_lead(session, first.lead_id)
        human_lead = store.get_lead(session, second.lead_id)
    assert busy_lead is not None and busy_lead.state == "retry"
    assert busy_lead.next_attempt_at is not None and busy_lead.next_attempt_at > world.wall + timedelta(minutes=25)
    assert human_lead is not None and (human_lead.state, human_lead.final_outcome) == ("done", "human")
    assert [s.outcomes for s in world.service.status()] == [{"busy": 1, "human": 1}]
    assert world.service.connect_latencies("test-campaign") == [pytest.approx(0.4)]


def test_a_call_amd_judged_a_machine_no_longer_holds_back_a_dial(tmp_path: Path) -> None:
    """One ready agent, progressive: the call placed for them is answered by a machine; while
    it waits for the beep or hears the campaign's message (up to ~30 s) it needs no agent, so
    the next tick dials again (before, the agent sat ready until its DialerResult)."""
    w = World(tmp_path, config_text(), agents=1)
    w.service.startService()
    w.import_leads(["13800000001", "13800000002"])
    w.advance(1.0)
    (action, answered), = w.ami.originates
    attempt = _variables(action)["CC_ATTEMPT"]
    answered.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    w.ami.emit("UserEvent", UserEvent="DialerAnswered", Attempt=attempt)
    w.advance(1.0)
    assert len(w.ami.originates) == 1  # in AMD: maybe a person about to need the agent
    w.ami.emit("UserEvent", UserEvent="DialerAMD", Attempt=attempt, AMDStatus="MACHINE", AMDCause="LONGGREETING")
    w.advance(1.0)
    assert len(w.ami.originates) == 2
    w.service.stopService()


def test_an_agent_paused_in_the_campaigns_queue_alone_is_not_dialed_for(tmp_path: Path) -> None:
    """Paused in outbound only (a pause made outside the engine: the board still says ready,
    other queues may ring them): Asterisk will not ring them for the campaign, so the pacer
    does not count them (before, it dialed for them and the answered person was abandoned)."""
    w = World(tmp_path, config_text(), agents=2)
    w.board.handle(Message.from_pairs([
        ("Event", "QueueMemberAdded"), ("Queue", "hotline"), ("Interface", "PJSIP/agent2101"),
        ("StateInterface", "PJSIP/agent2101"), ("Paused", "0"), ("Status", "1")]), w.clock.seconds())
    w.board.handle(Message.from_pairs([
        ("Event", "QueueMemberPause"), ("Queue", "outbound"), ("Interface", "PJSIP/agent2101"),
        ("StateInterface", "PJSIP/agent2101"), ("Paused", "1"), ("PausedReason", "hotline only")]), w.clock.seconds())
    assert w.board.state_of("2101").value == "ready"
    w.service.startService()
    w.import_leads(["13800000001", "13800000002"])
    w.advance(1.0)
    assert len(w.ami.originates) == 1  # for 2102 alone
    w.service.stopService()


def test_a_restart_ends_the_open_attempts_of_a_campaign_renamed_meanwhile(tmp_path: Path) -> None:
    """A daemon dies with calls of test-campaign in flight; dialer.yaml renames the campaign
    before the next start. That start still ends the old campaign's open attempts as failed
    (before: only configured campaigns', so its leads stayed 'dialing' for good)."""
    first = World(tmp_path, config_text(), agents=2)
    first.service.startService()
    campaign_id = first.import_leads(["13800000001", "13800000002"])
    first.advance(1.0)
    assert len(first.ami.originates) == 2  # then the process dies: no stop
    renamed = config_text().replace("    test-campaign:\n", "    autumn:\n")
    second = World(tmp_path, renamed, agents=2)
    second.wall = first.wall + timedelta(minutes=1)
    second.service.startService()
    ended = second.attempts(campaign_id)
    assert [(a.outcome, a.detail) for a in ended] == [("failed", "open when the dialer (re)started")] * 2
    with second.session() as session:
        states = {store.get_lead(session, a.lead_id).state for a in ended}  # type: ignore[union-attr]
    assert states == {"retry"}
    second.service.stopService()


def test_calls_placed_before_an_ami_drop_go_on_and_are_counted(world: World) -> None:
    """The AMI connection drops while two calls ring: the client fails their Originates, but
    the calls go on in Asterisk. One is answered, a person no agent takes (abandoned): its
    events after the reconnect end it, in the ledger (before: both ended at once as failed,
    the abandoned person lost from the ledger and retried in an hour). The other's channel
    is gone at the resync: failed then."""
    from callcenter.ami.client import AmiConnectionLost

    campaign_id = world.import_leads(["13800000001", "13800000002"])
    world.advance(1.0)
    (first, first_d), (second, second_d) = world.ami.originates
    for action, pending in ((first, first_d), (second, second_d)):
        pending.errback(AmiConnectionLost(action))
    assert len(world.service.book) == 2 and [a.outcome for a in world.attempts(campaign_id)] == [None, None]
    live = Message.from_pairs([("Event", "CoreShowChannel"), ("Uniqueid", first.get("ChannelId") or "")])
    world.service.on_resync([live], [])
    attempt = _variables(first)["CC_ATTEMPT"]
    world.ami.emit("UserEvent", UserEvent="DialerAnswered", Attempt=attempt)
    world.ami.emit("UserEvent", UserEvent="DialerAMD", Attempt=attempt, AMDStatus="HUMAN", AMDCause="HUMAN-800-800")
    world.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=attempt, Outcome="abandoned")
    answered, gone = world.attempts(campaign_id)
    assert answered.outcome == "abandoned"
    assert (gone.outcome, gone.detail) == ("failed", "channel gone after an AMI reconnect")
    assert len(world.service.book) == 0


def test_a_call_found_with_an_agent_at_the_resync_is_a_conversation(world: World) -> None:
    """The AMI connection drops while a call is answered and connected (its AgentConnect
    lost): the resync finds its channel in a bridge, so it is a conversation from then and
    lives past the 180 s limit of a call waiting for an agent (before, it expired as failed
    and the person who talked to an agent was called again an hour later)."""
    from callcenter.ami.client import AmiConnectionLost

    campaign_id = world.import_leads(["13800000001"])
    world.advance(1.0)
    (action, pending), *_ = world.ami.originates
    pending.errback(AmiConnectionLost(action))
    bridged = Message.from_pairs([("Event", "CoreShowChannel"), ("Uniqueid", action.get("ChannelId") or ""),
                                  ("BridgeId", "b-1")])
    world.service.on_resync([bridged], [])
    for _ in range(200):
        world.advance(1.0)
    assert [a.outcome for a in world.attempts(campaign_id)][:1] == [None]  # still talking
    attempt = _variables(action)["CC_ATTEMPT"]
    world.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=attempt, Outcome="human", Agent="PJSIP/agent2101")
    assert world.attempts(campaign_id)[0].outcome == "human"


def test_a_refused_originate_is_a_recorded_failure(world: World) -> None:
    """AMI down when dialing: the attempt ends failed with the reason, nothing stays in flight."""
    campaign_id = world.import_leads(["13800000001"])
    world.ami.refuse = AmiNotConnected("AMI: not connected")
    world.advance(1.0)
    (attempt,) = world.attempts(campaign_id)
    assert attempt.outcome == "failed" and "not connected" in (attempt.detail or "")
    assert len(world.service.book) == 0


def test_leads_outside_calling_hours_are_never_dialed(world: World) -> None:
    """A lead whose local time is 23:00 is not claimed; it waits for its window."""
    world.import_leads(["13800000009"], timezone="Asia/Tokyo")  # 03:00 UTC = 12:00 Tokyo: callable
    world.import_leads(["13800000010"], timezone="America/Los_Angeles")  # 19:00 the day before: callable
    world.import_leads(["13800000011"], timezone="Pacific/Kiritimati")  # 17:00 +14: callable
    world.import_leads(["13800000012"], timezone="Europe/London")  # 03:00: not callable
    world.advance(1.0)
    world.advance(1.0)
    dialed = [a.get("Channel") for a, _ in world.ami.originates]
    assert "Local/13800000012@sim-pstn" not in dialed
    assert len(dialed) == 2


def test_a_new_config_changes_the_ratio_of_the_running_campaign(tmp_path: Path) -> None:
    """Fixed ratio 1.0 dials 2 for 2 agents; after reload with ratio 3.0 the next tick tops up to 6."""
    w = World(tmp_path, config_text(pacer="fixed", fixed_ratio=1.0), agents=2)
    w.service.startService()
    w.import_leads([f"138000000{i:02d}" for i in range(20)])
    w.advance(1.0)
    w.advance(1.0)
    assert len(w.ami.originates) == 2
    new: DialerConfig = parse_dialer_config(config_text(pacer="fixed", fixed_ratio=3.0), "dialer.yaml")
    w.service.apply_config(new)
    w.advance(1.0)
    assert len(w.ami.originates) == 6
    w.service.stopService()


def test_a_campaign_over_the_abandon_limit_dials_progressively_until_its_ledger_recovers(tmp_path: Path) -> None:
    """Fixed ratio 3 with 2 agents places 6 calls; 1 abandoned of 5 live answers (20% > 10%) engages the
    guard at its next ledger check: 2 calls (one per ready agent), logged, in the metrics and the status.
    Enough connected calls later (1 of 12 = 8.3%, under 90% of the limit) the fixed ratio is back."""
    w = World(tmp_path, config_text(pacer="fixed", fixed_ratio=3.0,
                                    guard="{limit: 0.1, min_live_answers: 5, check_seconds: 5}"), agents=2)
    w.service.startService()
    w.import_leads([f"138000000{i:02d}" for i in range(40)])

    def end_all(outcomes: list[str]) -> None:
        for (action, _), outcome in zip(list(w.ami.originates), outcomes, strict=True):
            w.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=_variables(action)["CC_ATTEMPT"],
                       Outcome=outcome)
        w.ami.originates.clear()

    def engaged() -> float | None:
        return w.service.metrics.guard_engaged.labels("test-campaign")._value.get()  # type: ignore[no-any-return]

    w.advance(1.0)
    assert len(w.ami.originates) == 6
    end_all(["abandoned", "human", "human", "human", "busy", "noanswer"])  # 1 of 4 live: too few to judge
    w.advance(5.0)
    assert len(w.ami.originates) == 6 and not w.service.status()[0].abandon_guard
    end_all(["human"] + ["noanswer"] * 5)  # 1 of 5 live answers abandoned
    w.advance(5.0)  # the next ledger check engages the guard before the tick paces
    (status,) = w.service.status()
    assert status.abandon_guard == "today: 20.00% of 5 live answers > 10.00%"
    assert status.ledger == {"today": {"live_answers": 5, "abandoned": 1, "rate": 0.2},
                             "window": {"live_answers": 5, "abandoned": 1, "rate": 0.2}}
    assert engaged() == 1.0
    assert len(w.ami.originates) == 2  # one per ready agent
    for _ in range(3):
        end_all(["human", "human"])
        w.advance(1.0)
        assert len(w.ami.originates) == 2
    end_all(["human", "human"])  # 1 of 13 live answers: 7.7% <= 9%
    w.advance(5.0)
    assert not w.service.status()[0].abandon_guard and engaged() == 0.0
    assert len(w.ami.originates) == 6
    w.service.stopService()


def _channel(uniqueid: str, *, state: str = "6", bridge: str = "", name: str = "", duration: str = "") -> Message:
    return Message.from_pairs([("Event", "CoreShowChannel"), ("Channel", name or f"Local/x@sim-pstn-{uniqueid};1"),
                               ("Uniqueid", uniqueid), ("ChannelState", state), ("BridgeId", bridge),
                               ("Duration", duration)])


def _restart(first: World, tmp_path: Path, *, connected: bool = True, channels: list[Message] | None = None) -> World:
    """A second daemon on the same database a minute later, its AMI up (or not yet) at start."""
    second = World(tmp_path, config_text(), agents=2)
    second.wall = first.wall + timedelta(minutes=1)
    second.clock.advance(60)
    second.ami.connected = connected
    second.ami.channels = channels
    second.service.startService()
    return second


def test_stopping_leaves_the_calls_in_flight_to_the_next_start(tmp_path: Path) -> None:
    """The dialer stops (a daemon restart) while two calls are under way in Asterisk: one
    with agent 2101, one whose channel has gone by the next start. Their attempts stay open
    at the stop (before: both ended as failed, though the first customer was still talking
    to an agent, and their lead was called again). The next start adopts the live call,
    which ends with its own outcome and agent, and ends the other as failed."""
    first = World(tmp_path, config_text(), agents=2)
    first.service.startService()
    campaign_id = first.import_leads(["13800000001", "13800000002"])
    first.advance(1.0)
    (talking, _), (_gone, _) = first.ami.originates
    first.service.stopService()
    assert [a.outcome for a in first.attempts(campaign_id)] == [None, None]
    uniqueid = talking.get("ChannelId") or ""
    second = _restart(first, tmp_path, channels=[
        _channel(uniqueid, bridge="b-7", duration="00:00:58"),
        _channel("1795415279.9", bridge="b-7", name="PJSIP/agent2101-0000002a")])
    assert len(second.ami.sent) == 1  # its session was up before it listened: it asked
    adopted, gone = second.attempts(campaign_id)
    assert adopted.outcome is None and (gone.outcome, gone.detail) == ("failed", "open when the dialer (re)started")
    (dial,) = second.service.book.dials()
    assert (dial.attempt_id, dial.agent, dial.adopted, dial.connected_at is not None) == (adopted.id, "2101", True, True)
    assert dial.placed_at == second.clock.seconds() - 58.0  # its channel's age (else its attempt's: 61 s)
    second.advance(200.0)  # a conversation: past the 180 s limit of a call waiting for an agent
    attempt = _variables(talking)["CC_ATTEMPT"]
    second.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=attempt, Outcome="human", Agent="2101",
                    Uniqueid=uniqueid)
    adopted, _ = second.attempts(campaign_id)
    assert (adopted.outcome, adopted.agent_id) == ("human", "2101")
    assert adopted.talk_seconds == pytest.approx(200.0, abs=1.1)  # from the start that found it: a lower bound
    with second.session() as session:
        lead = store.get_lead(session, adopted.lead_id)
    assert lead is not None and (lead.state, lead.final_outcome) == ("done", "human")
    assert second.service.connect_latencies("test-campaign") == []  # its connect was not seen
    second.service.stopService()


def test_a_start_holds_the_events_of_the_earlier_runs_calls_until_it_knows_them(tmp_path: Path) -> None:
    """The AMI session comes up after the start: its resync lists a ringing call of the
    earlier run, and that call's events follow before the database has answered (held, then
    read): it ends busy from its broadcast OriginateResponse, with no dial placed meanwhile."""
    first = World(tmp_path, config_text(), agents=2)
    first.service.startService()
    campaign_id = first.import_leads(["13800000001", "13800000002", "13800000003"])
    first.advance(1.0)
    (ringing, _), (answered, _) = first.ami.originates
    first.service.stopService()
    second = World(tmp_path, config_text(), agents=2)
    second.wall = first.wall + timedelta(seconds=5)
    second.ami.connected = False
    later: Deferred[None] = Deferred()
    real_run = second.repo.run
    second.repo.run = lambda fn, *a, **k: later.addCallback(lambda _: real_run(fn, *a, **k))  # type: ignore[method-assign]
    second.service.startService()
    ring_id, answer_id = ringing.get("ChannelId") or "", answered.get("ChannelId") or ""
    second.ami.connected = True
    second.ami.resync([_channel(ring_id, state="5"), _channel(answer_id)])
    second.ami.emit("OriginateResponse", Response="Failure", Reason="5", Uniqueid=ring_id)
    second.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=_variables(answered)["CC_ATTEMPT"],
                    Outcome="abandoned", Uniqueid=answer_id)
    second.advance(2.0)
    assert second.ami.originates == []  # no pacing before the earlier run's calls are known
    second.repo.run = real_run  # type: ignore[method-assign]
    later.callback(None)
    busy, abandoned = second.attempts(campaign_id)
    assert (busy.outcome, abandoned.outcome) == ("busy", "abandoned")
    assert len(second.service.book) == 0 and second.ami.sent == []  # the resync had the channels
    second.advance(1.0)
    assert len(second.ami.originates) == 1  # pacing once they are settled: the third lead
    second.service.stopService()


def test_a_start_tries_again_to_end_the_earlier_runs_lost_attempts_while_the_database_refuses(
        tmp_path: Path) -> None:
    """The earlier run's attempt has no live call, and the database refuses the first write
    that ends it: tried again a minute later (before the retry its lead would stay 'dialing'
    until the next restart)."""
    from callcenter.dialer.service import STALE_RETRY_SECONDS

    first = World(tmp_path, config_text(), agents=2)
    first.service.startService()
    campaign_id = first.import_leads(["13800000001"])
    first.advance(1.0)
    first.service.stopService()
    second = World(tmp_path, config_text(), agents=2)
    second.wall = first.wall + timedelta(minutes=1)
    real_run = second.repo.run
    refused: list[str] = []

    def run(fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if not refused and getattr(fn, "__name__", "") == "in_thread" and "fail_stale" in fn.__qualname__:
            refused.append(fn.__qualname__)
            return fail(RuntimeError("database is locked"))
        return real_run(fn, *args, **kwargs)

    second.repo.run = run  # type: ignore[method-assign]
    second.service.startService()
    assert refused and [a.outcome for a in second.attempts(campaign_id)] == [None]
    second.advance(STALE_RETRY_SECONDS + 0.5)
    assert [(a.outcome, a.detail) for a in second.attempts(campaign_id)] == [
        ("failed", "open when the dialer (re)started")]
    second.service.stopService()


def test_without_asterisks_channel_list_a_start_ends_the_earlier_runs_calls_in_time(tmp_path: Path) -> None:
    """Asterisk's channel list never comes (the AMI session stays down): after RECOVERY_WAIT
    the earlier run's attempts end as failed as before, and pacing may start."""
    from callcenter.dialer.service import RECOVERY_WAIT

    first = World(tmp_path, config_text(), agents=2)
    first.service.startService()
    campaign_id = first.import_leads(["13800000001"])
    first.advance(1.0)
    first.service.stopService()
    second = _restart(first, tmp_path, connected=False, channels=None)
    assert [a.outcome for a in second.attempts(campaign_id)] == [None]
    second.advance(RECOVERY_WAIT - 1.0)
    assert [a.outcome for a in second.attempts(campaign_id)] == [None]
    second.advance(1.5)
    assert [(a.outcome, a.detail) for a in second.attempts(campaign_id)] == [
        ("failed", "open when the dialer (re)started")]
    assert second.service._recovery is None
    second.service.stopService()


def test_http_api_shows_campaigns_and_the_ledger(world: World) -> None:
    """GET /api/dialer lists the campaign's pacing and outcomes; the ledger route validates its day."""
    import json

    from twisted.web.test.requesthelper import DummyRequest

    from callcenter.http_api import ApiResource

    world.import_leads(["13800000001"])
    world.advance(1.0)
    (_, busy), = world.ami.originates
    busy.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "5")]))
    resource = ApiResource(None, world.service)  # type: ignore[arg-type]

    def get(*path: bytes, **args: str) -> tuple[int, Any]:
        request = DummyRequest(list(path))
        request.args = {k.encode(): [v.encode()] for k, v in args.items()}
        body = resource.render_GET(request)  # type: ignore[arg-type]
        if not isinstance(body, bytes):
            body = b"".join(request.written)
        return request.responseCode or 200, json.loads(body)

    status, body = get(b"dialer")
    assert status == 200
    (campaign,) = body["campaigns"]
    assert (campaign["name"], campaign["pacer"], campaign["outcomes"]) == ("test-campaign", "progressive", {"busy": 1})
    status, body = get(b"dialer", b"test-campaign", b"ledger", day="2026-12-02")
    assert status == 200 and body["live_answers"] == 0 and body["abandoned"] == 0
    status, body = get(b"dialer", b"test-campaign", b"ledger", day="yesterday")
    assert status == 400 and body["field"] == "day"
    status, body = get(b"dialer", b"nope")
    assert status == 404 and body["field"] == "campaign"


def test_preview_campaign_holds_a_lead_for_the_agent_then_rings_the_agent_first(tmp_path: Path) -> None:
    """Preview: no pacing; the agent gets a lead (the same until dialed), dials it from their own
    phone ([dialer-preview]), and the answered lead is a conversation with that agent."""
    from callcenter.dialer.service import PreviewError

    w = World(tmp_path, config_text(dial_mode="preview"), agents=2)
    conversations: list[tuple[str, str]] = []
    w.service.on_conversation = lambda linkedid, agent: conversations.append((linkedid, agent))
    w.service.startService()
    campaign_id = w.import_leads(["13800000001", "13800000002"])
    w.advance(1.0)
    assert w.ami.originates == []  # preview campaigns are not paced
    lead = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert lead is not None and lead.phone == "13800000001"
    assert successResultOf(w.service.preview_next("2101", "test-campaign")) == lead
    other = successResultOf(w.service.preview_next("2102", "test-campaign"))
    assert other is not None and other.phone == "13800000002"
    w.service.preview_dial("2101")
    (action, response), = w.ami.originates
    variables = dict(action.variables)
    assert (action.get("Channel"), action.get("Context")) == ("PJSIP/agent2101", "dialer-preview")
    assert variables["CC_DIAL"] == "Local/13800000001@sim-pstn" and variables["CC_AGENT"] == "2101"
    response.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    w.advance(4.0)
    w.ami.emit("UserEvent", UserEvent="DialerAnswered", Attempt=lead.attempt_id, AgentConnected="yes", Agent="2101")
    assert conversations == [(action.get("ChannelId"), "2101")]
    w.advance(45.0)
    w.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=lead.attempt_id, Outcome="human", Agent="2101")
    attempt = next(a for a in w.attempts(campaign_id) if a.id == lead.attempt_id)
    assert (attempt.outcome, attempt.agent_id) == ("human", "2101")
    assert attempt.talk_seconds == pytest.approx(45.0, abs=1.1)
    with pytest.raises(PreviewError, match="no previewed lead") as refused:
        w.service.preview_dial("2101")
    assert refused.value.field == "agent"
    w.service.stopService()  # 2102's held lead is closed, not left open
    held = next(a for a in w.attempts(campaign_id) if a.id == other.attempt_id)
    assert held.outcome == "failed" and "not dialed" in (held.detail or "")


def test_a_previewed_lead_is_checked_again_when_the_agent_dials_it(tmp_path: Path) -> None:
    """Two agents take a lead each at 20:55 (Shanghai; calling hours end at 21:00). 2102's
    number goes on the do-not-call list, and both dial at 21:05: neither number is dialed
    (before, both were: the checks ran at the claim only). 2101's lead waits for 08:00, with
    no attempt counted; 2102's is closed as dnc. A lead dialed in time still rings."""
    from callcenter.dialer.service import PreviewError

    w = World(tmp_path, config_text(dial_mode="preview"), agents=2)
    w.wall = datetime(2026, 12, 2, 12, 55, tzinfo=UTC)  # 20:55 in Shanghai
    w.service.startService()
    campaign_id = w.import_leads(["13800000001", "13800000002", "13800000003"])
    first = successResultOf(w.service.preview_next("2101", "test-campaign"))
    second = successResultOf(w.service.preview_next("2102", "test-campaign"))
    assert first is not None and second is not None
    with w.session() as session, session.begin():
        store.add_dnc(session, ["13800000002"], source="sms", reason="STOP", now=w.wall)
    w.advance(600.0)  # 21:05
    for agent, why in (("2101", ("outside the calling hours now (08:00-21:00 Asia/Shanghai): the lead waits "
                                 "until 2026-12-03 08:00")),
                       ("2102", "the number went on the do-not-call list since it was offered")):
        refused = failureResultOf(w.service.preview_dial(agent), PreviewError)
        assert why in str(refused.value), refused.value
    assert w.ami.originates == []
    with w.session() as session:
        waiting = store.get_lead(session, first.lead_id)
        closed = store.get_lead(session, second.lead_id)
    assert waiting is not None and (waiting.state, waiting.attempts) == ("new", 0)
    assert waiting.next_attempt_at == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert closed is not None and (closed.state, closed.final_outcome, closed.attempts) == ("done", "dnc", 0)
    assert w.attempts(campaign_id) == []  # no call placed, no attempt counted
    w.wall = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 09:00
    again = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert again is not None
    w.service.preview_dial("2101")
    (action, _), = w.ami.originates
    assert dict(action.variables)["CC_DIAL"] == f"Local/{again.phone}@sim-pstn"
    w.service.stopService()


class _LaterRepository(SyncRepository):
    """SyncRepository whose answers arrive when ``flush`` is called, as the thread pool's do."""

    def __init__(self, sessions: Any) -> None:
        super().__init__(sessions)
        self.parked: list[tuple[Deferred[Any], Deferred[Any]]] = []

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        outer: Deferred[Any] = Deferred()
        self.parked.append((super().run(fn, *args, **kwargs), outer))
        return outer

    def flush(self) -> None:
        parked, self.parked = self.parked, []
        for inner, outer in parked:
            inner.chainDeferred(outer)


def _later_world(tmp_path: Path, text: str) -> tuple[World, _LaterRepository]:
    """A started World of one agent whose repository answers on ``flush`` (its campaigns synced)."""
    w = World(tmp_path, text, agents=1)
    later = _LaterRepository(w.sessions)
    w.service.repository = later  # type: ignore[assignment]
    w.service.startService()
    later.flush()
    return w, later


def test_a_second_next_lead_while_the_first_claim_runs_gets_the_same_lead(tmp_path: Path) -> None:
    """A double click on "Next lead" (or auto-dial's claim racing the agent's click): both get
    the one lead claimed, and one claim is made. Before, two leads were claimed and the first
    stayed ``dialing`` with an open attempt, never dialed, its list impossible to destroy."""
    w, later = _later_world(tmp_path, config_text(dial_mode="preview"))
    campaign_id = w.import_leads(["13800000001", "13800000002"])
    first = w.service.preview_next("2101", "test-campaign")
    second = w.service.preview_next("2101", "test-campaign")
    later.flush()
    lead = successResultOf(first)
    assert lead is not None and successResultOf(second) == lead
    assert w.service.held_preview("2101") == ("test-campaign", lead)
    with w.session() as session:
        assert [a.lead_id for a in store.list_attempts(session, campaign_id, limit=10)] == [lead.lead_id]
    w.service.stopService()
    later.flush()


def test_a_call_back_request_is_a_lead_of_the_callbacks_campaign_that_an_agent_previews(tmp_path: Path) -> None:
    """The hotline caller's number and name become a lead with the ticket; the agent previews it.
    Asked again while it waits: not added twice. Asked again after the call-back was made: dialed
    again with the new ticket. DNC and undialable numbers are not queued, and say why."""
    w = World(tmp_path, config_text(dial_mode="preview", callbacks="test-campaign"), agents=1)
    w.service.startService()
    request = w.service.request_callback
    assert successResultOf(request("+86 139 1234 5678", name="张三", ticket="GD20261202001")) == (True, "")
    lead = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert lead is not None and (lead.phone, lead.name) == ("13912345678", "张三")
    assert lead.extra == {"ticket": "GD20261202001"}
    assert successResultOf(request("13912345678", name=None, ticket="GD20261202002")) == (
        False, "a call-back to this number is already waiting")
    w.service.preview_dial("2101")
    w.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=lead.attempt_id, Outcome="human", Agent="2101")
    with w.session() as session:
        done = store.get_lead(session, lead.lead_id)
    assert done is not None and (done.state, done.final_outcome) == ("done", "human")
    assert successResultOf(request("13912345678", name=None, ticket="GD20261203007")) == (True, "")
    again = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert again is not None and again.lead_id == lead.lead_id and again.attempt_no == 1
    assert (again.name, again.extra) == ("张三", {"ticket": "GD20261203007"})
    with w.session() as session, session.begin():
        store.add_dnc(session, ["13700000000"], source="test", now=w.wall)
    assert successResultOf(request("13700000000", name=None, ticket="GD20261202003")) == (
        False, "on the do-not-call list")
    queued, why = successResultOf(request("call me", name=None, ticket="GD20261202004"))
    assert not queued and why.startswith("phone: ")
    w.service.stopService()


def test_a_caller_who_hung_up_waiting_is_called_back_unless_they_got_through_first(tmp_path: Path) -> None:
    """A call back for an abandoned call carries the ticket and how long the caller waited.
    A request the customer makes later (a message, the IVR) replaces it, with its own ticket;
    talking with an agent on another call closes it (final outcome ``called_again``), but not
    a call back the customer asked for, nor one an agent is already dialing."""
    w = World(tmp_path, config_text(dial_mode="preview", callbacks="test-campaign"), agents=1)
    w.service.startService()
    request, close = w.service.request_callback, w.service.close_abandoned_callback
    with pytest.raises(ValueError, match="needs the call's ticket"):
        request("13912345678", name=None, sms_reply="x", abandoned="waited 30 s in hotline")
    assert successResultOf(request("13912345678", name="张三", ticket="GD1", abandoned="waited 30 s in hotline")) == (
        True, "")
    assert successResultOf(request("13912345678", name=None, ticket="GD2", abandoned="waited 12 s in hotline")) == (
        False, "a call-back to this number is already waiting")

    def leads() -> dict[str, tuple[str, str | None, dict[str, str]]]:
        with w.session() as session:
            campaign = store.get_campaign(session, "test-campaign")
            assert campaign is not None
            rows = session.scalars(select(models.Lead).where(models.Lead.campaign_id == campaign.id))
            return {row.phone: (row.state, row.final_outcome, dict(row.extra or {})) for row in rows}

    assert leads() == {"13912345678": ("new", None, {"ticket": "GD1", "abandoned": "waited 30 s in hotline"})}
    # the customer leaves a message on a later call: that call back, with its ticket, replaces it
    assert successResultOf(request("13912345678", name=None, ticket="GD3")) == (True, "")
    assert leads() == {"13912345678": ("new", None, {"ticket": "GD3"})}
    assert successResultOf(close("13912345678", ticket="GD4")) is False  # asked for: kept
    # another caller hangs up waiting, then gets through to an agent: the call back closes
    assert successResultOf(request("+86 139 0000 0001", name=None, ticket="GD5", abandoned="waited 40 s in hotline"))[0]
    assert successResultOf(close("+86 139 0000 0001", ticket="GD6")) is True
    assert leads()["13900000001"] == ("done", "called_again", {
        "ticket": "GD5", "abandoned": "waited 40 s in hotline", "closed": "talked with an agent: GD6"})
    assert successResultOf(close("13900000001", ticket="GD7")) is False  # nothing waits any more
    assert successResultOf(close("anonymous", ticket="GD8")) is False  # not a number: nothing to close
    # an agent already holds the call back in preview: left alone
    assert successResultOf(request("13900000002", name=None, ticket="GD9", abandoned="waited 15 s in hotline"))[0]
    first = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert first is not None and first.phone == "13912345678"  # first in line: the message's call back
    successResultOf(w.service.preview_skip("2101", "later"))
    held = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert held is not None and held.phone == "13900000002"
    assert successResultOf(close("13900000002", ticket="GD10")) is False
    assert leads()["13900000002"][:2] == ("dialing", None)
    w.service.stopService()


def test_a_customer_who_answers_a_text_is_called_back(tmp_path: Path) -> None:
    """An SMS reply is a call-back request too: the lead carries what the customer wrote."""
    w = World(tmp_path, config_text(dial_mode="preview", callbacks="test-campaign"), agents=1)
    w.service.startService()
    assert successResultOf(w.service.request_callback("13900000028", name=None, sms_reply="好的，请来电")) == (True, "")
    lead = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert lead is not None and (lead.phone, lead.extra) == ("13900000028", {"sms_reply": "好的，请来电"})
    with pytest.raises(ValueError, match="a ticket or an SMS reply"):
        w.service.request_callback("13900000028", name=None)
    with pytest.raises(ValueError, match="a ticket or an SMS reply"):
        w.service.request_callback("13900000028", name=None, ticket="GD1", sms_reply="x")
    w.service.stopService()


def test_without_a_callbacks_campaign_a_call_back_request_is_not_queued(world: World) -> None:
    assert successResultOf(world.service.request_callback("13912345678", name=None, ticket="GD1")) == (
        False, "no dialer.callbacks_campaign")
    with world.session() as session:
        campaign = store.get_campaign(session, "test-campaign")
        assert campaign is not None
        assert sum(store.campaign_progress(session, campaign.id).leads_by_state.values()) == 0


def test_a_skipped_preview_lead_waits_again_without_counting_an_attempt(tmp_path: Path) -> None:
    """The agent does not want to dial the previewed lead: its claim is taken back (no attempt recorded,
    attempts as before), it is due again in the given minutes, and the agent gets the next lead."""
    from callcenter.dialer.service import PreviewError

    w = World(tmp_path, config_text(dial_mode="preview"), agents=1)
    w.service.startService()
    campaign_id = w.import_leads(["13800000001", "13800000002"])
    lead = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert lead is not None and lead.phone == "13800000001"
    assert successResultOf(w.service.preview_skip("2101", "customer asked to call after 15:00", 90)) is True
    with w.session() as session:
        skipped = store.get_lead(session, lead.lead_id)
    assert skipped is not None and (skipped.state, skipped.attempts) == ("new", 0)
    assert skipped.next_attempt_at == w.wall + timedelta(minutes=90)
    assert w.attempts(campaign_id) == []  # no call was placed: nothing in the history
    following = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert following is not None and following.phone == "13800000002"
    with pytest.raises(PreviewError, match="retry_minutes: 1..10080, got 0"):
        w.service.preview_skip("2101", "x", 0)
    w.service.preview_skip("2101", "wrong number")  # the default: due again in an hour
    with pytest.raises(PreviewError, match="no previewed lead to skip") as refused:
        w.service.preview_skip("2101", "again")
    assert refused.value.field == "agent"
    w.service.stopService()


def test_http_preview_then_skip(tmp_path: Path) -> None:
    """POST /api/agents/<id>/preview, then /skip: the reason is required, the minutes whole; skipping
    twice is a conflict naming the agent."""


    from callcenter.http_api import ApiResource

    w = World(tmp_path, config_text(dial_mode="preview"), agents=1)
    w.service.startService()
    w.import_leads(["13800000001"])
    resource = ApiResource(None, w.service)  # type: ignore[arg-type]

    def post(action: str, body: object) -> tuple[int, Any]:
        return post_json(resource, [b"agents", b"2101", action.encode()], body)

    status, body = post("preview", {"campaign": "test-campaign"})
    assert status == 200 and body["lead"]["phone"] == "13800000001"
    assert post("skip", {}) == (400, {"error": "missing (expected a non-empty string)", "field": "reason"})
    status, body = post("skip", {"reason": "busy line", "retry_minutes": "soon"})
    assert (status, body["field"]) == (400, "retry_minutes")
    assert post("skip", {"reason": "busy line", "retry_minutes": 30}) == (
        200, {"agent": "2101", "action": "skip", "ok": True, "released": True})
    status, body = post("skip", {"reason": "again"})
    assert (status, body["field"]) == (409, "agent")
    w.service.stopService()


def test_preview_is_refused_for_a_paced_campaign(world: World) -> None:
    """Asking a predictive campaign for a preview lead names the campaign as the problem."""
    from callcenter.dialer.service import PreviewError

    with pytest.raises(PreviewError, match="not preview") as refused:
        world.service.preview_next("2101", "test-campaign")
    assert refused.value.field == "campaign"
    with pytest.raises(PreviewError, match="no campaign"):
        world.service.preview_next("2101", "nope")


PEOPLE = {a.id: a for a in [
    AgentSettings(id=i, name=i, team=team, role=role, queues={"outbound": 0})
    for i, team, role in [("2100", "team1", "lead"), ("2101", "team1", "agent"), ("2102", "team1", "agent"),
                          ("2103", "team1", "agent"), ("2201", "team2", "agent"), ("9001", "management", "manager")]
]}


def _hand_out(w: World, campaign_id: int, team: str, count: int, agents: dict[str, int] | None = None) -> None:
    with w.session() as session, session.begin():
        store.hand_out_to_team(session, campaign_id, team, count, actor="9001", now=w.wall)
        if agents:
            store.hand_out_to_agents(session, campaign_id, team, agents, actor="9001", now=w.wall)


def _dialed(w: World) -> list[str]:
    return [dict(action.variables)["CC_DIAL"] if action.get("Context") == "dialer-preview" else action.get("Channel")
            for action, _ in w.ami.originates]


def test_handout_agent_dials_only_the_leads_of_agents_logged_in(tmp_path: Path) -> None:
    """2101 and 2102 are logged in; leads held by 2103 (logged out), by team1 (no agent) and in IT's
    pool are not dialed, however many agents are ready."""
    w = World(tmp_path, config_text(handout="agent"), agents=2)
    w.service.people = PEOPLE
    w.service.startService()
    campaign_id = w.import_leads([f"1380000000{i}" for i in range(1, 7)])
    _hand_out(w, campaign_id, "team1", 4, {"2103": 1, "2101": 1, "2102": 1})  # leads 1-3; lead 4 stays with team1
    w.advance(1.0)
    assert _dialed(w) == ["Local/13800000002@sim-pstn", "Local/13800000003@sim-pstn"]
    w.advance(5.0)
    assert len(w.ami.originates) == 2  # 2103's, team1's and the pool's leads wait
    w.service.stopService()


def test_handout_team_dials_the_leads_of_teams_with_an_agent_logged_in(tmp_path: Path) -> None:
    w = World(tmp_path, config_text(handout="team"), agents=2)
    w.service.people = PEOPLE
    w.service.startService()
    campaign_id = w.import_leads([f"1380000000{i}" for i in range(1, 7)])
    _hand_out(w, campaign_id, "team2", 2)  # leads 1-2: team2 has nobody logged in
    _hand_out(w, campaign_id, "team1", 1, {"2103": 1})  # lead 3: team1's (via 2103, who is logged out)
    w.advance(1.0)
    assert _dialed(w) == ["Local/13800000003@sim-pstn"]  # leads 4-6 are still with IT
    w.service.stopService()


def test_handout_team_preview_offers_the_agent_theirs_and_the_teams_unshared_leads(tmp_path: Path) -> None:
    w = World(tmp_path, config_text(dial_mode="preview", handout="team"), agents=2)
    w.service.people = PEOPLE
    w.service.startService()
    campaign_id = w.import_leads([f"1380000000{i}" for i in range(1, 6)])
    _hand_out(w, campaign_id, "team1", 3, {"2102": 1, "2101": 1})  # 1: 2102's, 2: 2101's, 3: team1's
    _hand_out(w, campaign_id, "team2", 1)  # 4: team2's; 5 stays with IT
    offered = [successResultOf(w.service.preview_next("2101", "test-campaign"))]
    w.service.preview_dial("2101")
    offered.append(successResultOf(w.service.preview_next("2101", "test-campaign")))
    w.service.preview_dial("2101")
    offered.append(successResultOf(w.service.preview_next("2101", "test-campaign")))
    assert [lead.phone if lead else None for lead in offered] == ["13800000002", "13800000003", None]
    team2 = successResultOf(w.service.preview_next("2201", "test-campaign"))
    assert team2 is not None and team2.phone == "13800000004"  # 2102's lead and IT's stay where they are
    w.service.stopService()


def test_http_hand_out_take_back_and_holdings(tmp_path: Path) -> None:
    """The routes a team lead's screen uses: IT gives team1 leads, its lead shares them, holdings
    show it; refused people get 403, bad bodies 400 naming the field, an unknown list 404."""
    from types import SimpleNamespace

    from callcenter.http_api import ApiResource
    from callcenter.settings import load_settings

    w = World(tmp_path, config_text(handout="agent"), agents=0)
    w.service.startService()
    w.import_leads([f"138000000{i:02d}" for i in range(12)])
    engine = SimpleNamespace(settings=load_settings(Path(__file__).resolve().parents[2] / "config"))
    resource = ApiResource(engine, w.service)  # type: ignore[arg-type]

    def post(action: str, body: object) -> tuple[int, Any]:
        return post_json(resource, [b"dialer", b"test-campaign", action.encode()], body)

    def holdings() -> dict[str, list[int]]:
        status, body = get_json(resource, [b"dialer", b"test-campaign", b"holdings"])
        assert (status, body["handout"]) == (200, "agent")
        return {f"{h['team']}/{h['agent_id']}": [h["waiting"], h["dialing"], h["done"]] for h in body["holdings"]}

    assert post("handout", {"by": "9001", "team": "team1", "count": 10}) == (
        200, {"campaign": "test-campaign", "team": "team1", "given": {"team1": 10}})
    status, body = post("handout", {"by": "8001", "team": "team1", "agents": ["2101", "2102", "2103"]})
    assert (status, body["given"]) == (200, {"2101": 4, "2102": 3, "2103": 3})
    assert holdings() == {"None/None": [2, 0, 0], "team1/2101": [4, 0, 0], "team1/2102": [3, 0, 0],
                          "team1/2103": [3, 0, 0]}
    assert post("takeback", {"by": "8001", "team": "team1", "agents": "all"}) == (
        200, {"campaign": "test-campaign", "team": "team1", "agents": "all", "taken": 10})
    assert holdings() == {"None/None": [2, 0, 0], "team1/None": [10, 0, 0]}
    status, body = post("handout", {"by": "8002", "team": "team1", "agents": "all"})
    assert (status, body["error"]) == (403, "a lead hands out only their own team's leads (team2), not team team1's")
    assert post("handout", {"by": "9001", "team": "team1", "count": 0}) == (
        400, {"error": "expected a whole number of at least 1, got 0", "field": "count"})
    assert post("handout", {"by": "9001", "team": "team1", "count": 1, "lists": 2})[1]["field"] == "lists"
    status, body = post("handout", {"by": "9001", "team": "team2", "count": 1, "list_id": 99})
    assert (status, body["error"]) == (404, "list_id: lead list 99 is not a list of campaign test-campaign")
    w.service.stopService()


def test_the_agent_page_previews_dials_and_skips_leads(tmp_path: Path) -> None:
    """The agent page's preview section drives the same DialerService calls as the API: the next
    lead held for the agent (the page stops reloading), skip with a reason, dial from their phone."""
    from types import SimpleNamespace
    from urllib.parse import parse_qs, urlsplit

    from twisted.web.test.requesthelper import DummyRequest

    from callcenter.http_api import AgentPage
    from callcenter.settings import load_settings

    w = World(tmp_path, config_text(dial_mode="preview"), agents=1)
    w.service.startService()
    w.import_leads(["13800000001", "13800000002", "13800000003"])
    engine = SimpleNamespace(settings=load_settings(Path(__file__).resolve().parents[2] / "config"),
                             clock=w.clock, agents=w.board, screen_pops={}, repository=None,
                             calls=SimpleNamespace(channels={}))
    page = AgentPage(engine, w.service)  # type: ignore[arg-type]

    def get() -> str:
        request = DummyRequest([b"2101"])
        body = page.render_GET(request)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        return body.decode()

    def post(action: str, answer: bool = False, **form: str) -> dict[str, list[str]]:
        request = DummyRequest([b"2101", action.encode()])
        request.method = b"POST"
        request.args = {k.encode(): [v.encode()] for k, v in form.items()}
        page.render_POST(request)  # type: ignore[arg-type]
        if answer:  # the page answers once the agent's phone answered (the Originate's response)
            assert not request.finished
            w.ami.originates[-1][1].callback(Message.from_pairs([
                ("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
        (location,) = request.responseHeaders.getRawHeaders(b"location")
        return parse_qs(urlsplit(location.decode()).query)

    html = get()
    assert ">Next lead: test-campaign</button>" in html and 'http-equiv="refresh"' in html
    assert post("preview", campaign="test-campaign") == {"msg": ["next lead of test-campaign: 13800000001"]}
    html = get()
    assert "<td>Phone</td><td>13800000001</td>" in html and ">Dial (your phone rings first)</button>" in html
    assert 'http-equiv="refresh"' not in html  # the skip reason must not be wiped
    assert post("skip", reason="") == {"err": ["reason: say why you skip this lead"]}
    assert post("skip", reason="wrong time", retry_minutes="30") == {"msg": ["skipped: the lead is due again in 30 min"]}
    assert post("preview", campaign="test-campaign") == {"msg": ["next lead of test-campaign: 13800000002"]}
    assert post("dial", answer=True) == {"msg": ["your phone answered: dialing 13800000002"]}
    (action, _), = w.ami.originates
    assert (action.get("Channel"), dict(action.variables)["CC_DIAL"]) == ("PJSIP/agent2101", "Local/13800000002@sim-pstn")
    assert post("dial") == {"err": ["agent 2101 has no previewed lead (ask for one first)"]}
    assert post("preview", campaign="nope") == {"err": ["no campaign 'nope'"]}
    # a lead whose number went on the do-not-call list while the agent looked at it
    assert post("preview", campaign="test-campaign") == {"msg": ["next lead of test-campaign: 13800000003"]}
    with w.session() as session, session.begin():
        store.add_dnc(session, ["13800000003"], source="sms", reason="STOP", now=w.wall)
    (err,) = post("dial")["err"]
    assert err.endswith("not dialed: the number went on the do-not-call list since it was offered: the lead is closed")
    assert len(w.ami.originates) == 1
    w.service.stopService()


def _join(w: World, agent: str, *queues: str) -> None:
    for queue in queues:
        w.board.handle(Message.from_pairs([
            ("Event", "QueueMemberAdded"), ("Queue", queue), ("Interface", f"PJSIP/agent{agent}"),
            ("StateInterface", f"PJSIP/agent{agent}"), ("Paused", "0"), ("Status", "1")]), w.clock.seconds())


def test_route_team_paces_each_team_for_its_own_agents_and_sends_its_calls_to_the_teams_queue(
        tmp_path: Path) -> None:
    """route: team, two teams: team1 has 2 ready agents, team2 one. Each team's lane dials its own
    leads, one per ready agent of the team, into the team's queue; a team's calls in flight cover
    only that team's agents, and a team whose call ended dials its next lead while the other waits."""
    text = config_text(handout="team").replace("handout: team\n", "handout: team\n      route: team\n")
    w = World(tmp_path, text, agents=0)
    w.service.people = PEOPLE
    w.service.team_queues = lambda queue: {"team1": "outbound-team1", "team2": "outbound-team2"} \
        if queue == "outbound" else {}
    _join(w, "2101", "outbound", "outbound-team1")
    _join(w, "2102", "outbound", "outbound-team1")
    _join(w, "2201", "outbound", "outbound-team2")
    w.service.startService()
    campaign_id = w.import_leads([f"1380000000{i}" for i in range(1, 10)])
    _hand_out(w, campaign_id, "team1", 3)   # leads 1-3
    _hand_out(w, campaign_id, "team2", 3)   # leads 4-6; 7-9 stay with IT
    w.advance(1.0)
    queue_of = {action.get("Channel"): _variables(action)["CC_QUEUE"] for action, _ in w.ami.originates}
    assert queue_of == {"Local/13800000001@sim-pstn": "outbound-team1", "Local/13800000002@sim-pstn": "outbound-team1",
                        "Local/13800000004@sim-pstn": "outbound-team2"}
    w.advance(1.0)
    assert len(w.ami.originates) == 3  # every team's agents are covered by its own calls
    team2_call = next(d for action, d in w.ami.originates if _variables(action)["CC_QUEUE"] == "outbound-team2")
    team2_call.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "5")]))
    w.advance(1.0)
    assert [action.get("Channel") for action, _ in w.ami.originates[3:]] == ["Local/13800000005@sim-pstn"]
    assert _variables(w.ami.originates[3][0])["CC_QUEUE"] == "outbound-team2"
    (status,) = w.service.status()
    assert (status.agents_ready, status.in_flight, status.last_decision) == (3, 3, 1)
    assert status.route == "team"
    assert [(lane.team, lane.queue, lane.agents_ready, lane.in_flight, lane.last_decision) for lane in status.lanes] == [
        ("team1", "outbound-team1", 2, 2, 0), ("team2", "outbound-team2", 1, 1, 1)]
    w.service.stopService()


def test_a_restart_counts_each_adopted_call_of_a_route_team_campaign_in_its_leads_team(tmp_path: Path) -> None:
    """route: team, calls of team1 (two) and team2 (one) live across a restart: each adopted
    call is in its lead's team's lane (before: in a lane of its own, so every team counted
    all three against its agents)."""
    text = config_text(handout="team").replace("handout: team\n", "handout: team\n      route: team\n")

    def world(wall: datetime | None = None) -> World:
        w = World(tmp_path, text, agents=0)
        if wall is not None:
            w.wall = wall
            w.clock.advance(60)
        w.service.people = PEOPLE
        w.service.team_queues = lambda queue: {"team1": "outbound-team1", "team2": "outbound-team2"} \
            if queue == "outbound" else {}
        _join(w, "2101", "outbound", "outbound-team1")
        _join(w, "2102", "outbound", "outbound-team1")
        _join(w, "2201", "outbound", "outbound-team2")
        return w

    first = world()
    first.service.startService()
    campaign_id = first.import_leads([f"1380000000{i}" for i in range(1, 7)])
    _hand_out(first, campaign_id, "team1", 3)
    _hand_out(first, campaign_id, "team2", 3)
    first.advance(1.0)
    assert len(first.ami.originates) == 3
    first.service.stopService()
    second = world(first.wall + timedelta(minutes=1))
    second.ami.channels = [_channel(action.get("ChannelId") or "", state="5", duration="00:00:03")
                           for action, _ in first.ami.originates]
    second.service.startService()
    assert sorted(d.lane for d in second.service.book.dials()) == ["team1", "team1", "team2"]
    second.advance(1.0)
    assert second.ami.originates == []  # every team's agents covered by its own calls
    (status,) = second.service.status()
    assert [(lane.team, lane.in_flight) for lane in status.lanes] == [("team1", 2), ("team2", 1)]
    second.service.stopService()


def test_a_campaign_changed_to_route_team_while_running_paces_by_team_from_the_next_tick(tmp_path: Path) -> None:
    """dialer.yaml edited from route: queue to team: the next tick dials into the team queues; a
    call placed before the change still covers an agent until it ends, then ends its attempt."""
    text = config_text(handout="team")
    w = World(tmp_path, text, agents=0)
    w.service.people = PEOPLE
    w.service.team_queues = lambda queue: {"team1": "outbound-team1"} if queue == "outbound" else {}
    _join(w, "2101", "outbound", "outbound-team1")
    w.service.startService()
    campaign_id = w.import_leads([f"1380000000{i}" for i in range(1, 5)])
    _hand_out(w, campaign_id, "team1", 4)
    w.advance(1.0)
    assert [_variables(a)["CC_QUEUE"] for a, _ in w.ami.originates] == ["outbound"]
    successResultOf(w.service.apply_config(parse_dialer_config(
        text.replace("handout: team\n", "handout: team\n      route: team\n"), "dialer.yaml")))
    _join(w, "2102", "outbound", "outbound-team1")
    w.advance(1.0)  # team1: 2 ready agents, one covered by the call placed before the change
    assert [_variables(a)["CC_QUEUE"] for a, _ in w.ami.originates] == ["outbound", "outbound-team1"]
    w.ami.originates[0][1].callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Failure"),
                                                        ("Reason", "5")]))
    assert [a.outcome for a in w.attempts(campaign_id)] == ["busy", None]
    w.advance(1.0)
    assert [_variables(a)["CC_QUEUE"] for a, _ in w.ami.originates] == ["outbound"] + ["outbound-team1"] * 2
    w.service.stopService()


def _agent_page(w: World) -> str:
    """2101's page (GET /agent/2101) with this world's dialer and board."""
    from types import SimpleNamespace

    from twisted.web.test.requesthelper import DummyRequest

    from callcenter.http_api import AgentPage
    from callcenter.settings import load_settings

    engine = SimpleNamespace(settings=load_settings(Path(__file__).resolve().parents[2] / "config"),
                             clock=w.clock, agents=w.board, screen_pops={}, repository=None,
                             calls=SimpleNamespace(channels={}))
    body = AgentPage(engine, w.service).render_GET(DummyRequest([b"2101"]))  # type: ignore[arg-type]
    assert isinstance(body, bytes)
    return body.decode()


def _auto_text(auto_dial: int = 5) -> str:
    return config_text(dial_mode="preview").replace("      handout: none\n",
                                                    f"      handout: none\n      auto_dial: {auto_dial}\n")


def _auto_world(tmp_path: Path, auto_dial: int = 5) -> World:
    w = World(tmp_path, _auto_text(auto_dial), agents=1)  # 2101, ready since the world began
    w.service.startService()
    return w


def _board_event(w: World, **headers: str) -> None:
    w.board.handle(Message.from_pairs(list(headers.items())), w.clock.seconds())


def test_auto_dial_leaves_an_agent_whose_own_next_lead_claim_runs_alone(tmp_path: Path) -> None:
    """2101 clicks "Next lead" just as auto-dial's time comes: while the click's claim runs,
    auto-dial does not dial for them (before, it took the click's lead and dialed it before
    the agent saw it); the lead is the agent's to preview."""
    w, later = _later_world(tmp_path, _auto_text())
    w.import_leads(["13800000001", "13800000002"])
    _board_event(w, Event="QueueMemberStatus", Queue="outbound", Interface="PJSIP/agent2101", Paused="0", Status="1")
    for _ in range(4):  # ready 4 s: auto-dial's time is at 5
        w.advance(1.0)
        later.flush()
    clicked = w.service.preview_next("2101", "test-campaign")
    w.advance(1.0)
    w.advance(1.0)  # auto-dial's time, the click's claim still running
    later.flush()
    w.advance(1.0)
    later.flush()
    lead = successResultOf(clicked)
    assert lead is not None and w.service.held_preview("2101") == ("test-campaign", lead)
    assert w.ami.originates == []
    w.service.stopService()
    later.flush()


def test_auto_dial_leaves_an_agent_whose_previewed_lead_is_being_checked_alone(tmp_path: Path) -> None:
    """2101 reads a previewed lead past auto-dial's time, then dials it: while the lead is
    checked again (the thread pool), auto-dial places no second call for them (before, it
    claimed and dialed another lead: two calls rang the one agent)."""
    w, later = _later_world(tmp_path, _auto_text())
    w.import_leads(["13800000001", "13800000002"])
    _board_event(w, Event="QueueMemberStatus", Queue="outbound", Interface="PJSIP/agent2101", Paused="0", Status="1")
    clicked = w.service.preview_next("2101", "test-campaign")
    later.flush()
    assert successResultOf(clicked) is not None
    for _ in range(10):  # reading the preview, ready all along
        w.advance(1.0)
        later.flush()
    assert w.ami.originates == []
    w.service.preview_dial("2101")  # the check runs in the thread pool
    w.advance(1.0)  # a tick while it runs
    for _ in range(3):
        later.flush()
    w.advance(0.1)
    later.flush()
    assert [_variables(a)["CC_DIAL"] for a, _ in w.ami.originates] == ["Local/13800000001@sim-pstn"]
    w.service.stopService()
    later.flush()


def test_auto_dial_rings_a_ready_agent_with_their_next_lead_after_the_set_seconds(tmp_path: Path) -> None:
    """auto_dial: 5 on a preview campaign: 5 s after 2101 is ready their phone rings with the next lead
    (as "Dial" would); one at a time; after the call the agent has 5 s for the disposition, then the
    next lead is dialed; with no lead due, the dialer asks again only after a back-off."""
    w = _auto_world(tmp_path)
    campaign_id = w.import_leads(["13800000001", "13800000002"])
    _board_event(w, Event="QueueMemberStatus", Queue="outbound", Interface="PJSIP/agent2101", Paused="0",
                 Status="1")
    w.advance(1.0)
    assert w.ami.originates == []  # 2101 ready for 1 s: not yet
    for _ in range(5):
        w.advance(1.0)
    (action, response), = w.ami.originates
    variables = dict(action.variables)
    assert (action.get("Channel"), action.get("Context")) == ("PJSIP/agent2101", "dialer-preview")
    assert variables["CC_DIAL"] == "Local/13800000001@sim-pstn" and variables["CC_AGENT"] == "2101"
    w.advance(3.0)
    assert len(w.ami.originates) == 1  # the agent's phone rings: no second call
    response.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    _board_event(w, Event="UserEvent", UserEvent="AgentBusy", Agent="2101")
    w.advance(30.0)
    w.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=variables["CC_ATTEMPT"], Outcome="busy", Agent="2101")
    _board_event(w, Event="UserEvent", UserEvent="AgentFree", Agent="2101")
    w.advance(3.0)
    assert len(w.ami.originates) == 1  # 3 s of disposition time so far
    w.advance(3.0)
    assert [dict(a.variables)["CC_DIAL"] for a, _ in w.ami.originates][1:] == ["Local/13800000002@sim-pstn"]
    assert [a.outcome for a in w.attempts(campaign_id)] == ["busy", None]
    second = w.ami.originates[1][1]
    second.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    w.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=dict(w.ami.originates[1][0].variables)["CC_ATTEMPT"],
               Outcome="busy", Agent="2101")
    _board_event(w, Event="UserEvent", UserEvent="AgentBusy", Agent="2101")
    _board_event(w, Event="UserEvent", UserEvent="AgentFree", Agent="2101")
    w.advance(6.0)  # no lead is due (both retry later): nothing dialed, and no new claim before the back-off
    assert len(w.ami.originates) == 2
    w.import_leads(["13800000003"])
    w.advance(5.0)
    assert len(w.ami.originates) == 2
    w.advance(15.0)
    assert [dict(a.variables)["CC_DIAL"] for a, _ in w.ami.originates][2:] == ["Local/13800000003@sim-pstn"]
    w.service.stopService()


def test_an_auto_dial_the_agent_does_not_answer_puts_the_lead_back_and_waits_for_the_agent(tmp_path: Path) -> None:
    """2101's phone does not answer: the lead waits again with no attempt counted, and auto-dial
    stops for 2101 (the agent page says so) until their state changes: a pause and back resumes it."""
    w = _auto_world(tmp_path)
    campaign_id = w.import_leads(["13800000001"])
    for _ in range(6):
        w.advance(1.0)
    (_, response), = w.ami.originates
    response.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "3")]))
    assert w.attempts(campaign_id) == []  # released: no attempt, the lead due again
    with w.session() as session:
        lead = store.get_lead(session, 1)
    assert lead is not None and (lead.state, lead.attempts) == ("new", 0)
    assert w.service.auto_dial_held("2101")
    page = _agent_page(w)
    assert ("test-campaign: your next lead is dialed for you once you are ready for 5 s (your phone rings first); "
            "pause to stop it.") in page
    assert "Auto-dial stopped: your phone did not answer." in page
    w.advance(60.0)
    assert len(w.ami.originates) == 1  # nobody at the phone: not rung again and again
    _board_event(w, Event="QueueMemberPause", Queue="outbound", Interface="PJSIP/agent2101", Paused="1",
                 PausedReason="back")
    w.advance(1.0)
    _board_event(w, Event="QueueMemberPause", Queue="outbound", Interface="PJSIP/agent2101", Paused="0")
    assert not w.service.auto_dial_held("2101")
    for _ in range(6):
        w.advance(1.0)
    assert len(w.ami.originates) == 2 and dict(w.ami.originates[1][0].variables)["CC_AGENT"] == "2101"
    w.service.stopService()


def test_auto_dial_leaves_a_lead_the_agent_took_by_hand_to_them(tmp_path: Path) -> None:
    """The agent asked for a lead to read first: auto-dial does not dial it (nor another) for them;
    once they dial it and the call is over, auto-dial carries on."""
    w = _auto_world(tmp_path)
    w.import_leads(["13800000001", "13800000002"])
    lead = successResultOf(w.service.preview_next("2101", "test-campaign"))
    assert lead is not None
    for _ in range(20):
        w.advance(1.0)
    assert w.ami.originates == []
    w.service.preview_dial("2101")
    (_, response), = w.ami.originates
    response.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    w.ami.emit("UserEvent", UserEvent="DialerResult", Attempt=lead.attempt_id, Outcome="busy", Agent="2101")
    _board_event(w, Event="UserEvent", UserEvent="AgentBusy", Agent="2101")
    _board_event(w, Event="UserEvent", UserEvent="AgentFree", Agent="2101")
    for _ in range(6):
        w.advance(1.0)
    assert [dict(a.variables)["CC_DIAL"] for a, _ in w.ami.originates] == [
        "Local/13800000001@sim-pstn", "Local/13800000002@sim-pstn"]
    w.service.stopService()


def test_the_leads_still_to_call_are_read_every_15_seconds_into_the_status_and_gauges(world: World) -> None:
    """Before the tick's dials: 3 waiting, all due, the oldest imported a minute before; 15 s
    later (not sooner) the two being dialed are no longer waiting."""
    from callcenter.dialer.service import BACKLOG_SECONDS
    from callcenter.storage.dialer_records import LeadBacklog

    world.import_leads(["13800000001", "13800000002", "13800000003"])
    imported = world.wall - timedelta(minutes=1)
    assert world.service.status()[0].backlog is None  # not read yet
    world.advance(1.0)
    assert len(world.ami.originates) == 2
    assert world.service.status()[0].backlog == LeadBacklog(3, 3, imported)
    metrics = world.service.metrics
    assert metrics.leads_waiting.labels("test-campaign")._value.get() == 3.0
    assert metrics.oldest_lead_seconds.labels("test-campaign")._value.get() == 60.0  # the wall clock as the tick read it
    world.advance(BACKLOG_SECONDS - 2)
    assert world.service.status()[0].backlog == LeadBacklog(3, 3, imported)
    world.advance(2.0)
    assert world.service.status()[0].backlog == LeadBacklog(1, 1, imported)
    assert metrics.leads_due.labels("test-campaign")._value.get() == 1.0
