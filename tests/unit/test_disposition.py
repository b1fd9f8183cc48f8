"""An agent's disposition of a call (pure): the request body's rules and who may write it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from callcenter.disposition import (
    DispositionRefused,
    call_agents,
    check_writer,
    parse_disposition,
    seller,
)
from callcenter.settings import load_settings
from callcenter.storage.records import UNSET, InvalidFieldError

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")


def test_a_full_disposition_becomes_the_record_update() -> None:
    d = parse_disposition({"agent": "2101", "outcome": " sale ", "issue_type": "billing",
                           "notes": "wants the yearly plan", "follow_up_at": "2026-12-07T10:00:00+08:00",
                           "customer_name": "Li Lei"})
    assert d.writer == "2101"
    c = d.changes
    assert (c.outcome, c.issue_type, c.description, c.customer_name) == ("sale", "billing", "wants the yearly plan",
                                                                         "Li Lei")
    assert c.follow_up_at == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert c.follow_up_at.utcoffset() is not None
    assert (c.csat, c.agent_id, c.talk_seconds) == (UNSET, UNSET, UNSET)  # nothing else is touched


def test_a_sale_amount_is_exact_money() -> None:
    assert parse_disposition({"agent": "2101", "sale_amount": " 1999.9 "}).changes.sale_amount == Decimal("1999.90")
    assert parse_disposition({"agent": "2101", "sale_amount": 2000}).changes.sale_amount == Decimal("2000.00")
    assert parse_disposition({"agent": "2101", "sale_amount": None}).changes.sale_amount is None


def test_do_not_call_is_asked_with_true_and_changes_nothing_else() -> None:
    asked = parse_disposition({"agent": "2101", "outcome": "not interested", "do_not_call": True})
    assert asked.do_not_call and asked.changes.outcome == "not interested"
    assert parse_disposition({"agent": "2101", "do_not_call": True}).changes.outcome == UNSET
    assert not parse_disposition({"agent": "2101", "outcome": "sale"}).do_not_call
    assert not parse_disposition({"agent": "2101", "outcome": "sale", "do_not_call": False}).do_not_call


def test_fields_left_out_stay_and_null_clears() -> None:
    c = parse_disposition({"agent": "2101", "follow_up_at": None, "outcome": None}).changes
    assert (c.follow_up_at, c.outcome, c.issue_type, c.description) == (None, None, UNSET, UNSET)
    assert parse_disposition({"agent": "2101", "notes": ""}).changes.description == ""


@pytest.mark.parametrize(("body", "field", "problem"), [
    ({"outcome": "sale"}, "agent", "expected the writer's agent id, got None"),
    ({"agent": 2101, "outcome": "sale"}, "agent", "expected the writer's agent id, got 2101"),
    ({"agent": "2101"}, "outcome",
     ("nothing to record: give at least one of outcome, issue_type, notes, follow_up_at, customer_name, "
      "sale_amount, do_not_call")),
    ({"agent": "2101", "outcom": "sale"}, "outcom",
     ("unknown field (did you mean 'outcome'? fields: agent, outcome, issue_type, notes, follow_up_at, "
      "customer_name, sale_amount, do_not_call)")),
    ({"agent": "2101", "do_not_call": "yes"}, "do_not_call", "expected true or false, got 'yes'"),
    ({"agent": "2101", "outcome": 5}, "outcome", "expected a string or null, got 5"),
    ({"agent": "2101", "notes": None}, "notes", "expected a string, got None"),
    ({"agent": "2101", "follow_up_at": "2026-12-07T10:00:00"}, "follow_up_at",
     "give the UTC offset (e.g. 2026-12-07T10:00:00+08:00), got '2026-12-07T10:00:00'"),
    ({"agent": "2101", "follow_up_at": "tomorrow"}, "follow_up_at", "not an ISO 8601 time: 'tomorrow'"),
    ({"agent": "2101", "follow_up_at": 1765000000}, "follow_up_at",
     "expected an ISO 8601 time such as 2026-12-07T10:00:00+08:00, got 1765000000"),
    ({"agent": "2101", "sale_amount": 19.99}, "sale_amount",
     'must be an amount such as "199.90" (a string or whole number), got 19.99'),
    ({"agent": "2101", "sale_amount": "19.999"}, "sale_amount", "at most two decimals (fen), got '19.999'"),
    ({"agent": "2101", "sale_amount": "-5"}, "sale_amount", "must be from 0 to under 10,000,000,000 yuan, got '-5'"),
    ({"agent": "2101", "sale_amount": "NaN"}, "sale_amount", "must be from 0 to under 10,000,000,000 yuan, got 'NaN'"),
    ({"agent": "2101", "sale_amount": "1,999"}, "sale_amount", "must be an amount such as \"199.90\", got '1,999'"),
    ({"agent": "2101", "sale_amount": True}, "sale_amount",
     'must be an amount such as "199.90" (a string or whole number), got True'),
])
def test_bad_bodies_name_the_field(body: dict[str, object], field: str, problem: str) -> None:
    with pytest.raises(InvalidFieldError) as exc:
        parse_disposition(body)
    assert (exc.value.field, exc.value.problem) == (field, problem)


def test_the_record_limits_apply_under_the_api_names() -> None:
    with pytest.raises(InvalidFieldError) as exc:
        parse_disposition({"agent": "2101", "outcome": "x" * 65})
    assert exc.value.field == "outcome"
    with pytest.raises(InvalidFieldError) as exc:
        parse_disposition({"agent": "2101", "notes": "x" * 4001})
    assert (exc.value.field, exc.value.problem) == ("notes", "at most 4000 characters, got 4001")
    assert parse_disposition({"agent": "2101", "notes": "x" * 4000}).changes.description == "x" * 4000


def test_follow_up_keeps_any_offset() -> None:
    c = parse_disposition({"agent": "2101", "follow_up_at": "2026-12-07T10:00:00-05:00"}).changes
    assert c.follow_up_at == datetime(2026, 12, 7, 10, 0, tzinfo=timezone(timedelta(hours=-5)))


def test_the_calls_agent_its_team_lead_and_managers_may_write() -> None:
    check_writer(SETTINGS, "2101", ("2101",))
    check_writer(SETTINGS, "8001", ("2101",))  # lead of team1
    check_writer(SETTINGS, "9001", ("2101",))  # manager
    check_writer(SETTINGS, "8001", ())  # a call no agent took: leads and managers
    check_writer(SETTINGS, "9002", ())


def test_every_agent_whose_call_it_was_may_write_and_the_lead_of_any_of_them() -> None:
    """2101 sold, then handed the customer to 2201 (team2): both may write, and so may the
    leads of team1 and team2."""
    agents = call_agents("2201", ["2101>agent:2201@60"])
    assert agents == ("2101", "2201")
    for writer in ("2101", "2201", "8001", "8002"):
        check_writer(SETTINGS, writer, agents)
    with pytest.raises(DispositionRefused, match=r"this call was taken by agent 2101, agent 2201$"):
        check_writer(SETTINGS, "2102", agents)


def test_the_agents_of_a_call_hops_first_the_agent_now_last() -> None:
    assert call_agents(None) == ()
    assert call_agents("2101") == ("2101",)
    # under way: the queue connected 2102 (2101's phone rang unanswered): 2101 is not one of them
    assert call_agents("2101", (), "2102") == ("2102",)
    # handed on twice and back to the first agent; a hop with no agent (the IVR) and one unreadable
    hops = ["2101>agent:2201@60", "2201>billing@90", ">sales@5", "garbage"]
    assert call_agents("2101", hops) == ("2201", "2101")
    assert call_agents("1001", hops, "1002") == ("2101", "2201", "1002")


def test_a_sale_is_paid_to_the_agent_who_writes_it_else_the_calls_agent_now() -> None:
    agents = ("2101", "2201")
    assert seller("2101", agents) == "2101"  # sold, then handed the customer on
    assert seller("2201", agents) == "2201"
    assert seller("8001", agents) == "2201"  # a lead writing it: the call's agent now
    assert seller("9001", ()) is None


@pytest.mark.parametrize(("writer", "agent", "message"), [
    ("2102", "2101", "agent 2102 may disposition only their own calls; this call was taken by agent 2101"),
    ("2101", None, "agent 2101 may disposition only their own calls; this call was taken by no agent"),
    ("8002", "2101", ("a lead dispositions only their own team's calls (team2); this call was taken by agent 2101 "
                     "of team team1")),
    ("7777", "2101", "unknown agent id '7777'"),
])
def test_others_are_refused_with_the_reason(writer: str, agent: str | None, message: str) -> None:
    with pytest.raises(DispositionRefused, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        check_writer(SETTINGS, writer, call_agents(agent))
