"""Unit tests of the Twisted AMI client (``callcenter.ami.client``) and its actions layer.

No network and no global reactor: protocols run over ``StringTransport`` with a
``Clock``; the reconnecting :class:`AmiClient` runs on a ``MemoryReactorClock`` whose
connection attempts the tests accept, refuse or drop by hand, playing Asterisk. List
answers and ``OriginateResponse`` events come from the real Asterisk 22 capture in
``fixtures/ami/``.
"""

from __future__ import annotations

import base64
import gc
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.application.internet import backoffPolicy
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from callcenter.ami import actions
from callcenter.ami.actions import AmiAction
from callcenter.ami.client import (
    AmiActionFailed,
    AmiClient,
    AmiConnectionLost,
    AmiCredentials,
    AmiLoginFailed,
    AmiNotConnected,
    AmiProtocol,
    AmiResult,
    AmiTimeout,
)
from callcenter.ami.codec import AmiActionError, AmiParser, Message

REPO = Path(__file__).resolve().parents[2]
CAPTURE_NAME = "asterisk22-queue-dialer-fax.ami.gz"
CREDENTIALS = AmiCredentials("cc", "s3cret")
GREETING = b"Asterisk Call Manager/11.0.0\r\n"


# --------------------------------------------------------------------------- helpers


def frame(*pairs: tuple[str, str]) -> bytes:
    """One AMI message as Asterisk writes it."""
    return "".join(f"{name}: {value}\r\n" for name, value in pairs).encode() + b"\r\n"


def wire(message: Message) -> bytes:
    """The exact bytes of a captured message (its text plus the closing blank line)."""
    return message.text.encode("utf-8", "surrogateescape") + b"\r\n\r\n"


def parse_written(data: bytes) -> list[Message]:
    """Parse what the client wrote (actions have the same framing as messages)."""
    parser = AmiParser()
    return parser.feed(b"client\r\n" + data)


class LogCapture:
    """A :class:`Logger` whose events land in a list."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.logger = Logger(namespace="test.ami", observer=self.events.append)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("log_format") == name]

    def text(self) -> str:
        return "\n".join(formatEvent(e) + " " + repr({k: v for k, v in e.items() if not k.startswith("log_")})
                         for e in self.events)


@pytest.fixture(autouse=True)
def no_unhandled_deferred_errors() -> Iterator[None]:
    """Fail a test that leaves a Deferred failing with nobody to handle it."""
    seen: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        if "Unhandled error in Deferred" in (event.get("log_format") or ""):
            seen.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        yield
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(observer)
    assert not seen, [formatEvent(e) for e in seen]


@pytest.fixture(scope="module")
def capture() -> bytes:
    """The raw bytes of the real Asterisk 22 AMI capture."""
    return gzip.decompress((REPO / "tests" / "fixtures" / "ami" / CAPTURE_NAME).read_bytes())


@pytest.fixture(scope="module")
def captured(capture: bytes) -> list[Message]:
    """Every message of the capture, parsed."""
    return AmiParser().feed(capture)


def by_action_id(messages: list[Message], action_id: str) -> list[Message]:
    return [m for m in messages if m.action_id == action_id]


class Session:
    """An :class:`AmiProtocol` on a ``StringTransport``, with Asterisk's side scripted."""

    def __init__(self, **kwargs: Any) -> None:
        self.clock = Clock()
        self.log = LogCapture()
        kwargs.setdefault("action_ids", (f"t-{n}" for n in range(1, 10_000)))
        self.protocol = AmiProtocol(CREDENTIALS, self.clock, log=self.log.logger, **kwargs)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self._read = 0

    def written(self) -> list[Message]:
        """Actions written since the last call."""
        data = self.transport.value()[self._read :]
        self._read = len(self.transport.value())
        return parse_written(data)

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def login(self) -> None:
        """Greeting, Login, ``Authentication accepted``."""
        self.feed(GREETING)
        (login,) = self.written()
        self.feed(frame(("Response", "Success"), ("ActionID", login["ActionID"]),
                        ("Message", "Authentication accepted")))
        assert self.protocol.logged_in

    def lose(self, reason: Exception | None = None) -> None:
        self.protocol.connectionLost(Failure(reason or ConnectionDone()))


class FakeAsterisk:
    """Asterisk's end of connection attempt ``index`` made on a ``MemoryReactorClock``."""

    def __init__(self, reactor: MemoryReactorClock, index: int = -1) -> None:
        host, port, factory, _timeout, _bind = reactor.tcpClients[index]
        address = IPv4Address("TCP", host, port)
        self.protocol = factory.buildProtocol(address)
        self.transport = StringTransport(peerAddress=address)
        self.protocol.makeConnection(self.transport)
        self._read = 0

    def written(self) -> list[Message]:
        data = self.transport.value()[self._read :]
        self._read = len(self.transport.value())
        return parse_written(data)

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def answer(self, action: Message, *pairs: tuple[str, str]) -> None:
        self.feed(frame(("Response", "Success"), ("ActionID", action["ActionID"]), *pairs))

    def login(self, booted: bool = True) -> None:
        """Greeting, Login, ``Authentication accepted`` and, as a booted Asterisk 22 does
        right after it (see the capture), ``FullyBooted``."""
        self.feed(GREETING)
        (login,) = self.written()
        assert login["Action"] == "Login"
        self.answer(login, ("Message", "Authentication accepted"))
        if booted:
            self.fully_booted()

    def fully_booted(self) -> None:
        self.feed(frame(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "5"),
                        ("LastReload", "5"), ("Status", "Fully Booted")))

    def resync(self, channels: int = 1, members: int = 1) -> None:
        """Answer the CoreShowChannels and QueueStatus the client sends after login."""
        sent = {m["Action"]: m for m in self.written()}
        assert set(sent) == {"CoreShowChannels", "QueueStatus"}
        cs, qs = sent["CoreShowChannels"]["ActionID"], sent["QueueStatus"]["ActionID"]
        data = frame(("Response", "Success"), ("ActionID", cs), ("EventList", "start"),
                     ("Message", "Channels will follow"))
        for n in range(channels):
            data += frame(("Event", "CoreShowChannel"), ("ActionID", cs),
                          ("Channel", f"PJSIP/agent{n}-0000000{n}"), ("Uniqueid", f"1795415279.{n}"))
        data += frame(("Event", "CoreShowChannelsComplete"), ("ActionID", cs), ("EventList", "Complete"),
                      ("ListItems", str(channels)))
        data += frame(("Response", "Success"), ("ActionID", qs), ("EventList", "start"),
                      ("Message", "Queue status will follow"))
        data += frame(("Event", "QueueParams"), ("Queue", "hotline"), ("ActionID", qs))
        for n in range(members):
            data += frame(("Event", "QueueMember"), ("Queue", "hotline"), ("Name", f"Agent{n}"), ("ActionID", qs))
        data += frame(("Event", "QueueStatusComplete"), ("ActionID", qs), ("EventList", "Complete"),
                      ("ListItems", str(members + 1)))
        self.feed(data)

    def lose(self, reason: Exception | None = None) -> None:
        self.protocol.connectionLost(Failure(reason or ConnectionLost()))


def make_client(reactor: MemoryReactorClock, log: LogCapture, **kwargs: Any) -> AmiClient:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", 5038)
    kwargs.setdefault("retry_policy", backoffPolicy(initialDelay=0.5, maxDelay=10, jitter=lambda: 0.0))
    kwargs.setdefault("action_id_prefix", "c")
    return AmiClient(endpoint, CREDENTIALS, reactor, log=log.logger, **kwargs)


def success(d: Deferred[Any]) -> Any:
    """The result of a Deferred that has already fired successfully."""
    results: list[Any] = []
    failures: list[Failure] = []
    d.addCallbacks(results.append, failures.append)
    assert not failures, failures[0].getTraceback()
    assert results, "Deferred has not fired"
    return results[0]


def failure_of(d: Deferred[Any], *types: type[BaseException]) -> Failure:
    """The Failure of a Deferred that has already failed with one of ``types``."""
    results: list[Any] = []
    failures: list[Failure] = []
    d.addCallbacks(results.append, failures.append)
    assert not results, f"Deferred succeeded with {results[0]!r}"
    assert failures, "Deferred has not fired"
    assert failures[0].check(*types), failures[0].getTraceback()
    return failures[0]


def no_result(d: Deferred[Any]) -> None:
    """Assert the Deferred has not fired yet (without consuming anything)."""
    assert not d.called


# --------------------------------------------------------------------------- actions layer


def test_originate_action_bytes_in_header_order() -> None:
    """Originate is written with the documented headers, booleans as true/false, repeated Variable."""
    action = actions.originate(
        "Local/13872498494@sim-pstn", context="dialer-connect", exten="s", priority=1,
        caller_id="Cust 1 <4008001234>", timeout_ms=25000, variables={"LEAD_ID": 42, "CAMPAIGN": "spring"},
        channel_id="dial-7-a", other_channel_id="dial-7-b",
    )
    assert action.to_bytes("dial-7") == (
        b"Action: Originate\r\nActionID: dial-7\r\nChannel: Local/13872498494@sim-pstn\r\n"
        b"Context: dialer-connect\r\nExten: s\r\nPriority: 1\r\nCallerID: Cust 1 <4008001234>\r\n"
        b"Timeout: 25000\r\nChannelId: dial-7-a\r\nOtherChannelId: dial-7-b\r\nAsync: true\r\n"
        b"Variable: LEAD_ID=42\r\nVariable: CAMPAIGN=spring\r\n\r\n"
    )


def test_originate_needs_a_dialplan_place_or_an_application() -> None:
    """Originate refuses half a destination, or both kinds at once."""
    with pytest.raises(AmiActionError):
        actions.originate("PJSIP/sup1", context="default", exten="400")
    with pytest.raises(AmiActionError):
        actions.originate("PJSIP/sup1", application="ChanSpy", context="default", exten="400", priority=1)
    spy = actions.originate("PJSIP/sup1", application="ChanSpy", data="PJSIP/agent7-0000002a,qE")
    assert spy.get("Application") == "ChanSpy" and spy.get("Data") == "PJSIP/agent7-0000002a,qE"


@pytest.mark.parametrize(
    "build",
    [
        lambda: actions.originate("Local/400@default", context="default", exten="400", priority=1,
                                  caller_id="Evil\r\nAction: Hangup"),
        lambda: actions.originate("Local/400@default", context="default", exten="400", priority=1,
                                  variables={"LEAD_NAME": "Bob\nAction: Hangup"}),
        lambda: actions.queue_pause("Local/1001@agents/n", True, reason="lunch\rAction: Logoff"),
        lambda: actions.setvar("X", "a\r\nb"),
        lambda: AmiAction("Hangup", (("Channel", "PJSIP/a\r\nAction: Command"),)),
    ],
)
def test_header_injection_refused_when_the_action_is_built(build: Any) -> None:
    """CR or LF in any value raises AmiActionError as the action is built, in the caller's stack."""
    with pytest.raises(AmiActionError):
        build()


def test_message_send_carries_any_text_base64_encoded() -> None:
    """Chinese, commas and a line break reach Asterisk as one Base64Body header, decoded back exactly."""
    body = "【某某公司】张先生,您好:\n新品上市。回T退订"
    action = actions.message_send("pjsip:sms-gateway/sip:13900000001@10.0.0.5", '"10690000" <sip:10690000@h>', body)
    wire = action.to_bytes("sms-1").decode("ascii")
    assert wire.startswith("Action: MessageSend\r\nActionID: sms-1\r\nDestination: pjsip:sms-gateway/sip:13900000001@")
    (encoded,) = [line.split(": ", 1)[1] for line in wire.split("\r\n") if line.startswith("Base64Body: ")]
    assert base64.b64decode(encoded).decode("utf-8") == body
    with pytest.raises(AmiActionError):
        actions.message_send("pjsip:sms-gateway/sip:1@h\r\nAction: Originate", "sip:1@h", "x")


def test_login_action_never_shows_its_secret() -> None:
    """repr() of a Login action (and of credentials) hides the secret; a bad secret's error too."""
    action = actions.login("cc", "s3cret")
    assert "s3cret" not in repr(action)
    assert "s3cret" not in repr(CREDENTIALS)
    with pytest.raises(AmiActionError) as raised:
        actions.login("cc", "top\r\nsecret")
    assert "secret" in str(raised.value) and "top" not in str(raised.value)


def test_every_documented_action_builds() -> None:
    """Each action of the layer builds and serialises with its AMI name."""
    built = [
        actions.logoff(), actions.ping(), actions.hangup("PJSIP/a-1", cause=16), actions.command("core show version"),
        actions.core_show_channels(), actions.queue_status("hotline"), actions.queue_summary(),
        actions.queue_add("hotline", "Local/1001@agents/n", penalty=1, paused=False, member_name="Agent1001",
                          state_interface="Custom:agent1001"),
        actions.queue_remove("hotline", "Local/1001@agents/n"),
        actions.queue_pause("Local/1001@agents/n", True, queue="hotline", reason="break"),
        actions.setvar("LEAD_ID", 7, channel="PJSIP/a-1"), actions.getvar("LEAD_ID", channel="PJSIP/a-1"),
        actions.redirect("PJSIP/a-1", "default", "400", 1), actions.mix_monitor("PJSIP/a-1", "/rec/a.wav", options="b"),
        actions.stop_mix_monitor("PJSIP/a-1"), actions.event_filter("Event: Newchannel"), actions.core_settings(),
        actions.events("call,agent"),
    ]
    names = [a.name for a in built]
    assert names == ["Logoff", "Ping", "Hangup", "Command", "CoreShowChannels", "QueueStatus", "QueueSummary",
                     "QueueAdd", "QueueRemove", "QueuePause", "Setvar", "Getvar", "Redirect", "MixMonitor",
                     "StopMixMonitor", "Filter", "CoreSettings", "Events"]
    for action in built:
        assert action.to_bytes("x-1").startswith(f"Action: {action.name}\r\nActionID: x-1\r\n".encode())


# --------------------------------------------------------------------------- login


def test_login_sequence_bytes() -> None:
    """Nothing is written before the greeting; then exactly one Login with Events: on."""
    session = Session()
    assert session.transport.value() == b""
    session.feed(GREETING[:10])
    assert session.transport.value() == b""
    session.feed(GREETING[10:])
    assert session.transport.value() == (
        b"Action: Login\r\nActionID: t-1\r\nUsername: cc\r\nSecret: s3cret\r\nEvents: on\r\n\r\n"
    )
    waiting = session.protocol.when_logged_in()
    no_result(waiting)
    session.feed(frame(("Response", "Success"), ("ActionID", "t-1"), ("Message", "Authentication accepted")))
    assert success(waiting) is session.protocol
    assert session.protocol.greeting == "Asterisk Call Manager/11.0.0"
    assert session.log.named("ami.logged_in")


def test_login_refused_fails_with_asterisk_message_and_drops_connection() -> None:
    """Response: Error to Login fails the login with Asterisk's message and closes the socket."""
    session = Session()
    waiting = session.protocol.when_logged_in()
    session.feed(GREETING)
    session.feed(frame(("Response", "Error"), ("ActionID", "t-1"), ("Message", "Authentication failed")))
    error = failure_of(waiting, AmiLoginFailed).value
    assert "Authentication failed" in str(error) and "'cc'" in str(error)
    assert session.transport.disconnecting
    assert session.log.named("ami.login_failed")
    session.lose()
    assert session.clock.getDelayedCalls() == []


def test_not_an_ami_server_is_refused() -> None:
    """A greeting that is not Asterisk's banner fails the login without sending the secret."""
    session = Session()
    waiting = session.protocol.when_logged_in()
    session.feed(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert "not an AMI server" in str(failure_of(waiting, AmiLoginFailed).value)
    assert b"s3cret" not in session.transport.value()
    assert session.transport.disconnecting


def test_login_timeout_without_greeting() -> None:
    """No greeting within login_timeout fails the login and aborts the connection."""
    session = Session(login_timeout=5.0)
    waiting = session.protocol.when_logged_in()
    session.clock.advance(4.9)
    no_result(waiting)
    session.clock.advance(0.2)
    assert "no AMI greeting" in str(failure_of(waiting, AmiLoginFailed).value)
    assert session.transport.disconnecting
    session.lose()
    assert session.clock.getDelayedCalls() == []


# --------------------------------------------------------------------------- actions and answers


def test_action_ids_correlate_out_of_order_responses() -> None:
    """Responses are matched by ActionID, not by order."""
    session = Session()
    session.login()
    first = session.protocol.send(actions.getvar("A"))
    second = session.protocol.send(actions.getvar("B"))
    third = session.protocol.send(actions.ping())
    written = session.written()
    ids = [m["ActionID"] for m in written]
    assert len(set(ids)) == 3 and all(i.startswith("t-") for i in ids)
    assert [m["Action"] for m in written] == ["Getvar", "Getvar", "Ping"]
    session.feed(frame(("Response", "Success"), ("ActionID", ids[2]), ("Ping", "Pong"), ("Timestamp", "1.0")))
    session.feed(frame(("Response", "Success"), ("ActionID", ids[1]), ("Variable", "B"), ("Value", "2")))
    no_result(first)
    session.feed(frame(("Response", "Success"), ("ActionID", ids[0]), ("Variable", "A"), ("Value", "1")))
    assert success(first).response["Value"] == "1"
    assert success(second).response["Value"] == "2"
    pong: AmiResult = success(third)
    assert pong.ok and pong.response["Ping"] == "Pong" and pong.events == [] and pong.complete is None
    assert session.protocol.pending_actions == 0


def test_event_lists_gathered_from_real_capture(captured: list[Message]) -> None:
    """QueueStatus and CoreShowChannels frames from a real Asterisk 22 become one result each.

    Fed one byte at a time, interleaved with an unrelated event; the list items are kept
    in wire order, the Complete event is kept apart, and no item reaches a subscriber.
    """
    session = Session()
    session.login()
    seen: list[Message] = []
    session.protocol.subscribe(seen.append)
    queues = session.protocol.send(actions.queue_status(), action_id="qs-10")
    channels = session.protocol.send(actions.core_show_channels(), action_id="cs-10")
    qs_frames, cs_frames = by_action_id(captured, "qs-10"), by_action_id(captured, "cs-10")
    unrelated = next(m for m in captured if m.name == "Newchannel")
    data = b"".join(wire(m) for m in qs_frames[:3]) + wire(unrelated) + b"".join(wire(m) for m in qs_frames[3:])
    data += b"".join(wire(m) for m in cs_frames)
    for index in range(len(data)):
        session.feed(data[index : index + 1])
    queue_result: AmiResult = success(queues)
    assert queue_result.response["Message"] == "Queue status will follow"
    assert queue_result.events == qs_frames[1:-1]
    assert queue_result.complete == qs_frames[-1]
    assert len(queue_result.events) == int(queue_result.complete["ListItems"]) == 10
    assert {m.name for m in queue_result.events} == {"QueueParams", "QueueMember", "QueueEntry"}
    channel_result: AmiResult = success(channels)
    assert len(channel_result.events) == int(channel_result.complete["ListItems"]) == 26  # type: ignore[index]
    assert all(m.name == "CoreShowChannel" for m in channel_result.events)
    assert seen == [unrelated]


def test_whole_capture_through_the_protocol(capture: bytes, captured: list[Message]) -> None:
    """The full 90 s capture, in 64 KiB chunks: lists and OriginateResponses land where they belong.

    Every other event reaches the catch-all subscriber; answers to actions this session
    never sent are logged as unmatched, not mistaken for anything.
    """
    session = Session(ping_interval=None)
    session.login()
    seen: list[Message] = []
    session.protocol.subscribe(seen.append)
    queues = session.protocol.send(actions.queue_status(), action_id="qs-10")
    channels = session.protocol.send(actions.core_show_channels(), action_id="cs-10")
    dial = actions.originate("Local/13872498494@sim-pstn", context="dialer-connect", exten="s", priority=1)
    no_answer = session.protocol.originate(dial, action_id="dial-2")
    answered = session.protocol.originate(dial, action_id="dial-4")
    body = capture[capture.index(b"\r\n\r\n") + 4 :]  # after the capture's own login answer
    for start in range(0, len(body), 65536):
        session.feed(body[start : start + 65536])
    assert len(success(queues).events) == 10
    assert len(success(channels).events) == 26
    failed_call: Message = success(no_answer)
    assert failed_call.name == "OriginateResponse" and failed_call["Response"] == "Failure"
    assert failed_call["Reason"] == "3"
    ok_call: Message = success(answered)
    assert ok_call["Reason"] == "4" and ok_call["Uniqueid"] == "1795415280.316"
    list_items = {id(m) for m in by_action_id(captured, "qs-10") + by_action_id(captured, "cs-10")}
    expected = [m for m in captured[1:] if m.is_event and id(m) not in list_items]
    assert len(seen) == len(expected) == 20929 - (10 + 1) - (26 + 1)  # items and Complete of both lists
    assert seen == expected
    assert session.protocol.counters.events == 20929
    assert session.log.named("ami.unmatched_response")
    assert session.clock.getDelayedCalls() == []


def test_response_error_fails_with_the_message_kept() -> None:
    """Response: Error fails the Deferred with AmiActionFailed carrying Asterisk's whole message."""
    session = Session()
    session.login()
    d = session.protocol.send(actions.queue_pause("Local/9999@agents/n", True, queue="hotline"))
    (sent,) = session.written()
    session.feed(frame(("Response", "Error"), ("ActionID", sent["ActionID"]),
                       ("Message", "Interface not found")))
    error = failure_of(d, AmiActionFailed).value
    assert isinstance(error, AmiActionFailed)
    assert error.message["Message"] == "Interface not found"
    assert error.action.name == "QueuePause"
    assert "Interface not found" in str(error)
    assert session.clock.getDelayedCalls() != []  # only the keepalive remains
    assert session.protocol.pending_actions == 0


def test_action_timeout_and_late_answer_dropped() -> None:
    """No answer within the timeout fails with AmiTimeout; the late list is dropped, not dispatched."""
    session = Session(ping_interval=None)
    session.login()
    seen: list[Message] = []
    session.protocol.subscribe(seen.append)
    d = session.protocol.send(actions.core_show_channels(), timeout=3.0)
    (sent,) = session.written()
    session.clock.advance(2.9)
    no_result(d)
    session.clock.advance(0.1)
    error = failure_of(d, AmiTimeout).value
    assert isinstance(error, AmiTimeout) and error.timeout == 3.0 and error.action_id == sent["ActionID"]
    assert session.clock.getDelayedCalls() == []
    aid = sent["ActionID"]
    session.feed(frame(("Response", "Success"), ("ActionID", aid), ("EventList", "start"))
                 + frame(("Event", "CoreShowChannel"), ("ActionID", aid), ("Channel", "PJSIP/a-1"))
                 + frame(("Event", "CoreShowChannelsComplete"), ("ActionID", aid), ("EventList", "Complete"),
                         ("ListItems", "1"))
                 + frame(("Event", "Hangup"), ("Channel", "PJSIP/b-2")))
    assert [m.name for m in seen] == ["Hangup"]
    assert not session.log.named("ami.unmatched_response")


def test_default_action_timeout_applies() -> None:
    """send() without a timeout uses the protocol's action_timeout."""
    session = Session(ping_interval=None, action_timeout=7.0)
    session.login()
    d = session.protocol.send(actions.command("core show uptime"))
    session.clock.advance(7.0)
    failure_of(d, AmiTimeout)


def test_originate_fires_with_originate_response_not_queued_ack(captured: list[Message]) -> None:
    """originate() ignores 'Originate successfully queued' and fires with the OriginateResponse event."""
    session = Session(ping_interval=None)
    session.login()
    d = session.protocol.originate(
        actions.originate("Local/400@default", context="default", exten="400", priority=1, async_=False,
                          timeout_ms=20000),
        action_id="in-1",
    )
    (sent,) = session.written()
    assert sent["Async"] == "true" and sent["ActionID"] == "in-1"
    queued, response = by_action_id(captured, "in-1")
    session.feed(wire(queued))
    no_result(d)
    session.feed(wire(response))
    event: Message = success(d)
    assert event == response and event["Reason"] == "4"
    assert session.clock.getDelayedCalls() == []


def test_originate_timeout_is_ring_time_plus_margin() -> None:
    """Without an OriginateResponse the originate fails after Timeout ms + margin, not before."""
    session = Session(ping_interval=None, originate_margin=5.0)
    session.login()
    d = session.protocol.originate(
        actions.originate("Local/400@default", context="default", exten="400", priority=1, timeout_ms=20000))
    (sent,) = session.written()
    session.feed(frame(("Response", "Success"), ("ActionID", sent["ActionID"]),
                       ("Message", "Originate successfully queued")))
    session.clock.advance(24.9)
    no_result(d)
    session.clock.advance(0.1)
    assert failure_of(d, AmiTimeout).value.timeout == 25.0  # type: ignore[union-attr]
    assert session.clock.getDelayedCalls() == []


def test_originate_refused_fails_with_action_failed() -> None:
    """An Originate Asterisk refuses fails originate() with AmiActionFailed and leaves no timer."""
    session = Session(ping_interval=None)
    session.login()
    d = session.protocol.originate(actions.originate("PJSIP/nobody", application="Playback", data="beep"))
    (sent,) = session.written()
    session.feed(frame(("Response", "Error"), ("ActionID", sent["ActionID"]), ("Message", "Permission denied")))
    assert failure_of(d, AmiActionFailed).value.message["Message"] == "Permission denied"  # type: ignore[union-attr]
    assert session.clock.getDelayedCalls() == []


def test_header_injection_in_caller_id_writes_nothing() -> None:
    """A caller id 'Evil\\r\\nAction: Hangup' raises AmiActionError and nothing reaches the transport."""
    session = Session()
    session.login()
    session.written()
    before = session.transport.value()
    with pytest.raises(AmiActionError):
        session.protocol.originate(actions.originate(
            "Local/400@default", context="default", exten="400", priority=1, caller_id="Evil\r\nAction: Hangup"))
    with pytest.raises(AmiActionError):
        session.protocol.send(actions.ping(), action_id="x\r\nAction: Hangup")
    assert session.transport.value() == before
    assert session.protocol.pending_actions == 0


# --------------------------------------------------------------------------- events


def test_subscriber_exception_is_logged_and_isolated() -> None:
    """A subscriber raising is logged; the others still get every event, in order."""
    session = Session()
    session.login()
    got: list[str] = []
    hangups: list[str] = []

    def broken(message: Message) -> None:
        raise RuntimeError("bug in a subscriber")

    session.protocol.subscribe(broken)
    session.protocol.subscribe(lambda m: got.append(m.name or ""))
    handle = session.protocol.subscribe(lambda m: hangups.append(m["Channel"]), name="hangup")
    session.feed(frame(("Event", "Newchannel"), ("Channel", "PJSIP/a-1"))
                 + frame(("Event", "Hangup"), ("Channel", "PJSIP/a-1")))
    handle.cancel()
    session.feed(frame(("Event", "Hangup"), ("Channel", "PJSIP/b-2")))
    assert got == ["Newchannel", "Hangup", "Hangup"]
    assert hangups == ["PJSIP/a-1"]
    failures = session.log.named("ami.subscriber_failed")
    assert len(failures) == 3
    assert failures[0]["log_failure"].check(RuntimeError)


def test_malformed_lines_logged_and_message_still_delivered() -> None:
    """A line that is not a header is logged with its text; the event still reaches subscribers."""
    session = Session()
    session.login()
    got: list[Message] = []
    session.protocol.subscribe(got.append)
    session.feed(b"Event: Newchannel\r\nChannel: PJSIP/a-1\r\ngarbage without colon\r\n\r\n")
    session.feed(b"Something: else\r\n\r\n")
    assert [m["Channel"] for m in got] == ["PJSIP/a-1"]
    (problem,) = session.log.named("ami.malformed_line")
    assert "garbage without colon" in problem["problem"]
    (frame_log,) = session.log.named("ami.unrecognised_frame")
    assert "Something: else" in frame_log["text"]
    assert session.protocol.counters.frame_problems == 1
    assert session.protocol.counters.unrecognised_frames == 1


# --------------------------------------------------------------------------- keepalive and loss


def test_ping_keepalive_and_abort_on_missed_pong() -> None:
    """A Ping goes out every ping_interval; an unanswered one aborts the connection."""
    session = Session(ping_interval=20.0, ping_timeout=5.0)
    session.login()
    session.clock.advance(19.9)
    assert session.written() == []
    session.clock.advance(0.1)
    (ping,) = session.written()
    assert ping["Action"] == "Ping"
    session.feed(frame(("Response", "Success"), ("ActionID", ping["ActionID"]), ("Ping", "Pong")))
    session.clock.advance(20.0)
    (ping2,) = session.written()
    assert ping2["Action"] == "Ping" and ping2["ActionID"] != ping["ActionID"]
    session.clock.advance(4.9)
    assert not session.transport.disconnecting
    session.clock.advance(0.1)
    assert session.transport.disconnecting
    assert session.log.named("ami.ping_timeout")
    session.lose(ConnectionLost())
    assert session.clock.getDelayedCalls() == []


def test_connection_loss_fails_everything_pending_and_leaks_no_timer() -> None:
    """On connection loss every pending action, list and originate fails with AmiConnectionLost."""
    session = Session()
    session.login()
    plain = session.protocol.send(actions.getvar("A"))
    listing = session.protocol.send(actions.queue_status())
    call = session.protocol.originate(
        actions.originate("Local/400@default", context="default", exten="400", priority=1))
    sent = session.written()
    session.feed(frame(("Response", "Success"), ("ActionID", sent[1]["ActionID"]), ("EventList", "start")))
    session.feed(frame(("Response", "Success"), ("ActionID", sent[2]["ActionID"]),
                       ("Message", "Originate successfully queued")))
    session.lose(ConnectionLost())
    for d in (plain, listing, call):
        assert isinstance(failure_of(d, AmiConnectionLost).value, AmiConnectionLost)
    assert session.clock.getDelayedCalls() == []
    failure_of(session.protocol.send(actions.ping()), AmiNotConnected)
    failure_of(session.protocol.when_logged_in(), AmiConnectionLost)


# --------------------------------------------------------------------------- reconnecting client


def test_client_logs_in_resyncs_and_reconnects_after_loss() -> None:
    """ClientService dials again after a loss and refusals; resync listeners run after each login."""
    reactor = MemoryReactorClock()
    log = LogCapture()
    client = make_client(reactor, log)
    resyncs: list[tuple[list[str], list[str]]] = []
    client.on_resync(lambda channels, queue: resyncs.append(
        ([m["Channel"] for m in channels], [m.name or "" for m in queue])))
    client.startService()
    assert len(reactor.tcpClients) == 1
    first = FakeAsterisk(reactor)
    first.login()
    assert not client.connected  # not before the state is resynchronised
    first.resync(channels=2, members=1)
    assert client.connected and client.connections_made == 1 and client.reconnects == 0
    assert resyncs == [(["PJSIP/agent0-00000000", "PJSIP/agent1-00000001"],
                        ["QueueParams", "QueueMember"])]
    assert client.last_connected == reactor.seconds()

    first.lose()
    assert not client.connected
    failure_of(client.send(actions.ping()), AmiNotConnected)
    reactor.advance(0.75)  # backoff: 0.5 * 1.5 ** 1
    assert len(reactor.tcpClients) == 2
    reactor.tcpClients[1][2].clientConnectionFailed(reactor.connectors[1], Failure(ConnectionRefusedError()))
    reactor.advance(1.0)
    assert len(reactor.tcpClients) == 2
    reactor.advance(0.125)  # 0.5 * 1.5 ** 2
    assert len(reactor.tcpClients) == 3
    second = FakeAsterisk(reactor)
    second.login()
    second.resync(channels=0, members=2)
    assert client.connected and client.connections_made == 2 and client.reconnects == 1
    assert resyncs[1] == ([], ["QueueParams", "QueueMember", "QueueMember"])

    d = client.send(actions.command("core show uptime"))
    (command,) = second.written()
    second.answer(command, ("Output", "System uptime: 1 minute"))
    assert success(d).response.output == ["System uptime: 1 minute"]

    stopped = client.stopService()
    (logoff,) = second.written()
    assert logoff["Action"] == "Logoff"
    assert second.transport.disconnecting
    second.lose(ConnectionDone())
    success(stopped)
    assert reactor.getDelayedCalls() == []


def test_events_during_resync_reach_subscribers_after_the_snapshot() -> None:
    """Events arriving between login and resync are held, then delivered after the listeners ran."""
    reactor = MemoryReactorClock()
    log = LogCapture()
    client = make_client(reactor, log)
    order: list[str] = []
    client.subscribe(lambda m: order.append(f"event:{m.name}"))
    client.on_resync(lambda channels, queue: order.append("resync"))
    client.startService()
    server = FakeAsterisk(reactor)
    server.login()
    server.feed(frame(("Event", "SuccessfulAuth"), ("Service", "AMI")))
    assert order == []
    server.resync()
    server.feed(frame(("Event", "Newchannel"), ("Channel", "PJSIP/a-1")))
    assert order == ["resync", "event:FullyBooted", "event:SuccessfulAuth", "event:Newchannel"]
    stopped = client.stopService()
    server.lose(ConnectionDone())
    success(stopped)
    assert reactor.getDelayedCalls() == []


def test_wrong_secret_retries_with_backoff_without_breaking_client_service() -> None:
    """A refused login counts as a failed attempt: logged, socket dropped, retried with backoff."""
    reactor = MemoryReactorClock()
    log = LogCapture()
    client = make_client(reactor, log)
    client.startService()
    waiting = client.when_connected(fail_after_failures=1)
    server = FakeAsterisk(reactor)
    server.feed(GREETING)
    (login,) = server.written()
    server.feed(frame(("Response", "Error"), ("ActionID", login["ActionID"]), ("Message", "Authentication failed")))
    assert "Authentication failed" in str(failure_of(waiting, AmiLoginFailed).value)
    assert server.transport.disconnecting
    server.lose()  # must not reach ClientService's state machine (no NoTransition)
    reactor.advance(0.75)
    assert len(reactor.tcpClients) == 2
    retry = FakeAsterisk(reactor)
    retry.login()
    retry.resync()
    assert client.connected and client.connections_made == 1
    stopped = client.stopService()
    retry.lose(ConnectionDone())
    success(stopped)
    assert reactor.getDelayedCalls() == []


def test_connection_lost_during_login_is_retried() -> None:
    """Asterisk closing the socket before the login answer is a failed attempt, then a retry."""
    reactor = MemoryReactorClock()
    client = make_client(reactor, LogCapture())
    client.startService()
    server = FakeAsterisk(reactor)
    server.feed(GREETING)
    server.lose()
    reactor.advance(0.75)
    assert len(reactor.tcpClients) == 2
    assert not client.connected
    client.stopService()
    assert reactor.getDelayedCalls() == []


def test_asterisk_down_keeps_retrying_at_max_delay() -> None:
    """While Asterisk refuses connections the client keeps dialing, the delay capped at max_delay."""
    reactor = MemoryReactorClock()
    client = make_client(reactor, LogCapture())
    client.startService()
    for attempt in range(30):
        assert len(reactor.tcpClients) == attempt + 1
        reactor.tcpClients[-1][2].clientConnectionFailed(reactor.connectors[-1], Failure(ConnectionRefusedError()))
        (retry,) = reactor.getDelayedCalls()
        assert retry.getTime() - reactor.seconds() <= 10.0
        reactor.advance(10.0)
    server = FakeAsterisk(reactor)
    server.login()
    server.resync()
    assert client.connected
    client.stopService()
    server.lose(ConnectionDone())
    assert reactor.getDelayedCalls() == []


def test_retry_log_line_names_the_ami_endpoint_not_an_object_repr() -> None:
    """Twisted's own "Scheduling retry N to connect X" line says where, as the operator wrote it."""
    from twisted.logger import formatEvent, globalLogPublisher

    seen: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        reactor = MemoryReactorClock()
        client = make_client(reactor, LogCapture())
        client.startService()
        reactor.tcpClients[-1][2].clientConnectionFailed(reactor.connectors[-1], Failure(ConnectionRefusedError()))
        client.stopService()
    finally:
        globalLogPublisher.removeObserver(observe)
    retries = [line for line in seen if line.startswith("Scheduling retry")]
    assert retries == ["Scheduling retry 1 to connect AMI at 127.0.0.1:5038 in 0.75 seconds."]


def test_missed_pong_leads_to_reconnect_and_second_resync() -> None:
    """A dead peer (no Pong) is aborted, ClientService reconnects and listeners resync again."""
    reactor = MemoryReactorClock()
    client = make_client(reactor, LogCapture(), ping_interval=20.0, ping_timeout=5.0)
    resyncs: list[int] = []
    client.on_resync(lambda channels, queue: resyncs.append(len(channels)))
    client.startService()
    first = FakeAsterisk(reactor)
    first.login()
    first.resync(channels=3)
    reactor.advance(20.0)
    (ping,) = first.written()
    assert ping["Action"] == "Ping"
    reactor.advance(5.0)
    assert first.transport.disconnecting
    first.lose()
    reactor.advance(0.75)
    second = FakeAsterisk(reactor)
    second.login()
    second.resync(channels=1)
    assert resyncs == [3, 1] and client.reconnects == 1
    client.stopService()
    second.lose(ConnectionDone())
    assert reactor.getDelayedCalls() == []


def test_client_fails_fast_when_not_connected_and_when_connected_waits() -> None:
    """send/originate fail fast with AmiNotConnected before login; when_connected() waits for it."""
    reactor = MemoryReactorClock()
    client = make_client(reactor, LogCapture())
    failure_of(client.send(actions.ping()), AmiNotConnected)
    client.startService()
    waiting = client.when_connected()
    failure_of(client.originate(actions.originate("Local/1@x", context="x", exten="1", priority=1)),
               AmiNotConnected)
    server = FakeAsterisk(reactor)
    server.login()
    no_result(waiting)
    server.resync()
    assert success(waiting) is client.protocol
    later = client.when_connected()
    client.stopService()
    server.lose(ConnectionDone())
    assert success(later) is not None
    failure_of(client.when_connected(), AmiNotConnected)
    assert reactor.getDelayedCalls() == []


def test_resync_failure_is_logged_and_session_still_used() -> None:
    """A resync action refused by Asterisk is logged; the session still becomes usable."""
    reactor = MemoryReactorClock()
    log = LogCapture()
    client = make_client(reactor, log)
    called: list[object] = []
    client.on_resync(lambda channels, queue: called.append(channels))
    client.startService()
    server = FakeAsterisk(reactor)
    server.login()
    for action in server.written():
        server.feed(frame(("Response", "Error"), ("ActionID", action["ActionID"]), ("Message", "Permission denied")))
    assert client.connected and called == [] and client.resync_failures == 1
    assert log.named("ami.resync_failed")
    client.stopService()
    server.lose(ConnectionDone())
    assert reactor.getDelayedCalls() == []


def test_resync_waits_for_fully_booted_when_asterisk_is_still_booting() -> None:
    """Reconnecting during an Asterisk boot: no resync (QueueStatus would not exist yet)
    until ``FullyBooted`` arrives; then the snapshot is taken and the session is ready."""
    reactor = MemoryReactorClock()
    client = AmiClient(TCP4ClientEndpoint(reactor, "127.0.0.1", 5038), CREDENTIALS, reactor,
                       retry_policy=lambda attempt: 1.0, ping_interval=None)
    called: list[int] = []
    client.on_resync(lambda channels, queues: called.append(len(channels)))
    client.startService()
    server = FakeAsterisk(reactor)
    server.login(booted=False)
    assert server.written() == [] and not client.connected
    reactor.advance(30)
    assert server.written() == [] and not client.connected
    server.fully_booted()
    server.resync(channels=2)
    assert client.connected and called == [2]
    client.stopService()


def test_resync_goes_ahead_when_fully_booted_never_comes() -> None:
    """An Asterisk that never says ``FullyBooted`` still gets resynced after ``boot_timeout``."""
    reactor = MemoryReactorClock()
    client = AmiClient(TCP4ClientEndpoint(reactor, "127.0.0.1", 5038), CREDENTIALS, reactor,
                       retry_policy=lambda attempt: 1.0, boot_timeout=5.0, ping_interval=None)
    client.startService()
    server = FakeAsterisk(reactor)
    server.login(booted=False)
    reactor.advance(5.0)
    server.resync()
    assert client.connected
    client.stopService()
