"""Recording files: the name Asterisk gives each ``recordings.format``, a file's length, and
how a page lets people hear one.

Pure (reads a file's header at most). ``MixMonitor`` and ``Record`` pick the format from the
extension of the name they are given and write the file under the format's *first*
extension: ``wav`` (16-bit PCM, 8 kHz) and ``gsm`` (raw GSM 6.10) keep their names, but
``wav49`` (GSM 6.10 in a WAV file, Asterisk's format_wav_gsm: extensions ``WAV|wav49``)
becomes ``.WAV``. The dialplans therefore build recording names with the extension, not the
format's name (the global ``RECORDING_FORMAT`` is the extension; seen on the lab Asterisk 22,
where a ``.wav49`` name left a ``.WAV`` file the engine never found).
"""

from __future__ import annotations

import contextlib
import struct
import wave
from html import escape
from pathlib import Path
from typing import Final

__all__ = ["BROWSER_FORMATS", "EXTENSIONS", "FORMATS", "format_of", "player", "seconds"]

EXTENSIONS: Final = {"wav": "wav", "gsm": "gsm", "wav49": "WAV"}
"""``recordings.format`` -> the extension of the files Asterisk writes."""

FORMATS: Final = {ext: fmt for fmt, ext in EXTENSIONS.items()}

GSM_FRAME_BYTES: Final = 33
"""Raw GSM 6.10: 33 bytes per 20 ms frame (160 samples at 8 kHz)."""
WAV49_BLOCK_BYTES: Final = 65
"""GSM 6.10 in WAV (Microsoft's packing): 65 bytes per block of two frames, 40 ms."""


def format_of(path: Path | str) -> str:
    """The ``recordings.format`` a file was recorded in, from its extension (``.WAV`` ->
    ``wav49``); an unknown extension as it is, lower case."""
    suffix = Path(path).suffix.lstrip(".")
    return FORMATS.get(suffix, suffix.lower())


def seconds(path: Path, fmt: str) -> float:
    """The file's length in seconds from its header or size; 0.0 when it cannot tell."""
    try:
        if fmt == "wav":
            with contextlib.closing(wave.open(str(path), "rb")) as handle:
                rate = handle.getframerate()
                return handle.getnframes() / rate if rate else 0.0
        if fmt == "gsm":
            return (path.stat().st_size // GSM_FRAME_BYTES) * 0.02
        if fmt == "wav49":
            return _wav49_seconds(path)
    except (wave.Error, EOFError, OSError, struct.error):
        return 0.0
    return 0.0


def _wav49_seconds(path: Path) -> float:
    """GSM-in-WAV: whole 40 ms blocks of the ``data`` chunk (by its size in the header, or
    to the end of the file when the header was never finished)."""
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0.0
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return 0.0
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                available = path.stat().st_size - handle.tell()
                data = min(size, available) if size else available
                return (data // WAV49_BLOCK_BYTES) * 0.04
            handle.seek(size + (size & 1), 1)


BROWSER_FORMATS: Final = frozenset({"wav"})
"""Formats a browser's ``<audio>`` plays (GSM 6.10 it does not, raw or in a WAV file)."""


def player(source: str, fmt: str, name: str) -> str:
    """HTML to hear a recording served at ``source``: the browser's player for a WAV file,
    else a link that downloads it as ``name`` (with the format's extension) for a desktop
    player."""
    if fmt in BROWSER_FORMATS:
        return f'<audio controls preload="none" src="{escape(source)}"></audio>'
    filename = f"{name}.{EXTENSIONS.get(fmt, fmt)}"
    return (f'<a href="{escape(source)}" download="{escape(filename)}">download {escape(filename)}</a> '
            "<span class=muted>(GSM: browsers do not play it, desktop players such as VLC do)</span>")
