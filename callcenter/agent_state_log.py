"""Writes the agent board's state changes to SQL, in order, for the agent time report.

The engine hands every :class:`~callcenter.state.agents.AgentStateChanged` here
(:meth:`AgentStateLog.changed`); they are written in batches (one insert a second at most,
one batch in flight at a time, so rows keep the order the board made them). A failed write
keeps its rows, in place, and is tried again: nothing is lost while the database is away.
At start, agents the previous run left logged in are marked ``unknown``
(:func:`callcenter.storage.agent_time.close_open_states`); at stop, the agents still logged
in are, so the time the daemon is down never counts as work (docs/reports.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from callcenter.agent_time import UNKNOWN, StateChange
from callcenter.metrics import EngineMetrics
from callcenter.pending import PendingWork
from callcenter.storage import agent_time as store

__all__ = ["AgentStateLog"]

_log = Logger()


class AgentStateLog:
    """Batches agent state changes into ``agent_state_changes`` (see the module docstring)."""

    def __init__(self, repository: Any, clock: IReactorTime, metrics: EngineMetrics, pending: PendingWork, *,
                 delay: float = 1.0, retry: float = 5.0) -> None:
        self._repository = repository
        self._clock = clock
        self._metrics = metrics
        self._pending = pending
        self._delay, self._retry = delay, retry
        self._waiting: list[StateChange] = []
        self._timer: IDelayedCall | None = None
        self._in_flight: Deferred[Any] | None = None
        self._stopped = False

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    def started(self, agent_ids: Iterable[str]) -> Deferred[list[str]]:
        """Mark ``unknown`` now the agents the previous run left logged in."""

        def closed(agents: list[str]) -> list[str]:
            if agents:
                _log.info("agent_time.closed agents={agents}", agents=",".join(agents))
            return agents

        def failed(failure: Failure) -> list[str]:
            self._metrics.db_errors.labels("agent_states").inc()
            _log.failure("agent_time.close_failed", failure)
            return []

        d: Deferred[list[str]] = self._repository.run(store.close_open_states, list(agent_ids), self._now())
        return self._pending.track(d.addCallbacks(closed, failed))

    def changed(self, agent_id: str, at: float, state: str, pause_reason: str | None = None) -> None:
        """``agent_id`` went into ``state`` at ``at`` (clock seconds)."""
        self._waiting.append(StateChange(agent_id, datetime.fromtimestamp(at, UTC), state, pause_reason))
        self._schedule(self._delay)

    def stopping(self, logged_in: Iterable[str]) -> Deferred[None]:
        """The daemon stops: mark ``unknown`` the agents still logged in and write everything
        waiting now; the Deferred (also kept in the engine's pending work, so its stop waits
        for it) fires once it is written (or failed: logged, counted)."""
        now = self._now()
        self._waiting.extend(StateChange(agent, now, UNKNOWN) for agent in logged_in)
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._flush()
        drained: Deferred[None] = Deferred()

        def check(result: object = None) -> object:
            if self._in_flight is None:
                drained.callback(None)
            else:  # runs after the batch's own callbacks, which may have started the next batch
                self._in_flight.addBoth(check)
            return result

        check()
        return self._pending.track(drained)

    def _schedule(self, delay: float) -> None:
        if self._stopped or self._in_flight is not None or (self._timer is not None and self._timer.active()):
            return
        self._timer = self._clock.callLater(delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self._in_flight is not None or not self._waiting:
            return
        batch, self._waiting = self._waiting, []

        def written(count: int) -> None:
            self._in_flight = None
            if self._waiting:
                if self._stopped:
                    self._flush()
                else:
                    self._schedule(self._delay)

        def failed(failure: Failure) -> None:
            self._in_flight = None
            self._waiting[:0] = batch  # kept, in front of what came since
            self._metrics.db_errors.labels("agent_states").inc()
            _log.failure("agent_time.write_failed rows={rows}", failure, rows=len(batch))
            if not self._stopped:
                self._schedule(self._retry)

        d: Deferred[int] = self._repository.run(store.record_agent_states, batch)
        self._in_flight = d
        d.addCallbacks(written, failed)
