"""The agent's page: their state, the screen pop of the call offered to them, the disposition form.

``GET /agent/<id>`` (served by :class:`callcenter.http_api.AgentPage`) is what a seated
agent keeps open beside the softphone: log in, pause with a reason, and when the phone
rings the caller's call record and CRM customer (the screen pop), then the disposition
(outcome, issue type, notes, follow-up time, customer name, sale amount); and the leads of
preview campaigns (the hotline's call-backs, handed-out leads) to dial or skip. Plain HTML
forms, no JavaScript: the forms post to ``/agent/<id>/<action>`` and come back to the page
with what happened.

The page reloads itself (every :data:`REFRESH_SECONDS`) while the agent waits for a call,
so the next call pops up by itself; it stops while a call is on screen without an outcome
(ringing, talking, in wrap-up, or after it), so a half-written disposition is never
wiped. Saving an outcome starts the reloading again.

This module is pure: :func:`render_agent_page` turns an :class:`AgentView` into HTML (every
value escaped) and :func:`disposition_body` turns the posted form into the JSON body
:func:`callcenter.disposition.parse_disposition` checks, so the page and the API accept
the same dispositions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from callcenter.agent_time import AgentTime, hms, pauses
from callcenter.privacy import mask_number, mask_numbers_in
from callcenter.recording_files import player
from callcenter.settings import AgentSettings
from callcenter.state.agents import CANNOT_CALL_OUT, NO_ANSWER
from callcenter.storage.dialer_records import DncEntry, LeadToDial
from callcenter.storage.records import CallRecord, Customer, InvalidFieldError
from callcenter.transfer import AGENT_TARGET_PREFIX, parse_hop
from callcenter.wallboard_page import clock_time, html_table, share

__all__ = [
    "OUTCOMES",
    "PAUSE_REASONS",
    "REFRESH_SECONDS",
    "AgentView",
    "disposition_body",
    "refreshes",
    "render_agent_page",
]

REFRESH_SECONDS: Final = 3
#: States in which the agent cannot start a call of their own (the agent service's rule).
_BUSY_STATES: Final = frozenset(state.value for state in CANNOT_CALL_OUT)
OUTCOMES: Final = ("resolved", "sale", "follow-up", "callback", "not interested", "wrong number", "escalated")
"""Suggested outcomes (the field is free text, as in the API)."""
PAUSE_REASONS: Final = ("break", "lunch", "training", "meeting", "after-call work")

_STYLE: Final = """
body { font-family: sans-serif; margin: 1em; max-width: 60em; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.2em; }
.state { font-weight: bold; } .msg { background: #e6f4e6; padding: .4em; } .err { background: #fbe3e3; padding: .4em; }
form.inline { display: inline; margin-right: .5em; }
table.facts td { padding: .15em .8em .15em 0; vertical-align: top; } table.facts td:first-child { color: #555; }
th, td { padding: .15em .8em .15em 0; text-align: left; vertical-align: top; }
label { display: block; margin-top: .4em; } input[type=text], textarea { width: 100%; max-width: 40em; }
.vip { color: #b00; font-weight: bold; } .muted { color: #666; }
"""


@dataclass(frozen=True)
class AgentView:
    """What the agent's page shows, gathered by the resource at one instant."""

    agent: AgentSettings
    state: str
    """The agent's state (``logged_out``, ``ready``, ``ringing``, ``on_call``, ``wrap_up``, ``paused``)."""
    state_seconds: float | None
    """How long they have been in it (None: not on the board, i.e. logged out)."""
    pause_reason: str | None
    timezone: str
    record: CallRecord | None = None
    """The call last offered to the agent (the screen pop), as stored now."""
    customer: Customer | None = None
    do_not_call: DncEntry | None = None
    """The caller's number is on the do-not-call list: no sales offers (and the form says so)."""
    preview_campaigns: Sequence[str] = ()
    """Preview campaigns the agent may ask a lead of (e.g. the hotline's call-backs)."""
    held: tuple[str, LeadToDial] | None = None
    """(campaign, lead) the agent previews now: to dial or skip."""
    auto_dial: Mapping[str, int] = field(default_factory=dict)
    """Preview campaigns that dial the agent's next lead for them: name -> seconds ready first."""
    auto_dial_held: bool = False
    """Auto-dial stopped for the agent: their phone did not answer it."""
    sms: bool = False
    """SMS is on: the screen pop offers to text the caller the ticket number."""
    follow_ups: Sequence[CallRecord] = ()
    """The agent's calls to follow up by the end of today, earliest first (still to do)."""
    do_not_call_numbers: frozenset[str] = frozenset()
    """Numbers of ``follow_ups`` on the do-not-call list (flagged: no sales offers)."""
    block_do_not_call: bool = False
    """``manual_dial.do_not_call: block``: listed numbers get no "Call" button."""
    now: datetime | None = None
    """When the page was made: a follow-up due before it is overdue."""
    today: AgentTime | None = None
    """Where the agent's time went today so far (None: not logged in today, or not read)."""
    find: str = ""
    """What the agent looked for in the CRM (``?find=``)."""
    found: Sequence[Customer] | None = None
    """The customers matching ``find`` (None: nothing looked for)."""
    history: Sequence[CallRecord] = ()
    """The caller's earlier calls (the customer's, else the number's), newest first."""
    transfer_queues: Sequence[str] = ()
    """Queues the agent may hand a call on to (shown while they talk)."""
    transfer_agents: Sequence[tuple[str, str]] = ()
    """(id, name) of the agents ready now, whom the agent may hand a call to."""
    transfers: Sequence[str] = ()
    """The call's transfer hops so far (``AGENT>QUEUE@SECONDS``): live, or from its record."""
    held_message: str = ""
    """The call back held in preview has a message the caller left (a player is shown)."""
    consulting: tuple[str, bool] | None = None
    """The colleague the agent consults while the caller holds, and whether they answered."""
    recording: tuple[bool, float | None, int] | None = None
    """While the agent talks on a recorded call: (paused, seconds paused, the pause limit in
    seconds, 0: none); None: no recorded call."""
    message: str = ""
    """What the last action did (shown in green)."""
    error: str = ""
    """Why the last action failed (shown in red)."""
    masked: bool = False
    """Customers' numbers are shown masked (``138****8000``): an agent looks, and
    ``privacy.agent_numbers`` is ``masked``. The buttons name the call or customer, never the number."""

    def number(self, phone: str | None) -> str:
        """``phone`` as this page shows it ("" for none)."""
        return "" if not phone else mask_number(phone) if self.masked else phone

    def text(self, text: str) -> str:
        """A message (what happened, why not) as this page shows it: numbers in it masked."""
        return mask_numbers_in(text) if self.masked else text


def refreshes(view: AgentView) -> bool:
    """Whether the page reloads itself: while the agent waits, unless a call without an
    outcome is on screen (its disposition form must not be wiped) or a previewed lead waits
    to be dialed or skipped."""
    waiting = view.state in ("ready", "paused", "logged_out")
    return waiting and view.held is None and (view.record is None or bool(view.record.outcome))


def _local(when: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if when is None else when.astimezone(tz).strftime(fmt)


def _facts(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows if v not in (None, ""))
    return f'<table class="facts">{body}</table>'


def _button(agent_id: str, action: str, label: str, extra: str = "") -> str:
    return (f'<form class="inline" method="post" action="/agent/{quote(agent_id)}/{action}">{extra}'
            f'<button type="submit">{escape(label)}</button></form>')


def _call_button(view: AgentView, phone: str | None, label: str, *, ticket: str | None = None,
                 customer_id: int | None = None) -> str:
    """A button calling ``phone`` for the agent (their phone rings first); none while they are
    on a call or logged out, or without a number. It names the call (``ticket``: its number,
    name and customer) or else the CRM customer, and the daemon looks the number up: the
    page never carries a number it shows masked."""
    if not phone or view.state in _BUSY_STATES:
        return ""
    listed = phone in view.do_not_call_numbers or (
        view.do_not_call is not None and view.record is not None and phone == view.record.phone)
    if view.block_do_not_call and listed:
        return '<span class="muted">not called: on the do-not-call list</span>'
    hidden = {"ticket": ticket} if ticket else {"customer_id": str(customer_id)} if customer_id is not None \
        else {"phone": phone}
    extra = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in hidden.items())
    return _button(view.agent.id, "call", label, extra)


def _dial_pad(view: AgentView) -> str:
    """Any number, typed: the agent's own call (docs/agents.md, "Calling a customer")."""
    if view.state in _BUSY_STATES:
        return ""
    return _button(view.agent.id, "call", "Call",
                   '<input type="tel" name="phone" placeholder="a number to call" required style="width: 10em"> ')


def _controls(view: AgentView) -> str:
    agent_id = view.agent.id
    if view.state == "logged_out":
        return _button(agent_id, "login", "Log in")
    reasons = "".join(f'<option value="{escape(r)}">' for r in PAUSE_REASONS)
    pause = ('<input type="text" name="reason" list="pause-reasons" placeholder="reason" required '
             f'style="width: 10em"><datalist id="pause-reasons">{reasons}</datalist>')
    parts = [_button(agent_id, "unpause", "Ready") if view.state == "paused" else _button(agent_id, "pause", "Pause",
                                                                                         pause)]
    parts.append(_button(agent_id, "logout", "Log out"))
    parts.append(_dial_pad(view))
    return "".join(parts)


def _recording_controls(view: AgentView) -> str:
    """While talking on a recorded call: pause the recording while the customer reads out a
    card number, and resume it (docs/agents.md, "Pausing the recording")."""
    assert view.recording is not None
    paused, seconds, limit = view.recording
    if not paused:
        return f'<p>{_button(view.agent.id, "recording-pause", "Pause recording")}' \
               '<span class="muted"> (card numbers: the recording keeps silence instead)</span></p>'
    until = f"; it resumes by itself after {clock_time(limit)}" if limit else ""
    return (f'<p class="err">Recording paused for {clock_time(seconds)}{until}. '
            f'{_button(view.agent.id, "recording-resume", "Resume recording")}</p>')


def _consult_controls(view: AgentView) -> str:
    """While the caller holds for a consult: hand them over (once the colleague answered) or
    take them back (docs/agents.md, "Consult first")."""
    assert view.consulting is not None
    target, answered = view.consulting
    name = dict(view.transfer_agents).get(target, "")
    status = "talking" if answered else "ringing"
    handover = (_button(view.agent.id, "consult-complete", "Hand over")
                + _button(view.agent.id, "consult-conference", "Three-way")) if answered else ""
    who = f"{target} {name}" if name else target  # a colleague's name; an outside number alone
    return (f'<span class="consult">Consulting {escape(who)} ({status}); the caller holds. '
            f'</span>{handover}{_button(view.agent.id, "consult-cancel", "Back to the caller")}')


def _transfer_form(view: AgentView) -> str:
    """While the agent talks: hand the caller on to a queue or an agent (docs/agents.md,
    "Handing a call on"), or consult an agent first; while consulting, the consult's buttons."""
    if view.consulting is not None:
        return _consult_controls(view)
    if view.state != "on_call":
        return ""
    # an outside number (a supplier, a colleague's mobile) can always be consulted first
    outside = _button(view.agent.id, "consult-number", "Consult a number",
                      '<input name="phone" size="14" inputmode="tel" aria-label="number to consult"> ')
    if not (view.transfer_queues or view.transfer_agents):
        return outside
    queues = "".join(f'<option value="queue:{escape(q)}">{escape(q)}</option>' for q in view.transfer_queues)
    agents = "".join(f'<option value="agent:{escape(a)}">{escape(a)} {escape(name)}</option>'
                     for a, name in view.transfer_agents if a != view.agent.id)
    groups = (f'<optgroup label="queues">{queues}</optgroup>' if queues else "") + (
        f'<optgroup label="agents ready now">{agents}</optgroup>' if agents else "")
    transfer = _button(view.agent.id, "transfer", "Transfer",
                       f'<select name="to" aria-label="transfer to">{groups}</select> ')
    if not agents:
        return transfer + outside
    colleagues = "".join(f'<option value="{escape(a)}">{escape(a)} {escape(name)}</option>'
                         for a, name in view.transfer_agents if a != view.agent.id)
    return transfer + _button(view.agent.id, "consult", "Consult first",
                              f'<select name="to_agent" aria-label="consult">{colleagues}</select> ') + outside


def describe_hops(hops: Sequence[str]) -> str:
    """``1001>billing@125`` -> ``1001 to billing at 2:05`` (each hop, in order)."""
    described = []
    for text in hops:
        try:
            agent, target, offset = parse_hop(text)
        except ValueError:
            described.append(text)
            continue
        if target.startswith(AGENT_TARGET_PREFIX):
            target = "agent " + target.removeprefix(AGENT_TARGET_PREFIX)
        described.append(f"{agent or 'a phone'} to {target} at {clock_time(offset)}")
    return "; ".join(described)


def _history(view: AgentView, tz: ZoneInfo) -> str:
    """The caller's earlier calls: when, the ticket, who took it, what came of it."""
    rows = ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in (
        _local(r.started_at, tz), r.ticket_number, r.direction, r.agent_id or "-", view.text(r.outcome or "-"),
        view.text((r.description[:80] + "...") if len(r.description) > 80 else r.description or "-"),
        "-" if r.csat is None else str(r.csat))) + "</tr>" for r in view.history]
    return html_table(("When", "Ticket", "Direction", "Agent", "Outcome", "Notes", "CSAT"), rows,
                      "No earlier calls from this caller.")


def _crm_form(view: AgentView, record: CallRecord) -> str:
    """Save a new caller to the CRM (linking this call), or change a known customer's notes."""
    agent = quote(view.agent.id)
    customer = view.customer
    if customer is not None:
        return (f'<form method="post" action="/agent/{agent}/customer">'
                f'<input type="hidden" name="customer_id" value="{customer.id}">'
                f'<label>Customer notes <textarea name="notes" rows="2">{escape(customer.notes)}</textarea></label>'
                + _text_input("email", "Email", customer.email)
                + "<button>Save the customer</button></form>")
    if not record.phone:
        return ""
    return (f'<form method="post" action="/agent/{agent}/customer">'
            f'<input type="hidden" name="ticket" value="{escape(record.ticket_number)}">'
            + _text_input("name", "Name", record.customer_name, " required")
            + _text_input("email", "Email", None)
            + '<label>Customer notes <textarea name="notes" rows="2"></textarea></label>'
            f"<button>Add {escape(view.number(record.phone))} to the CRM</button></form>")


def _text_input(name: str, label: str, value: str | None, extra: str = "") -> str:
    return (f'<label>{escape(label)} <input type="text" name="{name}" value="{escape(value or "")}"{extra}>'
            "</label>")


def _disposition_form(view: AgentView, record: CallRecord, tz: ZoneInfo) -> str:
    outcomes = "".join(f'<option value="{escape(o)}">' for o in OUTCOMES)
    follow_up = _local(record.follow_up_at, tz, "%Y-%m-%dT%H:%M")
    sale = "" if record.sale_amount is None else f"{record.sale_amount:.2f}"
    return "".join([
        f'<form method="post" action="/agent/{quote(view.agent.id)}/disposition">',
        f'<input type="hidden" name="ticket" value="{escape(record.ticket_number)}">',
        _text_input("outcome", "Outcome", record.outcome, ' list="outcomes" required'),
        f'<datalist id="outcomes">{outcomes}</datalist>',
        _text_input("issue_type", "Issue type", record.issue_type),
        f'<label>Notes <textarea name="notes" rows="4">{escape(record.description)}</textarea></label>',
        (f'<label>Follow up at <input type="datetime-local" name="follow_up_at" value="{escape(follow_up)}"> '
        f'<span class="muted">({escape(view.timezone)})</span></label>'),
        _text_input("customer_name", "Customer name", record.customer_name),
        _text_input("sale_amount", "Sale amount (yuan)", sale, ' inputmode="decimal" placeholder="1999.00"'),
        ('<p class="muted">The number is on the do-not-call list already.</p>' if view.do_not_call is not None else
         '<label><input type="checkbox" name="do_not_call" value="yes"> The customer asks not to be called '
         "again (their number goes on the do-not-call list: no more calls or texts from the dialer)</label>"),
        '<p><button type="submit">Save disposition</button></p></form>',
    ])


def _preview(view: AgentView) -> str:
    """The preview section: the lead held (dial or skip it), or a button per campaign."""
    if view.held is not None:
        campaign, lead = view.held
        facts = _facts([("Campaign", campaign), ("Name", lead.name), ("Phone", view.number(lead.phone)),
                        ("Attempt", lead.attempt_no),
                        *((column, view.text(value)) for column, value in sorted(lead.extra.items()))])
        skip = ('<input type="text" name="reason" placeholder="why not now" required style="width: 14em"> '
                '<input type="number" name="retry_minutes" min="1" value="60" style="width: 5em"> min')
        message = ""
        if view.held_message and lead.extra.get("ticket"):
            source = f"/agent/{quote(view.agent.id)}/message/{quote(lead.extra['ticket'])}"
            message = f"<p>The caller's message: {player(source, view.held_message, lead.extra['ticket'])}</p>"
        return (f"<h2>Preview: the next lead</h2>{facts}{message}<p>"
                + _button(view.agent.id, "dial", "Dial (your phone rings first)")
                + _button(view.agent.id, "skip", "Skip", skip) + "</p>")
    if not view.preview_campaigns or view.state == "logged_out":
        return ""
    buttons = "".join(_button(view.agent.id, "preview", f"Next lead: {name}", f'<input type="hidden" '
                              f'name="campaign" value="{escape(name)}">') for name in view.preview_campaigns)
    notes = "".join(f'<p class="muted">{escape(name)}: your next lead is dialed for you once you are ready for '
                    f"{seconds} s (your phone rings first); pause to stop it.</p>"
                    for name, seconds in view.auto_dial.items())
    if view.auto_dial_held:
        notes += ('<p class="err">Auto-dial stopped: your phone did not answer. Pause and come back (or take a '
                  "lead by hand) to start it again.</p>")
    return f"<h2>Preview</h2><p>{buttons}</p>{notes}"


def _crm_search(view: AgentView) -> str:
    """Find a customer by number or name, and call them (docs/crm.md)."""
    agent = quote(view.agent.id)
    form = (f'<form class="inline" method="get" action="/agent/{agent}">'
            f'<input type="search" name="find" value="{escape(view.find)}" placeholder="a number or a name" '
            'aria-label="find a customer" style="width: 12em"> <button>Find a customer</button></form>')
    if view.found is None:
        return f"<p>{form}</p>"
    rows = [f"<tr><td>{escape(c.name)}{' <span class=vip>VIP</span>' if c.vip else ''}</td>"
            f"<td>{escape(view.number(c.phone))}{_dnc_flag(view, c.phone)}</td><td>{escape(c.notes)}</td>"
            f"<td>{_call_button(view, c.phone, 'Call', customer_id=c.id)}</td></tr>" for c in view.found]
    table = html_table(["customer", "phone", "notes", ""], rows, f"No customer matches {view.find!r}.")
    return f"<p>{form}</p>{table}"


def _follow_ups(view: AgentView, tz: ZoneInfo) -> str:
    """Today's follow-ups: when, the call, the customer and what was said; overdue in red."""
    if not view.follow_ups:
        return ""
    today = view.now.astimezone(tz).date() if view.now is not None else None
    rows = []
    for record in view.follow_ups:
        due = record.follow_up_at
        assert due is not None
        when = _local(due, tz, "%H:%M" if due.astimezone(tz).date() == today else "%Y-%m-%d %H:%M")
        late = view.now is not None and due < view.now
        rows.append(f'<tr><td{" class=err" if late else ""}>{escape(when)}{" (overdue)" if late else ""}</td>'
                    f"<td>{escape(record.ticket_number)}</td><td>{escape(record.customer_name or '')}</td>"
                    f"<td>{escape(view.number(record.phone))}{_dnc_flag(view, record.phone)}</td>"
                    f"<td>{escape(view.text(record.outcome or ''))}</td>"
                    f"<td>{escape(view.text(record.description or ''))}</td>"
                    f"<td>{_call_button(view, record.phone, 'Call', ticket=record.ticket_number)}</td>"
                    "</tr>")
    table = html_table(["due", "ticket", "customer", "phone", "outcome", "notes", ""], rows, "")
    return (f"<h2>Follow-ups due today ({len(rows)})</h2>{table}"
            '<p class="muted">A follow-up leaves this list once the customer has been called again.</p>')


def _dnc_flag(view: AgentView, phone: str | None) -> str:
    """`` (do not call)`` in red after a number on the do-not-call list."""
    return ' <span class="err">(do not call)</span>' if phone and phone in view.do_not_call_numbers else ""


def _today(day: AgentTime) -> str:
    """Today so far: ``Today: logged in 3:10:00, on calls 1:20:00, wrap-up ..., paused ... (lunch ...), occupancy 62%``."""
    paused = hms(day.paused) + (f" ({pauses(day)})" if day.paused_by_reason else "")
    return (f"Today: logged in {hms(day.logged_in)}, on calls {hms(day.on_call)}, wrap-up {hms(day.wrap_up)}, "
            f"paused {paused}, occupancy {share(day.occupancy)}")


def render_agent_page(view: AgentView) -> str:
    """The whole page."""
    tz = ZoneInfo(view.timezone)
    agent = view.agent
    state = view.state.replace("_", " ")
    if view.state == "paused" and view.pause_reason:
        state += f" ({view.pause_reason})"
    since = "" if view.state_seconds is None else f" for {clock_time(view.state_seconds)}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">']
    if refreshes(view):
        parts.append(f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}; url=/agent/{quote(agent.id)}">')
    parts += [
        f"<title>{escape(agent.name)} ({escape(agent.id)})</title><style>{_STYLE}</style></head><body>",
        f'<h1>{escape(agent.name)} <span class="muted">({escape(agent.id)}, {escape(agent.team or "no team")})</span></h1>',
        (f'<p>State: <span class="state">{escape(state)}</span>{escape(since)} '
        f'<a href="/agent/{quote(agent.id)}">refresh</a> <a href="/signout">sign out</a></p>'),
    ]
    if view.today is not None:
        parts.append(f'<p class="muted">{escape(_today(view.today))}</p>')
    if view.message:
        parts.append(f'<p class="msg">{escape(view.text(view.message))}</p>')
    if view.state == "paused" and view.pause_reason == NO_ANSWER:
        parts.append('<p class="err">A call rang on your phone and nobody answered, so you were paused in '
                     "every queue. Press Ready when you are back.</p>")
    if view.error:
        parts.append(f'<p class="err">{escape(view.text(view.error))}</p>')
    parts.append(f"<p>{_controls(view)}{_transfer_form(view)}</p>")
    if view.recording is not None:
        parts.append(_recording_controls(view))
    parts.append(_preview(view))
    parts.append(_follow_ups(view, tz))
    parts.append(_crm_search(view))
    record = view.record
    if record is None:
        parts.append("<h2>Call</h2><p>No call offered yet: the caller's record appears here when the phone rings.</p>")
    else:
        parts.append(f"<h2>Call {escape(record.ticket_number)}</h2>")
        if view.do_not_call is not None:
            dnc = view.do_not_call
            why = f": {dnc.reason}" if dnc.reason else ""
            parts.append(f'<p class="err">Do not call: {escape(view.number(record.phone))} is on the do-not-call list since '
                         f"{escape(_local(dnc.added_at, tz))} ({escape(dnc.source)}{escape(why)}). "
                         "No sales offers; the dialer and SMS broadcasts leave it alone.</p>")
        parts.append(_facts([
            ("Caller", view.number(record.phone)), ("Direction", record.direction), ("Queue", record.queue),
            ("Started", _local(record.started_at, tz)), ("IVR choices", " > ".join(record.ivr_path)),
            ("Handed on", view.text(describe_hops(view.transfers or record.transfers))),
            ("Waited", clock_time(record.wait_seconds) if record.wait_seconds is not None else None),
            ("Talk", clock_time(record.talk_seconds) if record.talk_seconds is not None else None),
            ("CSAT", record.csat), ("Outcome", view.text(record.outcome or "not recorded yet")),
        ]))
        customer = view.customer
        if customer is not None:
            vip = ' <span class="vip">VIP</span>' if customer.vip else ""
            parts.append(f"<h2>Customer: {escape(customer.name)}{vip}</h2>")
            parts.append(_facts([("Phone", view.number(customer.phone)), ("Email", customer.email),
                                 ("Notes", customer.notes),
                                 ("Customer since", _local(customer.created_at, tz, "%Y-%m-%d"))]))
        elif record.customer_name:
            parts.append(f"<h2>Customer: {escape(record.customer_name)}</h2><p>Not in the CRM yet.</p>")
        else:
            parts.append("<h2>Customer</h2><p>Not in the CRM: a new caller.</p>")
        parts.append(_crm_form(view, record))
        parts.append("<h2>Earlier calls</h2>")
        parts.append(_history(view, tz))
        parts.append(_call_button(view, record.phone, f"Call {view.number(record.phone)} back",
                                  ticket=record.ticket_number))
        if view.sms and record.phone:
            parts.append(f'<form class="inline" method="post" action="/agent/{quote(agent.id)}/sms-ticket">'
                         f'<input type="hidden" name="ticket" value="{escape(record.ticket_number)}">'
                         f"<button>Text the ticket number to {escape(view.number(record.phone))}</button></form>")
        parts.append("<h2>Disposition</h2>")
        parts.append(_disposition_form(view, record, tz))
    parts.append("</body></html>")
    return "\n".join(parts)


def disposition_body(agent_id: str, form: Mapping[str, str], timezone: str) -> tuple[str, dict[str, Any]]:
    """(ticket, the JSON body of ``POST /api/call-records/<ticket>/disposition``) from the
    posted form: fields left empty are not changed; ``follow_up_at`` (the browser's
    ``YYYY-MM-DDTHH:MM``) is a local time of the site's zone. InvalidFieldError names the field."""
    ticket = form.get("ticket", "").strip()
    if not ticket:
        raise InvalidFieldError("ticket", "the form names no call")
    body: dict[str, Any] = {"agent": agent_id}
    for name in ("outcome", "issue_type", "notes", "customer_name", "sale_amount"):
        value = form.get(name, "").strip()
        if value:
            body[name] = value
    if form.get("do_not_call", "").strip():
        body["do_not_call"] = True
    follow_up = form.get("follow_up_at", "").strip()
    if follow_up:
        try:
            local = datetime.fromisoformat(follow_up)
        except ValueError:
            raise InvalidFieldError("follow_up_at", f"expected a date and time, got {follow_up!r}") from None
        if local.tzinfo is None:
            local = local.replace(tzinfo=ZoneInfo(timezone))
        body["follow_up_at"] = local.isoformat()
    return ticket, body
