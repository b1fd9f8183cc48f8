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
from dataclasses import dataclass, field
from typing import Final

from callcenter.settings import AgentSettings

__all__ = [
    "HANDOUT_MODES",
    "HandOutRefused",
    "Owners",
    "check_agent_handout",
    "check_team_handout",
    "owners_for_pacing",
    "owners_for_preview",
    "shares",
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


def check_team_handout(people: Mapping[str, AgentSettings], actor: str, team: str,
                       teams: Collection[str]) -> None:
    """Raise :class:`HandOutRefused` unless ``actor`` may hand leads out to (or take them
    back from) ``team``: managers only, and only to a team of ``teams``."""
    who = _who(people, actor)
    if team not in teams:
        raise HandOutRefused(f"unknown team {team!r} (teams: {', '.join(sorted(teams)) or 'none'})")
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
