"""An agent consults a colleague before handing the call over, on the real lab Asterisk.

Attended transfers (docs/agents.md, "Consult first"): the agent service sends AMI
``Atxfer`` on the agent's channel; Asterisk holds the customer and rings the colleague
through the agents' transfer context (``cc-transfer-refer``, ``ask-<ID>`` of
dialplans/transfer.conf). Completing hangs the agent's channel up, which hands the customer
over; cancelling (``CancelAtxfer``) takes them back. Agents are Local channels
(``Local/<ID>@lab-agents/n``) talking for ``LAB_TALK_<ID>`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.ami import actions
from callcenter.disposition import parse_disposition
from callcenter.http_api import save_disposition
from callcenter.service import EngineServices
from callcenter.storage.repository import report_sales
from callcenter.transfer import ConsultRefused, TransferRefused, consult_leg, parse_hop
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import (
    engine_on_lab,
    hotline_open,
    network_people,
    rings_with_the_call,
)
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def consult_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path)) as (services, _, _):
        yield services


def _consulting(services: EngineServices, agent: str) -> bool:
    return consult_leg(agent, services.engine.calls.channels.values()) is not None


def _talking_to_a_caller(services: EngineServices, rt: ReactorThread, name: str, number: str, *, seconds: int,
                         csat: str) -> str:
    """A hotline caller (``_hotline_caller``) whom 1001 (logged in already) answers; the call's linkedid."""
    engine = services.engine
    _hotline_caller(services, rt, name, number, seconds=seconds, csat=csat)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="agent 1001 never took the call")
    time.sleep(1)
    return engine.screen_pops["1001"]


def test_the_agent_consults_a_colleague_then_hands_the_caller_over(consult_lab: EngineServices,
                                                                    reactor_thread: ReactorThread) -> None:
    """1001 consults 2105 while the hotline caller holds: 2105's phone rings with the caller's
    screen pop, the two agents talk, 1001 completes, and 2105 has the caller. One record:
    2105 the last agent, the hop ``1001>agent:2105``, the caller's CSAT, one recording."""
    services, rt = consult_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 90)
    _log_in(services, rt, "2105", "outbound", 20)
    with pytest.raises(ConsultRefused, match="not consulting anyone"):
        rt.call(engine.agent_service.complete_consult, "1001", timeout=10)
    linkedid = _talking_to_a_caller(services, rt, "Consult test", "13844445555", seconds=120, csat="4")
    rt.call(engine.agent_service.consult, "1001", "2105", timeout=10)
    # 2105 sees who the caller is while they talk
    rings_with_the_call(services, rt, "2105", linkedid, timeout=15,
                        message="agent 2105's phone never rang for the consult with the caller's screen pop")
    rt.wait_for(lambda: _consulting(services, "1001"), timeout=5, message="no consult leg in 1001's bridge")
    with pytest.raises(TransferRefused, match="consulting agent 2105"):
        rt.call(engine.agent_service.transfer, "1001", "outbound", timeout=10)
    time.sleep(2)  # the two agents talk
    assert engine.transfers_of(linkedid) == ()  # nothing handed over yet
    rt.call(engine.agent_service.complete_consult, "1001", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value in ("wrap_up", "ready"), timeout=10,
                message="1001's phone was not freed by completing")
    (hop_text,) = engine.transfers_of(linkedid)
    assert parse_hop(hop_text)[:2] == ("1001", "agent:2105")
    assert engine.agents.state_of("2105").value == "on_call"
    # the call is 2105's now: they disposition it while they talk (the record still names 1001)
    (live,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (live.ended_at, live.agent_id) == (None, "1001")
    written = rt.call(save_disposition, engine, live.ticket_number,
                      parse_disposition({"agent": "2105", "outcome": "resolved", "notes": "took over"}), timeout=10)
    assert written.outcome == "resolved"
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    # 1001 made a sale before handing the caller on: recorded after the call, it stays theirs
    rt.call(save_disposition, engine, live.ticket_number,
            parse_disposition({"agent": "1001", "sale_amount": "88"}), timeout=10)
    (sale,) = rt.call(engine.repository.run, report_sales, since=live.started_at,
                      until=live.started_at + timedelta(hours=1), timeout=10)
    assert (sale.agent_id, str(sale.amount)) == ("1001", "88.00")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id, record.queue, record.csat) == ("13844445555", "2105", "hotline", 4)
    assert (record.outcome, record.description) == ("resolved", "took over")
    assert engine.screen_pops["2105"] == linkedid  # theirs to disposition
    assert record.transfers == (hop_text,)
    (recording,) = rt.call(engine.repository.list_recordings_for_call, record.id)
    answered_seconds = (record.ended_at - record.answered_at).total_seconds()
    assert abs(recording.duration_seconds - answered_seconds) <= 1.5, (recording.duration_seconds, answered_seconds)
    sample = services.registry.get_sample_value
    assert sample("callcenter_transfers_total", {"queue": "other", "result": "done"}) == 1.0


def test_a_cancelled_consult_gives_the_agent_the_caller_back(consult_lab: EngineServices,
                                                            reactor_thread: ReactorThread) -> None:
    """2105's phone rings unanswered: completing is refused (the caller would be handed to a
    ringing phone); cancelling stops the ringing (and 2105's screen pop of the caller) and 1001
    talks to the caller again. The record is 1001's, without a hop."""
    services, rt = consult_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 25)
    _log_in(services, rt, "2105", "outbound", 4)
    rt.call(services.ami.send, actions.setvar("LAB_NOANSWER_2105", 1), timeout=10)
    _talking_to_a_caller(services, rt, "Cancel test", "13866667777", seconds=120, csat="5")
    rt.call(engine.agent_service.consult, "1001", "2105", timeout=10)
    rt.wait_for(lambda: _consulting(services, "1001"), timeout=10, message="no consult leg in 1001's bridge")
    with pytest.raises(ConsultRefused, match="2105 has not answered yet"):
        rt.call(engine.agent_service.complete_consult, "1001", timeout=10)
    rt.call(engine.agent_service.cancel_consult, "1001", timeout=10)
    rt.wait_for(lambda: not _consulting(services, "1001"), timeout=10, message="the consult leg is still there")
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "ready", timeout=10,
                message="2105's phone kept ringing after the cancel")
    # 2105 had no call before: their screen no longer shows 1001's caller (not theirs)
    rt.wait_for(lambda: "2105" not in engine.screen_pops, timeout=5,
                message="2105's screen pop still shows the caller after the cancel")
    assert engine.agents.state_of("1001").value == "on_call"  # with the caller again
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id, record.transfers, record.csat) == ("13866667777", "1001", (), 5)
    assert (record.talk_seconds or 0) >= 20  # 1001 talked to the caller to the end


def test_an_agents_own_call_handed_over_after_a_consult_is_recorded_to_its_end(
        consult_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """2101 calls a customer (recorded on 2101's channel), consults 2105 and completes: the
    customer's channel records the rest, so the record has 2101's part and 2105's."""
    services, rt = consult_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    network_people(services, rt, 30)
    _log_in(services, rt, "2101", "outbound", 60)
    _log_in(services, rt, "2105", "outbound", 60)
    rt.call(engine.agent_service.call, "2101", "19900030017", name="Lab customer", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=15,
                message="agent 2101 never on their own call")
    time.sleep(4)  # the customer answers after 1 s
    rt.call(engine.agent_service.consult, "2101", "2105", timeout=10)
    rt.wait_for(lambda: (c := consult_leg("2101", engine.calls.channels.values())) is not None and c.answered,
                timeout=15, message="2105 never answered the consult")
    time.sleep(1)
    rt.call(engine.agent_service.complete_consult, "2101", timeout=10)
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.direction, record.phone, record.agent_id) == ("outbound", "19900030017", "2105"), record
    (hop_text,) = record.transfers
    assert parse_hop(hop_text)[:2] == ("2101", "agent:2105")
    recordings = rt.call(engine.repository.list_recordings_for_call, record.id)
    assert sorted(r.agent_id for r in recordings) == ["2101", "2105"], recordings
    first, second = sorted(recordings, key=lambda r: r.started_at)
    assert (first.agent_id, second.agent_id) == ("2101", "2105")
    assert all(Path(r.path).exists() and r.size_bytes > 44 for r in recordings), recordings
    assert first.duration_seconds >= 4 and second.duration_seconds >= 10, recordings


def test_a_caller_who_hangs_up_while_held_for_a_consult(consult_lab: EngineServices,
                                                       reactor_thread: ReactorThread) -> None:
    """The caller gives up while 1001 consults 2105: the two agents' call ends when they hang
    up, both are free again, and the call has one record, 1001's, without a hop."""
    services, rt = consult_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 30)
    _log_in(services, rt, "2105", "outbound", 8)
    _hotline_caller(services, rt, "Impatient", "13833332222", seconds=14, csat="5")  # hangs up 14 s in
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="agent 1001 never took the call")
    rt.call(engine.agent_service.consult, "1001", "2105", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("2105").value == "on_call", timeout=15,
                message="agent 2105's phone never rang for the consult")
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    rt.wait_for(lambda: all(engine.agents.state_of(a).value in ("wrap_up", "ready") for a in ("1001", "2105")),
                timeout=40, message="an agent is still on the call")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id, record.transfers, record.csat) == ("13833332222", "1001", (), None)
    assert consult_leg("1001", engine.calls.channels.values()) is None


def test_a_three_way_call_then_the_agent_leaves_the_caller_with_the_colleague(
        consult_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """1001 consults 2105, then makes it a three-way call (Asterisk's atxferthreeway, the *3
    emulated with PlayDTMF Receive): the caller, 1001 and 2105 in one bridge. 1001 hangs up
    and is free at once (app_queue's AgentComplete only comes when the caller hangs up: the
    board ends 1001's part at their hangup); 2105 and the caller talk on, and the call is
    2105's with the hop."""
    services, rt = consult_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 90)
    _log_in(services, rt, "2105", "outbound", 20)
    linkedid = _talking_to_a_caller(services, rt, "Three-way test", "13877776666", seconds=120, csat="5")
    caller = next(c for c in engine.calls.channels.values() if c.linkedid == linkedid and "@from-pstn" in c.name
                  and c.name.endswith(";2"))
    rt.call(engine.agent_service.consult, "1001", "2105", timeout=10)
    rt.wait_for(lambda: (c := consult_leg("1001", engine.calls.channels.values())) is not None and c.answered,
                timeout=15, message="2105 never answered the consult")
    time.sleep(1)
    rt.call(engine.agent_service.conference_consult, "1001", timeout=10)

    def in_the_callers_bridge() -> set[str]:
        channels = engine.calls.channels
        bridge = channels[caller.uniqueid].bridge_id if caller.uniqueid in channels else None
        return {c.name.split("@")[0] for c in channels.values() if bridge is not None and c.bridge_id == bridge}

    rt.wait_for(lambda: {"Local/1001", "Local/2105"} <= in_the_callers_bridge(), timeout=10,
                message="no three-way bridge")
    time.sleep(2)  # the three talk
    agent_channel = next(c for c in engine.calls.channels.values() if c.name.startswith("Local/1001@lab-agents")
                         and c.name.endswith(";1"))
    rt.call(services.ami.send, actions.hangup(agent_channel.name), timeout=10)  # 1001 leaves
    rt.wait_for(lambda: engine.agents.state_of("1001").value in ("wrap_up", "ready"), timeout=10,
                message="1001 is still on the call")
    assert engine.agents.state_of("2105").value == "on_call"
    assert in_the_callers_bridge() == {"Local/400", "Local/2105"}
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    (hop_text,) = record.transfers
    assert parse_hop(hop_text)[:2] == ("1001", "agent:2105")
    assert (record.phone, record.agent_id, record.csat) == ("13877776666", "2105", 5)
    assert engine.screen_pops["2105"] == linkedid  # theirs to disposition
    assert engine.agents.agent("1001").calls_handled == 1  # type: ignore[union-attr]


def test_the_agent_consults_an_outside_number_then_hands_the_caller_over(
        consult_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """1001 consults an outside number (the lab network's person, 1990003...: answers after a
    second, stays 40 s) while the hotline caller holds; completing hands the caller to that
    number and frees 1001. The record stays 1001's, with the hop ``1001>outside:<number>``."""
    services, rt = consult_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    network_people(services, rt, 40)
    _log_in(services, rt, "1001", "hotline", 90)
    linkedid = _talking_to_a_caller(services, rt, "Outside test", "13855556666", seconds=30, csat="3")
    rt.call(engine.agent_service.consult_number, "1001", "+86 199 0003 0099", timeout=10)
    rt.wait_for(lambda: (c := consult_leg("1001", engine.calls.channels.values())) is not None and c.answered,
                timeout=15, message="the outside number never answered the consult")
    consult = consult_leg("1001", engine.calls.channels.values())
    assert consult is not None and (consult.outside, consult.target_id) == (True, "19900030099")
    time.sleep(2)  # the agent explains the case
    rt.call(engine.agent_service.complete_consult, "1001", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value in ("wrap_up", "ready"), timeout=10,
                message="1001's phone was not freed by completing")
    (hop_text,) = engine.transfers_of(linkedid)
    assert parse_hop(hop_text)[:2] == ("1001", "outside:19900030099")
    caller = next(c for c in engine.calls.channels.values() if c.linkedid == linkedid and "@from-pstn" in c.name
                  and c.name.endswith(";2"))
    bridged = {c.name.split("@")[0] for c in engine.calls.channels.values()
               if caller.bridge_id is not None and c.bridge_id == caller.bridge_id}
    # the caller talks to the outside number: through the consult's leg, or straight once it is optimised away
    assert bridged in ({"Local/400", "Local/00019900030099"}, {"Local/400", "Local/19900030099"}), bridged
    assert any(c.name.startswith("Local/19900030099@sim-pstn") for c in engine.calls.channels.values())
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id, record.transfers) == ("13855556666", "1001", (hop_text,))
