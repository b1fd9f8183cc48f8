"""Pausing a call's recording while the customer reads out a card number (docs/agents.md,
"Pausing the recording"): the pure rules, the agent service, the engine's automatic resume,
the page, the API and the CLI. On the real Asterisk: tests/integration/test_recording_pause_lab.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.task import Clock

from callcenter.agents import AgentService, UnknownAgentError
from callcenter.ami.codec import Message
from callcenter.engine import Engine, RecordingPaths
from callcenter.http_api import AgentPage, ApiResource
from callcenter.metrics import EngineMetrics
from callcenter.recording_pause import (
    Paused,
    RecordingPauseRefused,
    RecordingPauses,
    mute_actions,
    pause_offsets,
    recording_channels,
)
from callcenter.settings import Settings, load_settings
from callcenter.state.agents import AgentBoard
from callcenter.state.calls import Channel, ChannelState
from callcenter.storage import repository as repo
from tests.cliapi import cli_with_fake_daemon
from tests.httpapi import get_json, post_json
from tests.syncrepository import in_tx
from tests.unit.test_agent_page import _engine as _page_engine
from tests.unit.test_agent_page import _get, _post, _talking_with_2102_ready
from tests.unit.test_consult import _running, _SendingAmi
from tests.unit.test_transfer import _Ami, _failure_of, _wav

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "config")


def _channel(uniqueid: str, name: str, *, recording: str = "", linkedid: str = "7.0",
             bridged: bool = True) -> Channel:
    return Channel(uniqueid=uniqueid, linkedid=linkedid, name=name, state=ChannelState.UP, caller_id_num="",
                   caller_id_name="", connected_line_num="", connected_line_name="", context="", exten="",
                   priority=1, application="", created_at=0.0, answered_at=0.0,
                   variables=MappingProxyType({"CC_RECORDING": recording} if recording else {}),
                   bridge_id="b1" if bridged else None, local_peer=None, dial_status=None)


CALLER = _channel("7.1", "Local/400@from-pstn-00000000;2", recording="/srv/rec/20261207/7.1.wav")
AGENT = _channel("7.2", "PJSIP/agent1001-00000003")


def _event(**fields: str) -> Message:
    return Message.from_pairs(fields.items())


# ------------------------------------------------------------------------------- pure


def test_the_channels_recording_the_agents_call_are_the_calls_with_cc_recording() -> None:
    """The hotline caller's channel records a queue call; an agent's own call records on
    the agent's channel; another call's recording is not this one's."""
    other = _channel("8.1", "PJSIP/trunk-00000009", recording="/srv/rec/x.wav", linkedid="8.0")
    assert recording_channels("1001", [CALLER, AGENT, other]) == [CALLER]
    own = replace(AGENT, variables=MappingProxyType({"CC_RECORDING": "/srv/rec/own.wav"}))
    assert recording_channels("1001", [own, _channel("7.9", "PJSIP/trunk-00000004")]) == [own]
    with pytest.raises(RecordingPauseRefused, match="1001 is not talking to anyone"):
        recording_channels("1001", [CALLER])
    with pytest.raises(RecordingPauseRefused, match="1001 is not talking to anyone"):
        recording_channels("1001", [CALLER, replace(AGENT, bridge_id=None)])  # still ringing
    with pytest.raises(RecordingPauseRefused, match="1001's call is not recorded"):
        recording_channels("1001", [AGENT, replace(CALLER, variables=MappingProxyType({}))])


def test_muting_is_both_directions_of_each_recording_channel() -> None:
    assert [(a.name, dict(a.headers)) for a in mute_actions([CALLER], True)] == [
        ("MixMonitorMute", {"Channel": CALLER.name, "Direction": "both", "State": "1"})]
    assert mute_actions([CALLER], False)[0].get("State") == "0"


def test_asterisks_mute_events_say_which_recordings_are_paused() -> None:
    pauses = RecordingPauses()
    muted = {"Channel": CALLER.name, "Uniqueid": "7.1", "Linkedid": "7.0", "Direction": "both"}
    assert pauses.handle(_event(Event="MixMonitorMute", State="1", **muted), 100.0) == Paused(
        "7.1", CALLER.name, "7.0", 100.0)
    assert pauses.handle(_event(Event="MixMonitorMute", State="1", **muted), 105.0) is None  # already
    assert pauses.of_call("7.0") == Paused("7.1", CALLER.name, "7.0", 100.0)
    assert pauses.of_call("8.0") is None
    assert pauses.handle(_event(Event="MixMonitorMute", State="0", **muted), 130.0) == "7.1"
    assert pauses.handle(_event(Event="MixMonitorMute", State="0", **muted), 131.0) is None
    pauses.handle(_event(Event="MixMonitorMute", State="1", **muted), 140.0)
    assert pauses.handle(_event(Event="Hangup", Uniqueid="7.9"), 150.0) is None
    assert pauses.handle(_event(Event="Hangup", Uniqueid="7.1"), 150.0) == "7.1"
    assert pauses.of_call("7.0") is None


def test_each_files_pauses_are_kept_until_taken() -> None:
    """The file a muted channel records gets the pause's (start, end); one still muted when
    the AMI session was lost (clear) stays open: it runs to the end of the file."""
    pauses = RecordingPauses()
    muted = {"Channel": CALLER.name, "Uniqueid": "7.1", "Linkedid": "7.0"}
    path = "/srv/rec/7.1.wav"
    assert pauses.handle(_event(Event="MixMonitorMute", State="1", **muted), 10.0, {"7.1": path}.get).path == path
    pauses.handle(_event(Event="MixMonitorMute", State="0", **muted), 15.0)
    pauses.handle(_event(Event="MixMonitorMute", State="1", **muted), 25.0, {"7.1": path}.get)
    pauses.handle(_event(Event="Hangup", Uniqueid="7.1"), 30.0)
    pauses.handle(_event(Event="MixMonitorMute", State="1", **muted), 40.0, {"7.1": path}.get)
    pauses.clear()
    pauses.handle(_event(Event="MixMonitorMute", State="0", **muted), 45.0)  # unknown since the reconnection
    assert pauses.take_spans(path) == [(10.0, 15.0), (25.0, 30.0), (40.0, None)]
    assert pauses.take_spans(path) == []
    assert pause_offsets([(10.0, 15.0), (25.0, 30.0), (40.0, None)], 5.0, 38.0) == (
        (5.0, 10.0), (20.0, 25.0), (35.0, 38.0))
    assert pause_offsets([(1.0, 2.0), (4.0, 9.0)], 5.0, 0.0) == ((0.0, 4.0),)  # before the file began: gone


# ---------------------------------------------------------------------------- service


def test_the_service_mutes_and_unmutes_the_recording_channels(settings: Settings) -> None:
    ami = _Ami()
    channels = [CALLER, AGENT]
    service = AgentService(settings, ami, AgentBoard(), Clock(), channels=lambda: channels)
    assert isinstance(_failure_of(service.pause_recording("9999")), UnknownAgentError)
    assert "2105 is not talking to anyone" in str(_failure_of(service.pause_recording("2105")))
    assert ami.sent == []
    service.pause_recording("1001")
    service.resume_recording("1001")
    assert [(a.name, a.get("Channel"), a.get("State")) for a in ami.sent] == [
        ("MixMonitorMute", CALLER.name, "1"), ("MixMonitorMute", CALLER.name, "0")]


# ----------------------------------------------------------------------------- engine


def _engine(limit: int) -> tuple[Engine, Any, Any, Clock, CollectorRegistry]:
    settings = load_settings(ROOT / "config")
    settings = replace(settings, recordings=replace(settings.recordings, pause_limit_seconds=limit))
    ami, clock, registry = _SendingAmi(), Clock(), CollectorRegistry()
    engine = Engine(settings, ami, None, EngineMetrics(registry), clock,  # type: ignore[arg-type]
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    engine.on_resync([], [])  # connected: what a connection sends (the overflow device) is not this test's
    ami.sent.clear()
    return engine, ami.events[0], ami.sent, clock, registry


MUTED = {"Channel": CALLER.name, "Uniqueid": "7.1", "Linkedid": "7.0", "Direction": "both"}


def test_a_paused_recording_resumes_by_itself_after_the_limit() -> None:
    """The agent forgot: after ``pause_limit_seconds`` the engine unmutes the channel (once);
    a resume before the limit, or the call's end, cancels that."""
    engine, send, sent, clock, registry = _engine(120)
    send(_event(Event="MixMonitorMute", State="1", **MUTED))
    assert registry.get_sample_value("callcenter_recording_pauses_total") == 1.0
    clock.advance(119)
    assert sent == []
    clock.advance(1)
    assert [(a.name, a.get("Channel"), a.get("State")) for a in sent] == [("MixMonitorMute", CALLER.name, "0")]
    assert registry.get_sample_value("callcenter_recording_auto_resumes_total") == 1.0
    send(_event(Event="MixMonitorMute", State="0", **MUTED))
    assert engine.recording_pauses.of_call("7.0") is None
    sent.clear()
    for ending in ({"Event": "MixMonitorMute", "State": "0", **MUTED}, {"Event": "Hangup", **MUTED}):
        send(_event(Event="MixMonitorMute", State="1", **MUTED))
        clock.advance(30)
        send(_event(**ending))
        clock.advance(200)
        assert sent == []


def test_the_recordings_row_keeps_where_it_was_paused(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Paused 10 s into the call for 5 s, and again from 25 s to the hangup at 30 s (the call
    ended paused): the recording row has (10, 15) and (25, 30) seconds into the file."""
    run = _running(sessions, tmp_path, at=1_796_600_000)
    engine, clock, send = run.engine, run.clock, run.send
    caller = {"Channel": CALLER.name, "Uniqueid": "7.1", "Linkedid": "7.1", "CallerIDNum": "13800138000",
              "Context": "hotline", "Exten": "s"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    send(_event(Event="VarSet", Variable="CC_DIRECTION", Value="inbound", **caller))
    send(_event(Event="VarSet", Variable="CC_RECORDING", Value="/srv/rec/20261207/7.1.wav", **caller))
    for at, state in ((10, "1"), (5, "0"), (10, "1")):
        clock.advance(at)
        send(_event(Event="MixMonitorMute", Direction="both", State=state, **caller))
    clock.advance(5)
    _wav(tmp_path / "20261207/7.1.wav", 30.0)
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **caller))
    clock.advance(engine.recording_settle_seconds)
    [record] = in_tx(sessions, repo.list_recent_call_records)
    [recording] = in_tx(sessions, repo.list_recordings_for_call, record.id)
    assert recording.pauses == ((10.0, 15.0), (25.0, 30.0))


def test_without_a_limit_only_the_agent_resumes() -> None:
    engine, send, sent, clock, _ = _engine(0)
    send(_event(Event="MixMonitorMute", State="1", **MUTED))
    clock.advance(3600)
    assert sent == [] and engine.recording_pauses.of_call("7.0") is not None


# ------------------------------------------------------------------ page, API and CLI


class _Pauses:
    def __init__(self) -> None:
        self.paused: Paused | None = None

    def of_call(self, linkedid: str) -> Paused | None:
        return self.paused


def test_the_agent_pauses_and_resumes_the_recording_from_the_page_or_the_api(
        sessions: sessionmaker[Session]) -> None:
    engine, _ = _page_engine(sessions)
    engine.agent_service.pause_recording = lambda agent: engine.agent_service._did("pause_recording", agent)
    engine.agent_service.resume_recording = lambda agent: engine.agent_service._did("resume_recording", agent)
    engine.recording_pauses = _Pauses()
    engine.settings = replace(engine.settings, recordings=replace(engine.settings.recordings, pause_limit_seconds=120))
    page = AgentPage(engine)  # type: ignore[arg-type]
    _talking_with_2102_ready(engine)
    caller = replace(CALLER, linkedid="1733364000.1")
    mine = replace(_channel("1.2", "PJSIP/agent2101-00000001"), linkedid="1733364000.1")
    engine.calls = SimpleNamespace(channels={c.uniqueid: c for c in (caller, mine)})
    status, html = _get(page, "2101")
    assert ('action="/agent/2101/recording-pause"><button type="submit">Pause recording</button></form>'
            '<span class="muted"> (card numbers: the recording keeps silence instead)</span>') in html
    status, query = _post(page, ["2101", "recording-pause"], {})
    assert status == 303 and query["msg"][0].startswith("recording paused")
    engine.recording_pauses.paused = Paused("7.1", caller.name, "1733364000.1", engine.clock.seconds() - 35)
    status, html = _get(page, "2101")
    assert ('<p class="err">Recording paused for 0:35; it resumes by itself after 2:00. <form class="inline" '
            'method="post" action="/agent/2101/recording-resume"><button type="submit">Resume recording</button>'
            ) in html
    status, query = _post(page, ["2101", "recording-resume"], {})
    assert status == 303 and query["msg"] == ["recording again"]
    assert engine.agent_service.calls[-2:] == [("pause_recording", "2101"), ("resume_recording", "2101")]
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = get_json(api, [b"agents", b"2101", b"recording"])
    assert (status, body) == (200, {"agent": "2101", "recorded": True, "paused": True, "paused_seconds": 35.0})
    status, body = get_json(api, [b"agents", b"2102", b"recording"])
    assert body == {"agent": "2102", "recorded": False, "paused": False, "paused_seconds": None}
    for how in ("pause", "resume"):
        status, body = post_json(api, [b"agents", b"2101", b"recording", how.encode()], {})
        assert (status, body) == (200, {"agent": "2101", "action": f"recording {how}", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"recording", b"stop"], {})
    assert status == 404
    status, body = post_json(api, [b"agents", b"2101", b"recording", b"pause"], {"now": True})
    assert status == 400


def test_a_refused_pause_is_a_409_naming_the_agent(sessions: sessionmaker[Session], settings: Settings) -> None:
    engine, _ = _page_engine(sessions)
    engine.agent_service = AgentService(settings, _Ami(), AgentBoard(), Clock(), channels=list)
    status, body = post_json(ApiResource(engine), [b"agents", b"1001", b"recording", b"pause"], {})  # type: ignore[arg-type]
    assert (status, body["field"]) == (409, "agent") and "not talking to anyone" in body["error"]


def test_callcenter_agent_recording_posts_pause_and_resume(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    called, run = cli_with_fake_daemon(monkeypatch, tmp_path)
    for how in ("pause", "resume", "status"):
        assert run("agent", "recording", "1001", how) == 0
    assert called == [("POST", "agents/1001/recording/pause", {}), ("POST", "agents/1001/recording/resume", {}),
                      ("GET", "agents/1001/recording", None)]
