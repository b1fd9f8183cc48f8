"""A caller never waits in silence on the database: the FastAGI scripts' reads (the CRM
lookup, the last agent, the do-not-call check) are given up after CALL_PATH_DB_SECONDS and
the call goes on without them (callcenter/engine.py ``_on_the_call``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from callcenter.engine import CALL_PATH_DB_SECONDS, Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.settings import LastAgentSettings, load_settings
from tests.unit.test_agent_dial_check import _Agi as _DialAgi
from tests.unit.test_engine import FakeAmi
from tests.unit.test_last_agent import _HotlineAgi

ROOT = Path(__file__).resolve().parents[2]


class _HungDatabase:
    """A repository whose every read is still running (a locked table, a lost network)."""

    def __init__(self) -> None:
        self.reads: list[Deferred[Any]] = []

    def _read(self) -> Deferred[Any]:
        self.reads.append(Deferred())
        return self.reads[-1]

    def find_customer_by_phone(self, phone: str) -> Deferred[Any]:
        return self._read()

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._read()


def _engine(**changes: Any) -> tuple[Engine, _HungDatabase, Clock, CollectorRegistry]:
    clock, db, registry = Clock(), _HungDatabase(), CollectorRegistry()
    clock.advance(1_796_600_000)
    settings = replace(load_settings(ROOT / "config"), **changes)
    engine = Engine(settings, FakeAmi(), db, EngineMetrics(registry), clock,  # type: ignore[arg-type]
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    return engine, db, clock, registry


def test_a_hotline_caller_goes_on_to_the_queue_when_the_database_hangs() -> None:
    engine, db, clock, registry = _engine(last_agent=LastAgentSettings(days=30, ring_seconds=12))
    agi = _HotlineAgi("13800138000")
    done = Deferred.fromCoroutine(engine.agi_hotline(agi))  # type: ignore[arg-type]
    clock.advance(CALL_PATH_DB_SECONDS - 0.1)
    assert not done.called and len(db.reads) == 1  # the CRM lookup
    clock.advance(0.1)  # given up: no screen-pop data; then the last agent's read
    assert len(db.reads) == 2 and not done.called
    clock.advance(CALL_PATH_DB_SECONDS)
    assert done.called and agi.set["CC_QUEUE"] == "hotline" and "CC_CUSTOMER_ID" not in agi.set
    for read in ("find_customer_by_phone", "last_agent"):
        assert registry.get_sample_value("callcenter_db_errors_total", {"operation": read}) == 1.0
    db.reads[0].callback(None)  # the database answers at last: ignored, no error


def test_a_hung_do_not_call_list_refuses_the_agents_dial() -> None:
    base = load_settings(ROOT / "config")
    engine, _, clock, _ = _engine(manual_dial=replace(base.manual_dial, do_not_call="block"))
    agi = _DialAgi("13800138000")
    done = Deferred.fromCoroutine(engine.agi_agent_dial_check(agi))  # type: ignore[arg-type]
    clock.advance(CALL_PATH_DB_SECONDS)
    assert done.called and agi.set == {"CC_DIAL_ALLOWED": "no", "CC_DIAL_REFUSED": "check_failed"}
