"""The engine's AMI client and FastAGI server against the real lab Asterisk 22.

The lab instance runs the project's own configuration (``render_project_config`` from
``config/`` and ``dialplans/``, lab contexts included) and the engine logs in as the
project's AMI user with the per-install secret, as in production. Twisted's global
reactor runs in a thread (``tests.reactorthread``); the objects the reactor owns (clients,
factories, the CallState) are touched only through ``reactor_thread.call``/``wait_for``;
plain lists and dicts filled by callbacks are read once the test has waited for them.

Run with ``-p tests.reactorthread`` (unless the conftest loads it); needs root (chroot
runtime) or ``CALLCENTER_LAB_RUNTIME=host``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import ILogObserver, Logger
from zope.interface import implementer

from callcenter.agi.codec import AgiHangupError, GetDataResult
from callcenter.agi.server import AgiSession, FastAgiFactory
from callcenter.ami import actions
from callcenter.ami.client import AmiClient, AmiCredentials, AmiLoginFailed, AmiResult
from callcenter.ami.codec import AmiActionError, Message
from callcenter.cli import lab_project_files
from callcenter.lab.instance import InstanceEndpoints, tcp_port_free
from callcenter.secrets import Secrets, load_or_create_secrets
from callcenter.settings import Settings, load_settings
from callcenter.state.calls import (
    CallAnswered,
    CallEnded,
    CallStarted,
    CallState,
    ChannelHungUp,
    Fact,
    OriginateResult,
)
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


# ------------------------------------------------------------------------ fixtures


@dataclass
class ProjectLab:
    """A lab Asterisk running the project's configuration, and what the engine needs."""

    handle: LabHandle
    settings: Settings
    secrets: Secrets
    agi_port: int

    @property
    def credentials(self) -> AmiCredentials:
        return AmiCredentials(self.settings.ami.username, self.secrets.ami_secret)


def _free_agi_port(endpoints: InstanceEndpoints) -> int:
    """A free loopback TCP port for the test's FastAGI server.

    Taken from 20000-29999 like the lab's own ports (outside the kernel's ephemeral
    range, so no outgoing connection can hold it between tests) and never one of the
    instance's ports.
    """
    low, high = (
        int(n)
        for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    )
    taken = {endpoints.ami_port, endpoints.sip_port, endpoints.http_port}
    taken.update(range(endpoints.rtp_start, endpoints.rtp_end + 1))
    rng = random.Random()
    for _ in range(2000):
        port = rng.randrange(20000, 30000)
        if port in taken or low <= port <= high:
            continue
        if tcp_port_free(port):
            return port
    raise RuntimeError("no free loopback port for the FastAGI server in 20000-29999")


@pytest.fixture(scope="module")
def project_lab(
    lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProjectLab]:
    """One lab instance with the project's manager/extensions/queues/pjsip files.

    Secrets are generated into a fresh state directory (a new install); the handle's
    AMI credentials are the project's ``callcenter`` user, not the lab's own user.
    """
    settings = load_settings(CONFIG_DIR)
    secrets = load_or_create_secrets(
        tmp_path_factory.mktemp("state"), [a.id for a in settings.agents]
    )
    chosen: dict[str, int] = {}

    def agi_port(ep: InstanceEndpoints) -> int:
        chosen["agi"] = _free_agi_port(ep)
        return chosen["agi"]

    project_files = lab_project_files(settings, agi_port, secrets=secrets, agi_host="127.0.0.1")

    handle = lab_factory.start(
        project_files=project_files,
        ami_credentials=(settings.ami.username, secrets.ami_secret),
    )
    try:
        yield ProjectLab(handle, settings, secrets, chosen["agi"])
    finally:
        lab_factory.stop(handle)


@implementer(ILogObserver)
@dataclass
class LogCapture:
    """A ``twisted.logger`` observer keeping every event (to assert on failures)."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def logger(self, namespace: str) -> Logger:
        return Logger(namespace=namespace, observer=self)

    def failures(self) -> list[str]:
        return [
            f"{e.get('log_format')}: {e['log_failure'].getTraceback()}"
            for e in self.events
            if "log_failure" in e
        ]

    def named(self, format_prefix: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if str(e.get("log_format", "")).startswith(format_prefix)
        ]


@implementer(IStreamClientEndpoint)
class CountingEndpoint:
    """Wraps an endpoint and counts connection attempts (to see the client retry)."""

    def __init__(self, wrapped: IStreamClientEndpoint) -> None:
        self.wrapped = wrapped
        self.attempts = 0

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        self.attempts += 1
        return self.wrapped.connect(protocolFactory)


@dataclass
class Engine:
    """A running AmiClient plus a CallState fed with every event it delivers."""

    client: AmiClient
    state: CallState
    facts: list[Fact]
    events: list[Message]
    resyncs: list[tuple[list[Message], list[Message]]]
    log: LogCapture


def _start_client(
    rt: ReactorThread,
    lab: ProjectLab,
    *,
    credentials: AmiCredentials | None = None,
    endpoint: IStreamClientEndpoint | None = None,
    retry_delay: float = 0.25,
) -> Engine:
    """Build and start an AmiClient wired to a CallState the way the engine wires them."""
    log = LogCapture()
    state = CallState()
    facts: list[Fact] = []
    events: list[Message] = []
    resyncs: list[tuple[list[Message], list[Message]]] = []

    def build() -> Engine:
        ep = endpoint or TCP4ClientEndpoint(
            rt.reactor, lab.handle.ami_host, lab.handle.ami_port, timeout=5
        )
        client = AmiClient(
            ep,
            credentials or lab.credentials,
            rt.clock,
            retry_policy=lambda attempt: retry_delay,
            ping_interval=5.0,
            ping_timeout=5.0,
            action_timeout=10.0,
            login_timeout=10.0,
            log=log.logger("test.ami"),
        )

        def on_event(message: Message) -> None:
            events.append(message)
            facts.extend(state.handle(message, rt.reactor.seconds()))

        def on_resync(channels: list[Message], queue_status: list[Message]) -> None:
            resyncs.append((channels, queue_status))
            state.begin_resync()
            facts.extend(state.resync(channels, rt.reactor.seconds()))

        client.subscribe(on_event)
        client.on_resync(on_resync)
        client.startService()
        return Engine(client, state, facts, events, resyncs, log)

    engine: Engine = rt.call(build)
    return engine


def _stop_client(rt: ReactorThread, engine: Engine) -> None:
    if engine.client.running:
        rt.call(engine.client.stopService, timeout=10)


@pytest.fixture
def engine(reactor_thread: ReactorThread, project_lab: ProjectLab) -> Iterator[Engine]:
    """A connected AmiClient (project credentials), stopped after the test."""
    started = _start_client(reactor_thread, project_lab)
    try:
        reactor_thread.call(started.client.when_connected, timeout=20)
        yield started
    finally:
        _stop_client(reactor_thread, started)


def _facts_of(engine: Engine, kind: type[Fact]) -> list[Any]:
    return [f for f in engine.facts if isinstance(f, kind)]


# --------------------------------------------------------------------------- tests


def test_project_ami_user_logs_in_and_sees_asterisk_22(
    reactor_thread: ReactorThread, project_lab: ProjectLab, engine: Engine
) -> None:
    """The rendered manager.conf admits the project's AMI user with the per-install
    secret; AmiClient logs in, resyncs once, and CoreSettings reports Asterisk 22."""
    rt = reactor_thread
    assert (
        project_lab.handle.ami_username
        == project_lab.settings.ami.username
        == "callcenter"
    )
    manager_conf = project_lab.handle.files["manager.conf"]
    assert f"[{project_lab.settings.ami.username}]" in manager_conf
    assert f"secret = {project_lab.secrets.ami_secret}" in manager_conf

    result: AmiResult = rt.call(engine.client.send, actions.core_settings())
    assert result.ok
    assert (result.response.get("AsteriskVersion") or "").startswith("22."), (
        result.response.text
    )
    greeting = rt.call(
        lambda: engine.client.protocol and engine.client.protocol.greeting
    )
    assert greeting is not None and greeting.startswith("Asterisk Call Manager/")
    assert rt.call(
        lambda: (
            engine.client.connected,
            engine.client.connections_made,
            engine.client.resyncs,
        )
    ) == (
        True,
        1,
        1,
    )
    # The resync listener got the (empty) channel list and the project's queues.
    assert len(engine.resyncs) == 1
    queue_names = {
        m.get("Queue") for m in engine.resyncs[0][1] if m.name == "QueueParams"
    }
    assert {q.name for q in project_lab.settings.queues} <= queue_names


def test_wrong_secret_is_refused_and_retried(
    reactor_thread: ReactorThread, project_lab: ProjectLab
) -> None:
    """A wrong AMI secret is refused by Asterisk: AmiClient never reports a session,
    counts each refusal as a failed attempt and keeps retrying (when_connected with
    fail_after_failures fails with AmiLoginFailed), and the secret is never shown."""
    rt = reactor_thread
    wrong = project_lab.secrets.ami_secret + "-wrong"
    counting = rt.call(
        lambda: CountingEndpoint(
            TCP4ClientEndpoint(
                rt.reactor,
                project_lab.handle.ami_host,
                project_lab.handle.ami_port,
                timeout=5,
            )
        )
    )
    engine = _start_client(
        rt,
        project_lab,
        credentials=AmiCredentials(project_lab.settings.ami.username, wrong),
        endpoint=counting,
        retry_delay=0.1,
    )
    try:
        with pytest.raises(AmiLoginFailed) as refused:
            # Asterisk sleeps 1 s before answering a failed Login.
            rt.call(engine.client.when_connected, fail_after_failures=2, timeout=20)
        assert "refused by Asterisk" in str(refused.value)
        assert wrong not in str(refused.value)
        assert rt.call(lambda: counting.attempts) >= 2
        assert rt.call(
            lambda: (
                engine.client.connected,
                engine.client.connections_made,
                engine.client.resyncs,
            )
        ) == (
            False,
            0,
            0,
        )
        assert engine.resyncs == [] and engine.events == []
        logged = " ".join(repr(e) for e in engine.log.events)
        assert wrong not in logged
    finally:
        _stop_client(rt, engine)


def test_originate_with_action_id_reports_call_facts(
    reactor_thread: ReactorThread, engine: Engine
) -> None:
    """client.originate with an explicit ActionID fires with that Originate's own
    OriginateResponse (Success, same ActionID), and the CallState fed from the event
    stream sees the Local call start, get answered and end."""
    rt = reactor_thread
    action_id = f"lab-orig-{uuid.uuid4().hex[:8]}"
    originate = actions.originate(
        "Local/park@lab-test",
        application="Wait",
        data="1",
        variables={"LAB_SECONDS": 1},
        timeout_ms=10000,
    )
    response: Message = rt.call(
        engine.client.originate, originate, action_id=action_id, timeout=30
    )
    assert response.name == "OriginateResponse"
    assert response["ActionID"] == action_id
    assert response["Response"] == "Success"
    assert response["Reason"] == "4"  # answered
    channel = response["Channel"]
    assert channel.startswith("Local/park@lab-test-") and channel.endswith(";1")
    uniqueid = response["Uniqueid"]

    started = rt.wait_for(
        lambda: [
            f
            for f in _facts_of(engine, CallStarted)
            if f.uniqueid == uniqueid or f.channel == channel
        ],
        timeout=5,
        message=lambda: f"no CallStarted for {channel}: {engine.facts}",
    )
    linkedid = started[0].linkedid
    ended = rt.wait_for(
        lambda: [f for f in _facts_of(engine, CallEnded) if f.linkedid == linkedid],
        timeout=15,
        message=lambda: f"no CallEnded for {linkedid}: {engine.facts}",
    )[0]

    answered = [f for f in _facts_of(engine, CallAnswered) if f.linkedid == linkedid]
    assert len(answered) == 1
    results = [
        f for f in _facts_of(engine, OriginateResult) if f.action_id == action_id
    ]
    assert len(results) == 1 and results[0].success and results[0].linkedid == linkedid
    assert ended.answered and not ended.disconnected
    assert ended.call.originate_action_id == action_id
    assert uniqueid in ended.call.channels
    assert ended.duration >= 1.0 and ended.ring_time <= ended.duration
    assert rt.call(lambda: engine.state.call(linkedid, rt.reactor.seconds())) is None


def test_fastagi_handler_reads_dtmf_and_sees_the_hangup(
    reactor_thread: ReactorThread, project_lab: ProjectLab, engine: Engine
) -> None:
    """A FastAGI handler answers, reads the DTMF the far end of a Local channel sends
    (GET DATA returns "42"), then sees the far end hang up as AgiHangupError with the
    session marked hung up, and the connection is closed without handler errors."""
    rt = reactor_thread
    log = LogCapture()
    seen: dict[str, Any] = {}
    got_digits: Deferred[str] | None = None
    finished: Deferred[None] | None = None

    async def read_dtmf(agi: AgiSession) -> None:
        seen["channel"] = agi.env.channel
        seen["script"] = agi.env.script
        try:
            await agi.answer()
            result = await agi.get_data("beep", 5000, 2)
            seen["result"] = result
            assert got_digits is not None
            got_digits.callback(agi.env.channel)
            # Stay on the line until the far end hangs up.
            for _ in range(30):
                await agi.exec("Wait", "1")
            seen["outcome"] = "no hangup seen"
        except AgiHangupError as exc:
            # The command running at the hangup fails (result=-1, 511 or HANGUP) ...
            seen["outcome"] = exc
            try:
                # ... and so does any later one (HANGUP, 511 or the lost connection),
                # which marks the session hung up and closed.
                await agi.stream_file("beep")
                seen["after"] = "STREAM FILE ran on a dead channel"
            except AgiHangupError as again:
                seen["after"] = again
        finally:
            assert got_digits is not None
            if not got_digits.called:
                got_digits.errback(
                    AssertionError(f"handler ended before reading digits: {seen}")
                )
            seen["hung_up"] = agi.hung_up
            seen["closed"] = agi.closed
            assert finished is not None
            rt.reactor.callLater(0, finished.callback, None)

    def listen() -> tuple[Any, FastAgiFactory]:
        nonlocal got_digits, finished
        got_digits, finished = Deferred(), Deferred()
        factory = FastAgiFactory(
            {"read-dtmf": read_dtmf},
            rt.clock,
            command_timeout=10,
            log=log.logger("test.agi"),
        )
        port = rt.reactor.listenTCP(
            project_lab.agi_port, factory, interface="127.0.0.1"
        )
        return port, factory

    port, factory = rt.call(listen)
    try:
        originate = actions.originate(
            "Local/dtmf-42@lab-test",
            context="lab-test",
            exten="agi",
            priority=1,
            variables={"AGI_SCRIPT": "read-dtmf"},
            timeout_ms=10000,
        )
        response: Message = rt.call(engine.client.originate, originate, timeout=30)
        assert response["Response"] == "Success"

        assert got_digits is not None and finished is not None
        agi_channel: str = rt.call(lambda: got_digits, timeout=15)
        assert seen["script"] == "read-dtmf"
        assert seen["result"] == GetDataResult(digits="42", timed_out=False)
        assert agi_channel.startswith(
            "Local/dtmf-42@lab-test-"
        ) and agi_channel.endswith(";1")

        # The far end (the ;2 half running the DTMF sender) hangs up.
        far_end = agi_channel[: -len(";1")] + ";2"
        hangup: AmiResult = rt.call(engine.client.send, actions.hangup(far_end))
        assert hangup.ok

        rt.call(lambda: finished, timeout=15)
        assert isinstance(seen["outcome"], AgiHangupError), seen["outcome"]
        assert isinstance(seen["after"], AgiHangupError), seen["after"]
        assert seen["hung_up"] and seen["closed"]
        # The server closes the connection once the handler returns.
        rt.wait_for(
            lambda: not factory.connections,
            timeout=5,
            message="FastAGI connection still open",
        )
        rt.wait_for(
            lambda: any(
                f.channel == agi_channel for f in _facts_of(engine, ChannelHungUp)
            ),
            timeout=5,
            message=lambda: f"no Hangup of {agi_channel}: {engine.facts}",
        )
        assert log.failures() == []
        assert not log.named("FastAGI protocol error") and not log.named(
            "FastAGI: no handler"
        )
    finally:
        rt.call(port.stopListening)


def test_header_injection_is_refused_and_the_session_stays_usable(
    reactor_thread: ReactorThread, engine: Engine
) -> None:
    """A caller id (or ActionID) carrying CR/LF plus a second action raises
    AmiActionError before a byte is written; the live session is untouched and the
    next action works."""
    rt = reactor_thread
    evil = "Evil\r\nAction: Hangup"
    sent_before = rt.call(lambda: engine.client.counters.actions_sent)

    with pytest.raises(AmiActionError):
        actions.originate(
            "Local/park@lab-test", application="Wait", data="1", caller_id=evil
        )

    def send_with_evil_action_id() -> Deferred[AmiResult]:
        return engine.client.send(
            actions.ping(), action_id="id\r\nAction: Hangup\r\nChannel: /.*/"
        )

    with pytest.raises(AmiActionError):
        rt.call(send_with_evil_action_id)

    def originate_with_evil_caller_id() -> Deferred[Message]:
        ok = actions.originate("Local/park@lab-test", application="Wait", data="1")
        return engine.client.originate(ok.replace_header("CallerID", evil))

    with pytest.raises(AmiActionError):
        rt.call(originate_with_evil_caller_id)

    assert rt.call(lambda: engine.client.counters.actions_sent) == sent_before
    assert rt.call(lambda: engine.client.connected)
    pong: AmiResult = rt.call(engine.client.send, actions.ping())
    assert pong.ok and pong.response.get("Ping") == "Pong"
    assert rt.call(lambda: engine.client.connections_made) == 1


@dataclass
class Crash:
    """What a test saw around a SIGKILL and restart of Asterisk during a long call."""

    linkedid: str
    old_channels: set[str]
    made_before: int
    reconnects_before: int
    resyncs_before: int
    listener_calls_before: int
    facts_at_loss: int


def _crash_and_restart_during_a_call(
    rt: ReactorThread, lab: ProjectLab, engine: Engine
) -> Crash:
    """Start a 60 s Local call, SIGKILL Asterisk, restart it on the same ports, and
    wait until the same client has a new session."""
    client = engine.client
    made_before, resyncs_before, reconnects_before = rt.call(
        lambda: (client.connections_made, client.resyncs, client.reconnects)
    )
    listener_calls_before = rt.call(lambda: len(engine.resyncs))

    long_call = actions.originate(
        "Local/park@lab-test",
        application="Wait",
        data="60",
        variables={"LAB_SECONDS": 60},
        timeout_ms=10000,
    )
    action_id = f"lab-long-{uuid.uuid4().hex[:8]}"
    response: Message = rt.call(
        client.originate, long_call, action_id=action_id, timeout=30
    )
    assert response["Response"] == "Success"
    uniqueid = response["Uniqueid"]
    linkedid: str = rt.wait_for(
        lambda: next(
            (
                f.linkedid
                for f in _facts_of(engine, CallStarted)
                if f.uniqueid == uniqueid
            ),
            "",
        ),
        timeout=5,
        message=lambda: f"no CallStarted for {uniqueid}: {engine.facts}",
    )
    listed: AmiResult = rt.call(client.send, actions.core_show_channels())
    old_channels = {m["Uniqueid"] for m in listed.events}
    assert uniqueid in old_channels and len(old_channels) >= 2  # both Local halves

    lab.handle.instance.kill()
    rt.wait_for(
        lambda: not client.connected,
        timeout=10,
        message="client still connected after SIGKILL",
    )
    facts_at_loss = rt.call(lambda: len(engine.facts))

    lab.handle.instance.restart()
    rt.wait_for(
        lambda: client.connected and client.connections_made == made_before + 1,
        timeout=20,
        message=lambda: (
            f"connected={client.connected} connections_made={client.connections_made} "
            f"resyncs={client.resyncs} resync_failures={client.resync_failures}"
        ),
    )
    return Crash(
        linkedid,
        old_channels,
        made_before,
        reconnects_before,
        resyncs_before,
        listener_calls_before,
        facts_at_loss,
    )


def test_client_reconnects_after_asterisk_is_killed(
    reactor_thread: ReactorThread, project_lab: ProjectLab, engine: Engine
) -> None:
    """SIGKILL of Asterisk: the same AmiClient object (not a new one) notices the loss,
    reconnects once Asterisk is back on the same port, and new actions work on it."""
    rt = reactor_thread
    client = engine.client
    crash = _crash_and_restart_during_a_call(rt, project_lab, engine)
    assert engine.client is client
    assert rt.call(lambda: client.reconnects) == crash.reconnects_before + 1
    connected_at, lost_at = rt.call(
        lambda: (client.last_connected, client.last_disconnected)
    )
    assert connected_at is not None and lost_at is not None and connected_at >= lost_at
    pong: AmiResult = rt.call(client.send, actions.ping())
    assert pong.ok
    settings: AmiResult = rt.call(client.send, actions.core_settings())
    assert settings.ok and (settings.response.get("AsteriskVersion") or "").startswith(
        "22."
    )


def test_reconnect_resyncs_the_call_state_after_asterisk_is_killed(
    reactor_thread: ReactorThread, project_lab: ProjectLab, engine: Engine
) -> None:
    """After a crash and restart the reconnected client resyncs: on_resync listeners get
    the new CoreShowChannels list (without the old call's channels), and the CallState
    fed by begin_resync()/resync() ends the vanished call with disconnected facts."""
    rt = reactor_thread
    client = engine.client
    crash = _crash_and_restart_during_a_call(rt, project_lab, engine)

    assert rt.call(lambda: (client.resyncs, client.resync_failures)) == (
        crash.resyncs_before + 1,
        0,
    ), [
        (e.get("log_format"), e.get("error"))
        for e in engine.log.named("ami.resync_failed")
    ]
    assert rt.call(lambda: len(engine.resyncs)) == crash.listener_calls_before + 1
    channels_after, _queues_after = engine.resyncs[-1]
    assert not crash.old_channels & {m.get("Uniqueid") for m in channels_after}

    new_facts = rt.call(lambda: list(engine.facts[crash.facts_at_loss :]))
    gone = [
        f
        for f in new_facts
        if isinstance(f, ChannelHungUp) and f.linkedid == crash.linkedid
    ]
    assert gone and all(f.disconnected for f in gone)
    assert {f.uniqueid for f in gone} == crash.old_channels
    ended = [
        f
        for f in new_facts
        if isinstance(f, CallEnded) and f.linkedid == crash.linkedid
    ]
    assert len(ended) == 1 and ended[0].disconnected and ended[0].answered
    assert (
        rt.call(lambda: engine.state.call(crash.linkedid, rt.reactor.seconds())) is None
    )
