"""Unit tests for the Twisted FastAGI server (callcenter.agi.server).

No network and no global reactor: a StringTransport stands in for the socket from
Asterisk and a task.Clock for time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, Logger, LogLevel, formatEvent
from twisted.python.failure import Failure

from callcenter.agi import (
    AgiApplicationNotFoundError,
    AgiCommandError,
    AgiHandler,
    AgiHangupError,
    AgiReply,
    AgiSession,
    AgiSessionClosedError,
    AgiTimeoutError,
    FastAgiFactory,
    FastAgiProtocol,
    GetDataResult,
    PlaybackResult,
)


def environment(
    script: str = "ivr/main?lang=en", uniqueid: str = "1700000000.42"
) -> bytes:
    return (
        "agi_network: yes\n"
        f"agi_network_script: {script}\n"
        f"agi_request: agi://127.0.0.1:4573/{script}\n"
        "agi_channel: PJSIP/caller-00000007\n"
        f"agi_uniqueid: {uniqueid}\n"
        "agi_context: inbound\n"
        "agi_extension: 100\n"
        "agi_priority: 2\n"
        "agi_arg_1: first\n"
        "agi_arg_2: second arg\n"
        "\n"
    ).encode()


class Harness:
    """One FastAGI connection wired to a Clock, a StringTransport and a log list."""

    def __init__(
        self, router: Mapping[str, AgiHandler], command_timeout: float = 30.0
    ) -> None:
        self.clock = Clock()
        self.events: list[LogEvent] = []
        self.factory = FastAgiFactory(
            router,
            self.clock,
            command_timeout=command_timeout,
            log=Logger(namespace="test.agi", observer=self.events.append),
        )
        protocol = self.factory.buildProtocol(None)
        assert isinstance(protocol, FastAgiProtocol)
        self.protocol = protocol
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def receive(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def sent(self) -> bytes:
        """Bytes written to Asterisk since the last call."""
        value = self.transport.value()
        self.transport.clear()
        return value

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)

    def lose_connection(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def messages(self, level: LogLevel | None = None) -> list[str]:
        return [
            formatEvent(event)
            for event in self.events
            if level is None or event["log_level"] == level
        ]

    def assert_no_timers(self) -> None:
        assert self.clock.getDelayedCalls() == []


def recording(*steps: Callable[[AgiSession], Any]) -> tuple[AgiHandler, list[object]]:
    """A handler running ``steps`` in order and recording results/exceptions and its finally block."""
    record: list[object] = []

    async def handler(agi: AgiSession) -> None:
        record.append(("env", agi.env.script, agi.env.args, dict(agi.env.params)))
        try:
            for step in steps:
                try:
                    record.append(await step(agi))
                except Exception as exc:  # noqa: BLE001 - the test records every outcome
                    record.append(exc)
        finally:
            record.append("finally")

    return handler, record


# ---------------------------------------------------------------------- routing


def test_routes_script_to_handler_and_closes_when_done() -> None:
    """The script path picks the handler, which sees env/args/params; when it returns the connection closes."""
    handler, record = recording(lambda agi: agi.answer())
    h = Harness({"ivr/main": handler, "other": recording()[0]})
    h.receive(environment())
    assert record == [("env", "ivr/main", ("first", "second arg"), {"lang": "en"})]
    assert h.sent() == b"ANSWER\n"
    assert not h.closed
    h.receive(b"200 result=0\n")
    assert record[1:] == [None, "finally"]
    assert h.closed
    h.assert_no_timers()


def test_router_keys_ignore_slashes() -> None:
    """A router key written with slashes ('/queue-entry/') matches the script 'queue-entry'."""
    handler, record = recording()
    h = Harness({"/queue-entry/": handler})
    h.receive(environment("queue-entry"))
    assert record[-1] == "finally"
    assert h.closed


def test_environment_split_across_packets() -> None:
    """The handler starts only once the blank line ending the environment has arrived."""
    handler, record = recording()
    h = Harness({"ivr/main": handler})
    data = environment()
    h.receive(data[:-1])
    assert record == []
    h.receive(data[-1:])
    assert record[-1] == "finally"


def test_unknown_script_logs_verbose_and_closes() -> None:
    """An unrouted script is logged, reported with VERBOSE on the Asterisk console, then closed cleanly."""
    h = Harness({"ivr/main": recording()[0]})
    h.receive(environment("nope?x=1"))
    assert (
        h.sent() == b"VERBOSE \"callcenter: no FastAGI handler for script 'nope'\" 1\n"
    )
    warnings = h.messages(LogLevel.warn)
    assert len(warnings) == 1
    assert "'nope'" in warnings[0] and "1700000000.42" in warnings[0]
    assert not h.closed
    h.receive(b"200 result=1\n")
    assert h.closed
    assert h.messages(LogLevel.critical) == []
    h.assert_no_timers()


def test_unknown_script_when_caller_already_gone() -> None:
    """If the caller hangs up before the VERBOSE reply, the session still closes without an error log."""
    h = Harness({})
    h.receive(environment("nope"))
    h.receive(b"HANGUP\n")
    assert h.closed
    assert h.messages(LogLevel.critical) == []
    h.assert_no_timers()


# ------------------------------------------------------------------ sequencing


def test_commands_are_sent_one_at_a_time_in_order() -> None:
    """Commands issued together are queued; each goes out only after the previous reply."""
    results: list[object] = []

    def handler(agi: AgiSession) -> Deferred[None]:
        first = agi.set_variable("A", "1")
        second = agi.get_variable("B")
        third = agi.stream_file("custom/welcome", "12")
        for d in (first, second, third):
            d.addCallback(results.append)
        return third.addCallback(lambda _: None)

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert h.sent() == b"SET VARIABLE A 1\n"
    h.receive(b"200 result=1\n")
    assert h.sent() == b"GET VARIABLE B\n"
    h.receive(b"200 result=1 (two words)\n")
    assert h.sent() == b"STREAM FILE custom/welcome 12\n"
    assert not h.closed
    h.receive(b"200 result=50 endpos=960\n")
    assert results == [None, "two words", PlaybackResult("2", 960)]
    assert h.closed
    h.assert_no_timers()


def test_replies_in_one_chunk_release_the_next_command() -> None:
    """Several replies in one TCP segment each complete their own command, in order."""

    async def handler(agi: AgiSession) -> None:
        await agi.answer()
        await agi.verbose("hi")

    h = Harness({"ivr/main": handler})
    h.receive(environment() + b"200 result=0\n")
    assert h.sent() == b"ANSWER\nVERBOSE hi 1\n"
    h.receive(b"200 result=1\n")
    assert h.closed


def test_get_data_returns_digits() -> None:
    """The integration path: GET DATA beep 5000 2 sent as written, '12' comes back as GetDataResult."""
    handler, record = recording(lambda agi: agi.get_data("beep", 5000, 2))
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert h.sent() == b"GET DATA beep 5000 2\n"
    # Asterisk may split the reply; the prompt and the DTMF take their time.
    h.clock.advance(12)
    h.receive(b"200 res")
    h.receive(b"ult=12\n")
    assert record[1:] == [GetDataResult("12", timed_out=False), "finally"]
    assert h.closed
    h.assert_no_timers()


def test_get_data_timeout_covers_digit_waits() -> None:
    """GET DATA's own deadline is command_timeout plus timeout_ms per digit, so slow callers are not cut off."""
    handler, record = recording(lambda agi: agi.get_data("beep", 5000, 2))
    h = Harness({"ivr/main": handler}, command_timeout=30)
    h.receive(environment())
    h.clock.advance(39.9)
    assert not h.closed
    h.receive(b"200 result= (timeout)\n")
    assert record[1] == GetDataResult("", timed_out=True)
    h.assert_no_timers()


def test_send_command_returns_raw_reply_even_for_510() -> None:
    """send_command quotes its arguments and hands back the raw AgiReply, 510 included."""
    handler, record = recording(
        lambda agi: agi.send_command("database get", "cc/agents", "agent 7")
    )
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert h.sent() == b'DATABASE GET cc/agents "agent 7"\n'
    h.receive(b"510 Invalid or unknown command\n")
    result = record[1]
    assert isinstance(result, AgiReply)
    assert result.code == 510


def test_typed_command_errors_reach_the_handler() -> None:
    """510 and EXEC result=-2 raise typed errors in the handler; the session keeps working afterwards."""
    handler, record = recording(
        lambda agi: agi.get_variable("X"),
        lambda agi: agi.exec("NoSuchApp", "a", "b"),
        lambda agi: agi.exec("Playback", "beep"),
    )
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert h.sent() == b"GET VARIABLE X\n"
    h.receive(b"510 Invalid or unknown command\n")
    assert h.sent() == b"EXEC NoSuchApp a,b\n"
    h.receive(b"200 result=-2\n")
    assert h.sent() == b"EXEC Playback beep\n"
    h.receive(b"200 result=0\n")
    assert isinstance(record[1], AgiCommandError)
    assert isinstance(record[2], AgiApplicationNotFoundError)
    assert record[3:] == [0, "finally"]


def test_interim_100_reply_is_not_the_answer() -> None:
    """'100 result=0 Trying...' (EXEC Gosub) does not complete the command; the 200 after it does."""
    handler, record = recording(lambda agi: agi.exec("Gosub", "sub-survey,s,1"))
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"100 result=0 Trying...\n")
    assert record[1:] == []
    h.receive(b"200 result=0 Gosub complete\n")
    assert record[1:] == [0, "finally"]


def test_bad_arguments_raise_before_anything_is_sent() -> None:
    """An argument with a newline raises AgiArgumentError in the handler and nothing reaches Asterisk."""
    handler, record = recording(
        lambda agi: agi.set_variable("X", "a\nHANGUP"), lambda agi: agi.answer()
    )
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert isinstance(record[1], ValueError)
    assert h.sent() == b"ANSWER\n"


# -------------------------------------------------------------------- timeouts


def test_command_timeout_fails_command_and_closes() -> None:
    """No reply within command_timeout: AgiTimeoutError in the handler, later commands fail, connection closed."""
    handler, record = recording(
        lambda agi: agi.get_variable("X"), lambda agi: agi.answer()
    )
    h = Harness({"ivr/main": handler}, command_timeout=5)
    h.receive(environment())
    assert h.sent() == b"GET VARIABLE X\n"
    h.clock.advance(4.9)
    assert record[1:] == []
    h.clock.advance(0.2)
    assert isinstance(record[1], AgiTimeoutError)
    assert "GET VARIABLE" in str(record[1]) and "5s" in str(record[1])
    assert isinstance(record[2], AgiTimeoutError)
    assert record[3] == "finally"
    assert h.sent() == b""
    assert h.closed
    assert any("no reply within 5" in m for m in h.messages(LogLevel.warn))
    # A reply arriving after the close is ignored without error.
    h.receive(b"200 result=1 (late)\n")
    h.assert_no_timers()


def test_queued_commands_fail_on_timeout() -> None:
    """Commands still queued behind a timed-out one fail with AgiTimeoutError and are never sent."""
    failures: list[Failure] = []

    def handler(agi: AgiSession) -> Deferred[None]:
        agi.answer().addErrback(failures.append)
        return (
            agi.verbose("queued")
            .addErrback(failures.append)
            .addCallback(lambda _: None)
        )

    h = Harness({"ivr/main": handler}, command_timeout=1)
    h.receive(environment())
    assert h.sent() == b"ANSWER\n"
    h.clock.advance(1)
    assert [f.type for f in failures] == [AgiTimeoutError, AgiTimeoutError]
    assert h.sent() == b""
    assert h.closed
    h.assert_no_timers()


def test_per_command_timeout_and_no_timeout() -> None:
    """timeout= overrides the default per command; math.inf schedules no timer at all (long Queue/Dial)."""
    handler, record = recording(
        lambda agi: agi.exec("Queue", "sales", timeout=math.inf),
        lambda agi: agi.verbose("after", timeout=2),
    )
    h = Harness({"ivr/main": handler}, command_timeout=1)
    h.receive(environment())
    assert h.sent() == b"EXEC Queue sales\n"
    assert h.clock.getDelayedCalls() == []
    h.clock.advance(3600)
    h.receive(b"200 result=0\n")
    assert h.sent() == b"VERBOSE after 1\n"
    h.clock.advance(1.5)
    assert not h.closed
    h.clock.advance(0.5)
    assert isinstance(record[2], AgiTimeoutError)
    assert h.closed


def test_no_environment_closes_connection() -> None:
    """A client that connects and never sends the environment is dropped after command_timeout."""
    h = Harness({}, command_timeout=10)
    h.receive(b"agi_network: yes\n")
    h.clock.advance(10)
    assert h.closed
    assert any("no environment" in m for m in h.messages(LogLevel.warn))
    h.assert_no_timers()


# --------------------------------------------------------------------- hangups


def test_hangup_mid_command_fails_it_and_lets_handler_finish() -> None:
    """HANGUP while a command runs: AgiHangupError, later commands fail unsent, finally runs, then close."""
    handler, record = recording(
        lambda agi: agi.stream_file("custom/long-message"),
        lambda agi: agi.set_variable("X", "1"),
    )
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert h.sent() == b'STREAM FILE custom/long-message ""\n'
    h.receive(b"HANGUP\n")
    assert isinstance(record[1], AgiHangupError)
    assert isinstance(record[2], AgiHangupError)
    assert record[3] == "finally"
    assert h.sent() == b""
    assert h.closed
    # Asterisk's own late reply and its closing HANGUP are absorbed quietly.
    h.receive(b"200 result=-1 endpos=0\nHANGUP\n")
    assert h.messages(LogLevel.error) == []
    assert h.messages(LogLevel.critical) == []
    h.assert_no_timers()


def test_hangup_interleaved_with_reply_in_one_chunk() -> None:
    """A reply and HANGUP in one segment: the reply completes its command, then the session is hung up."""
    seen: list[object] = []

    async def handler(agi: AgiSession) -> None:
        seen.append(await agi.get_variable("CHOICE"))
        seen.append(agi.hung_up)
        try:
            await agi.answer()
        except AgiHangupError:
            seen.append("hangup")

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"200 result=1 (2)\nHANGUP\n")
    # The handler resumed with the value before the HANGUP line was processed.
    assert seen == ["2", False, "hangup"]
    assert h.closed


def test_hangup_while_idle_marks_session() -> None:
    """HANGUP with no command pending makes the next command fail at once with AgiHangupError."""
    gate: Deferred[None] = Deferred()
    handler, record = recording(lambda agi: gate, lambda agi: agi.answer())
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"HANGUP\n")
    gate.callback(None)
    assert isinstance(record[2], AgiHangupError)
    assert h.sent() == b""
    assert h.closed


def test_511_dead_channel_is_a_hangup() -> None:
    """A 511 reply fails the command with AgiHangupError and ends the session."""
    handler, record = recording(lambda agi: agi.answer(), lambda agi: agi.verbose("x"))
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"511 Command Not Permitted on a dead channel or intercept routine\n")
    assert isinstance(record[1], AgiHangupError)
    assert isinstance(record[2], AgiHangupError)
    assert h.closed
    h.assert_no_timers()


def test_connection_lost_mid_command() -> None:
    """Losing the TCP connection fails the pending command with AgiHangupError; the handler still finishes."""
    handler, record = recording(
        lambda agi: agi.get_data("beep", 5000, 2), lambda agi: agi.answer()
    )
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.lose_connection()
    assert isinstance(record[1], AgiHangupError)
    assert isinstance(record[2], AgiHangupError)
    assert record[3] == "finally"
    assert h.factory.connections == set()
    h.assert_no_timers()


def test_result_minus_one_raises_hangup_without_ending_session() -> None:
    """GET DATA result=-1 raises AgiHangupError in the handler; the session is not marked hung up by it."""
    seen: list[object] = []

    async def handler(agi: AgiSession) -> None:
        try:
            await agi.get_data("missing-prompt", 3000, 1)
        except AgiHangupError:
            seen.append(agi.hung_up)
        await agi.verbose("still here")

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"200 result=-1\n")
    assert seen == [False]
    assert h.sent() == b'GET DATA missing-prompt 3000 1\nVERBOSE "still here" 1\n'


# ----------------------------------------------------------- handler failures


def test_handler_exception_is_logged_and_connection_closed() -> None:
    """An exception escaping the handler is logged with script and uniqueid and the connection is closed."""

    async def handler(agi: AgiSession) -> None:
        await agi.answer()
        raise RuntimeError("boom")

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"200 result=0\n")
    assert h.closed
    failures = [e for e in h.events if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)
    text = formatEvent(failures[0])
    assert "'ivr/main'" in text and "1700000000.42" in text


def test_synchronous_handler_error_and_deferred_handler() -> None:
    """A plain function may raise at once (logged) or return a Deferred (awaited); neither crashes the server."""

    def raises(agi: AgiSession) -> Deferred[None]:
        raise KeyError("sync")

    def deferred_handler(agi: AgiSession) -> Deferred[None]:
        return agi.answer()

    h1 = Harness({"ivr/main": raises})
    h1.receive(environment())
    assert h1.closed
    assert [e["log_failure"].type for e in h1.events if "log_failure" in e] == [
        KeyError
    ]

    h2 = Harness({"ivr/main": deferred_handler})
    h2.receive(environment())
    assert h2.sent() == b"ANSWER\n"
    h2.receive(b"200 result=0\n")
    assert h2.closed
    assert [e for e in h2.events if "log_failure" in e] == []


def test_handler_ending_by_hangup_is_not_an_error() -> None:
    """A handler that lets AgiHangupError escape is logged at info level, not as a failure."""

    async def handler(agi: AgiSession) -> None:
        await agi.answer()

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"HANGUP\n")
    assert h.closed
    assert [e for e in h.events if "log_failure" in e] == []
    assert any("ended by hangup" in m for m in h.messages(LogLevel.info))


def test_commands_after_handler_returned_fail() -> None:
    """A command fired and forgotten by a handler that already returned fails with AgiSessionClosedError."""
    failures: list[Failure] = []
    kept: list[AgiSession] = []

    def handler(agi: AgiSession) -> Deferred[None]:
        kept.append(agi)
        return succeed(None)

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert h.closed
    kept[0].answer().addErrback(failures.append)
    assert [f.type for f in failures] == [AgiSessionClosedError]
    assert h.sent() == b""


# ------------------------------------------------------------ protocol errors


def test_garbage_from_asterisk_closes_with_error_log() -> None:
    """A line that is no FastAGI fails the pending command, is logged naming the line, and closes."""
    handler, record = recording(lambda agi: agi.answer())
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"hello there\n")
    assert isinstance(record[1], AgiSessionClosedError)
    assert h.closed
    errors = h.messages(LogLevel.error)
    assert len(errors) == 1 and "'hello there'" in errors[0]
    h.receive(b"200 result=0\n")  # ignored after the close
    h.assert_no_timers()


def test_reply_without_command_is_a_protocol_error() -> None:
    """A reply when no command is waiting means the stream is out of step: logged and closed."""
    gate: Deferred[None] = Deferred()
    handler, record = recording(lambda agi: gate)
    h = Harness({"ivr/main": handler})
    h.receive(environment())
    h.receive(b"200 result=0\n")
    assert h.closed
    assert any("no command waiting" in m for m in h.messages(LogLevel.error))
    gate.callback(None)
    assert record[-1] == "finally"


def test_non_agi_client_is_dropped() -> None:
    """Something that is not Asterisk (an HTTP probe) is logged and disconnected before any handler runs."""
    h = Harness({"ivr/main": recording()[0]})
    h.receive(b"GET / HTTP/1.1\r\n\r\n")
    assert h.closed
    assert any("GET / HTTP/1.1" in m for m in h.messages(LogLevel.error))
    h.assert_no_timers()


# ------------------------------------------------------------------- cancelling


def test_cancelling_commands() -> None:
    """A cancelled queued command is never sent; a cancelled in-flight one still holds the line until its reply."""
    got: list[object] = []

    def handler(agi: AgiSession) -> Deferred[None]:
        running = agi.get_data("beep", 5000, 1)
        queued = agi.verbose("never sent")
        last = agi.answer()
        running.addErrback(lambda f: got.append(f.type))
        queued.addErrback(lambda f: got.append(f.type))
        running.cancel()
        queued.cancel()
        return last

    h = Harness({"ivr/main": handler})
    h.receive(environment())
    assert got == [CancelledError, CancelledError]
    assert h.sent() == b"GET DATA beep 5000 1\n"
    h.receive(b"200 result=1\n")  # the cancelled GET DATA's reply, discarded
    assert h.sent() == b"ANSWER\n"
    h.receive(b"200 result=0\n")
    assert h.closed
    h.assert_no_timers()


def test_factory_rejects_bad_timeout() -> None:
    """A zero or negative command timeout is a configuration error caught at construction."""
    with pytest.raises(ValueError):
        FastAgiFactory({}, Clock(), command_timeout=0)
