"""Hotline callers no agent answers leave a message and are called back, on the real lab
Asterisk 22 (docs/ivr.md, "Waiting, and leaving a message instead").

The hotline queue of the shipped configuration (``when_empty: message``, ``message_key: 1``)
with ``max_wait`` cut to 12 s. Each caller picks Mandarin (1) and an agent (0); the IVR plays
the busy prompt (Asterisk's queue-periodic-announce: no prompts are rendered here), then:
with no agent logged in, the queue lets the caller go at once (``leavewhenempty``); with the
only agent paused, after ``max_wait``; or the caller presses 1 while waiting. Each time the
caller hears vm-intro (in Mandarin where `prompts build`'s sounds are installed: about as
long as the English one), a beep, speaks 16.2 s (tt-monkeys) and hangs up: the message is
the call's second file and a call back is asked for their number (the callbacks campaign's
lead).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.disposition import parse_disposition
from callcenter.http_api import save_disposition
from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _log_in
from tests.labengine import (
    call_and_message,
    callback_leads_when,
    engine_on_lab,
    hotline_open,
    network_people,
)
from tests.labfixture import LabFactory, sounds_opened, zh_asterisk_sounds
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
MAX_WAIT = 12


@pytest.fixture
def queue_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path, max_wait=MAX_WAIT),
                       dialer_config=ROOT / "config" / "dialer.yaml") as (services, _, _):
        yield services


def _caller(services: EngineServices, rt: ReactorThread, number: str, *, speak_after: float,
            key_after: float | None = None) -> None:
    """Mandarin (1) at 2 s, an agent (0) 3 s later; then ``key_after`` s later 1 (if given),
    and ``speak_after`` s later 16.2 s of speech, then a hangup."""
    variables: dict[str, str | int | float] = {"LAB_DELAY": 2, "LAB_DTMF": "1", "LAB_DELAY2": 3, "LAB_DTMF2": "0"}
    if key_after is None:
        variables["LAB_DELAY3"] = speak_after
    else:
        variables.update(LAB_DELAY3=key_after, LAB_DTMF3="1", LAB_DELAY4=speak_after)
    action = actions.originate("Local/400@from-pstn/n", context="lab-message-caller", exten="s", priority=1,
                               caller_id=f"Waiting caller <{number}>", timeout_ms=20000, variables=variables)
    response: Any = rt.call(services.ami.originate, action, timeout=30)
    assert response.get("Response") == "Success"


def _left_a_message(services: EngineServices, rt: ReactorThread, number: str, reason: str) -> Any:
    """The call's record, checked: queued in the hotline, the busy prompt heard, no agent, the
    message filed as its second file, the call back asked for and made a lead."""
    engine = services.engine
    assert engine.repository is not None
    rt.wait_for(lambda: engine.records_written >= 1, timeout=90, message="no call record written")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert record.phone == number
    assert record.ivr_path[-2:] == ("queue_hotline", "queue_hotline:busy"), record.ivr_path
    assert record.outcome == f"message left; callback requested: {number}"
    assert record.agent_id is None and record.queue == "hotline"
    assert services.registry.get_sample_value("callcenter_queue_messages_total",
                                              {"queue": "hotline", "reason": reason}) == 1.0
    _, message = call_and_message(services, rt, record.id)
    assert 8 <= message.duration_seconds <= 16.5, message  # the caller's words, after the beep
    found = callback_leads_when(services, rt)  # the lead is written after the record
    assert found == [(number, {"ticket": record.ticket_number})]
    return record


def test_with_no_agent_logged_in_the_caller_leaves_a_message_at_once(
        lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> None:
    """Busy prompt 7.8 s, the queue lets the caller go at once (leavewhenempty), vm-intro
    5.8 s, the beep: speech 18 s after the 0. The caller chose Mandarin, and with
    `prompts build`'s Mandarin sounds in place Asterisk asks for the message in Mandarin
    (zh/vm-intro, read from its open files as in test_queue_announce_lab)."""
    built = zh_asterisk_sounds(tmp_path)
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path, max_wait=MAX_WAIT),
                       dialer_config=ROOT / "config" / "dialer.yaml") as (services, handle, _):
        assert handle.instance.runtime.install_sounds(built) >= 0
        pid = handle.instance.pid()
        assert pid is not None
        with sounds_opened(pid) as seen:
            _caller(services, reactor_thread, "13912340001", speak_after=18)
            record = _left_a_message(services, reactor_thread, "13912340001", "leaveempty")
        assert (record.wait_seconds or 0) <= 4, record
        assert record.queue_result == "unanswered"  # app_queue says abandoned: the caller did not hang up
        assert "zh/vm-intro.wav" in seen, sorted(seen)


def test_a_caller_nobody_answers_within_max_wait_leaves_a_message(queue_lab: EngineServices,
                                                                  reactor_thread: ReactorThread) -> None:
    """1001, the only agent, is paused: the caller waits max_wait (12 s), then the message."""
    services, rt = queue_lab, reactor_thread
    _log_in(services, rt, "1001", "hotline", 30)
    rt.call(services.engine.agent_service.pause, "1001", "lunch", timeout=10)
    rt.wait_for(lambda: services.engine.agents.state_of("1001").value == "paused", timeout=10,
                message="1001 did not pause")
    _caller(services, rt, "13912340002", speak_after=7.8 + MAX_WAIT + 5.7 + 3)
    record = _left_a_message(services, rt, "13912340002", "timeout")
    assert MAX_WAIT - 1 <= (record.wait_seconds or 0) <= MAX_WAIT + 3, record
    assert record.queue_result == "unanswered"


def test_a_waiting_caller_who_presses_1_leaves_a_message(queue_lab: EngineServices,
                                                         reactor_thread: ReactorThread) -> None:
    """The agent is paused; 5 s into the wait the caller presses 1 (message_key) and leaves
    the queue for the message at once, long before max_wait."""
    services, rt = queue_lab, reactor_thread
    _log_in(services, rt, "1001", "hotline", 30)
    rt.call(services.engine.agent_service.pause, "1001", "lunch", timeout=10)
    rt.wait_for(lambda: services.engine.agents.state_of("1001").value == "paused", timeout=10,
                message="1001 did not pause")
    _caller(services, rt, "13912340003", key_after=7.8 + 5, speak_after=5.7 + 3)
    record = _left_a_message(services, rt, "13912340003", "key")
    assert (record.wait_seconds or 0) <= MAX_WAIT - 3, record
    assert record.queue_result == "unanswered"


def test_an_outbound_customer_handed_to_a_queue_nobody_answers_leaves_a_message(
        queue_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """Agent 2101 calls a customer, records an outcome, and hands them to the hotline, whose
    only agent (1001) is paused: after max_wait the customer hears vm-intro and the beep,
    and leaves a message (the lab's person stays silent: Record ends on 5 s of silence);
    the message is filed with the call, a call back is asked for the number they were called
    on (the callbacks campaign's lead, with the ticket), and 2101's outcome is kept. Before,
    an outbound customer was hung up in silence there."""
    services, rt = queue_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    network_people(services, rt, 60)
    _log_in(services, rt, "1001", "hotline", 30)
    rt.call(engine.agent_service.pause, "1001", "lunch", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10, message="1001 did not pause")
    _log_in(services, rt, "2101", "outbound", 60)
    rt.call(engine.agent_service.call, "2101", "19900030017", name="Lab customer", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=15,
                message="agent 2101 never on their own call")
    time.sleep(4)  # the customer answers after 1 s
    (opened,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    rt.call(save_disposition, engine, opened.ticket_number,
            parse_disposition({"agent": "2101", "outcome": "wants the offer", "notes": "send details"}), timeout=10)
    rt.call(engine.agent_service.transfer, "2101", "hotline", timeout=10)
    rt.wait_for(lambda: engine.records_written >= 1, timeout=90, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.direction, record.phone, record.agent_id) == ("outbound", "19900030017", "2101"), record
    assert (record.outcome, record.description) == ("wants the offer", "send details")
    assert services.registry.get_sample_value("callcenter_queue_messages_total",
                                              {"queue": "hotline", "reason": "timeout"}) == 1.0
    deadline = time.monotonic() + 10
    recordings: list[Any] = []
    while len(recordings) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        recordings = rt.call(engine.repository.list_recordings_for_call, record.id)
    messages = [r for r in recordings if Path(r.path).name.endswith("-message.wav")]
    assert len(recordings) == 3 and len(messages) == 1, recordings  # 2101's part, the customer's, the message
    (message,) = messages
    assert any(Path(r.path).stem == Path(message.path).stem.removesuffix("-message") for r in recordings)
    found = callback_leads_when(services, rt)
    assert found == [("19900030017", {"ticket": record.ticket_number})]


def test_a_caller_who_presses_1_during_the_busy_prompt_is_not_queued(queue_lab: EngineServices,
                                                                     reactor_thread: ReactorThread) -> None:
    """The busy prompt says press 1 for a message: pressed 3 s into it (7.8 s long), the
    caller goes to the message at once, never into the queue (before, the key was thrown
    away and they waited max_wait)."""
    services, rt = queue_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 30)
    rt.call(engine.agent_service.pause, "1001", "lunch", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10, message="1001 did not pause")
    _caller(services, rt, "13912340004", key_after=3, speak_after=5.7 + 3)
    rt.wait_for(lambda: engine.records_written >= 1, timeout=90, message="no call record written")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert record.ivr_path[-3:] == ("queue_hotline", "queue_hotline:busy", "queue_hotline:key"), record.ivr_path
    assert record.outcome == "message left; callback requested: 13912340004"
    assert record.queue_result is None and record.wait_seconds in (None, 0), record  # never queued
    assert services.registry.get_sample_value("callcenter_queue_messages_total",
                                              {"queue": "hotline", "reason": "key"}) == 1.0
    _, message = call_and_message(services, rt, record.id)
    assert 4 <= message.duration_seconds <= 16.5, message
