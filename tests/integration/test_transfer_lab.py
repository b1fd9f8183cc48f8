"""An agent hands a hotline caller on to another queue, on the real lab Asterisk.

The engine (``make_service``) drives a lab Asterisk built from the project's files; agents
are Local channels (``Local/<ID>@lab-agents/n``). A caller dials 400, picks Mandarin (1) and
"agent" (0), and hotline agent 1001 answers. While they talk, 1001 transfers the caller to
the ``outbound`` queue (the agent service's AMI ``BlindTransfer``): 1001's phone hangs up,
agent 2101 of ``outbound`` answers, talks and hangs up, and the caller still rates the call
(5) in the hotline's survey. One call record tells it all: the last agent (2101), the hop
``1001>outbound@<seconds>``, the caller's wait and queue before the first agent, the CSAT,
and a recording as long as the whole call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from callcenter.transfer import TransferRefused, parse_hop
from tests.labengine import (
    engine_on_lab,
    hotline_open,
    network_people,
    rings_with_the_call,
)
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread
from tests.softphones import Softphone

pytestmark = pytest.mark.lab


@pytest.fixture
def transfer_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path)) as (services, _, _):
        yield services


def _log_in(services: EngineServices, rt: ReactorThread, agent: str, queue: str, talk_seconds: int) -> None:
    engine = services.engine
    rt.call(services.ami.send, actions.setvar(f"LAB_TALK_{agent}", talk_seconds))
    rt.call(services.ami.send, actions.command(f"devstate change Custom:agent{agent} NOT_INUSE"))
    rt.call(engine.agent_service.login, agent, [queue], timeout=10)
    rt.wait_for(lambda: engine.agents.state_of(agent).value == "ready", timeout=10,
                message=f"agent {agent} did not log in")


def _hotline_caller(services: EngineServices, rt: ReactorThread, name: str, number: str, *, seconds: int,
                    csat: str, language_key: str = "1") -> None:
    """A caller who dials 400, picks Mandarin (``language_key`` 1; 2 is English) and "agent" (0),
    then keeps pressing ``csat`` (the survey's rating after the last agent), for ``seconds`` at most."""
    action = actions.originate("Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                               caller_id=f"{name} <{number}>", timeout_ms=20000,
                               variables={"LAB_SECONDS": seconds, "LAB_DELAY": 2, "LAB_DTMF": language_key,
                                          "LAB_DELAY2": 3,
                                          "LAB_DTMF2": "0", "LAB_REPEAT_DTMF": csat})
    assert rt.call(services.ami.originate, action, timeout=30).get("Response") == "Success"


def test_the_agent_hands_the_caller_on_and_the_record_follows(transfer_lab: EngineServices,
                                                             reactor_thread: ReactorThread) -> None:
    services, rt = transfer_lab, reactor_thread
    engine = services.engine
    _log_in(services, rt, "1001", "hotline", 60)   # talks until handing the caller on
    # nobody else in outbound yet: refused before anything reaches Asterisk
    with pytest.raises(TransferRefused, match="not on a call"):
        rt.call(engine.agent_service.transfer, "1001", "outbound", timeout=10)
    _hotline_caller(services, rt, "Transfer test", "13822223333", seconds=90, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="agent 1001 never took the call")
    with pytest.raises(TransferRefused, match="nobody else is logged in to queue 'outbound'"):
        rt.call(engine.agent_service.transfer, "1001", "outbound", timeout=10)
    _log_in(services, rt, "2101", "outbound", 4)
    time.sleep(2)
    reply = rt.call(engine.agent_service.transfer, "1001", "outbound", timeout=10)
    assert reply.response.get("Response") == "Success", reply
    linkedid = engine.screen_pops["1001"]
    # 2101's screen pop: the same call and ticket
    rings_with_the_call(services, rt, "2101", linkedid, timeout=20,
                        message="agent 2101 never got the transferred caller with its screen pop")
    assert engine.agents.state_of("1001").value in ("wrap_up", "ready")  # 1001's phone is free
    (hop_text,) = engine.transfers_of(linkedid)
    assert parse_hop(hop_text)[:2] == ("1001", "outbound")
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    assert engine.repository is not None
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id, record.linkedid) == ("13822223333", "2101", linkedid)
    assert record.transfers == (hop_text,)
    offset = parse_hop(hop_text)[2]
    call_seconds = (record.ended_at - record.started_at).total_seconds()
    assert 5 < offset < call_seconds, (offset, call_seconds)
    # the caller's queue and wait are those before the first agent; the rating came after the last
    assert (record.queue, record.queue_result) == ("hotline", "answered") and record.wait_seconds is not None
    assert record.csat == 5
    assert "main_menu=0" in record.ivr_path
    assert (record.talk_seconds or 0) >= 4 + 2  # both agents' talk
    (recording,) = rt.call(engine.repository.list_recordings_for_call, record.id)
    answered_seconds = (record.ended_at - record.answered_at).total_seconds()
    assert abs(recording.duration_seconds - answered_seconds) <= 1.5, (recording.duration_seconds, answered_seconds)
    sample: Any = services.registry.get_sample_value
    assert sample("callcenter_transfers_total", {"queue": "outbound", "result": "done"}) == 1.0


def test_an_agents_own_call_handed_on_is_recorded_to_its_end(transfer_lab: EngineServices,
                                                             reactor_thread: ReactorThread) -> None:
    """Agent 2101 calls a customer (recorded on 2101's own channel) and hands them on to the
    hotline: the customer's channel starts its own recording, and the one record has both
    files, 2101's part and 1001's."""
    services, rt = transfer_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    network_people(services, rt, 25)
    _log_in(services, rt, "1001", "hotline", 5)
    _log_in(services, rt, "2101", "outbound", 60)
    rt.call(engine.agent_service.call, "2101", "19900030017", name="Lab customer", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=15,
                message="agent 2101 never on their own call")
    time.sleep(4)  # the customer answers after 1 s
    rt.call(engine.agent_service.transfer, "2101", "hotline", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=20,
                message="agent 1001 never got the customer")
    rt.wait_for(lambda: engine.records_written >= 1, timeout=40, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.direction, record.phone, record.agent_id) == ("outbound", "19900030017", "1001"), record
    (hop_text,) = record.transfers
    assert parse_hop(hop_text)[:2] == ("2101", "hotline")
    assert (record.queue, record.queue_result) == ("hotline", "answered")
    recordings = rt.call(engine.repository.list_recordings_for_call, record.id)
    assert sorted(r.agent_id for r in recordings) == ["1001", "2101"], recordings
    first, second = sorted(recordings, key=lambda r: r.started_at)
    assert first.agent_id == "2101" and second.agent_id == "1001"
    assert all(Path(r.path).exists() and r.size_bytes > 44 for r in recordings), recordings
    assert 3 <= first.duration_seconds and 4 <= second.duration_seconds, recordings


def test_the_agent_hands_the_caller_to_a_colleague_who_is_ready(transfer_lab: EngineServices,
                                                                reactor_thread: ReactorThread) -> None:
    """1001 hands the hotline caller straight to agent 2105 (ready, in no queue of the
    caller's): 2105's phone rings with the call, 2105 answers and is the record's agent;
    the caller still rates the call. A colleague not ready is refused before anything is sent."""
    services, rt = transfer_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 60)
    _log_in(services, rt, "2105", "outbound", 4)
    rt.call(engine.agent_service.pause, "2105", "coaching", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "paused", timeout=10, message="2105 never paused")
    _hotline_caller(services, rt, "Colleague test", "13844445555", seconds=90, csat="4")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="agent 1001 never took the call")
    with pytest.raises(TransferRefused, match=r"agent 2105 is not ready \(paused\)"):
        rt.call(engine.agent_service.transfer_to_agent, "1001", "2105", timeout=10)
    rt.call(engine.agent_service.unpause, "2105", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "ready", timeout=10, message="2105 never ready")
    time.sleep(1)
    rt.call(engine.agent_service.transfer_to_agent, "1001", "2105", timeout=10)
    linkedid = engine.screen_pops["1001"]
    rings_with_the_call(services, rt, "2105", linkedid, timeout=20,
                        message="agent 2105's phone never took the call with its screen pop")
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    (hop_text,) = record.transfers
    assert parse_hop(hop_text)[:2] == ("1001", "agent:2105")
    assert (record.phone, record.agent_id, record.queue, record.csat) == ("13844445555", "2105", "hotline", 4)
    (recording,) = rt.call(engine.repository.list_recordings_for_call, record.id)
    answered_seconds = (record.ended_at - record.answered_at).total_seconds()
    assert abs(recording.duration_seconds - answered_seconds) <= 1.5, (recording.duration_seconds, answered_seconds)
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "ready", timeout=10,
                message="2105 not ready again after the call")


def test_a_caller_handed_to_an_agent_who_does_not_answer_waits_in_the_queue_again(
        transfer_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """2105 is ready but does not pick up: after 20 s of ringing the caller waits in the
    transferring agent's first queue (the hotline), where 1001 takes them again: no caller
    dropped, one record, the hop noted."""
    services, rt = transfer_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 8)
    _log_in(services, rt, "2105", "outbound", 4)
    rt.call(services.ami.send, actions.setvar("LAB_NOANSWER_2105", 1), timeout=10)
    _hotline_caller(services, rt, "Fallback test", "13866667777", seconds=120, csat="5")
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="agent 1001 never took the call")
    time.sleep(1)
    rt.call(engine.agent_service.transfer_to_agent, "1001", "2105", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "on_call", timeout=10,
                message="agent 2105's phone never rang")  # busy while it rings ([agent-callee])
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=45,
                message="the unanswered caller never came back to the hotline's agent")
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    (hop_text,) = record.transfers
    assert parse_hop(hop_text)[:2] == ("1001", "agent:2105")
    assert (record.phone, record.agent_id, record.queue, record.csat) == ("13866667777", "1001", "hotline", 5)
    assert engine.agents.state_of("2105").value == "ready"


@pytest.fixture
def softphone_transfer_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                           ) -> Iterator[tuple[EngineServices, Any, Any]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path), lab_agents=False) as lab:  # PJSIP
        yield lab


def test_the_transfer_key_of_the_agents_own_phone(softphone_transfer_lab: tuple[EngineServices, Any, Any],
                                                  reactor_thread: ReactorThread, tmp_path: Path) -> None:
    """Agent 1001's SIP softphone answers a hotline caller and presses its transfer key: a
    blind-transfer REFER to 2105. Asterisk follows it in the endpoint's TRANSFER_CONTEXT
    (cc-transfer-refer), 2105's softphone rings with the caller and answers; the caller
    rates the call after 2105 hangs up. The record has 2105 and the hop."""
    services, handle, secrets = softphone_transfer_lab
    rt = reactor_thread
    engine = services.engine
    assert engine.repository is not None
    first = Softphone("1001", handle.ports.sip, secrets.sip_secret("1001"), workdir=tmp_path / "sipp1001",
                      avoid_ports=handle.ports.all_ports())
    second = Softphone("2105", handle.ports.sip, secrets.sip_secret("2105"), workdir=tmp_path / "sipp2105",
                       avoid_ports=handle.ports.all_ports())
    try:
        for phone in (first, second):
            assert phone.register().ok
        first.answer_calls(1, hold_seconds=3, refer_to="2105", timeout=90)
        second.answer_calls(1, hold_seconds=4, timeout=90)
        rt.call(engine.agent_service.login, "1001", ["hotline"], timeout=10)
        rt.wait_for(lambda: engine.agents.state_of("1001").value == "ready", timeout=10,
                    message="agent 1001 never became ready")
        _hotline_caller(services, rt, "Phone key test", "13877778888", seconds=90, csat="5")
        rt.wait_for(lambda: engine.records_written >= 1, timeout=80, message="no call record written")
        rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
        referred = first.wait_answered(timeout=10)
        assert any(m.status == 202 for m in referred.messages if m.direction == "received"), \
            [m.start_line for m in referred.messages]
        assert second.wait_answered(timeout=10).answered == 1
    finally:
        first.stop()
        second.stop()
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    (hop_text,) = record.transfers
    assert parse_hop(hop_text)[:2] == ("1001", "agent:2105")
    assert (record.phone, record.agent_id, record.queue, record.csat) == ("13877778888", "2105", "hotline", 5)
