"""Ticket numbers of call records: formatting and parsing (pure, no I/O).

A ticket number is what an agent reads to a caller: a two-letter site prefix, the day
of the call as ``YYYYMMDD`` and a daily sequence of at least three digits, e.g.
``GD20231027001``. The sequence restarts at 1 every day and simply grows past 999
(``GD202310271000``). Allocating the next number against the database lives in
:func:`callcenter.storage.repository.allocate_ticket_number`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from callcenter.storage.records import InvalidFieldError

SEQUENCE_MIN_DIGITS = 3
"""The sequence is zero-padded to at least this many digits."""

_PREFIX_RE = re.compile(r"[A-Z]{2}")
_TICKET_RE = re.compile(r"(?P<prefix>[A-Z]{2})(?P<day>[0-9]{8})(?P<sequence>[0-9]{3,})")


@dataclass(frozen=True, slots=True)
class TicketNumber:
    """A parsed ticket number."""

    site_prefix: str
    day: date
    sequence: int

    def __str__(self) -> str:
        return format_ticket_number(self.site_prefix, self.day, self.sequence)


def validate_site_prefix(site_prefix: str) -> str:
    """Return ``site_prefix`` if it is two upper-case ASCII letters, else raise InvalidFieldError."""
    if not isinstance(site_prefix, str) or not _PREFIX_RE.fullmatch(site_prefix):
        raise InvalidFieldError(
            "site_prefix", f"must be two upper-case letters A-Z, got {site_prefix!r}"
        )
    return site_prefix


def ticket_day_prefix(site_prefix: str, day: date) -> str:
    """The part shared by every ticket of one site and day, e.g. ``GD20231027``."""
    return f"{validate_site_prefix(site_prefix)}{day:%Y%m%d}"


def format_ticket_number(site_prefix: str, day: date, sequence: int) -> str:
    """Format a ticket number, e.g. ``("GD", date(2023, 10, 27), 1) -> "GD20231027001"``."""
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise InvalidFieldError(
            "sequence", f"must be an integer >= 1, got {sequence!r}"
        )
    return f"{ticket_day_prefix(site_prefix, day)}{sequence:0{SEQUENCE_MIN_DIGITS}d}"


def parse_ticket_number(ticket_number: str) -> TicketNumber:
    """Parse ``GD20231027001`` into its parts; InvalidFieldError (a ValueError) otherwise.

    Only canonical numbers parse: a sequence with more than three digits must not
    start with 0, so that every ticket has exactly one spelling.
    """
    match = (
        _TICKET_RE.fullmatch(ticket_number) if isinstance(ticket_number, str) else None
    )
    if match is None:
        raise InvalidFieldError(
            "ticket_number",
            "must be 2 letters A-Z, a date YYYYMMDD and a sequence of 3+"
            f" digits (e.g. GD20231027001), got {ticket_number!r}",
        )
    digits = match["sequence"]
    sequence = int(digits)
    if sequence == 0 or (len(digits) > SEQUENCE_MIN_DIGITS and digits[0] == "0"):
        raise InvalidFieldError(
            "ticket_number",
            f"sequence must be >= 1 without extra leading zeros, got {ticket_number!r}",
        )
    raw_day = match["day"]
    try:
        day = date(int(raw_day[:4]), int(raw_day[4:6]), int(raw_day[6:]))
    except ValueError:
        raise InvalidFieldError(
            "ticket_number", f"{raw_day} is not a valid date in {ticket_number!r}"
        ) from None
    return TicketNumber(site_prefix=match["prefix"], day=day, sequence=sequence)
