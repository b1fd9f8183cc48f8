"""Sans-IO codec for FastAGI (Asterisk's AGI over TCP).

This module owns the FastAGI wire format and nothing else; it performs no I/O and
imports nothing from Twisted:

* :class:`AgiReader` turns the bytes Asterisk sends into items: first one
  :class:`AgiEnvironment` (the ``agi_*`` block), then :class:`AgiReply` for every
  command reply and :class:`AgiHangup` for the unsolicited ``HANGUP`` line.
* :func:`format_command` turns a command and its arguments into one safely quoted
  line; :class:`AgiCommand` pairs such a line with the interpretation of its reply
  for the commands the engine uses (ANSWER, STREAM FILE, GET DATA, ...).
* The exception hierarchy (:class:`AgiError` and subclasses) shared with
  :mod:`callcenter.agi.server`.

Wire facts it relies on (read from ``res/res_agi.c``; see ``../shared/ASTERISK.md``):

* Lines end in ``\\n`` (``\\r\\n`` is tolerated). The environment is ``agi_key: value``
  lines closed by a blank line; script arguments come as ``agi_arg_1..N``.
* Replies: ``200 result=N [(data)] [endpos=M] [more]``, ``510 Invalid or unknown
  command``, ``511 Command Not Permitted on a dead channel[ or intercept routine]``,
  ``520 Invalid command syntax.  Proper usage not available.`` or the multi-line
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper
  usage.``, ``503 result=-2 Memory allocation failure``, and the interim ``100
  result=0 Trying...`` that GOSUB sends before its real reply.
* ``HANGUP`` is a notification, not a reply: Asterisk writes it when the channel
  hangs up (and again when the AGI ends); it never answers a command.
* Asterisk reads a command with ``fgets`` into a 2048-byte buffer (``AGI_BUF_LEN``):
  a longer line is cut and its rest is run as a second command, so
  :func:`format_command` refuses lines longer than :data:`MAX_COMMAND_BYTES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Generic, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "MAX_COMMAND_BYTES",
    "AgiApplicationNotFoundError",
    "AgiArgumentError",
    "AgiCommand",
    "AgiCommandError",
    "AgiEnvironment",
    "AgiError",
    "AgiHangup",
    "AgiHangupError",
    "AgiItem",
    "AgiProtocolError",
    "AgiReader",
    "AgiReply",
    "AgiSessionClosedError",
    "AgiTimeoutError",
    "GetDataResult",
    "PlaybackResult",
    "check_reply",
    "format_command",
    "parse_environment",
    "parse_reply_line",
    "parse_script",
    "quote_argument",
]

T = TypeVar("T")

# Asterisk's res_agi.c reads one command with fgets() into char buf[AGI_BUF_LEN]
# (AGI_BUF_LEN is 2048), so at most 2047 bytes, newline included, arrive as one line.
MAX_COMMAND_BYTES: Final = 2047
# parse_args() stores at most MAX_ARGS - 1 (127) words and silently drops the rest.
_MAX_WORDS: Final = 127
_ENCODING: Final = "utf-8"
# Same choice as callcenter.ami.codec: bytes that are not UTF-8 (a caller name from
# a broken trunk) survive decoding and re-encoding unchanged.
_ERRORS: Final = "surrogateescape"
_MAX_LINE: Final = 64 * 1024
_SHOWN: Final = 200

_STATUS_RE: Final = re.compile(r"(\d{3})([ -])(.*)\Z", re.DOTALL)
_RESULT_RE: Final = re.compile(r"result=(\S*)(.*)\Z", re.DOTALL)
_ENDPOS_RE: Final = re.compile(r"(?:^|\s)endpos=(-?\d+)(?=\s|$)")
_INT_RE: Final = re.compile(r"-?\d+\Z")
_COMMAND_NAME_RE: Final = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*\Z")
_USAGE_END: Final = "520 End of proper usage."
_KNOWN_CODES: Final = frozenset({100, 200, 503, 510, 511, 520})


def _shown(line: str) -> str:
    """The offending line as it goes into an error message (repr, shortened)."""
    if len(line) > _SHOWN:
        return repr(line[:_SHOWN]) + "..."
    return repr(line)


# --------------------------------------------------------------------------- errors


class AgiError(Exception):
    """Base class of every FastAGI error raised by this package."""


class AgiProtocolError(AgiError):
    """Asterisk sent something that is not FastAGI; ``line`` is the offending text."""

    def __init__(self, message: str, line: str | None = None) -> None:
        super().__init__(message)
        self.line = line


class AgiArgumentError(AgiError, ValueError):
    """A command or argument cannot be sent safely (CR, LF, NUL, too long, ...)."""


class AgiCommandError(AgiError):
    """Asterisk rejected a command (510, 520, 503) or gave a result it should not.

    ``command`` is the command name (``"GET DATA"``), ``reply`` the reply received.
    """

    def __init__(
        self, command: str, reply: AgiReply, message: str | None = None
    ) -> None:
        super().__init__(message or f"{command} failed: {reply.raw!r}")
        self.command = command
        self.reply = reply


class AgiApplicationNotFoundError(AgiCommandError):
    """``EXEC`` named an application Asterisk does not have (``result=-2``)."""


class AgiSessionClosedError(AgiError):
    """No more commands can run on this AGI session."""


class AgiHangupError(AgiSessionClosedError):
    """The channel hung up or cannot take commands any more.

    Raised for the ``HANGUP`` notification, a ``511`` reply (dead channel), a lost
    connection, and ``result=-1`` from a channel command (Asterisk's code for "hung
    up or failed"; after most such failures Asterisk ends the AGI session itself).
    """


class AgiTimeoutError(AgiSessionClosedError):
    """A command got no reply in time; the connection to Asterisk is closed."""


# ---------------------------------------------------------------------- environment


@dataclass(frozen=True)
class AgiEnvironment:
    """The ``agi_*`` block Asterisk sends when a FastAGI session starts.

    Missing keys read as ``""``. ``args`` are ``agi_arg_1..N`` in numeric order,
    ``raw`` every key as sent (``agi_`` prefix included). ``script`` and ``params``
    come from the path and query string of ``agi_network_script`` (falling back to
    ``agi_request``): ``agi://host:4573/ivr/main?lang=en`` gives ``script="ivr/main"``
    and ``params={"lang": "en"}``.
    """

    request: str = ""
    channel: str = ""
    language: str = ""
    type: str = ""
    uniqueid: str = ""
    version: str = ""
    callerid: str = ""
    calleridname: str = ""
    context: str = ""
    extension: str = ""
    priority: str = ""
    accountcode: str = ""
    threadid: str = ""
    network_script: str = ""
    script: str = ""
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    args: tuple[str, ...] = ()
    raw: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str]) -> AgiEnvironment:
        """Build the environment from ``agi_*`` keys and their values."""
        numbered: list[tuple[int, str]] = []
        for key, value in raw.items():
            suffix = key.removeprefix("agi_arg_")
            if suffix != key and suffix.isascii() and suffix.isdigit():
                numbered.append((int(suffix), value))
        numbered.sort()
        network_script = raw.get("agi_network_script", "")
        request = raw.get("agi_request", "")
        script, params = parse_script(network_script, request)
        return cls(
            request=request,
            channel=raw.get("agi_channel", ""),
            language=raw.get("agi_language", ""),
            type=raw.get("agi_type", ""),
            uniqueid=raw.get("agi_uniqueid", ""),
            version=raw.get("agi_version", ""),
            callerid=raw.get("agi_callerid", ""),
            calleridname=raw.get("agi_calleridname", ""),
            context=raw.get("agi_context", ""),
            extension=raw.get("agi_extension", ""),
            priority=raw.get("agi_priority", ""),
            accountcode=raw.get("agi_accountcode", ""),
            threadid=raw.get("agi_threadid", ""),
            network_script=network_script,
            script=script,
            params=MappingProxyType(dict(params)),
            args=tuple(value for _, value in numbered),
            raw=MappingProxyType(dict(raw)),
        )


def parse_script(network_script: str, request: str = "") -> tuple[str, dict[str, str]]:
    """Split the script path and query parameters out of the FastAGI request.

    ``network_script`` is ``agi_network_script`` (``"ivr/main?lang=en"``, what follows
    ``host[:port]/`` in the ``AGI()`` URL); when it is empty the path of ``request``
    (``agi_request``, the whole URL) is used. Leading and trailing slashes are
    dropped; path and parameters are percent-decoded. A repeated parameter keeps
    its last value.
    """
    if network_script:
        path, _, query = network_script.partition("?")
    elif request:
        parts = urlsplit(request)
        path, query = parts.path, parts.query
    else:
        return "", {}
    params = dict(parse_qsl(query, keep_blank_values=True))
    return unquote(path).strip("/"), params


def _parse_environment_line(line: str) -> tuple[str, str]:
    key, sep, value = line.partition(":")
    if not sep or not key.startswith("agi_") or key != key.strip():
        raise AgiProtocolError(f"not an agi_* environment line: {_shown(line)}", line)
    return key, value.removeprefix(" ")


def parse_environment(lines: Iterable[str]) -> AgiEnvironment:
    """Parse ``agi_key: value`` lines (without the closing blank line)."""
    raw: dict[str, str] = {}
    for line in lines:
        key, value = _parse_environment_line(line)
        raw[key] = value
    return AgiEnvironment.from_mapping(raw)


# -------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class AgiReply:
    """One reply to one command.

    ``code`` is the status (200, 510, 511, 520, 503; 100 is the interim "Trying").
    For ``result=`` replies: ``result`` is the value as an int (``None`` when it is
    not one, e.g. GET DATA's ``result= (timeout)``), ``result_text`` the value as
    sent (GET DATA digits keep leading zeros and ``*``), ``data`` the text in
    parentheses, ``endpos`` the ``endpos=`` value. ``message`` is what is left
    (``"Invalid or unknown command"``, ``"Gosub complete"``, ``"digit=5"``).
    ``usage`` is the usage text of a multi-line 520; ``raw`` the line(s) as received.
    """

    code: int
    raw: str
    result: int | None = None
    result_text: str | None = None
    data: str | None = None
    endpos: int | None = None
    message: str = ""
    usage: str | None = None

    @property
    def ok(self) -> bool:
        """True for a ``200`` reply (the command ran; see ``result`` for how)."""
        return self.code == 200


@dataclass(frozen=True)
class AgiHangup:
    """The unsolicited ``HANGUP`` line: the channel hung up. Not a command reply."""

    raw: str = "HANGUP"


AgiItem = AgiEnvironment | AgiReply | AgiHangup


def _parse_result(code: int, rest: str, line: str) -> AgiReply:
    match = _RESULT_RE.match(rest)
    if match is None:
        raise AgiProtocolError(f"{code} reply without result=: {_shown(line)}", line)
    result_text, tail = match.group(1), match.group(2)
    data: str | None = None
    if tail.startswith(" ("):
        # The data is everything up to the LAST ")" so that a variable value holding
        # parentheses (even ") endpos=1") comes back whole; GET VARIABLE puts nothing
        # after it, and STREAM FILE/RECORD FILE data ("dtmf", "timeout") has no ")".
        close = tail.rfind(")")
        if close < 2:
            raise AgiProtocolError(f"unclosed ( in reply: {_shown(line)}", line)
        data, tail = tail[2:close], tail[close + 1 :]
    elif tail and not tail.startswith(" "):
        raise AgiProtocolError(f"garbage after result=: {_shown(line)}", line)
    endpos: int | None = None
    endpos_match = _ENDPOS_RE.search(tail)
    if endpos_match is not None:
        endpos = int(endpos_match.group(1))
        tail = tail[: endpos_match.start()] + tail[endpos_match.end() :]
    return AgiReply(
        code=code,
        raw=line,
        result=int(result_text) if _INT_RE.match(result_text) else None,
        result_text=result_text,
        data=data,
        endpos=endpos,
        message=tail.strip(),
    )


def parse_reply_line(line: str) -> AgiReply | AgiHangup:
    """Parse one single-line reply (or ``HANGUP``); the line has no newline.

    Raises :class:`AgiProtocolError` for anything else, including the first line of
    a multi-line ``520-`` reply (only :class:`AgiReader` can gather those).
    """
    if line == "HANGUP":
        return AgiHangup()
    match = _STATUS_RE.match(line)
    if match is None or int(match.group(1)) not in _KNOWN_CODES:
        raise AgiProtocolError(f"not a FastAGI reply: {_shown(line)}", line)
    code, sep, rest = int(match.group(1)), match.group(2), match.group(3)
    if sep == "-":
        raise AgiProtocolError(f"unexpected multi-line reply: {_shown(line)}", line)
    if rest.startswith("result="):
        return _parse_result(code, rest, line)
    if code in (100, 200):
        raise AgiProtocolError(f"{code} reply without result=: {_shown(line)}", line)
    return AgiReply(code=code, raw=line, message=rest)


class AgiReader:
    """Incremental FastAGI reader: ``feed(bytes)`` returns the items now complete.

    The first item is always the :class:`AgiEnvironment`; then :class:`AgiReply`
    and :class:`AgiHangup` in wire order. Feeding the same bytes in one chunk or one
    byte at a time gives the same items. A line that is not FastAGI raises
    :class:`AgiProtocolError` naming it; the reader is then broken and every later
    ``feed`` raises the same error (the caller should close the connection).
    """

    def __init__(self, max_line_length: int = _MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line_length
        self._env_lines: list[str] | None = []
        self._usage: list[str] | None = None
        self._error: AgiProtocolError | None = None
        self.environment: AgiEnvironment | None = None

    def feed(self, data: bytes) -> list[AgiItem]:
        """Take more bytes from Asterisk; return the items they complete."""
        if self._error is not None:
            raise self._error
        self._buffer += data
        items: list[AgiItem] = []
        try:
            while True:
                newline = self._buffer.find(b"\n")
                if newline < 0:
                    if len(self._buffer) > self._max_line:
                        raise AgiProtocolError(
                            f"line longer than {self._max_line} bytes without a newline: "
                            f"{_shown(self._decode(self._buffer))}"
                        )
                    return items
                raw = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                item = self._line(self._decode(raw))
                if item is not None:
                    items.append(item)
        except AgiProtocolError as exc:
            self._error = exc
            raise

    @staticmethod
    def _decode(raw: bytes | bytearray) -> str:
        return bytes(raw).decode(_ENCODING, _ERRORS)

    def _line(self, line: str) -> AgiItem | None:
        if self._env_lines is not None:
            if line:
                self._env_lines.append(line)
                return None
            env = parse_environment(self._env_lines)
            self._env_lines = None
            self.environment = env
            return env
        if self._usage is not None:
            return self._usage_line(line)
        if line.startswith("520-"):
            self._usage = [line]
            return None
        return parse_reply_line(line)

    def _usage_line(self, line: str) -> AgiReply | None:
        assert self._usage is not None
        self._usage.append(line)
        if line.startswith("520 "):
            body = self._usage[1:-1]
        elif line.endswith(_USAGE_END):
            # Older Asterisk wrote the usage with "%s" and no newline, so the closing
            # line can arrive glued to the last usage line.
            body = [*self._usage[1:-1], line[: -len(_USAGE_END)]]
        else:
            return None
        lines, self._usage = self._usage, None
        return AgiReply(
            code=520,
            raw="\n".join(lines),
            message=lines[0][4:],
            usage="\n".join(body),
        )


# ------------------------------------------------------------------------- commands


def quote_argument(value: str) -> str:
    """Quote one argument so Asterisk's ``parse_args()`` reads it back unchanged.

    ``parse_args()`` in ``res/res_agi.c`` (the same since Asterisk 1.2 up to the
    ``const char *argv[]`` version of current branches) splits the command line on
    unquoted, unescaped space and tab; ``"`` toggles quoting (and a quote right
    after whitespace starts a new, possibly empty, word); ``\\`` makes the next
    character literal, inside quotes too, so ``\\"`` and ``\\\\`` are a literal quote
    and backslash. Nothing else is special. So: a value with none of space, tab,
    ``"`` or ``\\`` goes bare; any other value (and ``""``) goes in double quotes
    with ``\\`` and ``"`` escaped by a backslash. CR, LF and NUL cannot be quoted
    (the line would end, or the C string would be cut), so they are refused.
    """
    if any(ch in value for ch in "\r\n\0"):
        raise AgiArgumentError(f"AGI argument contains CR, LF or NUL: {_shown(value)}")
    if value and not any(ch in value for ch in ' \t"\\'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(name: str, *args: str | int) -> bytes:
    """Format one AGI command line (newline included) with every argument quoted.

    ``name`` is the command words (``"STREAM FILE"``), letters and single spaces
    only. Arguments are ``str`` or ``int``; each is quoted by :func:`quote_argument`
    so no value can end the line or start a second command. Raises
    :class:`AgiArgumentError` for a bad name or argument, or when the line would be
    longer than :data:`MAX_COMMAND_BYTES` (Asterisk would run the rest of it as a
    second command).
    """
    if not _COMMAND_NAME_RE.match(name):
        raise AgiArgumentError(f"not an AGI command name: {_shown(name)}")
    words = [name.upper()]
    for arg in args:
        if isinstance(arg, bool) or not isinstance(arg, int | str):
            raise AgiArgumentError(
                f"AGI arguments are str or int, not {type(arg).__name__}"
            )
        words.append(quote_argument(str(arg)))
    if len(name.split()) + len(args) > _MAX_WORDS:
        raise AgiArgumentError(f"{name}: more than {_MAX_WORDS} words in one command")
    line = (" ".join(words) + "\n").encode(_ENCODING, _ERRORS)
    if len(line) > MAX_COMMAND_BYTES:
        raise AgiArgumentError(
            f"{name}: command is {len(line)} bytes; Asterisk reads at most {MAX_COMMAND_BYTES}"
        )
    return line


@dataclass(frozen=True)
class PlaybackResult:
    """Outcome of STREAM FILE: the escape digit pressed (or None) and where it stopped."""

    digit: str | None
    endpos: int | None


@dataclass(frozen=True)
class GetDataResult:
    """Outcome of GET DATA: the digits entered (maybe ``""``) and whether input timed out.

    ``timed_out`` is False when the caller ended with ``#`` or reached max digits.
    """

    digits: str
    timed_out: bool


def check_reply(command: str, reply: AgiReply) -> AgiReply:
    """Return a 200 reply; raise for 511 (:class:`AgiHangupError`) and other codes."""
    if reply.code == 200:
        return reply
    if reply.code == 511:
        raise AgiHangupError(f"{command}: channel is dead ({reply.raw!r})")
    raise AgiCommandError(command, reply)


def _result(command: str, reply: AgiReply) -> int:
    check_reply(command, reply)
    if reply.result is None:
        raise AgiCommandError(
            command, reply, f"{command}: result is not a number: {reply.raw!r}"
        )
    if reply.result == -1:
        raise AgiHangupError(
            f"{command}: result=-1 (channel hung up or command failed)"
        )
    return reply.result


def _digit(command: str, reply: AgiReply) -> str | None:
    value = _result(command, reply)
    if value == 0:
        return None
    if not 0 < value < 0x110000:
        raise AgiCommandError(
            command, reply, f"{command}: result is not a digit: {reply.raw!r}"
        )
    return chr(value)


def _expect(command: str, expected: int) -> Callable[[AgiReply], None]:
    def interpret(reply: AgiReply) -> None:
        if _result(command, reply) != expected:
            raise AgiCommandError(command, reply)

    return interpret


def _interpret_variable(command: str) -> Callable[[AgiReply], str | None]:
    def interpret(reply: AgiReply) -> str | None:
        check_reply(command, reply)
        if reply.result == 1:
            return reply.data if reply.data is not None else ""
        if reply.result == 0:
            return None
        raise AgiCommandError(command, reply)

    return interpret


def _interpret_get_data(reply: AgiReply) -> GetDataResult:
    check_reply("GET DATA", reply)
    if reply.result == -1:
        raise AgiHangupError(
            "GET DATA: result=-1 (channel hung up or prompt could not play)"
        )
    digits = reply.result_text or ""
    if digits.startswith("-"):
        raise AgiCommandError("GET DATA", reply)
    return GetDataResult(digits=digits, timed_out=reply.data == "timeout")


def _interpret_exec(reply: AgiReply) -> int:
    check_reply("EXEC", reply)
    if reply.result == -2:
        raise AgiApplicationNotFoundError(
            "EXEC", reply, f"EXEC: no such application ({reply.raw!r})"
        )
    return _result("EXEC", reply)


def _interpret_playback(command: str) -> Callable[[AgiReply], PlaybackResult]:
    def interpret(reply: AgiReply) -> PlaybackResult:
        return PlaybackResult(digit=_digit(command, reply), endpos=reply.endpos)

    return interpret


def _interpret_say(command: str) -> Callable[[AgiReply], str | None]:
    def interpret(reply: AgiReply) -> str | None:
        return _digit(command, reply)

    return interpret


@dataclass(frozen=True)
class AgiCommand(Generic[T]):
    """One command ready to send: its ``name``, its wire ``line`` and how to read the reply.

    ``interpret(reply)`` returns the typed result or raises: 511 and ``result=-1``
    raise :class:`AgiHangupError`; 510/520/503 and unexpected results raise
    :class:`AgiCommandError`. The static constructors cover the commands the
    engine uses; arguments are checked (and may raise :class:`AgiArgumentError`)
    when the command is built.
    """

    name: str
    line: bytes
    interpret: Callable[[AgiReply], T]

    @staticmethod
    def answer() -> AgiCommand[None]:
        """``ANSWER``: answer the channel (``result=0``)."""
        return AgiCommand("ANSWER", format_command("ANSWER"), _expect("ANSWER", 0))

    @staticmethod
    def stream_file(
        name: str, escape_digits: str = "", offset: int | None = None
    ) -> AgiCommand[PlaybackResult]:
        """``STREAM FILE name escape_digits [offset]``: play a sound file.

        Returns the escape digit pressed (``None`` when it played to the end) and
        ``endpos``. A missing file gives ``result=-1`` and ends Asterisk's AGI
        session, so it raises :class:`AgiHangupError` like a hangup.
        """
        args: tuple[str | int, ...] = (name, escape_digits)
        if offset is not None:
            args += (offset,)
        line = format_command("STREAM FILE", *args)
        return AgiCommand("STREAM FILE", line, _interpret_playback("STREAM FILE"))

    @staticmethod
    def get_data(
        prompt: str, timeout_ms: int | None = None, max_digits: int | None = None
    ) -> AgiCommand[GetDataResult]:
        """``GET DATA prompt [timeout_ms] [max_digits]``: play a prompt, collect DTMF.

        ``timeout_ms`` is the wait for each digit (0 or None: the channel default);
        ``max_digits`` stops collecting early (None: Asterisk's 1024). ``#`` ends
        input. ``result=-1`` (hangup, or a prompt that cannot play) raises
        :class:`AgiHangupError`.
        """
        args: list[str | int] = [prompt]
        if timeout_ms is not None or max_digits is not None:
            args.append(timeout_ms or 0)
        if max_digits is not None:
            args.append(max_digits)
        return AgiCommand(
            "GET DATA", format_command("GET DATA", *args), _interpret_get_data
        )

    @staticmethod
    def say_digits(
        digits: str | int, escape_digits: str = ""
    ) -> AgiCommand[str | None]:
        """``SAY DIGITS digits escape_digits``: say a number digit by digit.

        Returns the escape digit pressed, or ``None``.
        """
        line = format_command("SAY DIGITS", digits, escape_digits)
        return AgiCommand("SAY DIGITS", line, _interpret_say("SAY DIGITS"))

    @staticmethod
    def get_variable(name: str) -> AgiCommand[str | None]:
        """``GET VARIABLE name``: the value (``result=1 (value)``), or ``None`` when unset."""
        line = format_command("GET VARIABLE", name)
        return AgiCommand("GET VARIABLE", line, _interpret_variable("GET VARIABLE"))

    @staticmethod
    def get_full_variable(
        expression: str, channel: str | None = None
    ) -> AgiCommand[str | None]:
        """``GET FULL VARIABLE expression [channel]``: evaluate ``${...}`` expressions.

        Returns the value, or ``None`` when Asterisk answers ``result=0``.
        """
        args = (expression,) if channel is None else (expression, channel)
        line = format_command("GET FULL VARIABLE", *args)
        return AgiCommand(
            "GET FULL VARIABLE", line, _interpret_variable("GET FULL VARIABLE")
        )

    @staticmethod
    def set_variable(name: str, value: str | int) -> AgiCommand[None]:
        """``SET VARIABLE name value`` (``result=1``)."""
        line = format_command("SET VARIABLE", name, value)
        return AgiCommand("SET VARIABLE", line, _expect("SET VARIABLE", 1))

    @staticmethod
    def exec(application: str, *args: str | int) -> AgiCommand[int]:
        """``EXEC application options``: run a dialplan application; returns its result.

        Asterisk passes only ONE options word to the application, so ``args`` are
        joined with ``,`` (the dialplan argument separator) into that word; they are
        not escaped for the application's own argument parser. A missing
        application (``result=-2``) raises :class:`AgiApplicationNotFoundError`,
        ``result=-1`` :class:`AgiHangupError`.
        """
        words: tuple[str, ...] = (application,)
        if args:
            words += (",".join(str(arg) for arg in args),)
        return AgiCommand("EXEC", format_command("EXEC", *words), _interpret_exec)

    @staticmethod
    def hangup(channel: str | None = None) -> AgiCommand[None]:
        """``HANGUP [channel]``: hang up this (or the named) channel (``result=1``).

        A named channel that does not exist gives ``result=-1``, raised as
        :class:`AgiCommandError` (it is not this call hanging up).
        """
        line = (
            format_command("HANGUP")
            if channel is None
            else format_command("HANGUP", channel)
        )

        def interpret(reply: AgiReply) -> None:
            check_reply("HANGUP", reply)
            if reply.result != 1:
                raise AgiCommandError("HANGUP", reply)

        return AgiCommand("HANGUP", line, interpret)

    @staticmethod
    def verbose(message: str, level: int = 1) -> AgiCommand[None]:
        """``VERBOSE message level``: write to the Asterisk console/log (``result=1``)."""
        line = format_command("VERBOSE", message, level)
        return AgiCommand("VERBOSE", line, _expect("VERBOSE", 1))
