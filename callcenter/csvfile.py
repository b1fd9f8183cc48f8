"""Reading the site's CSV files (lead lists, CRM customers): decoding and records (pure).

Shared by :mod:`callcenter.dialer.leads_csv` and :mod:`callcenter.crm`: a file is decoded
as a whole (UTF-8 with or without a byte-order mark, or an ASCII-compatible encoding such
as GB18030), bytes that do not decode are named by line, and records are read strictly,
each with the physical line it starts on.

Every physical line ends up in a record or in a :class:`BadRecord` that keeps its text: a
quoted field may span lines (a note written over several lines), but a quote that never
closes (or closes badly, or only after :data:`MAX_RECORD_LINES` lines) is the problem of
the line it opens on alone, and reading goes on at the next line; otherwise one stray
quote would swallow the rest of the file into one bad record. A NUL character, which
PostgreSQL cannot store in text, is a problem of its row (or of the header), never of
the whole import.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from callcenter.storage.dialer_records import DUPLICATE_REASON, RowProblem

__all__ = [
    "MAX_RECORD_LINES",
    "BadRecord",
    "Header",
    "clean_header",
    "csv_records",
    "open_text",
    "read_header",
    "repeated_phone",
    "shaped_rows",
]

_UNSAFE_ENCODINGS: Final = ("utf_16", "utf_32")

MAX_RECORD_LINES: Final = 100
"""The most physical lines one record may span. A quoted field may hold line breaks, but a
quote still open this many lines on is taken for one that never closes: the lines after
its own are read again as rows instead of vanishing into one field."""

_NUL: Final = "\x00"
_NUL_REASON: Final = "contains a NUL character (\\x00), which the database cannot store"


def clean_header(cell: str) -> str:
    """A header cell without a byte-order mark and surrounding blanks."""
    return cell.lstrip("\ufeff").strip()


@dataclass(frozen=True, slots=True)
class BadRecord:
    """Text that is not a valid CSV record: why (``not valid CSV: ...``), and the text of
    the line it is, as read (without its line ending), for the rejects file."""

    reason: str
    text: str


def csv_records(lines: Sequence[str], width: int | None = None, start: int = 0,
                ) -> Iterator[tuple[int, int, list[str] | BadRecord]]:
    """(first physical line, last physical line, fields or :class:`BadRecord`) of each record
    of ``lines[start:]``, blank lines skipped; line numbers count from 1 at ``lines[0]``.

    The reader is strict (a stray quote is an error, not silently merged text); after an
    error on one line it carries on with the next. A record spanning lines is only trusted
    when it is valid, at most :data:`MAX_RECORD_LINES` lines long and (given ``width``) has
    ``width`` fields: otherwise the quote that made it span lines was opened on its first
    line and never (properly) closed, so that line alone is the bad record, named with the
    lines the quote took, and reading starts again at the line after it.
    """
    end = len(lines)
    resume: int | None = start
    while resume is not None:
        # a reader of its own from ``resume`` on; ``base + reader.line_num`` is the last line read
        base, done, resume = resume, resume, None
        reader = csv.reader(map(lines.__getitem__, range(base, end)), strict=True)
        while True:
            first = done + 1
            error: csv.Error | None = None
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                error, fields = exc, []
            done = base + reader.line_num
            if error is None and (done == first or done - first < MAX_RECORD_LINES
                                  and (width is None or len(fields) == width)):
                if fields:  # not a blank line
                    yield first, done, fields
                continue
            if error is not None and done == end and str(error) == "unexpected end of data":
                taken = f"lines {first}-{done}" if done > first else f"line {first}, the last"
                why = f"a quote opened here never closes ({taken})"
            elif done == first:
                why = str(error)
            else:
                detail = (str(error) if error is not None
                          else f"still open after {MAX_RECORD_LINES} lines" if done - first >= MAX_RECORD_LINES
                          else f"{len(fields)} columns, expected {width}")
                why = f"a quote opened here never closes properly (lines {first}-{done}: {detail})"
            yield first, first, BadRecord(f"not valid CSV: {why}", _text(lines[first - 1]))
            if done > first:  # read again the lines after the quote's own
                resume = first
                break


def _text(line: str) -> str:
    """A physical line as read, without its line ending."""
    return line.rstrip("\r\n")


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
    column had, and the records after it (``nul``: whether the file has a NUL anywhere)."""

    line: int
    columns: list[str]
    titles: dict[str, str]
    rows: Iterator[tuple[int, int, list[str] | BadRecord]]
    nul: bool = False


def read_header(lines: Iterable[str], source: str, aliases: Mapping[str, str], error: Callable[[str], Exception],
                needs: str) -> Header:
    """The header row of a CSV file: ``error(FILE:LINE: ...)`` is raised for a file that is not
    CSV there, empty (``needs`` says what the header must name), a column without a name or
    with a NUL in it, or a column repeated (an alias of a column counts as that column)."""
    physical = list(lines)
    nul = any(_NUL in line for line in physical)
    line, last, header = next(csv_records(physical), (1, 1, []))
    if isinstance(header, BadRecord):
        raise error(f"{source}:{line}: header: {header.reason}")
    if not header:
        raise error(f"{source}:1: empty file: a header row with {needs} is needed")
    columns: list[str] = []
    titles: dict[str, str] = {}
    for cell in header:
        title = clean_header(cell)
        column = aliases.get(title.lower(), title)
        if not column:
            raise error(f"{source}:{line}: header: column {len(columns) + 1} has no name")
        if _NUL in column:
            raise error(f"{source}:{line}: header: column {len(columns) + 1} ({title!r}) {_NUL_REASON}")
        if column in titles:
            raise error(f"{source}:{line}: header: {title!r} repeats column {titles[column]!r}")
        titles[column] = title
        columns.append(column)
    return Header(line, columns, titles, csv_records(physical, len(columns), last), nul)


def shaped_rows(header: Header, problems: list[RowProblem]) -> Iterator[tuple[int, list[str]]]:
    """The data records after ``header`` with one field per column, as (line, fields); the
    :class:`RowProblem` of each record that is not valid CSV (its line's text kept), has
    another number of fields or a NUL character in a field (the database cannot store one)
    goes to ``problems`` instead."""
    width = len(header.columns)
    for line, _, fields in header.rows:
        if isinstance(fields, BadRecord):
            problems.append(RowProblem(line, "row", fields.reason, (fields.text,)))
        elif len(fields) != width:
            problems.append(RowProblem(line, "row", f"expected {width} columns, got {len(fields)}", tuple(fields)))
        elif header.nul and (nul := next((i for i, field in enumerate(fields) if _NUL in field), None)) is not None:
            problems.append(RowProblem(line, header.columns[nul], _NUL_REASON, tuple(fields)))
        else:
            yield line, fields


def repeated_phone(first_line: dict[str, int], phone: str, line: int, raw: tuple[str, ...]) -> RowProblem | None:
    """The problem of a number seen at an earlier line of the file (``first_line`` remembers
    each number's first line), or None the first time."""
    first = first_line.setdefault(phone, line)
    return None if first == line else RowProblem(line, "phone", f"{DUPLICATE_REASON} {first} ({phone})", raw)
