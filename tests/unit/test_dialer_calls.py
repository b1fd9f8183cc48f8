"""The dialer's calls in flight: every placed call ends exactly once with the right outcome."""

from __future__ import annotations

import pytest

from callcenter.ami.codec import Message
from callcenter.dialer.calls import DialBook, DialConnected, outcome_of_reason


def ev(name: str, **headers: object) -> Message:
    return Message.from_pairs([("Event", name), *((k, str(v)) for k, v in headers.items())])


def user(kind: str, attempt: int, **headers: object) -> Message:
    return ev("UserEvent", UserEvent=kind, Attempt=attempt, **headers)


def book_with(attempt: int = 7, uniqueid: str = "dial-7") -> DialBook:
    book = DialBook()
    book.placed(attempt, lead_id=70, campaign_id=1, uniqueid=uniqueid, now=100.0)
    return book


@pytest.mark.parametrize(("reason", "outcome"), [("5", "busy"), ("3", "noanswer"), ("8", "failed"),
                                                 ("0", "failed"), ("1", "failed"), (None, "failed")])
def test_unanswered_calls_end_on_the_originate_response(reason: str | None, outcome: str) -> None:
    """Busy, no answer and failures end at the OriginateResponse with the time rung."""
    book = book_with()
    headers = {"Response": "Failure"} | ({"Reason": reason} if reason else {})
    end = book.originate_response(7, ev("OriginateResponse", **headers), 115.0)
    assert end is not None and end.outcome == outcome and end.ring_seconds == 15.0
    assert len(book) == 0 and book.ringing(116.0) == []
    assert outcome_of_reason("4") is None


def test_human_connected_to_an_agent_reports_connect_latency() -> None:
    """Answer at 104, AMD says HUMAN at 106.5, agent bridged at 107.1: human, 4 s ring, 0.6 s connect."""
    book = book_with()
    assert book.originate_response(7, ev("OriginateResponse", Response="Success", Reason="4"), 104.0) is None
    assert book.ringing(105.0) == [] and len(book.answered_waiting()) == 1
    assert book.answered_waiting(campaign_id=2) == [] and book.ringing(105.0, campaign_id=2) == []
    assert book.handle(user("DialerAnswered", 7), 104.1) is None
    assert book.handle(user("DialerAMD", 7, AMDStatus="HUMAN", AMDCause="HUMAN-800-800"), 106.5) is None
    connected = book.handle(ev("AgentConnect", Uniqueid="dial-7", Interface="Local/2101@lab-agents/n"), 107.1)
    assert isinstance(connected, DialConnected) and connected.dial.agent == "2101"
    assert connected.ring_seconds == pytest.approx(4.0) and connected.connect_seconds == pytest.approx(0.6)
    assert connected.verdict_seconds == pytest.approx(6.5)  # what the pacer learns: dial -> needs an agent
    assert book.handle(ev("AgentConnect", Uniqueid="dial-7", Interface="Local/2101@lab-agents/n"), 107.2) is None
    assert book.answered_waiting() == []
    end = book.handle(user("DialerResult", 7, Outcome="human", QueueStatus=""), 140.0)
    assert end is not None
    assert (end.outcome, end.dial.agent, end.dial.amd_status) == ("human", "2101", "HUMAN")
    assert end.ring_seconds == pytest.approx(4.0)
    assert end.connect_seconds == pytest.approx(0.6)
    assert len(book) == 0


def test_result_before_the_originate_response_still_ends_once() -> None:
    """The dialplan's result may come first; the late OriginateResponse changes nothing."""
    book = book_with()
    end = book.handle(user("DialerResult", 7, Outcome="abandoned", QueueStatus="JOINEMPTY"), 109.0)
    assert end is not None and end.outcome == "abandoned" and end.queue_status == "JOINEMPTY"
    assert book.originate_response(7, ev("OriginateResponse", Response="Success", Reason="4"), 109.1) is None
    assert book.handle(user("DialerResult", 7, Outcome="human"), 110.0) is None
    assert book.unknown_events == 1


def test_unknown_outcome_is_a_recorded_failure() -> None:
    """A result the engine does not know still ends the call, as failed, saying why."""
    book = book_with()
    end = book.handle(user("DialerResult", 7, Outcome="fax"), 103.0)
    assert end is not None and end.outcome == "failed" and "fax" in end.detail


def test_lost_calls_expire_as_failed_and_nothing_is_in_flight_twice() -> None:
    """A call with no final event ends failed after the limit; attempts and ids are unique."""
    book = book_with()
    book.placed(8, lead_id=80, campaign_id=1, uniqueid="dial-8", now=150.0)
    with pytest.raises(ValueError, match="attempt 7"):
        book.placed(7, lead_id=70, campaign_id=1, uniqueid="dial-x", now=150.0)
    with pytest.raises(ValueError, match="dial-8"):
        book.placed(9, lead_id=90, campaign_id=1, uniqueid="dial-8", now=150.0)
    ends = book.expire(now=200.0, ringing=60.0, answered=60.0, connected=60.0)
    assert [(e.dial.attempt_id, e.outcome) for e in ends] == [(7, "failed")]
    assert 8 in book and 7 not in book
    assert book.failed(8, 201.0, "AMI not connected") is not None
    assert book.failed(8, 202.0, "twice") is None


def test_connected_calls_outlive_the_ringing_limit_and_resync_drops_gone_channels() -> None:
    """A conversation is not expired with the ringing limit; a channel gone after a reconnect ends."""
    book = book_with()
    book.placed(8, lead_id=80, campaign_id=1, uniqueid="dial-8", now=100.0)
    book.handle(ev("AgentConnect", Uniqueid="dial-7", Interface="PJSIP/agent2101"), 105.0)
    ends = book.expire(now=400.0, ringing=40.0, answered=120.0, connected=4 * 3600.0)
    assert [e.dial.attempt_id for e in ends] == [8]
    assert 7 in book
    gone = book.forget_missing({"something-else"}, 401.0)
    assert [(e.dial.attempt_id, e.outcome) for e in gone] == [(7, "failed")]


def test_a_preview_call_connects_when_the_lead_answers_on_the_agents_line() -> None:
    """Preview: DialerAnswered with AgentConnected is the conversation's start (no queue, no AMD)."""
    book = book_with()
    fact = book.handle(user("DialerAnswered", 7, AgentConnected="yes", Agent="2101"), 106.0)
    assert isinstance(fact, DialConnected) and fact.dial.agent == "2101" and fact.ring_seconds == 6.0
    end = book.handle(user("DialerResult", 7, Outcome="human", Agent="2101"), 166.0)
    assert end is not None and end.outcome == "human" and end.dial.connected_at == 106.0


def test_an_adopted_call_ends_on_its_broadcast_originate_response_and_others_do_not() -> None:
    """A call an earlier run placed, ringing at this run's start: its OriginateResponse (broadcast
    to every AMI session) ends it. A call of this run ends only on its own Originate's answer
    (a preview's "agent did not answer" is not the lead's no answer)."""
    book = book_with()
    dial = book.adopt(8, lead_id=80, campaign_id=1, uniqueid="dial-ab12-8", placed_at=90.0, now=100.0,
                      answered=False, bridged=False)
    assert dial.adopted and not dial.answered and sorted(book.ringing(101.0, 1)) == [1.0, 11.0]
    assert book.handle(ev("OriginateResponse", Response="Failure", Reason="3", Uniqueid="dial-7"), 105.0) is None
    end = book.handle(ev("OriginateResponse", Response="Failure", Reason="3", Uniqueid="dial-ab12-8"), 105.0)
    assert end is not None and end.outcome == "noanswer" and end.dial.attempt_id == 8
    assert [d.attempt_id for d in book.dials()] == [7]


def test_an_adopted_call_found_in_a_bridge_is_a_conversation_with_its_agent() -> None:
    """Adopted with an agent: answered and connected from the start that found it; its
    DialerResult ends it as any other, talk counted from then."""
    book = DialBook()
    dial = book.adopt(9, lead_id=90, campaign_id=1, uniqueid="dial-ab12-9", placed_at=40.0, now=100.0,
                      answered=True, bridged=True, agent="2101")
    assert (dial.answered_at, dial.connected_at, dial.agent) == (100.0, 100.0, "2101")
    assert book.answered_waiting() == []
    end = book.handle(user("DialerResult", 9, Outcome="human", Agent="2101"), 160.0)
    assert end is not None and end.outcome == "human" and end.ended_at - end.dial.connected_at == 60.0


def test_an_adopted_preview_call_whose_agent_does_not_answer_fails_without_blaming_the_lead() -> None:
    """A preview call rings the agent's phone first: its OriginateResponse without an answer
    says the agent did not answer, not the lead (no 'noanswer' attempt counted against it)."""
    book = DialBook()
    book.adopt(9, lead_id=90, campaign_id=1, uniqueid="dial-ab12-9", placed_at=95.0, now=100.0,
               answered=False, bridged=False, agent="2101", to_agent=True)
    end = book.handle(ev("OriginateResponse", Response="Failure", Reason="3", Uniqueid="dial-ab12-9"), 110.0)
    assert end is not None and (end.outcome, end.detail) == ("failed", "agent 2101's phone did not answer (reason 3)")
