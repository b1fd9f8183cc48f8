"""Hot reload of ``config/dialer.yaml``: poll the file, apply valid edits, reject bad ones.

:class:`ConfigWatcher` owns the reload policy; it is a Twisted ``Service`` so the
composition root attaches it to its ``MultiService``. Every ``interval`` seconds on the
injected clock it reads the file and

- when the content is new and valid, hands the new :class:`DialerConfig` to
  ``on_change`` and logs ``dialer.config_reloaded`` with each changed setting
  (``dialer.pacing.max_ratio: 3.0 -> 2.0``, from :func:`describe_changes`);
- when it is invalid, logs ``dialer.config_rejected`` with every located problem and
  keeps the settings in use; the same bad content is not logged again, only a new edit;
- when the file is missing or unreadable, logs ``dialer.config_unreadable`` once and
  keeps the settings in use.

A change is seen by the file's (mtime_ns, size, sha256 of the content): the content
hash catches an edit within the same mtime tick, and a ``touch`` that leaves the content
as it was applies or logs nothing.

Reading a file is blocking I/O, so the watcher never reads on the reactor thread itself:
it calls an injected ``read(path) -> Deferred[FileSnapshot]``. The daemon passes
:func:`thread_reader` (stat and read on a thread pool via ``deferToThreadPool``); tests
pass :func:`blocking_reader`, which reads synchronously and needs no threads. Parsing and
validating (small, CPU only) happen on the reactor thread.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from callcenter.dialer.config import DialerConfig, describe_changes, parse_dialer_config
from callcenter.settings import ConfigError, ConfigProblem

__all__ = [
    "ConfigWatcher",
    "FileSnapshot",
    "SnapshotReader",
    "blocking_reader",
    "read_snapshot",
    "thread_reader",
]

_log: Final = Logger(namespace="callcenter.dialer")


@dataclass(frozen=True)
class FileSnapshot:
    """A file's content and the stat fields that identify a version of it."""

    mtime_ns: int
    size: int
    sha256: str
    data: bytes

    @property
    def identity(self) -> tuple[int, int, str]:
        """(mtime_ns, size, sha256): differs whenever the file was written or touched."""
        return (self.mtime_ns, self.size, self.sha256)


SnapshotReader = Callable[[Path], Deferred[FileSnapshot]]
"""Reads a file without blocking the reactor; fails with ``OSError`` if it cannot."""


def read_snapshot(path: Path) -> FileSnapshot:
    """Read ``path`` (blocking): stat of the open file, then its content and hash."""
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        data = handle.read()
    return FileSnapshot(stat.st_mtime_ns, len(data), hashlib.sha256(data).hexdigest(), data)


def thread_reader(reactor: IReactorFromThreads, threadpool: ThreadPool) -> SnapshotReader:
    """A reader that runs :func:`read_snapshot` on ``threadpool`` (the daemon's choice)."""

    def read(path: Path) -> Deferred[FileSnapshot]:
        return deferToThreadPool(reactor, threadpool, read_snapshot, path)

    return read


def blocking_reader(path: Path) -> Deferred[FileSnapshot]:
    """Read on the calling thread: for tests and tools without a running reactor."""
    try:
        return succeed(read_snapshot(path))
    except OSError:
        return fail()


class ConfigWatcher(Service):
    """Re-reads the dialer configuration when the file changes and applies valid edits.

    ``initial`` is the configuration in use (loaded at start-up, where an error is
    fatal). ``on_change`` is called with each accepted new configuration, on the reactor
    thread. If it raises, the new configuration is not taken (logged as
    ``dialer.config_apply_failed``) and that content is not retried until edited again.
    If it returns a Deferred, the check waits for it; a failure is logged as
    ``dialer.config_apply_failed`` and the new configuration stays current (the callee
    took it).
    """

    def __init__(
        self,
        path: Path,
        initial: DialerConfig,
        on_change: Callable[[DialerConfig], object],
        clock: IReactorTime,
        read: SnapshotReader,
        *,
        interval: float = 1.0,
        source: str | None = None,
        log: Logger | None = None,
        validate: Callable[[DialerConfig], Sequence[ConfigProblem]] = lambda config: (),
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval: must be more than 0 seconds, got {interval}")
        self.path = path
        self.source = source if source is not None else (initial.source or str(path))
        self.interval = interval
        self._current = initial
        self._on_change = on_change
        self._validate = validate
        """Problems only the rest of the site's configuration reveals (``validate_against``: an
        unknown queue...): an edit with any is rejected as a parse error is."""
        self._read = read
        self._log = log or _log
        self._loop = LoopingCall(self.check_now)
        self._loop.clock = clock
        self._seen: tuple[int, int, str] | None = None
        self._applied: str | None = None  # sha256 of the content ``current`` came from
        self._rejected: str | None = None  # sha256 of the last bad content (logged once)
        self._read_error: str | None = None  # the last read error logged
        self._inflight: Deferred[None] | None = None
        self._waiting: list[Deferred[None]] = []

    @property
    def current(self) -> DialerConfig:
        """The configuration in use: the initial one or the last accepted edit."""
        return self._current

    @property
    def polling(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._loop.running

    def start(self) -> None:
        """Check now, then every ``interval`` seconds."""
        if not self._loop.running:
            self._loop.start(self.interval, now=True).addErrback(self._loop_failed)

    def stop(self) -> Deferred[None]:
        """Stop polling; the Deferred fires once a check in progress has finished."""
        if self._loop.running:
            self._loop.stop()
        return self._after_inflight()

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        return self.stop()

    def check_now(self) -> Deferred[None]:
        """Read the file and apply, reject or ignore it; fires when done, never fails.

        A call while a check is in progress waits for that check instead of starting
        another.
        """
        if self._inflight is not None:
            return self._after_inflight()
        inflight: Deferred[None] = maybeDeferred(self._read, self.path).addCallbacks(self._got, self._unreadable)
        inflight.addErrback(self._unexpected)
        self._inflight = inflight  # cleared by _finished, at once if the check was synchronous
        inflight.addBoth(self._finished)
        return inflight

    def _after_inflight(self) -> Deferred[None]:
        if self._inflight is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter

    def _finished(self, result: None) -> None:
        self._inflight = None
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)

    def _got(self, snapshot: FileSnapshot) -> Deferred[None] | None:
        if self._read_error is not None:
            self._log.info("dialer.config_readable {source}", source=self.source)
            self._read_error = None
        if snapshot.identity == self._seen:
            return None
        self._seen = snapshot.identity
        digest = snapshot.sha256
        if digest == self._rejected:
            return None  # the same bad content, touched: logged already
        if digest == self._applied:
            if self._rejected is not None:
                self._log.info("dialer.config_restored {source}: back to the settings in use", source=self.source)
                self._rejected = None
            return None
        try:
            config = parse_dialer_config(snapshot.data, self.source)  # bad UTF-8 is a located problem too
            problems = self._validate(config)  # what start-up refuses, a running daemon refuses too
            if problems:
                raise ConfigError(problems)
        except ConfigError as exc:
            self._rejected = digest
            self._log.error("dialer.config_rejected {source}: keeping the settings in use\n{error}",
                            source=self.source, error=str(exc), problems=len(exc.problems))
            return None
        changes = describe_changes(self._current, config)
        if not changes:
            if self._applied is not None or self._rejected is not None:
                self._log.info("dialer.config_unchanged {source}: edited, no setting changed", source=self.source)
            self._applied, self._rejected = digest, None
            return None
        try:
            applying = self._on_change(config)
        except Exception:  # noqa: BLE001 - on_change is the caller's code: any error keeps the old settings
            self._rejected = digest
            self._log.failure("dialer.config_apply_failed {source}: keeping the settings in use", source=self.source)
            return None
        self._current = config
        self._applied, self._rejected = digest, None
        self._log.info("dialer.config_reloaded {source}: {summary}",
                       source=self.source, summary="; ".join(changes), changes=len(changes))
        if isinstance(applying, Deferred):
            return applying.addCallbacks(lambda _: None, self._apply_failed)
        return None

    def _apply_failed(self, failure: Failure) -> None:
        self._log.failure("dialer.config_apply_failed {source}: the new settings are in use, "
                          "applying them failed", failure, source=self.source)

    def _unreadable(self, failure: Failure) -> Failure | None:
        error = failure.value
        if not isinstance(error, OSError):
            return failure
        message = error.strerror or str(error)
        if message != self._read_error:
            self._read_error = message
            self._log.warn("dialer.config_unreadable {source}: {error}; keeping the settings in use",
                           source=self.source, error=message)
        return None

    def _unexpected(self, failure: Failure) -> None:
        self._log.failure("dialer.config_check_failed {source}", failure, source=self.source)

    def _loop_failed(self, failure: Failure) -> None:
        self._log.failure("dialer.config_watch_stopped {source}", failure, source=self.source)
