"""Fax: received faxes filed from the fax number, faxes sent from TIFF pages (docs/fax.md).

The dialplan (``dialplans/fax.conf``) does the fax work with ``ReceiveFAX``/``SendFAX``
(res_fax with spandsp) and reports every fax, received or sent, once, in a ``UserEvent``
``CCFax`` from its hangup handler. :class:`FaxService` turns those events into rows of the
``faxes`` table and places outgoing faxes with ``Originate``. At most ``fax.channels`` faxes
are under way at once (the reference site has 4 fax channels): the dialplan refuses a fifth
fax, incoming (busy) or outgoing (filed ``BUSY``), and the service a fifth of its own sends (try
again).

A report can be missed (the daemon restarted, or its AMI connection dropped, while the fax was
under way): a fax being sent is then given up once :func:`send_deadline` has passed (filed
``FAILED``, :data:`NO_RESULT`), and a received one whose TIFF is in the fax inbox is filed
from the file (:func:`found_in_inbox`, status :data:`RECEIVED`).

This module is pure (the event's parsing, the page check, the records);
:mod:`callcenter.fax_service` moves the bytes and Deferreds.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from callcenter.ami.codec import Message
from callcenter.storage.records import InvalidFieldError

__all__ = ["FAX_EVENT", "MAX_FAX_BYTES", "NO_RESULT", "RECEIVED", "SECONDS_PER_PAGE", "SEND_MARGIN_SECONDS",
           "FaxBusy", "FaxRecord", "FaxResult", "check_tiff", "check_tiff_bytes", "found_in_inbox",
           "inbox_fax_id", "parse_fax_event", "send_deadline", "tiff_pages"]

FAX_EVENT: Final = "CCFax"
"""The ``UserEvent`` name the fax dialplan reports each fax with."""

MAX_FAX_BYTES: Final = 10 * 1024 * 1024
"""The largest fax sent as bytes (the API's ``tiff``): a G3 page at 204x196 dpi is about
50 KB, so this is some 200 pages."""

SECONDS_PER_PAGE: Final = 180
"""How long one page may take to send, generously: a dense G3 page (some 50-100 KB) at the
slowest rate T.30 falls back to (2400 bit/s), with retransmissions."""

SEND_MARGIN_SECONDS: Final = 120
"""Added to the ring time and the pages' time: the T.30 handshake, the hangup handler's report."""

NO_RESULT: Final = "no result from Asterisk"
"""The start of the error of a fax filed without its ``CCFax`` report."""

RECEIVED: Final = "RECEIVED"
"""The status of a received fax filed from its TIFF in the fax inbox, its report missed: the
file is there, how the fax ended is not known."""

_TIFF_HEADS: Final = (b"II*\x00", b"MM\x00*")
_TIFF_HINT: Final = "make fax pages with gs -sDEVICE=tiffg3 -r204x196 -o page.tif document.pdf"
_INBOX_NAME: Final = re.compile(r"^(?P<time>[0-9]{8}-[0-9]{6})-(?P<id>.+)\.tif$")
"""``<UTC time>-<uniqueid>.tif``: how ``[fax-in]`` names a received fax (its id is the uniqueid)."""
_MAX_PAGES: Final = 10_000


class FaxBusy(Exception):
    """Every fax channel is in use: try again later (HTTP 409)."""


@dataclass(frozen=True)
class FaxResult:
    """One fax as the dialplan reported it (``UserEvent: CCFax``)."""

    fax_id: str
    direction: str
    """``inbound`` or ``outbound``."""
    number: str
    """The other end: the caller's number (inbound) or the number dialled (outbound)."""
    status: str
    """``SUCCESS``, ``FAILED``, or ``BUSY``/``NOANSWER``/... for a call that never got to fax."""
    error: str
    pages: int
    bitrate: int
    remote_station: str
    path: str
    """The TIFF as Asterisk wrote or read it."""


@dataclass(frozen=True)
class FaxRecord:
    """A stored fax."""

    fax_id: str
    direction: str
    number: str
    status: str
    error: str
    pages: int
    bitrate: int
    remote_station: str
    path: str
    size_bytes: int
    created_at: datetime
    ended_at: datetime | None


def _int(text: str | None) -> int:
    try:
        return max(int(text or "0"), 0)
    except ValueError:
        return 0


def parse_fax_event(msg: Message) -> FaxResult | None:
    """The fax a ``UserEvent: CCFax`` reports, or None for any other event (or a bad one)."""
    if msg.name != "UserEvent" or msg.get("UserEvent") != FAX_EVENT:
        return None
    direction = msg.get("Direction") or ""
    fax_id = msg.get("FaxId") or ""
    if direction not in ("inbound", "outbound") or not fax_id:
        return None
    return FaxResult(
        fax_id=fax_id, direction=direction, number=msg.get("Number") or "",
        status=(msg.get("Status") or "FAILED").upper(), error=msg.get("Error") or "",
        pages=_int(msg.get("Pages")), bitrate=_int(msg.get("Rate")), remote_station=msg.get("Remote") or "",
        path=msg.get("File") or "",
    )


def check_tiff(path: Path, field: str = "file") -> None:
    """InvalidFieldError unless ``path`` is a readable TIFF file (fax pages are TIFF class F)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise InvalidFieldError(field, f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if head not in _TIFF_HEADS:
        raise InvalidFieldError(field, f"{str(path)!r} is not a TIFF file ({_TIFF_HINT})")


def check_tiff_bytes(data: bytes, field: str = "tiff") -> None:
    """InvalidFieldError unless ``data`` are a TIFF file's bytes of at most :data:`MAX_FAX_BYTES`."""
    if len(data) > MAX_FAX_BYTES:
        raise InvalidFieldError(field, f"{len(data)} bytes: a fax may be at most {MAX_FAX_BYTES} bytes")
    if data[:4] not in _TIFF_HEADS:
        raise InvalidFieldError(field, f"not a TIFF file ({_TIFF_HINT})")


def tiff_pages(data: bytes) -> int:
    """The pages (image file directories) of a TIFF file's ``data``; 0 when it is no TIFF or
    its first directory is missing. A broken chain ends the count (never raises)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8 or struct.unpack(order + "H", data[2:4])[0] != 42:
        return 0
    offset = struct.unpack(order + "I", data[4:8])[0]
    seen: set[int] = set()
    while offset and offset not in seen and offset + 2 <= len(data) and len(seen) < _MAX_PAGES:
        entries = struct.unpack(order + "H", data[offset:offset + 2])[0]
        end = offset + 2 + 12 * entries
        if end + 4 > len(data):  # a directory cut short: no page
            break
        seen.add(offset)
        offset = struct.unpack(order + "I", data[end:end + 4])[0]
    return len(seen)


def send_deadline(placed_at: datetime, ring_seconds: int, pages: int) -> datetime:
    """When a fax being sent, placed at ``placed_at``, is given up if Asterisk has not reported
    it: the ring time, :data:`SECONDS_PER_PAGE` for each page (at least one) and
    :data:`SEND_MARGIN_SECONDS`."""
    return placed_at + timedelta(seconds=ring_seconds + max(pages, 1) * SECONDS_PER_PAGE + SEND_MARGIN_SECONDS)


def inbox_fax_id(name: str) -> str:
    """The id of the received fax whose TIFF in the fax inbox is called ``name``: the uniqueid
    in the ``<UTC time>-<uniqueid>.tif`` that ``[fax-in]`` names it, else the name without
    ``.tif`` (a file put there by hand)."""
    match = _INBOX_NAME.match(name)
    return (match["id"] if match else name.removesuffix(".tif"))[:64]


def found_in_inbox(name: str, path: str, size_bytes: int, modified: float, pages: int) -> FaxRecord:
    """The record of a received fax known only from its TIFF ``name`` in the fax inbox (its
    report was missed): the id (:func:`inbox_fax_id`) and the start time from the name, else
    the time the file was last written (``modified``, epoch seconds), which is also when the
    fax ended; the caller's number and how the fax ended are not known."""
    ended = datetime.fromtimestamp(modified, UTC)
    started = ended
    match = _INBOX_NAME.match(name)
    if match:
        try:
            started = min(datetime.strptime(match["time"], "%Y%m%d-%H%M%S").replace(tzinfo=UTC), ended)
        except ValueError:
            pass
    return FaxRecord(fax_id=inbox_fax_id(name), direction="inbound", number="", status=RECEIVED,
                     error=f"{NO_RESULT}: filed from the file in the fax inbox", pages=pages, bitrate=0,
                     remote_station="", path=path, size_bytes=size_bytes, created_at=started, ended_at=ended)
