"""A caller who would wait hears how to leave a message instead, and one who leaves a queue
unanswered is counted (docs/ivr.md, "Waiting, and leaving a message instead"). The settings
and the rendered Asterisk files: test_settings.py and test_render.py; the walk: test_ivr_runner.py;
on the real Asterisk: tests/integration/test_queue_message_lab.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.engine import Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.settings import load_settings
from tests.unit.test_engine import FakeAmi

ROOT = Path(__file__).resolve().parents[2]


def _engine() -> tuple[Engine, Any, CollectorRegistry]:
    ami = FakeAmi()
    registry = CollectorRegistry()
    engine = Engine(load_settings(ROOT / "config"), ami, None, EngineMetrics(registry),  # type: ignore[arg-type]
                    Clock(), RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    return engine, ami.events[0], registry


def _event(**fields: str) -> Message:
    return Message.from_pairs(fields.items())


def _member(agent: str, queue: str, **fields: str) -> Message:
    return _event(**{"Event": "QueueMemberAdded", "Queue": queue, "Interface": f"PJSIP/agent{agent}",
                     "StateInterface": f"PJSIP/agent{agent}", "MemberName": agent, "Paused": "0", "Status": "1",
                     **fields})


def _caller(uniqueid: str, queue: str = "hotline") -> Message:
    return _event(Event="QueueCallerJoin", Queue=queue, Channel=f"PJSIP/pstn-{uniqueid}", Uniqueid=uniqueid,
                  Linkedid=uniqueid, Position="1", Count="1")


def test_a_queue_is_busy_when_its_ready_agents_are_no_more_than_its_waiting_callers() -> None:
    engine, send, _ = _engine()
    assert engine.queue_busy("hotline")  # nobody logged in
    send(_member("1001", "hotline"))
    send(_member("2101", "outbound"))
    assert not engine.queue_busy("hotline")  # 1001 is ready
    send(_caller("7.1"))
    assert engine.queue_busy("hotline")  # 1001 will take the caller already waiting
    send(_member("2102", "hotline", Paused="1", PausedReason="lunch"))
    assert engine.queue_busy("hotline")  # a paused agent answers nobody
    send(_member("2103", "hotline"))
    assert not engine.queue_busy("hotline")
    assert engine.queue_busy("no-such-queue")


def test_a_caller_who_left_a_queue_for_a_message_is_counted_by_queue_and_reason() -> None:
    _, send, registry = _engine()
    channel = {"Channel": "Local/400@from-pstn-00000001;2", "Uniqueid": "7.1", "Linkedid": "7.0",
               "CallerIDNum": "13800138000", "Context": "hotline", "Exten": "s"}
    send(_event(Event="Newchannel", ChannelState="6", ChannelStateDesc="Up", **channel))
    send(_event(Event="VarSet", Variable="CC_QUEUE", Value="hotline", **channel))
    send(_event(Event="VarSet", Variable="CC_QUEUE_EXIT", Value="timeout", **channel))
    send(_event(Event="VarSet", Variable="CC_QUEUE_EXIT", Value="key", **{**channel, "Uniqueid": "7.9"}))
    sample = registry.get_sample_value
    assert sample("callcenter_queue_messages_total", {"queue": "hotline", "reason": "timeout"}) == 1.0
    assert sample("callcenter_queue_messages_total", {"queue": "unknown", "reason": "key"}) == 1.0
