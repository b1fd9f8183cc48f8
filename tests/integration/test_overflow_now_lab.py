"""The hotline's overflow agents ring at once when its primary agent is away, on the real
lab Asterisk 22 with the engine (docs/agents.md, "Overflow").

The shipped hotline queue (``overflow_after: 20``): 1001 (penalty 0) is the primary agent,
2101 (penalty 5) an overflow agent. With 1001 paused the engine queues the caller with
``CC_OVERFLOW_NOW`` and 2101 answers within seconds; with 1001 logged in and busy on another
call the caller waits the 20 s for 1001 before 2101 rings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def overflow_engine(lab_factory: LabFactory, reactor_thread: ReactorThread,
                    tmp_path: Path) -> Iterator[EngineServices]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path)) as (services, _, _):
        yield services


def _record(services: EngineServices, rt: ReactorThread, number: str) -> Any:
    """The call record of ``number``'s call, once complete (polled from the test's thread)."""
    repository = services.engine.repository
    assert repository is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = [r for r in rt.call(repository.list_recent_call_records, limit=10)
                 if r.phone == number and r.ended_at is not None]  # opened when the agent rang: wait for the end
        if found:
            return found[0]
        time.sleep(0.5)
    pytest.fail(f"no call record for {number} within 90 s")


def test_with_the_hotline_agent_paused_the_overflow_agent_answers_at_once(
        overflow_engine: EngineServices, reactor_thread: ReactorThread) -> None:
    services, rt = overflow_engine, reactor_thread
    engine = services.engine
    assert engine.settings.queue("hotline").overflow_after == 20
    _log_in(services, rt, "1001", "hotline", 3)
    rt.call(engine.agent_service.pause, "1001", "lunch", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10, message="1001 did not pause")
    _log_in(services, rt, "2101", "hotline", 3)
    _hotline_caller(services, rt, "Overflow now", "13912340081", seconds=30, csat="5")
    record = _record(services, rt, "13912340081")
    assert record.agent_id == "2101", record
    assert record.wait_seconds is not None and record.wait_seconds <= 5, record

    # 1001 back and busy on a call: the next caller waits overflow_after for them first
    rt.call(engine.agent_service.unpause, "1001", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "ready", timeout=10, message="1001 not ready")
    rt.call(services.ami.send, actions.setvar("LAB_TALK_1001", 40))  # talks 40 s on the next call
    _hotline_caller(services, rt, "Keeps 1001 busy", "13912340082", seconds=60, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="1001 never took the first call")
    _hotline_caller(services, rt, "Waits for 1001", "13912340083", seconds=60, csat="5")
    waited = _record(services, rt, "13912340083")
    assert waited.agent_id == "2101", waited
    assert waited.wait_seconds is not None and 19 <= waited.wait_seconds <= 28, waited


def test_a_caller_handed_back_to_the_hotline_with_its_agent_paused_reaches_the_overflow_agent_at_once(
        overflow_engine: EngineServices, reactor_thread: ReactorThread) -> None:
    """1001 takes a hotline call, pauses (they are leaving) and hands the caller back to the
    hotline queue: the engine transfers to ``overflow-hotline`` and 2101 answers at once, not
    after the 20 s a caller waits for a primary agent who is there."""
    services, rt = overflow_engine, reactor_thread
    engine = services.engine
    _log_in(services, rt, "1001", "hotline", 90)
    _log_in(services, rt, "2101", "hotline", 3)
    _hotline_caller(services, rt, "Handed back", "13912340084", seconds=80, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="1001 never took the call")
    assert engine.agents.state_of("2101").value == "ready"  # 1001 first: 2101 did not ring
    rt.call(engine.agent_service.pause, "1001", "end of shift", timeout=10)
    started = time.monotonic()
    rt.call(engine.agent_service.transfer, "1001", "hotline", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=30,
                message="2101 never took the caller")
    assert time.monotonic() - started < 12, "the caller waited for the paused primary agent"
    record = _record(services, rt, "13912340084")
    assert record.agent_id == "2101", record
    assert [hop.split("@")[0] for hop in record.transfers] == ["1001>hotline"], record.transfers
