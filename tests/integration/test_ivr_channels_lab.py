"""The IVR's channels on the real lab Asterisk (``ivr.channels``, GROUP ``hotline@ivr``).

With one IVR channel: a caller in the menus holds it; a second caller meanwhile skips the
menus, is queued at once and talks to an agent (its record's IVR path is ``ivr=full``); once
the first has left and the second, still talking, has given its channel back, a third caller
gets the menus again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.demo import open_around_the_clock
from callcenter.engine import IVR_FULL
from callcenter.service import EngineServices
from callcenter.settings import Settings
from tests.labengine import ROOT, engine_on_lab
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def one_ivr_channel(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
                    ) -> Iterator[EngineServices]:
    flow = open_around_the_clock(ROOT / "ivr_flows/hotline.yaml", tmp_path / "open.yaml")

    def change(settings: Settings) -> Settings:
        return replace(settings, ivr=replace(settings.ivr, hotline_flow=flow, sounds_dir=tmp_path / "sounds",
                                             channels=1))

    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, _, _):
        yield services


def _caller(services: EngineServices, reactor_thread: ReactorThread, number: str, seconds: int) -> Any:
    """A caller who dials the hotline, presses nothing and hangs up after ``seconds``."""
    action = actions.originate("Local/400@from-pstn/n", context="lab-caller", exten="s", priority=1,
                               caller_id=f"Caller <{number}>", timeout_ms=20000,
                               variables={"LAB_SECONDS": seconds, "LAB_DELAY": seconds})
    return reactor_thread.call(services.ami.originate, action, timeout=30)


def test_callers_beyond_the_ivr_channels_skip_the_menus_and_are_queued(one_ivr_channel: EngineServices,
                                                                       reactor_thread: ReactorThread) -> None:
    services = one_ivr_channel
    engine = services.engine
    reactor_thread.call(services.ami.send, actions.setvar("LAB_TALK", 25))  # the agent talks 25 s
    reactor_thread.call(services.ami.send, actions.command("devstate change Custom:agent1001 NOT_INUSE"))
    reactor_thread.call(engine.agent_service.login, "1001", ["hotline"])
    reactor_thread.wait_for(lambda: engine.agents.state_of("1001").value == "ready", timeout=10,
                            message="agent 1001 did not log in")
    assert _caller(services, reactor_thread, "13900000101", 14).get("Response") == "Success"  # in the menus
    time.sleep(2)
    assert _caller(services, reactor_thread, "13900000102", 40).get("Response") == "Success"  # finds it taken
    reactor_thread.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=15,
                            message="the second caller was not queued to the agent at once")
    reactor_thread.wait_for(lambda: engine.records_written >= 1, timeout=30,
                            message="the first caller's record was not written")
    # the first caller has gone; the second, still talking, gave its channel back after the script
    assert _caller(services, reactor_thread, "13900000103", 4).get("Response") == "Success"
    reactor_thread.wait_for(lambda: engine.records_written >= 2, timeout=30,
                            message="the third caller's record was not written")
    assert engine.repository is not None
    records = {r.phone: r for r in reactor_thread.call(engine.repository.list_recent_call_records, limit=5)}
    assert IVR_FULL not in records["13900000101"].ivr_path, records["13900000101"]
    assert IVR_FULL not in records["13900000103"].ivr_path, records["13900000103"]
    talking = records["13900000102"]
    assert (talking.ivr_path, talking.agent_id, talking.ended_at) == ((IVR_FULL,), "1001", None), talking
    # only the second caller found the IVR full: the third had its channel back
    assert services.registry.get_sample_value("callcenter_ivr_full_total") == 1.0
    assert services.registry.get_sample_value("callcenter_agi_sessions_total", {"script": "hotline"}) == 3.0
