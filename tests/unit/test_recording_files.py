"""Recording files (callcenter/recording_files.py): Asterisk's file names per format, a
file's length from its size or header, and the player a page shows. On the real Asterisk:
tests/integration/test_recording_formats_lab.py."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import pytest

from callcenter.recording_files import EXTENSIONS, format_of, player, seconds


def _wav49(path: Path, blocks: int, *, data_size: int | None = None) -> Path:
    """A GSM-in-WAV file as Asterisk's format_wav_gsm writes it: a 60-byte header (fmt with
    2 extra bytes, fact, data) and 65-byte blocks."""
    data = bytes(65 * blocks)
    fmt = struct.pack("<HHIIHHHH", 49, 1, 8000, 1625, 65, 0, 2, 320)
    header = (b"RIFF" + struct.pack("<I", 52 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
              + b"fact" + struct.pack("<II", 4, 320 * blocks)
              + b"data" + struct.pack("<I", len(data) if data_size is None else data_size))
    assert len(header) == 60
    path.write_bytes(header + data)
    return path


def test_asterisk_names_a_wav49_recording_wav_in_capitals() -> None:
    assert EXTENSIONS == {"wav": "wav", "gsm": "gsm", "wav49": "WAV"}
    assert [format_of(p) for p in ("/r/1.wav", "/r/1.gsm", "/r/1.WAV", "/r/1-message.WAV", "/r/1.Ogg")] == [
        "wav", "gsm", "wav49", "wav49", "ogg"]


def test_a_files_length_from_its_header_or_size(tmp_path: Path) -> None:
    pcm = tmp_path / "a.wav"
    with wave.open(str(pcm), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(bytes(2 * 8000 * 3))
    assert seconds(pcm, "wav") == 3.0
    gsm = tmp_path / "a.gsm"
    gsm.write_bytes(bytes(33 * 550 + 7))  # 550 whole frames of 20 ms, and a torn one
    assert seconds(gsm, "gsm") == pytest.approx(11.0)
    assert seconds(_wav49(tmp_path / "a.WAV", 250), "wav49") == pytest.approx(10.0)
    # a header never finished (size 0, Asterisk killed): the data runs to the end of the file
    assert seconds(_wav49(tmp_path / "b.WAV", 100, data_size=0), "wav49") == pytest.approx(4.0)


@pytest.mark.parametrize("fmt", ["wav", "gsm", "wav49", "ogg"])
def test_a_file_that_is_not_what_its_name_says_has_no_length(tmp_path: Path, fmt: str) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"RIFF\x00\x00")
    assert seconds(bad, fmt) == 0.0  # gsm: not one whole frame
    assert seconds(tmp_path / "missing", fmt) == 0.0


def test_browsers_play_wav_and_download_gsm() -> None:
    assert player("/lead/8001/recording/GD1", "wav", "GD1") == (
        '<audio controls preload="none" src="/lead/8001/recording/GD1"></audio>')
    assert player("/lead/8001/recording/GD1?a=1&b=2", "wav49", "GD1") == (
        '<a href="/lead/8001/recording/GD1?a=1&amp;b=2" download="GD1.WAV">download GD1.WAV</a> '
        "<span class=muted>(GSM: browsers do not play it, desktop players such as VLC do)</span>")
    assert 'download="GD1.gsm"' in player("/x", "gsm", "GD1")
