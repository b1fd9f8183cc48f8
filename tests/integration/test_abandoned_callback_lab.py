"""A hotline caller who hangs up waiting is called back, on the real lab Asterisk 22
(docs/ivr.md, "Callers who hang up waiting").

The shipped hotline queue (``call_back_abandoned: 10``) with the shipped dialer
configuration (``callbacks_campaign: hotline-callbacks``). The only agent, 1001, is paused:
the caller picks Mandarin and an agent, hears the busy prompt, waits in the queue and hangs
up. The call's record says the caller is to be called back, and a lead of the callbacks
campaign carries the ticket and the wait. Then 1001 comes back, the same number calls again
and 1001 answers: the waiting call back is closed (``called_again``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import callback_leads_when, engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "13912340077"


@pytest.fixture
def abandon_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path),
                       dialer_config=ROOT / "config" / "dialer.yaml") as (services, _, _):
        yield services


def test_a_caller_who_hangs_up_waiting_is_called_back_until_they_get_through(
        abandon_lab: EngineServices, reactor_thread: ReactorThread) -> None:
    services, rt = abandon_lab, reactor_thread
    engine, dialer = services.engine, services.dialer
    assert engine.repository is not None and dialer is not None
    assert engine.settings.queue("hotline").call_back_abandoned == 10
    _log_in(services, rt, "1001", "hotline", 4)
    rt.call(engine.agent_service.pause, "1001", "lunch", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10, message="1001 did not pause")
    # the IVR (language, menu: ~5 s), the busy prompt (7.8 s), then about 17 s in the queue
    _hotline_caller(services, rt, "Impatient", NUMBER, seconds=30, csat="")
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    assert (record.phone, record.queue, record.queue_result, record.agent_id) == (NUMBER, "hotline", "abandoned",
                                                                                  None)
    wait = record.wait_seconds or 0
    assert 10 <= wait <= 25, record
    assert record.outcome == f"hung up, waited {wait} s in hotline; callback: {NUMBER}"
    found = callback_leads_when(services, rt)
    assert len(found) == 1, found
    phone, extra = found[0]
    assert phone == NUMBER
    assert extra["ticket"] == record.ticket_number
    assert extra["abandoned"].startswith("waited ") and extra["abandoned"].endswith(" s in hotline"), extra

    # 1001 is back; the same number calls again and gets through: no call back any more
    rt.call(engine.agent_service.unpause, "1001", timeout=10)
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "ready", timeout=10, message="1001 not ready")
    _hotline_caller(services, rt, "Impatient", NUMBER, seconds=40, csat="5")
    rt.wait_for(lambda: engine.records_written >= 2, timeout=90, message="no record for the second call")
    second = next(r for r in rt.call(engine.repository.list_recent_call_records, limit=5)
                  if r.ticket_number != record.ticket_number)
    assert second.agent_id == "1001" and (second.talk_seconds or 0) > 0, second
    found = callback_leads_when(services, rt, lambda rows: rows and "closed" in rows[0][1])
    assert found == [(NUMBER, {**extra, "closed": f"talked with an agent: {second.ticket_number}"})]
    campaign = dialer.campaigns[dialer.config.callbacks_campaign or ""]

    def final(session: object) -> list[tuple[str, str | None]]:
        from sqlalchemy import select

        from callcenter.storage import models

        rows = session.scalars(select(models.Lead).where(  # type: ignore[attr-defined]
            models.Lead.campaign_id == campaign.record.id))
        return [(row.state, row.final_outcome) for row in rows]

    assert rt.call(dialer.repository.run, final, timeout=10) == [("done", "called_again")]
