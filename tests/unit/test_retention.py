"""Recording retention: expired files deleted, rows marked purged, nothing else touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter.retention import PURGE_BATCH, purge_recordings
from callcenter.storage.db import (
    create_engine_for,
    make_session_factory,
    upgrade_database,
)
from callcenter.storage.records import NewCallRecord, NewRecording
from callcenter.storage.repository import (
    add_recording,
    create_call_record,
    list_recordings_for_call,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_purge_deletes_expired_files_and_marks_rows(tmp_path: Path) -> None:
    """Recordings past the retention period lose their file and get purged_at; newer ones stay."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'cc.sqlite3'}")
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    old_file, new_file = tmp_path / "old.wav", tmp_path / "new.wav"
    old_file.write_bytes(b"x" * 100)
    new_file.write_bytes(b"y" * 50)
    with sessions.begin() as session:
        record = create_call_record(session, NewCallRecord(started_at=NOW - timedelta(days=200), direction="inbound"),
                                    site_prefix="GD")
        for path, age in ((old_file, 200), (new_file, 10), (tmp_path / "gone.wav", 300)):
            add_recording(session, NewRecording(call_record_id=record.id, path=str(path),
                                                started_at=NOW - timedelta(days=age), duration_seconds=1.0,
                                                size_bytes=10, format="wav"))
    dry = purge_recordings(sessions, 180, now=NOW, dry_run=True)
    assert dry.purged == 0 and old_file.exists()
    report = purge_recordings(sessions, 180, now=NOW)
    assert (report.purged, report.missing, report.bytes_freed, report.failed) == (2, 1, 100, [])
    assert not old_file.exists() and new_file.exists()
    with sessions.begin() as session:
        rows = {Path(r.path).name: r.purged_at for r in list_recordings_for_call(session, record.id)}
    assert rows["new.wav"] is None
    assert rows["old.wav"] is not None and rows["gone.wav"] is not None
    assert purge_recordings(sessions, 180, now=NOW).purged == 0  # idempotent
    engine.dispose()


def test_purge_goes_past_the_recordings_it_cannot_delete(sessions: sessionmaker[Session], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The oldest page of expired recordings all fail to delete (a folder the daemon may not
    write to): the purge still deletes every newer expired recording, and ``--dry-run`` lists
    every expired one, not the first page only. Seven recordings share each start time, some
    across a page's end: each is looked at once."""
    locked, open_ = tmp_path / "locked", tmp_path / "open"
    locked.mkdir()
    open_.mkdir()
    total = PURGE_BATCH + 200
    with sessions.begin() as session:
        record = create_call_record(session, NewCallRecord(started_at=NOW - timedelta(days=400), direction="inbound"),
                                    site_prefix="GD")
        for i in range(total):
            path = (locked if i < PURGE_BATCH else open_) / f"{i}.wav"
            path.write_bytes(b"x" * 10)
            add_recording(session, NewRecording(call_record_id=record.id, path=str(path),
                                                started_at=NOW - timedelta(days=400) + timedelta(minutes=i // 7),
                                                duration_seconds=1.0, size_bytes=10, format="wav"))
    listed: list[str] = []
    assert purge_recordings(sessions, 180, now=NOW, dry_run=True, progress=listed.append).purged == 0
    assert len(listed) == total and len(set(listed)) == total
    unlink = Path.unlink

    def refused(path: Path, *args: Any, **kwargs: Any) -> None:
        if path.parent == locked:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refused)
    report = purge_recordings(sessions, 180, now=NOW)
    assert (report.purged, len(report.failed), report.bytes_freed) == (200, PURGE_BATCH, 2000)
    assert not list(open_.iterdir()) and len(list(locked.iterdir())) == PURGE_BATCH
    with sessions.begin() as session:
        left = [r for r in list_recordings_for_call(session, record.id) if r.purged_at is None]
    assert {Path(r.path).parent for r in left} == {locked} and len(left) == PURGE_BATCH
