"""Recording retention: delete recordings older than ``recordings.retention_days``.

Run by ``callcenter recordings purge`` (from cron or a systemd timer). Each expired
recording's file is deleted and its row marked purged (``purged_at``), so reports still
show that a call was recorded and when the recording was destroyed. A file already gone
is still marked; a file that cannot be deleted is reported and its row left unpurged, to
be retried next time. The job pages through the expired recordings oldest first, each page
after the last recording of the one before (``started_at``, then ``id``), so the files it
cannot delete never stop it from reaching the newer ones, and ``--dry-run`` lists them all.
This is a blocking job (CLI context), never run on the reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from callcenter.storage.repository import (
    list_recordings_older_than,
    mark_recording_purged,
)

__all__ = ["PURGE_BATCH", "PurgeReport", "purge_recordings"]

PURGE_BATCH = 500
"""Recordings read per page."""


@dataclass
class PurgeReport:
    """What a purge did."""

    purged: int = 0
    missing: int = 0
    bytes_freed: int = 0
    failed: list[str] = field(default_factory=list)


def purge_recordings(
    sessions: sessionmaker[Session],
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PurgeReport:
    """Delete the files of recordings older than ``days`` and mark their rows purged; each
    expired recording is looked at once."""
    now = now or datetime.now(UTC)
    report = PurgeReport()
    after: tuple[datetime, int] | None = None
    while True:
        with sessions.begin() as session:
            batch = list_recordings_older_than(session, days, now=now, limit=PURGE_BATCH, after=after)
        if not batch:
            return report
        after = (batch[-1].started_at, batch[-1].id)
        for recording in batch:
            path = Path(recording.path)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = None
            if dry_run:
                if progress:
                    progress(f"would purge {path} ({'missing' if size is None else f'{size} bytes'})")
                continue
            try:
                if size is not None:
                    path.unlink()
            except OSError as exc:
                report.failed.append(f"{path}: {exc.strerror}")
                continue
            with sessions.begin() as session:
                mark_recording_purged(session, recording.id, purged_at=now)
            if size is None:
                report.missing += 1
            else:
                report.bytes_freed += size
            report.purged += 1
            if progress:
                progress(f"purged {path}")
