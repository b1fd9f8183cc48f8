"""Tests of the sans-IO AMI codec against a real Asterisk 22 capture and handmade frames.

The capture (``tests/fixtures/ami/asterisk22-queue-dialer-fax.ami.gz``) is the raw
byte stream one AMI session received; see its README for what produced it.
"""

from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

from callcenter.ami.codec import AmiActionError, AmiParser, Message, format_action

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"
CHUNK_64K = 64 * 1024


@cache
def capture_bytes() -> bytes:
    """The decompressed capture (read once per test session)."""
    return gzip.decompress(CAPTURE.read_bytes())


def parse_chunks(chunks: Iterable[bytes]) -> tuple[AmiParser, list[Message]]:
    """Feed ``chunks`` to a fresh parser; return it and every message it produced."""
    parser = AmiParser()
    messages: list[Message] = []
    feed = parser.feed
    for chunk in chunks:
        out = feed(chunk)
        if out:
            messages += out
    return parser, messages


def split(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def one_byte_at_a_time(data: bytes) -> Iterable[bytes]:
    """``data`` one byte per chunk (lazily; CPython caches 1-byte bytes objects)."""
    return (data[i : i + 1] for i in range(len(data)))


def random_chunks(data: bytes, seed: int, low: int, high: int) -> list[bytes]:
    """``data`` in pieces of random sizes between ``low`` and ``high`` (seeded)."""
    rng = random.Random(seed)
    chunks = []
    i = 0
    while i < len(data):
        n = rng.randint(low, high)
        chunks.append(data[i : i + n])
        i += n
    return chunks


def signature(messages: list[Message]) -> list[tuple[object, ...]]:
    """Everything a message exposes, to compare two parses exactly."""
    return [
        (
            m.name,
            m.is_event,
            m.is_response,
            m.text,
            m.fields,
            m.headers,
            m.output,
            m.problems,
        )
        for m in messages
    ]


@cache
def whole() -> tuple[str | None, tuple[Message, ...]]:
    """The capture parsed in one ``feed`` call: greeting and messages."""
    parser, messages = parse_chunks([capture_bytes()])
    return parser.greeting, tuple(messages)


# ----------------------------------------------------------------------- the capture


def test_capture_greeting_and_message_count() -> None:
    """The banner is exposed as the greeting and all 21,221 messages come out, none
    with problems and nothing left buffered."""
    parser, messages = parse_chunks([capture_bytes()])
    assert parser.greeting == "Asterisk Call Manager/11.0.0"
    assert len(messages) == 21_221
    assert parser.buffered == 0
    assert not [m for m in messages if m.problems]
    assert all(m.is_event or m.is_response for m in messages)


def test_capture_message_kinds_match_an_independent_count() -> None:
    """Event names and counts agree with a regex count over the raw bytes.

    The fixture README says "41 kinds"; the capture holds 38 event names plus
    ``Response: Success`` messages (4 distinct ``Message`` texts), counted here.
    """
    _, messages = whole()
    parsed = Counter(m.name for m in messages if m.is_event)
    raw = Counter(
        name.decode()
        for name in re.findall(rb"(?:^|\r\n)Event: ([^\r]*)\r\n", capture_bytes())
    )
    assert parsed == raw
    assert len(parsed) == 38
    assert sum(parsed.values()) == 20_929
    responses = Counter((m.name, m.get("Message")) for m in messages if m.is_response)
    assert responses == {
        ("Success", "Authentication accepted"): 1,
        ("Success", "Originate successfully queued"): 245,
        ("Success", "Queue status will follow"): 23,
        ("Success", "Channels will follow"): 23,
    }
    assert parsed["Newchannel"] == 808
    assert parsed["Hangup"] == 807
    assert parsed["VarSet"] == 4_678


@pytest.mark.parametrize(
    "chunking",
    ["64KiB", "random-1-to-4096", "random-1-to-7", "one-byte"],
)
def test_capture_same_messages_whatever_the_chunking(chunking: str) -> None:
    """One byte at a time, 64 KiB, or random sizes: exactly the same messages (and
    greeting) as the whole stream in one call."""
    data = capture_bytes()
    chunks: Iterable[bytes]
    if chunking == "64KiB":
        chunks = split(data, CHUNK_64K)
    elif chunking == "random-1-to-4096":
        chunks = random_chunks(data, seed=22, low=1, high=4096)
    elif chunking == "random-1-to-7":
        chunks = random_chunks(data, seed=11, low=1, high=7)
    else:
        chunks = one_byte_at_a_time(data)
    parser, messages = parse_chunks(chunks)
    greeting, expected = whole()
    assert parser.greeting == greeting
    assert parser.buffered == 0
    assert len(messages) == len(expected)
    assert signature(messages) == signature(list(expected))


def test_capture_every_originate_response_matches_a_queued_originate() -> None:
    """Each ``OriginateResponse`` echoes the ActionID of exactly one earlier
    ``Originate successfully queued`` response, and every queued Originate gets one."""
    _, messages = whole()
    queued: dict[str, int] = {}
    answered: Counter[str] = Counter()
    for index, m in enumerate(messages):
        if m.is_response and m.get("Message") == "Originate successfully queued":
            action_id = m["ActionID"]
            assert action_id not in queued
            queued[action_id] = index
        elif m.name == "OriginateResponse":
            action_id = m["ActionID"]
            assert queued.get(action_id, len(messages)) < index, action_id
            answered[action_id] += 1
    assert len(queued) == 245
    assert set(answered) == set(queued)
    assert set(answered.values()) == {1}
    # dialer, inbound and fax Originates of the capture script
    assert Counter(a.split("-")[0] for a in queued) == {
        "dial": 118,
        "in": 118,
        "fax": 9,
    }
    results = Counter(
        (m["Response"], m["Reason"]) for m in messages if m.name == "OriginateResponse"
    )
    assert results == {
        ("Success", "4"): 200,
        ("Failure", "3"): 30,
        ("Failure", "5"): 15,
    }


def test_capture_empty_values_and_list_events() -> None:
    """Empty values (``AccountCode: ``) are kept as "", and EventList responses,
    items and ``...Complete`` events carry the same ActionID."""
    _, messages = whole()
    first = next(m for m in messages if m.name == "Newchannel")
    assert first["AccountCode"] == ""
    assert ("AccountCode", "") in first.headers
    for m in messages:
        if m.is_response and m.get("EventList") == "start":
            action_id = m["ActionID"]
            assert action_id.startswith(("qs-", "cs-"))
    complete = [m for m in messages if m.name == "CoreShowChannelsComplete"]
    items = Counter(m["ActionID"] for m in messages if m.name == "CoreShowChannel")
    assert len(complete) == 23
    for m in complete:
        assert int(m["ListItems"]) == items[m["ActionID"]]


# ----------------------------------------------------------------------- handmade frames

GREETING = b"Asterisk Call Manager/11.0.0\r\n"


def parse_all_ways(data: bytes) -> list[Message]:
    """Parse ``data`` whole, byte by byte and in random chunks; assert they agree."""
    _, expected = parse_chunks([data])
    for chunks in (
        list(one_byte_at_a_time(data)),
        random_chunks(data, seed=1, low=1, high=5),
        random_chunks(data, seed=2, low=1, high=40),
    ):
        _, got = parse_chunks(chunks)
        assert signature(got) == signature(expected)
    return expected


def test_repeated_headers_are_kept_in_wire_order() -> None:
    """``ChanVariable`` and ``Output`` repeats are all kept, in order; ``msg[...]`` and
    ``get`` give the first value and ``variables`` lets the later value win."""
    data = GREETING + (
        b"Event: Newchannel\r\nUniqueid: 1.1\r\n"
        b"ChanVariable: LEAD_ID=7\r\nChanVariable: CAMPAIGN_ID=c=1\r\nChanVariable: LEAD_ID=8\r\n\r\n"
    )
    (msg,) = parse_all_ways(data)
    assert msg.get_all("ChanVariable") == ["LEAD_ID=7", "CAMPAIGN_ID=c=1", "LEAD_ID=8"]
    assert msg["ChanVariable"] == "LEAD_ID=7"
    assert msg.get("chanvariable") == "LEAD_ID=7"
    assert msg.variables == {"LEAD_ID": "8", "CAMPAIGN_ID": "c=1"}
    assert msg.get_all("Missing") == []
    assert msg.get("Missing") is None


def test_values_containing_colon_space_and_empty_values() -> None:
    """Only the first ": " separates name from value; ``Name: `` and ``Name:`` are
    empty values, not problems."""
    data = (
        GREETING
        + b"Event: Newexten\r\nAppData: Set(X=a: b: c)\r\nAccountCode: \r\nLanguage:\r\n\r\n"
    )
    (msg,) = parse_all_ways(data)
    assert msg["AppData"] == "Set(X=a: b: c)"
    assert msg["AccountCode"] == ""
    assert msg["Language"] == ""
    assert msg.problems == ()


def test_legacy_follows_block_with_blank_lines_goes_to_output() -> None:
    """A pre-Asterisk-14 ``Response: Follows`` reply, blank lines inside, ends at
    ``--END COMMAND--``; its lines are ``.output`` and the next message is intact."""
    data = GREETING + (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: cmd-1\r\n"
        b"Channel              Location\r\n\r\nSIP/100-0001         s@default:1\r\n\r\n"
        b"1 active channel\r\n--END COMMAND--\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: 9.9\r\n\r\n"
    )
    follows, hangup = parse_all_ways(data)
    assert follows.is_response and follows.name == "Follows"
    assert follows.action_id == "cmd-1"
    assert follows.output == [
        "Channel              Location",
        "",
        "SIP/100-0001         s@default:1",
        "",
        "1 active channel",
    ]
    assert hangup.name == "Hangup" and hangup["Uniqueid"] == "9.9"


def test_modern_command_output_via_output_headers() -> None:
    """Asterisk 14+ answers ``Command`` with ``Response: Success`` and one ``Output:``
    header per line (empty lines and ": " inside kept)."""
    data = GREETING + (
        b"Response: Success\r\nActionID: cmd-2\r\nMessage: Command output follows\r\n"
        b"Output: Name/username             Host\r\nOutput: \r\nOutput: 1 sip peers: 0 online\r\n\r\n"
    )
    (msg,) = parse_all_ways(data)
    assert msg.name == "Success" and msg.is_response and not msg.is_event
    assert msg.output == ["Name/username             Host", "", "1 sip peers: 0 online"]


def test_malformed_line_is_reported_and_the_next_message_survives() -> None:
    """A line that is not a header lands in ``problems`` (with its text); the message
    keeps its good headers and the following message is unaffected."""
    data = GREETING + (
        b"Event: Newstate\r\nthis is not a header\r\nUniqueid: 1.2\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: 1.2\r\nCause: 16\r\n\r\n"
    )
    bad, good = parse_all_ways(data)
    assert bad.name == "Newstate" and bad["Uniqueid"] == "1.2"
    assert len(bad.problems) == 1 and "this is not a header" in bad.problems[0]
    assert good.name == "Hangup" and good["Cause"] == "16" and good.problems == ()


def test_non_utf8_bytes_are_preserved_and_round_trip() -> None:
    """A Latin-1 caller name (not UTF-8) survives parsing and goes back on the wire
    byte for byte through ``format_action``."""
    data = GREETING + b"Event: NewCallerid\r\nCallerIDName: Jos\xe9 M\xfcller\r\n\r\n"
    (msg,) = parse_all_ways(data)
    name = msg["CallerIDName"]
    assert name.encode("utf-8", "surrogateescape") == b"Jos\xe9 M\xfcller"
    wire = format_action("Setvar", {"Variable": "CALLERID(name)", "Value": name})
    assert (
        wire
        == b"Action: Setvar\r\nVariable: CALLERID(name)\r\nValue: Jos\xe9 M\xfcller\r\n\r\n"
    )


def test_format_action_bytes_are_exact() -> None:
    """ActionID first, headers in order, lists repeated, booleans as true/false, None
    left out, variables as repeated ``Variable:``, blank line at the end."""
    wire = format_action(
        "Originate",
        [
            ("Channel", "Local/100@sim-pstn"),
            ("Async", True),
            ("Timeout", 30000),
            ("Account", None),
        ],
        action_id="dial-1",
        variables={"LEAD_ID": 42, "CAMPAIGN_ID": "c7"},
    )
    assert wire == (
        b"Action: Originate\r\nActionID: dial-1\r\nChannel: Local/100@sim-pstn\r\n"
        b"Async: true\r\nTimeout: 30000\r\nVariable: LEAD_ID=42\r\nVariable: CAMPAIGN_ID=c7\r\n\r\n"
    )
    assert format_action("Ping") == b"Action: Ping\r\n\r\n"
    assert format_action("Command", {"Command": ["a", "b"]}) == (
        b"Action: Command\r\nCommand: a\r\nCommand: b\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("action", "headers", "variables"),
    [
        ("Setvar", {"Value": "x\r\nAction: Hangup"}, None),
        ("Setvar", {"Value": "x\nAction: Hangup"}, None),
        ("Setvar", {"Value": "x\r"}, None),
        ("Setvar", {"Bad\r\nName": "x"}, None),
        ("Setvar", {"Bad: Name": "x"}, None),
        ("Hangup\r\nAction: Originate", {}, None),
        ("Originate", {"Channel": "Local/1"}, {"LEAD_ID": "1\r\nAction: Hangup"}),
        ("Originate", {"Channel": "Local/1"}, {"LEAD\nID": "1"}),
        ("Originate", {"Channel": "Local/1"}, {"A=B": "1"}),
        ("Originate", {"Channel": ["ok", "bad\n"]}, None),
    ],
)
def test_format_action_refuses_cr_lf_before_producing_anything(
    action: str, headers: dict[str, object], variables: dict[str, object] | None
) -> None:
    """CR or LF in any name or value (or ``=`` in a variable name) raises
    ``AmiActionError``: no bytes are returned, so nothing can be sent."""
    produced: list[bytes] = []
    with pytest.raises(AmiActionError):
        produced.append(format_action(action, headers, variables=variables))
    assert produced == []


def test_from_pairs_matches_the_parser() -> None:
    """``Message.from_pairs`` (used for handmade events) builds what the parser would."""
    data = (
        GREETING
        + b"Event: VarSet\r\nVariable: A\r\nValue: x: y\r\nChanVariable: K=1\r\nChanVariable: K=2\r\n\r\n"
    )
    (parsed,) = parse_all_ways(data)
    built = Message.from_pairs(parsed.headers)
    assert signature([built]) == signature([parsed])
