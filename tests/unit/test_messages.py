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
    asked: list[tuple[str, Any]] = []
    engine.callback_listeners.append(lambda number, record: asked.append((number, record.ticket_number)))
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
    assert asked == [("13912345679", record.ticket_number)]
