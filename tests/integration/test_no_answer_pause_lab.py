"""An agent who lets a queue call ring out is paused in every queue, on the real lab Asterisk
22 (queues.yaml ``pause_on_no_answer``; queues.conf ``autopause = all``; docs/agents.md, "An
agent who does not answer").

Agent 2101 logs in to the outbound queue and the hotline, then walks away: their phone (a
lab agent with ``LAB_NOANSWER_2101``) rings unanswered. A hotline caller rings them for the
queue's ``ring_timeout`` (cut to 4 s here, and no overflow wait): Asterisk pauses 2101 in
both queues with its reason ``Auto-Pause``, which the engine's board shows as "no answer",
with a warning and a count. The caller is not rung again at the empty desk: with nobody else
logged in, the hotline lets them go to leave a message. 2101 comes back and unpauses.

A caller who reaches ``max_wait`` while a phone rings does not cut the ring short
(``timeoutpriority = conf``): the phone rings its full ``ring_timeout``, so an agent is
paused only for a ring they really let run out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from callcenter.state.agents import NO_ANSWER, AgentState
from tests.integration.test_transfer_lab import _hotline_caller
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def away_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    change = hotline_open(tmp_path, ring_timeout=4, overflow_after=0)
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, _, _):
        yield services


def test_an_agent_whose_phone_rings_out_is_paused_in_every_queue(away_lab: EngineServices,
                                                                  reactor_thread: ReactorThread) -> None:
    services, rt = away_lab, reactor_thread
    engine = services.engine
    rt.call(services.ami.send, actions.setvar("LAB_NOANSWER_2101", 1))
    rt.call(services.ami.send, actions.command("devstate change Custom:agent2101 NOT_INUSE"))
    rt.call(engine.agent_service.login, "2101", timeout=10)  # outbound and hotline
    rt.wait_for(lambda: engine.agents.state_of("2101") is AgentState.READY, timeout=10, message="2101 not ready")

    _hotline_caller(services, rt, "Caller", "13800000779", seconds=30, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("2101") is AgentState.PAUSED, timeout=40,
                message=lambda: f"2101 was not paused: {rt.call(engine.agents.agent, '2101')}")
    away = rt.call(engine.agents.agent, "2101")
    assert away is not None and away.pause_reason == NO_ANSWER, away
    assert set(away.paused_queues) == {"hotline", "outbound"}, away
    assert services.registry.get_sample_value("callcenter_agent_no_answer_pauses_total", {"agent": "2101"}) == 1.0
    # Asterisk agrees: paused in both queues, with its own word for it
    status = rt.call(services.ami.send, actions.queue_status(member="Local/2101@lab-agents/n"), timeout=10)
    members = [m for m in status.events if m.name == "QueueMember"]
    assert {m.get("Queue") for m in members} == {"hotline", "outbound"}
    assert all(m.get("Paused") == "1" and m.get("PausedReason") == "Auto-Pause" for m in members), members

    # back at the desk
    rt.call(services.ami.send, actions.setvar("LAB_NOANSWER_2101", ""))
    rt.call(engine.agent_service.unpause, "2101", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2101") is AgentState.READY, timeout=10, message="2101 not back")


def test_a_ring_runs_its_full_time_when_the_caller_reaches_max_wait(lab_factory: LabFactory,
                                                                    reactor_thread: ReactorThread,
                                                                    tmp_path: Path) -> None:
    """max_wait 10 s, ring_timeout 14 s: 2101's phone starts ringing as the caller queues and
    rings the full 14 s (app_queue's AgentRingNoAnswer RingTime), not the 10 s left of the
    caller's wait; then the caller, past max_wait, leaves for a message."""
    change = hotline_open(tmp_path, ring_timeout=14, overflow_after=0, max_wait=10)
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, _, _):
        rt, engine = reactor_thread, services.engine
        rings: list[Any] = []
        rt.call(services.ami.subscribe, rings.append, "AgentRingNoAnswer")
        rt.call(services.ami.send, actions.setvar("LAB_NOANSWER_2101", 1))
        rt.call(services.ami.send, actions.command("devstate change Custom:agent2101 NOT_INUSE"))
        rt.call(engine.agent_service.login, "2101", timeout=10)
        rt.wait_for(lambda: engine.agents.state_of("2101") is AgentState.READY, timeout=10, message="2101 not ready")
        _hotline_caller(services, rt, "Caller", "13800000783", seconds=45, csat="")
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not rings:
            time.sleep(0.2)
        assert rings, "the phone never rang out"
        ring_ms = int(rings[0].get("RingTime") or 0)
        assert ring_ms >= 13_000, f"the ring was cut short after {ring_ms} ms (max_wait is 10 s)"
        rt.wait_for(lambda: services.registry.get_sample_value(
            "callcenter_queue_messages_total", {"queue": "hotline", "reason": "timeout"}) == 1.0, timeout=20,
            message="the caller did not leave the queue for a message at max_wait")
        rt.wait_for(lambda: engine.agents.state_of("2101") is AgentState.PAUSED, timeout=10,
                    message="2101, who let it ring the full 14 s, was not paused")
