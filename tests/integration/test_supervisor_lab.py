"""Supervisor listen/whisper/barge against the real lab Asterisk 22.

The lab instance runs the project's configuration (``render_project_config``, lab
contexts included). An "agent" is a Local channel ``Local/2101@lab-agents/n`` whose
``;2`` half runs the lab-agents dialplan (talking for ``LAB_TALK`` seconds) and whose
``;1`` half waits; the AmiClient's events feed a CallState, and the SupervisorService
spies on that agent with the supervisor's leg overridden to ``Local/park@lab-test``
(a party that answers), so no SIP phone is needed. Asterisk's own ``ChanSpyStart``,
``Newexten`` and ``Hangup`` events show what ChanSpy did.

Twisted's reactor runs in a thread (``tests.reactorthread``); objects it owns are
touched only through ``reactor_thread.call``/``wait_for``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from twisted.internet.endpoints import TCP4ClientEndpoint

from callcenter.ami import actions
from callcenter.ami.client import AmiClient, AmiCredentials, AmiResult
from callcenter.ami.codec import Message
from callcenter.cli import lab_project_files
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import Settings, load_settings
from callcenter.state.calls import CallState
from callcenter.supervisor import (
    CHANSPY_OPTIONS,
    NotPermitted,
    SpyMode,
    SpySession,
    SupervisorService,
)
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SUPERVISOR_LEG = "Local/park@lab-test"


@dataclass
class Wired:
    """A running AmiClient, the CallState it feeds, every event, and the service."""

    client: AmiClient
    calls: CallState
    events: list[Message]
    service: SupervisorService
    settings: Settings


@pytest.fixture(scope="module")
def supervisor_lab(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, Settings, AmiCredentials]]:
    """One lab instance with the project's files and a fresh install's secrets."""
    settings = load_settings(CONFIG_DIR)
    secrets = load_or_create_secrets(tmp_path_factory.mktemp("state"), [a.id for a in settings.agents])

    project_files = lab_project_files(settings, 4573, secrets=secrets, agi_host="127.0.0.1")

    handle = lab_factory.start(project_files=project_files, ami_credentials=(settings.ami.username, secrets.ami_secret))
    try:
        yield handle, settings, AmiCredentials(settings.ami.username, secrets.ami_secret)
    finally:
        lab_factory.stop(handle)


@pytest.fixture
def wired(reactor_thread: ReactorThread, supervisor_lab: tuple[LabHandle, Settings, AmiCredentials]) -> Iterator[Wired]:
    """AmiClient (project credentials) -> CallState, and a SupervisorService on both."""
    rt = reactor_thread
    handle, settings, credentials = supervisor_lab

    def build() -> Wired:
        endpoint = TCP4ClientEndpoint(rt.reactor, handle.ami_host, handle.ami_port, timeout=5)
        client = AmiClient(endpoint, credentials, rt.clock, retry_policy=lambda attempt: 0.25, ping_interval=None,
                           action_timeout=10.0, login_timeout=10.0)
        calls = CallState()
        events: list[Message] = []

        def on_event(message: Message) -> None:
            events.append(message)
            calls.handle(message, rt.reactor.seconds())

        def on_resync(channels: list[Message], _queues: list[Message]) -> None:
            calls.begin_resync()
            calls.resync(channels, rt.reactor.seconds())

        client.subscribe(on_event)
        client.on_resync(on_resync)
        client.startService()
        service = SupervisorService(settings, client, calls, rt.clock, supervisor_channel=SUPERVISOR_LEG,
                                    ring_timeout=10.0)
        return Wired(client, calls, events, service, settings)

    w: Wired = rt.call(build)
    try:
        rt.call(w.client.when_connected, timeout=20)
        yield w
    finally:
        rt.call(w.client.stopService, timeout=10)


def _agent_call(rt: ReactorThread, w: Wired, agent_id: str, seconds: int) -> tuple[str, str]:
    """Put a Local-channel agent on a call; return the (;1, ;2) channel names."""
    originate = actions.originate(
        f"Local/{agent_id}@lab-agents/n", application="Wait", data=str(seconds),
        variables={"LAB_TALK": seconds}, timeout_ms=10000,
    )
    response: Message = rt.call(w.client.originate, originate, timeout=30)
    assert response["Response"] == "Success", response.text
    half1 = response["Channel"]
    assert half1.startswith(f"Local/{agent_id}@lab-agents-") and half1.endswith(";1")
    half2 = half1[:-2] + ";2"
    rt.wait_for(lambda: {half1, half2} <= {c.name for c in w.calls.channels.values()}, timeout=5,
                message=lambda: f"CallState lacks {half1}/{half2}: {[c.name for c in w.calls.channels.values()]}")
    return half1, half2


def _events(w: Wired, name: str, **match: str) -> list[Message]:
    """Events named ``name`` whose headers match ``match`` (run in the reactor thread)."""
    return [e for e in w.events if e.name == name and all(e.get(k) == v for k, v in match.items())]


def test_listen_whisper_barge_spy_on_the_agents_channel(
    reactor_thread: ReactorThread, wired: Wired
) -> None:
    """Each mode originates the supervisor's leg into ChanSpy with that mode's options
    (``core show channel`` of the leg shows them running), Asterisk reports ChanSpyStart with the agent's channel as
    SpyeeChannel; and with ``E`` the supervisor's leg ends when the agent hangs up."""
    rt, w = reactor_thread, wired
    half1, _half2 = _agent_call(rt, w, "2101", 30)
    sessions: list[SpySession] = []
    for mode in SpyMode:
        session: SpySession = rt.call(w.service.spy, "8001", "2101", mode, timeout=30)
        sessions.append(session)
        assert (session.supervisor_id, session.agent_id, session.mode) == ("8001", "2101", mode)
        assert session.spied_channel == half1
        spyer = session.supervisor_channel
        assert spyer.startswith(SUPERVISOR_LEG + "-") and spyer.endswith(";1")
        started = rt.wait_for(partial(_events, w, "ChanSpyStart", SpyerChannel=spyer), timeout=10,
                              message=f"no ChanSpyStart by {spyer}")
        assert started[0]["SpyeeChannel"] == half1
        assert started[0]["SpyeeUniqueid"] == session.spied_uniqueid
        # What Asterisk runs on the supervisor's leg: ChanSpy with this mode's options.
        shown: AmiResult = rt.call(w.client.send, actions.command(f"core show channel {spyer}"))
        lines = [line.strip() for line in shown.response.get_all("Output")]
        assert "Application: ChanSpy" in lines, lines
        assert f"Data: {half1},{CHANSPY_OPTIONS[mode]}" in lines, lines
        if mode is not SpyMode.BARGE:
            # Leave this mode: hang the supervisor's leg up; ChanSpy stops.
            assert rt.call(w.client.send, actions.hangup(spyer)).ok
            rt.wait_for(partial(_events, w, "ChanSpyStop", SpyerChannel=spyer), timeout=10,
                        message=f"no ChanSpyStop by {spyer}")

    # The agent's call ends: the barging supervisor's leg hangs up by itself (option E).
    barge = sessions[-1].supervisor_channel
    hangup: AmiResult = rt.call(w.client.send, actions.hangup(half1))
    assert hangup.ok
    rt.wait_for(lambda: _events(w, "ChanSpyStop", SpyerChannel=barge), timeout=10,
                message=lambda: f"no ChanSpyStop by {barge} after the agent hung up")
    rt.wait_for(lambda: _events(w, "Hangup", Channel=barge), timeout=10,
                message=lambda: f"{barge} still up after the spied agent hung up")


def test_non_supervisor_is_refused_before_any_action(
    reactor_thread: ReactorThread, wired: Wired
) -> None:
    """A plain agent (2102) and a lead of another team (8002) asking to spy on a live
    team1 agent are refused with NotPermitted, and no AMI action leaves the client."""
    rt, w = reactor_thread, wired
    _agent_call(rt, w, "2101", 10)
    sent_before = rt.call(lambda: w.client.counters.actions_sent)
    for supervisor in ("2102", "8002"):
        with pytest.raises(NotPermitted) as refused:
            rt.call(w.service.spy, supervisor, "2101", "listen", timeout=10)
        assert f"supervisor {supervisor}" in str(refused.value) and "agent 2101" in str(refused.value)
    assert rt.call(lambda: w.client.counters.actions_sent) == sent_before
    assert not rt.call(partial(_events, w, "ChanSpyStart"))
