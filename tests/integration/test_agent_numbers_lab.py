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

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _hotline_caller
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread
from tests.softphones import G711A_PCAP, Softphone

pytestmark = pytest.mark.lab

CUSTOMER = "19900030018"  # sim-pstn: 1990003... answers as a person


@pytest.fixture
def numbers_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                ) -> Iterator[tuple[EngineServices, Any, Any]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path), lab_agents=False) as lab:
        assert lab[0].engine.settings.privacy.agent_numbers == "masked"
        yield lab  # PJSIP agents


def _rings_the_agent(lab: tuple[EngineServices, Any, Any], rt: ReactorThread, tmp_path: Path, agent: str,
                     queue: str, place_call: Callable[[], object], *, hold_seconds: int) -> tuple[Any, Any]:
    """``agent``'s softphone registers and answers one call (``hold_seconds``), the agent logs
    in to ``queue``, ``place_call()`` places the call; (what the phone saw, the call's record)."""
    services, handle, secrets = lab
    engine = services.engine
    phone = Softphone(agent, handle.ports.sip, secrets.sip_secret(agent), workdir=tmp_path / f"sipp{agent}",
                      avoid_ports=handle.ports.all_ports())
    try:
        assert phone.register().ok
        phone.answer_calls(1, hold_seconds=hold_seconds, pcap=G711A_PCAP, timeout=90)
        rt.call(engine.agent_service.login, agent, [queue], timeout=10)
        rt.wait_for(lambda: engine.agents.state_of(agent).value == "ready", timeout=10,
                    message=f"agent {agent} never became ready")
        place_call()
        rt.wait_for(lambda: engine.records_written >= 1, timeout=80, message="no call record written")
        answered = phone.wait_answered(timeout=20)
    finally:
        phone.stop()
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    assert engine.repository is not None
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    return answered, record


def _shown_masked(answered: Any, number: str, shown: str) -> None:
    """The phone answered one call whose INVITE showed ``shown``, and no SIP message it
    received carries ``number`` in any header."""
    assert answered.answered == 1
    (invite,) = [m for m in answered.messages if m.direction == "received" and m.method == "INVITE"]
    assert shown in (invite.header("From") or ""), invite.header("From")
    carried = [f"{m.start_line} / {name}: {value}" for m in answered.messages if m.direction == "received"
               for name, value in m.headers if number in value]
    assert carried == []


def test_a_hotline_caller_rings_the_agents_phone_with_the_number_masked(
        numbers_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    services, rt = numbers_lab[0], reactor_thread
    answered, record = _rings_the_agent(
        numbers_lab, rt, tmp_path, "1001", "hotline", hold_seconds=4,
        place_call=lambda: _hotline_caller(services, rt, "13912340087", "13912340087", seconds=60, csat="5"))
    _shown_masked(answered, "13912340087", "139****0087")
    assert (record.phone, record.agent_id) == ("13912340087", "1001")  # the record keeps it whole


def test_the_agents_own_call_rings_their_phone_with_the_number_masked(
        numbers_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    services, rt = numbers_lab[0], reactor_thread
    for name, value in (("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1), ("SIM_TALK_MIN", 4), ("SIM_TALK_MAX", 4)):
        rt.call(services.ami.send, actions.setvar(name, value), timeout=10)
    answered, record = _rings_the_agent(
        numbers_lab, rt, tmp_path, "2101", "outbound", hold_seconds=10,
        place_call=lambda: rt.call(services.engine.agent_service.call, "2101", CUSTOMER, timeout=10))
    _shown_masked(answered, CUSTOMER, "199****0018")
    assert (record.phone, record.agent_id, record.direction) == (CUSTOMER, "2101", "outbound")
    assert 3 <= (record.talk_seconds or 0) <= 8, record  # the customer answered and talked


def test_a_dialer_customer_rings_the_agents_phone_as_the_lead_with_the_number_masked(
        numbers_lab: tuple[EngineServices, Any, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    """A lead who answered (the lab network's person, put into [dialer-answered] as the dialer
    does, without AMD) is queued to 2101: the phone shows the lead's name and masked number,
    not the campaign's caller id."""
    services, rt = numbers_lab[0], reactor_thread
    lead = "19900030019"
    for name, value in (("SIM_RING_MIN", 1), ("SIM_RING_MAX", 1), ("SIM_TALK_MIN", 8), ("SIM_TALK_MAX", 8)):
        rt.call(services.ami.send, actions.setvar(name, value), timeout=10)
    answered_call = actions.originate(
        f"Local/{lead}@sim-pstn/n", context="dialer-answered", exten="s", priority=1, caller_id="Campaign <4001234567>",
        timeout_ms=20000, variables={"CC_QUEUE": "outbound", "CC_AMD": 0, "CC_CONNECT_TIMEOUT": 10,
                                     "CC_PHONE": lead, "CC_CUSTOMER_NAME": "Lead Li", "CC_DIRECTION": "outbound",
                                     "CC_CAMPAIGN": "lab", "CC_LEAD": 1, "CC_ATTEMPT": 1})
    answered, _ = _rings_the_agent(
        numbers_lab, rt, tmp_path, "2101", "outbound", hold_seconds=4,
        place_call=lambda: rt.call(services.ami.originate, answered_call, timeout=30))
    _shown_masked(answered, lead, '"Lead Li" <sip:199****0019@')
