"""replace_file: atomic, private while written, the final mode as asked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from callcenter.files import replace_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_mode_asked_and_the_text(tmp_path: Path) -> None:
    target = tmp_path / "manager.conf"
    replace_file(target, "secret = 秘密\n")
    assert target.read_text(encoding="utf-8") == "secret = 秘密\n"
    assert _mode(target) == 0o600
    replace_file(target, "b\n", mode=0o640)
    assert (target.read_text(encoding="utf-8"), _mode(target)) == ("b\n", 0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manager.conf"]


def test_keep_existing_keeps_an_existing_files_mode(tmp_path: Path) -> None:
    target = tmp_path / "pjsip.conf"
    replace_file(target, "a\n", mode=0o640, keep_existing=True)
    assert _mode(target) == 0o640  # new: the mode asked
    os.chmod(target, 0o604)
    replace_file(target, "b\n", mode=0o640, keep_existing=True)
    assert (target.read_text(encoding="utf-8"), _mode(target)) == ("b\n", 0o604)
    replace_file(target, "c\n", mode=0o640)  # without keep_existing: the mode asked
    assert _mode(target) == 0o640


def test_the_temporary_file_is_removed_when_the_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError):
        replace_file(target, "x\n", mode=0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_the_text_is_written_into_a_file_only_its_owner_can_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the final mode, the temporary file holding the text is 0600 while written."""
    from callcenter import files

    seen: list[int] = []
    real_fdopen = os.fdopen

    def spy(fd: int, *args: object, **kwargs: object) -> object:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(files.os, "fdopen", spy)
    target = tmp_path / "extensions.conf"
    replace_file(target, "a\n", mode=0o644)
    os.chmod(target, 0o644)
    replace_file(target, "b\n", mode=0o640, keep_existing=True)
    assert seen == [0o600, 0o600]
    assert _mode(target) == 0o644
