"""Overflow: whether a queue's caller should ring its overflow agents at once (pure).

A queue with ``overflow_after`` (config/queues.yaml) keeps a caller to its primary agents
(penalty 0) for that long before the others ring too (docs/agents.md, "Overflow"). Waiting
is only worth it when a primary agent is there to be waited for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from callcenter.settings import Settings
from callcenter.state.agents import Agent

__all__ = ["OVERFLOW_NOW_VARIABLE", "primaries_away"]

#: The channel variable that tells the dialplan to ring the overflow agents at once.
OVERFLOW_NOW_VARIABLE: Final = "CC_OVERFLOW_NOW"

#: Device states of a phone that cannot ring (unregistered, unknown): its agent is not there.
_PHONE_GONE: Final = frozenset({"UNAVAILABLE", "INVALID"})


def primaries_away(settings: Settings, queue: str, agents: Iterable[Agent]) -> bool:
    """Should a caller of ``queue`` ring its overflow agents at once? True when the queue
    overflows (``overflow_after``) and none of its primary agents (penalty 0 there, in
    config/agents.yaml) is logged in to it, not paused there, with a phone Asterisk can
    reach: waiting ``overflow_after`` seconds for them would be waiting for nobody. A
    primary agent on a call or in wrap-up is there (the wait is for them to be free).
    ``agents``: the board's snapshots."""
    try:
        if not settings.queue(queue).overflow_after:
            return False
    except KeyError:
        return False  # not a configured queue: nothing to overflow to
    people = settings.people
    for agent in agents:
        person = people.get(agent.id)
        if (person is not None and person.queues.get(queue) == 0 and queue in agent.queues
                and queue not in agent.paused_queues and agent.device_state not in _PHONE_GONE):
            return False
    return True
