"""Agents stay logged in when Asterisk restarts, on the real lab Asterisk 22 (docs/agents.md,
"When Asterisk restarts").

Agents log in with AMI ``QueueAdd`` (dynamic members). Asterisk keeps them in its database
(``persistentmembers = yes`` in the rendered queues.conf) and adds them back when it starts,
paused as they were, with the reason. The test logs 1001 in to the hotline and pauses 2102
for lunch (2101 logs in and out again), kills Asterisk (SIGKILL: a crash, not a clean stop) and starts it again: the
engine reconnects, reads the queues again, and its board still has 1001 ready and 2102 on
lunch, 2101 logged out; a caller who dials the 400 number then reaches 1001. Without the setting both agents
are logged out after the restart, and the caller finds nobody.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.service import EngineServices
from callcenter.state.agents import AgentState
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def restart_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                ) -> Iterator[tuple[EngineServices, LabHandle]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path)) as (services, handle, _):
        yield services, handle


def test_agents_stay_logged_in_and_paused_across_an_asterisk_crash(
        restart_lab: tuple[EngineServices, LabHandle], reactor_thread: ReactorThread) -> None:
    services, handle = restart_lab
    rt, engine = reactor_thread, services.engine
    _log_in(services, rt, "1001", "hotline", 5)
    _log_in(services, rt, "2102", "hotline", 5)
    _log_in(services, rt, "2101", "hotline", 5)
    rt.call(engine.agent_service.logout, "2101", timeout=10)  # went home: must not come back
    rt.call(engine.agent_service.pause, "2102", "lunch", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2102") is AgentState.PAUSED, timeout=10,
                message="2102 did not pause")
    time.sleep(1.5)  # Asterisk commits its database about once a second

    resyncs = rt.call(lambda: services.ami.resyncs)
    handle.instance.kill()
    rt.wait_for(lambda: not services.ami.connected, timeout=10, message="the engine did not see Asterisk go")
    handle.instance.restart()
    rt.wait_for(lambda: services.ami.resyncs > resyncs, timeout=30,
                message="the engine did not reconnect and read the queues again")

    ready = rt.call(engine.agents.agent, "1001")
    lunch = rt.call(engine.agents.agent, "2102")
    assert ready is not None and (ready.state, ready.queues) == (AgentState.READY, ("hotline",)), ready
    assert lunch is not None and (lunch.state, lunch.pause_reason) == (AgentState.PAUSED, "lunch"), lunch
    assert rt.call(engine.agents.state_of, "2101") is AgentState.LOGGED_OUT

    # Asterisk itself has them: a caller reaches 1001 (2102 is on lunch)
    _hotline_caller(services, rt, "After the restart", "13800000777", seconds=30, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001") is AgentState.ON_CALL, timeout=45,
                message=lambda: f"the caller did not reach 1001: {rt.call(engine.agents.agent, '1001')}")
    assert rt.call(engine.agents.state_of, "2102") is AgentState.PAUSED
