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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from callcenter.storage.dialer_records import DUPLICATE_REASON, RowProblem

__all__ = ["Header", "clean_header", "csv_records", "open_text", "read_header", "repeated_phone", "shaped_rows"]

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
    (message ``FILE[:LINE]: ...``) for a file that cannot be read, an unknown or unsupported
    encoding, or bytes that do not decode."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError as exc:
        raise error(f"{path}: encoding: unknown encoding {encoding!r}") from exc
    if codec.name.replace("-", "_").startswith(_UNSAFE_ENCODINGS):
        raise error(f"{path}: encoding: {encoding} is not supported; save the file as UTF-8")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig" if codec.name == "utf-8" else codec.name)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}:{line}: not valid {encoding}: byte {data[exc.start]:#04x} cannot be decoded"
            " (try --encoding gb18030 or utf-8)") from exc
    return io.StringIO(text.lstrip("\ufeff"), newline="")


@dataclass(frozen=True)
class Header:
    """A file's header: each column's name (an alias read as its column), the title each
    column had, and the records after it."""

    line: int
    columns: list[str]
    titles: dict[str, str]
    rows: Iterator[tuple[int, list[str] | csv.Error]]


def read_header(lines: Iterable[str], source: str, aliases: Mapping[str, str], error: Callable[[str], Exception],
                needs: str) -> Header:
    """The header row of a CSV file: ``error(FILE:LINE: ...)`` is raised for a file that is not
    CSV there, empty (``needs`` says what the header must name), a column without a name or
    a column repeated (an alias of a column counts as that column)."""
    rows = csv_records(lines)
    line, header = next(rows, (1, []))
    if isinstance(header, csv.Error):
        raise error(f"{source}:{line}: header: not valid CSV: {header}")
    if not header:
        raise error(f"{source}:1: empty file: a header row with {needs} is needed")
    columns: list[str] = []
    titles: dict[str, str] = {}
    for cell in header:
        title = clean_header(cell)
        column = aliases.get(title.lower(), title)
        if not column:
            raise error(f"{source}:{line}: header: column {len(columns) + 1} has no name")
        if column in titles:
            raise error(f"{source}:{line}: header: {title!r} repeats column {titles[column]!r}")
        titles[column] = title
        columns.append(column)
    return Header(line, columns, titles, rows)


def shaped_rows(header: Header, problems: list[RowProblem]) -> Iterator[tuple[int, list[str]]]:
    """The data records after ``header`` with one field per column, as (line, fields); the
    :class:`RowProblem` of each record that is not valid CSV or has another number of fields
    goes to ``problems`` instead."""
    width = len(header.columns)
    for line, fields in header.rows:
        if isinstance(fields, csv.Error):
            problems.append(RowProblem(line, "row", f"not valid CSV: {fields}"))
        elif len(fields) != width:
            problems.append(RowProblem(line, "row", f"expected {width} columns, got {len(fields)}", tuple(fields)))
        else:
            yield line, fields


def repeated_phone(first_line: dict[str, int], phone: str, line: int, raw: tuple[str, ...]) -> RowProblem | None:
    """The problem of a number seen at an earlier line of the file (``first_line`` remembers
    each number's first line), or None the first time."""
    first = first_line.setdefault(phone, line)
    return None if first == line else RowProblem(line, "phone", f"{DUPLICATE_REASON} {first} ({phone})", raw)
