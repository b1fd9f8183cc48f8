"""SMS text: length and parts, broadcast templates, the sender's policy, opt-out replies (pure).

A broadcast sends one template, filled from each lead's fields, to many numbers. This
module owns everything about the text itself:

- :func:`shape`: the encoding (GSM 03.38 7-bit or UCS-2), the length in the units the
  network counts, and how many parts (billed messages) it takes;
- :func:`template_fields` / :func:`render`: ``{name}`` placeholders, ``{{``/``}}`` for
  literal braces, every error naming its column;
- :class:`SmsPolicy` / :func:`prepare_template` / :func:`check_length`: the rules Chinese
  carriers apply to marketing SMS (the ``【signature】`` first, an opt-out note such as
  ``回T退订`` last, a cap on parts);
- :func:`is_opt_out`: whether a reply asks to unsubscribe;
- :func:`sip_user`: the number in the ``From``/``To`` header of a SIP ``MESSAGE``;
- :func:`is_mobile`: whether a number can take a text at all.

Pure: standard library only, no Twisted, no SQL; the SMS service does the I/O.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

__all__ = [
    "OPT_OUT_WORDS",
    "SmsPolicy",
    "SmsShape",
    "TemplateError",
    "check_length",
    "is_mobile",
    "is_opt_out",
    "prepare_template",
    "render",
    "shape",
    "sip_user",
    "template_fields",
]


class TemplateError(ValueError):
    """A template or message body that cannot be sent; the message says what and where."""


# GSM 03.38 default alphabet, in table order (0x1B, the escape to the extension table, left out).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: sent as ESC + character, so 2 septets each.
_GSM_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

# (units in one single message, units per part of a multipart message: the rest is the UDH)
_GSM7_LIMITS: Final = (160, 153)
_UCS2_LIMITS: Final = (70, 67)


@dataclass(frozen=True)
class SmsShape:
    """How a body goes on the air: its encoding, its length in that encoding, its parts."""

    encoding: str
    """``GSM-7`` or ``UCS-2``."""
    units: int
    """Septets (GSM-7; an extension-table character counts 2) or UTF-16 code units (UCS-2)."""
    parts: int
    """Messages the network bills: 1 up to 160/70 units, else 153/67 units a part; 0 for ``""``."""


def shape(body: str) -> SmsShape:
    """The encoding, length and parts of ``body``.

    GSM-7 if every character is in the GSM 03.38 basic or extension table, else UCS-2 (one
    Chinese character or emoji is enough). A multipart message loses 7 septets (6 bytes) of
    each part to the concatenation header, hence 153 septets or 67 UCS-2 units a part.
    """
    if all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in body):
        encoding = "GSM-7"
        units = sum(2 if char in _GSM_EXTENSION else 1 for char in body)
        single, per_part = _GSM7_LIMITS
    else:
        encoding = "UCS-2"
        # A character outside the BMP (most emoji) is a surrogate pair: 2 code units.
        units = sum(2 if ord(char) > 0xFFFF else 1 for char in body)
        single, per_part = _UCS2_LIMITS
    if units == 0:
        parts = 0
    elif units <= single:
        parts = 1
    else:
        parts = math.ceil(units / per_part)
    return SmsShape(encoding=encoding, units=units, parts=parts)


_FIELD_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Field:
    """A ``{name}`` placeholder and the 1-based column of its ``{``."""

    name: str
    column: int


def _parse(template: str) -> tuple[str | _Field, ...]:
    """Split ``template`` into literal text (braces unescaped) and placeholders.

    Columns count characters from the start of the template, 1-based.
    """
    pieces: list[str | _Field] = []
    literal: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        column = index + 1
        if char == "}":
            if template.startswith("}}", index):
                literal.append("}")
                index += 2
                continue
            raise TemplateError(f"template: single '}}' at column {column} (write '}}}}' for a literal brace)")
        if char != "{":
            literal.append(char)
            index += 1
            continue
        if template.startswith("{{", index):
            literal.append("{")
            index += 2
            continue
        end = _next_brace(template, index + 1)
        if end < 0 or template[end] == "{":
            raise TemplateError(f"template: unclosed '{{' at column {column} (write '{{{{' for a literal brace)")
        name = template[index + 1 : end]
        if not _FIELD_NAME.fullmatch(name):
            raise TemplateError(
                f"template: bad field name {{{name}}} at column {column}"
                " (letters, digits and _, not starting with a digit)"
            )
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(_Field(name, column))
        index = end + 1
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def _next_brace(text: str, start: int) -> int:
    """Index of the first ``{`` or ``}`` at or after ``start``, or -1."""
    found = [index for index in (text.find("{", start), text.find("}", start)) if index >= 0]
    return min(found, default=-1)


def template_fields(template: str) -> tuple[str, ...]:
    """The placeholder names of ``template`` in order of first use, each once.

    :class:`TemplateError` names the column of an unbalanced brace or a bad name.
    """
    names = (piece.name for piece in _parse(template) if isinstance(piece, _Field))
    return tuple(dict.fromkeys(names))


def render(template: str, fields: Mapping[str, str]) -> str:
    """``template`` with every placeholder replaced by its value in ``fields``.

    Values go in as they are (a ``{`` in a customer's name is not a placeholder); fields the
    template does not use are ignored. :class:`TemplateError` names a missing field.
    """
    out: list[str] = []
    for piece in _parse(template):
        if isinstance(piece, str):
            out.append(piece)
        elif piece.name in fields:
            out.append(fields[piece.name])
        else:
            given = ", ".join(sorted(fields)) or "none"
            raise TemplateError(f"template: missing field {{{piece.name}}} at column {piece.column} (given: {given})")
    return "".join(out)


@dataclass(frozen=True)
class SmsPolicy:
    """The sender's rules for a marketing broadcast (Chinese carriers' requirements)."""

    signature: str = ""
    """The sender's name, e.g. ``【某某公司】``; put at the start of every message."""
    opt_out_note: str = ""
    """How to unsubscribe, e.g. ``回T退订``; put at the end of every message."""
    max_parts: int = 3
    """The longest message allowed, in parts (each part is billed)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_parts, bool) or not isinstance(self.max_parts, int) or self.max_parts < 1:
            raise ValueError(f"sms policy: max_parts must be a whole number of at least 1, got {self.max_parts!r}")


def _escape(text: str) -> str:
    """``text`` as template source: its braces doubled so :func:`render` keeps them."""
    return text.replace("{", "{{").replace("}", "}}")


def prepare_template(template: str, policy: SmsPolicy, allowed_fields: Collection[str]) -> str:
    """Check a broadcast template and complete it with the policy's signature and note.

    The template is stripped; it must not be empty and may use only ``allowed_fields`` (the
    columns a lead has). The signature is put first unless the template already starts with
    it, the opt-out note appended as is (no separator) unless the template already contains
    it, so preparing twice changes nothing. Columns in errors are the given template's.
    """
    pieces = _parse(template)
    allowed = sorted(allowed_fields)
    for piece in pieces:
        if isinstance(piece, _Field) and piece.name not in allowed_fields:
            close = difflib.get_close_matches(piece.name, allowed, n=1, cutoff=0.6)
            hint = f", did you mean {{{close[0]}}}?" if close else ""
            listed = ", ".join(allowed) or "none"
            raise TemplateError(
                f"template: unknown field {{{piece.name}}} at column {piece.column} (fields: {listed}){hint}"
            )
    text = template.strip()
    if not text:
        raise TemplateError("template: empty")
    signature = _escape(policy.signature)
    if not text.startswith(signature):
        text = signature + text
    note = _escape(policy.opt_out_note)
    if note not in text:
        text += note
    return text


def check_length(body: str, policy: SmsPolicy) -> SmsShape:
    """The shape of a rendered ``body``; :class:`TemplateError` if it takes too many parts."""
    result = shape(body)
    if result.parts > policy.max_parts:
        per_part = _GSM7_LIMITS[1] if result.encoding == "GSM-7" else _UCS2_LIMITS[1]
        raise TemplateError(
            f"message: too long, {len(body)} characters ({result.units} {result.encoding} units)"
            f" take {result.parts} parts, at most {policy.max_parts} allowed"
            f" ({policy.max_parts * per_part} units)"
        )
    return result


OPT_OUT_WORDS: Final[frozenset[str]] = frozenset(
    {"T", "TD", "N", "STOP", "UNSUBSCRIBE", "退订", "取消", "退", "0000"}
)
"""Replies that unsubscribe, as :func:`is_opt_out` normalises them."""


def is_opt_out(body: str) -> bool:
    """Whether a reply asks to unsubscribe.

    The reply is NFKC-normalised (full-width ``Ｔ`` becomes ``T``), stripped of whitespace,
    punctuation and invisible characters anywhere, and upper-cased; it is an opt-out only if
    what is left is exactly one of :data:`OPT_OUT_WORDS`. A longer reply that merely
    contains one (``回T退订``, our own note quoted back; ``Thanks``) is not.
    """
    normal = unicodedata.normalize("NFKC", body)
    kept = "".join(char for char in normal if not _is_noise(char))
    return kept.upper() in OPT_OUT_WORDS


def _is_noise(char: str) -> bool:
    """Whitespace, punctuation (``。``, ``!``), control or format (zero-width) characters."""
    category = unicodedata.category(char)
    return char.isspace() or category[0] in "PZ" or category in ("Cc", "Cf")


def sip_user(header: str) -> str | None:
    """The user part (the number) of the ``sip:``/``sips:``/``tel:`` URI in a From/To header.

    Accepts a name-addr (``"Zhang" <sip:139...@host;transport=udp>;tag=1``) or a bare URI.
    The user's parameters and password are dropped and %-escapes decoded. ``None`` when
    there is no such URI or it has no user part (``<sip:host>``).
    """
    rest = header.strip()
    quoted = rest.startswith('"')
    if quoted:
        after = _after_quoted(rest)
        if after is None:
            return None
        rest = after
    if "<" in rest:
        uri, closed, _ = rest.partition("<")[2].partition(">")
        if not closed:
            return None
    elif quoted:
        return None  # a quoted display name must be followed by <uri>
    else:
        uri = rest
    scheme, colon, target = uri.strip().partition(":")
    scheme = scheme.lower()
    if not colon:
        return None
    if scheme == "tel":
        user = target.partition(";")[0]
    elif scheme in ("sip", "sips"):
        userinfo, at, host = target.partition("@")
        if not at or not host.strip():
            return None
        user = userinfo.partition(";")[0].partition(":")[0]
    else:
        return None
    user = unquote(user)
    if not user or any(char.isspace() or char in '<>"@' for char in user):
        return None
    return user


def _after_quoted(text: str) -> str | None:
    """What follows the quoted string at the start of ``text``, or ``None`` if unterminated."""
    index = 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return text[index + 1 :]
        index += 1
    return None


_MOBILE = re.compile(r"1[3-9][0-9]{9}|\+[1-9][0-9]{6,14}")


def is_mobile(phone: str) -> bool:
    """Can the number (in :func:`~callcenter.storage.records.canonical_phone`'s form) take a
    text? A Chinese mobile (``1[3-9]`` and 9 digits), or a number abroad (``+...``, which
    the gateway's operator decides); not a landline, a 400/800 or a short service number."""
    return _MOBILE.fullmatch(phone) is not None
