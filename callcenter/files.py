"""Replacing a file atomically, never readable by others while it is written.

The engine writes files others read while it runs: Asterisk's configuration (``asterisk
render``), the per-install secrets, the lab's instance state. Each is written next to its
target under a temporary name, created 0600, given its final mode and renamed over the
target: a reader sees the old file or the new one, never half of one, and a secret in it
is never readable by anyone else on the way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(target: Path, text: str, *, mode: int = 0o600, keep_existing: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically with ``mode``.

    ``keep_existing``: an existing ``target`` keeps its mode and, when run as root, its owner
    and group (ops may have given a file to the asterisk group); ``mode`` is for a new one.
    The temporary file is removed if anything fails.
    """
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        existing = target.stat() if keep_existing and target.exists() else None
        if existing is not None:
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0:
                os.chown(tmp, existing.st_uid, existing.st_gid)
        elif mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
