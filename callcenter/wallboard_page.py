"""The wallboard page: queues, agents and campaigns as one HTML page for a supervisor's screen.

``GET /wallboard`` (served by :class:`callcenter.http_api.WallboardPage`) shows what the
JSON API's ``/api/queues``, ``/api/agents`` and ``/api/dialer`` say, on one page that
reloads itself every few seconds: no JavaScript, nothing to install, readable on the
team-lead seats and the management terminals. This module is pure: it turns the views
into HTML (every value escaped); the resource gathers them.

What stands out on the board (docs/wallboard.md):

- a queue whose longest-waiting caller has waited longer than its service-level target
  (``alert``), and a service level under :data:`SERVICE_LEVEL_WARN` (``low``);
- each agent's state with how long they have been in it, and the pause reason;
- each campaign's calls in flight and abandonment, with the abandonment guard's reason
  when it holds the campaign to one call per ready agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from callcenter.settings import AgentSettings
from callcenter.state.agents import NO_ANSWER

__all__ = ["SERVICE_LEVEL_WARN", "Board", "clock_time", "html_table", "render_wallboard", "share"]

SERVICE_LEVEL_WARN: Final = 0.8
"""A day's service level under this is shown as low (the industry's usual 80/20 goal)."""

_STYLE: Final = """
body { font-family: sans-serif; background: #111; color: #eee; margin: 1em; }
h1 { font-size: 1.4em; margin: 0 0 .5em 0; } h2 { font-size: 1.1em; margin: 1em 0 .3em 0; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .25em .6em; border-bottom: 1px solid #333; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
tr.alert td, p.alert { background: #5a1010; } td.low { color: #ff8080; font-weight: bold; }
td.ready { color: #7fdc7f; } td.ringing, td.on_call { color: #ffd866; } td.wrap_up { color: #9ecbff; }
td.paused { color: #ff9a6b; } td.logged_out { color: #888; }
.muted { color: #999; font-size: .9em; }
"""


@dataclass(frozen=True)
class Board:
    """What the page shows, gathered by the resource at one instant."""

    site: str
    local_time: str
    queues: Sequence[Mapping[str, Any]]
    """:meth:`callcenter.engine.Engine.queue_views` (``/api/queues``)."""
    agents: Sequence[Any]
    """:class:`callcenter.state.agents.Agent` snapshots (``/api/agents``)."""
    people: Mapping[str, AgentSettings]
    campaigns: Sequence[Any]
    """:class:`callcenter.dialer.service.CampaignStatus` (``/api/dialer``); empty without a dialer."""
    now: float
    """The clock the agents' ``since`` is on."""
    refresh_seconds: int = 5
    abandon_limit: float = 0.03
    """A campaign's abandonment over this is shown as high (``dialer.abandon_guard.limit``)."""
    staffing: tuple[str, Any] | None = None
    """(queue, :class:`callcenter.staffing.live.StaffingAdvice`): Erlang's agents needed now
    on the hotline queue, from its traffic (``/api/staffing/hotline``)."""


#: A preview campaign's lead (a caller's call back) waiting longer than this is shown red.
OLD_LEAD_WARN = 8 * 3600.0


def clock_time(seconds: float | None) -> str:
    """``m:ss`` (or ``h:mm:ss`` from an hour), ``-`` for None."""
    if seconds is None:
        return "-"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def waited(seconds: float) -> str:
    """A long wait, coarsely: ``m:ss`` within the hour, ``5 h 20 min`` within two days, else ``3 days``."""
    if seconds < 3600:
        return clock_time(seconds)
    if seconds < 2 * 86400:
        hours, rest = divmod(round(seconds), 3600)
        return f"{hours} h {rest // 60} min"
    return f"{int(seconds // 86400)} days"


def share(value: float | None) -> str:
    """A share as a whole percentage, ``-`` for None."""
    return "-" if value is None else f"{value:.0%}"


def _cell(value: object, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{escape(str(value))}</td>"


def html_table(headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    """A table of ``headers`` and the rendered ``rows`` (``empty`` spans a row when there are none)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(rows) if rows else f'<tr><td class="text muted" colspan="{len(headers)}">{escape(empty)}</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _queue_row(q: Mapping[str, Any]) -> str:
    late = q["waiting"] > 0 and q["longest_wait"] > q["service_level_seconds"]
    sl = q["service_level"]
    agents = q.get("agents", {})
    cells = [
        _cell(q["queue"]), _cell(q["waiting"]), _cell(clock_time(q["longest_wait"]) if q["waiting"] else "-"),
        _cell(q["offered"]), _cell(q["answered"]), _cell(q["abandoned"]),
        _cell(share(sl), "low" if sl is not None and sl < SERVICE_LEVEL_WARN else ""),
        _cell(clock_time(q["asa"])), _cell(clock_time(q["average_talk"])),
        _cell(agents.get("ready", 0)), _cell(agents.get("ringing", 0) + agents.get("on_call", 0)),
        _cell(agents.get("wrap_up", 0)), _cell(agents.get("paused", 0)),
    ]
    return f'<tr{" class=alert" if late else ""}>{"".join(cells)}</tr>'


def _staffing(queue: str, advice: Any, views: Sequence[Mapping[str, Any]]) -> str:
    """One line: the queue's traffic now, the agents Erlang C says it needs, and how many
    are on it (not paused); red when fewer."""
    if advice.agents is None:
        return (f'<p class="muted">{escape(queue)} now: {advice.arrivals} call(s) in the last '
                f"{clock_time(advice.window_seconds)}, none finished yet: no staffing advice</p>")
    view = next((q for q in views if q["queue"] == queue), {})
    states = view.get("agents", {})
    staffed = sum(n for state, n in states.items() if state != "paused")
    short = staffed < advice.agents
    level = "" if advice.service_level is None else f", {advice.service_level:.0%} answered in target"
    return (f'<p{" class=alert" if short else ""}>{escape(queue)} now: {advice.calls_per_hour:.0f} calls/hour, '
            f"AHT {clock_time(advice.aht)}, {advice.traffic:.1f} Erlangs: <b>{advice.agents} agent(s) needed</b>"
            f"{level}; {staffed} on the queue{' (short)' if short else ''}</p>")


def _agent_row(agent: Any, person: AgentSettings | None, now: float) -> str:
    state = agent.state.value
    shown = state.replace("_", " ") + (f" ({agent.pause_reason})" if state == "paused" and agent.pause_reason else "")
    cells = [
        _cell(agent.id), _cell(person.name if person else "", "text"), _cell(person.team if person else "", "text"),
        _cell(shown, state), _cell(clock_time(now - agent.since)),
        _cell(", ".join(agent.queues), "text"), _cell(agent.calls_handled), _cell(clock_time(agent.talk_time)),
    ]
    # paused by Asterisk for letting a call ring out: someone should look (docs/agents.md)
    alert = ' class="alert"' if state == "paused" and agent.pause_reason == NO_ANSWER else ""
    return f"<tr{alert}>{''.join(cells)}</tr>"


def _backlog_cells(backlog: Any, now: float, *, preview: bool) -> list[str]:
    """Leads still to call ("12 (3 due)") and, for a preview campaign (call backs: someone
    waits for each), how long the oldest has waited, red past :data:`OLD_LEAD_WARN`; ``-``
    before the first reading."""
    if backlog is None:
        return [_cell("-"), _cell("-" if preview else "")]
    count = f"{backlog.waiting} ({backlog.due} due)" if backlog.due != backlog.waiting else str(backlog.waiting)
    if not preview:
        return [_cell(count), _cell("")]
    if backlog.oldest is None:
        return [_cell(count), _cell("-")]
    age = max(0.0, now - backlog.oldest.timestamp())
    return [_cell(count), _cell(waited(age), "low" if age > OLD_LEAD_WARN else "")]


def _campaign_row(c: Any, limit: float, now: float) -> str:
    backlog = _backlog_cells(c.backlog, now, preview=c.dial_mode == "preview")
    cells = [
        _cell(c.name), _cell(c.dial_mode, "text"), _cell(c.pacer, "text"), _cell(c.placed), _cell(c.in_flight),
        _cell(c.agents_ready), _cell(c.agents_busy),
        _cell(share(c.abandon_rate), "low" if c.abandon_rate is not None and c.abandon_rate > limit else ""),
        _cell(c.abandon_guard or "-", "text low" if c.abandon_guard else "text"), *backlog,
    ]
    rows = [f"<tr>{''.join(cells)}</tr>"]
    for lane in getattr(c, "lanes", ()):  # route: team: each team's own pacing
        rows.append("<tr>" + "".join([
            _cell(f"↳ {lane.team}", "text"), _cell(lane.queue, "text"), _cell("", "text"), _cell(""),
            _cell(lane.in_flight), _cell(lane.agents_ready), _cell(lane.agents_busy), _cell(""), _cell("", "text"),
            _cell(""), _cell(""),
        ]) + "</tr>")
    return "\n".join(rows)


def render_wallboard(board: Board) -> str:
    """The whole page."""
    queues = html_table(["queue", "waiting", "longest wait", "offered", "answered", "abandoned", "service level",
                     "ASA", "avg talk", "ready", "on a call", "wrap-up", "paused"],
                    [_queue_row(q) for q in board.queues], "no queues")
    agents = sorted(board.agents, key=lambda a: (board.people[a.id].team if a.id in board.people else "", a.id))
    agent_table = html_table(["agent", "name", "team", "state", "for", "queues", "calls", "talk"],
                         [_agent_row(a, board.people.get(a.id), board.now) for a in agents],
                         "no agent is logged in")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{int(board.refresh_seconds)}">',
        f"<title>{escape(board.site)}: wallboard</title><style>{_STYLE}</style></head><body>",
        (f'<h1>{escape(board.site)} <span class="muted">{escape(board.local_time)}, '
         f"every {int(board.refresh_seconds)} s</span></h1>"),
        "<h2>Queues today</h2>", queues,
        *(f'<p class="alert">{escape(q["queue"])}: no primary agent there (logged out, paused or phone '
          "unreachable): its callers ring the overflow agents at once</p>"
          for q in board.queues if q.get("overflow_now")),
    ]
    if board.staffing is not None:
        parts.append(_staffing(*board.staffing, board.queues))
    parts += ["<h2>Agents</h2>", agent_table]
    if board.campaigns:
        parts += ["<h2>Campaigns since the daemon started</h2>",
                  html_table(["campaign", "mode", "pacer", "placed", "in flight", "agents ready", "agents busy",
                              "abandoned", "abandonment guard", "leads to call", "oldest waiting"],
                             [_campaign_row(c, board.abandon_limit, board.now) for c in board.campaigns], "")]
    parts.append("</body></html>")
    return "\n".join(parts)
