"""The fax service: files the faxes the dialplan reports, places the faxes to send (docs/fax.md).

The rules (parsing the ``CCFax`` event, checking pages, how long a fax may take) are in
:mod:`callcenter.fax`. A report missed across a restart or an AMI reconnection does not leave a
fax unfiled: each fax being sent has a deadline after which it is given up (filed ``FAILED``,
its channel freed); at start-up and after every AMI (re)connection the faxes still ``SENDING``
are given up or watched again, and the received faxes in the fax inbox with no row are filed.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from callcenter.ami import actions
from callcenter.ami.codec import Message
from callcenter.dialer.calls import outcome_of_reason
from callcenter.fax import (
    NO_RESULT,
    FaxBusy,
    FaxRecord,
    FaxResult,
    check_tiff,
    check_tiff_bytes,
    found_in_inbox,
    inbox_fax_id,
    parse_fax_event,
    send_deadline,
    tiff_pages,
)
from callcenter.storage.records import canonical_phone
from callcenter.storage.repository import (
    add_found_faxes,
    add_outgoing_fax,
    file_fax,
    filed_fax_ids,
    give_up_fax,
    sending_faxes,
)

__all__ = ["FaxService"]

_log = Logger(namespace="callcenter.fax")

FAX_IN_CONTEXT = "fax-in"
"""The dialplan context receiving faxes (dialplans/fax.conf)."""

_ENDED_UNSEEN = f"{NO_RESULT}: the call ended while the engine was disconnected from AMI"


def _not_reported(placed_at: datetime, deadline: datetime) -> str:
    return f"{NO_RESULT}: not reported within {round((deadline - placed_at).total_seconds())} s of placing the call"


def _pages_of(path: Path) -> int:
    """The pages of the TIFF at ``path`` (0 if unreadable). Blocking: the thread pool only."""
    try:
        return tiff_pages(path.read_bytes())
    except OSError:
        return 0


@dataclass(frozen=True)
class _Stale:
    """What a look at the faxes still ``SENDING`` found (made in the repository's thread pool)."""

    given_up: list[FaxRecord]
    """Past their deadline: filed ``FAILED`` now."""
    watched: list[tuple[str, datetime]]
    """Not sent by this process and not past their deadline: (fax id, deadline)."""


class FaxService(Service):
    """Files the faxes the dialplan reports and sends faxes (``fax`` in callcenter.yaml).

    ``ami`` gives ``subscribe`` and ``originate``; ``repository`` ``run`` (the page copy, file
    sizes and :func:`~callcenter.storage.repository.add_outgoing_fax` / ``file_fax`` run
    together in its thread pool) and ``list_faxes``; ``recordings`` (:class:`~callcenter.engine.RecordingPaths`)
    maps paths between Asterisk and this host (faxes live under the recordings directory, in
    ``fax/``); ``trunk`` overrides ``fax.trunk`` (the lab dials its simulated network).
    ``ami`` also gives ``on_resync``: after each (re)connection the faxes whose report may have
    been missed are settled (:meth:`on_resync`).
    """

    def __init__(self, settings: Any, ami: Any, repository: Any, clock: Any, recordings: Any, *,
                 trunk: str | None = None, metrics: Any = None, calls: Any = None) -> None:
        self.settings = settings
        self.calls = calls
        """The engine's :class:`~callcenter.state.calls.CallState` (None: unknown): faxes being
        received (channels in ``[fax-in]``) take fax channels too."""
        self.ami = ami
        self.repository = repository
        self.clock = clock
        self.recordings = recordings
        self.trunk = trunk or settings.fax.trunk
        self.metrics = metrics
        self.sending: set[str] = set()
        """Outgoing faxes placed and not yet reported (each holds a fax channel)."""
        self._deadlines: dict[str, Any] = {}
        """Fax id -> the delayed call that gives the fax up (:func:`~callcenter.fax.send_deadline`)."""
        self._calls: dict[str, str] = {}
        """Fax id -> the uniqueid of its answered call, for those of :attr:`sending` answered."""
        self._looking = 0
        """Looks at the faxes still ``SENDING`` under way in the thread pool."""
        self._reported: set[str] = set()
        """Faxes reported while a look is under way (it may have read them ``SENDING``)."""
        self._subscription: Any = None
        self._resync: Any = None

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        for sub in ("in", "out"):  # ReceiveFAX does not create directories
            (self.recordings.host_dir / "fax" / sub).mkdir(parents=True, exist_ok=True)
        self._subscription = self.ami.subscribe(self.on_event, "UserEvent")
        self._resync = self.ami.on_resync(self.on_resync)
        self._settle_stale()  # the fax inbox waits for the first connection's channel list

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        for handle in (self._subscription, self._resync):
            if handle is not None:
                handle.cancel()
        self._subscription = self._resync = None
        for timer in self._deadlines.values():  # the rows stay SENDING: the next start settles them
            if timer.active():
                timer.cancel()
        self._deadlines.clear()
        self._calls.clear()
        self.sending.clear()

    def on_resync(self, channels: list[Message], queue_status: list[Message]) -> None:
        """After each AMI (re)connection (``channels``: Asterisk's live channels): a fax being
        sent whose answered call is gone ended unreported (given up now), the faxes still
        ``SENDING`` that this process does not watch are given up or watched, and the received
        faxes in the fax inbox with no row, but for those still on a live channel, are filed."""
        live = {m.get("Uniqueid") or "" for m in channels} - {""}
        for fax_id, uniqueid in list(self._calls.items()):
            if uniqueid not in live:
                self._give_up(fax_id, _ENDED_UNSEEN)
        self._settle_stale()
        self._file_inbox(live)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    def _count(self, record: FaxRecord) -> None:
        if self.metrics is not None:
            self.metrics.faxes.labels(record.direction, record.status).inc()

    def _release(self, fax_id: str) -> None:
        """Free the fax channel ``fax_id`` held (if any) and stop its deadline."""
        self.sending.discard(fax_id)
        self._calls.pop(fax_id, None)
        timer = self._deadlines.pop(fax_id, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _watch(self, fax_id: str, placed_at: datetime, deadline: datetime) -> None:
        """Give the fax ``fax_id`` up at ``deadline`` unless its report comes first."""
        delay = max(0.0, deadline.timestamp() - self.clock.seconds())
        self._deadlines[fax_id] = self.clock.callLater(delay, self._give_up, fax_id,
                                                       _not_reported(placed_at, deadline))

    def _give_up(self, fax_id: str, error: str) -> None:
        """Free the channel of the fax being sent ``fax_id`` and file it ``FAILED`` with ``error``
        (unless its result was filed meanwhile; a report that still comes later replaces it)."""
        if fax_id not in self.sending:
            return
        self._release(fax_id)
        now = self._now()

        def given_up(record: FaxRecord | None) -> None:
            if record is not None:
                self._count(record)
                _log.warn("fax.outbound id={fax_id} number={number} status=FAILED error={error}",
                          fax_id=fax_id, number=record.number, error=error)

        self.repository.run(give_up_fax, fax_id, error, now).addCallback(given_up).addErrback(self._store_failed,
                                                                                             fax_id)

    @staticmethod
    def _store_failed(failure: Failure, fax_id: str) -> None:
        _log.failure("fax.store_failed id={fax_id}", failure, fax_id=fax_id)

    def _settle_stale(self) -> None:
        """Give up the faxes still ``SENDING`` past their deadline (their report was missed
        while the daemon was down or disconnected); watch the others this process does not."""
        now = self._now()
        ring = self.settings.fax.ring_seconds
        watching = set(self.sending)
        self._looking += 1

        def look(session: Any) -> _Stale:  # in the repository's thread pool: SQL and the pages' files
            given_up, watched = [], []
            for fax in sending_faxes(session):
                if fax.fax_id in watching:
                    continue
                deadline = send_deadline(fax.created_at, ring, _pages_of(Path(fax.path)))
                if deadline > now:
                    watched.append((fax.fax_id, deadline))
                    continue
                record = give_up_fax(session, fax.fax_id, _not_reported(fax.created_at, deadline), now)
                if record is not None:
                    given_up.append(record)
            return _Stale(given_up, watched)

        def settled(stale: _Stale) -> None:
            for record in stale.given_up:
                self._count(record)
                _log.warn("fax.outbound id={fax_id} number={number} status=FAILED error={error}",
                          fax_id=record.fax_id, number=record.number, error=record.error)
            for fax_id, deadline in stale.watched:
                if self.running and fax_id not in self.sending and fax_id not in self._reported:
                    self.sending.add(fax_id)  # under way on Asterisk: it holds a fax channel
                    self._watch(fax_id, now, deadline)

        def done(result: object) -> object:
            self._looking -= 1
            if not self._looking:
                self._reported.clear()
            return result

        (self.repository.run(look).addCallback(settled).addBoth(done)
         .addErrback(self._store_failed, "(stale faxes)"))

    def _file_inbox(self, live: Collection[str]) -> None:
        """File the received faxes in the fax inbox that have no row (their report was missed),
        but for those whose call is still ``live`` (a uniqueid is the fax's id)."""
        inbox = self.recordings.host_dir / "fax" / "in"

        def scan(session: Any) -> list[FaxRecord]:  # in the repository's thread pool: the directory and SQL
            files = {inbox_fax_id(p.name): p for p in inbox.glob("*.tif") if p.is_file()}
            unfiled = set(files) - set(live) - filed_fax_ids(session, list(files))
            found = []
            for fax_id in sorted(unfiled):
                path = files[fax_id]
                try:
                    stat = path.stat()
                    pages = tiff_pages(path.read_bytes())
                except OSError:
                    continue
                found.append(found_in_inbox(path.name, str(path), stat.st_size, stat.st_mtime, pages))
            return add_found_faxes(session, found)

        def filed(found: list[FaxRecord]) -> None:
            for record in found:
                self._count(record)
                _log.warn("fax.inbound id={fax_id} status={status} pages={pages} file={path} error={error}",
                          fax_id=record.fax_id, status=record.status, pages=record.pages, path=record.path,
                          error=record.error)

        self.repository.run(scan).addCallback(filed).addErrback(self._store_failed, "(fax inbox)")

    def on_event(self, msg: Message) -> None:
        """File the fax a ``CCFax`` event reports."""
        result = parse_fax_event(msg)
        if result is not None:
            self._file(result)

    def _file(self, result: FaxResult) -> None:
        """Log, count and store how a fax ended (a failure to write is logged, never raised)."""
        self._release(result.fax_id)
        if self._looking:
            self._reported.add(result.fax_id)
        host = self.recordings.to_host(result.path) if result.path else None
        now = self._now()
        if self.metrics is not None:
            self.metrics.faxes.labels(result.direction, result.status).inc()
        _log.info("fax.{direction} id={fax_id} number={number} status={status} pages={pages} error={error}",
                  direction=result.direction, fax_id=result.fax_id, number=result.number, status=result.status,
                  pages=result.pages, error=result.error)

        def measure_and_file(session: Any) -> FaxRecord:  # in the repository's thread pool: stat and SQL
            size = host.stat().st_size if host is not None and host.is_file() else 0
            return file_fax(session, result, str(host) if host is not None else "", size, now)

        self.repository.run(measure_and_file).addErrback(self._store_failed, result.fax_id)

    def receiving(self) -> int:
        """Faxes being received now: the live channels in ``[fax-in]``, but those refused
        (over the limit, hearing ``Busy()`` for 10 s: they left the fax group already)."""
        if self.calls is None:
            return 0
        return sum(1 for channel in self.calls.channels.values()
                   if channel.context == FAX_IN_CONTEXT and channel.application != "Busy")

    def send(self, number: str, page: Path | bytes) -> Deferred[FaxRecord]:
        """Send the TIFF ``page`` (a file on this host, or its bytes) to ``number``; the record
        comes back once the page is copied and logged (status ``SENDING``), the result later.
        InvalidFieldError names a bad ``number`` (raised), ``tiff`` (bytes: raised) or
        ``file`` (the Deferred fails); :class:`FaxBusy` (raised) when every fax channel is in use."""
        to = canonical_phone(number, "to")
        if isinstance(page, bytes):
            check_tiff_bytes(page)
        receiving = self.receiving()
        if len(self.sending) + receiving >= self.settings.fax.channels:
            # [fax-out] checks again once the far end answers: this saves the call to it
            raise FaxBusy(f"all {self.settings.fax.channels} fax channels are in use ({len(self.sending)} sending, "
                          f"{receiving} receiving); try again in a minute")
        fax_id = uuid.uuid4().hex
        self.sending.add(fax_id)  # the channel is taken now: a second send meanwhile counts it
        now = self._now()
        copy = self.recordings.host_dir / "fax" / "out" / f"{now:%Y%m%d-%H%M%S}-{fax_id}.tif"
        asterisk_path = self.recordings.to_asterisk(copy)
        action = actions.originate(
            self.trunk.format(phone=to), context="fax-out", exten="s", priority=1,
            caller_id=self.settings.fax.caller_id or None, timeout_ms=self.settings.fax.ring_seconds * 1000,
            variables={"CC_FAX_ID": fax_id, "CC_FAX_TO": to, "CC_FAX_FILE": asterisk_path})

        def ended_unsent(status: str, error: str) -> None:
            self._file(FaxResult(fax_id=fax_id, direction="outbound", number=to, status=status, error=error,
                                 pages=0, bitrate=0, remote_station="", path=asterisk_path))

        def placed(response: Message) -> None:
            if response.get("Response") == "Success":  # answered: the dialplan reports the fax
                if fax_id in self.sending and response.get("Uniqueid"):  # from its hangup handler
                    self._calls[fax_id] = response.get("Uniqueid") or ""
                return
            reason = (outcome_of_reason(response.get("Reason")) or "failed").upper()
            ended_unsent(reason, f"the call was not answered ({reason.lower()})")

        def lost(failure: Failure) -> None:
            _log.failure("fax.originate_failed id={fax_id}", failure, fax_id=fax_id)
            ended_unsent("FAILED", f"the call could not be placed: {failure.getErrorMessage()}")

        def copy_and_log(session: Any) -> tuple[FaxRecord, int]:  # in the repository's thread pool: file I/O, SQL
            copy.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(page, bytes):
                copy.write_bytes(page)
            else:
                check_tiff(page)
                shutil.copyfile(page, copy)
            record = add_outgoing_fax(session, fax_id, to, str(copy), copy.stat().st_size, now)
            return record, _pages_of(copy)

        def originate(logged: tuple[FaxRecord, int]) -> FaxRecord:
            record, pages = logged
            if fax_id in self.sending and self.running:  # given up if Asterisk never reports it
                self._watch(fax_id, now, send_deadline(now, self.settings.fax.ring_seconds, pages))
            self.ami.originate(action, timeout=self.settings.fax.ring_seconds + 30).addCallbacks(placed, lost)
            return record

        def not_stored(failure: Failure) -> Failure:
            self._release(fax_id)
            return failure

        result: Deferred[FaxRecord] = self.repository.run(copy_and_log).addCallbacks(originate, not_stored)
        return result

    def recent(self, limit: int) -> Deferred[list[FaxRecord]]:
        """The newest faxes, received and sent."""
        result: Deferred[list[FaxRecord]] = self.repository.list_faxes(limit=limit)
        return result
