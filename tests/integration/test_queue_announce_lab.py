"""Telling a waiting caller their place, on the real lab Asterisk 22 (queues.yaml
``announce_position``, ``announce_holdtime``, ``announce_every``; docs/ivr.md, "Telling
callers their place").

The hotline's only agent is paused, so a caller waits (a paused agent does not make the
queue empty). With announcements every 5 s, Asterisk plays its own ``queue-youarenext`` to
the first caller in line; its log (``messages.log``, verbose) says so. Without
``announce_every`` the same caller hears none: the frequency is what turns them on.

The announcements speak the caller's language: the IVR sets the channel's language to the
one the caller chose, and ``callcenter prompts build`` renders Asterisk's queue sounds and
numbers in Mandarin (Debian ships English only). Which file Asterisk opens is read from its
open file descriptors while it plays (its log names the sound, not the file it found).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.test_transfer_lab import _hotline_caller, _log_in
from tests.labengine import engine_on_lab, hotline_open
from tests.labfixture import LabFactory, sounds_opened, zh_asterisk_sounds
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


def test_announcements_speak_the_callers_language(lab_factory: LabFactory, reactor_thread: ReactorThread,
                                                  tmp_path: Path) -> None:
    """Two callers wait; the first chose English and hears Debian's queue-youarenext, the second
    chose Mandarin and hears its place in line from the rendered zh sounds: queue-thereare, the
    number 2 (Asterisk's Chinese number syntax: digits/2) and queue-callswaiting. Neither
    presses a key while waiting (a key would cut the announcement short)."""
    built = zh_asterisk_sounds(tmp_path)
    change = hotline_open(tmp_path, announce_position=True, announce_every=5)
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change) as (services, handle, _):
        assert handle.instance.runtime.install_sounds(built) >= 0
        rt, engine = reactor_thread, services.engine
        _log_in(services, rt, "1001", "hotline", 5)
        rt.call(engine.agent_service.pause, "1001", "meeting", timeout=10)
        rt.wait_for(lambda: engine.agents.state_of("1001").value == "paused", timeout=10, message="1001 not paused")
        pid = handle.instance.pid()
        assert pid is not None
        with sounds_opened(pid) as seen:
            _hotline_caller(services, rt, "English", "13800000781", seconds=45, csat="", language_key="2")
            rt.wait_for(lambda: engine.queues.waiting("hotline") == 1, timeout=20,
                        message="the English caller never waited in the hotline queue")
            _hotline_caller(services, rt, "Mandarin", "13800000782", seconds=45, csat="", language_key="1")
            rt.wait_for(lambda: engine.queues.waiting("hotline") == 2, timeout=20,
                        message="the Mandarin caller never waited in the hotline queue")
            wanted = {"zh/queue-thereare.wav", "zh/digits/2.wav", "zh/queue-callswaiting.wav"}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (wanted <= seen and any(
                    name.endswith("queue-youarenext.gsm") for name in seen.copy())):  # the watcher adds
                time.sleep(0.2)
        assert wanted <= seen, f"zh announcement files opened: {sorted(seen)}"
        # Debian's English sounds (sounds/en is a link: the file's own path is shown)
        assert any(name.endswith("queue-youarenext.gsm") for name in seen), sorted(seen)
        assert not any(name.endswith("queue-thereare.gsm") for name in seen), sorted(seen)
        log = handle.instance.messages_log.read_text(errors="replace")
        assert "Playing 'queue-thereare." in log and "(language 'zh')" in log
