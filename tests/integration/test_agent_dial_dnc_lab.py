"""With ``manual_dial.do_not_call: block``, a number typed on the softphone is checked too.

Agent 2101's SIPp softphone (a PJSIP endpoint) answers an Originate into [from-agents] with a
customer's number, as a number typed on the phone arrives there. [agent-dial] asks the
engine (FastAGI ``agent-dial-check``) first: a listed number hears "cannot be completed as
dialed" and is never dialed on the trunk; a number not listed is called as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.ami.codec import Message
from callcenter.service import EngineServices
from callcenter.settings import Settings
from callcenter.storage import dialer as dialer_store
from tests.labengine import engine_on_lab, network_people
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread
from tests.softphones import G711A_PCAP, Softphone

pytestmark = pytest.mark.lab

LISTED = "19900030017"   # sim-pstn: 1990003... answers as a person
NOT_LISTED = "19900030018"


@pytest.fixture
def block_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
              ) -> Iterator[tuple[EngineServices, LabHandle, Any]]:
    def change(settings: Settings) -> Settings:
        return replace(settings, manual_dial=replace(settings.manual_dial, do_not_call="block"))

    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change, lab_agents=False) as lab:
        yield lab


def test_a_listed_number_typed_on_the_softphone_is_not_called(
        block_lab: tuple[EngineServices, LabHandle, Any], reactor_thread: ReactorThread, tmp_path: Path) -> None:
    services, handle, secrets = block_lab
    rt = reactor_thread
    engine = services.engine
    repo = engine.repository
    assert repo is not None
    rt.call(repo.run, dialer_store.add_dnc, [LISTED], source="customer", reason="asked not to be called",
            now=datetime.now(UTC))
    network_people(services, rt, 3)
    trunk_dials: list[str] = []

    def watch(msg: Message) -> None:
        if msg.name == "Newchannel" and "@sim-pstn" in (msg.fields.get("Channel") or ""):
            trunk_dials.append(msg.fields.get("Exten") or msg.fields.get("Channel") or "")

    rt.call(lambda: services.ami.subscribe(watch))
    phone = Softphone("2101", handle.ports.sip, secrets.sip_secret("2101"), workdir=tmp_path / "sipp",
                      avoid_ports=handle.ports.all_ports())
    sample: Any = services.registry.get_sample_value
    try:
        assert phone.register().ok
        phone.answer_calls(2, hold_seconds=12, pcap=G711A_PCAP, timeout=90)
        action = actions.originate("PJSIP/agent2101", context="from-agents", exten=LISTED, priority=1,
                                   timeout_ms=20000)
        assert rt.call(services.ami.originate, action, timeout=30).get("Response") == "Success"
        rt.wait_for(lambda: sample("callcenter_agent_dials_refused_total", {"reason": "do_not_call"}) == 1.0,
                    timeout=15, message="the listed number was not refused")
        time.sleep(4)  # long enough for the trunk to have been dialed, were it
        assert trunk_dials == [] and engine.records_written == 0
        # a number not on the list goes through the same check and is called
        action = actions.originate("PJSIP/agent2101", context="from-agents", exten=NOT_LISTED, priority=1,
                                   timeout_ms=20000)
        assert rt.call(services.ami.originate, action, timeout=30).get("Response") == "Success"
        rt.wait_for(lambda: engine.records_written >= 1, timeout=40, message="no call record written")
        rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    finally:
        phone.stop()
    assert len(trunk_dials) >= 1
    (record,) = rt.call(repo.list_recent_call_records, limit=5)
    assert (record.direction, record.agent_id, record.phone) == ("outbound", "2101", NOT_LISTED)
    assert sample("callcenter_agi_sessions_total", {"script": "agent-dial-check"}) == 2.0
