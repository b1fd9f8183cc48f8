"""Fax: received faxes filed from the fax number, faxes sent from TIFF pages (docs/fax.md).

The dialplan (``dialplans/fax.conf``) does the fax work with ``ReceiveFAX``/``SendFAX``
(res_fax with spandsp) and reports every fax, received or sent, once, in a ``UserEvent``
``CCFax`` from its hangup handler. :class:`FaxService` turns those events into rows of the
``faxes`` table and places outgoing faxes with ``Originate``. At most ``fax.channels`` faxes
are under way at once (the reference site has 4 fax channels): the dialplan refuses a fifth
incoming one (busy), the service a fifth outgoing one (try again).

This module is pure (the event's parsing, the page check, the records);
:mod:`callcenter.fax_service` moves the bytes and Deferreds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from callcenter.ami.codec import Message
from callcenter.storage.records import InvalidFieldError

__all__ = ["FAX_EVENT", "MAX_FAX_BYTES", "FaxBusy", "FaxRecord", "FaxResult", "check_tiff", "check_tiff_bytes",
           "parse_fax_event"]

FAX_EVENT: Final = "CCFax"
"""The ``UserEvent`` name the fax dialplan reports each fax with."""

MAX_FAX_BYTES: Final = 10 * 1024 * 1024
"""The largest fax sent as bytes (the API's ``tiff``): a G3 page at 204x196 dpi is about
50 KB, so this is some 200 pages."""

_TIFF_HEADS: Final = (b"II*\x00", b"MM\x00*")
_TIFF_HINT: Final = "make fax pages with gs -sDEVICE=tiffg3 -r204x196 -o page.tif document.pdf"

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
