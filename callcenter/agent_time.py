"""Where each agent's time went: logged in, ready, ringing, on calls, in wrap-up, paused (by
reason), from the agent state changes the engine records (pure; docs/reports.md, "Agent
time").

The engine writes every change of an agent's state (:class:`StateChange`: the
:class:`~callcenter.state.agents.AgentState` value, and the pause reason when paused) to
``agent_state_changes``. A state lasts until the agent's next change. Two markers are not
agent states: ``unknown`` (the daemon stopped, or started without knowing what came
before: that time is counted apart, never as work) and ``logged_out``.

:func:`agent_time` folds the changes of a period into one :class:`AgentTime` per agent:
the seconds in each state within the period, the pause reasons, when the agent was first
and last seen logged in, and the occupancy (time on calls and in wrap-up over the time
available for calls, the measure call centers staff to).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

__all__ = ["LOGGED_IN_STATES", "STATES", "UNKNOWN", "AgentTime", "StateChange", "agent_time", "hms", "occupancy",
           "pauses"]

UNKNOWN: Final = "unknown"
LOGGED_OUT: Final = "logged_out"
#: The states of a logged-in agent, in the order the report shows them.
LOGGED_IN_STATES: Final = ("ready", "ringing", "on_call", "wrap_up", "paused")
#: Every value ``agent_state_changes.state`` may hold.
STATES: Final = (LOGGED_OUT, *LOGGED_IN_STATES, UNKNOWN)
NO_REASON: Final = "-"


@dataclass(frozen=True)
class StateChange:
    """``agent_id`` went into ``state`` at ``at`` (UTC); ``pause_reason`` when paused."""

    agent_id: str
    at: datetime
    state: str
    pause_reason: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state: expected one of {', '.join(STATES)}, got {self.state!r}")
        if self.at.tzinfo is None:
            raise ValueError(f"at: expected an aware datetime, got {self.at!r}")


@dataclass(frozen=True)
class AgentTime:
    """One agent's time in a period, in seconds."""

    agent_id: str
    logged_in: float
    ready: float
    ringing: float
    on_call: float
    wrap_up: float
    paused: float
    paused_by_reason: dict[str, float]
    """Pause reason (``-`` when none was given) -> seconds paused for it."""
    unknown: float
    """Seconds the daemon did not know the agent's state (it was stopped)."""
    first_logged_in: datetime | None
    last_logged_in: datetime | None
    """The first and last instants of the period the agent was logged in."""

    @property
    def occupancy(self) -> float | None:
        return occupancy(self.ready + self.ringing, self.on_call + self.wrap_up)


def occupancy(available: float, handling: float) -> float | None:
    """Handling time over the time available for calls (ready, ringing, handling); None when 0."""
    total = available + handling
    return handling / total if total > 0 else None


def hms(seconds: float) -> str:
    """``seconds`` as H:MM:SS (hours may pass 24)."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def pauses(line: AgentTime) -> str:
    """The agent's pause reasons, longest first: ``lunch 1:00:00, break 0:15:00``."""
    return ", ".join(f"{reason} {hms(seconds)}" for reason, seconds in line.paused_by_reason.items())


@dataclass
class _Tally:
    agent_id: str
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))
    by_reason: dict[str, float] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, change: StateChange, begin: datetime, finish: datetime) -> None:
        seconds = (finish - begin).total_seconds()
        if seconds <= 0:
            return
        self.seconds[change.state] += seconds
        if change.state == "paused":
            reason = change.pause_reason or NO_REASON
            self.by_reason[reason] = self.by_reason.get(reason, 0.0) + seconds
        if change.state in LOGGED_IN_STATES:
            self.first = begin if self.first is None else self.first
            self.last = finish

    def line(self) -> AgentTime:
        s = self.seconds
        return AgentTime(
            agent_id=self.agent_id, logged_in=sum(s[state] for state in LOGGED_IN_STATES), ready=s["ready"],
            ringing=s["ringing"], on_call=s["on_call"], wrap_up=s["wrap_up"], paused=s["paused"],
            paused_by_reason=dict(sorted(self.by_reason.items(), key=lambda item: (-item[1], item[0]))),
            unknown=s[UNKNOWN], first_logged_in=self.first, last_logged_in=self.last)


def _by_agent(changes: Iterable[StateChange]) -> Iterator[list[StateChange]]:
    run: list[StateChange] = []
    seen: set[str] = set()
    for change in changes:
        if run and change.agent_id != run[0].agent_id:
            yield run
            run = []
        if not run:
            if change.agent_id in seen:
                raise ValueError(f"state changes of agent {change.agent_id!r} are not together: "
                                 "expected them ordered by agent, then time")
            seen.add(change.agent_id)
        elif change.at < run[-1].at:
            raise ValueError(f"state changes of agent {change.agent_id!r} go back in time at "
                             f"{change.at.isoformat()}: expected them ordered by agent, then time")
        run.append(change)
    if run:
        yield run


def agent_time(changes: Iterable[StateChange], start: datetime, end: datetime) -> list[AgentTime]:
    """Each agent's time in ``[start, end)`` (``end``: the period's end, or now if earlier).

    ``changes`` are ordered by agent, then time (``ValueError`` otherwise), and for each
    agent include the last change before ``start`` (the state the period opens in). A
    state lasts until the agent's next change, the last one until ``end``. Agents never
    logged in during the period are left out; the lines are in agent order as given.
    """
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    lines: list[AgentTime] = []
    for run in _by_agent(changes):
        tally = _Tally(run[0].agent_id)
        for change, following in zip(run, [*run[1:], None], strict=True):
            finish = end if following is None else min(following.at, end)
            tally.add(change, max(change.at, start), finish)
        if tally.first is not None:
            lines.append(tally.line())
    return lines
