"""The fax service: files the faxes the dialplan reports, places the faxes to send (docs/fax.md).

The rules (parsing the ``CCFax`` event, checking pages) are in :mod:`callcenter.fax`.
"""

from __future__ import annotations

import shutil
import uuid
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
    FaxBusy,
    FaxRecord,
    FaxResult,
    check_tiff,
    check_tiff_bytes,
    parse_fax_event,
)
from callcenter.storage.records import canonical_phone
from callcenter.storage.repository import add_outgoing_fax, file_fax

__all__ = ["FaxService"]

_log = Logger(namespace="callcenter.fax")


class FaxService(Service):
    """Files the faxes the dialplan reports and sends faxes (``fax`` in callcenter.yaml).

    ``ami`` gives ``subscribe`` and ``originate``; ``repository`` ``run`` (the page copy, file
    sizes and :func:`~callcenter.storage.repository.add_outgoing_fax` / ``file_fax`` run
    together in its thread pool) and ``list_faxes``; ``recordings`` (:class:`~callcenter.engine.RecordingPaths`)
    maps paths between Asterisk and this host (faxes live under the recordings directory, in
    ``fax/``); ``trunk`` overrides ``fax.trunk`` (the lab dials its simulated network).
    """

    def __init__(self, settings: Any, ami: Any, repository: Any, clock: Any, recordings: Any, *,
                 trunk: str | None = None, metrics: Any = None) -> None:
        self.settings = settings
        self.ami = ami
        self.repository = repository
        self.clock = clock
        self.recordings = recordings
        self.trunk = trunk or settings.fax.trunk
        self.metrics = metrics
        self.sending: set[str] = set()
        """Outgoing faxes placed and not yet reported."""
        self._subscription: Any = None

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        for sub in ("in", "out"):  # ReceiveFAX does not create directories
            (self.recordings.host_dir / "fax" / sub).mkdir(parents=True, exist_ok=True)
        self._subscription = self.ami.subscribe(self.on_event, "UserEvent")

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    def on_event(self, msg: Message) -> None:
        """File the fax a ``CCFax`` event reports."""
        result = parse_fax_event(msg)
        if result is not None:
            self._file(result)

    def _file(self, result: FaxResult) -> None:
        """Log, count and store how a fax ended (a failure to write is logged, never raised)."""
        self.sending.discard(result.fax_id)
        host = self.recordings.to_host(result.path) if result.path else None
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
        if self.metrics is not None:
            self.metrics.faxes.labels(result.direction, result.status).inc()
        _log.info("fax.{direction} id={fax_id} number={number} status={status} pages={pages} error={error}",
                  direction=result.direction, fax_id=result.fax_id, number=result.number, status=result.status,
                  pages=result.pages, error=result.error)

        def measure_and_file(session: Any) -> FaxRecord:  # in the repository's thread pool: stat and SQL
            size = host.stat().st_size if host is not None and host.is_file() else 0
            return file_fax(session, result, str(host) if host is not None else "", size, now)

        def failed(failure: Failure) -> None:
            _log.failure("fax.store_failed id={fax_id}", failure, fax_id=result.fax_id)

        self.repository.run(measure_and_file).addErrback(failed)

    def send(self, number: str, page: Path | bytes) -> Deferred[FaxRecord]:
        """Send the TIFF ``page`` (a file on this host, or its bytes) to ``number``; the record
        comes back once the page is copied and logged (status ``SENDING``), the result later.
        InvalidFieldError names a bad ``number`` (raised), ``tiff`` (bytes: raised) or
        ``file`` (the Deferred fails); :class:`FaxBusy` (raised) when every fax channel is in use."""
        to = canonical_phone(number, "to")
        if isinstance(page, bytes):
            check_tiff_bytes(page)
        if len(self.sending) >= self.settings.fax.channels:
            raise FaxBusy(f"all {self.settings.fax.channels} fax channels are in use; try again in a minute")
        fax_id = uuid.uuid4().hex
        self.sending.add(fax_id)  # the channel is taken now: a second send meanwhile counts it
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
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
            if response.get("Response") == "Success":
                return  # answered: the dialplan reports the fax from its hangup handler
            reason = (outcome_of_reason(response.get("Reason")) or "failed").upper()
            ended_unsent(reason, f"the call was not answered ({reason.lower()})")

        def lost(failure: Failure) -> None:
            _log.failure("fax.originate_failed id={fax_id}", failure, fax_id=fax_id)
            ended_unsent("FAILED", f"the call could not be placed: {failure.getErrorMessage()}")

        def copy_and_log(session: Any) -> FaxRecord:  # in the repository's thread pool: file I/O and SQL
            copy.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(page, bytes):
                copy.write_bytes(page)
            else:
                check_tiff(page)
                shutil.copyfile(page, copy)
            return add_outgoing_fax(session, fax_id, to, str(copy), copy.stat().st_size, now)

        def originate(record: FaxRecord) -> FaxRecord:
            self.ami.originate(action, timeout=self.settings.fax.ring_seconds + 30).addCallbacks(placed, lost)
            return record

        def not_stored(failure: Failure) -> Failure:
            self.sending.discard(fax_id)
            return failure

        result: Deferred[FaxRecord] = self.repository.run(copy_and_log).addCallbacks(originate, not_stored)
        return result

    def recent(self, limit: int) -> Deferred[list[FaxRecord]]:
        """The newest faxes, received and sent."""
        result: Deferred[list[FaxRecord]] = self.repository.list_faxes(limit=limit)
        return result
