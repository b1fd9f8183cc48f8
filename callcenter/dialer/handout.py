"""The lead hand-out: IT gives a campaign's leads to teams, team leads give them to agents.

The reference site buys about 100k leads a month. IT hands a batch to each team lead every
two or three days; each morning the lead shares the team's batch among the team's agents;
what is left at night can be taken back and shared again. A campaign's ``handout`` setting
(``config/dialer.yaml``) says what the dialer makes of it:

``none``
    Leads are dialed from the campaign's pool as soon as they are imported; a hand-out is
    a record of who holds what, nothing more.
``team``
    Only leads handed out to a team are dialed, and only while one of that team's agents
    is logged in to the campaign's queue. A preview agent is offered their own leads and
    the team's leads not yet given to anyone.
``agent``
    Only leads handed out to an agent are dialed, and only while that agent is logged in
    (VICIdial's "owner only dial"). A preview agent is offered only their own leads.

In the predictive and progressive modes the answered call goes to the campaign's queue, so
a lead's owner is who it is dialed *for*, not always who takes it: give a team its own queue
(``queue`` of a campaign of that team's leads) to keep its calls within the team.

Who may do what is the one rule of :meth:`~callcenter.settings.AgentSettings.oversees`:
managers (IT and management) hand out to teams and take back from them; a team's lead (or
a manager) shares the team's leads among its agents and takes them back. Everything here
is pure; :mod:`callcenter.storage.dialer` moves the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, overload

from callcenter.settings import AgentSettings
from callcenter.storage.records import InvalidFieldError, positive_int

__all__ = [
    "HANDOUT_MODES",
    "HandOut",
    "HandOutRefused",
    "Owners",
    "TakeBack",
    "authorise",
    "check_agent_handout",
    "check_team_handout",
    "owners_for_pacing",
    "owners_for_preview",
    "parse_handout",
    "parse_takeback",
    "shares",
    "team_agents",
]

HANDOUT_MODES: Final = ("none", "team", "agent")
"""The values of a campaign's ``handout`` setting."""


class HandOutRefused(Exception):
    """The person may not hand out (or take back) these leads (HTTP 403); the message says why."""


@dataclass(frozen=True)
class Owners:
    """Which handed-out leads a claim may take: those of ``teams`` (with whichever agent,
    or, with ``unassigned_only``, only those no agent holds yet) and those of ``agents``."""

    teams: frozenset[str] = field(default_factory=frozenset)
    agents: frozenset[str] = field(default_factory=frozenset)
    unassigned_only: bool = False

    def __bool__(self) -> bool:
        """False when no lead can match: there is nothing to claim."""
        return bool(self.teams or self.agents)


def owners_for_pacing(mode: str, logged_in: Iterable[AgentSettings]) -> Owners | None:
    """The leads a paced campaign in ``mode`` may dial while ``logged_in`` agents work its
    queue (None: any lead, the ``none`` mode)."""
    if mode == "none":
        return None
    agents = list(logged_in)
    if mode == "team":
        return Owners(teams=frozenset(a.team for a in agents if a.team))
    if mode == "agent":
        return Owners(agents=frozenset(a.id for a in agents))
    raise ValueError(f"handout: {mode!r} is not one of {', '.join(HANDOUT_MODES)}")


def owners_for_preview(mode: str, agent: AgentSettings) -> Owners | None:
    """The leads ``agent`` may be offered in a preview campaign in ``mode`` (None: any)."""
    if mode == "none":
        return None
    if mode == "team":
        teams = frozenset([agent.team]) if agent.team else frozenset()
        return Owners(teams=teams, agents=frozenset([agent.id]), unassigned_only=True)
    if mode == "agent":
        return Owners(agents=frozenset([agent.id]))
    raise ValueError(f"handout: {mode!r} is not one of {', '.join(HANDOUT_MODES)}")


def _who(people: Mapping[str, AgentSettings], person: str) -> AgentSettings:
    try:
        return people[person]
    except KeyError:
        raise HandOutRefused(f"unknown agent id {person!r}") from None


def _known_team(team: str, teams: Collection[str]) -> None:
    if team not in teams:
        raise HandOutRefused(f"unknown team {team!r} (teams: {', '.join(sorted(teams)) or 'none'})")


def check_team_handout(people: Mapping[str, AgentSettings], actor: str, team: str,
                       teams: Collection[str]) -> None:
    """Raise :class:`HandOutRefused` unless ``actor`` may hand leads out to (or take them
    back from) ``team``: managers only, and only to a team of ``teams``."""
    who = _who(people, actor)
    _known_team(team, teams)
    if who.role != "manager":
        raise HandOutRefused(f"agent {actor} is a {who.role}: only a manager (IT) hands leads out to teams "
                             "and takes them back")


def check_agent_handout(people: Mapping[str, AgentSettings], actor: str, team: str,
                        agents: Iterable[str]) -> None:
    """Raise :class:`HandOutRefused` unless ``actor`` may share ``team``'s leads among
    ``agents`` (or take them back): the team's lead or a manager, to agents of that team."""
    who = _who(people, actor)
    if not who.oversees(team):
        if who.role == "lead":
            raise HandOutRefused(f"a lead hands out only their own team's leads ({who.team or 'none'}), "
                                 f"not team {team}'s")
        raise HandOutRefused(f"agent {actor} is not a team lead or a manager: only they hand leads to agents")
    for agent in agents:
        member = _who(people, agent)
        if member.team != team:
            raise HandOutRefused(f"agent {agent} is in team {member.team or 'none'}, not {team}")


def shares(available: int, agents: Sequence[str], each: int | None = None) -> dict[str, int]:
    """How many of ``available`` leads each of ``agents`` gets: ``each`` apiece, or all of
    them when ``each`` is None; as evenly as the leads go round, the first agents getting
    the one extra lead of a remainder. Agents given nothing are left out."""
    if available < 0:
        raise ValueError(f"available: must be at least 0, not {available}")
    if each is not None and each < 1:
        raise ValueError(f"each: must be at least 1, not {each}")
    order = list(dict.fromkeys(agents))
    if not order:
        raise ValueError("agents: name at least one agent")
    total = available if each is None else min(available, each * len(order))
    base, extra = divmod(total, len(order))
    given = {agent: base + (1 if i < extra else 0) for i, agent in enumerate(order)}
    return {agent: n for agent, n in given.items() if n}


@dataclass(frozen=True)
class HandOut:
    """One hand-out as asked: ``count`` leads of IT's pool (of lead list ``list_id``, if
    given) to ``team``; or ``team``'s leads not yet given to an agent shared among
    ``agents`` (``each`` apiece, or all of them)."""

    actor: str
    team: str
    count: int | None = None
    list_id: int | None = None
    agents: tuple[str, ...] | None = None
    each: int | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.agents is None):
            raise InvalidFieldError("count", "give either count (leads to the team) or agents (the team's leads "
                                             "shared among them), not both or neither")
        if self.count is not None and self.count < 1:
            raise InvalidFieldError("count", f"expected at least 1, got {self.count}")
        if self.agents is not None and self.list_id is not None:
            raise InvalidFieldError("list_id", "only with count: agents share what their team holds")
        if self.agents is None and self.each is not None:
            raise InvalidFieldError("each", "only with agents")
        if self.agents is not None and not self.agents:
            raise InvalidFieldError("agents", "name at least one agent, or \"all\"")
        if self.each is not None and self.each < 1:
            raise InvalidFieldError("each", f"expected at least 1, got {self.each}")


@dataclass(frozen=True)
class TakeBack:
    """Take back the leads of ``team`` that ``agents`` hold (to ``team``), or with ``agents``
    None all of ``team``'s (to IT's pool); only those not dialed yet. ``every_agent`` (what
    ``"all"`` becomes once authorised): from every agent holding the team's leads, one moved
    to another team since included."""

    actor: str
    team: str
    agents: tuple[str, ...] | None = None
    every_agent: bool = False


def _whole(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidFieldError(name, f"expected a whole number of at least 1, got {value!r}")
    return positive_int(name, value)  # and at most what SQL holds


def _names(body: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    if value == "all":
        return ("all",)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidFieldError(name, f'expected "all" or a list of agent ids, got {value!r}')
    return tuple(value)


def _text(body: Mapping[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidFieldError(name, f"expected {what}, got {value!r}")
    return value


def _only(body: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in body:
        if key not in allowed:
            raise InvalidFieldError(str(key), f"unknown field (fields: {', '.join(allowed)})")


def parse_handout(body: Mapping[str, Any]) -> HandOut:
    """``{"by", "team", "count", "list_id"}`` or ``{"by", "team", "agents": "all" | [ids], "each"}``."""
    _only(body, ("by", "team", "count", "list_id", "agents", "each"))
    return HandOut(actor=_text(body, "by", "the agent id of who hands out"), team=_text(body, "team", "a team id"),
                   count=_whole(body, "count"), list_id=_whole(body, "list_id"), agents=_names(body, "agents"),
                   each=_whole(body, "each"))


def parse_takeback(body: Mapping[str, Any]) -> TakeBack:
    """``{"by", "team"}`` (the team's leads back to IT) or ``{"by", "team", "agents": "all" | [ids]}``."""
    _only(body, ("by", "team", "agents"))
    agents = _names(body, "agents")
    if agents == ():
        raise InvalidFieldError("agents", 'name at least one agent, or "all"')
    return TakeBack(actor=_text(body, "by", "the agent id of who takes back"), team=_text(body, "team", "a team id"),
                    agents=agents)


def team_agents(people: Mapping[str, AgentSettings], team: str) -> tuple[str, ...]:
    """The agents (role ``agent``) of ``team``, by id: whom ``"all"`` names."""
    return tuple(sorted(p.id for p in people.values() if p.team == team and p.role == "agent"))


def _authorise_takeback(request: TakeBack, people: Mapping[str, AgentSettings]) -> TakeBack:
    """A take-back from agents: the team's own leads come back from whoever holds them (an
    agent moved to another team since they were given keeps them until their old team's
    lead takes them back), so the agents named need only be known."""
    check_agent_handout(people, request.actor, request.team, ())
    if request.agents == ("all",):
        return replace(request, agents=(), every_agent=True)
    for agent in request.agents or ():
        _who(people, agent)  # a known agent id
    return request


@overload
def authorise(request: HandOut, people: Mapping[str, AgentSettings], teams: Collection[str]) -> HandOut: ...


@overload
def authorise(request: TakeBack, people: Mapping[str, AgentSettings], teams: Collection[str]) -> TakeBack: ...


def authorise(request: HandOut | TakeBack, people: Mapping[str, AgentSettings],
              teams: Collection[str]) -> HandOut | TakeBack:
    """The request with ``"all"`` spelled out (a hand-out's: the team's agents; a take-back's:
    ``every_agent``), if its actor may make it; :class:`HandOutRefused` otherwise (giving to
    or taking from a team is a manager's, sharing among or taking from agents the team's
    lead's or a manager's). A take-back may name an agent of another team: only the team's
    own leads come back."""
    _known_team(request.team, teams)
    if request.agents is None:
        check_team_handout(people, request.actor, request.team, teams)
        return request
    if isinstance(request, TakeBack):
        return _authorise_takeback(request, people)
    agents = team_agents(people, request.team) if request.agents == ("all",) else request.agents
    if not agents:
        raise HandOutRefused(f"team {request.team} has no agents")
    check_agent_handout(people, request.actor, request.team, agents)
    return replace(request, agents=agents)
