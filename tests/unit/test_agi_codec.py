"""Unit tests for the sans-IO FastAGI codec (callcenter.agi.codec)."""

from __future__ import annotations

import pytest

import callcenter.agi
from callcenter.agi.codec import (
    MAX_COMMAND_BYTES,
    AgiApplicationNotFoundError,
    AgiArgumentError,
    AgiCommand,
    AgiCommandError,
    AgiEnvironment,
    AgiHangup,
    AgiHangupError,
    AgiItem,
    AgiProtocolError,
    AgiReader,
    AgiReply,
    GetDataResult,
    PlaybackResult,
    format_command,
    parse_reply_line,
    parse_script,
    quote_argument,
)

# What Asterisk 22 sends for exten => 100,n,AGI(agi://127.0.0.1:4573/ivr/main?lang=en&queue=sales,a,b c,...)
ENV_LINES = [
    "agi_network: yes",
    "agi_network_script: ivr/main?lang=en&queue=sales",
    "agi_request: agi://127.0.0.1:4573/ivr/main?lang=en&queue=sales",
    "agi_channel: PJSIP/caller-00000007",
    "agi_language: en",
    "agi_type: PJSIP",
    "agi_uniqueid: 1700000000.42",
    "agi_version: 22.1.0",
    "agi_callerid: 5551234",
    "agi_calleridname: Jane Doe",
    "agi_callingpres: 0",
    "agi_callingani2: 0",
    "agi_callington: 0",
    "agi_callingtns: 0",
    "agi_dnid: 100",
    "agi_rdnis: unknown",
    "agi_context: inbound",
    "agi_extension: 100",
    "agi_priority: 2",
    "agi_enhanced: 0.0",
    "agi_accountcode: ",
    "agi_threadid: 140234567890",
    "agi_arg_1: a",
    "agi_arg_2: b c",
    "agi_arg_3: x: y",
    "agi_arg_4: 4",
    "agi_arg_5: 5",
    "agi_arg_6: 6",
    "agi_arg_7: 7",
    "agi_arg_8: 8",
    "agi_arg_9: 9",
    "agi_arg_10: ten",
]
ENV = ("\n".join(ENV_LINES) + "\n\n").encode()

TRANSCRIPT = ENV + (
    b"200 result=0\n"
    b"200 result=1 (Jane (VIP) Doe)\n"
    b"200 result=0 endpos=12345\r\n"
    b"200 result= (timeout)\n"
    b"510 Invalid or unknown command\n"
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
    b"\n"
    b"200 result=0\n"
    b"520 End of proper usage.\n"
    b"HANGUP\n"
    b"511 Command Not Permitted on a dead channel or intercept routine\n"
)


def asterisk_parse_args(line: str) -> list[str]:
    """A line-by-line port of parse_args() in Asterisk's res/res_agi.c.

    Used to check that what format_command writes is read back by Asterisk as
    exactly the words we meant: space/tab split words outside quotes, '"' toggles
    quoting (and starts a word after whitespace), '\\' makes the next char literal.
    """
    argv: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                argv.append([])
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            argv.append([])
            whitespace = False
        argv[-1].append(ch)
        escaped = False
    return ["".join(word) for word in argv]


def feed_whole(data: bytes) -> list[AgiItem]:
    return AgiReader().feed(data)


def feed_bytewise(data: bytes) -> list[AgiItem]:
    reader = AgiReader()
    items: list[AgiItem] = []
    for i in range(len(data)):
        items.extend(reader.feed(data[i : i + 1]))
    return items


def replies(data: bytes) -> list[AgiItem]:
    """Items after the environment, for a reply stream appended to ENV."""
    items = feed_whole(ENV + data)
    assert isinstance(items[0], AgiEnvironment)
    return items[1:]


def reply(line: str) -> AgiReply:
    item = parse_reply_line(line)
    assert isinstance(item, AgiReply)
    return item


# ------------------------------------------------------------------ environment


def test_environment_fields_args_and_script() -> None:
    """The agi_* block becomes an AgiEnvironment with args in numeric order and the script path/params."""
    items = feed_whole(ENV)
    assert len(items) == 1
    env = items[0]
    assert isinstance(env, AgiEnvironment)
    assert env.channel == "PJSIP/caller-00000007"
    assert env.uniqueid == "1700000000.42"
    assert env.calleridname == "Jane Doe"
    assert env.context == "inbound"
    assert env.extension == "100"
    assert env.priority == "2"
    assert env.type == "PJSIP"
    assert env.version == "22.1.0"
    assert env.accountcode == ""
    assert env.threadid == "140234567890"
    assert env.request == "agi://127.0.0.1:4573/ivr/main?lang=en&queue=sales"
    assert env.network_script == "ivr/main?lang=en&queue=sales"
    # agi_arg_10 sorts after agi_arg_9 (numeric, not string, order); ": " inside a value is kept.
    assert env.args == ("a", "b c", "x: y", "4", "5", "6", "7", "8", "9", "ten")
    assert env.script == "ivr/main"
    assert dict(env.params) == {"lang": "en", "queue": "sales"}
    assert env.raw["agi_dnid"] == "100"
    assert env.raw["agi_network"] == "yes"


def test_environment_tolerates_crlf_and_missing_keys() -> None:
    """CRLF line ends are accepted and keys Asterisk left out read as empty strings."""
    env = feed_whole(
        b"agi_network: yes\r\nagi_request: agi://h/queue-entry\r\nagi_arg_1:\r\n\r\n"
    )[0]
    assert isinstance(env, AgiEnvironment)
    assert env.script == "queue-entry"
    assert env.args == ("",)
    assert env.channel == ""
    assert dict(env.params) == {}


def test_script_falls_back_to_request_url_and_decodes() -> None:
    """Without agi_network_script the script comes from agi_request's path; %-escapes are decoded."""
    assert parse_script("", "agi://10.0.0.1:4573/ivr/main/?x=a%20b&flag=") == (
        "ivr/main",
        {"x": "a b", "flag": ""},
    )
    assert parse_script("/survey%2Fnps?", "ignored") == ("survey/nps", {})
    assert parse_script("", "") == ("", {})
    assert parse_script("", "agi://10.0.0.1") == ("", {})


def test_environment_rejects_non_agi_line() -> None:
    """Anything but agi_* lines before the blank line (e.g. an HTTP probe) is a protocol error naming the line."""
    with pytest.raises(AgiProtocolError, match="GET / HTTP/1.1") as info:
        AgiReader().feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert info.value.line == "GET / HTTP/1.1"


# ---------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiReply(200, "200 result=0", result=0, result_text="0")),
        (
            "200 result=1 (hello world)",
            AgiReply(200, "200 result=1 (hello world)", 1, "1", data="hello world"),
        ),
        (
            "200 result=0 endpos=24807",
            AgiReply(200, "200 result=0 endpos=24807", 0, "0", endpos=24807),
        ),
        (
            "200 result=49 endpos=8640",
            AgiReply(200, "200 result=49 endpos=8640", 49, "49", endpos=8640),
        ),
        (
            "200 result=-1 endpos=0",
            AgiReply(200, "200 result=-1 endpos=0", -1, "-1", endpos=0),
        ),
        (
            "200 result= (timeout)",
            AgiReply(200, "200 result= (timeout)", None, "", data="timeout"),
        ),
        (
            "200 result=007 (timeout)",
            AgiReply(200, "200 result=007 (timeout)", 7, "007", data="timeout"),
        ),
        ("200 result=*12", AgiReply(200, "200 result=*12", None, "*12")),
        ("200 result=-2", AgiReply(200, "200 result=-2", -2, "-2")),
        (
            "200 result=0 Gosub complete",
            AgiReply(
                200, "200 result=0 Gosub complete", 0, "0", message="Gosub complete"
            ),
        ),
        (
            "200 result=1 (digit) digit=5 endpos=1600",
            AgiReply(
                200,
                "200 result=1 (digit) digit=5 endpos=1600",
                1,
                "1",
                "digit",
                1600,
                "digit=5",
            ),
        ),
        (
            "200 result=1 (a (b) ) endpos=3)",
            AgiReply(
                200, "200 result=1 (a (b) ) endpos=3)", 1, "1", data="a (b) ) endpos=3"
            ),
        ),
        ("200 result=1 ()", AgiReply(200, "200 result=1 ()", 1, "1", data="")),
        (
            "100 result=0 Trying...",
            AgiReply(100, "100 result=0 Trying...", 0, "0", message="Trying..."),
        ),
        (
            "503 result=-2 Memory allocation failure",
            AgiReply(
                503,
                "503 result=-2 Memory allocation failure",
                -2,
                "-2",
                message="Memory allocation failure",
            ),
        ),
        (
            "510 Invalid or unknown command",
            AgiReply(
                510,
                "510 Invalid or unknown command",
                message="Invalid or unknown command",
            ),
        ),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            AgiReply(
                511,
                "511 Command Not Permitted on a dead channel or intercept routine",
                message="Command Not Permitted on a dead channel or intercept routine",
            ),
        ),
        (
            "520 Invalid command syntax.  Proper usage not available.",
            AgiReply(
                520,
                "520 Invalid command syntax.  Proper usage not available.",
                message="Invalid command syntax.  Proper usage not available.",
            ),
        ),
    ],
)
def test_single_line_replies(line: str, expected: AgiReply) -> None:
    """Every reply form res_agi.c writes parses into code, result, data, endpos and message."""
    assert replies(line.encode() + b"\n") == [expected]


def test_hangup_is_a_notification_not_a_reply() -> None:
    """The unsolicited HANGUP line comes out as AgiHangup, in wire order between replies."""
    items = replies(b"200 result=1 (x)\nHANGUP\n200 result=-1\n")
    assert items == [
        AgiReply(200, "200 result=1 (x)", 1, "1", data="x"),
        AgiHangup(),
        AgiReply(200, "200 result=-1", -1, "-1"),
    ]


def test_multiline_520_is_one_reply_with_usage() -> None:
    """520- ... 520 End of proper usage. is gathered into ONE reply, even when usage lines look like replies."""
    items = replies(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: GET DATA <file to be streamed> [timeout] [max digits]\n"
        b"\n"
        b"200 result=0\n"
        b"HANGUP\n"
        b"520 End of proper usage.\n"
        b"200 result=0\n"
    )
    assert len(items) == 2
    usage = items[0]
    assert isinstance(usage, AgiReply)
    assert usage.code == 520
    assert usage.message == "Invalid command syntax.  Proper usage follows:"
    assert usage.usage == (
        " Usage: GET DATA <file to be streamed> [timeout] [max digits]\n\n200 result=0\nHANGUP"
    )
    assert usage.raw.startswith("520-Invalid") and usage.raw.endswith(
        "520 End of proper usage."
    )
    assert items[1] == AgiReply(200, "200 result=0", 0, "0")


def test_multiline_520_with_glued_end_line() -> None:
    """Older Asterisk printed the usage without a final newline; the glued end line still closes the reply."""
    items = replies(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Returns the digits received.520 End of proper usage.\n"
        b"200 result=1\n"
    )
    assert [type(item) for item in items] == [AgiReply, AgiReply]
    first = items[0]
    assert isinstance(first, AgiReply)
    assert first.usage == "Returns the digits received."
    assert items[1] == AgiReply(200, "200 result=1", 1, "1")


def test_byte_at_a_time_gives_the_same_items() -> None:
    """Feeding a whole session one byte at a time or in one chunk yields identical items."""
    whole = feed_whole(TRANSCRIPT)
    assert feed_bytewise(TRANSCRIPT) == whole
    assert [type(item).__name__ for item in whole] == [
        "AgiEnvironment",
        "AgiReply",
        "AgiReply",
        "AgiReply",
        "AgiReply",
        "AgiReply",
        "AgiReply",
        "AgiHangup",
        "AgiReply",
    ]
    # Arbitrary chunk boundaries too.
    for size in (2, 3, 7, 64):
        reader = AgiReader()
        items: list[AgiItem] = []
        for i in range(0, len(TRANSCRIPT), size):
            items.extend(reader.feed(TRANSCRIPT[i : i + size]))
        assert items == whole


def test_partial_line_waits_for_newline() -> None:
    """A reply split across packets is delivered only when its newline arrives."""
    reader = AgiReader()
    reader.feed(ENV)
    assert reader.feed(b"200 resu") == []
    assert reader.feed(b"lt=1 (va") == []
    assert reader.feed(b"lue)\n") == [
        AgiReply(200, "200 result=1 (value)", 1, "1", data="value")
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"hello",
        b"",
        b"200 foo",
        b"200 result=1 (unclosed",
        b"999 result=0",
        b"300 Something",
        b"200-result=0",
        b"100 Trying...",
        b"hangup",
    ],
)
def test_unknown_lines_raise_protocol_error(line: bytes) -> None:
    """A line that is no FastAGI reply raises AgiProtocolError naming it; later feeds raise it again."""
    reader = AgiReader()
    reader.feed(ENV)
    with pytest.raises(AgiProtocolError) as info:
        reader.feed(b"200 result=0\n" + line + b"\n")
    assert repr(line.decode()) in str(info.value)
    with pytest.raises(AgiProtocolError):
        reader.feed(b"200 result=0\n")


def test_overlong_line_is_a_protocol_error() -> None:
    """Bytes without a newline beyond the line limit raise instead of growing the buffer forever."""
    reader = AgiReader(max_line_length=100)
    with pytest.raises(AgiProtocolError, match="longer than 100 bytes"):
        reader.feed(b"agi_x: " + b"a" * 200)


def test_reader_keeps_environment() -> None:
    """The reader remembers the environment it parsed."""
    reader = AgiReader()
    assert reader.environment is None
    reader.feed(ENV)
    assert reader.environment is not None
    assert reader.environment.uniqueid == "1700000000.42"


# -------------------------------------------------------------- command quoting


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("ANSWER",), b"ANSWER\n"),
        (("stream file", "beep", ""), b'STREAM FILE beep ""\n'),
        (("GET DATA", "beep", 5000, 2), b"GET DATA beep 5000 2\n"),
        (("SET VARIABLE", "NAME", "Jane Doe"), b'SET VARIABLE NAME "Jane Doe"\n'),
        (("SET VARIABLE", "Q", 'say "hi"'), b'SET VARIABLE Q "say \\"hi\\""\n'),
        (("SET VARIABLE", "P", "C:\\dir\\"), b'SET VARIABLE P "C:\\\\dir\\\\"\n'),
        (("SET VARIABLE", "T", "a\tb"), b'SET VARIABLE T "a\tb"\n'),
        (("SET VARIABLE", "U", "Zoë"), "SET VARIABLE U Zoë\n".encode()),
        (("VERBOSE", "x", 3), b"VERBOSE x 3\n"),
        (("SET VARIABLE", "N", -1), b"SET VARIABLE N -1\n"),
    ],
)
def test_format_command_exact_bytes(args: tuple[str, ...], expected: bytes) -> None:
    """Commands are upper-cased; arguments with space/tab/quote/backslash are quoted and escaped, others bare."""
    name, *rest = args
    assert format_command(name, *rest) == expected


@pytest.mark.parametrize(
    "value",
    [
        "line\nHANGUP",
        "line\rEXEC System rm",
        "nul\0byte",
        "trailing newline\n",
        "\r\n",
    ],
)
def test_line_breaks_and_nul_are_refused(value: str) -> None:
    """CR, LF and NUL cannot be quoted for Asterisk, so they raise instead of injecting a second command."""
    with pytest.raises(AgiArgumentError):
        format_command("SET VARIABLE", "X", value)
    with pytest.raises(AgiArgumentError):
        quote_argument(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "plain",
        "two words",
        'a" EXEC System "rm -rf /',
        '"',
        '""',
        "\\",
        "\\\\",
        "ends with backslash \\",
        '\\" EXEC Dial x "',
        "tab\there",
        "  leading and trailing  ",
        "${CALLERID(num)}",
        "semi;colon,comma|pipe",
        "ünïcödé 電話",
    ],
)
def test_quoting_round_trips_through_asterisk_parse_args(value: str) -> None:
    """Whatever the value, Asterisk's parse_args reads exactly [command words..., value, 'next'] back."""
    line = format_command("SET VARIABLE", value, "next").decode().removesuffix("\n")
    assert asterisk_parse_args(line) == ["SET", "VARIABLE", value, "next"]


def test_injection_attempt_stays_one_argument() -> None:
    """A value crafted to close the quote and append a command is sent as one escaped argument."""
    evil = 'x" "y'
    assert format_command("SET VARIABLE", "V", evil) == b'SET VARIABLE V "x\\" \\"y"\n'
    assert asterisk_parse_args('SET VARIABLE V "x\\" \\"y"') == [
        "SET",
        "VARIABLE",
        "V",
        evil,
    ]


@pytest.mark.parametrize(
    "name", ["", "STREAM\nFILE", "GET-DATA", "  ANSWER", "A  B", "ANSWER 1", 'EXEC "x"']
)
def test_bad_command_names_are_refused(name: str) -> None:
    """Only letters and single spaces make a command name (the name is never quoted)."""
    with pytest.raises(AgiArgumentError):
        format_command(name)


def test_non_str_int_arguments_are_refused() -> None:
    """bool, float and None are not silently stringified."""
    for bad in (True, 1.5, None):
        with pytest.raises(AgiArgumentError):
            format_command("VERBOSE", "x", bad)  # type: ignore[arg-type]


def test_overlong_command_is_refused() -> None:
    """A line longer than Asterisk's fgets buffer would run its tail as a second command: refused."""
    fits = "a" * (MAX_COMMAND_BYTES - len(b"VERBOSE  1\n"))
    assert len(format_command("VERBOSE", fits, 1)) == MAX_COMMAND_BYTES
    with pytest.raises(AgiArgumentError, match="2048 bytes"):
        format_command("VERBOSE", fits + "a", 1)


def test_too_many_words_are_refused() -> None:
    """parse_args keeps at most 127 words and drops the rest silently: refused instead."""
    format_command("VERBOSE", *(["x"] * 126))
    with pytest.raises(AgiArgumentError, match="127 words"):
        format_command("VERBOSE", *(["x"] * 127))


# ------------------------------------------------------------ command helpers


def test_answer() -> None:
    """ANSWER: result=0 is success, result=-1 a hangup."""
    cmd = AgiCommand.answer()
    assert (cmd.name, cmd.line) == ("ANSWER", b"ANSWER\n")
    assert cmd.interpret(reply("200 result=0")) is None
    with pytest.raises(AgiHangupError):
        cmd.interpret(reply("200 result=-1"))


def test_stream_file() -> None:
    """STREAM FILE: escape digit from the ASCII result, endpos kept; -1 (hangup or missing file) raises."""
    cmd = AgiCommand.stream_file("custom/welcome", "#*")
    assert cmd.line == b"STREAM FILE custom/welcome #*\n"
    assert AgiCommand.stream_file("beep").line == b'STREAM FILE beep ""\n'
    assert (
        AgiCommand.stream_file("beep", "", 8000).line == b'STREAM FILE beep "" 8000\n'
    )
    assert cmd.interpret(reply("200 result=0 endpos=24807")) == PlaybackResult(
        None, 24807
    )
    assert cmd.interpret(reply("200 result=35 endpos=1600")) == PlaybackResult(
        "#", 1600
    )
    with pytest.raises(AgiHangupError):
        cmd.interpret(reply("200 result=-1 endpos=0"))


def test_get_data() -> None:
    """GET DATA: digits as a string (leading zeros, * kept), '(timeout)' flagged, -1 raises AgiHangupError."""
    cmd = AgiCommand.get_data("beep", 5000, 2)
    assert (cmd.name, cmd.line) == ("GET DATA", b"GET DATA beep 5000 2\n")
    assert AgiCommand.get_data("beep").line == b"GET DATA beep\n"
    assert AgiCommand.get_data("beep", 3000).line == b"GET DATA beep 3000\n"
    assert AgiCommand.get_data("beep", max_digits=4).line == b"GET DATA beep 0 4\n"
    assert cmd.interpret(reply("200 result=12")) == GetDataResult("12", timed_out=False)
    assert cmd.interpret(reply("200 result=07 (timeout)")) == GetDataResult(
        "07", timed_out=True
    )
    assert cmd.interpret(reply("200 result= (timeout)")) == GetDataResult(
        "", timed_out=True
    )
    assert cmd.interpret(reply("200 result=*9")) == GetDataResult("*9", timed_out=False)
    assert cmd.interpret(reply("200 result=")) == GetDataResult("", timed_out=False)
    with pytest.raises(AgiHangupError):
        cmd.interpret(reply("200 result=-1"))


def test_say_digits() -> None:
    """SAY DIGITS always sends the escape-digits word (Asterisk requires it) and returns the digit pressed."""
    cmd = AgiCommand.say_digits("0042")
    assert cmd.line == b'SAY DIGITS 0042 ""\n'
    assert AgiCommand.say_digits(42, "0123456789").line == b"SAY DIGITS 42 0123456789\n"
    assert cmd.interpret(reply("200 result=0")) is None
    assert cmd.interpret(reply("200 result=50")) == "2"
    with pytest.raises(AgiHangupError):
        cmd.interpret(reply("200 result=-1"))


def test_get_variable() -> None:
    """GET VARIABLE: result=1 (value) gives the value (parentheses inside kept), result=0 gives None."""
    cmd = AgiCommand.get_variable("QUEUESTATUS")
    assert cmd.line == b"GET VARIABLE QUEUESTATUS\n"
    assert cmd.interpret(reply("200 result=1 (TIMEOUT)")) == "TIMEOUT"
    assert cmd.interpret(reply("200 result=1 (f(x) = (1))")) == "f(x) = (1)"
    assert cmd.interpret(reply("200 result=1 ()")) == ""
    assert cmd.interpret(reply("200 result=0")) is None


def test_get_full_variable() -> None:
    """GET FULL VARIABLE quotes the expression and optional channel and reads the value like GET VARIABLE."""
    cmd = AgiCommand.get_full_variable("${CALLERID(num)} ${EXTEN}")
    assert cmd.line == b'GET FULL VARIABLE "${CALLERID(num)} ${EXTEN}"\n'
    other = AgiCommand.get_full_variable("${CHANNEL}", "PJSIP/agent7-0000002a")
    assert other.line == b"GET FULL VARIABLE ${CHANNEL} PJSIP/agent7-0000002a\n"
    assert cmd.interpret(reply("200 result=1 (5551234 100)")) == "5551234 100"
    assert cmd.interpret(reply("200 result=0")) is None


def test_set_variable() -> None:
    """SET VARIABLE: quoted value, result=1 is success."""
    cmd = AgiCommand.set_variable("IVR_CHOICE", "press 1")
    assert cmd.line == b'SET VARIABLE IVR_CHOICE "press 1"\n'
    assert cmd.interpret(reply("200 result=1")) is None


def test_exec() -> None:
    """EXEC joins the application arguments with ',' into ONE word; -2 is a missing application, -1 a hangup."""
    cmd = AgiCommand.exec("Playback", "custom/hello world", "noanswer")
    assert cmd.line == b'EXEC Playback "custom/hello world,noanswer"\n'
    assert AgiCommand.exec("Answer").line == b"EXEC Answer\n"
    assert AgiCommand.exec("Wait", 1).line == b"EXEC Wait 1\n"
    assert AgiCommand.exec("Set", "A=").line == b"EXEC Set A=\n"
    assert cmd.interpret(reply("200 result=0")) == 0
    with pytest.raises(AgiApplicationNotFoundError) as info:
        cmd.interpret(reply("200 result=-2"))
    assert info.value.reply.result == -2
    with pytest.raises(AgiHangupError):
        cmd.interpret(reply("200 result=-1"))


def test_hangup_command() -> None:
    """HANGUP [channel]: result=1 is success; -1 (no such channel) is a command error, not a hangup of ours."""
    assert AgiCommand.hangup().line == b"HANGUP\n"
    cmd = AgiCommand.hangup("PJSIP/agent7-0000002a")
    assert cmd.line == b"HANGUP PJSIP/agent7-0000002a\n"
    assert cmd.interpret(reply("200 result=1")) is None
    with pytest.raises(AgiCommandError):
        cmd.interpret(reply("200 result=-1"))


def test_verbose() -> None:
    """VERBOSE quotes the message and sends the level."""
    cmd = AgiCommand.verbose('caller said "hi"', 2)
    assert cmd.line == b'VERBOSE "caller said \\"hi\\"" 2\n'
    assert cmd.interpret(reply("200 result=1")) is None


def test_error_replies_raise() -> None:
    """510 and 520 raise AgiCommandError carrying the reply; 511 (dead channel) raises AgiHangupError."""
    cmd = AgiCommand.get_variable("X")
    with pytest.raises(AgiCommandError) as info:
        cmd.interpret(reply("510 Invalid or unknown command"))
    assert info.value.command == "GET VARIABLE"
    assert info.value.reply.code == 510
    with pytest.raises(AgiCommandError):
        cmd.interpret(reply("520 Invalid command syntax.  Proper usage not available."))
    with pytest.raises(AgiHangupError):
        cmd.interpret(reply("511 Command Not Permitted on a dead channel"))
    with pytest.raises(AgiCommandError):
        AgiCommand.answer().interpret(reply("200 result=*"))


def test_public_names_are_locked() -> None:
    """The package's public API is exactly this list (changes must be deliberate)."""
    assert sorted(callcenter.agi.__all__) == sorted(
        [
            "MAX_COMMAND_BYTES",
            "AgiApplicationNotFoundError",
            "AgiArgumentError",
            "AgiCommand",
            "AgiCommandError",
            "AgiEnvironment",
            "AgiError",
            "AgiHandler",
            "AgiHangup",
            "AgiHangupError",
            "AgiItem",
            "AgiProtocolError",
            "AgiReader",
            "AgiReply",
            "AgiSession",
            "AgiSessionClosedError",
            "AgiTimeoutError",
            "FastAgiFactory",
            "FastAgiProtocol",
            "GetDataResult",
            "PlaybackResult",
            "check_reply",
            "format_command",
            "parse_environment",
            "parse_reply_line",
            "parse_script",
            "quote_argument",
        ]
    )
    for name in callcenter.agi.__all__:
        assert hasattr(callcenter.agi, name)
