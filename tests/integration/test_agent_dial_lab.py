"""An agent's own call to a customer on the real lab Asterisk (docs/agents.md, "Calling a customer").

The whole engine (``make_service``) on a lab instance; agent 2101 is a lab agent (a Local
channel that answers and stays on the line). Through the daemon's HTTP API, signed in with the
host's token as the CLI is, the agent calls back a customer whose follow-up is due: the agent's
phone is originated into ``[agent-dial]``, which records the call and dials the lab's simulated
network, where the number answers as a person, shown the agent's id as the caller (the
agent's phone was shown the customer). The call record is the agent's, outbound, with
the number, the name and the talk; the recording is on disk; the screen pop is the call; and the
follow-up has left the agent's list.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.cli import call_api
from callcenter.service import EngineServices
from callcenter.storage.records import NewCallRecord
from tests.labengine import engine_on_lab, network_people
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread
from tests.softphones import G711A_PCAP, Softphone

pytestmark = pytest.mark.lab

CUSTOMER = "19900030017"  # sim-pstn: 1990003... answers as a person


@pytest.fixture
def dial_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
             ) -> Iterator[tuple[EngineServices, LabHandle, Any]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path) as lab:
        yield lab


def test_an_agent_calls_a_customer_back_from_the_follow_up(
        dial_lab: tuple[EngineServices, LabHandle, Any], reactor_thread: ReactorThread) -> None:
    services, _, _ = dial_lab
    engine = services.engine
    repo = engine.repository
    assert repo is not None
    # the network: the customer answers after a second and talks 4 s; the lab agent stays 20 s
    for name, value in (("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1), ("SIM_TALK_MIN", 4), ("SIM_TALK_MAX", 4),
                        ("LAB_TALK", 20)):
        reactor_thread.call(services.ami.send, actions.setvar(name, value), timeout=10)
    now = datetime.now(UTC)
    earlier = reactor_thread.call(repo.create_call_record, NewCallRecord(
        started_at=now - timedelta(hours=2), direction="inbound", phone=CUSTOMER, agent_id="2101", queue="hotline",
        customer_name="Lab customer", follow_up_at=now - timedelta(minutes=5)), site_prefix="GD")
    due = reactor_thread.call(repo.follow_ups_due, "2101", until=now + timedelta(hours=1))
    assert [r.ticket_number for r in due] == [earlier.ticket_number]

    status, body = call_api("127.0.0.1", services.http_port, "POST", "agents/2101/call", {"phone": CUSTOMER},
                            token=services.api_token)
    assert status == 400 and "logged out" in body["error"], body  # an agent logs in first
    reactor_thread.call(engine.agent_service.login, "2101", ["outbound"], timeout=10)
    reactor_thread.wait_for(lambda: engine.agents.state_of("2101").value == "ready", timeout=10,
                            message="agent 2101 never became ready")
    shown: list[str] = []  # what the network's called party is shown as the caller (sim-pstn's SIM_FROM)
    reactor_thread.call(services.ami.subscribe, lambda msg: shown.append(msg.fields.get("Value") or "")
                        if msg.fields.get("Variable") == "SIM_FROM" else None, "VarSet")
    status, body = call_api("127.0.0.1", services.http_port, "POST", "agents/2101/call",
                            {"phone": CUSTOMER, "name": "Lab customer", "customer_id": None}, token=services.api_token)
    assert (status, body) == (200, {"agent": "2101", "action": "call", "phone": CUSTOMER, "ok": True}), body
    # on a call of their own (AgentBusy): the dialer does not count the agent ready meanwhile
    reactor_thread.wait_for(lambda: engine.agents.state_of("2101").value == "on_call", timeout=15,
                            message="agent 2101 never on their own call")

    reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=40, message="no call record written")
    reactor_thread.wait_for(lambda: engine.agents.state_of("2101").value == "ready", timeout=15,
                            message="agent 2101 not ready again after the call (AgentFree)")
    reactor_thread.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    records = reactor_thread.call(repo.list_recent_call_records, limit=5)
    record = next(r for r in records if r.id != earlier.id)
    assert (record.direction, record.agent_id, record.phone, record.customer_name) == (
        "outbound", "2101", CUSTOMER, "Lab customer"), record
    assert record.queue is None and record.description == "" and record.ended_at is not None
    assert 3 <= (record.talk_seconds or 0) <= 8, record  # "hello" and the customer's 4 s
    assert engine.screen_pops["2101"] == record.linkedid
    # the customer is shown the agent's own id, as from the softphone: not their own name or number
    assert shown == ["2101|"], shown
    (recording,) = reactor_thread.call(repo.list_recordings_for_call, record.id)
    assert recording.agent_id == "2101" and recording.size_bytes > 44, recording
    assert Path(recording.path).exists(), recording.path  # on the host, as the engine filed it
    # called back: the follow-up is done
    assert reactor_thread.call(repo.follow_ups_due, "2101", until=datetime.now(UTC) + timedelta(hours=1)) == []


@pytest.fixture
def softphone_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                  ) -> Iterator[tuple[EngineServices, LabHandle, Any]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, lab_agents=False) as lab:  # PJSIP agents
        yield lab


def test_a_number_dialed_on_the_softphone_is_the_agents_own_call(
        softphone_lab: tuple[EngineServices, LabHandle, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    """A customer's number entering [from-agents] from agent 2101's PJSIP endpoint (as a number
    typed on the softphone does) goes to [agent-dial]: the agent is read from the endpoint's name,
    and the call gets its record and recording like a click-to-call."""
    services, handle, secrets = softphone_lab
    engine = services.engine
    repo = engine.repository
    assert repo is not None
    network_people(services, reactor_thread, 3)
    phone = Softphone("2101", handle.ports.sip, secrets.sip_secret("2101"), workdir=tmp_path / "sipp",
                      avoid_ports=handle.ports.all_ports())
    try:
        assert phone.register().ok
        phone.answer_calls(1, hold_seconds=15, pcap=G711A_PCAP, timeout=60)
        action = actions.originate("PJSIP/agent2101", context="from-agents", exten=CUSTOMER, priority=1,
                                   timeout_ms=20000)
        response: Any = reactor_thread.call(services.ami.originate, action, timeout=30)
        assert response.get("Response") == "Success", response
        reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=40, message="no call record written")
        reactor_thread.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    finally:
        phone.stop()
    (record,) = reactor_thread.call(repo.list_recent_call_records, limit=5)
    assert (record.direction, record.agent_id, record.phone, record.queue) == ("outbound", "2101", CUSTOMER, None)
    assert 2 <= (record.talk_seconds or 0) <= 8, record
    (recording,) = reactor_thread.call(repo.list_recordings_for_call, record.id)
    assert recording.agent_id == "2101" and Path(recording.path).exists()


def test_agents_calling_each_other_are_both_on_a_call(
        softphone_lab: tuple[EngineServices, LabHandle, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    """Agent 2101 calls agent 2102 (4 digits in [from-agents]): the board has both on a call while
    it lasts, so the dialer counts neither ready, and both ready again after it."""
    services, handle, secrets = softphone_lab
    engine = services.engine
    phones = [Softphone(agent, handle.ports.sip, secrets.sip_secret(agent), workdir=tmp_path / f"sipp{agent}",
                        avoid_ports=handle.ports.all_ports()) for agent in ("2101", "2102")]
    try:
        for phone in phones:
            assert phone.register().ok
            phone.answer_calls(1, hold_seconds=8, pcap=G711A_PCAP, timeout=60)
        for agent in ("2101", "2102"):
            reactor_thread.call(engine.agent_service.login, agent, ["outbound"], timeout=10)
        reactor_thread.wait_for(lambda: {engine.agents.state_of(a).value for a in ("2101", "2102")} == {"ready"},
                                timeout=10, message="the agents never became ready")
        action = actions.originate("PJSIP/agent2101", context="from-agents", exten="2102", priority=1,
                                   timeout_ms=20000)
        response: Any = reactor_thread.call(services.ami.originate, action, timeout=30)
        assert response.get("Response") == "Success", response
        reactor_thread.wait_for(
            lambda: {engine.agents.state_of(a).value for a in ("2101", "2102")} == {"on_call"}, timeout=15,
            message="the two agents were never both on the call")
        reactor_thread.wait_for(
            lambda: {engine.agents.state_of(a).value for a in ("2101", "2102")} == {"ready"}, timeout=30,
            message="the agents not ready again after their call")
    finally:
        for phone in phones:
            phone.stop()
    assert engine.records_written == 0  # a call between agents is not a customer's: no call record
