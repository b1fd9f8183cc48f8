"""Reading the site's CSV files (lead lists, CRM customers): decoding and records (pure).

Shared by :mod:`callcenter.dialer.leads_csv` and :mod:`callcenter.crm`: a file is decoded
as a whole (UTF-8 with or without a byte-order mark, or an ASCII-compatible encoding such
as GB18030), bytes that do not decode are named by line, and records are read strictly,
each with the physical line it starts on.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

__all__ = ["clean_header", "csv_records", "open_text"]

_UNSAFE_ENCODINGS: Final = ("utf_16", "utf_32")


def clean_header(cell: str) -> str:
    """A header cell without a byte-order mark and surrounding blanks."""
    return cell.lstrip("\ufeff").strip()


def csv_records(lines: Iterable[str]) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(first physical line, fields or the CSV error) of each record, blank lines skipped.

    The reader is strict (a stray quote is an error, not silently merged text); after an
    error it carries on with the next line.
    """
    reader = csv.reader(iter(lines), strict=True)
    previous = 0
    while True:
        start = previous + 1
        try:
            fields: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = exc
        previous = reader.line_num
        if fields:
            yield start, fields


def open_text(path: Path, encoding: str, error: Callable[[str], Exception]) -> io.StringIO:
    """The whole file decoded, as lines for :func:`csv_records`; ``error(message)`` is raised
    (message ``FILE[:LINE]: ...``) for an unknown or unsupported encoding, or bytes that do
    not decode."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError as exc:
        raise error(f"{path}: encoding: unknown encoding {encoding!r}") from exc
    if codec.name.replace("-", "_").startswith(_UNSAFE_ENCODINGS):
        raise error(f"{path}: encoding: {encoding} is not supported; save the file as UTF-8")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig" if codec.name == "utf-8" else codec.name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}:{line}: not valid {encoding}: byte {data[exc.start]:#04x} cannot be decoded"
            " (try --encoding gb18030 or utf-8)") from exc
    return io.StringIO(text.lstrip("\ufeff"), newline="")
