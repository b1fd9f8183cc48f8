"""Telling a waiting caller their place, on the real lab Asterisk 22 (queues.yaml
``announce_position``, ``announce_holdtime``, ``announce_every``; docs/ivr.md, "Telling
callers their place").

The hotline's only agent is paused, so a caller waits (a paused agent does not make the
queue empty). With announcements every 5 s, Asterisk plays its own ``queue-youarenext`` to
the first caller in line; its log (``messages.log``, verbose) says so. Without
``announce_every`` the same caller hears none: the frequency is what turns them on.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("every", [5, 0])
def test_a_waiting_caller_hears_their_place(every: int, lab_factory: LabFactory, reactor_thread: ReactorThread,
                                            tmp_path: Path) -> None:
    change = hotline_open(tmp_path, announce_position=bool(every), announce_holdtime=bool(every),
                          announce_every=every)
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, handle, _):
        rt, engine = reactor_thread, services.engine
        _log_in(services, rt, "1001", "hotline", 5)
        rt.call(engine.agent_service.pause, "1001", "meeting", timeout=10)
        rt.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10, message="1001 not paused")
        _hotline_caller(services, rt, "Waiting", "13800000780", seconds=25, csat="5")
        rt.wait_for(lambda: engine.queues.waiting("hotline") == 1, timeout=20,
                    message="the caller never waited in the hotline queue")
        deadline = time.monotonic() + 12
        log = ""
        while time.monotonic() < deadline and "queue-youarenext" not in log:
            time.sleep(0.5)
            log = handle.instance.messages_log.read_text(errors="replace")
        if every:
            assert "Playing 'queue-youarenext" in log, "no position announcement in 12 s of waiting"
        else:
            assert "queue-youarenext" not in log
