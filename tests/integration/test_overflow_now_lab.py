"""The hotline's overflow agents ring at once when its primary agent is away, on the real
lab Asterisk 22 with the engine (docs/agents.md, "Overflow").

The shipped hotline queue (``overflow_after: 20``): 1001 (penalty 0) is the primary agent,
2101 (penalty 5) an overflow agent. With 1001 paused the engine sets the device
``Custom:cc-overflow-hotline`` INUSE, the dialplan sets no penalty limit and 2101 answers
within seconds: a new caller, a caller the agent hands back from their page, and one handed
back with the SIP phone's own transfer key (the engine is not asked), also after a dialplan
reload. With 1001 logged in and busy on another call the caller waits the 20 s for 1001
before 2101 rings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.overflow import overflow_device
from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread
from tests.softphones import Softphone

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
    hotline queue from their page: 2101 answers at once, not after the 20 s a caller waits
    for a primary agent who is there."""
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


def test_a_caller_waiting_for_the_hotline_agent_reaches_the_overflow_agent_when_that_agent_leaves(
        overflow_engine: EngineServices, reactor_thread: ReactorThread) -> None:
    """1001 is on a call; the next caller joins the queue and waits for 1001 (the 20 s of
    overflow_after). 1001 pauses to leave a few seconds later: the engine drops 2101's
    penalty in the hotline to 0 and 2101 answers the waiting caller within seconds (before:
    the caller's limit, set when they joined, kept them waiting the whole 20 s). With 1001
    back, 2101's penalty is the configured 5 again."""
    services, rt = overflow_engine, reactor_thread
    engine = services.engine

    def penalty_of_2101() -> str | None:
        listed = rt.call(services.ami.send, actions.queue_status("hotline", member="Local/2101@lab-agents/n"),
                         timeout=10)
        return next((m.get("Penalty") for m in listed.events if m.name == "QueueMember"), None)

    _log_in(services, rt, "1001", "hotline", 60)
    _log_in(services, rt, "2101", "hotline", 3)
    assert penalty_of_2101() == "5"
    _hotline_caller(services, rt, "Keeps 1001 busy", "13912340086", seconds=80, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="1001 never took the first call")
    _hotline_caller(services, rt, "Waits for 1001", "13912340087", seconds=80, csat="5")

    def waiting() -> int:
        return next(v["waiting"] for v in engine.queue_views() if v["queue"] == "hotline")  # type: ignore[no-any-return]
    rt.wait_for(lambda: waiting() == 1, timeout=40, message="the second caller never queued")
    time.sleep(4)
    assert engine.agents.state_of("2101").value == "ready"  # waiting for 1001, who is there
    left = time.monotonic()
    rt.call(engine.agent_service.pause, "1001", "end of shift", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=30,
                message="2101 never took the waiting caller")
    assert time.monotonic() - left < 8, "the waiting caller still waited out overflow_after"
    assert penalty_of_2101() == "0"
    record = _record(services, rt, "13912340087")
    assert record.agent_id == "2101", record
    assert record.wait_seconds is not None and record.wait_seconds < 15, record
    rt.call(engine.agent_service.unpause, "1001", timeout=10)
    deadline = time.monotonic() + 10
    while penalty_of_2101() != "5":
        assert time.monotonic() < deadline, "2101's penalty was not put back"
        time.sleep(0.3)


@pytest.fixture
def softphone_overflow_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                           ) -> Iterator[tuple[EngineServices, Any, Any]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path), lab_agents=False) as lab:
        yield lab  # agents on PJSIP softphones


def _device_state(services: EngineServices, rt: ReactorThread, device: str) -> str:
    reply = rt.call(services.ami.send, actions.getvar(f"DEVICE_STATE({device})"), timeout=10)
    return str(reply.response.get("Value"))


def test_the_phones_own_transfer_key_reaches_the_overflow_agent_at_once_with_the_hotline_agent_paused(
        softphone_overflow_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread,
        tmp_path: Path) -> None:
    """1001's SIP softphone answers a hotline caller; 1001 pauses (leaving) and, 12 s into
    the call, presses the phone's transfer key to 0 (no agent's id: back to the caller's
    queue, cc-transfer's refer-back; one digit is enough). The engine is not asked: the dialplan reads the device
    the engine set INUSE when 1001 paused, which a dialplan reload (it clears global
    variables) leaves as it is, and 2101's softphone rings at once."""
    services, handle, secrets = softphone_overflow_lab
    rt = reactor_thread
    engine = services.engine
    device = overflow_device("hotline")
    phones = {agent: Softphone(agent, handle.ports.sip, secrets.sip_secret(agent), workdir=tmp_path / f"sipp{agent}",
                               avoid_ports=handle.ports.all_ports()) for agent in ("1001", "2101")}
    try:
        for phone in phones.values():
            assert phone.register().ok
        phones["1001"].answer_calls(1, hold_seconds=12, refer_to="0", timeout=90)
        phones["2101"].answer_calls(1, hold_seconds=4, timeout=90)
        for agent in phones:
            rt.call(engine.agent_service.login, agent, ["hotline"], timeout=10)
            rt.wait_for(lambda agent=agent: engine.agents.state_of(agent).value == "ready", timeout=10,
                        message=f"agent {agent} never became ready")
        assert _device_state(services, rt, device) == "NOT_INUSE"  # 1001 is there: callers wait for them
        _hotline_caller(services, rt, "Phone key overflow", "13912340085", seconds=90, csat="5")
        rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                    message="1001 never took the call")
        answered = time.monotonic()
        assert engine.agents.state_of("2101").value == "ready"  # 1001 first: 2101 did not ring
        rt.call(engine.agent_service.pause, "1001", "end of shift", timeout=10)
        deadline = time.monotonic() + 5
        while _device_state(services, rt, device) != "INUSE":
            assert time.monotonic() < deadline, "the engine did not set the overflow device"
            time.sleep(0.2)
        rt.call(services.ami.send, actions.command("dialplan reload"), timeout=10)
        assert _device_state(services, rt, device) == "INUSE"
        rt.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=40,
                    message="2101 never took the caller")
        # the REFER went 12 s after the answer; waiting for the paused 1001 would add 20 s
        assert time.monotonic() - answered < 12 + 10, "the caller waited for the paused primary agent"
        assert phones["2101"].wait_answered(timeout=20).answered == 1
    finally:
        for phone in phones.values():
            phone.stop()
    record = _record(services, rt, "13912340085")
    assert record.agent_id == "2101", record
