"""Lead files: CSV with a header row, parsed into leads and per-line problems (pure).

The header must name a ``phone`` column (also ``phone_number``, ``mobile``, ``tel``,
``电话``, ``手机``, ``手机号``, ``电话号码``...); ``name`` (``姓名``) and ``timezone``
(``时区``) are optional; every other column is kept in the lead's ``extra``.

Every data row ends up either as a :class:`~callcenter.storage.dialer_records.LeadRow`
or as a :class:`~callcenter.storage.dialer_records.RowProblem` naming the physical line
where the row starts (the header is line 1; a quoted field spanning lines counts every
line), the field and the reason: ``rows + problems == data rows``. Blank lines are not
rows. A quote that never closes is the problem of the line it opens on, whose text is
kept, and the lines after it are still read as rows (see :mod:`callcenter.csvfile`). A
problem with the header itself (no phone column, a repeated column, an empty file) or
bytes that do not decode raise :class:`LeadFileError` naming the file and line: no row of
such a file can be trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

from callcenter.csvfile import open_text, read_header, repeated_phone, shaped_rows
from callcenter.storage.dialer_records import LeadRow, RowProblem
from callcenter.storage.records import InvalidFieldError

__all__ = [
    "COLUMN_ALIASES",
    "LeadFileError",
    "parse_leads_csv",
    "read_leads_file",
]

COLUMN_ALIASES: Final[dict[str, str]] = {
    alias: column
    for column, aliases in {
        "phone": ("phone", "phone_number", "phonenumber", "mobile", "mobile_phone", "tel",
                  "telephone", "number", "电话", "手机", "手机号", "手机号码", "电话号码", "号码"),
        "name": ("name", "full_name", "姓名", "名字", "客户姓名"),
        "timezone": ("timezone", "time_zone", "tz", "时区"),
    }.items()
    for alias in aliases
}
"""Header names (compared case-insensitively, blanks trimmed) of the known columns."""

class LeadFileError(ValueError):
    """The lead file as a whole cannot be read; the message starts with ``FILE:LINE:``."""


def parse_leads_csv(lines: Iterable[str], source: str) -> tuple[list[LeadRow], list[RowProblem]]:
    """Parse a lead file given as lines (kept line endings or not) into leads and problems.

    ``source`` names the file in errors. Lines that are not valid CSV, rows with a wrong
    number of columns, a NUL character (PostgreSQL cannot store one), a missing or invalid
    phone, an over-long name or an unknown time zone are problems; so is a phone seen
    earlier in the file (reported at the later line, naming the first one).
    """
    header = read_header(lines, source, COLUMN_ALIASES, LeadFileError, "a phone column")
    seen, columns = header.titles, header.columns
    if "phone" not in seen:
        raise LeadFileError(
            f"{source}:{header.line}: header: no phone column (found {', '.join(seen.values())};"
            " name one phone, mobile, 电话 or 手机)")
    phone_at = columns.index("phone")
    name_at = columns.index("name") if "name" in seen else None
    tz_at = columns.index("timezone") if "timezone" in seen else None
    extra_at = [(i, seen[c]) for i, c in enumerate(columns) if c not in ("phone", "name", "timezone")]

    leads: list[LeadRow] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for line, fields in shaped_rows(header, problems):
        raw = tuple(fields)
        if not fields[phone_at].strip():
            problems.append(RowProblem(line, "phone", "missing", raw))
            continue
        try:
            lead = LeadRow(
                line=line,
                phone=fields[phone_at],
                name=None if name_at is None else fields[name_at],
                timezone=None if tz_at is None else fields[tz_at],
                extra={title: fields[i] for i, title in extra_at},
            )
        except InvalidFieldError as exc:
            problems.append(RowProblem(line, exc.field, exc.problem, raw))
            continue
        repeated = repeated_phone(first_line, lead.phone, line, raw)
        if repeated is not None:
            problems.append(repeated)
            continue
        leads.append(lead)
    return leads, problems


def read_leads_file(path: Path, *, encoding: str = "utf-8") -> tuple[list[LeadRow], list[RowProblem]]:
    """Read and parse a lead file (see :func:`parse_leads_csv`).

    ``encoding``: ``utf-8`` (a byte-order mark is accepted and dropped) or another
    ASCII-compatible encoding such as ``gb18030`` (files from Chinese lead vendors).
    A file that cannot be read, or bytes that do not decode, raise :class:`LeadFileError`
    naming the file (and the line).
    """
    return parse_leads_csv(open_text(path, encoding, LeadFileError), str(path))
