"""The engine service with a fake AMI client: facts -> metrics, live staffing gauge, HTTP API."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from callcenter.agi.codec import AgiHangupError, GetDataResult, PlaybackResult
from callcenter.ami.codec import Message
from callcenter.engine import Engine, RecordingPaths, campaign_description
from callcenter.http_api import ApiResource
from callcenter.metrics import EngineMetrics
from callcenter.settings import load_settings
from callcenter.storage import repository as repo
from tests.syncrepository import SyncRepository, in_tx

ROOT = Path(__file__).resolve().parents[2]



class FakeAmi:
    """Just enough of AmiClient for the engine: subscriptions, connection counters, and the
    actions sent (answered Success, or failed with ``failing``)."""

    connected = True
    connections_made = 1
    reconnects = 0
    resyncs = 1

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.resync: list[Any] = []
        self.sent: list[Any] = []
        self.failing: Exception | None = None

    def send(self, action: Any) -> Deferred[Any]:
        self.sent.append(action)
        return fail(self.failing) if self.failing is not None else succeed({"Response": "Success"})

    def subscribe(self, callback: Any, name: str | None = None) -> Any:
        self.events.append(callback)
        return _Handle()

    def on_resync(self, callback: Any) -> Any:
        self.resync.append(callback)
        return _Handle()


class _Handle:
    def cancel(self) -> None:
        pass


def _engine() -> tuple[Engine, FakeAmi, Clock, CollectorRegistry]:
    clock = Clock()
    clock.advance(1_795_400_000)
    ami = FakeAmi()
    registry = CollectorRegistry()
    engine = Engine(load_settings(ROOT / "config"), ami, None, EngineMetrics(registry), clock,  # type: ignore[arg-type]
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    return engine, ami, clock, registry


def _event(**fields: str) -> Message:
    return Message.from_pairs(fields.items())


def test_queue_traffic_feeds_the_live_staffing_gauge() -> None:
    """Hotline arrivals and completed calls drive the Prometheus gauge of agents needed now."""
    engine, ami, clock, registry = _engine()
    for i in range(120):  # 120 calls over an hour, 180 s talk each
        clock.advance(30)
        ami.events[0](_event(Event="QueueCallerJoin", Queue="hotline", Uniqueid=f"1.{i}"))
        ami.events[0](_event(Event="AgentComplete", Queue="hotline", TalkTime="170", HoldTime="5"))
    advice = engine.staffing_advice()
    assert advice.agents is not None and advice.agents >= 7  # 120/h * 180 s = 6 Erlangs
    text = generate_latest(registry).decode()
    assert f'callcenter_staffing_agents_needed{{queue="hotline"}} {float(advice.agents)}' in text


def test_queue_gauges_include_the_agents_by_state() -> None:
    """/metrics has each queue's callers waiting and its logged-in agents by state, read at the scrape."""
    from callcenter.metrics import QueueCollector

    engine, ami, _clock, registry = _engine()
    registry.register(QueueCollector(engine.queue_views))
    for agent, paused in (("1001", "0"), ("2101", "1")):
        ami.events[0](_event(Event="QueueMemberAdded", Queue="hotline", Interface=f"PJSIP/agent{agent}",
                             StateInterface=f"PJSIP/agent{agent}", Paused=paused, Status="1"))
    ami.events[0](_event(Event="QueueCallerJoin", Queue="hotline", Uniqueid="1.1", Channel="Local/400@x-1;2"))
    sample = registry.get_sample_value
    assert sample("callcenter_queue_callers_waiting", {"queue": "hotline"}) == 1.0
    assert sample("callcenter_queue_agents", {"queue": "hotline", "state": "ready"}) == 1.0
    assert sample("callcenter_queue_agents", {"queue": "hotline", "state": "paused"}) == 1.0
    assert sample("callcenter_queue_agents", {"queue": "hotline", "state": "on_call"}) == 0.0
    assert sample("callcenter_queue_agents", {"queue": "outbound", "state": "ready"}) == 0.0


def test_call_facts_update_metrics_and_the_calls_view() -> None:
    """A channel's life from AMI events shows in the calls gauges and the /api/calls view."""
    engine, ami, clock, registry = _engine()
    base = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "9.1", "Linkedid": "9.1",
            "CallerIDNum": "13800138000", "CallerIDName": "Zhang", "Context": "from-pstn", "Exten": "400"}
    ami.events[0](_event(Event="Newchannel", ChannelState="4", ChannelStateDesc="Ring", **base))
    ami.events[0](_event(Event="Newstate", ChannelState="6", ChannelStateDesc="Up", **base))
    request = DummyRequest([b"calls"])
    body = json.loads(ApiResource(engine).render_GET(request))  # type: ignore[arg-type]
    assert [c["caller_id_num"] for c in body["calls"]] == ["13800138000"]
    clock.advance(42)
    ami.events[0](_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **base))
    text = generate_latest(registry).decode()
    assert "callcenter_calls_started_total 1.0" in text
    assert "callcenter_calls_ended_total 1.0" in text
    assert "callcenter_calls_active 0.0" in text


def test_api_rejects_bad_input_naming_the_field() -> None:
    """A bad query value is a 400 naming the field; an unknown path is a 404."""
    engine, _ami, _clock, _registry = _engine()
    request = DummyRequest([b"call-records"])
    request.args = {b"limit": [b"abc"]}
    resource = ApiResource(engine)
    body = resource.render_GET(request)  # type: ignore[arg-type]
    # no database configured in this engine: the API says so before reading arguments
    assert request.responseCode == 503 and json.loads(body)["error"] == "no database configured"
    request = DummyRequest([b"nope"])
    body = resource.render_GET(request)  # type: ignore[arg-type]
    assert request.responseCode == 404 and json.loads(body)["field"] is None


def _post(engine: Engine, path: list[bytes], body: bytes) -> tuple[int, Any]:
    request = DummyRequest(path)
    request.method = b"POST"
    request.path = b"/api/" + b"/".join(path)  # a real Request has it; DummyRequest does not
    request.content = io.BytesIO(body)
    result = ApiResource(engine).render_POST(request)  # type: ignore[arg-type]
    if isinstance(result, bytes):
        return request.responseCode, json.loads(result)
    return request.responseCode, json.loads(b"".join(request.written))


def test_spy_by_a_non_supervisor_is_refused_with_403_before_any_ami_action() -> None:
    """Only leads of the agent's team (or managers) may listen; others get 403 and nothing is sent."""
    engine, _ami, _clock, _registry = _engine()  # FakeAmi has no originate: sending would be a 500
    status, body = _post(engine, [b"supervisor", b"spy"], b'{"supervisor": "2102", "agent": "2101", "mode": "listen"}')
    assert status == 403 and "2102" in body["error"]
    status, body = _post(engine, [b"supervisor", b"spy"], b'{"supervisor": "8001", "agent": "2101", "mode": "listen"}')
    assert status == 409 and body["field"] == "agent"  # a lead of team1, but 2101 is not on a call


def test_post_bad_input_names_the_field() -> None:
    """Malformed JSON, a missing field and an unknown agent are 400s that say what is wrong."""
    engine, _ami, _clock, _registry = _engine()
    status, body = _post(engine, [b"supervisor", b"spy"], b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]
    status, body = _post(engine, [b"supervisor", b"spy"], b'{"supervisor": "8001", "mode": "listen"}')
    assert (status, body) == (400, {"error": "missing (expected a non-empty string)", "field": "agent"})
    status, body = _post(engine, [b"supervisor", b"spy"], b'{"supervisor": "8001", "agent": 2101, "mode": "listen"}')
    assert (status, body) == (400, {"error": "expected a non-empty string, got 2101", "field": "agent"})
    status, body = _post(engine, [b"supervisor", b"spy"], b'{"supervisor": "8001", "agent": "2101", "mode": "sing"}')
    assert (status, body) == (400, {"error": "unknown spy mode 'sing' (one of listen, whisper, barge)",
                                    "field": "mode"})
    status, body = _post(engine, [b"agents", b"9999", b"login"], b"")
    assert status == 400 and "9999" in body["error"]
    status, body = _post(engine, [b"agents", b"2101", b"pause"], b"{}")
    assert status == 400 and body["field"] == "reason"


def test_asterisk_down_is_a_503_and_an_unexpected_failure_a_logged_500() -> None:
    """With AMI not connected an agent's login is a 503 saying Asterisk is unreachable (not an
    "internal error"); a failure nobody expected is a 500 whose traceback goes to the log."""
    from twisted.internet.defer import fail
    from twisted.logger import globalLogPublisher

    from callcenter.ami.client import AmiNotConnected

    engine, ami, _clock, _registry = _engine()
    ami.send = lambda action: fail(AmiNotConnected("AMI: not connected; QueueAdd not sent"))  # type: ignore[attr-defined]
    status, body = _post(engine, [b"agents", b"1001", b"login"], b"")
    assert status == 503
    assert body["error"] == ("Asterisk is not reachable right now (AMI: not connected; QueueAdd not sent); "
                             "try again in a moment")
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        ami.send = lambda action: fail(RuntimeError("a bug"))  # type: ignore[attr-defined]
        status, body = _post(engine, [b"agents", b"1001", b"login"], b"")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert (status, body) == (500, {"error": "internal error (logged by the daemon)", "field": None})
    (event,) = [e for e in logged if e.get("log_format", "").startswith("web.internal_error")]
    assert event["path"] == "/api/agents/1001/login" and event["log_failure"].check(RuntimeError)


def test_agents_view_follows_queue_events() -> None:
    """GET /api/agents shows an agent ready once Asterisk reports the queue member added."""
    engine, ami, _clock, _registry = _engine()
    ami.events[0](_event(Event="QueueMemberAdded", Queue="hotline", Interface="PJSIP/agent1001",
                         StateInterface="PJSIP/agent1001", MemberName="Hotline agent", Paused="0",
                         Status="1", Penalty="0", CallsTaken="0", LastCall="0", InCall="0"))
    request = DummyRequest([b"agents"])
    body = json.loads(ApiResource(engine).render_GET(request))  # type: ignore[arg-type]
    assert [(a["id"], a["state"]) for a in body["agents"]] == [("1001", "ready")]


def _queued_call(ami: FakeAmi, clock: Clock, uid: str, *, wait: int, answered: bool,
                 number: str = "13800138000") -> None:
    """A hotline caller's channel: up, queued ``wait`` s, answered (30 s talk) or abandoned, gone."""
    base = {"Channel": f"PJSIP/trunk-{uid}", "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": number,
            "CallerIDName": "Zhang", "Context": "from-pstn", "Exten": "400"}
    send = ami.events[0]
    send(_event(Event="Newchannel", ChannelState="4", ChannelStateDesc="Ring", **base))
    send(_event(Event="Newstate", ChannelState="6", ChannelStateDesc="Up", **base))
    send(_event(Event="VarSet", Variable="CC_DIRECTION", Value="inbound", **base))
    send(_event(Event="QueueCallerJoin", Queue="hotline", Uniqueid=uid, Position="1", Count="1"))
    clock.advance(wait)
    if answered:
        send(_event(Event="QueueCallerLeave", Queue="hotline", Uniqueid=uid, Count="0"))
        agent = {**base, "Channel": f"PJSIP/agent1001-{uid}", "Uniqueid": f"{uid}9", "CallerIDNum": "1001"}
        send(_event(Event="Newchannel", ChannelState="5", ChannelStateDesc="Ringing", **agent))
        send(_event(Event="Newstate", ChannelState="6", ChannelStateDesc="Up", **agent))
        send(_event(Event="AgentConnect", Queue="hotline", Uniqueid=uid, Linkedid=uid, HoldTime=str(wait),
                    MemberName="Hotline agent", Interface="PJSIP/agent1001"))
        for channel in (base, agent):
            send(_event(Event="BridgeEnter", BridgeUniqueid=f"b-{uid}", BridgeType="basic", **channel))
        clock.advance(30)
        for channel in (agent, base):
            send(_event(Event="BridgeLeave", BridgeUniqueid=f"b-{uid}", BridgeType="basic", **channel))
        send(_event(Event="AgentComplete", Queue="hotline", Uniqueid=uid, HoldTime=str(wait), TalkTime="30",
                    MemberName="Hotline agent", Interface="PJSIP/agent1001"))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **agent))
    else:
        send(_event(Event="QueueCallerAbandon", Queue="hotline", Uniqueid=uid, HoldTime=str(wait)))
        send(_event(Event="QueueCallerLeave", Queue="hotline", Uniqueid=uid, Count="0"))
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **base))


def _engine_on(repository: SyncRepository, clock: Clock) -> tuple[Engine, FakeAmi]:
    """A started engine on ``repository`` (a daemon of the site), with its fake AMI."""
    ami = FakeAmi()
    engine = Engine(load_settings(ROOT / "config"), ami, repository, EngineMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    return engine, ami


def test_queue_stays_are_recorded_and_a_restarted_engine_counts_the_day_again(
        sessions: sessionmaker[Session]) -> None:
    """Each call record keeps how its queue stay ended; an engine started later in the day
    reads them back, so the wallboard's day does not start again with the daemon."""
    repository = SyncRepository(sessions)
    clock = Clock()
    clock.advance(1_795_400_000)
    first, first_ami = _engine_on(repository, clock)
    _queued_call(first_ami, clock, "7.1", wait=12, answered=True)
    _queued_call(first_ami, clock, "7.2", wait=40, answered=True)
    _queued_call(first_ami, clock, "7.3", wait=25, answered=False)
    records = {r.uniqueid: r for r in in_tx(sessions, repo.list_recent_call_records)}
    assert {u: (r.queue, r.queue_result, r.wait_seconds) for u, r in records.items()} == {
        "7.1": ("hotline", "answered", 12), "7.2": ("hotline", "answered", 40),
        "7.3": ("hotline", "abandoned", 25)}
    before = first.queue_views()[0]
    first.stopService()

    clock.advance(600)
    second, _ = _engine_on(repository, clock)
    after = second.queue_views()[0]
    counters = ("offered", "answered", "abandoned", "unanswered", "answered_within_target", "service_level",
                "asa", "completed", "average_talk")
    assert {k: after[k] for k in counters} == {k: before[k] for k in counters} == {
        "offered": 3, "answered": 2, "abandoned": 1, "unanswered": 0, "answered_within_target": 1,
        "service_level": 1 / 3, "asa": 26.0, "completed": 2, "average_talk": 30.0}


def test_a_call_under_way_when_the_daemon_restarts_gets_its_record_completed(sessions: sessionmaker[Session]) -> None:
    """A hotline call rings agent 1001 (its record opened) and is answered; the daemon stops.
    A new daemon finds the call in Asterisk's channel list (its CC_ variables unseen), sees it
    end, and completes the record opened before: its end, the talk seen, the agent. No second
    record. A call seen already under way with no record left (IVR only) gets none."""
    repository = SyncRepository(sessions)
    clock = Clock()
    clock.advance(1_795_400_000)
    first, first_ami = _engine_on(repository, clock)
    caller = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "8.1", "Linkedid": "8.1", "CallerIDNum": "13800138000",
              "CallerIDName": "Zhang", "Context": "from-pstn", "Exten": "400"}
    agent = {**caller, "Channel": "PJSIP/agent1001-00000002", "Uniqueid": "8.2", "CallerIDNum": "1001"}
    send = first_ami.events[0]
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    send(_event(Event="VarSet", Variable="CC_DIRECTION", Value="inbound", **caller))
    send(_event(Event="QueueCallerJoin", Queue="hotline", Uniqueid="8.1", Position="1", Count="1"))
    send(_event(Event="AgentCalled", Queue="hotline", Linkedid="8.1", Interface="PJSIP/agent1001",
                DestChannel=agent["Channel"], **{k: v for k, v in caller.items() if k != "Linkedid"}))
    [opened] = in_tx(sessions, repo.list_recent_call_records)
    assert (opened.agent_id, opened.ended_at, opened.talk_seconds) == ("1001", None, None)
    first.stopService()

    clock.advance(60)  # the new daemon connects; the call is talking
    second, second_ami = _engine_on(repository, clock)
    listed = [_event(Event="CoreShowChannel", ChannelState="6", ChannelStateDesc="Up", Duration="00:01:00",
                     BridgeId="b-8", **channel) for channel in (caller, agent)]
    ivr_only = {"Channel": "PJSIP/trunk-00000003", "Uniqueid": "8.3", "Linkedid": "8.3", "CallerIDNum": "13900139000",
                "CallerIDName": "Li", "Context": "hotline", "Exten": "s"}
    listed.append(_event(Event="CoreShowChannel", ChannelState="6", ChannelStateDesc="Up", Duration="00:00:20",
                         **ivr_only))
    second.on_resync(listed, [])
    clock.advance(30)
    send = second_ami.events[0]
    for channel in (agent, caller):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b-8", BridgeType="basic", **channel))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **channel))
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **ivr_only))
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.id, record.agent_id, record.ended_at is not None) == (opened.id, "1001", True)
    assert record.talk_seconds is not None and record.talk_seconds >= 30, record
    assert second.records_written == 0  # no record_call: nothing was created


def test_a_caller_who_hangs_up_waiting_is_called_back_and_a_later_talk_is_reported(
        sessions: sessionmaker[Session]) -> None:
    """queues.yaml ``call_back_abandoned: 10`` (the shipped hotline): a caller who hung up after
    25 s waiting is to be called back (the record says so until it is done); one who hung up
    after 5 s is not; a caller who asked the IVR is called back as they asked (no "abandoned");
    a call that reached an agent is reported to the talked listeners (the dialer closes that
    number's waiting call back)."""
    from callcenter.engine import CallbackRequest

    clock = Clock()
    clock.advance(1_795_400_000)
    settings = load_settings(ROOT / "config")
    assert settings.queue("hotline").call_back_abandoned == 10
    ami = FakeAmi()
    engine = Engine(settings, ami, SyncRepository(sessions), EngineMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", Path("/tmp/rec")))
    requests: list[CallbackRequest] = []
    talked: list[str] = []
    engine.callback_listeners.append(requests.append)
    engine.talked_listeners.append(lambda record: talked.append(record.uniqueid))
    engine.startService()
    _queued_call(ami, clock, "7.1", wait=5, answered=False)
    assert requests == [] and talked == []
    _queued_call(ami, clock, "7.2", wait=25, answered=False)
    [request] = requests
    assert (request.phone, request.abandoned, request.record.uniqueid) == ("13800138000", "waited 25 s in hotline",
                                                                           "7.2")
    records = {r.uniqueid: r for r in in_tx(sessions, repo.list_recent_call_records)}
    assert records["7.2"].outcome == "hung up, waited 25 s in hotline; callback: 13800138000"
    assert records["7.1"].outcome is None
    _queued_call(ami, clock, "7.3", wait=3, answered=True)
    assert talked == ["7.3"] and len(requests) == 1
    _queued_call(ami, clock, "7.4", wait=30, answered=False, number="anonymous")  # a withheld number
    assert len(requests) == 1
    records = {r.uniqueid: r for r in in_tx(sessions, repo.list_recent_call_records)}
    assert (records["7.4"].queue_result, records["7.4"].outcome) == ("abandoned", None)
    engine.stopService()


class _SeatlessAgi:
    """A hotline call's FastAGI session in which the dialplan found every IVR channel taken."""

    def __init__(self, seats: str) -> None:
        self.env = type("Env", (), {"callerid": "13900000102"})()
        self.seats = seats
        self.set: dict[str, str] = {}
        self.played: list[str] = []

    async def get_variable(self, name: str, timeout: float | None = None) -> str | None:
        return self.seats if name == "CC_IVR_SEATS" else None

    async def set_variable(self, name: str, value: str | int, timeout: float | None = None) -> None:
        self.set[name] = str(value)

    async def stream_file(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.played.append(name)
        raise AssertionError("a caller beyond the IVR channels hears no menu")


def run_at_once(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run an engine AGI script whose every await is already answered (fakes, SyncRepository)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise AssertionError("the script waited for something")


def test_a_caller_beyond_the_ivr_channels_is_queued_without_the_menus() -> None:
    """``CC_IVR_SEATS=full`` (dialplans/hotline.conf): no menu, the hotline queue, path ``ivr=full``, counted;
    Asterisk's own announcements in the flow's default language (no language menu was heard)."""
    engine, _, _, registry = _engine()
    agi = _SeatlessAgi("full")
    run_at_once(engine.agi_hotline(agi))  # type: ignore[arg-type]
    assert agi.set == {"CC_QUEUE": "hotline", "CC_IVR_MAIN_PATH": "ivr=full", "CHANNEL(language)": "zh"}
    assert agi.played == []
    assert registry.get_sample_value("callcenter_ivr_full_total") == 1.0


class _HangsUpAtTheMainMenu:
    """A hotline caller's FastAGI session: IVR seats free, Mandarin (1) at the language menu,
    then they hang up while the main menu plays (the session reports the hangup)."""

    def __init__(self, uniqueid: str) -> None:
        self.env = type("Env", (), {"callerid": "13800138000", "uniqueid": uniqueid})()
        self.set: dict[str, str] = {}
        self.keys = ["1"]

    async def get_variable(self, name: str, timeout: float | None = None) -> str | None:
        return "free" if name == "CC_IVR_SEATS" else None

    async def set_variable(self, name: str, value: str | int, timeout: float | None = None) -> None:
        self.set[name] = str(value)

    async def stream_file(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return PlaybackResult(None, 8000)

    async def get_data(self, prompt: str, *args: Any, **kwargs: Any) -> Any:
        if not self.keys:
            raise AgiHangupError("GET DATA: channel hung up")
        return GetDataResult(self.keys.pop(0), False)


def test_a_caller_who_hangs_up_in_the_ivr_has_the_path_on_the_record(sessions: sessionmaker[Session]) -> None:
    """The walk's path is kept as it goes: a caller who hangs up at the main menu (no channel
    left to hand CC_IVR_MAIN_PATH to) still has it on the call record (before, empty for every
    call given up in the IVR: where callers give up could not be seen)."""
    repository = SyncRepository(sessions)
    clock = Clock()
    clock.advance(dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    engine, ami = _engine_on(repository, clock)
    caller = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "9.1", "Linkedid": "9.1", "CallerIDNum": "13800138000",
              "CallerIDName": "Zhang", "Context": "hotline", "Exten": "s"}
    send = ami.events[0]
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    send(_event(Event="VarSet", Variable="CC_DIRECTION", Value="inbound", **caller))
    agi = _HangsUpAtTheMainMenu("9.1")
    run_at_once(engine.agi_hotline(agi))  # type: ignore[arg-type]
    assert "CC_IVR_MAIN_PATH" not in agi.set
    clock.advance(12)
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **caller))
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert record.ivr_path[:4] == ("welcome", "language", "language=1", "set_zh"), record.ivr_path
    assert record.ivr_path[-1] == "main_menu", record.ivr_path
    assert engine._ivr_walks == {}


def test_agent_states_are_written_for_the_agent_time_report(sessions: sessionmaker[Session]) -> None:
    """The engine writes each agent state change (batched, in order); stopping marks the agents
    still logged in unknown, and the next start finds nothing left open. The report then says
    where the agent's time went: ready, paused for lunch, ringing, the call, wrap-up."""
    from datetime import UTC, datetime

    from callcenter.storage.agent_time import agent_time_report

    repository = SyncRepository(sessions)
    clock = Clock()
    clock.advance(1_795_400_000)
    start = datetime.fromtimestamp(clock.seconds(), UTC)
    settings = load_settings(ROOT / "config")
    ami = FakeAmi()
    engine = Engine(settings, ami, repository, EngineMetrics(CollectorRegistry()), clock,  # type: ignore[arg-type]
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    member = {"Queue": "hotline", "Interface": "PJSIP/agent1001", "StateInterface": "PJSIP/agent1001",
              "MemberName": "Hotline agent"}
    ami.events[0](_event(Event="QueueMemberAdded", Paused="0", Status="1", Penalty="0", CallsTaken="0",
                         LastCall="0", InCall="0", **member))
    clock.advance(100)
    ami.events[0](_event(Event="QueueMemberPause", Paused="1", PausedReason="lunch", **member))
    clock.advance(60)
    ami.events[0](_event(Event="QueueMemberPause", Paused="0", **member))
    clock.advance(20)
    _queued_call(ami, clock, "8.1", wait=5, answered=True)  # 5 s more ready, then 30 s on the call
    clock.advance(10)  # the hotline's wrap-up (queues.yaml: 10 s) ends by the engine's own timer
    clock.advance(35)
    engine.stopService()
    end = datetime.fromtimestamp(clock.seconds() + 60, UTC)
    clock.advance(60)
    restarted = Engine(settings, FakeAmi(), repository, EngineMetrics(CollectorRegistry()), clock,  # type: ignore[arg-type]
                       RecordingPaths("/srv/rec", Path("/tmp/rec")))
    restarted.startService()  # nothing left open: no second marker

    [line] = in_tx(sessions, agent_time_report, start=start, end=end, now=end)
    assert line.agent_id == "1001"
    assert (line.ready, line.paused_by_reason, line.on_call, line.wrap_up) == (100 + 20 + 5 + 35, {"lunch": 60}, 30, 10)
    assert (line.logged_in, line.unknown) == (260, 60)
    from callcenter.storage import models
    with sessions() as session:
        states = session.scalars(sa.select(models.AgentStateChange.state).order_by(models.AgentStateChange.id)).all()
    assert states == ["ready", "paused", "ready", "on_call", "wrap_up", "ready", "unknown"]


def test_an_agents_own_call_gets_a_record_and_the_screen_pop(sessions: sessionmaker[Session]) -> None:
    """[agent-dial]'s AgentDial event opens an outbound record for the agent (the number dialed,
    no queue, no campaign) and pops it on their screen; the call's end completes it."""
    repository = SyncRepository(sessions)
    clock = Clock()
    clock.advance(1_795_400_000)
    ami = FakeAmi()
    engine = Engine(load_settings(ROOT / "config"), ami, repository, EngineMetrics(CollectorRegistry()), clock,  # type: ignore[arg-type]
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    send = ami.events[0]
    agent = {"Channel": "PJSIP/agent2101-00000001", "Uniqueid": "9.1", "Linkedid": "9.1", "CallerIDNum": "2101",
             "CallerIDName": "Agent 2101", "Context": "agent-dial", "Exten": "13800138000"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **agent))
    for name, value in (("CC_DIRECTION", "outbound"), ("CC_PHONE", "13800138000"), ("CC_CUSTOMER_NAME", "Zhang Wei")):
        send(_event(Event="VarSet", Variable=name, Value=value, **agent))
    send(_event(Event="UserEvent", UserEvent="AgentDial", Agent="2101", Phone="13800138000", **agent))
    assert engine.screen_pops["2101"] == "9.1"
    [opened] = in_tx(sessions, repo.list_recent_call_records)
    assert (opened.direction, opened.agent_id, opened.phone, opened.customer_name, opened.queue, opened.description) == (
        "outbound", "2101", "13800138000", "Zhang Wei", None, "")
    customer = {**agent, "Channel": "PJSIP/pstn-00000002", "Uniqueid": "9.2", "CallerIDNum": "13800138000"}
    send(_event(Event="Newchannel", ChannelState="5", ChannelStateDesc="Ringing", **customer))
    clock.advance(4)
    send(_event(Event="Newstate", ChannelState="6", ChannelStateDesc="Up", **customer))
    for channel in (agent, customer):
        send(_event(Event="BridgeEnter", BridgeUniqueid="b-9", BridgeType="basic", **channel))
    clock.advance(42)
    for channel in (customer, agent):
        send(_event(Event="BridgeLeave", BridgeUniqueid="b-9", BridgeType="basic", **channel))
        send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **channel))
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.id, record.agent_id, record.talk_seconds, record.ended_at is not None) == (opened.id, "2101", 42, True)


def test_a_dialer_calls_record_names_the_campaign_lead_and_how_manieth_call() -> None:
    assert campaign_description({"CC_CAMPAIGN": "3", "CC_CAMPAIGN_NAME": "spring-sale", "CC_LEAD": "5",
                                 "CC_ATTEMPT": "812", "CC_ATTEMPT_NO": "2"}) == "campaign spring-sale, lead 5, call 2"
    assert campaign_description({"CC_CAMPAIGN": "3", "CC_LEAD": "5"}) == "campaign 3, lead 5"
    assert campaign_description({"CC_PHONE": "13800138000"}) == ""  # an agent's own call


def test_an_agent_asterisk_paused_for_no_answer_is_counted_and_logged() -> None:
    engine, ami, _, registry = _engine()
    send = ami.events[0]
    member = {"Queue": "hotline", "Interface": "PJSIP/agent2101", "StateInterface": "PJSIP/agent2101",
              "MemberName": "Agent 2101"}
    send(_event(Event="QueueMemberAdded", Paused="0", **member))
    send(_event(Event="QueueMemberPause", Paused="1", Reason="lunch", **member))
    send(_event(Event="QueueMemberPause", Paused="0", **member))
    assert registry.get_sample_value("callcenter_agent_no_answer_pauses_total", {"agent": "2101"}) is None
    send(_event(Event="QueueMemberPause", Paused="1", Reason="Auto-Pause", PausedReason="Auto-Pause", **member))
    agent = engine.agents.agent("2101")
    assert agent is not None and (agent.state.value, agent.pause_reason) == ("paused", "no answer")
    assert registry.get_sample_value("callcenter_agent_no_answer_pauses_total", {"agent": "2101"}) == 1.0
    # still paused, they call the customer back: back to paused after it, no second ring-out counted
    send(_event(Event="UserEvent", UserEvent="AgentBusy", Agent="2101", Uniqueid="1700000100.9"))
    send(_event(Event="UserEvent", UserEvent="AgentFree", Agent="2101", Uniqueid="1700000100.9"))
    assert engine.agents.state_of("2101").value == "paused"
    assert registry.get_sample_value("callcenter_agent_no_answer_pauses_total", {"agent": "2101"}) == 1.0


def test_the_days_left_on_the_hotlines_holiday_list_are_a_gauge() -> None:
    """callcenter_hotline_holidays_days_left: from today in the site's time zone (2026-11-23
    in Shanghai) to the shipped flow's last holiday (2027-01-01), read at each scrape."""
    engine, _, clock, registry = _engine()
    assert engine.hotline_flow is not None and max(engine.hotline_flow.holidays).isoformat() == "2027-01-01"
    assert registry.get_sample_value("callcenter_hotline_holidays_days_left") == 39.0
    clock.advance(40 * 86400)
    assert registry.get_sample_value("callcenter_hotline_holidays_days_left") == -1.0
