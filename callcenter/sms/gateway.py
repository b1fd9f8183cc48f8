"""The SMS gateway's side of SMS broadcast, pure: addresses, the sending window, the
rate, and the replies the dialplan reports (docs/sms.md).

Messages leave through Asterisk's ``MessageSend`` to the ``sms-gateway`` PJSIP endpoint
(a GSM gateway or the operator's SMS centre, reached over SIP MESSAGE); replies come
back to the sender number and the dialplan's ``[sms-in]`` reports each as a
``UserEvent: SmsReceived`` with ``To``, and ``From`` and ``Body`` base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from callcenter.sms.text import is_opt_out, sip_user

__all__ = ["GATEWAY_ENDPOINT", "Reply", "ReplyError", "Tokens", "destination", "in_window", "parse_reply",
           "sender_uri"]

GATEWAY_ENDPOINT = "sms-gateway"
"""The PJSIP endpoint rendered for ``sms.gateway`` (callcenter.asterisk.render)."""


def destination(phone: str, gateway: str) -> str:
    """``MessageSend``'s Destination: the number, through the gateway's endpoint."""
    return f"pjsip:{GATEWAY_ENDPOINT}/sip:{phone}@{gateway}"


def sender_uri(sender: str, gateway: str) -> str:
    """``MessageSend``'s From: the sender number, which replies are addressed to."""
    return f'"{sender}" <sip:{sender}@{gateway}>'


def in_window(hours: tuple[time, time], zone: ZoneInfo, now: datetime) -> bool:
    """Is ``now`` (aware) inside the sending window ``[start, end)`` of local time? (An end
    of ``time.max`` is the settings' 24:00: the whole rest of the day.)"""
    local = now.astimezone(zone).time()
    return hours[0] <= local < hours[1]


class Tokens:
    """A token bucket: ``rate`` messages a second, at most one second's worth saved up
    (an idle gateway does not earn a burst)."""

    def __init__(self, rate: float, now: float) -> None:
        if not rate > 0:
            raise ValueError("rate must be above 0")
        self.rate = rate
        self.level = 0.0
        self._at = now

    def take(self, now: float) -> int:
        """Whole messages that may go now (the tokens are spent)."""
        self.level = min(self.level + (now - self._at) * self.rate, max(self.rate, 1.0))
        self._at = now
        whole = int(self.level)
        self.level -= whole
        return whole


class Headers(Protocol):
    """What an AMI event gives: its headers by name (case-insensitive)."""

    def get(self, name: str, default: str | None = None, /) -> str | None: ...


class ReplyError(ValueError):
    """A ``SmsReceived`` event the engine cannot read (the field is named)."""


@dataclass(frozen=True)
class Reply:
    """A text message to the sender number, as the dialplan reported it."""

    phone: str
    """Who sent it (the user part of its From), or the whole From if it has none."""
    to: str
    body: str
    opt_out: bool
    """The body asks to hear no more (``T``, ``退订``...): the number goes on the DNC list."""


def _decoded(event: Headers, field: str) -> str:
    raw = event.get(field)
    if raw is None:
        raise ReplyError(f"SmsReceived: no {field} header")
    try:
        return base64.b64decode(raw.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ReplyError(f"SmsReceived: {field} is not base64 of UTF-8 text ({exc})") from None


def parse_reply(event: Headers) -> Reply | None:
    """The reply a ``UserEvent: SmsReceived`` reports; None for any other event.
    :class:`ReplyError` names the header that is missing or unreadable."""
    if event.get("UserEvent") != "SmsReceived":
        return None
    sender, body = _decoded(event, "From"), _decoded(event, "Body")
    to = (event.get("To") or "").strip()
    if not to:
        raise ReplyError("SmsReceived: no To header")
    return Reply(phone=sip_user(sender) or sender.strip(), to=to, body=body, opt_out=is_opt_out(body))
