"""An agent's disposition of a call: outcome, issue type, notes, follow-up time (pure).

After (or during) a call the agent records what came of it on the call record: the
``outcome`` (e.g. ``resolved``, ``sale``, ``not interested``), the ``issue_type``, free
``notes`` (the record's description), a ``follow_up_at`` time and the ``sale_amount`` of a
sale (the commission report pays from it), may correct the ``customer_name``, and, when the
customer asks not to be called again, puts the number on the do-not-call list
(``do_not_call``). This module turns the JSON body of ``POST /api/call-records/<ticket>/
disposition`` into a :class:`~callcenter.storage.records.CallRecordUpdate`, every problem
named by its field, and decides who may write it: an agent whose call it was (the one who
took it, and one who handed it on: a sale stays its seller's), a team lead of one of those
agents' teams, or a manager (a call no agent took: leads and managers).

Pure: no Twisted, no SQL; :mod:`callcenter.http_api` does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from callcenter.settings import Settings, did_you_mean
from callcenter.storage.records import CallRecordUpdate, InvalidFieldError, money
from callcenter.transfer import parse_hop

__all__ = ["FIELDS", "NOTES_MAX", "Disposition", "DispositionRefused", "call_agents", "check_writer", "parse_disposition",
           "seller"]

#: The fields a disposition may set (``agent`` names who writes it).
FIELDS: Final = ("outcome", "issue_type", "notes", "follow_up_at", "customer_name", "sale_amount", "do_not_call")
#: Longest ``notes`` accepted (the record's description has no limit of its own).
NOTES_MAX: Final = 4000


class DispositionRefused(Exception):
    """The writer may not disposition this call (HTTP 403)."""


@dataclass(frozen=True)
class Disposition:
    """A validated disposition: who writes it and the record fields it changes."""

    writer: str
    changes: CallRecordUpdate
    do_not_call: bool = False
    """The customer asked not to be called again: their number goes on the do-not-call list."""


def parse_disposition(body: Mapping[str, Any]) -> Disposition:
    """Validate the request body; :class:`InvalidFieldError` names the first bad field.

    ``agent`` (the writer's id) is required, and at least one of :data:`FIELDS`. Text
    fields are strings (``null`` clears ``outcome``, ``issue_type``, ``follow_up_at`` and
    ``customer_name``; ``notes`` is cleared with ``""``); ``follow_up_at`` is an ISO 8601
    time with its UTC offset (``2026-12-07T10:00:00+08:00``); ``sale_amount`` the sale in yuan
    (``"1999.00"``: a string or whole number, two decimals at most; ``null`` clears it);
    ``do_not_call`` is ``true`` (or ``false``: nothing). Lengths are the call record's own limits.
    """
    for key in body:
        if key != "agent" and key not in FIELDS:
            hint = did_you_mean(str(key), [*FIELDS, "agent"])
            raise InvalidFieldError(str(key), f"unknown field ({hint}fields: agent, {', '.join(FIELDS)})")
    writer = body.get("agent")
    if not isinstance(writer, str) or not writer:
        raise InvalidFieldError("agent", f"expected the writer's agent id, got {writer!r}")
    if not any(key in body for key in FIELDS):
        raise InvalidFieldError("outcome", f"nothing to record: give at least one of {', '.join(FIELDS)}")
    values: dict[str, Any] = {}
    for key in ("outcome", "issue_type", "customer_name"):
        if key in body:
            values[key] = _text(key, body[key], nullable=True)
    if "notes" in body:
        notes = _text("notes", body["notes"], nullable=False) or ""
        if len(notes) > NOTES_MAX:
            raise InvalidFieldError("notes", f"at most {NOTES_MAX} characters, got {len(notes)}")
        values["description"] = notes
    if "follow_up_at" in body:
        values["follow_up_at"] = _when(body["follow_up_at"])
    if "sale_amount" in body:
        values["sale_amount"] = money("sale_amount", body["sale_amount"])
    do_not_call = body.get("do_not_call", False)
    if not isinstance(do_not_call, bool):
        raise InvalidFieldError("do_not_call", f"expected true or false, got {do_not_call!r}")
    try:
        changes = CallRecordUpdate(**values)
    except InvalidFieldError as exc:
        field = "notes" if exc.field == "description" else exc.field
        raise InvalidFieldError(field, exc.problem) from None
    return Disposition(writer=writer, changes=changes, do_not_call=do_not_call)


def call_agents(agent_id: str | None, hops: Iterable[str] = (), live_agent: str | None = None) -> tuple[str, ...]:
    """The agents whose call it was, earliest first: each agent who handed it on (the
    record's transfer hops, :func:`callcenter.transfer.hop`), then the call's agent now.

    ``agent_id`` is the record's agent: the last agent once the call ended, but while it
    is under way the agent it was first offered to, who may never have answered. So a call
    under way passes the agent a queue connected it to (``live_agent``), who replaces it.
    A hop that cannot be read names no one.
    """
    agents: list[str] = []
    for text in hops:
        try:
            handed_on_by = parse_hop(text)[0]
        except ValueError:
            continue
        if handed_on_by is not None and handed_on_by not in agents:
            agents.append(handed_on_by)
    now = live_agent if live_agent is not None else agent_id
    if now is not None:
        if now in agents:
            agents.remove(now)
        agents.append(now)
    return tuple(agents)


def check_writer(settings: Settings, writer: str, agents: Sequence[str]) -> None:
    """Raise :class:`DispositionRefused` unless ``writer`` may disposition a call of ``agents``
    (:func:`call_agents`: every agent whose call it was, the call's agent now last).

    Each of those agents may: the one who handed the customer on after a sale records it as
    the one who took them over records the rest. So may a manager, and a lead of the team of
    one of them. A call no agent took (an IVR-only call, an abandoned one) may be
    dispositioned by leads and managers.
    """
    try:
        who = settings.agent(writer)
    except KeyError:
        raise DispositionRefused(f"unknown agent id {writer!r}") from None
    if writer in agents or (who.role in ("lead", "manager") and not agents):
        return
    teams: list[str] = []
    for agent in agents:
        try:
            team = settings.agent(agent).team
        except KeyError:
            team = ""
        if who.oversees(team):
            return
        teams.append(f"agent {agent} of team {team or 'none'}")
    if agents and who.role == "lead":
        raise DispositionRefused(f"a lead dispositions only their own team's calls ({who.team or 'none'}); "
                                 f"this call was taken by {', '.join(teams)}")
    taken = ", ".join(f"agent {agent}" for agent in agents) or "no agent"
    raise DispositionRefused(f"agent {writer} may disposition only their own calls; this call was taken by {taken}")


def seller(writer: str, agents: Sequence[str]) -> str | None:
    """Who a sale written by ``writer`` on a call of ``agents`` is paid to: the writer if it
    was their call (the agent who sold, then handed the customer on), else (a lead or
    manager writing it) the call's agent now."""
    if writer in agents:
        return writer
    return agents[-1] if agents else None


def _text(field: str, value: object, *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        expected = "a string or null" if nullable else "a string"
        raise InvalidFieldError(field, f"expected {expected}, got {value!r}")
    return value.strip()


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFieldError("follow_up_at", f"expected an ISO 8601 time such as 2026-12-07T10:00:00+08:00, "
                                                f"got {value!r}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFieldError("follow_up_at", f"not an ISO 8601 time: {value!r}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidFieldError("follow_up_at", f"give the UTC offset (e.g. {value}+08:00), got {value!r}")
    try:
        when.astimezone(UTC)  # stored in UTC: 0001-01-01T00:00+08:00 has no UTC time
    except OverflowError:
        raise InvalidFieldError("follow_up_at", f"out of range: {value!r}") from None
    return when
