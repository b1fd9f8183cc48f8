"""The IVR's transfer on the real lab Asterisk: a number that does not answer drops no caller.

A hotline flow whose main entry transfers the caller (``kind: transfer``) to a number of the
lab's simulated network: ``[hotline]`` dials it (``CC_TRANSFER``) and, busy, queues the
caller instead of hanging up on them; the hotline agent (1001, a Local lab agent) takes the
call. A transfer that is answered is the far end's call: the caller is not queued after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from callcenter.settings import Settings
from tests.integration.test_transfer_lab import _log_in
from tests.labengine import engine_on_lab, network_people
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

BUSY, PERSON = "19900010001", "19900030001"  # sim-pstn: busy at once; answers as a person


def _transfer_flow(tmp_path: Path, target: str) -> Callable[[Settings], Settings]:
    flow = tmp_path / f"transfer-{target}.yaml"
    flow.write_text(f"""\
flow: transfer_test
languages: [zh]
entries: {{main: out}}
fallback: out
prompts: {{}}
nodes:
  out:
    kind: transfer
    target: "Local/{target}@sim-pstn"
""", encoding="utf-8")

    def change(settings: Settings) -> Settings:
        return replace(settings, ivr=replace(settings.ivr, hotline_flow=flow, sounds_dir=tmp_path / "sounds"))

    return change


@pytest.fixture(params=[BUSY, PERSON], ids=["busy", "answered"])
def transfer_target(request: pytest.FixtureRequest, lab_factory: LabFactory, reactor_thread: ReactorThread,
                    tmp_path: Path) -> Iterator[tuple[EngineServices, str]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path,
                       change=_transfer_flow(tmp_path, request.param)) as (services, _, _):
        yield services, request.param


def test_an_ivr_transfer_nobody_answers_queues_the_caller(transfer_target: tuple[EngineServices, str],
                                                         reactor_thread: ReactorThread) -> None:
    (services, target), rt = transfer_target, reactor_thread
    engine = services.engine
    network_people(services, rt, 3)
    _log_in(services, rt, "1001", "hotline", 4)
    action = actions.originate("Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                               caller_id="Transfer caller <13855556666>", timeout_ms=20000,
                               variables={"LAB_SECONDS": 20})
    assert rt.call(services.ami.originate, action, timeout=30).get("Response") == "Success"
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    assert engine.repository is not None
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    if target == BUSY:  # not dropped: queued, and the hotline agent took the call
        assert (record.agent_id, record.queue, record.queue_result) == ("1001", "hotline", "answered"), record
        assert (record.talk_seconds or 0) >= 2, record
    else:  # answered by the number transferred to, who talked: never queued, no agent
        assert (record.agent_id, record.queue_result) == (None, None), record
        assert (record.talk_seconds or 0) >= 2, record
        assert engine.agents.state_of("1001").value == "ready"
