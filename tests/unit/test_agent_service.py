"""AgentService: the AMI actions agent login/logout/pause send, with a fake AMI.

The fake records every action and answers ``Response: Success`` (or an error for
actions it is told to refuse); the assertions are on the actions as Asterisk would
receive them (their serialised headers), not on which methods were called.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from callcenter.agents import (
    LAB_INTERFACES,
    AgentError,
    AgentService,
    UnknownAgentError,
)
from callcenter.ami.actions import AmiAction
from callcenter.ami.client import AmiActionFailed, AmiResult
from callcenter.ami.codec import Message
from callcenter.settings import Settings, load_settings
from callcenter.state.agents import AgentBoard

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

_check = SynchronousTestCase()


class FakeAmi:
    """Records actions; answers Success, or Error for action names in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.sent: list[AmiAction] = []
        self.refuse = refuse

    def send(self, action: AmiAction, timeout: float | None = None, *, action_id: str | None = None) -> Deferred[AmiResult]:
        self.sent.append(action)
        if action.name in self.refuse:
            error = Message.from_pairs([("Response", "Error"), ("Message", "Interface not found")])
            return fail(AmiActionFailed(action, error))
        ok = Message.from_pairs([("Response", "Success"), ("Message", "done")])
        return succeed(AmiResult(action, f"id-{len(self.sent)}", ok))

    def wire(self) -> list[list[tuple[str, str]]]:
        """Each sent action as the (name, value) headers it puts on the wire."""
        return [[("Action", a.name), *a.headers] for a in self.sent]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(CONFIG_DIR)


def service(settings: Settings, ami: FakeAmi, **kwargs: object) -> AgentService:
    return AgentService(settings, ami, AgentBoard(), Clock(), **kwargs)  # type: ignore[arg-type]


def test_login_adds_the_agent_to_each_configured_queue_with_its_penalty(settings: Settings) -> None:
    """Agent 2101 (outbound penalty 0, hotline penalty 5) is QueueAdd-ed to both queues
    with interface and state interface PJSIP/agent2101 and its name."""
    ami = FakeAmi()
    results = _check.successResultOf(service(settings, ami).login("2101"))
    assert len(results) == 2 and all(r.ok for r in results)
    assert ami.wire() == [
        [("Action", "QueueAdd"), ("Queue", "outbound"), ("Interface", "PJSIP/agent2101"), ("Penalty", "0"),
         ("MemberName", "Agent 2101"), ("StateInterface", "PJSIP/agent2101")],
        [("Action", "QueueAdd"), ("Queue", "hotline"), ("Interface", "PJSIP/agent2101"), ("Penalty", "5"),
         ("MemberName", "Agent 2101"), ("StateInterface", "PJSIP/agent2101")],
    ]


def test_login_to_a_subset_and_refuses_foreign_queues(settings: Settings) -> None:
    """login(queues=[...]) joins only those; a queue the agent is not configured for
    fails naming agent and queue, and nothing is sent."""
    ami = FakeAmi()
    svc = service(settings, ami)
    _check.successResultOf(svc.login("2101", ["hotline"]))
    assert [a.get("Queue") for a in ami.sent] == ["hotline"]
    failure = _check.failureResultOf(svc.login("2103", ["hotline"]), AgentError)
    assert "'2103'" in str(failure.value) and "'hotline'" in str(failure.value)
    assert len(ami.sent) == 1


def test_lab_interfaces_use_local_channels_and_custom_device_state(settings: Settings) -> None:
    """With the lab override the member is Local/<ID>@lab-agents/n and its state
    interface Custom:agent<ID>."""
    ami = FakeAmi()
    _check.successResultOf(service(settings, ami, interfaces=LAB_INTERFACES).login("1001"))
    (action,) = ami.sent
    assert (action.get("Interface"), action.get("StateInterface")) == ("Local/1001@lab-agents/n", "Custom:agent1001")


def test_logout_removes_from_every_queue(settings: Settings) -> None:
    """Logout QueueRemove-s the configured queues, plus any the board saw the agent join."""
    ami = FakeAmi()
    board = AgentBoard()
    board.handle(Message.from_pairs([("Event", "QueueMemberAdded"), ("Queue", "vip"), ("Interface", "PJSIP/agent2103")]), 0.0)
    svc = AgentService(settings, ami, board, Clock())
    _check.successResultOf(svc.logout("2103"))
    assert ami.wire() == [
        [("Action", "QueueRemove"), ("Queue", "outbound"), ("Interface", "PJSIP/agent2103")],
        [("Action", "QueueRemove"), ("Queue", "vip"), ("Interface", "PJSIP/agent2103")],
    ]


def test_pause_and_unpause_in_every_queue_with_reason(settings: Settings) -> None:
    """Pause sends QueuePause Paused=true with the reason (no Queue: every queue);
    unpause sends Paused=false; a pause without a reason is refused."""
    ami = FakeAmi()
    svc = service(settings, ami)
    _check.successResultOf(svc.pause("1001", "lunch"))
    _check.successResultOf(svc.unpause("1001"))
    assert ami.wire() == [
        [("Action", "QueuePause"), ("Interface", "PJSIP/agent1001"), ("Paused", "true"), ("Reason", "lunch")],
        [("Action", "QueuePause"), ("Interface", "PJSIP/agent1001"), ("Paused", "false")],
    ]
    _check.failureResultOf(svc.pause("1001", " "), AgentError)
    assert len(ami.sent) == 2


@pytest.mark.parametrize("call", ["login", "logout", "pause", "unpause"])
def test_unknown_agent_fails_naming_the_agent(settings: Settings, call: str) -> None:
    """Every request for an agent not in agents.yaml fails with UnknownAgentError
    naming it, before any action is sent."""
    ami = FakeAmi()
    svc = service(settings, ami)
    args = ("7777", "lunch") if call == "pause" else ("7777",)
    failure = _check.failureResultOf(getattr(svc, call)(*args), UnknownAgentError)
    assert "'7777'" in str(failure.value) and "agents.yaml" in str(failure.value)
    assert ami.sent == []


def test_reason_with_newline_is_refused_before_sending(settings: Settings) -> None:
    """A reason that would inject AMI headers fails in the caller's Deferred; nothing sent."""
    ami = FakeAmi()
    _check.failureResultOf(service(settings, ami).pause("1001", "x\r\nAction: Hangup"))
    assert ami.sent == []


def test_asterisk_refusal_reaches_the_caller(settings: Settings) -> None:
    """When Asterisk answers Error (e.g. QueueRemove of a member not in the queue), the
    Deferred fails with that action's AmiActionFailed, not a FirstError wrapper."""
    ami = FakeAmi(refuse=("QueueRemove",))
    failure = _check.failureResultOf(service(settings, ami).logout("1001"), AmiActionFailed)
    assert "Interface not found" in str(failure.value)
