"""Agent login/pause/logout against the real lab Asterisk 22, tracked by AgentBoard.

The lab instance runs the project's configuration (``render_project_config`` from
``config/`` and ``dialplans/``, lab contexts included). AgentService sends the actions
with the lab member interfaces (``Local/<ID>@lab-agents/n``, ``Custom:agent<ID>``); an
AgentBoard fed every AMI event (and the resync snapshot) must follow what Asterisk
reports. Objects the reactor owns are touched only through ``reactor_thread``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from twisted.internet.endpoints import TCP4ClientEndpoint

from callcenter.agents import LAB_INTERFACES, AgentService
from callcenter.ami import actions
from callcenter.ami.client import AmiClient, AmiCredentials, AmiResult
from callcenter.ami.codec import Message
from callcenter.cli import lab_project_files
from callcenter.lab.instance import InstanceEndpoints, tcp_port_free
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import Settings, load_settings
from callcenter.state.agents import (
    AgentAnomaly,
    AgentBoard,
    AgentFact,
    AgentState,
    AgentStateChanged,
)
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
AGENT = "2101"  # outbound (penalty 0) and hotline (penalty 5)


@dataclass
class AgentLab:
    handle: LabHandle
    settings: Settings
    credentials: AmiCredentials


def _closed_port(ep: InstanceEndpoints) -> int:
    """A free loopback port (nothing listens: the hotline's AGI() fails fast)."""
    taken = {ep.ami_port, ep.sip_port, ep.http_port, *range(ep.rtp_start, ep.rtp_end + 1)}
    for port in range(39000, 40000):
        if port not in taken and tcp_port_free(port):
            return port
    raise RuntimeError("no free loopback port in 39000-39999")


@pytest.fixture(scope="module")
def agent_lab(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentLab]:
    """One lab instance with the project's files and a fresh per-install secret."""
    settings = load_settings(CONFIG_DIR)
    secrets = load_or_create_secrets(tmp_path_factory.mktemp("state"), [a.id for a in settings.agents])

    # AGI on a closed port: AGI() fails at once; the call still queues
    project_files = lab_project_files(settings, _closed_port, secrets=secrets, agi_host="127.0.0.1")

    handle = lab_factory.start(project_files=project_files, ami_credentials=(settings.ami.username, secrets.ami_secret))
    try:
        yield AgentLab(handle, settings, AmiCredentials(settings.ami.username, secrets.ami_secret))
    finally:
        lab_factory.stop(handle)


@dataclass
class Wired:
    client: AmiClient
    board: AgentBoard
    service: AgentService
    facts: list[AgentFact]


@pytest.fixture
def wired(reactor_thread: ReactorThread, agent_lab: AgentLab) -> Iterator[Wired]:
    """AmiClient -> AgentBoard (events and resync), and an AgentService on the lab interfaces."""
    rt = reactor_thread

    def build() -> Wired:
        endpoint = TCP4ClientEndpoint(rt.reactor, agent_lab.handle.ami_host, agent_lab.handle.ami_port, timeout=5)
        client = AmiClient(endpoint, agent_lab.credentials, rt.clock, retry_policy=lambda attempt: 0.25, action_timeout=10.0)
        wrapup = {q.name: q.wrapup_time for q in agent_lab.settings.queues}
        board = AgentBoard(wrapup)
        facts: list[AgentFact] = []

        def on_event(message: Message) -> None:
            facts.extend(board.handle(message, rt.reactor.seconds()))

        def on_resync(channels: list[Message], queue_status: list[Message]) -> None:
            facts.extend(board.resync(queue_status, rt.reactor.seconds()))

        client.subscribe(on_event)
        client.on_resync(on_resync)
        client.startService()
        service = AgentService(agent_lab.settings, client, board, rt.clock, interfaces=LAB_INTERFACES)
        return Wired(client, board, service, facts)

    built: Wired = rt.call(build)
    try:
        rt.call(built.client.when_connected, timeout=20)
        yield built
    finally:
        rt.call(built.client.stopService, timeout=10)


def _member_items(rt: ReactorThread, wired: Wired, interface: str) -> list[Message]:
    result: AmiResult = rt.call(wired.client.send, actions.queue_status())
    return [m for m in result.events if m.name == "QueueMember" and m.get("Location") == interface]


def test_login_pause_unpause_logout_is_followed_by_the_board(reactor_thread: ReactorThread, wired: Wired) -> None:
    """Agent 2101 logged in with the lab interface joins both its queues (QueueStatus
    lists the member with its penalties); the board, fed only Asterisk's events, goes
    logged_out -> ready -> paused (reason kept) -> ready -> logged_out, with no anomaly."""
    rt = reactor_thread
    interface = LAB_INTERFACES.interface(AGENT)
    assert rt.call(wired.board.state_of, AGENT) is AgentState.LOGGED_OUT

    results = rt.call(wired.service.login, AGENT)
    assert [r.response.name for r in results] == ["Success", "Success"]
    rt.wait_for(lambda: wired.board.state_of(AGENT) is AgentState.READY, message="board never saw the login")
    rt.wait_for(lambda: len(wired.board.agent(AGENT).queues) == 2)  # type: ignore[union-attr]
    members = _member_items(rt, wired, interface)
    assert {(m.get("Queue"), m.get("Penalty"), m.get("StateInterface"), m.get("Name")) for m in members} == {
        ("outbound", "0", "Custom:agent2101", "Agent 2101"),
        ("hotline", "5", "Custom:agent2101", "Agent 2101"),
    }

    rt.call(wired.service.pause, AGENT, "lunch")
    rt.wait_for(lambda: wired.board.state_of(AGENT) is AgentState.PAUSED, message="board never saw the pause")
    agent = rt.call(wired.board.agent, AGENT)
    assert agent.pause_reason == "lunch" and set(agent.paused_queues) == {"outbound", "hotline"}
    assert {(m.get("Paused"), m.get("PausedReason")) for m in _member_items(rt, wired, interface)} == {("1", "lunch")}

    rt.call(wired.service.unpause, AGENT)
    rt.wait_for(lambda: wired.board.state_of(AGENT) is AgentState.READY, message="board never saw the unpause")
    agent = rt.call(wired.board.agent, AGENT)
    assert (agent.pause_reason, agent.last_pause_reason) == (None, "lunch")

    rt.call(wired.service.logout, AGENT)
    rt.wait_for(lambda: wired.board.state_of(AGENT) is AgentState.LOGGED_OUT, message="board never saw the logout")
    assert _member_items(rt, wired, interface) == []

    facts = rt.call(lambda: list(wired.facts))
    assert [f for f in facts if isinstance(f, AgentAnomaly)] == []
    moves = [(f.old.value, f.new.value) for f in facts if isinstance(f, AgentStateChanged) and f.agent == AGENT]
    assert moves == [
        ("logged_out", "ready"),
        ("ready", "paused"),
        ("paused", "ready"),
        ("ready", "logged_out"),
    ]


def test_resync_snapshot_rebuilds_a_paused_agent(reactor_thread: ReactorThread, wired: Wired) -> None:
    """A board that saw none of the events (as after a reconnection) rebuilds agent 2102,
    logged in and paused, from a QueueStatus snapshot alone: paused in both queues,
    with the reason Asterisk reports."""
    rt = reactor_thread
    rt.call(wired.service.login, "2102")
    rt.call(wired.service.pause, "2102", "meeting")
    rt.wait_for(lambda: wired.board.state_of("2102") is AgentState.PAUSED)
    try:
        fresh = AgentBoard()
        snapshot: AmiResult = rt.call(wired.client.send, actions.queue_status())
        facts = fresh.resync(snapshot.events, 0.0)
        agent = fresh.agent("2102")
        assert agent is not None
        assert (agent.state, agent.pause_reason, agent.queues) == (AgentState.PAUSED, "meeting", ("hotline", "outbound"))
        assert [(f.old, f.new) for f in facts if isinstance(f, AgentStateChanged) and f.agent == "2102"] == [
            (AgentState.LOGGED_OUT, AgentState.PAUSED)
        ]
    finally:
        rt.call(wired.service.logout, "2102")
        rt.wait_for(lambda: wired.board.state_of("2102") is AgentState.LOGGED_OUT)


def test_queue_call_rings_connects_and_wraps_up(reactor_thread: ReactorThread, wired: Wired) -> None:
    """A real hotline call (Local/400@from-pstn) queued to agent 1001 (lab member): the
    board goes ready -> ringing -> on_call -> wrap_up and, once the hotline's wrap-up
    seconds pass (tick), ready again; it knows the call's linked id while on it and
    counts the call handled."""
    rt = reactor_thread
    board = wired.board
    wrapup = rt.call(lambda: wired.service.settings.queue("hotline").wrapup_time)
    rt.call(wired.service.login, "1001")
    rt.wait_for(lambda: board.state_of("1001") is AgentState.READY)
    try:
        call = actions.originate(
            "Local/400@from-pstn", context="lab-caller", exten="s", priority=1,
            caller_id="Lab <13900000001>", variables={"LAB_SECONDS": "30"},
        )
        rt.call(wired.client.originate, call, timeout=30)
        on_call = rt.wait_for(
            lambda: (a := board.agent("1001")) is not None and a.state is AgentState.ON_CALL and a,
            timeout=30, message=lambda: repr(board.agent("1001")),
        )
        assert on_call.call_linkedid and on_call.call_queue == "hotline"
        # The agent's channel may hang up before app_queue's AgentComplete arrives (Asterisk
        # does not order the two): the board is in wrap-up from the hangup and counts the
        # call when AgentComplete comes
        wrapping = rt.wait_for(
            lambda: (a := board.agent("1001")) is not None and a.state is AgentState.WRAP_UP
            and a.calls_handled == 1 and a,
            timeout=20, message=lambda: repr(board.agent("1001")),
        )
        assert wrapping.wrapup_until == pytest.approx(wrapping.since + wrapup)
        def ticked_ready() -> bool:
            # What the engine's timer does at board.next_deadline().
            wired.facts.extend(board.tick(rt.reactor.seconds()))
            return board.state_of("1001") is AgentState.READY

        rt.wait_for(ticked_ready, timeout=wrapup + 5)
        moves = rt.call(lambda: [(f.old.value, f.new.value) for f in wired.facts if isinstance(f, AgentStateChanged)])
        assert moves == [
            ("logged_out", "ready"), ("ready", "ringing"), ("ringing", "on_call"), ("on_call", "wrap_up"), ("wrap_up", "ready"),
        ]
    finally:
        rt.call(wired.service.logout, "1001")
