"""The other recording formats on the real lab Asterisk 22: ``recordings.format`` gsm and wav49
(callcenter/recording_files.py).

A hotline call is recorded in each, and its recording row must be filed with the file's
length. Asterisk names a wav49 file ``.WAV`` (the format's first extension), so the
dialplans build the name from the extension: with ``.wav49`` the file was ``.WAV`` and the
engine never found it (no recording row, never purged). The length comes from the file's
size (raw GSM: 33 bytes per 20 ms) or its WAV header (GSM in WAV: 65 bytes per 40 ms); it
must match the call's time from the answer to the hangup, which MixMonitor records.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.settings import Settings
from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.mark.parametrize(("fmt", "suffix"), [("gsm", ".gsm"), ("wav49", ".WAV")])
def test_a_call_recorded_in_gsm_is_filed_with_its_length(fmt: str, suffix: str, lab_factory: LabFactory,
                                                         reactor_thread: ReactorThread, tmp_path: Path) -> None:
    opened = hotline_open(tmp_path)

    def change(settings: Settings) -> Settings:
        settings = opened(settings)
        return replace(settings, recordings=replace(settings.recordings, format=fmt))

    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, _, _):
        rt, engine = reactor_thread, services.engine
        repository = engine.repository
        assert repository is not None
        _log_in(services, rt, "1001", "hotline", 5)
        _hotline_caller(services, rt, "Recorded caller", "13800000778", seconds=20, csat="5")
        rt.wait_for(lambda: engine.records_written >= 1, timeout=60, message="no call record written")
        (record,) = rt.call(repository.list_recent_call_records, limit=5)
        recordings: list[Any] = []
        deadline = time.monotonic() + 15
        while not recordings and time.monotonic() < deadline:
            time.sleep(0.5)
            recordings = rt.call(repository.list_recordings_for_call, record.id)
        assert len(recordings) == 1, f"the {fmt} recording was not filed: {recordings}"
        (recording,) = recordings
        assert Path(recording.path).suffix == suffix and Path(recording.path).is_file()
        assert recording.format == fmt and recording.size_bytes == Path(recording.path).stat().st_size
        assert record.answered_at is not None and record.ended_at is not None
        call_seconds = (record.ended_at - record.answered_at).total_seconds()
        assert call_seconds > 8  # the IVR, the agent's 5 s, the survey
        assert abs(recording.duration_seconds - call_seconds) < 1.5, (recording.duration_seconds, call_seconds)
