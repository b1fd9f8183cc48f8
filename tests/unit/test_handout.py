"""The lead hand-out rules (callcenter.dialer.handout): who may, even shares, which leads a claim takes."""

from __future__ import annotations

import pytest

from callcenter.dialer.handout import (
    HandOut,
    HandOutRefused,
    Owners,
    TakeBack,
    authorise,
    check_agent_handout,
    check_team_handout,
    owners_for_pacing,
    owners_for_preview,
    shares,
)
from callcenter.settings import AgentSettings


def person(id: str, team: str, role: str = "agent") -> AgentSettings:
    return AgentSettings(id=id, name=f"Person {id}", team=team, role=role, queues={})


PEOPLE = {p.id: p for p in [
    person("9001", "management", "manager"), person("2100", "team1", "lead"), person("2200", "team2", "lead"),
    person("2101", "team1"), person("2102", "team1"), person("2201", "team2"),
]}
TEAMS = ("team1", "team2", "management")


def test_only_a_manager_hands_leads_out_to_a_known_team() -> None:
    check_team_handout(PEOPLE, "9001", "team1", TEAMS)
    with pytest.raises(HandOutRefused, match="^agent 2100 is a lead: only a manager \\(IT\\) hands leads out"):
        check_team_handout(PEOPLE, "2100", "team1", TEAMS)
    with pytest.raises(HandOutRefused, match="^unknown team 'team9' \\(teams: management, team1, team2\\)"):
        check_team_handout(PEOPLE, "9001", "team9", TEAMS)
    with pytest.raises(HandOutRefused, match="^unknown agent id '42'"):
        check_team_handout(PEOPLE, "42", "team1", TEAMS)


def test_a_lead_shares_only_their_own_teams_leads_among_its_agents() -> None:
    check_agent_handout(PEOPLE, "2100", "team1", ["2101", "2102", "2100"])  # a lead may keep some too
    check_agent_handout(PEOPLE, "9001", "team2", ["2201"])  # a manager any team's
    with pytest.raises(HandOutRefused, match=r"^a lead hands out only their own team's leads \(team1\), not team team2's"):
        check_agent_handout(PEOPLE, "2100", "team2", ["2201"])
    with pytest.raises(HandOutRefused, match="^agent 2201 is in team team2, not team1"):
        check_agent_handout(PEOPLE, "2100", "team1", ["2101", "2201"])
    with pytest.raises(HandOutRefused, match="^agent 2101 is not a team lead or a manager"):
        check_agent_handout(PEOPLE, "2101", "team1", ["2102"])
    with pytest.raises(HandOutRefused, match="^unknown agent id '2999'"):
        check_agent_handout(PEOPLE, "2100", "team1", ["2999"])


def test_a_take_back_brings_the_teams_leads_back_from_whoever_holds_them() -> None:
    """2101 moved from team1 to team2 with team1's leads: team1's lead takes them back, by
    "all" (every agent holding team1's leads) or by name; giving them leads stays refused.
    Before, "all" meant team1's agents now (2101 left out) and naming 2101 was refused."""
    moved = {**PEOPLE, "2101": person("2101", "team2")}
    everyone = authorise(TakeBack(actor="2100", team="team1", agents=("all",)), moved, TEAMS)
    assert (everyone.agents, everyone.every_agent) == ((), True)
    named = authorise(TakeBack(actor="2100", team="team1", agents=("2101",)), moved, TEAMS)
    assert (named.agents, named.every_agent) == (("2101",), False)
    with pytest.raises(HandOutRefused, match="^agent 2101 is in team team2, not team1"):
        authorise(HandOut(actor="2100", team="team1", agents=("2101",)), moved, TEAMS)
    with pytest.raises(HandOutRefused, match=r"^a lead hands out only their own team's leads \(team2\)"):
        authorise(TakeBack(actor="2200", team="team1", agents=("all",)), moved, TEAMS)
    with pytest.raises(HandOutRefused, match="^unknown agent id '2999'"):
        authorise(TakeBack(actor="2100", team="team1", agents=("2999",)), moved, TEAMS)


@pytest.mark.parametrize(("available", "agents", "each", "expected"), [
    (10, ["a", "b", "c"], None, {"a": 4, "b": 3, "c": 3}),  # all of them, the remainder to the first
    (10, ["a", "b", "c"], 2, {"a": 2, "b": 2, "c": 2}),
    (5, ["a", "b", "c"], 4, {"a": 2, "b": 2, "c": 1}),  # fewer than asked: as even as they go
    (1, ["a", "b", "c"], None, {"a": 1}),  # agents given nothing are left out
    (0, ["a"], None, {}),
    (6, ["a", "b", "a"], None, {"a": 3, "b": 3}),  # a name given twice counts once
])
def test_shares_are_as_even_as_the_leads_go_round(available: int, agents: list[str], each: int | None,
                                                  expected: dict[str, int]) -> None:
    assert shares(available, agents, each) == expected
    assert list(shares(available, agents, each)) == list(expected)


def test_shares_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="^agents: name at least one agent"):
        shares(5, [])
    with pytest.raises(ValueError, match="^each: must be at least 1, not 0"):
        shares(5, ["a"], 0)
    with pytest.raises(ValueError, match="^available: must be at least 0"):
        shares(-1, ["a"])


def test_which_leads_a_paced_campaign_dials_in_each_mode() -> None:
    logged_in = [PEOPLE["2101"], PEOPLE["2201"], person("77", "")]
    assert owners_for_pacing("none", logged_in) is None
    assert owners_for_pacing("team", logged_in) == Owners(teams=frozenset({"team1", "team2"}))
    assert owners_for_pacing("agent", logged_in) == Owners(agents=frozenset({"2101", "2201", "77"}))
    assert not owners_for_pacing("agent", [])  # nobody logged in: no lead may be dialed
    with pytest.raises(ValueError, match="^handout: 'teams' is not one of none, team, agent"):
        owners_for_pacing("teams", logged_in)


def test_which_leads_a_preview_agent_is_offered_in_each_mode() -> None:
    agent = PEOPLE["2101"]
    assert owners_for_preview("none", agent) is None
    assert owners_for_preview("team", agent) == Owners(teams=frozenset({"team1"}), agents=frozenset({"2101"}),
                                                       unassigned_only=True)
    assert owners_for_preview("agent", agent) == Owners(agents=frozenset({"2101"}))
    assert owners_for_preview("team", person("5", "")) == Owners(agents=frozenset({"5"}), unassigned_only=True)
