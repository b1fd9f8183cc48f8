"""Overflow: whether a queue's caller should ring its overflow agents at once (pure).

A queue with ``overflow_after`` (config/queues.yaml) keeps a caller to its primary agents
(penalty 0) for that long before the others ring too (docs/agents.md, "Overflow"). Waiting
is only worth it when a primary agent is there to be waited for.

The engine tells Asterisk which queues have nobody to wait for with one custom device state
per queue (:func:`overflow_device`, ``INUSE`` while its primary agents are away), which the
dialplan reads wherever a caller is queued: the hotline, an agent's transfer from their page
or with their phone's own key, a colleague who did not answer. A custom device state, unlike
a global variable, outlives a dialplan reload (``clearglobalvars``) and a phone may show it
as a lamp (BLF).

A caller already waiting has had their limit set when they joined: for them the overflow
agents' own penalty in the queue drops to 0 while the primary agents are away
(:func:`overflow_penalties`, AMI ``QueuePenalty``), so they ring the overflow agents at once
too, and goes back to the configured one when a primary agent is there again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.settings import Settings
from callcenter.state.agents import Agent

__all__ = ["overflow_device", "overflow_now", "overflow_penalties", "overflow_state_action", "primaries_away"]

#: The device state of :func:`overflow_device` while the queue's primary agents are away;
#: any other (``NOT_INUSE``, or ``UNKNOWN`` before the engine said) keeps the wait.
_AWAY_STATE: Final = "INUSE"
_THERE_STATE: Final = "NOT_INUSE"

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


def overflow_now(settings: Settings, agents: Iterable[Agent]) -> dict[str, bool]:
    """:func:`primaries_away` for every queue with ``overflow_after``, by queue name."""
    board = list(agents)
    return {queue.name: primaries_away(settings, queue.name, board)
            for queue in settings.queues if queue.overflow_after}


def overflow_penalties(settings: Settings, agents: Iterable[Agent],
                       away: dict[str, bool] | None = None) -> dict[tuple[str, str], int]:
    """(queue, member interface) -> the penalty each agent logged in to a queue with a
    penalty above 0 there should have now: 0 while an overflowing queue's primary agents are
    away (``away``, else :func:`overflow_now`), so the callers already waiting, limited to
    the primary agents' penalty when they joined, ring them at once; their configured
    penalty (config/agents.yaml) otherwise, in every queue (one that no longer overflows, an
    Asterisk that kept a 0 in astdb, get theirs back). Agents with penalty 0 there are not
    listed."""
    board = list(agents)
    away = overflow_now(settings, board) if away is None else away
    people = settings.people
    wanted: dict[tuple[str, str], int] = {}
    for agent in board:
        person = people.get(agent.id)
        if person is None or not agent.interface:
            continue
        for queue in agent.queues:
            configured = person.queues.get(queue)
            if configured:
                wanted[(queue, agent.interface)] = 0 if away.get(queue) else configured
    return wanted


def overflow_device(queue: str) -> str:
    """The custom device whose state says ``queue``'s overflow agents ring at once
    (dialplans/hotline.conf and transfer.conf read ``DEVICE_STATE(<it>)``)."""
    return f"Custom:cc-overflow-{queue}"


def overflow_state_action(queue: str, away: bool) -> AmiAction:
    """AMI ``Setvar`` of ``queue``'s overflow device: ``INUSE`` when its primary agents are
    away (the overflow agents ring at once), ``NOT_INUSE`` when one is there to wait for."""
    return actions.setvar(f"DEVICE_STATE({overflow_device(queue)})", _AWAY_STATE if away else _THERE_STATE)
