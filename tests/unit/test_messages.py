"""A message left on the hotline (the IVR's voicemail, dialplans/hotline.conf): the engine files
it as the call's second recording and the call back it asks for. The lab test:
tests/integration/test_after_hours_lab.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.engine import Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.settings import load_settings
from callcenter.storage import repository as repo
from tests.syncrepository import SyncRepository, in_tx
from tests.unit.test_engine import FakeAmi
from tests.unit.test_transfer import _wav

ROOT = Path(__file__).resolve().parents[2]


def _event(**fields: str) -> Message:
    return Message.from_pairs(fields.items())


def test_a_message_is_the_calls_second_recording_and_asks_for_a_call_back(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(1_795_400_000)
    ami = FakeAmi()
    engine = Engine(load_settings(ROOT / "config"), ami, SyncRepository(sessions),  # type: ignore[arg-type]
                    EngineMetrics(CollectorRegistry()), clock, RecordingPaths("/srv/rec", tmp_path))
    asked: list[tuple[str, Any, str | None]] = []
    engine.callback_listeners.append(
        lambda request: asked.append((request.phone, request.record.ticket_number, request.abandoned)))
    engine.startService()
    send = ami.events[0]
    caller = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "5.1", "Linkedid": "5.1", "CallerIDNum": "13912345679",
              "CallerIDName": "Night caller", "Context": "hotline", "Exten": "s"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **caller))
    for name, value in (("CC_DIRECTION", "inbound"), ("CC_RECORDING", "/srv/rec/20261206/5.1.wav"),
                        ("CC_IVR_MAIN_PATH", "welcome>hours>closed_notice>after_hours_menu>after_hours_menu=2"),
                        ("CC_CALLBACK", "13912345679")):
        send(_event(Event="VarSet", Variable=name, Value=value, **caller))
    clock.advance(20)
    send(_event(Event="VarSet", Variable="CC_MESSAGE", Value="/srv/rec/20261206/5.1-message.wav", **caller))
    clock.advance(16)
    _wav(tmp_path / "20261206/5.1.wav", 36.0)
    _wav(tmp_path / "20261206/5.1-message.wav", 15.0)
    send(_event(Event="Hangup", Cause="16", **{"Cause-txt": "Normal Clearing"}, **caller))
    clock.advance(engine.recording_settle_seconds)
    [record] = in_tx(sessions, repo.list_recent_call_records)
    assert (record.phone, record.agent_id, record.outcome) == (
        "13912345679", None, "message left; callback requested: 13912345679")
    recordings = sorted(in_tx(sessions, repo.list_recordings_for_call, record.id), key=lambda r: r.started_at)
    assert [(Path(r.path).name, r.duration_seconds) for r in recordings] == [
        ("5.1.wav", 36.0), ("5.1-message.wav", 15.0)]
    assert (recordings[1].started_at - recordings[0].started_at).total_seconds() == 20
    assert asked == [("13912345679", record.ticket_number, None)]


def test_the_agent_calling_back_plays_the_message_from_their_page(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """The call back held in preview carries the ticket of the call that left a message: the
    agent's page shows a player, ``GET /agent/<id>/message/<ticket>`` plays it, and another
    ticket (not the call back the agent holds) is refused."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from twisted.web.test.requesthelper import DummyRequest

    from callcenter.http_api import AgentPage
    from callcenter.state.agents import AgentBoard
    from callcenter.storage.dialer_records import LeadToDial
    from callcenter.storage.records import NewCallRecord, NewRecording

    repository = SyncRepository(sessions)
    started = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
    record = repository.create_call_record(NewCallRecord(
        started_at=started, direction="inbound", phone="13912345679", outcome="message left"),
        site_prefix="GD").result
    other = repository.create_call_record(NewCallRecord(started_at=started, direction="inbound"),
                                          site_prefix="GD").result
    _wav(tmp_path / "5.1.wav", 30.0)
    _wav(tmp_path / "5.1-message.wav", 12.0)
    for name, seconds in (("5.1.wav", 30.0), ("5.1-message.wav", 12.0)):
        repository.add_recording(NewRecording(call_record_id=record.id, path=str(tmp_path / name), started_at=started,
                                              duration_seconds=seconds, size_bytes=(tmp_path / name).stat().st_size,
                                              format="wav"))
    lead = LeadToDial(lead_id=1, attempt_id=1, attempt_no=1, phone="13912345679", name="Night caller",
                      timezone="Asia/Shanghai", extra={"ticket": record.ticket_number})
    held: dict[str, Any] = {"2101": ("hotline-callbacks", lead)}
    dialer = SimpleNamespace(held_preview=held.get, preview_campaigns=lambda: ("hotline-callbacks",),
                             auto_dial_campaigns=dict, auto_dial_held=lambda agent: False)
    clock = Clock()
    clock.advance(started.timestamp())
    engine = SimpleNamespace(settings=load_settings(ROOT / "config"), repository=repository, clock=clock,
                             agents=AgentBoard(), screen_pops={}, transfers_of=lambda linkedid: (),
                             calls=SimpleNamespace(channels={}))
    page = AgentPage(engine, dialer)  # type: ignore[arg-type]

    def get(*path: str) -> tuple[int, bytes]:
        request = DummyRequest([p.encode() for p in path])
        body = page.render_GET(request)  # type: ignore[arg-type]
        return request.responseCode or 200, body if isinstance(body, bytes) else b"".join(request.written)

    status, html = get("2101")
    source = f"/agent/2101/message/{record.ticket_number}"
    assert status == 200 and f'<audio controls preload="none" src="{source}"></audio>' in html.decode()
    status, audio = get("2101", "message", record.ticket_number)
    assert status == 200 and audio == (tmp_path / "5.1-message.wav").read_bytes()  # the message, not the call
    assert get("2101", "message", other.ticket_number)[0] == 403
    assert get("2102", "message", record.ticket_number)[0] == 403  # 2102 holds no call back
    held["2101"] = ("hotline-callbacks", LeadToDial(lead_id=2, attempt_id=2, attempt_no=1, phone="13900000001",
                                                    name=None, timezone="Asia/Shanghai",
                                                    extra={"ticket": other.ticket_number}))
    status, html = get("2101")
    assert status == 200 and b"<audio" not in html  # a call back without a message
    assert get("2101", "message", other.ticket_number)[0] == 404
