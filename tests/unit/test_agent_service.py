"""AgentService: the AMI actions agent login/logout/pause send, with a fake AMI.

The fake records every action and answers ``Response: Success`` (or an error for
actions it is told to refuse); the assertions are on the actions as Asterisk would
receive them (their serialised headers), not on which methods were called.
"""

from __future__ import annotations

from dataclasses import replace
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
from callcenter.settings import PrivacySettings, Settings, load_settings
from callcenter.state.agents import AgentBoard

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

_check = SynchronousTestCase()


class FakeAmi:
    """Records actions; answers Success, or Error for action names in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = (), why: str = "Interface not found") -> None:
        self.sent: list[AmiAction] = []
        self.refuse = refuse
        self.why = why

    def send(self, action: AmiAction, timeout: float | None = None, *, action_id: str | None = None) -> Deferred[AmiResult]:
        self.sent.append(action)
        if action.name in self.refuse:
            error = Message.from_pairs([("Response", "Error"), ("Message", self.why)])
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


def test_logout_from_queues_the_agent_is_not_in_is_no_error(settings: Settings) -> None:
    """An agent logged in to some of their queues (2101 to the hotline only) logs out: Asterisk
    answers the other QueueRemove "Not there" (seen on the lab Asterisk 22), which is what
    logging out wants, not a failure; any other refusal still fails the logout."""
    ami = FakeAmi(refuse=("QueueRemove",), why="Unable to remove interface: Not there")
    results = _check.successResultOf(service(settings, ami).logout("2101"))
    assert [r.action.get("Queue") for r in results] == ["outbound", "hotline"]
    ami = FakeAmi(refuse=("QueueRemove",), why="Unable to remove interface from queue: No such queue")
    failure = _check.failureResultOf(service(settings, ami).logout("2101"), AmiActionFailed)
    assert "No such queue" in str(failure.value)


def test_logging_in_twice_is_no_error(settings: Settings) -> None:
    """Asterisk answers QueueAdd "Unable to add interface: Already there" for a queue the agent
    is in (seen on the lab Asterisk 22): still logged in, so the login succeeds."""
    ami = FakeAmi(refuse=("QueueAdd",), why="Unable to add interface: Already there")
    results = _check.successResultOf(service(settings, ami).login("2101"))
    assert [r.action.get("Queue") for r in results] == ["outbound", "hotline"]
    ami = FakeAmi(refuse=("QueueAdd",), why="Unable to add interface to queue: No such queue")
    _check.failureResultOf(service(settings, ami).login("2101"), AmiActionFailed)


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
    # the agent time log keeps 128 characters: a longer reason is refused, not cut
    _check.successResultOf(svc.pause("1001", "会" * 128))
    failure = _check.failureResultOf(svc.pause("1001", "会" * 129), AgentError)
    assert "a pause reason is at most 128 characters, got 129" in str(failure.value)
    assert len(ami.sent) == 3


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


def _on_board(board: AgentBoard, agent: str, *events: list[tuple[str, str]]) -> None:
    member = [("Queue", "outbound"), ("Interface", f"PJSIP/agent{agent}"), ("StateInterface", f"PJSIP/agent{agent}")]
    board.handle(Message.from_pairs([("Event", "QueueMemberAdded"), *member, ("Paused", "0"), ("Status", "1")]), 1.0)
    for extra in events:
        board.handle(Message.from_pairs([*extra, *member]), 2.0)


def test_call_rings_the_agent_then_the_customer_with_the_record_s_details(settings: Settings) -> None:
    """Click-to-call: the agent's phone is originated into [agent-dial] with the customer's number
    as the extension (an international + number dialed with 00), the number (masked, as
    privacy.agent_numbers is shipped; whole with ``full``) and name shown on the agent's phone,
    and what the call record needs."""
    ami, board = FakeAmi(), AgentBoard()
    _on_board(board, "2101")
    agents = AgentService(settings, ami, board, Clock())  # type: ignore[arg-type]
    _check.successResultOf(agents.call("2101", "138-0013-8000", name='Zhang, "Wei"', customer_id=7))
    _check.successResultOf(agents.call("2101", "+33 1 23 45 67 89"))
    first, second = ami.sent
    assert first.headers == (
        ("Channel", "PJSIP/agent2101"), ("Context", "agent-dial"), ("Exten", "13800138000"), ("Priority", "1"),
        ("CallerID", '"Zhang Wei" <138****8000>'), ("Timeout", "30000"), ("Async", "true"))
    assert first.variables == (("CC_AGENT", "2101"), ("CC_PHONE", "13800138000"),
                               ("CC_CUSTOMER_NAME", "Zhang Wei"), ("CC_CUSTOMER_ID", "7"))
    assert ("Exten", "0033123456789") in second.headers
    assert ("CallerID", '"+33****6789" <+33****6789>') in second.headers
    assert second.variables == (("CC_AGENT", "2101"), ("CC_PHONE", "+33123456789"))
    whole = AgentService(replace(settings, privacy=PrivacySettings("full")), ami, board, Clock())  # type: ignore[arg-type]
    _check.successResultOf(whole.call("2101", "+33 1 23 45 67 89"))
    assert ("CallerID", '"+33123456789" <+33123456789>') in ami.sent[-1].headers


def test_call_is_refused_before_anything_is_sent(settings: Settings) -> None:
    ami, board = FakeAmi(), AgentBoard()
    _on_board(board, "2101", [("Event", "AgentConnect"), ("Queue", "outbound"), ("Uniqueid", "1.1"),
                              ("Linkedid", "1.1"), ("HoldTime", "1")])
    agents = AgentService(settings, ami, board, Clock())  # type: ignore[arg-type]
    for agent, phone, words in [("2101", "13800138000", "agent 2101 is on a call"),
                                ("2102", "13800138000", "agent 2102 is logged out: log in first"),
                                ("9999", "13800138000", "9999"), ("2101", "not a number", "3 to 15 digits")]:
        failure = _check.failureResultOf(agents.call(agent, phone))
        assert words in str(failure.value), failure.value
    assert ami.sent == []


def test_manual_dial_settings_are_checked(tmp_path: Path) -> None:
    """manual_dial (config/callcenter.yaml): each bad value named with its file, line and key."""
    from callcenter.settings import ConfigError

    bad = tmp_path / "site.yaml"
    bad.write_text("manual_dial:\n  trunk: PJSIP/pstn\n  caller_id: 400-1234\n  ring_seconds: 2\n  ringing: 5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG_DIR, [bad])
    assert str(info.value).splitlines() == [
        f"{bad}:2:3: manual_dial.trunk: expected a channel with {{phone}}, e.g. PJSIP/{{phone}}@pstn, got 'PJSIP/pstn'",
        f"{bad}:3:3: manual_dial.caller_id: expected up to 20 digits (an optional +), or empty, got '400-1234'",
        f"{bad}:4:3: manual_dial.ring_seconds: expected an integer in 5..300, got 2",
        f"{bad}:5:3: manual_dial.ringing: unknown setting",
    ]
    good = load_settings(CONFIG_DIR)
    assert (good.manual_dial.trunk, good.manual_dial.ring_seconds) == ("PJSIP/{phone}@pstn", 45)


def test_a_per_team_queue_brings_the_agents_team_queue_along(tmp_path: Path) -> None:
    """With ``outbound`` per team, 2101 logging in to outbound joins outbound-team1 too (same
    penalty); logging in to the hotline alone does not; logout leaves all three."""
    site = tmp_path / "site.yaml"
    site.write_text("queues:\n  outbound:\n    per_team: true\n", encoding="utf-8")
    teams = load_settings(CONFIG_DIR, [site])
    ami = FakeAmi()
    svc = service(teams, ami)
    _check.successResultOf(svc.login("2101", ["outbound"]))
    assert [(a.get("Queue"), a.get("Penalty")) for a in ami.sent] == [("outbound", "0"), ("outbound-team1", "0")]
    ami.sent.clear()
    _check.successResultOf(svc.login("2101", ["hotline"]))
    assert [a.get("Queue") for a in ami.sent] == ["hotline"]
    ami.sent.clear()
    _check.successResultOf(svc.login("2101"))
    assert [a.get("Queue") for a in ami.sent] == ["outbound", "hotline", "outbound-team1"]
    ami.sent.clear()
    _check.successResultOf(svc.logout("2101"))
    assert [a.get("Queue") for a in ami.sent] == ["outbound", "hotline", "outbound-team1"]
