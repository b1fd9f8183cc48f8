"""Sans-IO codec for the Asterisk Manager Interface (AMI).

This module owns the AMI wire format and nothing else: bytes in, :class:`Message`
objects out (:class:`AmiParser`), and actions out as bytes (:func:`format_action`).
It performs no I/O and imports nothing from Twisted, so it is tested by feeding it
recorded bytes from a real Asterisk 22.

Wire facts it relies on (Asterisk 22, AMI 11.0.0; see ``docs/architecture.md``):

* The first line of a session is the greeting, ``Asterisk Call Manager/11.0.0``,
  ended by ``\\r\\n`` alone (no blank line after it).
* Every message is ``Name: value`` lines ended by ``\\r\\n`` and closed by a blank
  line. A value may itself contain ``": "``; only the first one separates.
* Headers may repeat (``ChanVariable``, ``Variable``, ``Output``); every value is kept.
* ``Command`` answers with one ``Output:`` header per line since Asterisk 14; older
  servers answered ``Response: Follows`` with raw lines closed by ``--END COMMAND--``.
  Both are parsed, and both expose the lines as :attr:`Message.output`.

Bad input never raises out of :meth:`AmiParser.feed` and never loses bytes: a line
that is not a header is kept in :attr:`Message.problems` (with its text) and the
message is still delivered, so the caller can log it and go on with the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final

__all__ = [
    "AmiActionError",
    "AmiParser",
    "Message",
    "format_action",
]

_TERMINATOR: Final = b"\r\n\r\n"
_FOLLOWS_PREFIX: Final = b"Response: Follows\r\n"
_END_COMMAND: Final = b"--END COMMAND--"
_FOLLOWS_TERMINATOR: Final = b"--END COMMAND--\r\n\r\n"
_ENCODING: Final = "utf-8"
# surrogateescape keeps bytes that are not UTF-8 (a caller name from a broken
# trunk, say) losslessly: they round-trip through format_action unchanged.
_ERRORS: Final = "surrogateescape"


class Message:
    """One AMI message: an event, a response, or an unrecognised frame.

    ``msg.name`` is the ``Event:`` value of an event or the ``Response:`` value of a
    response (``Success``, ``Error``, ``Goodbye``, ``Follows``). Header access:

    * ``msg["Uniqueid"]``: the first value, exact header name (``KeyError`` if absent);
    * ``msg.get("Uniqueid")``: the first value or ``None``; falls back to a
      case-insensitive match when the exact name is absent;
    * ``msg.get_all("ChanVariable")``: every value of a repeated header, in wire order;
    * ``msg.headers``: every ``(name, value)`` pair in wire order.
    """

    __slots__ = ("_multi", "_output", "fields", "is_event", "is_response", "name", "problems", "text")

    fields: dict[str, str]
    _multi: dict[str, list[str]] | None
    name: str | None
    is_event: bool
    is_response: bool
    text: str
    _output: list[str] | None
    problems: tuple[str, ...]

    def __init__(
        self,
        fields: dict[str, str],
        multi: dict[str, list[str]] | None,
        text: str,
        output: list[str] | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        self.fields = fields
        self._multi = multi
        self.text = text
        self._output = output
        self.problems = problems
        event = fields.get("Event")
        if event is not None:
            self.name = event
            self.is_event = True
            self.is_response = False
        else:
            self.name = fields.get("Response")
            self.is_event = False
            self.is_response = self.name is not None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Message:
        """Build a message from ``(name, value)`` pairs (tests, resync, tools)."""
        fields: dict[str, str] = {}
        multi: dict[str, list[str]] | None = None
        lines = []
        for key, value in pairs:
            lines.append(f"{key}: {value}")
            if key in fields:
                if multi is None:
                    multi = {}
                if key not in multi:
                    multi[key] = [fields[key]]
                multi[key].append(value)
            else:
                fields[key] = value
        return cls(fields, multi, "\r\n".join(lines))

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of header ``name`` (case-insensitive fallback)."""
        value = self.fields.get(name)
        if value is not None:
            return value
        lowered = name.lower()
        for key, value in self.fields.items():
            if key.lower() == lowered:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of header ``name`` in wire order (empty if absent)."""
        if self._multi is not None and name in self._multi:
            return list(self._multi[name])
        value = self.fields.get(name)
        return [] if value is None else [value]

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair in wire order, repeated headers included."""
        pairs: list[tuple[str, str]] = []
        for line in self.text.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                pairs.append((key, value))
            elif line.endswith(":"):
                pairs.append((line[:-1], ""))
        return pairs

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` this message echoes, if any."""
        return self.fields.get("ActionID")

    @property
    def output(self) -> list[str]:
        """Lines of ``Command`` output: ``Output:`` headers, or a ``Follows`` body."""
        if self._output is not None:
            return list(self._output)
        return self.get_all("Output")

    @property
    def variables(self) -> dict[str, str]:
        """``ChanVariable: name=value`` headers as a dict (later values win)."""
        result: dict[str, str] = {}
        for item in self.get_all("ChanVariable"):
            key, _, value = item.partition("=")
            result[key] = value
        return result

    def __repr__(self) -> str:
        kind = "Event" if self.is_event else "Response" if self.is_response else "Frame"
        return f"<AMI {kind} {self.name!r} {len(self.fields)} headers>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.text == other.text and self._output == other._output

    def __hash__(self) -> int:
        return hash(self.text)


def _parse_block(text: str) -> Message:
    """Parse one message's text (without its closing blank line)."""
    fields: dict[str, str] = {}
    multi: dict[str, list[str]] | None = None
    problems: list[str] | None = None
    for line in text.split("\r\n"):
        index = line.find(": ")
        if index > 0:
            key = line[:index]
            value = line[index + 2 :]
        elif line.endswith(":") and len(line) > 1:
            key = line[:-1]
            value = ""
        else:
            if problems is None:
                problems = []
            problems.append(f"not an AMI header line: {line!r}")
            continue
        if key in fields:
            if multi is None:
                multi = {}
            values = multi.get(key)
            if values is None:
                multi[key] = [fields[key], value]
            else:
                values.append(value)
        else:
            fields[key] = value
    return Message(fields, multi, text, None, tuple(problems) if problems else ())


def _parse_follows(text: str) -> Message:
    """Parse a legacy ``Response: Follows`` block: headers, then raw output lines."""
    body = text
    end = body.rfind(_END_COMMAND.decode())
    if end >= 0:
        body = body[:end]
    fields: dict[str, str] = {}
    output: list[str] = []
    in_headers = True
    for line in body.replace("\r\n", "\n").split("\n"):
        if in_headers:
            key, sep, value = line.partition(": ")
            if sep and key in ("Response", "Privilege", "ActionID", "Message"):
                fields.setdefault(key, value)
                continue
            in_headers = False
        output.append(line)
    while output and output[-1] == "":
        output.pop()
    return Message(fields, None, text, output)


class AmiParser:
    """Incremental AMI parser: ``feed(bytes)`` returns the messages completed so far.

    The same messages come out whatever the chunking: one byte at a time, 64 KiB at a
    time, or the whole stream at once.
    """

    __slots__ = ("_buffer", "_follows", "_scan_from", "greeting")

    def __init__(self) -> None:
        self._buffer = b""
        self._scan_from = 0
        self._follows = False
        #: The banner line (``Asterisk Call Manager/11.0.0``), once received.
        self.greeting: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Add ``data`` and return every message it completes, in order."""
        buffer = self._buffer + data if self._buffer else data
        messages: list[Message] = []
        start = 0
        if self.greeting is None:
            eol = buffer.find(b"\r\n")
            if eol < 0:
                self._buffer = buffer
                return messages
            self.greeting = buffer[:eol].decode(_ENCODING, _ERRORS)
            start = eol + 2
            self._scan_from = start
        scan = max(self._scan_from, start)
        append = messages.append
        while True:
            if not self._follows and buffer.startswith(_FOLLOWS_PREFIX, start):
                # A legacy Command reply may hold blank lines: read to its own end.
                self._follows = True
                scan = start
            if self._follows:
                end = buffer.find(_FOLLOWS_TERMINATOR, scan)
                if end < 0:
                    self._scan_from = max(start, len(buffer) - len(_FOLLOWS_TERMINATOR) + 1)
                    break
                end += len(_END_COMMAND)
                append(_parse_follows(buffer[start:end].decode(_ENCODING, _ERRORS)))
                self._follows = False
            else:
                end = buffer.find(_TERMINATOR, scan)
                if end < 0:
                    self._scan_from = max(start, len(buffer) - 3)
                    break
                block = buffer[start:end]
                if block.startswith(b"\r\n"):
                    block = block.lstrip(b"\r\n")
                if block:
                    append(_parse_block(block.decode(_ENCODING, _ERRORS)))
            start = end + 4
            scan = start
        self._buffer = buffer[start:]
        self._scan_from -= start
        self._scan_from = max(self._scan_from, 0)
        return messages


class AmiActionError(ValueError):
    """An action that must not be sent: a header or value would corrupt the stream."""


def _check(action: str, name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise AmiActionError(
            f"AMI action {action!r}: value of header {name!r} contains CR or LF "
            f"(refused: it would inject headers): {value!r}"
        )
    if not name or "\r" in name or "\n" in name or ":" in name or name.strip() != name:
        raise AmiActionError(f"AMI action {action!r}: invalid header name {name!r}")


def format_action(
    action: str,
    headers: Mapping[str, object] | Iterable[tuple[str, object]] = (),
    *,
    action_id: str | None = None,
    variables: Mapping[str, object] | None = None,
) -> bytes:
    """Serialize an AMI action to bytes, refusing any CR/LF inside a name or value.

    ``headers`` is a mapping or ``(name, value)`` pairs (pairs allow repeats); a value
    that is a list or tuple becomes one header per item. ``variables`` become repeated
    ``Variable: name=value`` headers. ``None`` values are left out; booleans are written
    ``true``/``false``. Raises :class:`AmiActionError` before anything is produced.
    """
    pairs: list[tuple[str, str]] = [("Action", action)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    items: Iterator[tuple[str, object]] = iter(headers.items() if isinstance(headers, Mapping) else headers)
    for name, value in items:
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for item in value:
                pairs.append((name, _to_text(item)))
        else:
            pairs.append((name, _to_text(value)))
    if variables:
        for key, value in variables.items():
            if "=" in key:
                raise AmiActionError(f"AMI action {action!r}: variable name {key!r} contains '='")
            pairs.append(("Variable", f"{key}={_to_text(value)}"))
    for name, text in pairs:
        _check(action, name, text)
    out = "".join(f"{name}: {text}\r\n" for name, text in pairs) + "\r\n"
    return out.encode(_ENCODING, _ERRORS)


def _to_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
