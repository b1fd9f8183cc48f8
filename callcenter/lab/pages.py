"""A fax page for the lab: one TIFF class F page made by ghostscript where Asterisk can read it.

The lab's root file system carries ghostscript (``callcenter lab provision``); with the host
runtime, the host's ``gs`` is used. Used by ``make demo`` and the fax lab tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from callcenter.lab.rootfs import LabError

__all__ = ["fax_page"]

_TEXT = "/Helvetica findfont 36 scalefont setfont 72 600 moveto (callcenter fax test page) show showpage"


def fax_page(runtime: Any, host_dir: Path, seen_dir: str, name: str = "fax-page.tif") -> tuple[Path, str]:
    """Write ``name`` into ``host_dir`` (``seen_dir`` as Asterisk sees it): (host path, Asterisk's path).

    ``runtime`` is the lab's: a chroot runtime (with ``root``) runs ghostscript inside its root
    file system. LabError if ghostscript fails or writes no TIFF.
    """
    host = host_dir / name
    seen = f"{seen_dir.rstrip('/')}/{name}"
    gs = ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg3", "-r204x196",
          f"-sOutputFile={seen}", "-c", _TEXT]
    root = getattr(runtime, "root", None)
    argv = ["chroot", str(root), *gs] if root is not None else gs
    try:
        made = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except OSError as exc:
        raise LabError(f"cannot run ghostscript for a fax page: {exc}") from exc
    if made.returncode != 0 or not host.is_file() or host.read_bytes()[:4] not in (b"II*\x00", b"MM\x00*"):
        raise LabError(f"ghostscript made no fax page {host}: {(made.stderr or made.stdout).strip()[-500:]}")
    return host, seen
