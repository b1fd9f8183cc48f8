"""After hours on the real call path: the engine walks the hotline flow's closed branch.

The whole engine (``make_service``) runs against a lab Asterisk built from the project's
files. The hotline flow is a copy of ``ivr_flows/hotline.yaml`` whose business hours say
``closed`` every day, so any call is after hours whatever time CI runs. The caller asks
for a call back on its own number (1 in the after-hours menu, 1 in the call-back menu):
the call never reaches the queue, and its call record shows the closed branch and the
choices, with the call-back request handed to the dialplan; the shipped dialer
configuration's ``callbacks_campaign`` gets the request as a lead carrying the ticket, for
an agent to preview the next morning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.demo import flow_with_hours
from callcenter.service import EngineServices
from tests.labengine import call_and_message, callback_leads_when, engine_on_lab
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def after_hours_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    closed = flow_with_hours(ROOT / "ivr_flows/hotline.yaml", tmp_path / "closed.yaml", "closed")
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, dialer_config=ROOT / "config" / "dialer.yaml",
                       change=lambda settings: replace(settings, ivr=replace(
                           settings.ivr, hotline_flow=closed, sounds_dir=tmp_path / "sounds"))) as (services, _, _):
        yield services


def test_after_hours_caller_requests_a_call_back(after_hours_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """Closed hours: notice, after-hours menu (1), call back on the caller's number (1), no queue."""
    services = after_hours_lab
    engine = services.engine
    action = actions.originate(
        "Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
        caller_id="Night caller <13912345678>", timeout_ms=20000,
        variables={"LAB_SECONDS": 60, "LAB_REPEAT_DTMF": "1"},  # presses 1 every 2 s
    )
    response: Any = reactor_thread.call(services.ami.originate, action, timeout=30)
    assert response.get("Response") == "Success"
    reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=60,
                            message="no call record written for the after-hours call")
    assert engine.repository is not None
    records = reactor_thread.call(engine.repository.list_recent_call_records, limit=5)
    assert len(records) == 1
    record = records[0]
    assert record.phone == "13912345678"
    assert "closed_notice" in record.ivr_path
    assert "after_hours_menu=1" in record.ivr_path and "callback_menu=1" in record.ivr_path
    assert record.outcome == "callback requested: 13912345678"  # the number is stored for the call back
    assert record.agent_id is None and record.talk_seconds == 0  # never queued to an agent
    assert not any(a.state.value == "ringing" for a in engine.agents.agents())

    # The request is a lead of the callbacks campaign, with the caller's ticket.
    found = callback_leads_when(services, reactor_thread)  # the lead is written after the record
    assert found == [("13912345678", {"ticket": record.ticket_number})]


def test_after_hours_caller_leaves_a_message(after_hours_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    """Closed hours: language (1), after-hours menu (2: leave a message), a beep, the caller
    speaks and hangs up. The record has the message as a second file next to the call's
    recording, and a call back is asked for the caller's number (the callbacks campaign)."""
    services = after_hours_lab
    engine = services.engine
    assert engine.repository is not None
    action = actions.originate(
        "Local/400@from-pstn/n", context="lab-message-caller", exten="s", priority=1,
        caller_id="Night caller <13912345679>", timeout_ms=20000,
        variables={"LAB_DELAY": 2, "LAB_DTMF": "1", "LAB_DELAY2": 3, "LAB_DTMF2": "2", "LAB_DELAY3": 4},
    )
    response: Any = reactor_thread.call(services.ami.originate, action, timeout=30)
    assert response.get("Response") == "Success"
    reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=60,
                            message="no call record written for the message")
    (record,) = reactor_thread.call(engine.repository.list_recent_call_records, limit=5)
    assert "after_hours_menu=2" in record.ivr_path and "voicemail" in record.ivr_path, record.ivr_path
    assert record.outcome == "message left; callback requested: 13912345679"
    assert record.agent_id is None
    call, message = call_and_message(services, reactor_thread, record.id)
    assert Path(message.path).exists(), message
    assert 8 <= message.duration_seconds <= 16.5, message  # the caller's words (16.2 s), not the menus
    assert call.duration_seconds > message.duration_seconds
    found = callback_leads_when(services, reactor_thread)  # the lead is written after the record
    assert found == [("13912345679", {"ticket": record.ticket_number})]
