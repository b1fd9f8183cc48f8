"""Hotline overflow on the real Asterisk: the hotline agent first, overflow agents after a wait.

The reference site's 400 number is normally answered by one hotline agent and overflows
to designated outbound agents when that agent is busy. ``config/queues.yaml`` sets
``overflow_after`` on the hotline queue; agents.yaml gives the hotline agent penalty 0 and
the overflow agents penalty 5. The generated ``queuerules.conf`` lifts the caller's
penalty limit after ``overflow_after`` seconds. These tests use the project's rendered
configuration with ``overflow_after`` shortened to 4 s; agents are Local channels
(``Local/<ID>@lab-agents/n`` with ``Custom:agent<ID>`` device state), and no engine is
listening, so AGI fails and the dialplan queues the call on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.cli import lab_project_files
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import load_settings
from tests.integration.test_lab import Ami, get
from tests.labengine import hotline_queue
from tests.labfixture import LabFactory, LabHandle

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
OVERFLOW_AFTER = 4


@pytest.fixture(scope="module")
def overflow_lab(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    settings = hotline_queue(load_settings(ROOT / "config"), overflow_after=OVERFLOW_AFTER)
    secrets = load_or_create_secrets(tmp_path_factory.mktemp("state"), [a.id for a in settings.agents])

    project_files = lab_project_files(settings, 1, secrets=secrets, agi_host="127.0.0.1")

    handle = lab_factory.start(project_files=project_files,
                               ami_credentials=(settings.ami.username, secrets.ami_secret))
    try:
        yield handle
    finally:
        lab_factory.stop(handle)


def _login(ami: Ami, agent: str, penalty: int) -> None:
    ami.action("Command", Command=f"devstate change Custom:agent{agent} NOT_INUSE")
    reply = ami.action("QueueAdd", Queue="hotline", Interface=f"Local/{agent}@lab-agents/n", Penalty=str(penalty),
                       MemberName=f"Agent {agent}", StateInterface=f"Custom:agent{agent}")
    assert get(reply, "Response") == "Success", reply


def _call_and_watch(ami: Ami) -> tuple[float, list[tuple[float, str]]]:
    """Place one hotline call; return when it joined the queue and which agents rang when."""
    reply = ami.action("Originate", Channel="Local/400@from-pstn/n", Context="lab-caller", Exten="s",
                       Priority="1", Async="true", CallerID="Overflow test <13800000001>",
                       Variable="LAB_SECONDS=15")
    assert get(reply, "Response") == "Success", reply
    joined: float | None = None
    called: list[tuple[float, str]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        message = ami.wait_for(lambda m: get(m, "Event") in ("QueueCallerJoin", "AgentCalled", "AgentConnect"),
                               timeout=max(0.1, deadline - time.monotonic()))
        event = get(message, "Event")
        if event == "QueueCallerJoin" and get(message, "Queue") == "hotline":
            joined = time.monotonic()
        elif event == "AgentCalled":
            called.append((time.monotonic(), get(message, "Interface") or ""))
        elif event == "AgentConnect":
            break
    assert joined is not None, "the call never joined the hotline queue"
    return joined, called


def test_hotline_agent_free_takes_the_call_at_once(overflow_lab: LabHandle) -> None:
    """With the hotline agent free, only the hotline agent rings, right away."""
    ami = Ami(overflow_lab.ami_host, overflow_lab.ami_port, overflow_lab.ami_username, overflow_lab.ami_secret)
    try:
        _login(ami, "1001", 0)
        _login(ami, "2101", 5)
        joined, called = _call_and_watch(ami)
        assert called, "nobody rang"
        first_at, first = called[0]
        assert first == "Local/1001@lab-agents/n"
        assert first_at - joined < OVERFLOW_AFTER - 1
        assert all(interface != "Local/2101@lab-agents/n" for _, interface in called)
    finally:
        ami.action("QueueRemove", Queue="hotline", Interface="Local/1001@lab-agents/n")
        ami.action("QueueRemove", Queue="hotline", Interface="Local/2101@lab-agents/n")
        ami.close()
        time.sleep(8)  # the test call and its agent leg end (agents talk 3 to 8 s)


def test_hotline_agent_busy_overflows_to_the_designated_agent_after_the_wait(overflow_lab: LabHandle) -> None:
    """With the hotline agent busy, the overflow agent rings only after ``overflow_after`` seconds."""
    ami = Ami(overflow_lab.ami_host, overflow_lab.ami_port, overflow_lab.ami_username, overflow_lab.ami_secret)
    try:
        _login(ami, "1001", 0)
        _login(ami, "2101", 5)
        ami.action("Command", Command="devstate change Custom:agent1001 INUSE")  # on another call
        joined, called = _call_and_watch(ami)
        assert called, "nobody rang: the call did not overflow"
        first_at, first = called[0]
        assert first == "Local/2101@lab-agents/n"
        assert first_at - joined >= OVERFLOW_AFTER - 0.5, f"overflowed after {first_at - joined:.1f} s"
        assert first_at - joined < OVERFLOW_AFTER + 5
    finally:
        ami.action("QueueRemove", Queue="hotline", Interface="Local/1001@lab-agents/n")
        ami.action("QueueRemove", Queue="hotline", Interface="Local/2101@lab-agents/n")
        ami.close()


def test_with_the_engine_unreachable_a_caller_waits_in_the_flows_language(overflow_lab: LabHandle) -> None:
    """No engine is listening, yet the waiting caller's channel speaks the hotline flow's first
    language (zh): the dialplan sets it when it answers, so Asterisk's queue announcements and
    message prompts are Mandarin (docs/ivr.md, "Telling callers their place")."""
    ami = Ami(overflow_lab.ami_host, overflow_lab.ami_port, overflow_lab.ami_username, overflow_lab.ami_secret)
    channel = None
    try:
        _login(ami, "1001", 0)
        ami.action("Command", Command="devstate change Custom:agent1001 INUSE")  # busy: the caller waits
        reply = ami.action("Originate", Channel="Local/400@from-pstn/n", Context="lab-caller", Exten="s",
                           Priority="1", Async="true", CallerID="Engine down <13800000002>",
                           Variable="LAB_SECONDS=15")
        assert get(reply, "Response") == "Success", reply
        joined = ami.wait_for(lambda m: get(m, "Event") == "QueueCallerJoin" and get(m, "Queue") == "hotline",
                              timeout=20)
        channel = get(joined, "Channel")
        assert channel, joined
        reply = ami.action("Getvar", Channel=channel, Variable="CHANNEL(language)")
        assert get(reply, "Response") == "Success", reply
        assert get(reply, "Value") == "zh", reply
    finally:
        if channel:
            ami.action("Hangup", Channel=channel)
        ami.action("QueueRemove", Queue="hotline", Interface="Local/1001@lab-agents/n")
        ami.action("Command", Command="devstate change Custom:agent1001 NOT_INUSE")
        ami.close()
