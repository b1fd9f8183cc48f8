"""A returning hotline caller reaches the agent they last talked with, on the real lab Asterisk.

``last_agent.days`` on: the engine's hotline script finds the caller's last call with an agent
(here agent 2105's sales call two days ago, in the database) and, 2105 being ready, sets
``CC_LAST_AGENT_PHONE``; dialplans/hotline.conf rings 2105 before queueing. Agents are Local
channels (``Local/<ID>@lab-agents/n``): 2105 in ``outbound`` only, 1001 in the hotline queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from callcenter.settings import LastAgentSettings, Settings
from callcenter.storage.records import CallRecord, NewCallRecord
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open, rings_with_the_call
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

CALLER = "13855556666"


@pytest.fixture
def last_agent_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                   ) -> Iterator[EngineServices]:
    opened = hotline_open(tmp_path)

    def change(settings: Settings) -> Settings:
        return replace(opened(settings), last_agent=LastAgentSettings(days=30, ring_seconds=8))

    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, _, _):
        engine = services.engine
        assert engine.repository is not None
        before = datetime.now(UTC) - timedelta(days=2)
        reactor_thread.call(engine.repository.create_call_record, NewCallRecord(
            started_at=before, direction="outbound", phone=CALLER, agent_id="2105", answered_at=before,
            ended_at=before + timedelta(minutes=4), talk_seconds=240, outcome="sale"), site_prefix="GD")
        yield services


def _the_new_record(services: EngineServices, rt: ReactorThread) -> CallRecord:
    engine = services.engine
    assert engine.repository is not None
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    records: list[CallRecord] = rt.call(engine.repository.list_recent_call_records, limit=5)
    (record,) = [r for r in records if r.direction == "inbound"]
    return record


def test_a_returning_caller_rings_the_agent_they_last_talked_with(last_agent_lab: EngineServices,
                                                                   reactor_thread: ReactorThread) -> None:
    """2105 (ready, in no hotline queue) is rung first and answers: the record is 2105's, with
    the caller's rating, though 1001 waited in the hotline queue."""
    services, rt = last_agent_lab, reactor_thread
    engine = services.engine
    _log_in(services, rt, "1001", "hotline", 4)
    _log_in(services, rt, "2105", "outbound", 5)
    _hotline_caller(services, rt, "Returning", CALLER, seconds=90, csat="5")
    linkedid = rings_with_the_call(services, rt, "2105", None, timeout=40,
                                   message="agent 2105's phone never rang for their returning caller")
    assert engine.agents.state_of("1001").value == "ready"  # the queue never rang
    record = _the_new_record(services, rt)
    assert (record.linkedid, record.phone, record.agent_id, record.csat) == (
        linkedid, CALLER, "2105", 5)
    assert (record.talk_seconds or 0) >= 4
    # never queued: no queue result or queue wait (the reports count it answered, outside the
    # queue's service level)
    assert (record.queue, record.queue_result, record.wait_seconds) == ("hotline", None, None)


def test_an_agent_who_does_not_answer_leaves_the_caller_to_the_queue(last_agent_lab: EngineServices,
                                                                     reactor_thread: ReactorThread) -> None:
    """2105's phone rings 8 s unanswered; then the caller queues and 1001 answers."""
    services, rt = last_agent_lab, reactor_thread
    engine = services.engine
    _log_in(services, rt, "1001", "hotline", 4)
    _log_in(services, rt, "2105", "outbound", 5)
    rt.call(services.ami.send, actions.setvar("LAB_NOANSWER_2105", 1), timeout=10)
    _hotline_caller(services, rt, "Returning", CALLER, seconds=90, csat="4")
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "on_call", timeout=40,
                message="agent 2105's phone never rang")  # busy while it rings
    rang = time.monotonic()
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=30,
                message="the caller never reached the hotline queue's agent")
    assert time.monotonic() - rang >= 6  # after 2105's 8 s of ringing
    record = _the_new_record(services, rt)
    assert (record.phone, record.agent_id, record.queue, record.queue_result, record.csat) == (
        CALLER, "1001", "hotline", "answered", 4)


def test_an_agent_not_ready_is_not_rung(last_agent_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    services, rt = last_agent_lab, reactor_thread
    engine = services.engine
    _log_in(services, rt, "1001", "hotline", 4)
    _log_in(services, rt, "2105", "outbound", 5)
    rt.call(engine.agent_service.pause, "2105", "lunch", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "paused", timeout=10, message="2105 never paused")
    _hotline_caller(services, rt, "Returning", CALLER, seconds=60, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="the caller never reached the hotline queue's agent")
    assert engine.agents.state_of("2105").value == "paused"
    record = _the_new_record(services, rt)
    assert (record.agent_id, record.queue_result) == ("1001", "answered")
