"""The whole hotline on the real lab with a real SIP softphone as the agent.

The engine (``make_service``) drives a lab Asterisk built from the project's files. Agent
1001 is a SIPp softphone registered over PJSIP with its generated secret, logged in by the
engine's agent service (``QueueAdd PJSIP/agent1001``). A caller dials the 400 number, picks
Mandarin (1) and "agent" (0) in the IVR, the softphone answers and talks (RTP audio) for a few
seconds and hangs up, and the caller presses 5 in the post-call survey. The call record has
the agent, the IVR choices and the CSAT, and its recording is non-empty, with a duration
matching the call's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from callcenter.ami import actions
from callcenter.engine import Engine
from callcenter.metrics import EngineMetrics
from callcenter.service import EngineServices
from callcenter.storage.agent_time import agent_time_report
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread
from tests.softphones import G711A_PCAP, Softphone

pytestmark = pytest.mark.lab



def _hotline_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path, *, when_empty: str
                 ) -> Iterator[tuple[EngineServices, Any, Any]]:
    change = hotline_open(tmp_path, when_empty=when_empty)
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, lab_agents=False,  # PJSIP agents
                       change=change) as lab:
        yield lab


@pytest.fixture
def hotline_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                ) -> Iterator[tuple[EngineServices, Any, Any]]:
    yield from _hotline_lab(lab_factory, reactor_thread, tmp_path, when_empty="message")  # as shipped


@pytest.fixture
def waiting_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                ) -> Iterator[tuple[EngineServices, Any, Any]]:
    """A hotline whose callers wait even with no agent logged in (``when_empty: wait``)."""
    yield from _hotline_lab(lab_factory, reactor_thread, tmp_path, when_empty="wait")


def _call_through_the_hotline(
    lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path, *,
    caller_id: str, variables: dict[str, object], hold_seconds: float, wait_seconds: float,
) -> tuple[Any, int]:
    """Softphone agent 1001 registers and logs in; one caller dials 400 with ``variables``
    (DTMF plan, see dialplans/lab/lab.conf). Returns the finished call record and how many
    INVITEs the softphone saw."""
    services, handle, secrets = lab
    engine = services.engine
    phone = Softphone("1001", handle.ports.sip, secrets.sip_secret("1001"), workdir=tmp_path / "sipp",
                      avoid_ports=handle.ports.all_ports())
    try:
        assert phone.register().ok
        phone.answer_calls(1, hold_seconds=hold_seconds, pcap=G711A_PCAP, timeout=90)
        reactor_thread.call(engine.agent_service.login, "1001", ["hotline"], timeout=10)
        reactor_thread.wait_for(lambda: engine.agents.state_of("1001").value == "ready", timeout=10,
                                message="agent 1001 never became ready")
        action = actions.originate("Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                                   caller_id=caller_id, timeout_ms=20000, variables=variables)
        response: Any = reactor_thread.call(services.ami.originate, action, timeout=30)
        assert response.get("Response") == "Success"
        reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=wait_seconds,
                                message="no call record written")
        invites = phone.wait_answered(timeout=5).invites
    finally:
        phone.stop()
    assert engine.repository is not None
    # the recording row follows the hangup by about a second
    reactor_thread.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = reactor_thread.call(engine.repository.list_recent_call_records, limit=5)
    return record, invites


def test_caller_reaches_a_registered_softphone_and_the_record_matches(
    hotline_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path
) -> None:
    """IVR by DTMF -> hotline queue -> SIPp softphone answers -> CSAT 5 -> record + recording."""
    record, invites = _call_through_the_hotline(
        hotline_lab, reactor_thread, tmp_path, caller_id="SIP test <13811112222>", hold_seconds=4,
        wait_seconds=80, variables={"LAB_SECONDS": 80, "LAB_DELAY": 2, "LAB_DTMF": "1", "LAB_DELAY2": 3,
                                    "LAB_DTMF2": "0", "LAB_REPEAT_DTMF": "5"})
    assert invites == 1
    assert record.agent_id == "1001" and record.phone == "13811112222"
    assert (record.queue, record.queue_result) == ("hotline", "answered") and record.wait_seconds is not None
    assert "language=1" in record.ivr_path and "main_menu=0" in record.ivr_path
    assert record.csat == 5
    assert 3 <= (record.talk_seconds or 0) <= 6
    repo = hotline_lab[0].engine.repository
    assert repo is not None
    (recording,) = reactor_thread.call(repo.list_recordings_for_call, record.id)
    assert recording.size_bytes > 44 and recording.agent_id == "1001"
    call_seconds = (record.ended_at - record.answered_at).total_seconds()
    assert abs(recording.duration_seconds - call_seconds) <= 1.5, (recording.duration_seconds, call_seconds)
    # where the agent's time went, from the state changes the engine wrote (docs/reports.md, "Agent time")
    engine = hotline_lab[0].engine
    reactor_thread.call(engine.agent_service.pause, "1001", "coaching", timeout=10)
    reactor_thread.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10,
                            message="agent 1001 never paused")
    time.sleep(3)  # the engine writes the changes a batch a second
    now = datetime.now(UTC)
    (line,) = reactor_thread.call(repo.run, agent_time_report, start=now - timedelta(hours=1),
                                  end=now + timedelta(hours=1), now=now)
    assert line.agent_id == "1001" and line.ready > 0 and line.ringing > 0, line
    assert abs(line.on_call - (record.talk_seconds or 0)) <= 1.5 and 0 < line.wrap_up <= 10.5, line  # the agent's talk
    assert set(line.paused_by_reason) == {"coaching"} and 2 <= line.paused <= 10, line
    assert line.logged_in == pytest.approx(line.ready + line.ringing + line.on_call + line.wrap_up + line.paused)


def test_a_caller_who_hangs_up_while_queued_is_recorded_abandoned_and_counted(
    waiting_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread
) -> None:
    """No agent logged in, on a hotline whose callers wait anyway (``when_empty: wait``; as
    shipped they leave a message at once: test_queue_message_lab.py): the caller picks
    "agent", waits in the hotline queue and hangs up. The record says the stay was abandoned
    (with the wait), like the wallboard's count, and an engine started afterwards reads the
    same day back from the records."""
    services, _handle, _secrets = waiting_lab
    engine = services.engine
    action = actions.originate("Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                               caller_id="Impatient <13833334444>", timeout_ms=20000,
                               variables={"LAB_SECONDS": 18, "LAB_DELAY": 2, "LAB_DTMF": "1", "LAB_DELAY2": 3,
                                          "LAB_DTMF2": "0"})
    response: Any = reactor_thread.call(services.ami.originate, action, timeout=30)
    assert response.get("Response") == "Success"
    reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=40, message="no call record written")
    assert engine.repository is not None
    reactor_thread.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = reactor_thread.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.queue, record.queue_result, record.agent_id) == ("hotline", "abandoned", None)
    assert record.wait_seconds is not None and 1 <= record.wait_seconds <= 16, record
    view = reactor_thread.call(engine.queue_views)[0]
    assert (view["queue"], view["offered"], view["abandoned"], view["answered"]) == ("hotline", 1, 1, 0)

    from twisted.internet import reactor
    restarted = Engine(engine.settings, services.ami, engine.repository, EngineMetrics(CollectorRegistry()),
                       reactor, engine.recordings)
    reactor_thread.call(restarted.startService)
    try:
        reactor_thread.wait_for(lambda: restarted.queue_views()[0]["offered"] == 1, timeout=10,
                                message="the restarted engine did not read the day's stays back")
        again = reactor_thread.call(restarted.queue_views)[0]
        assert {k: again[k] for k in ("offered", "abandoned", "answered", "unanswered")} == {
            k: view[k] for k in ("offered", "abandoned", "answered", "unanswered")}
    finally:
        reactor_thread.call(restarted.stopService, timeout=10)


def test_invalid_digits_follow_the_retries_then_the_fallback_to_an_agent(
    hotline_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path
) -> None:
    """A caller pressing only 9: each menu retries as the flow says, then falls back (language ->
    Mandarin, main menu -> agent); the survey gets no valid score, so the record has no CSAT."""
    record, _ = _call_through_the_hotline(
        hotline_lab, reactor_thread, tmp_path, caller_id="Confused caller <13822223333>", hold_seconds=2,
        wait_seconds=80, variables={"LAB_SECONDS": 80, "LAB_DELAY": 1, "LAB_REPEAT_DTMF": "9"})
    path = record.ivr_path
    assert path.count("language:invalid") == 2  # the first try and one retry (retries: 1)
    assert path.count("main_menu:invalid") == 3  # the first try and two retries (retries: 2)
    assert path[-1] == "queue_hotline" and record.agent_id == "1001"
    assert record.csat is None


def test_silence_times_out_through_the_retries_then_the_fallback_to_an_agent(
    hotline_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path
) -> None:
    """A caller who presses nothing: each menu times out, retries as the flow says, then falls
    back (language -> Mandarin, main menu -> agent); no survey score, no CSAT."""
    record, _ = _call_through_the_hotline(
        hotline_lab, reactor_thread, tmp_path, caller_id="Silent caller <13833334444>", hold_seconds=2,
        wait_seconds=90, variables={"LAB_SECONDS": 90, "LAB_DELAY": 1})
    path = record.ivr_path
    assert path.count("language:timeout") == 2  # the first try and one retry (retries: 1)
    assert path.count("main_menu:timeout") == 3  # the first try and two retries (retries: 2)
    assert path[-1] == "queue_hotline" and record.agent_id == "1001"
    assert record.csat is None
