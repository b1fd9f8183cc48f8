"""The agent state changes in SQL (``agent_state_changes``) and the agent time report over them.

Functions take a Session and run in the repository's thread pool
(``repository.run(function, ...)``), never on the reactor. The folding of changes into
time per state is :func:`callcenter.agent_time.agent_time` (pure).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from callcenter.agent_time import (
    LOGGED_IN_STATES,
    UNKNOWN,
    AgentTime,
    StateChange,
    agent_time,
)
from callcenter.storage import models
from callcenter.storage.records import MAX_PAUSE_REASON, aware_datetime

__all__ = ["LOOK_BACK", "agent_time_report", "close_open_states", "record_agent_states"]

#: How far before a period the report looks for the state each agent opens it in. An agent
#: with no change in the week before is taken as not logged in when the period starts.
LOOK_BACK: Final = timedelta(days=7)
_BATCH: Final = 2000


def record_agent_states(session: Session, changes: Sequence[StateChange]) -> int:
    """Insert ``changes`` in the order given (one statement); return how many."""
    if not changes:
        return 0
    session.execute(insert(models.AgentStateChange), [
        {"agent_id": c.agent_id, "at": aware_datetime("at", c.at), "state": c.state,
         "pause_reason": c.pause_reason[:MAX_PAUSE_REASON] if c.pause_reason else None} for c in changes])
    return len(changes)


def _latest_before(session: Session, agent_id: str, at: datetime) -> str | None:
    change = models.AgentStateChange
    return session.scalars(select(change.state).where(change.agent_id == agent_id, change.at < at)
                           .order_by(change.at.desc(), change.id.desc()).limit(1)).first()


def close_open_states(session: Session, agent_ids: Iterable[str], at: datetime) -> list[str]:
    """At the daemon's start: mark ``unknown`` at ``at`` each agent whose last state before
    ``at`` is a logged-in one (the previous run stopped without saying so: a crash, a kill),
    so the time the daemon was down is not counted as the state it left. Returns those agents."""
    at = aware_datetime("at", at)
    opened = [agent for agent in agent_ids if _latest_before(session, agent, at) in LOGGED_IN_STATES]
    record_agent_states(session, [StateChange(agent, at, UNKNOWN) for agent in opened])
    return opened


def _changes(session: Session, start: datetime, end: datetime, agent_id: str | None) -> Iterator[StateChange]:
    """Each agent's opening change (the last within :data:`LOOK_BACK` before ``start``), then its
    changes in ``[start, end)``, grouped by agent in time order: what :func:`agent_time` reads."""
    change = models.AgentStateChange
    only = () if agent_id is None else (change.agent_id == agent_id,)
    ranked = (select(change.agent_id, change.at, change.state, change.pause_reason,
                     func.row_number().over(partition_by=change.agent_id,
                                            order_by=(change.at.desc(), change.id.desc())).label("rank"))
              .where(change.at >= start - LOOK_BACK, change.at < start, *only).subquery())
    opening = {row.agent_id: StateChange(row.agent_id, row.at, row.state, row.pause_reason)
               for row in session.execute(select(ranked).where(ranked.c.rank == 1))}
    rows = session.execute(
        select(change.agent_id, change.at, change.state, change.pause_reason)
        .where(change.at >= start, change.at < end, *only)
        .order_by(change.agent_id, change.at, change.id)
        .execution_options(yield_per=_BATCH))
    current: str | None = None
    for row in rows:
        if row.agent_id != current:  # the agent's opening state first (none: not logged in)
            current = row.agent_id
            if current in opening:
                yield opening.pop(current)
        yield StateChange(row.agent_id, row.at, row.state, row.pause_reason)
    yield from opening.values()  # agents with no change in the period: their state all along


def agent_time_report(session: Session, *, start: datetime, end: datetime, now: datetime,
                      agent_id: str | None = None) -> list[AgentTime]:
    """Each agent's (or only ``agent_id``'s) time in ``[start, end)``, counted up to ``now`` when
    the period is not over."""
    start, end, now = (aware_datetime(name, value) for name, value in (("start", start), ("end", end), ("now", now)))
    return agent_time(_changes(session, start, end, agent_id), start, max(start, min(end, now)))
