"""Hot reload of dialer.yaml: valid edits applied and logged, bad ones rejected once, old settings kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from callcenter.dialer.config import DialerConfig, load_dialer_config
from callcenter.dialer.reload import (
    ConfigWatcher,
    FileSnapshot,
    blocking_reader,
    read_snapshot,
    thread_reader,
)

CONFIG = """\
dialer:
  trunk: "Local/{phone}@sim-pstn"
  pacing:
    min_ratio: 1.0
    max_ratio: 3.0
  campaigns:
    spring:
      caller_id: "4008001234"
      safe_harbor_message: custom/dialer/safe-harbor-zh
"""


def _with(old: str, new: str, text: str = CONFIG) -> str:
    assert text.count(old) == 1
    return text.replace(old, new)


class Harness:
    """A watcher on a real file in tmp_path, a fake clock, and captured logs and applies."""

    def __init__(self, tmp_path: Path, on_change: Any = None, read: Any = blocking_reader) -> None:
        self.path = tmp_path / "dialer.yaml"
        self.path.write_text(CONFIG, encoding="utf-8")
        self.clock = Clock()
        self.events: list[dict[str, Any]] = []
        self.applied: list[DialerConfig] = []
        self.initial = load_dialer_config(self.path, source="dialer.yaml")
        self.watcher = ConfigWatcher(
            self.path, self.initial, on_change or self.applied.append, self.clock, read,
            interval=1.0, log=Logger(namespace="test.dialer", observer=self.events.append),
        )

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")

    def logged(self, level: LogLevel | None = None) -> list[str]:
        return [formatEvent(e) for e in self.events if level is None or e["log_level"] == level]

    def tick(self, seconds: int = 1) -> None:
        for _ in range(seconds):
            self.clock.advance(1.0)


def test_unchanged_file_applies_and_logs_nothing(tmp_path: Path) -> None:
    """The first check reads the file the daemon started with: nothing to apply, nothing to say."""
    h = Harness(tmp_path)
    h.watcher.start()
    h.tick(3)
    assert h.applied == []
    assert h.logged() == []
    assert h.watcher.current is h.initial
    assert h.watcher.source == "dialer.yaml"


def test_valid_edit_is_applied_and_logged_with_the_diff(tmp_path: Path) -> None:
    """Editing max_ratio hands the new settings to on_change within a tick and logs old -> new."""
    h = Harness(tmp_path)
    h.watcher.start()
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    h.tick()
    assert len(h.applied) == 1
    assert h.applied[0].pacing.settings.max_ratio == 2.0
    assert h.applied[0].campaign("spring").pacing.settings.max_ratio == 2.0
    assert h.watcher.current is h.applied[0]
    assert h.logged() == ["dialer.config_reloaded dialer.yaml: dialer.pacing.max_ratio: 3.0 -> 2.0"]
    h.tick(3)
    assert len(h.applied) == 1  # applied once, not on every poll


def test_invalid_edit_is_rejected_once_then_a_valid_edit_applies(tmp_path: Path) -> None:
    """A bad edit logs every located problem once, keeps the old settings; the next good edit applies."""
    h = Harness(tmp_path)
    h.watcher.start()
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 0.5\n    max_ratoi: 2\n"))
    h.tick()
    assert h.applied == []
    assert h.watcher.current is h.initial
    assert h.logged(LogLevel.error) == [
        ("dialer.config_rejected dialer.yaml: keeping the settings in use\n"
        "dialer.yaml:5:5: dialer.pacing.max_ratio: expected a number in 1.0..10.0, got 0.5\n"
        "dialer.yaml:6:5: dialer.pacing.max_ratoi: unknown setting (did you mean 'max_ratio'?)"),
    ]
    h.tick(5)
    os.utime(h.path, ns=(1, 1))  # touched, same content: not a new edit
    h.tick(2)
    assert len(h.events) == 1
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 0.7\n"))  # another bad edit: said again
    h.tick()
    assert len(h.logged(LogLevel.error)) == 2
    assert "got 0.7" in h.logged(LogLevel.error)[1]
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.5\n"))
    h.tick()
    assert [c.pacing.settings.max_ratio for c in h.applied] == [2.5]
    assert h.logged(LogLevel.info) == ["dialer.config_reloaded dialer.yaml: dialer.pacing.max_ratio: 3.0 -> 2.5"]


def test_an_edit_the_rest_of_the_site_refuses_is_rejected_as_at_start_up(tmp_path: Path) -> None:
    """The watcher checks an edit against the site's queues as start-up does
    (``validate_against``): a campaign sent to a queue that does not exist, or to the
    hotline (whose waiting callers go to a message), is rejected, the old settings kept
    (before, only the file's own rules were checked: such an edit was applied live)."""
    from callcenter.dialer.config import validate_against
    from callcenter.settings import load_settings

    settings = load_settings(Path(__file__).resolve().parents[2] / "config")
    h = Harness(tmp_path)
    h.watcher = ConfigWatcher(h.path, h.initial, h.applied.append, h.clock, blocking_reader, interval=1.0,
                              log=Logger(namespace="test.dialer", observer=h.events.append),
                              validate=lambda config: validate_against(config, settings))
    h.watcher.start()
    h.write(_with('      caller_id: "4008001234"\n', '      caller_id: "4008001234"\n      queue: outbond\n'))
    h.tick()
    assert h.applied == [] and h.watcher.current is h.initial
    (rejected,) = h.logged(LogLevel.error)
    assert rejected.startswith("dialer.config_rejected dialer.yaml: keeping the settings in use\ndialer.yaml:")
    assert "unknown queue 'outbond'" in rejected
    h.write(_with('      caller_id: "4008001234"\n', '      caller_id: "4008001234"\n      queue: hotline\n'))
    h.tick()
    assert h.applied == [] and "hotline" in h.logged(LogLevel.error)[-1]
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))  # a good edit still applies
    h.tick()
    assert [c.pacing.settings.max_ratio for c in h.applied] == [2.0]


def test_edit_within_the_same_mtime_is_seen_by_its_hash(tmp_path: Path) -> None:
    """Two writes of the same size and the same mtime_ns still count as an edit (content hash)."""
    h = Harness(tmp_path)
    first = _with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n")
    second = _with("    max_ratio: 3.0\n", "    max_ratio: 2.5\n")
    assert len(first) == len(second)
    h.write(first)
    stamp = 1_700_000_000_000_000_000
    os.utime(h.path, ns=(stamp, stamp))
    h.watcher.check_now()
    h.write(second)
    os.utime(h.path, ns=(stamp, stamp))
    h.watcher.check_now()
    assert [c.pacing.settings.max_ratio for c in h.applied] == [2.0, 2.5]


def test_deleted_file_keeps_the_old_settings_and_logs_once(tmp_path: Path) -> None:
    """A missing file is logged once; when it comes back with an edit, the edit applies."""
    h = Harness(tmp_path)
    h.watcher.start()
    h.path.unlink()
    h.tick(4)
    assert h.logged(LogLevel.warn) == [
        "dialer.config_unreadable dialer.yaml: No such file or directory; keeping the settings in use",
    ]
    assert h.watcher.current is h.initial
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    h.tick()
    assert h.logged(LogLevel.info) == [
        "dialer.config_readable dialer.yaml",
        "dialer.config_reloaded dialer.yaml: dialer.pacing.max_ratio: 3.0 -> 2.0",
    ]
    assert h.watcher.current.pacing.settings.max_ratio == 2.0


def test_unreadable_path_keeps_the_old_settings(tmp_path: Path) -> None:
    """A directory where the file should be (unreadable for anyone, root too) is logged, not applied."""
    h = Harness(tmp_path)
    h.path.unlink()
    h.path.mkdir()
    h.watcher.check_now()
    h.watcher.check_now()
    assert h.logged() == ["dialer.config_unreadable dialer.yaml: Is a directory; keeping the settings in use"]
    assert h.applied == []


def test_reverting_a_rejected_edit_is_logged_not_applied(tmp_path: Path) -> None:
    """Going back to the content in use after a bad edit says so and calls nothing."""
    h = Harness(tmp_path)
    h.watcher.check_now()
    h.write("dialer: [")
    h.watcher.check_now()
    assert len(h.logged(LogLevel.error)) == 1
    h.write(CONFIG)
    h.watcher.check_now()
    assert h.logged(LogLevel.info) == ["dialer.config_restored dialer.yaml: back to the settings in use"]
    assert h.applied == []


def test_edit_that_changes_no_setting_is_noted(tmp_path: Path) -> None:
    """A comment-only edit is acknowledged without calling on_change."""
    h = Harness(tmp_path)
    h.watcher.check_now()
    h.write("# ratios tuned on Monday\n" + CONFIG)
    h.watcher.check_now()
    assert h.applied == []
    assert h.logged() == ["dialer.config_unchanged dialer.yaml: edited, no setting changed"]


def test_non_utf8_content_is_rejected_with_its_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a rejected edit located at the bad byte."""
    h = Harness(tmp_path)
    h.path.write_bytes(CONFIG.encode() + b"# caf\xe9\n")
    h.watcher.check_now()
    assert h.logged(LogLevel.error) == [
        ("dialer.config_rejected dialer.yaml: keeping the settings in use\n"
        "dialer.yaml:10:6: not UTF-8 text: invalid continuation byte; save the file as UTF-8"),
    ]
    assert h.applied == []


def test_a_gbk_edit_is_rejected_at_its_character(tmp_path: Path) -> None:
    """A file saved as GBK (Notepad) is a rejected edit located at its first Chinese character."""
    h = Harness(tmp_path)
    h.path.write_bytes(_with("  campaigns:\n", "  campaigns:  # 春季\n").encode("gbk"))
    h.watcher.check_now()
    assert h.logged(LogLevel.error) == [
        ("dialer.config_rejected dialer.yaml: keeping the settings in use\n"
        "dialer.yaml:6:17: not UTF-8 text: invalid start byte; save the file as UTF-8"),
    ]
    assert h.applied == [] and h.watcher.current == h.initial


@pytest.mark.parametrize(("line", "problem"), [
    ("    max_ratio: 2026-02-30\n", ("dialer.yaml:5:16: dialer.pacing.max_ratio: '2026-02-30' is not a valid date "
                                   "(day is out of range for month); write it in quotes if it is text")),
    ('    max_ratio: !!float "x"\n', "dialer.yaml:5:16: dialer.pacing.max_ratio: 'x' is not a valid number"),
    ("    max_ratio: .nan\n", ("dialer.yaml:5:5: dialer.pacing.max_ratio: expected a finite number in 1.0..10.0, "
                             "got nan")),
])
def test_a_value_yaml_cannot_build_or_a_nan_is_a_located_rejection(tmp_path: Path, line: str, problem: str) -> None:
    """A bad date, a bad tagged value or .nan is a rejected edit with file, line and key, not a traceback."""
    h = Harness(tmp_path)
    h.write(_with("    max_ratio: 3.0\n", line))
    h.watcher.check_now()
    assert h.logged(LogLevel.error) == [f"dialer.config_rejected dialer.yaml: keeping the settings in use\n{problem}"]
    assert h.logged(LogLevel.critical) == []
    assert h.applied == [] and h.watcher.current == h.initial


def test_failing_on_change_keeps_the_old_settings(tmp_path: Path) -> None:
    """If applying raises, the new settings are not current and the same content is not retried."""
    calls: list[DialerConfig] = []

    def explode(config: DialerConfig) -> None:
        calls.append(config)
        raise RuntimeError("pacer refused")

    h = Harness(tmp_path, on_change=explode)
    h.watcher.start()
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    h.tick(3)
    assert len(calls) == 1
    assert h.watcher.current is h.initial
    failures = [e for e in h.events if "log_failure" in e]
    assert [formatEvent(e) for e in failures] == ["dialer.config_apply_failed dialer.yaml: keeping the settings in use"]
    assert failures[0]["log_failure"].getErrorMessage() == "pacer refused"


def test_deferred_on_change_is_waited_for(tmp_path: Path) -> None:
    """A Deferred from on_change holds the check (no overlapping applies); its failure is logged."""
    pending: list[Deferred[None]] = []

    def apply(config: DialerConfig) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        pending.append(d)
        return d

    h = Harness(tmp_path, on_change=apply)
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    done: list[str] = []
    h.watcher.check_now().addCallback(lambda _: done.append("first"))
    assert done == []
    h.watcher.check_now().addCallback(lambda _: done.append("second"))  # waits for the first
    assert done == []
    assert len(pending) == 1
    pending[0].errback(Failure(RuntimeError("database down")))
    assert sorted(done) == ["first", "second"]
    assert h.watcher.current.pacing.settings.max_ratio == 2.0
    assert [formatEvent(e) for e in h.events if "log_failure" in e] == [
        "dialer.config_apply_failed dialer.yaml: the new settings are in use, applying them failed",
    ]


def test_checks_do_not_overlap_while_a_read_is_pending(tmp_path: Path) -> None:
    """A slow read (thread pool busy) holds the loop: one read at a time, waiters fire together."""
    reads: list[Deferred[FileSnapshot]] = []

    def slow_read(path: Path) -> Deferred[FileSnapshot]:
        d: Deferred[FileSnapshot] = Deferred()
        reads.append(d)
        return d

    h = Harness(tmp_path, read=slow_read)
    h.watcher.start()
    h.tick(5)
    assert len(reads) == 1  # the loop's first check is still reading
    done: list[None] = []
    h.watcher.check_now().addCallback(done.append)
    h.watcher.check_now().addCallback(done.append)
    assert len(reads) == 1
    assert done == []
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    reads[0].callback(read_snapshot(h.path))
    assert done == [None, None]
    assert [c.pacing.settings.max_ratio for c in h.applied] == [2.0]


def test_service_starts_and_stops_polling_without_leaking_calls(tmp_path: Path) -> None:
    """startService polls on the injected clock; stopService leaves no delayed call behind."""
    h = Harness(tmp_path)
    h.watcher.startService()
    assert h.watcher.polling
    assert len(h.clock.getDelayedCalls()) == 1
    stopped = h.watcher.stopService()
    assert stopped.called
    assert not h.watcher.polling
    assert h.clock.getDelayedCalls() == []
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    h.tick(3)
    assert h.applied == []  # stopped: no more reads


def test_unexpected_reader_errors_are_logged_and_polling_goes_on(tmp_path: Path) -> None:
    """A bug in the reader is logged; the loop keeps running and the next edit applies."""
    calls = [0]

    def flaky(path: Path) -> Deferred[FileSnapshot]:
        calls[0] += 1
        if calls[0] == 2:
            return fail(RuntimeError("reader bug"))
        return succeed(read_snapshot(path))

    h = Harness(tmp_path, read=flaky)
    h.watcher.start()
    h.tick()
    assert [formatEvent(e) for e in h.events] == ["dialer.config_check_failed dialer.yaml"]
    h.write(_with("    max_ratio: 3.0\n", "    max_ratio: 2.0\n"))
    h.tick()
    assert h.watcher.polling
    assert [c.pacing.settings.max_ratio for c in h.applied] == [2.0]


def test_read_snapshot_identifies_the_version(tmp_path: Path) -> None:
    """The snapshot's identity is (mtime_ns, size, sha256 of the bytes)."""
    path = tmp_path / "f.yaml"
    path.write_bytes(b"abc")
    os.utime(path, ns=(5, 7))
    snap = read_snapshot(path)
    assert snap.identity == (7, 3, hashlib.sha256(b"abc").hexdigest())
    assert snap.data == b"abc"


def test_thread_reader_reads_on_the_pool(tmp_path: Path) -> None:
    """thread_reader runs the read on the thread pool and delivers it through callFromThread."""
    path = tmp_path / "f.yaml"
    path.write_bytes(b"dialer: {}\n")
    delivered: list[Any] = []

    class Reactor:
        def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
            f(*args, **kwargs)

    pool = ThreadPool(minthreads=1, maxthreads=1, name="test-reload")
    pool.start()
    try:
        d = thread_reader(Reactor(), pool)(path)  # type: ignore[arg-type]
        d.addCallback(delivered.append)
        missing = thread_reader(Reactor(), pool)(tmp_path / "gone.yaml")  # type: ignore[arg-type]
        errors: list[Failure] = []
        missing.addErrback(errors.append)
    finally:
        pool.stop()  # joins the worker: both reads have finished
    assert [s.data for s in delivered] == [b"dialer: {}\n"]
    assert len(errors) == 1
    assert isinstance(errors[0].value, FileNotFoundError)


def test_interval_must_be_positive(tmp_path: Path) -> None:
    """A zero interval would spin: refused with the parameter's name."""
    path = tmp_path / "dialer.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_dialer_config(path)
    with pytest.raises(ValueError, match="interval: must be more than 0 seconds, got 0"):
        ConfigWatcher(path, config, lambda c: None, Clock(), blocking_reader, interval=0)
