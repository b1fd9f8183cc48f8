"""Plain values exchanged with the storage layer (pure: no SQLAlchemy, no I/O).

The repository hands out the frozen dataclasses :class:`Customer`, :class:`CallRecord`
and :class:`Recording`, never ORM rows, so reactor-side code can keep and pass them
around freely. Inputs are frozen dataclasses too (``New*`` to create, ``*Update`` to
change some fields; a field left at :data:`UNSET` is not touched). They validate and
normalise themselves when built, raising ValueError that starts with the field name,
e.g. ``csat: must be 1..5, got 7``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from callcenter.state.queues import QUEUE_RESULTS

DIRECTIONS: Final = ("inbound", "outbound")
"""Allowed values of a call record's ``direction``."""

CSAT_MIN: Final = 1
CSAT_MAX: Final = 5


class InvalidFieldError(ValueError):
    """An input field is invalid; the message starts with the field name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks a field of an ``*Update`` that is to be left as it is."""

_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE_RE = re.compile(r"\+?[0-9]{3,15}")
_SPREADSHEET_NUMBER_RE = re.compile(r"\s*\+?[0-9]+\.0+\s*")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_FORMAT_RE = re.compile(r"[a-z0-9]{1,16}")
TRANSFER_HOP_RE: Final = re.compile(r"(?P<agent>[0-9]*)>(?P<target>[^>@\s]+(?:@[^>@\s]+)?)@(?P<offset>[0-9]+)")
"""A call record's transfer hop (``transfers``): ``1001>billing@125``, the agent (empty when
the transferring channel was no agent's), the queue or ``exten@context``, the seconds into
the call (:mod:`callcenter.transfer`)."""


# --- field validators: each returns the normalised value or raises InvalidFieldError ---


def normalize_phone(value: object, field: str = "phone") -> str:
    """Return ``value`` as an E.164-like number: optional ``+`` and 3 to 15 digits.

    Spaces, dots, dashes, slashes and parentheses are dropped:
    ``"+86 (20) 1234-5678"`` becomes ``"+862012345678"``.
    """
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"must be a string, got {value!r}")
    if _SPREADSHEET_NUMBER_RE.fullmatch(value):
        # a column a spreadsheet saved as numbers (13800000001.0): dropping the dot as a
        # separator would make it another, longer number
        raise InvalidFieldError(field, f"reads as a spreadsheet's decimal number, got {value!r}: "
                                       "save the column as text (13800000001, not 13800000001.0)")
    compact = _PHONE_SEPARATORS.sub("", value)
    if not _PHONE_RE.fullmatch(compact):
        raise InvalidFieldError(
            field, f"must be 3 to 15 digits with an optional leading +, got {value!r}"
        )
    return compact


_CN_MOBILE_RE = re.compile(r"1[0-9]{10}")
_CN_ZERO_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")  # after a 0: no landline is 0 + 1[3-9] + 9 digits
_CN_NON_GEOGRAPHIC_RE = re.compile(r"[48]00[0-9]{7}")  # 400 and 800 service numbers
# area code without its 0 (10 Beijing, 2x the other big cities, 3 digits elsewhere) and
# a subscriber number of 7 or 8 digits
_CN_AREA_AND_SUBSCRIBER_RE = re.compile(r"(?:10|2[0-9]|[3-9][0-9]{2})[0-9]{7,8}")


def _china_domestic(significant: str) -> str | None:
    """The domestic form of a Chinese national significant number, or None if it is not one.

    Mobiles and 400/800 numbers are dialled as they are; a geographic number (area code and
    subscriber, 9 to 11 digits) takes the trunk prefix 0. A significant number already
    written with its 0 (``+86 (0)20 ...``) keeps it. A mobile written with a 0 before it
    (``013800138000``: how landline trunks present an out-of-town mobile, the old long-distance
    prefix) is the mobile.
    """
    if _CN_MOBILE_RE.fullmatch(significant) or _CN_NON_GEOGRAPHIC_RE.fullmatch(significant):
        return significant
    if significant.startswith("0") and _CN_ZERO_MOBILE_RE.fullmatch(significant[1:]):
        return significant[1:]
    if _CN_AREA_AND_SUBSCRIBER_RE.fullmatch(significant):
        return "0" + significant
    if significant.startswith("0") and _CN_AREA_AND_SUBSCRIBER_RE.fullmatch(significant[1:]):
        return significant
    return None


def dialable(phone: str | None) -> str:
    """``phone`` if it is a telephone number one can call back, else "" (a withheld caller
    id, ``anonymous`` or empty, is not)."""
    if not phone:
        return ""
    try:
        canonical_phone(phone)
    except InvalidFieldError:
        return ""
    return phone


def canonical_phone(value: object, field: str = "phone") -> str:
    """One spelling per telephone line, so the same line always matches itself.

    :func:`normalize_phone` first (punctuation dropped, 3 to 15 digits, optional ``+``);
    then China's numbering plan (the site's), so a number reads the way it is dialled
    domestically:

    - the international prefix ``00`` becomes ``+`` (``0033 1 23 45`` is ``+3312345``);
    - China's country code goes (``+86``, ``0086``, or a bare ``86`` before what can only
      be a Chinese number): mobiles and 400/800 numbers stand alone (``+86 138 0013 8000``
      is ``13800138000``), geographic numbers take the trunk 0 (``+86 20 1234 5678`` is
      ``02012345678``, like ``020-1234-5678``);
    - a mobile written with a 0 before it (``013800138000``, ``+86 0 138...``: how landline
      trunks present an out-of-town mobile) is the mobile;
    - everything else (other countries, short service numbers, a local number without
      its area code) stays as written.

    Customers, leads and the do-not-call list store this form, and a number is put in this
    form before it is looked up in them.
    """
    phone = normalize_phone(value, field)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if phone.startswith("+86"):
        return _china_domestic(phone[3:]) or phone
    if phone.startswith("86") and not phone.startswith("+"):
        significant = phone[2:]
        # bare 86: only where no domestic number could start that way (11 to 13 digits)
        if 11 <= len(phone) <= 13 and not significant.startswith("0"):
            return _china_domestic(significant) or phone
    if phone.startswith("0") and _CN_ZERO_MOBILE_RE.fullmatch(phone[1:]):
        return phone[1:]  # a mobile with the old long-distance 0 (how landline trunks present it)
    return phone


def _required_text(field: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"must be a string, got {value!r}")
    text = value.strip()
    if not text:
        raise InvalidFieldError(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidFieldError(
            field, f"must be at most {max_length} characters, got {len(text)}"
        )
    return text


def optional_text(field: str, value: object, max_length: int) -> str | None:
    """None or a blank string give None; otherwise a stripped string of bounded length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"must be a string or None, got {value!r}")
    if not value.strip():
        return None
    return _required_text(field, value, max_length)


def _free_text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFieldError(field, f"must be a string, got {value!r}")
    return value


def _email(value: object) -> str | None:
    email = optional_text("email", value, 254)
    if email is not None and not _EMAIL_RE.fullmatch(email):
        raise InvalidFieldError(
            "email", f"must look like name@example.org, got {value!r}"
        )
    return email


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidFieldError(field, f"must be True or False, got {value!r}")
    return value


def aware_datetime(field: str, value: object) -> datetime:
    """Return timezone-aware ``value`` converted to UTC; InvalidFieldError if naive."""
    if not isinstance(value, datetime):
        raise InvalidFieldError(field, f"must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidFieldError(
            field, f"must be timezone-aware, got naive {value.isoformat()}"
        )
    return value.astimezone(UTC)


def _optional_datetime(field: str, value: object) -> datetime | None:
    return None if value is None else aware_datetime(field, value)


def _csat(value: object) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not CSAT_MIN <= value <= CSAT_MAX
    ):
        raise InvalidFieldError(
            "csat", f"must be {CSAT_MIN}..{CSAT_MAX}, got {value!r}"
        )
    return value


def _direction(value: object) -> str:
    if value not in DIRECTIONS:
        raise InvalidFieldError(
            "direction", f"must be 'inbound' or 'outbound', got {value!r}"
        )
    assert isinstance(value, str)
    return value


def non_negative_int(field: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise InvalidFieldError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidFieldError(field, f"must be an integer >= 0, got {value!r}")
    return value


def _optional_seconds(field: str, value: object) -> int | None:
    return None if value is None else non_negative_int(field, value)


MAX_PAUSE_REASON: Final = 128
"""The longest pause reason (the agent state log's column): longer ones are refused when given."""

MAX_ID: Final = 2**63 - 1
"""The largest id (and count) SQL holds: BIGINT, SQLite's INTEGER."""


def positive_int(field: str, value: object) -> int:
    """Return ``value`` if it is an int from 1 to :data:`MAX_ID`, else raise InvalidFieldError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidFieldError(field, f"must be an integer >= 1, got {value!r}")
    if value > MAX_ID:
        raise InvalidFieldError(field, f"must be at most {MAX_ID}, got {value}")
    return value


def is_digits(text: str) -> bool:
    """``text`` is ASCII digits only: ``str.isdigit`` is true for ``²`` too (which ``int``
    refuses) and for other scripts' digits (which it reads), neither a number here."""
    return text.isascii() and text.isdigit()


def whole_number(field: str, text: str) -> int:
    """``text`` (a URL segment, a form field) as an id or count from 1 to :data:`MAX_ID`;
    InvalidFieldError naming ``field`` otherwise."""
    if not is_digits(text) or not text.strip("0"):
        raise InvalidFieldError(field, f"expected a whole number of at least 1, got {text[:40]!r}")
    if len(text.lstrip("0")) > len(str(MAX_ID)):  # int() of thousands of digits is refused, and slow
        raise InvalidFieldError(field, f"must be at most {MAX_ID}, got {len(text)} digits")
    return positive_int(field, int(text))


def _optional_id(field: str, value: object) -> int | None:
    return None if value is None else positive_int(field, value)


def _duration(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFieldError(
            "duration_seconds", f"must be a number >= 0, got {value!r}"
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidFieldError(
            "duration_seconds", f"must be a number >= 0, got {value!r}"
        )
    return float(value)


def _ivr_path(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidFieldError(
            "ivr_path", f"must be a sequence of node names, got {value!r}"
        )
    path = tuple(value)
    for node in path:
        if not isinstance(node, str) or not node:
            raise InvalidFieldError(
                "ivr_path", f"node names must be non-empty strings, got {node!r}"
            )
    return path


def _transfers(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidFieldError("transfers", f"must be a sequence of hops (AGENT>QUEUE@SECONDS), got {value!r}")
    hops = tuple(value)
    for item in hops:
        if not isinstance(item, str) or not TRANSFER_HOP_RE.fullmatch(item):
            raise InvalidFieldError("transfers", f"a hop reads AGENT>QUEUE@SECONDS (e.g. 1001>billing@125), got {item!r}")
    return hops


def _recording_format(value: object) -> str:
    if not isinstance(value, str) or not _FORMAT_RE.fullmatch(value):
        raise InvalidFieldError(
            "format", f"must be a lower-case file format like 'wav', got {value!r}"
        )
    return value


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _check(obj: object, name: str, check: Any) -> None:
    """Normalise field ``name`` of a frozen dataclass with ``check`` unless it is UNSET."""
    value = getattr(obj, name)
    if value is not UNSET:
        _set(obj, name, check(value))


# --- customers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    """A stored customer."""

    id: int
    name: str
    phone: str
    email: str | None
    vip: bool
    notes: str
    created_at: datetime
    updated_at: datetime


_CUSTOMER_CHECKS: Final[dict[str, Any]] = {
    "name": lambda v: _required_text("name", v, 200),
    "phone": canonical_phone,
    "email": _email,
    "vip": lambda v: _flag("vip", v),
    "notes": lambda v: _free_text("notes", v),
}


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A customer to create; ``phone`` is stored canonical (see :func:`canonical_phone`)."""

    name: str
    phone: str
    email: str | None = None
    vip: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        for name, check in _CUSTOMER_CHECKS.items():
            _check(self, name, check)


@dataclass(frozen=True, slots=True)
class CustomerUpdate:
    """Fields of a customer to change; UNSET fields are left as they are."""

    name: str | _Unset = UNSET
    phone: str | _Unset = UNSET
    email: str | None | _Unset = UNSET
    vip: bool | _Unset = UNSET
    notes: str | _Unset = UNSET

    def __post_init__(self) -> None:
        for name, check in _CUSTOMER_CHECKS.items():
            _check(self, name, check)


# --- call records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A stored call record. Datetimes are timezone-aware UTC."""

    id: int
    ticket_number: str
    started_at: datetime
    direction: str
    customer_id: int | None
    customer_name: str | None
    phone: str | None
    issue_type: str | None
    description: str
    outcome: str | None
    follow_up_at: datetime | None
    csat: int | None
    agent_id: str | None
    queue: str | None
    uniqueid: str | None
    linkedid: str | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: int | None
    talk_seconds: int | None
    queue_result: str | None
    """How the caller's stay in ``queue`` ended: answered, abandoned, unanswered (None: never queued)."""
    ivr_path: tuple[str, ...]
    created_at: datetime
    sale_amount: Decimal | None = None
    """The sale the agent made on this call, in yuan to the fen (None: no sale recorded)."""
    transfers: tuple[str, ...] = ()
    """Each time an agent handed the call on: ``AGENT>QUEUE@SECONDS`` (seconds into the call;
    :mod:`callcenter.transfer`). ``agent_id`` is the last agent, ``queue`` the first queue."""


MONEY_MAX: Final = Decimal(10000000000)
"""Amounts (yuan) stay below this: ten billion, in fen a BIGINT with room to spare."""


def money(field: str, value: object) -> Decimal | None:
    """None, or an amount in yuan >= 0 with at most two decimals (a Decimal, int or string:
    ``"1999.90"``; a float is refused, it cannot hold fen exactly)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise InvalidFieldError(field, f"must be an amount such as \"199.90\" (a string or whole number), got {value!r}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except ArithmeticError:
        raise InvalidFieldError(field, f"must be an amount such as \"199.90\", got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount >= MONEY_MAX:
        raise InvalidFieldError(field, f"must be from 0 to under {MONEY_MAX:,} yuan, got {value!r}")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidFieldError(field, f"at most two decimals (fen), got {value!r}")
    return amount.quantize(Decimal("0.01"))


def _queue_result(value: object) -> str | None:
    if value is None or value in QUEUE_RESULTS:
        return value
    raise InvalidFieldError("queue_result", f"must be one of {', '.join(QUEUE_RESULTS)} or None, got {value!r}")


# Checks shared by NewCallRecord and CallRecordUpdate, by field name.
_CALL_RECORD_CHECKS: Final[dict[str, Any]] = {
    "customer_id": lambda v: _optional_id("customer_id", v),
    "customer_name": lambda v: optional_text("customer_name", v, 200),
    "phone": lambda v: optional_text("phone", v, 32),
    "issue_type": lambda v: optional_text("issue_type", v, 64),
    "description": lambda v: _free_text("description", v),
    "outcome": lambda v: optional_text("outcome", v, 64),
    "follow_up_at": lambda v: _optional_datetime("follow_up_at", v),
    "csat": _csat,
    "agent_id": lambda v: optional_text("agent_id", v, 64),
    "queue": lambda v: optional_text("queue", v, 64),
    "uniqueid": lambda v: optional_text("uniqueid", v, 64),
    "linkedid": lambda v: optional_text("linkedid", v, 64),
    "answered_at": lambda v: _optional_datetime("answered_at", v),
    "ended_at": lambda v: _optional_datetime("ended_at", v),
    "wait_seconds": lambda v: _optional_seconds("wait_seconds", v),
    "talk_seconds": lambda v: _optional_seconds("talk_seconds", v),
    "queue_result": _queue_result,
    "ivr_path": _ivr_path,
    "sale_amount": lambda v: money("sale_amount", v),
    "transfers": _transfers,
}


@dataclass(frozen=True, slots=True)
class NewCallRecord:
    """A call record to create; the repository allocates its ticket number.

    ``phone`` is the number as signalled (CallerID / dialled number), kept as given
    apart from surrounding blanks. ``description`` holds the agent's notes.
    """

    started_at: datetime
    direction: str
    customer_id: int | None = None
    customer_name: str | None = None
    phone: str | None = None
    issue_type: str | None = None
    description: str = ""
    outcome: str | None = None
    follow_up_at: datetime | None = None
    csat: int | None = None
    agent_id: str | None = None
    queue: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    queue_result: str | None = None
    ivr_path: tuple[str, ...] = ()
    sale_amount: Decimal | None = None
    transfers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "started_at", aware_datetime("started_at", self.started_at))
        _set(self, "direction", _direction(self.direction))
        for name, check in _CALL_RECORD_CHECKS.items():
            _check(self, name, check)


@dataclass(frozen=True, slots=True)
class CallRecordUpdate:
    """Fields of a call record to change (disposition, CSAT, notes, timings...).

    UNSET fields are left as they are; None clears an optional field.
    """

    customer_id: int | None | _Unset = UNSET
    customer_name: str | None | _Unset = UNSET
    phone: str | None | _Unset = UNSET
    issue_type: str | None | _Unset = UNSET
    description: str | _Unset = UNSET
    outcome: str | None | _Unset = UNSET
    follow_up_at: datetime | None | _Unset = UNSET
    csat: int | None | _Unset = UNSET
    agent_id: str | None | _Unset = UNSET
    queue: str | None | _Unset = UNSET
    uniqueid: str | None | _Unset = UNSET
    linkedid: str | None | _Unset = UNSET
    answered_at: datetime | None | _Unset = UNSET
    ended_at: datetime | None | _Unset = UNSET
    wait_seconds: int | None | _Unset = UNSET
    talk_seconds: int | None | _Unset = UNSET
    queue_result: str | None | _Unset = UNSET
    ivr_path: tuple[str, ...] | _Unset = UNSET
    sale_amount: Decimal | None | _Unset = UNSET
    transfers: tuple[str, ...] | _Unset = UNSET
    sale_agent_id: str | None | _Unset = UNSET
    """Who the sale written with it is paid to (with ``sale_amount`` only; unset: the
    record's agent)."""
    sale_team: str | None | _Unset = UNSET
    """The seller's team now (with ``sale_amount`` only): its lead earns the lead share
    even if the seller changes team later (unset: decided by the team at report time)."""
    outcome_if_none: str | _Unset = UNSET
    """The outcome to set if the record has none (the engine's call-back note at hangup
    never replaces an agent's disposition); ``outcome`` given too wins."""

    def __post_init__(self) -> None:
        for name, check in _CALL_RECORD_CHECKS.items():
            _check(self, name, check)
        _check(self, "sale_agent_id", lambda v: optional_text("sale_agent_id", v, 64))
        _check(self, "sale_team", lambda v: optional_text("sale_team", v, 64))
        _check(self, "outcome_if_none", lambda v: optional_text("outcome_if_none", v, 64))
        if self.sale_agent_id is not UNSET and self.sale_amount is UNSET:
            raise InvalidFieldError("sale_agent_id", "names the seller of a sale_amount given with it")
        if self.sale_team is not UNSET and self.sale_amount is UNSET:
            raise InvalidFieldError("sale_team", "names the seller's team of a sale_amount given with it")


# --- recordings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recording:
    """A stored recording; ``purged_at`` is set once the file was deleted."""

    id: int
    call_record_id: int
    agent_id: str | None
    path: str
    started_at: datetime
    duration_seconds: float
    size_bytes: int
    format: str
    purged_at: datetime | None
    pauses: tuple[tuple[float, float], ...] = ()
    """(start, end) seconds into the file where an agent paused the recording: silence there."""


@dataclass(frozen=True, slots=True)
class NewRecording:
    """A recording to add to a call record."""

    call_record_id: int
    path: str
    started_at: datetime
    duration_seconds: float
    size_bytes: int
    format: str
    agent_id: str | None = None
    pauses: tuple[tuple[float, float], ...] = ()
    """(start, end) seconds into the file where an agent paused the recording."""

    def __post_init__(self) -> None:
        _set(
            self, "call_record_id", positive_int("call_record_id", self.call_record_id)
        )
        _set(self, "path", _required_text("path", self.path, 1024))
        _set(self, "started_at", aware_datetime("started_at", self.started_at))
        _set(self, "duration_seconds", _duration(self.duration_seconds))
        _set(self, "size_bytes", non_negative_int("size_bytes", self.size_bytes))
        _set(self, "format", _recording_format(self.format))
        _set(self, "agent_id", optional_text("agent_id", self.agent_id, 64))
        _set(self, "pauses", _pauses(self.pauses))


def _pauses(value: object) -> tuple[tuple[float, float], ...]:
    """Pause spans: (start, end) pairs of finite seconds, 0 <= start <= end, in order."""
    if not isinstance(value, (tuple, list)):
        raise InvalidFieldError("pauses", f"a list of (start, end) seconds, got {value!r}")
    spans: list[tuple[float, float]] = []
    for item in value:
        if (not isinstance(item, (tuple, list)) or len(item) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in item)
                or not 0 <= item[0] <= item[1] or (spans and item[0] < spans[-1][1])):
            raise InvalidFieldError("pauses", f"each pause is (start, end) seconds, 0 <= start <= end, in order; "
                                              f"got {item!r}")
        spans.append((float(item[0]), float(item[1])))
    return tuple(spans)


def changed_fields(update: CustomerUpdate | CallRecordUpdate) -> dict[str, object]:
    """The fields of an ``*Update`` that are not UNSET, by name."""
    return {
        f.name: getattr(update, f.name)
        for f in fields(update)
        if getattr(update, f.name) is not UNSET
    }
