"""Customers' numbers masked on the agents' SIP softphones, on the real lab Asterisk
(``privacy.agent_numbers: masked``, shipped; docs/agents.md, "Customers' numbers").

Agents are SIPp softphones over PJSIP. A hotline caller queued to agent 1001 rings the phone
with ``138****...`` in the INVITE's From (Queue()'s pre-dial handler ``[cc-agent-display]``),
and the agent's own call from the page (the engine's Originate into ``[agent-dial]``) rings
2101's phone with the customer's number masked, and the customer's answer does not pass the
number on (Dial's ``I``). No SIP message the phones receive carries the whole number, and
the calls are recorded with it as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _hotline_caller
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread
from tests.softphones import G711A_PCAP, SipMessage, Softphone

pytestmark = pytest.mark.lab

CUSTOMER = "19900030018"  # sim-pstn: 1990003... answers as a person


@pytest.fixture
def numbers_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                ) -> Iterator[tuple[EngineServices, Any, Any]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path), lab_agents=False) as lab:
        assert lab[0].engine.settings.privacy.agent_numbers == "masked"
        yield lab  # PJSIP agents


def _seen(messages: list[SipMessage], number: str) -> list[str]:
    """Every received header that carries ``number``."""
    return [f"{m.start_line} / {name}: {value}" for m in messages if m.direction == "received"
            for name, value in m.headers if number in value]


def test_a_hotline_caller_rings_the_agents_phone_with_the_number_masked(
        numbers_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    services, handle, secrets = numbers_lab
    rt, engine = reactor_thread, services.engine
    phone = Softphone("1001", handle.ports.sip, secrets.sip_secret("1001"), workdir=tmp_path / "sipp1001",
                      avoid_ports=handle.ports.all_ports())
    try:
        assert phone.register().ok
        phone.answer_calls(1, hold_seconds=4, pcap=G711A_PCAP, timeout=90)
        rt.call(engine.agent_service.login, "1001", ["hotline"], timeout=10)
        rt.wait_for(lambda: engine.agents.state_of("1001").value == "ready", timeout=10,
                    message="agent 1001 never became ready")
        _hotline_caller(services, rt, "13912340087", "13912340087", seconds=60, csat="5")
        rt.wait_for(lambda: engine.records_written >= 1, timeout=80, message="no call record written")
        answered = phone.wait_answered(timeout=20)
    finally:
        phone.stop()
    assert answered.answered == 1
    (invite,) = [m for m in answered.messages if m.direction == "received" and m.method == "INVITE"]
    assert "139****0087" in (invite.header("From") or ""), invite.header("From")
    assert _seen(answered.messages, "13912340087") == []
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    assert engine.repository is not None
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id) == ("13912340087", "1001")  # the record keeps it whole


def test_the_agents_own_call_rings_their_phone_with_the_number_masked(
        numbers_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    services, handle, secrets = numbers_lab
    rt, engine = reactor_thread, services.engine
    for name, value in (("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1), ("SIM_TALK_MIN", 4), ("SIM_TALK_MAX", 4)):
        rt.call(services.ami.send, actions.setvar(name, value), timeout=10)
    phone = Softphone("2101", handle.ports.sip, secrets.sip_secret("2101"), workdir=tmp_path / "sipp2101",
                      avoid_ports=handle.ports.all_ports())
    try:
        assert phone.register().ok
        phone.answer_calls(1, hold_seconds=10, pcap=G711A_PCAP, timeout=60)
        rt.call(engine.agent_service.login, "2101", ["outbound"], timeout=10)
        rt.wait_for(lambda: engine.agents.state_of("2101").value == "ready", timeout=10,
                    message="agent 2101 never became ready")
        rt.call(engine.agent_service.call, "2101", CUSTOMER, timeout=10)
        rt.wait_for(lambda: engine.records_written >= 1, timeout=40, message="no call record written")
        answered = phone.wait_answered(timeout=20)
    finally:
        phone.stop()
    assert answered.answered == 1
    (invite,) = [m for m in answered.messages if m.direction == "received" and m.method == "INVITE"]
    assert "199****0018" in (invite.header("From") or ""), invite.header("From")
    assert _seen(answered.messages, CUSTOMER) == []
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    assert engine.repository is not None
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.agent_id, record.direction) == (CUSTOMER, "2101", "outbound")
    assert 3 <= (record.talk_seconds or 0) <= 8, record  # the customer answered and talked
