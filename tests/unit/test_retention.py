"""Recording retention: expired files deleted, rows marked purged, nothing else touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.retention import purge_recordings
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
