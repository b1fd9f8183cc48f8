"""The team lead's page: their team live, listen/whisper/barge, the morning hand-out, QA scoring.

``GET /lead/<id>`` (served by :class:`callcenter.http_api.LeadPage`) gathers on one page
what a team lead does from the lead seat, each with a plain HTML form posting to
``/lead/<id>/<action>`` and coming back with what happened:

- the team's agents, their state and for how long, and for an agent on a call the buttons
  to listen, whisper or barge (the lead's phone rings into ChanSpy, as with
  ``POST /api/supervisor/spy``);
- per campaign, who of the team holds how many leads (waiting, dialing, done), a form to
  share the team's leads among its agents (N each, or all) and one to take back what was
  not dialed; a manager (IT) also gives the team leads of IT's pool and picks the team;
- today's QA sample of the team's recorded calls (an agent's part of a call handed on
  between agents), each with a player for that part's recording
  (``/lead/<id>/recording/<ticket>?recording=<id>``), who has scored it, and the scorecard
  to fill in.

The same rules as the API apply, through the same functions (:mod:`callcenter.dialer.handout`,
:mod:`callcenter.qa`, :mod:`callcenter.supervisor`). This module is pure: it renders a
:class:`LeadView` (every value escaped) and turns the posted forms into the API's bodies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from callcenter.agent_time import AgentTime, hms, pauses
from callcenter.qa import RATING_MAX, QaCandidate
from callcenter.recording_files import format_of, player
from callcenter.settings import AgentSettings, QaItem
from callcenter.spy_modes import SpyMode
from callcenter.storage.dialer_records import LeadHolding
from callcenter.storage.records import InvalidFieldError, is_digits, whole_number
from callcenter.wallboard_page import clock_time, html_table, share

__all__ = ["CampaignHoldings", "LeadView", "TeamAgent", "form_handout", "form_review", "form_sms",
           "render_lead_page"]

SPY_MODES: Final = tuple(mode.value for mode in SpyMode)
_ON_A_CALL: Final = ("ringing", "on_call")

_STYLE: Final = """
body { font-family: sans-serif; margin: 1em; max-width: 70em; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; } th, td { padding: .2em .7em; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; } form.inline { display: inline; margin-right: .3em; }
.msg { background: #e6f4e6; padding: .4em; } .err { background: #fbe3e3; padding: .4em; } .muted { color: #666; }
"""


@dataclass(frozen=True)
class TeamAgent:
    """One agent of the team as the board shows them."""

    agent: AgentSettings
    state: str
    state_seconds: float | None
    today: AgentTime | None = None
    """Where their time went today so far (None: not logged in today)."""
    consulting: str | None = None
    """The colleague they consult while their caller holds (None: no consult)."""


@dataclass(frozen=True)
class CampaignHoldings:
    """One campaign's leads as the team holds them (and IT's pool, for a manager)."""

    name: str
    handout: str
    holdings: Sequence[LeadHolding]


@dataclass(frozen=True)
class LeadView:
    """What the lead's page shows, gathered by the resource."""

    person: AgentSettings
    team: str
    teams: Sequence[str]
    """The teams the person may pick (a manager: every team with agents; a lead: their own)."""
    agents: Sequence[TeamAgent]
    campaigns: Sequence[CampaignHoldings]
    sample: Sequence[QaCandidate]
    scorecard: Sequence[QaItem]
    timezone: str
    message: str = ""
    error: str = ""
    sms: bool = False
    """SMS is on: each campaign has a form to text the leads the team holds (docs/sms.md)."""


def _action(view: LeadView, action: str) -> str:
    return f"/lead/{quote(view.person.id)}/{action}"


def _hidden(**values: str) -> str:
    return "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in values.items())


def _state(member: TeamAgent) -> str:
    state = member.state.replace("_", " ")
    return f"{state}, consulting {member.consulting}" if member.consulting else state


def _agents(view: LeadView) -> str:
    rows = []
    for member in view.agents:
        spy = ""
        if member.state in _ON_A_CALL:
            spy = "".join(
                f'<form class="inline" method="post" action="{_action(view, "spy")}">'
                f'{_hidden(agent=member.agent.id, mode=mode, team=view.team)}<button>{mode}</button></form>'
                for mode in SPY_MODES)
        # an agent paused for not answering, or gone home logged in: the lead brings them back or out
        for action, label, shown in (("unpause", "unpause", member.state == "paused"),
                                     ("logout", "log out", member.state in ("ready", "paused", "wrap_up"))):
            if shown:
                spy += (f'<form class="inline" method="post" action="{_action(view, action)}">'
                        f'{_hidden(agent=member.agent.id, team=view.team)}<button>{label}</button></form>')
        since = "-" if member.state_seconds is None else clock_time(member.state_seconds)
        day = member.today
        today = ("<td class=n>-</td>" * 4 if day is None else
                 "".join(f"<td class=n>{escape(text)}</td>" for text in (
                     hms(day.logged_in), hms(day.on_call), hms(day.paused), share(day.occupancy))))
        pauses_today = "" if day is None else escape(pauses(day))
        rows.append(f"<tr><td>{escape(member.agent.id)}</td><td>{escape(member.agent.name)}</td>"
                    f"<td>{escape(_state(member))}</td><td class=n>{escape(since)}</td>"
                    f"{today}<td>{pauses_today}</td><td>{spy}</td></tr>")
    return html_table(["agent", "name", "state", "for", "logged in today", "on calls", "paused", "occupancy",
                       "pauses", "supervise"], rows, "no agents in this team")


def _campaign(view: LeadView, campaign: CampaignHoldings) -> str:
    team_rows = [h for h in campaign.holdings if h.team == view.team]
    pool = next((h.waiting for h in campaign.holdings if h.team is None), 0)
    rows = [f"<tr><td>{escape(h.agent_id or 'the team (not given to an agent)')}</td><td class=n>{h.waiting}</td>"
            f"<td class=n>{h.dialing}</td><td class=n>{h.done}</td></tr>" for h in team_rows]
    hidden = _hidden(campaign=campaign.name, team=view.team)
    parts = [f"<h3>{escape(campaign.name)} <span class=muted>(handout: {escape(campaign.handout)})</span></h3>",
             html_table(["holder", "waiting", "dialing", "done"], rows, f"team {view.team} holds no leads of it")]
    if view.person.role == "manager":
        parts.append(f'<form method="post" action="{_action(view, "handout")}">{hidden}'
                     f'Give team {escape(view.team)} <input type="number" name="count" min="1" required '
                     f'style="width: 7em"> of the {pool} leads in IT\'s pool <button>give</button></form>')
    parts.append(f'<form method="post" action="{_action(view, "handout")}">{hidden}{_hidden(agents="all")}'
                 'Share the team\'s leads among its agents: <input type="number" name="each" min="1" '
                 'placeholder="all" style="width: 6em"> each <button>share</button></form>')
    parts.append(f'<form method="post" action="{_action(view, "takeback")}">{hidden}{_hidden(agents="all")}'
                 "<button>take back what the agents did not dial</button></form>")
    if view.sms:
        parts.append(f'<form method="post" action="{_action(view, "sms")}">{hidden}'
                     f"Text the leads team {escape(view.team)} holds: "
                     '<input type="text" name="name" required placeholder="name, e.g. spring offer" '
                     'style="width: 12em"> <textarea name="template" required rows="2" cols="50" '
                     'placeholder="{name}您好，..."></textarea> <button>send</button><br><span class=muted>'
                     "{name}, {phone} and the leads' CSV columns are filled in; the signature and the "
                     "opt-out note are added.</span></form>")
    return "".join(parts)


def _rating(item: QaItem, part: str) -> str:
    options = '<option value="na">n/a</option>' + "".join(
        f'<option value="{r}"{" selected" if r == RATING_MAX else ""}>{r}</option>' for r in range(RATING_MAX + 1))
    critical = " <b>(critical)</b>" if item.critical else ""
    return (f'<label>{escape(item.label)}{critical} <select name="rating_{escape(item.id)}" '
            f'id="{escape(part)}-{escape(item.id)}">{options}</select></label><br>')


def _paused(pauses: Sequence[tuple[float, float]]) -> str:
    """Where the agent paused the recording (silence in the file), for the reviewer."""
    if not pauses:
        return ""
    spans = ", ".join(f"{clock_time(start)}-{clock_time(end)}" for start, end in pauses)
    return f"<br><span class=muted>recording paused by the agent (card numbers): {spans}</span>"


def _scored(call: QaCandidate) -> str:
    if not call.reviewed_by:
        return " <span class=muted>(to score)</span>"
    return f" <b>scored by {escape(', '.join(call.reviewed_by))}</b>"


def _qa(view: LeadView, tz: ZoneInfo) -> str:
    if not view.sample:
        return "<p class=muted>No recorded calls of the team to score today.</p>"
    parts = []
    for call in view.sample:
        recording = "" if call.recording_id is None else str(call.recording_id)
        source = _action(view, "recording/" + quote(call.ticket)) + (f"?recording={recording}" if recording else "")
        head = (f"<p><b>{escape(call.ticket)}</b>, agent {escape(call.agent_id)}, "
                f"{call.started_at.astimezone(tz):%H:%M}, talk {clock_time(call.talk_seconds)}{_scored(call)}<br>"
                f"{player(source, format_of(call.recording), call.ticket)} "
                f"<code class=muted>{escape(call.recording)}</code>{_paused(call.pauses)}</p>")
        items = "".join(_rating(item, f"{call.ticket}-{recording}") for item in view.scorecard)
        parts.append(f'{head}<form method="post" action="{_action(view, "qa")}">'
                     f"{_hidden(ticket=call.ticket, recording=recording, team=view.team)}{items}"
                     '<label>Comment <input type="text" name="comment" style="width: 30em"></label> '
                     "<button>save score</button></form>")
    return "".join(parts)


def render_lead_page(view: LeadView) -> str:
    """The whole page (no self-reload: forms are being filled in; a refresh link instead)."""
    tz = ZoneInfo(view.timezone)
    person = view.person
    picker = ""
    if len(view.teams) > 1:
        picker = " ".join(
            f"<b>{escape(t)}</b>" if t == view.team else
            f'<a href="/lead/{quote(person.id)}?team={quote(t)}">{escape(t)}</a>' for t in view.teams)
        picker = f"<p>Team: {picker}</p>"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(person.name)}: team {escape(view.team)}</title><style>{_STYLE}</style></head><body>",
        (f"<h1>{escape(person.name)} <span class=muted>({escape(person.id)}, {escape(person.role)}), "
        f"team {escape(view.team)}</span> "
        f'<a href="/lead/{quote(person.id)}?team={quote(view.team)}">refresh</a> '
        '<a href="/signout">sign out</a></h1>'),
        picker,
    ]
    if view.message:
        parts.append(f'<p class="msg">{escape(view.message)}</p>')
    if view.error:
        parts.append(f'<p class="err">{escape(view.error)}</p>')
    parts += ["<h2>Agents</h2>", _agents(view), "<h2>Leads</h2>"]
    parts += [_campaign(view, c) for c in view.campaigns] or ["<p class=muted>The dialer is not running.</p>"]
    parts += ["<h2>QA: today's calls to score</h2>", _qa(view, tz), "</body></html>"]
    return "\n".join(parts)


def _whole(form: Mapping[str, str], name: str) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    return whole_number(name, text)


def form_sms(actor: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The body of ``POST /api/sms/broadcasts`` from a campaign's text form."""
    body: dict[str, Any] = {"by": actor}
    for name in ("campaign", "team", "name", "template"):
        value = form.get(name, "").strip()
        if not value:
            raise InvalidFieldError(name, "the form leaves it empty")
        body[name] = value
    return body


def form_handout(actor: str, form: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(campaign, the body of ``POST /api/dialer/<campaign>/handout`` or ``/takeback``) from a form."""
    campaign = form.get("campaign", "").strip()
    if not campaign:
        raise InvalidFieldError("campaign", "the form names no campaign")
    body: dict[str, Any] = {"by": actor, "team": form.get("team", "").strip()}
    for name in ("count", "each"):
        value = _whole(form, name)
        if value is not None:
            body[name] = value
    if form.get("agents", "").strip() == "all" and "count" not in body:
        body["agents"] = "all"
    return campaign, body


def form_review(reviewer: str, form: Mapping[str, str], scorecard: Sequence[QaItem]
                ) -> tuple[str, dict[str, Any]]:
    """(ticket, the body of ``POST /api/call-records/<ticket>/qa``) from the scorecard form
    (``recording``: the part of the call heard and scored)."""
    ticket = form.get("ticket", "").strip()
    if not ticket:
        raise InvalidFieldError("ticket", "the form names no call")
    recording = form.get("recording", "").strip()
    ratings: dict[str, int | None] = {}
    for item in scorecard:
        text = form.get(f"rating_{item.id}", "").strip()
        if text == "na":
            ratings[item.id] = None
        elif is_digits(text) and len(text) < 4:
            ratings[item.id] = int(text)
        else:
            raise InvalidFieldError(f"ratings.{item.id}", f"expected 0..{RATING_MAX} or n/a, got {text!r}")
    body: dict[str, Any] = {"reviewer": reviewer, "ratings": ratings, "comment": form.get("comment", "").strip()}
    if recording:
        body["recording"] = whole_number("recording", recording)
    return ticket, body
