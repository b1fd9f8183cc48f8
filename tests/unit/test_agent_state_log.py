"""AgentStateLog: the engine's agent state changes reach SQL in order, batched, and none is
lost when the database is away for a while or the daemon stops with a write in flight."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from callcenter.agent_state_log import AgentStateLog
from callcenter.metrics import EngineMetrics
from callcenter.pending import PendingWork
from callcenter.storage import agent_time as store


class Database:
    """Stands in for the repository: records the batches written; can be down, or slow."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []
        self.down = False
        self.slow: list[tuple[Deferred[int], list[Any]]] = []
        self.hold = False

    def run(self, function: Any, *args: Any) -> Deferred[Any]:
        if function is store.close_open_states:
            return succeed([])
        assert function is store.record_agent_states
        batch = args[0]
        if self.down:
            return fail(ConnectionError("database away"))
        if self.hold:
            d: Deferred[int] = Deferred()
            self.slow.append((d, batch))
            return d
        self.rows.extend((c.agent_id, c.state) for c in batch)
        return succeed(len(batch))

    def release(self) -> None:
        d, batch = self.slow.pop(0)
        self.rows.extend((c.agent_id, c.state) for c in batch)
        d.callback(len(batch))


def make() -> tuple[AgentStateLog, Database, Clock, CollectorRegistry]:
    clock, db, registry = Clock(), Database(), CollectorRegistry()
    return AgentStateLog(db, clock, EngineMetrics(registry), PendingWork()), db, clock, registry


def test_changes_are_batched_and_kept_through_a_database_outage() -> None:
    log, db, clock, registry = make()
    log.changed("2101", 1.0, "ready")
    log.changed("2102", 1.5, "ready")
    assert db.rows == []  # one batch a second
    clock.advance(1)
    assert db.rows == [("2101", "ready"), ("2102", "ready")]
    db.down = True
    log.changed("2101", 3.0, "on_call")
    clock.advance(1)
    assert registry.get_sample_value("callcenter_db_errors_total", {"operation": "agent_states"}) == 1.0
    log.changed("2101", 4.0, "wrap_up")
    clock.advance(1)  # the retry waits 5 s, not the next second
    assert registry.get_sample_value("callcenter_db_errors_total", {"operation": "agent_states"}) == 1.0
    db.down = False
    clock.advance(4)
    assert db.rows[2:] == [("2101", "on_call"), ("2101", "wrap_up")]  # in the order they happened


def test_stopping_marks_the_logged_in_unknown_and_waits_for_every_write() -> None:
    log, db, clock, _ = make()
    db.hold = True
    log.changed("2101", 1.0, "on_call")
    clock.advance(1)  # this batch is in flight
    log.changed("2101", 2.0, "wrap_up")
    drained = log.stopping(["2101", "2103"])
    done: list[object] = []
    drained.addCallback(done.append)
    assert done == [] and len(db.slow) == 1
    db.release()  # the first batch lands; the rest goes at once, not a second later
    assert done == [] and len(db.slow) == 1
    db.release()
    assert done == [None]
    assert db.rows == [("2101", "on_call"), ("2101", "wrap_up"), ("2101", "unknown"), ("2103", "unknown")]
    log.changed("2101", 9.0, "ready")  # after the stop: nothing is scheduled any more
    assert clock.getDelayedCalls() == []
