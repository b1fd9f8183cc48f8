"""An agent pauses the recording while the customer reads out a card number, on the real lab
Asterisk 22 (docs/agents.md, "Pausing the recording").

The hotline caller ([lab-message-caller]) picks Mandarin and an agent, and once agent 1001
(a Local channel) talks with them, speaks for 16.2 s (tt-monkeys). Five seconds into that,
1001 pauses the recording (AMI ``MixMonitorMute`` on the caller's channel, which records the
call), and resumes it five seconds later. Asterisk reports both (``MixMonitorMute`` events);
the call's one WAV file keeps its length, with silence (zero samples) for the pause between
the caller's words before and after it.
"""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.service import EngineServices
from tests.integration.test_transfer_lab import _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def pause_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path) -> Iterator[EngineServices]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=hotline_open(tmp_path)) as (services, _, _):
        yield services


def _zero_runs(path: Path) -> list[tuple[float, float]]:
    """Runs of exact silence (zero samples) of a second or more, as (start, end) seconds."""
    with wave.open(str(path), "rb") as wav:
        rate, width = wav.getframerate(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    assert width == 2
    runs, start = [], None
    for index, value in enumerate(memoryview(frames).cast("h")):
        if value == 0:
            start = index if start is None else start
            continue
        if start is not None and index - start >= rate:
            runs.append((start / rate, index / rate))
        start = None
    return runs


def test_the_agent_pauses_the_recording_then_resumes_it(pause_lab: EngineServices,
                                                        reactor_thread: ReactorThread) -> None:
    services, rt = pause_lab, reactor_thread
    engine = services.engine
    assert engine.repository is not None
    _log_in(services, rt, "1001", "hotline", 60)
    action = actions.originate(
        "Local/400@from-pstn/n", context="lab-message-caller", exten="s", priority=1,
        caller_id="Card holder <13877770000>", timeout_ms=20000,
        variables={"LAB_DELAY": 2, "LAB_DTMF": "1", "LAB_DELAY2": 3, "LAB_DTMF2": "0", "LAB_DELAY3": 4})
    response: Any = rt.call(services.ami.originate, action, timeout=30)
    assert response.get("Response") == "Success"
    rt.wait_for(lambda: engine.agents.state_of("1001").value == "on_call", timeout=40,
                message="agent 1001 never took the call")
    linkedid = engine.screen_pops["1001"]
    time.sleep(5)  # the caller has started speaking (4 s after the 0, the agent answered at once)
    rt.call(engine.agent_service.pause_recording, "1001", timeout=10)
    rt.wait_for(lambda: engine.recording_pauses.of_call(linkedid) is not None, timeout=5,
                message="Asterisk reported no muted recording")
    paused = engine.recording_pauses.of_call(linkedid)
    assert paused is not None and paused.channel.startswith("Local/400@from-pstn-")  # the caller's records
    time.sleep(5)
    resumed_at = engine.clock.seconds()
    rt.call(engine.agent_service.resume_recording, "1001", timeout=10)
    rt.wait_for(lambda: engine.recording_pauses.of_call(linkedid) is None, timeout=5,
                message="Asterisk reported no unmuted recording")
    assert services.registry.get_sample_value("callcenter_recording_pauses_total") == 1.0
    rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
    rt.wait_for(lambda: engine.writes_pending == 0, timeout=10, message="record writes still pending")
    (record,) = rt.call(engine.repository.list_recent_call_records, limit=5)
    deadline = time.monotonic() + 10
    recordings: list[Any] = []
    while not recordings and time.monotonic() < deadline:
        time.sleep(0.5)
        recordings = rt.call(engine.repository.list_recordings_for_call, record.id)
    (recording,) = recordings
    # where the pause falls in the file (it starts with the call), give or take a second
    began = recording.started_at.timestamp()
    paused_at, resumed = paused.since - began, resumed_at - began
    runs = _zero_runs(Path(recording.path))
    muted = [(start, end) for start, end in runs if abs(start - paused_at) <= 1.0]
    assert len(muted) == 1, (runs, paused_at, resumed)
    start, end = muted[0]
    assert abs(end - resumed) <= 1.0 and end - start >= 4.0, (muted, paused_at, resumed)
    # the row keeps where the pause was (for the QA reviewer)
    ((kept_start, kept_end),) = recording.pauses
    assert abs(kept_start - paused_at) <= 0.2 and abs(kept_end - resumed) <= 0.5, (recording.pauses, paused_at)
    # the caller was speaking before the pause and after it (tt-monkeys: 16.2 s from about 2 s before)
    assert not any(s <= paused_at - 1.0 and e >= paused_at for s, e in runs), runs
    assert not any(s <= resumed + 0.5 <= e for s, e in runs if (s, e) != muted[0]), runs
