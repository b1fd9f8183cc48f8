"""The daemon's HTTP JSON API, and its pages: the wallboard (``GET /wallboard``:
:class:`WallboardPage`), the agent's page (``GET /agent/<id>``: :class:`AgentPage`) and the
team lead's page (``GET /lead/<id>``: :class:`LeadPage`), the reports (``GET /reports``:
:class:`ReportsPage`) and the front page linking them (``GET /``: :class:`IndexPage`).

Every request reaches these resources through the sign-in guard
(:mod:`callcenter.web_guard`, docs/web-access.md); a signed-in person acts only as
themselves (:func:`_act_as_signed_in`).

Routes (all JSON; errors are ``{"error": ..., "field": ...}`` with 400/403/404):

* ``GET /api/health``: AMI connection, reconnects, resyncs, live channels and calls;
* ``GET /api/calls``: calls in progress (from the call-state model);
* ``GET /api/call-records?limit=N&agent=ID&queue=NAME``: recent call records;
* ``GET /api/call-records/<ticket>``: one call record;
* ``GET /api/reports/calls?from=DAY&to=DAY&by=day|agent|queue&fcr_days=N``: the call
  report (volume, service level, ASA, AHT, FCR, CSAT; docs/reports.md);
* ``GET /api/reports/commission?from=DAY&to=DAY``: each role's share of the sales;
* ``GET /api/faxes?limit=N``: faxes received and sent; ``POST /api/faxes`` with ``{"to", "tiff"}``
  (the pages, base64) or, from the host's API token only, ``{"to", "file"}``: send a TIFF (docs/fax.md);
* ``POST /api/sms/broadcasts`` with ``{"by", "name", "template", "campaign", "team", "agent"}``
  or ``{"by", "name", "template", "phones"}``: queue an SMS broadcast; ``GET
  /api/sms/broadcasts[/<id>]``: their progress; ``GET /api/sms/replies``: texts received
  (docs/sms.md);
* ``GET /api/reports/sms?from=DAY&to=DAY``: the period's SMS broadcasts and replies (docs/sms.md);
* ``GET /api/qa/sample?reviewer=ID&day=DAY``: the recorded calls (agents' parts of calls) a
  lead or manager is offered to score that day; ``POST /api/call-records/<ticket>/qa`` with
  ``{"reviewer", "ratings", "comment", "recording"}``: the score of the part recorded in
  ``recording``; ``GET /api/reports/qa?from=DAY&to=DAY``: each agent's scores (docs/qa.md);
* ``POST /api/call-records/<ticket>/sms`` with ``{"by": ID}``: text the caller the call's ticket
  number (``sms.ticket_template``; the same people as the disposition);
* ``POST /api/call-records/<ticket>/disposition`` with ``{"agent": ID, "outcome": ...,
  "issue_type": ..., "notes": ..., "follow_up_at": ISO-8601, "customer_name": ...}`` (any of
  them): the agent's disposition of the call (403 unless the call's agent, a lead of that
  agent's team or a manager);
* ``GET /api/staffing/hotline``: live Erlang advice for the hotline queue;
* ``GET /api/queues``: the wallboard: per queue, callers waiting and the longest wait now;
  today's offered, answered, abandoned and unanswered calls, service level, ASA, average
  talk; its agents by state;
* ``GET /api/agents``: every agent's state (ready, ringing, on call, wrap-up, paused);
* ``GET /api/agents/<id>/follow-ups``: the agent's calls to follow up by the end of today
  (overdue ones too), until the customer is called again;
* ``GET /api/agents/<id>/screen-pop``: the call last offered to the agent: its call record
  (ticket, caller, IVR choices) and the CRM customer, available as soon as the phone rings;
* ``POST /api/agents/<id>/login|logout|unpause`` and ``/pause`` with ``{"reason": ...}``;
* ``POST /api/agents/<id>/transfer`` with ``{"queue": NAME}`` or ``{"to_agent": ID}``: hand the
  agent's caller on to the queue, or to a colleague who is ready (400 for a queue or agent that
  is not configured; 409 when the agent is not talking to anyone, nobody else is logged in to
  the queue, or the colleague is not ready; 502 when Asterisk refuses it);
* ``POST /api/agents/<id>/consult`` with ``{"to_agent": ID}``: consult a colleague who is ready
  while the caller holds (an attended transfer), or with ``{"phone": N}`` an outside number; then ``POST /api/agents/<id>/consult/complete``
  hands the caller over, ``/consult/conference`` makes it a three-way call and
  ``POST /api/agents/<id>/consult/cancel`` takes the caller back (409 with no consult, or
  completing or conferencing before the colleague answered); ``GET /api/agents/<id>/consult``: the
  consult in progress (404: none);
* ``GET /api/dialer``: each campaign's pacer, calls placed and in flight, agents, outcomes
  and abandonment since the daemon started (404 when the dialer does not run);
* ``GET /api/dialer/<campaign>/ledger?day=YYYY-MM-DD``: the abandon ledger of a local day
  and its rolling 30 days;
* ``GET /api/dialer/<campaign>/holdings``: who holds the campaign's leads (IT's pool, teams,
  agents), by state; ``POST /api/dialer/<campaign>/handout`` with ``{"by", "team", "count",
  "list_id"}`` (a manager gives IT's leads to a team) or ``{"by", "team", "agents": "all" |
  [ids], "each"}`` (the team's lead shares its leads among its agents), and
  ``POST /api/dialer/<campaign>/takeback`` with ``{"by", "team", "agents"}``: the lead
  hand-out (403 when the person may not; docs/lead-handout.md);
* ``POST /api/agents/<id>/preview`` with ``{"campaign": NAME}``: the next lead of a preview
  campaign, held for the agent (name, phone, the lead file's other columns); 204-like
  ``{"lead": null}`` when none is due; ``POST /api/agents/<id>/dial``: dial it (the agent's
  phone rings first); ``POST /api/agents/<id>/skip`` with ``{"reason": ..., "retry_minutes":
  60}``: do not dial it (the lead waits again, the attempt is not counted);
* ``GET /api/customers?q=TEXT``, ``GET /api/customers/<id>`` (with the customer's last calls),
  ``POST /api/customers`` (a new customer; ``ticket`` links that call) and
  ``POST /api/customers/<id>`` (changes): the CRM (docs/crm.md);
* ``POST /api/supervisor/spy`` with ``{"supervisor": ID, "agent": ID, "mode": "listen"|"whisper"|"barge"}``
  (403 when the supervisor may not spy on that agent, 409 when the agent is not on a call).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape as html_escape
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, fail, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from callcenter.agent_page import AgentView, disposition_body, render_agent_page
from callcenter.agent_time import AgentTime
from callcenter.agents import AgentError
from callcenter.ami.client import (
    AmiActionFailed,
    AmiConnectionLost,
    AmiNotConnected,
    AmiTimeout,
)
from callcenter.call_log import call_log_csv
from callcenter.commission import commission_report
from callcenter.crm import customer_changes, new_customer_body
from callcenter.dialer.campaign import zone
from callcenter.dialer.handout import (
    HandOut,
    HandOutRefused,
    TakeBack,
    authorise,
    parse_handout,
    parse_takeback,
)
from callcenter.dialer.service import (
    PREVIEW_SKIP_RETRY_MINUTES,
    DialerService,
    PreviewError,
)
from callcenter.disposition import (
    Disposition,
    DispositionRefused,
    call_agents,
    check_writer,
    parse_disposition,
    seller,
)
from callcenter.engine import MESSAGE_SUFFIX, Engine
from callcenter.fax import MAX_FAX_BYTES, FaxBusy
from callcenter.fax_service import FaxService
from callcenter.index_page import render_index
from callcenter.lead_page import (
    CampaignHoldings,
    LeadView,
    TeamAgent,
    form_handout,
    form_review,
    form_sms,
    render_lead_page,
)
from callcenter.privacy import mask_numbers_in, masked_json
from callcenter.qa import (
    QaReview,
    ReviewRefused,
    choose_sample,
    parse_review,
    qa_summary,
    review_part,
    reviewable_agents,
)
from callcenter.recording_pause import RecordingPauseRefused, recording_channels
from callcenter.reports import FCR_DAYS, GROUPINGS, ReportPeriod, queue_targets
from callcenter.reports import period as report_period
from callcenter.reports_cli import agent_time_json
from callcenter.reports_page import ReportsView, render_reports_page
from callcenter.secrets import read_web_passwords, set_web_password
from callcenter.settings import AgentSettings, Settings
from callcenter.sms.service import SmsService
from callcenter.sms.text import TemplateError
from callcenter.spy_modes import SpyMode
from callcenter.storage import agent_time as agent_time_store
from callcenter.storage import crm as crm_store
from callcenter.storage import dialer as dialer_store
from callcenter.storage import sms as sms_store
from callcenter.storage.dialer_records import LeadHolding
from callcenter.storage.records import (
    MAX_ID,
    UNSET,
    CallRecord,
    Customer,
    InvalidFieldError,
    Recording,
    canonical_phone,
    is_digits,
    whole_number,
)
from callcenter.storage.repository import (
    ConflictError,
    NotFoundError,
    Repository,
    get_call_record_by_ticket,
    iter_call_records_between,
    list_recordings_for_call,
)
from callcenter.storage.sms import BroadcastCreated
from callcenter.supervisor import (
    AgentNotOnCall,
    CallEndedFirst,
    NotPermitted,
    SpyFailed,
)
from callcenter.transfer import TransferRefused, UnknownTarget, consult_leg
from callcenter.wallboard_page import Board, render_wallboard
from callcenter.web_access import (
    MIN_PASSWORD_LENGTH,
    Caller,
    actor_field,
    actor_refusal,
    check_password,
    hash_password,
    host_file_refusal,
    numbers_masked,
    password_change_problem,
    vip_number_locked,
    vip_refusal,
)
from callcenter.web_guard import caller_of, person_of

__all__ = ["ApiError", "ApiResource"]

CALL_LOG_MAX_DAYS = 92
"""The longest period of one call log download (/reports/records.csv): a quarter, some
450k records at the reference site, built in the repository's thread."""

CUSTOMER_CALLS = 10
"""How many of a customer's earlier calls the screen pop and the customer's page show."""


def _path_id(text: str, what: str) -> int:
    """A URL's (or form's) id of ``what``: a whole number (:func:`whole_number`); a 400 naming ``id``."""
    try:
        return whole_number("id", text)
    except InvalidFieldError as exc:
        raise ApiError(400, f"expected a {what} id: {exc.problem}", "id") from None


def _customer_id(text: str) -> int:
    return _path_id(text, "customer")

_T = TypeVar("_T")

_log = Logger(namespace="callcenter.http")


def _ascii(value: bytes | None) -> str:
    """A request's method or path for a log line."""
    return (value or b"").decode("ascii", "replace")


class ApiError(Exception):
    """A request the API refuses: HTTP status, message, and the offending field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # money: "1999.00", exact
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "items") and callable(value.items):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def recording_state(engine: Engine, agent: str) -> dict[str, Any]:
    """Is the agent's call recorded, and is its recording paused (since how many seconds)?"""
    try:
        channels = recording_channels(agent, engine.calls.channels.values())
    except RecordingPauseRefused:
        return {"agent": agent, "recorded": False, "paused": False, "paused_seconds": None}
    paused = engine.recording_pauses.of_call(channels[0].linkedid)
    return {"agent": agent, "recorded": True, "paused": paused is not None,
            "paused_seconds": round(engine.clock.seconds() - paused.since, 1) if paused is not None else None}


def _required(form: Mapping[str, str], name: str, missing: str) -> str:
    """A page form's field, stripped; :class:`InvalidFieldError` saying ``missing`` when empty."""
    value = form.get(name, "").strip()
    if not value:
        raise InvalidFieldError(name, missing)
    return value


def unusable_text(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first string in ``value`` (a request's decoded JSON or form, keys too) that cannot
    be stored: (its field, why), or None. A NUL character (PostgreSQL's text refuses it) or an
    unpaired surrogate (JSON's ``\\ud800``: not Unicode, it cannot be written as UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            return where or "body", "contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return where or "body", f"not valid Unicode (an unpaired surrogate at character {exc.start})"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            bad = unusable_text(key, name) or unusable_text(item, name)
            if bad is not None:
                return bad
    elif isinstance(value, list):
        for index, item in enumerate(value):
            bad = unusable_text(item, f"{where}[{index}]")
            if bad is not None:
                return bad
    return None


def _base64_field(body: Mapping[str, Any], name: str, *, limit: int) -> bytes:
    """The bytes of ``body[name]``, standard base64 of at most ``limit`` bytes; a 400 naming the field."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"expected a non-empty base64 string, got {type(value).__name__}", name)
    if len(value) > (limit + 2) // 3 * 4 + 4:
        raise ApiError(400, f"more than {limit} bytes", name)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"not valid base64: {exc}", name) from None


def _arg(request: Request, name: str) -> str | None:
    values = (request.args or {}).get(name.encode())
    if not values:
        return None
    try:
        text: str = values[0].decode("utf-8")
        return text
    except UnicodeDecodeError:
        raise ApiError(400, "not valid UTF-8", name) from None


def _int_arg(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    text = _arg(request, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"expected an integer {lo}..{hi}, got {text!r}", name) from None
    if not lo <= value <= hi:
        raise ApiError(400, f"expected an integer {lo}..{hi}, got {value}", name)
    return value


def _with_record(engine: Engine, ticket: str, then: Callable[[Any, CallRecord], Deferred[_T]]) -> Deferred[_T]:
    """``then(repository, record)`` on the call record ``ticket``: ApiError 503 without a
    database, 404 for an unknown ticket."""
    repo = engine.repository
    if repo is None:
        raise ApiError(503, "no database configured")

    def found(record: CallRecord | None) -> Deferred[_T]:
        if record is None:
            raise ApiError(404, f"no call record {ticket!r}", "ticket")
        return then(repo, record)

    return repo.get_call_record_by_ticket(ticket).addCallback(found)


def _path(request: Request) -> list[str]:
    """The request's path below its resource, decoded, without empty segments."""
    return [p.decode("utf-8", "replace") for p in (request.postpath or []) if p]


def _state_of(engine: Engine, agent_id: str) -> tuple[str, float | None, str | None]:
    """(state, seconds in it, pause reason) of the agent as the board shows them now; logged
    out (no time, no reason) if the board never saw them."""
    live = engine.agents.agent(agent_id)
    if live is None:
        return "logged_out", None, None
    return live.state.value, engine.clock.seconds() - live.since, live.pause_reason


def _named(engine: Engine, request: Request) -> tuple[AgentSettings | None, list[str]]:
    """(the configured person the path's first segment names, or None; the path)."""
    path = _path(request)
    return (engine.settings.people.get(path[0]) if path else None), path


def _act_as_signed_in(request: Request, path: list[str], body: dict[str, Any], method: str = "POST") -> None:
    """A signed-in person acts as themselves: the route's actor field (``by``, ``agent``,
    ``reviewer``, ``supervisor``) is filled in with their id when left out, and refused
    (403) when it names someone else. The host's API token acts for whoever is named."""
    caller = caller_of(request)
    field = actor_field(method, path)
    if caller is None or caller.person is None or field is None:
        return
    if body.get(field) in (None, ""):
        body[field] = caller.person.id
    reason = actor_refusal(caller, body[field])
    if reason is not None:
        raise ApiError(403, reason, field)


def _running(dialer: DialerService | None) -> DialerService:
    """The dialer, or ApiError 404 when it does not run."""
    if dialer is None:
        raise ApiError(404, "the outbound dialer is not running (no dialer.yaml)")
    return dialer


def _today(now: datetime, tz: ZoneInfo) -> ReportPeriod:
    """``now``'s local day as a period (its start, and the next day's start as its end)."""
    day = now.astimezone(tz).date()
    return report_period(day, day, tz)


def _end_of_today(now: datetime, tz: ZoneInfo) -> datetime:
    """The last instant of ``now``'s local day (follow-ups due today, overdue ones too)."""
    return _today(now, tz).end - timedelta(microseconds=1)


def _sms_on(sms: SmsService | None) -> SmsService:
    """The SMS service, or ApiError 404 when SMS is off."""
    if sms is None:
        raise ApiError(404, "SMS is off (set sms.gateway in callcenter.yaml)")
    return sms


def send_broadcast(engine: Engine, dialer: DialerService | None, sms: SmsService | None,
                   body: dict[str, Any]) -> Deferred[BroadcastCreated]:
    """Queue the SMS broadcast ``body`` describes, for the API and the lead's page (docs/sms.md):
    ``{"by", "name", "template", "campaign", "team", "agent"}`` (a manager texts any campaign's
    leads; a team's lead those their team holds) or ``{"by", "name", "template", "phones"}``
    (a manager texts a list of numbers). ApiError names a refused or bad field."""
    service = _sms_on(sms)
    fields = ("by", "name", "template", "campaign", "team", "agent", "phones")
    for key in body:
        if key not in fields:
            raise ApiError(400, f"unknown field (fields: {', '.join(fields)})", str(key))
    by, name, template = (ApiResource._field(body, key) for key in ("by", "name", "template"))
    person = engine.settings.people.get(by)
    if person is None:
        raise ApiError(400, f"unknown person {by!r}", "by")
    if person.role not in ("lead", "manager"):
        raise ApiError(403, f"{by} is an agent: a team's lead or a manager sends SMS broadcasts", "by")
    team = ApiResource._field(body, "team") if body.get("team") is not None else None
    agent = ApiResource._field(body, "agent") if body.get("agent") is not None else None
    if ("campaign" in body) == ("phones" in body):
        raise ApiError(400, "give either a campaign (its leads) or phones (a list of numbers)", "campaign")
    if "phones" in body:
        phones = body["phones"]
        if not isinstance(phones, list) or not phones or not all(isinstance(p, str) for p in phones):
            raise ApiError(400, f"expected a non-empty list of numbers, got {phones!r}", "phones")
        if person.role != "manager":
            raise ApiError(403, f"{by} leads a team: only a manager texts numbers outside the leads", "by")
        if team is not None or agent is not None:
            raise ApiError(400, "team and agent choose a campaign's leads, not numbers", "team")
        return service.broadcast(name=name, template=template, actor=by, phones=phones)
    if person.role == "lead" and (team is None or not person.oversees(team)):
        raise ApiError(403, f"{by} may text only the leads their team holds (team {person.team})", "team")
    if agent is not None:
        holder = engine.settings.people.get(agent)
        if holder is None or holder.team != team:
            raise ApiError(400, f"{agent!r} is not an agent of team {team!r}", "agent")
    campaign = ApiResource._field(body, "campaign")
    state = _running(dialer).campaigns.get(campaign)
    if state is None:
        raise ApiError(404, f"no campaign {campaign!r}", "campaign")
    return service.broadcast(name=name, template=template, actor=by, campaign_id=state.record.id, team=team,
                             agent_id=agent)


def call_customer(engine: Engine, agent_id: str, phone: str, *, name: str | None,
                  customer_id: int | None) -> Deferred[Any]:
    """The agent's own call (docs/agents.md, "Calling a customer"); with ``manual_dial.do_not_call:
    block``, a number on the do-not-call list is refused first (409, field ``phone``)."""
    def dial(_: object = None) -> Deferred[Any]:
        return engine.agent_service.call(agent_id, phone, name=name, customer_id=customer_id)

    repo = engine.repository
    if engine.settings.manual_dial.do_not_call != "block" or repo is None:
        return dial()
    number = canonical_phone(phone)

    def checked(entry: Any) -> Deferred[Any]:
        if entry is not None:
            raise ApiError(409, f"{number} is on the do-not-call list ({entry.source}"
                           + (f": {entry.reason}" if entry.reason else "") + "); manual_dial.do_not_call is block",
                           "phone")
        return dial()

    return repo.run(dialer_store.dnc_entry, number).addCallback(checked)


def number_to_call(repo: Repository | None, *, ticket: str | None, customer_id: int | None
                   ) -> Deferred[tuple[str, str | None, int | None]]:
    """(number, name, CRM id) of the call ``ticket`` (its caller: a follow-up, a call back), else
    of CRM customer ``customer_id``: what "Call" dials when the agent is shown the number
    masked (docs/agents.md, "Customers' numbers"). InvalidFieldError naming the field for an
    unknown call or customer, or one without a number."""
    if repo is None:
        raise ApiError(503, "no database configured")
    if ticket:
        def of_record(record: CallRecord | None) -> tuple[str, str | None, int | None]:
            if record is None or not record.phone:
                raise InvalidFieldError("ticket", f"no call {ticket}" if record is None
                                        else f"call {ticket} has no caller number")
            return record.phone, record.customer_name, record.customer_id

        return repo.get_call_record_by_ticket(ticket).addCallback(of_record)
    if customer_id is None:
        raise InvalidFieldError("phone", "say whom to call: a phone, a ticket or a customer_id")

    def of_customer(known: Customer | None) -> tuple[str, str | None, int | None]:
        if known is None:
            raise InvalidFieldError("customer_id", f"no customer {customer_id}")
        return known.phone, known.name, known.id

    return repo.get_customer(customer_id).addCallback(of_customer)


def _numbers_masked(request: Request, engine: Engine) -> bool:
    """Does the person signed in for ``request`` get customers' numbers masked (an agent;
    :func:`callcenter.web_access.numbers_masked`)? Not for a request that did not pass the
    guard (in-process)."""
    caller = caller_of(request)
    return caller is not None and numbers_masked(caller, engine.settings.privacy.mask_for_agents)


def save_customer(repo: Repository, customer: str | None, fields: Mapping[str, Any], *,
                  ticket: str | None, vip_number_locked: bool = False) -> Deferred[Customer]:
    """The API's and the agent page's one path into the CRM (docs/crm.md): a new customer
    (``customer`` None; ``ticket`` links that call to them) or changes to customer ``customer``
    (its id as given in the URL or form); ``vip_number_locked`` (an agent writing): a VIP's
    number stays (:func:`~callcenter.storage.repository.update_customer`)."""
    if customer is None:
        return repo.run(crm_store.save_caller, new_customer_body(fields), ticket=ticket)
    return repo.update_customer(_customer_id(customer), customer_changes(fields), vip_number_locked=vip_number_locked)


def _agents_of(engine: Engine, record: CallRecord) -> tuple[str, ...]:
    """The agents whose call ``record`` is (:func:`callcenter.disposition.call_agents`): for
    a call under way, from the engine's hops so far and the agent a queue connected it to."""
    if record.ended_at is None and record.linkedid:
        return call_agents(record.agent_id, engine.transfers_of(record.linkedid),
                           engine.connected_agent(record.linkedid))
    return call_agents(record.agent_id, record.transfers)


def save_disposition(engine: Engine, ticket: str, disposition: Disposition) -> Deferred[CallRecord]:
    """Write ``disposition`` on the call record ``ticket`` if its writer may (the API's and the
    agent page's one path): ApiError 404 for an unknown ticket, DispositionRefused otherwise."""

    def write(repo: Any, record: CallRecord) -> Deferred[tuple[CallRecord, bool]]:
        agents = _agents_of(engine, record)
        check_writer(engine.settings, disposition.writer, agents)
        changes = disposition.changes
        if changes.sale_amount is not UNSET:
            paid = seller(disposition.writer, agents)
            person = engine.settings.people.get(paid or record.agent_id or "")  # the repository's fallback
            changes = dataclasses.replace(changes, sale_agent_id=paid,
                                          sale_team=person.team if person is not None and person.team else None)
        if not disposition.do_not_call:
            return repo.update_call_record(record.id, changes).addCallback(  # type: ignore[no-any-return]
                lambda updated: (updated, False))
        if not record.phone:
            raise ApiError(409, f"{ticket} has no caller number to put on the do-not-call list", "do_not_call")
        now = datetime.fromtimestamp(engine.clock.seconds(), UTC)
        return repo.run(dialer_store.disposition_call, record.id, changes,  # type: ignore[no-any-return]
                        do_not_call_by=disposition.writer, now=now)

    def written(result: tuple[CallRecord, bool]) -> CallRecord:
        record, added = result
        _log.info("record.dispositioned ticket={ticket} by={writer} outcome={outcome}", ticket=ticket,
                  writer=disposition.writer, outcome=record.outcome)
        if disposition.do_not_call:
            _log.info("dnc.asked ticket={ticket} by={writer} added={added}", ticket=ticket, writer=disposition.writer,
                      added=added)
        return record

    return _with_record(engine, ticket, write).addCallback(written)


def text_ticket(engine: Engine, sms: SmsService | None, ticket: str, by: str) -> Deferred[BroadcastCreated]:
    """Text the caller of call ``ticket`` its ticket number (``sms.ticket_template``), if ``by``
    may disposition the call (the API's and the agent page's one path; docs/sms.md)."""
    service = _sms_on(sms)

    def send(repo: Any, record: CallRecord) -> Deferred[BroadcastCreated]:
        check_writer(engine.settings, by, _agents_of(engine, record))
        if not record.phone:
            raise ApiError(409, f"{ticket} has no caller number to text", "ticket")
        return service.text_ticket(ticket=record.ticket_number, phone=record.phone, name=record.customer_name,
                                   agent=by)

    return _with_record(engine, ticket, send)


def carry_out_handout(engine: Engine, dialer: DialerService, name: str, action: str,
                      body: Mapping[str, Any]) -> Deferred[dict[str, Any]]:
    """A hand-out (``action`` ``handout``) or take-back of campaign ``name``'s leads as ``body``
    asks, if its ``by`` may (the API's and the lead page's one path; docs/lead-handout.md)."""
    campaign = dialer.campaigns.get(name)
    if campaign is None:
        raise ApiError(404, f"no campaign {name!r}", "campaign")
    settings = engine.settings
    people, teams = settings.people, [t.id for t in settings.teams]
    now = datetime.now(UTC)
    request: HandOut | TakeBack
    done: Deferred[dict[str, Any]]
    if action == "handout":
        handout = request = authorise(parse_handout(body), people, teams)
        given: Deferred[dict[str, int]] = dialer.repository.run(dialer_store.hand_out, campaign.record.id,
                                                                handout, now=now)
        done = given.addCallback(lambda n: {"campaign": campaign.name, "team": handout.team, "given": n})
    else:
        takeback = request = authorise(parse_takeback(body), people, teams)
        taken: Deferred[int] = dialer.repository.run(dialer_store.take_back, campaign.record.id, takeback.team,
                                                     actor=takeback.actor, agents=takeback.agents,
                                                     every_agent=takeback.every_agent, now=now)
        done = taken.addCallback(lambda n: {"campaign": campaign.name, "team": takeback.team,
                                            "agents": "all" if takeback.every_agent else takeback.agents, "taken": n})

    def logged(result: dict[str, Any]) -> dict[str, Any]:
        _log.info("dialer.{action} campaign={campaign} by={actor} team={team} result={result}", action=action,
                  campaign=campaign.name, actor=request.actor, team=request.team,
                  result=result.get("given", result.get("taken")))
        return result

    return done.addCallback(logged)


def save_review(engine: Engine, ticket: str, review: QaReview) -> Deferred[Any]:
    """Save a QA ``review`` of the part of call ``ticket`` it names (``review.recording_id``;
    without: :func:`review_part`) if its reviewer may score it (the API's and the lead page's
    one path; docs/qa.md): ApiError 404 for an unknown ticket, InvalidFieldError
    (``recording``) for a recording not of the call, ReviewRefused otherwise."""

    def save(repo: Any, record: CallRecord) -> Deferred[Any]:
        def scored(recordings: list[Recording]) -> Deferred[Any]:
            part = review_part(engine.settings.agents, review.reviewer, record.agent_id, recordings,
                               review.recording_id)
            heard = dataclasses.replace(review, recording_id=part.recording.id if part.recording else None)
            return repo.save_qa_review(record.id, heard, now=datetime.now(UTC))  # type: ignore[no-any-return]

        return repo.list_recordings_for_call(record.id).addCallback(scored)  # type: ignore[no-any-return]

    def saved(stored: Any) -> Any:
        _log.info("qa.reviewed ticket={ticket} agent={agent} recording={recording} by={reviewer} score={score} "
                  "failed={failed}", ticket=ticket, agent=stored.agent_id, recording=stored.recording_id,
                  reviewer=review.reviewer, score=review.score, failed=review.failed)
        return stored

    return _with_record(engine, ticket, save).addCallback(saved)


class ApiResource(Resource):
    """Dispatches ``/api/...`` paths to the engine's views."""

    isLeaf = True

    def __init__(self, engine: Engine, dialer: DialerService | None = None, fax: FaxService | None = None,
                 sms: SmsService | None = None) -> None:
        super().__init__()
        self.fax = fax
        self.sms = sms
        self.dialer = dialer
        self.engine = engine

    def render_GET(self, request: Request) -> bytes | int:
        path = _path(request)
        try:
            result = self._route(path, request)
        except ApiError as exc:
            return self._error(request, exc)
        if isinstance(result, Deferred):
            result.addCallbacks(lambda value: self._finish(request, 200, value),
                                lambda failure: self._failed(request, failure))
            return NOT_DONE_YET
        return self._body(request, 200, result)

    def render_POST(self, request: Request) -> bytes | int:
        path = _path(request)
        try:
            body = self._json_body(request)
            _act_as_signed_in(request, path, body)
            caller = caller_of(request)
            for refused, field in ((vip_refusal, "vip"), (host_file_refusal, "file")):
                why_not = refused(caller, path, body)
                if why_not is not None:
                    raise ApiError(403, why_not, field)
        except ApiError as exc:
            return self._error(request, exc)
        result = maybeDeferred(self._post, path, body, vip_number_locked=vip_number_locked(caller))
        result.addCallbacks(lambda value: self._finish(request, 200, value),
                            lambda failure: self._failed(request, failure))
        return NOT_DONE_YET

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        raw = request.content.read() if request.content is not None else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, arrays nested too deep
            raise ApiError(400, f"request body is not usable JSON: {str(exc)[:200]}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        bad = unusable_text(body)
        if bad is not None:
            raise ApiError(400, bad[1], bad[0])
        return body

    @staticmethod
    def _field(body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if value is None:
            raise ApiError(400, "missing (expected a non-empty string)", name)
        if not isinstance(value, str) or not value:
            raise ApiError(400, f"expected a non-empty string, got {value!r}", name)
        return value

    def _post(self, path: list[str], body: dict[str, Any], *, vip_number_locked: bool = False) -> Deferred[Any]:
        engine = self.engine
        if len(path) == 4 and path[0] == "agents" and path[2] == "consult":
            return self._end_consult(path[1], path[3], body)
        if len(path) == 4 and path[0] == "agents" and path[2] == "recording":
            return self._recording(path[1], path[3], body)
        if len(path) == 3 and path[0] == "agents":
            agent, action = path[1], path[2]
            if action in ("preview", "dial", "skip"):
                return self._preview(agent, action, body)
            service = engine.agent_service
            if action == "login":
                d = service.login(agent)
            elif action == "logout":
                d = service.logout(agent)
            elif action == "pause":
                d = service.pause(agent, self._field(body, "reason"))
            elif action == "unpause":
                d = service.unpause(agent)
            elif action == "call":
                return self._call(agent, body)
            elif action == "transfer":
                return self._transfer(agent, body)
            elif action == "consult":
                return self._consult(agent, body)
            else:
                raise ApiError(404, f"no agent action {action!r}")
            return d.addCallback(lambda _: {"agent": agent, "action": action, "ok": True})
        if len(path) == 3 and path[0] == "call-records" and path[2] == "disposition":
            return self._disposition(path[1], body)
        if len(path) == 3 and path[0] == "call-records" and path[2] == "qa":
            return self._qa_review(path[1], body)
        if len(path) == 3 and path[0] == "call-records" and path[2] == "sms":
            return text_ticket(self.engine, self.sms, path[1], self._field(body, "by")).addCallback(
                lambda created: {"broadcast": created})
        if path == ["faxes"]:
            return self._send_fax(body)
        if path == ["sms", "broadcasts"]:
            return self._sms_broadcast(body)
        if len(path) == 3 and path[0] == "dialer" and path[2] in ("handout", "takeback"):
            return self._handout(path[1], path[2], body)
        if path and path[0] == "customers" and len(path) <= 2:
            return self._save_customer(path[1] if len(path) == 2 else None, body, vip_number_locked)
        if path == ["supervisor", "spy"]:
            supervisor, agent = self._field(body, "supervisor"), self._field(body, "agent")
            try:
                mode = SpyMode.parse(self._field(body, "mode"))
            except ValueError as exc:
                raise ApiError(400, str(exc), "mode") from None
            spying = engine.supervisor.spy(supervisor, agent, mode)
            return spying.addCallback(lambda session: {"spy": session})
        raise ApiError(404, "no such resource: /api/" + "/".join(path))

    def _call(self, agent: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/agents/<id>/call {"phone", "name"?, "customer_id"?}``, or ``{"ticket"}``
        or ``{"customer_id"}`` alone (the number of that call's caller or that customer, for
        an agent shown numbers masked): the agent's phone rings, then the customer is called
        (docs/agents.md, "Calling a customer")."""
        for key in body:
            if key not in ("phone", "name", "customer_id", "ticket"):
                raise ApiError(400, "unknown field (fields: phone, name, customer_id, ticket)", str(key))
        name, customer, ticket = body.get("name"), body.get("customer_id"), body.get("ticket")
        if name is not None and not isinstance(name, str):
            raise ApiError(400, f"expected a string, got {name!r}", "name")
        if customer is not None and (isinstance(customer, bool) or not isinstance(customer, int)
                                     or not 1 <= customer <= MAX_ID):
            raise ApiError(400, f"expected a CRM customer id (a whole number), got {customer!r}", "customer_id")
        if ticket is not None and (not isinstance(ticket, str) or not ticket):
            raise ApiError(400, f"expected a ticket number, got {ticket!r}", "ticket")

        def call(who: tuple[str, str | None, int | None]) -> Deferred[Any]:
            phone, found_name, customer_id = who
            return call_customer(self.engine, agent, phone, name=name or found_name,
                                 customer_id=customer_id).addCallback(
                lambda _: {"agent": agent, "action": "call", "phone": canonical_phone(phone), "ok": True})

        if "phone" in body or (ticket is None and customer is None):
            return call((self._field(body, "phone"), name, customer))
        return number_to_call(self.engine.repository, ticket=ticket, customer_id=customer).addCallback(call)

    def _transfer(self, agent: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/agents/<id>/transfer {"queue"}`` or ``{"to_agent"}``: hand the agent's
        caller on to the queue, or to an agent ready now (docs/agents.md, "Handing a call on")."""
        for key in body:
            if key not in ("queue", "to_agent"):
                raise ApiError(400, "unknown field (fields: queue or to_agent)", str(key))
        if ("queue" in body) == ("to_agent" in body):
            raise ApiError(400, "say where to: a queue, or to_agent (an agent ready now)", "queue")
        if "to_agent" in body:
            target = self._field(body, "to_agent")
            return self.engine.agent_service.transfer_to_agent(agent, target).addCallback(
                lambda _: {"agent": agent, "action": "transfer", "to_agent": target, "ok": True})
        queue = self._field(body, "queue")
        return self.engine.agent_service.transfer(agent, queue).addCallback(
            lambda _: {"agent": agent, "action": "transfer", "queue": queue, "ok": True})

    def _consult(self, agent: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/agents/<id>/consult {"to_agent"}`` or ``{"phone"}``: consult a colleague,
        or an outside number, first (docs/agents.md, "Consult first")."""
        for key in body:
            if key not in ("to_agent", "phone"):
                raise ApiError(400, "unknown field (fields: to_agent or phone)", str(key))
        if ("to_agent" in body) == ("phone" in body):
            raise ApiError(400, "say whom to consult: to_agent (an agent ready now), or phone (an outside number)",
                           "to_agent")
        if "phone" in body:
            phone = self._field(body, "phone")
            return self.engine.agent_service.consult_number(agent, phone).addCallback(
                lambda _: {"agent": agent, "action": "consult", "phone": canonical_phone(phone), "ok": True})
        target = self._field(body, "to_agent")
        return self.engine.agent_service.consult(agent, target).addCallback(
            lambda _: {"agent": agent, "action": "consult", "to_agent": target, "ok": True})

    def _recording(self, agent: str, how: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/agents/<id>/recording/pause`` or ``/resume`` (docs/agents.md, "Pausing
        the recording")."""
        service = self.engine.agent_service
        return self._agent_sub_action(agent, "recording", how, body, {
            "pause": service.pause_recording, "resume": service.resume_recording})

    def _end_consult(self, agent: str, how: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/agents/<id>/consult/complete``, ``/conference`` or ``/cancel``."""
        service = self.engine.agent_service
        return self._agent_sub_action(agent, "consult", how, body, {
            "complete": service.complete_consult, "conference": service.conference_consult,
            "cancel": service.cancel_consult})

    @staticmethod
    def _agent_sub_action(agent: str, what: str, how: str, body: dict[str, Any],
                          actions_by_name: Mapping[str, Callable[[str], Deferred[Any]]]) -> Deferred[Any]:
        """``POST /api/agents/<id>/<what>/<how>``, no fields: the action named ``how``."""
        if body:
            raise ApiError(400, "no fields expected", str(next(iter(body))))
        action = actions_by_name.get(how)
        if action is None:
            raise ApiError(404, f"no {what} action {how!r} ({' or '.join(actions_by_name)})")
        return action(agent).addCallback(lambda _: {"agent": agent, "action": f"{what} {how}", "ok": True})

    def _disposition(self, ticket: str, body: dict[str, Any]) -> Deferred[Any]:
        return save_disposition(self.engine, ticket, parse_disposition(body)).addCallback(
            lambda record: {"record": record})

    def _send_fax(self, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/faxes {"to": NUMBER, "tiff": the pages, base64}`` or, from the host's
        API token only (:func:`~callcenter.web_access.host_file_refusal`), ``"file"``: a TIFF
        path on the daemon's host (docs/fax.md)."""
        if self.fax is None:
            raise ApiError(404, "the fax service is not running")
        for key in body:
            if key not in ("to", "file", "tiff"):
                raise ApiError(400, "unknown field (fields: to, and file or tiff)", str(key))
        to = self._field(body, "to")
        if ("file" in body) == ("tiff" in body):
            raise ApiError(400, "expected the pages: file (a path on the daemon's host) or tiff (base64), one of them",
                           "tiff" if "tiff" in body else "file")
        page: Path | bytes
        if "file" in body:
            page = Path(self._field(body, "file"))
        else:
            page = _base64_field(body, "tiff", limit=MAX_FAX_BYTES)
        try:
            sending = self.fax.send(to, page)
        except FaxBusy as exc:
            raise ApiError(409, str(exc), None) from None
        return sending.addCallback(lambda record: {"fax": record})

    def _sms_broadcast(self, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/sms/broadcasts`` (see :func:`send_broadcast`)."""
        return send_broadcast(self.engine, self.dialer, self.sms, body).addCallback(
            lambda created: {"broadcast": created})

    def _qa_review(self, ticket: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/call-records/<ticket>/qa``: a lead's or manager's score of the call (docs/qa.md)."""
        review = parse_review(body, self.engine.settings.qa.scorecard)
        return save_review(self.engine, ticket, review).addCallback(lambda stored: {"review": stored})

    def _qa_sample(self, request: Request) -> Deferred[Any]:
        """``GET /api/qa/sample?reviewer=ID&day=DAY``: the calls a reviewer is offered that day."""
        settings = self.engine.settings
        query = {"reviewer": _arg(request, "reviewer")}
        _act_as_signed_in(request, ["qa", "sample"], query, method="GET")
        reviewer = query["reviewer"]
        if not reviewer:
            raise ApiError(400, "expected the reviewer's agent id", "reviewer")
        try:
            agents = reviewable_agents(settings.agents, reviewer)
        except ReviewRefused as exc:
            raise ApiError(403, str(exc), "reviewer") from None
        repo, span = self._report_period(request, first_name="day", last_name=None)

        def chosen(candidates: list[Any]) -> dict[str, Any]:
            calls = choose_sample(candidates, agents, settings.qa.sample_per_agent, span.first)
            return {"reviewer": reviewer, "day": span.first, "per_agent": settings.qa.sample_per_agent,
                    "scorecard": settings.qa.scorecard, "calls": calls,
                    "remaining": sum(1 for call in calls if not call.reviewed_by)}

        d: Deferred[Any] = repo.qa_candidates(since=span.start, until=span.end)
        return d.addCallback(chosen)

    def _qa_report(self, request: Request) -> Deferred[Any]:
        """``GET /api/reports/qa?from=DAY&to=DAY``: each agent's reviews of the period's calls."""
        assert self.engine is not None
        settings = self.engine.settings
        repo, span = self._report_period(request)

        def built(reviews: list[Any]) -> dict[str, Any]:
            return {"from": span.first, "to": span.last, "timezone": settings.site.timezone,
                    "lines": qa_summary(reviews, settings.qa.scorecard)}

        d: Deferred[Any] = repo.list_qa_reviews(since=span.start, until=span.end)
        return d.addCallback(built)

    def _sms_report(self, request: Request) -> Deferred[Any]:
        """``GET /api/reports/sms?from=DAY&to=DAY``: the period's broadcasts, their texts by
        status and skip reason, and the replies (docs/sms.md)."""
        assert self.engine is not None
        repo, span = self._report_period(request)
        d: Deferred[Any] = repo.run(sms_store.sms_report, since=span.start, until=span.end)
        return d.addCallback(lambda report: {"from": span.first, "to": span.last,
                                             "timezone": self.engine.settings.site.timezone, "report": report})

    def _agent_time_report(self, request: Request) -> Deferred[dict[str, Any]]:
        """``GET /api/reports/agents?from=DAY&to=DAY``: each agent's time in each state, up to now
        (docs/reports.md, "Agent time"); ``lines`` are :class:`~callcenter.agent_time.AgentTime`."""
        settings = self.engine.settings
        repo, span = self._report_period(request)
        now = datetime.now(UTC)
        d: Deferred[list[AgentTime]] = repo.run(agent_time_store.agent_time_report, start=span.start, end=span.end,
                                                now=now)
        return d.addCallback(lambda lines: {"from": span.first, "to": span.last,
                                            "timezone": settings.site.timezone, "lines": lines})

    def _route(self, path: list[str], request: Request) -> Any:
        engine = self.engine
        if path == ["agents"]:
            return {"agents": engine.agents.agents()}
        if path == ["queues"]:
            return {"queues": engine.queue_views()}
        if len(path) == 3 and path[0] == "agents" and path[2] == "screen-pop":
            return self._screen_pop(path[1])
        if len(path) == 3 and path[0] == "agents" and path[2] == "follow-ups":
            return self._follow_ups(path[1])
        if len(path) == 3 and path[0] == "agents" and path[2] == "consult":
            consult = consult_leg(path[1], engine.calls.channels.values())
            if consult is None:
                raise ApiError(404, f"agent {path[1]!r} is not consulting anyone", "agent")
            return {"agent": path[1], "consulting": consult.target_id, "outside": consult.outside,
                    "answered": consult.answered}
        if len(path) == 3 and path[0] == "agents" and path[2] == "recording":
            return recording_state(engine, path[1])
        if path == ["health"]:
            return engine.health()
        if path == ["calls"]:
            now = engine.clock.seconds()
            return {"calls": list(engine.calls.calls(now).values())}
        if path and path[0] == "dialer":
            return self._dialer(path[1:], request)
        if path == ["staffing", "hotline"]:
            return {"queue": engine.hotline_queue, "advice": engine.staffing_advice()}
        if path == ["reports", "calls"]:
            return self._calls_report(request)
        if path == ["reports", "commission"]:
            return self._commission_report(request)
        if path == ["reports", "qa"]:
            return self._qa_report(request)
        if path == ["reports", "sms"]:
            return self._sms_report(request)
        if path == ["reports", "agents"]:
            return self._agent_time_report(request).addCallback(
                lambda report: {**report, "lines": [agent_time_json(line) for line in report["lines"]]})
        if path == ["qa", "sample"]:
            return self._qa_sample(request)
        if path == ["sms", "broadcasts"]:
            return _sms_on(self.sms).recent(_int_arg(request, "limit", 20, 1, 1000)).addCallback(
                lambda found: {"broadcasts": found})
        if len(path) == 3 and path[:2] == ["sms", "broadcasts"]:
            return _sms_on(self.sms).progress(_path_id(path[2], "broadcast")).addCallback(
                lambda found: {"broadcast": found})
        if path == ["sms", "replies"]:
            return _sms_on(self.sms).replies(_int_arg(request, "limit", 50, 1, 1000)).addCallback(
                lambda found: {"replies": found})
        if path == ["faxes"]:
            if self.fax is None:
                raise ApiError(404, "the fax service is not running")
            return self.fax.recent(_int_arg(request, "limit", 50, 1, 1000)).addCallback(lambda faxes: {"faxes": faxes})
        if path and path[0] == "customers" and len(path) <= 2:
            return self._customers(path[1] if len(path) == 2 else None, request)
        if path and path[0] == "call-records":
            repo = engine.repository
            if repo is None:
                raise ApiError(503, "no database configured")
            if len(path) == 1:
                limit = _int_arg(request, "limit", 50, 1, 1000)
                d = repo.list_recent_call_records(limit=limit, agent_id=_arg(request, "agent"),
                                                  queue=_arg(request, "queue"))
                return d.addCallback(lambda records: {"call_records": records})
            if len(path) == 2:
                ticket = path[1]

                def found(record: Any) -> Any:
                    if record is None:
                        raise ApiError(404, f"no call record {ticket!r}", "ticket")
                    return record

                return repo.get_call_record_by_ticket(ticket).addCallback(found)
        raise ApiError(404, "no such resource: /api/" + "/".join(path))

    def _report_period(self, request: Request, *, first_name: str = "from", last_name: str | None = "to"
                       ) -> tuple[Any, ReportPeriod]:
        """(the repository, the period of ``from`` and ``to``: local days, today by default;
        ``last_name`` None: the one day ``first_name``)."""
        engine = self.engine
        assert engine is not None
        repo = engine.repository
        if repo is None:
            raise ApiError(503, "no database configured")
        tz = ZoneInfo(engine.settings.site.timezone)

        def day(name: str, default: date) -> date:
            text = _arg(request, name)
            try:
                return date.fromisoformat(text) if text else default
            except ValueError:
                raise ApiError(400, f"expected YYYY-MM-DD, got {text!r}", name) from None

        first = day(first_name, datetime.now(tz).date())
        last = day(last_name, first) if last_name is not None else first
        if (last - first).days > 366:
            raise ApiError(400, f"at most 367 days at once, got {(last - first).days + 1}", "to")
        try:
            return repo, report_period(first, last, tz)
        except InvalidFieldError as exc:
            raise ApiError(400, exc.problem, exc.field) from None

    def _calls_report(self, request: Request) -> Deferred[Any]:
        """``GET /api/reports/calls?from=DAY&to=DAY&by=day|agent|queue&fcr_days=N`` (docs/reports.md)."""
        assert self.engine is not None
        settings = self.engine.settings
        now = datetime.now(UTC)
        by = _arg(request, "by") or "day"
        if by not in GROUPINGS:
            raise ApiError(400, f"expected one of {', '.join(GROUPINGS)}, got {by!r}", "by")
        fcr_days = _int_arg(request, "fcr_days", FCR_DAYS, 1, 365)
        repo, span = self._report_period(request)

        def built(lines: list[Any]) -> dict[str, Any]:
            return {"from": span.first, "to": span.last, "by": by, "timezone": settings.site.timezone,
                    "fcr_days": fcr_days, "lines": lines}

        targets, wrapups = queue_targets(settings.queues)
        d: Deferred[Any] = repo.call_report(  # built in the repository's thread, not on the reactor
            span, by=by, now=now, fcr_days=fcr_days, service_level_seconds=targets, wrapup_seconds=wrapups)
        return d.addCallback(built)

    def _commission_report(self, request: Request) -> Deferred[Any]:
        """``GET /api/reports/commission?from=DAY&to=DAY``: each role's share of the sales (docs/reports.md)."""
        assert self.engine is not None
        settings = self.engine.settings
        repo, span = self._report_period(request)

        def built(sales: list[Any]) -> dict[str, Any]:
            lines, totals = commission_report(sales, settings.commission, settings.agents)
            return {"from": span.first, "to": span.last, "timezone": settings.site.timezone, "totals": totals,
                    "lines": lines}

        d: Deferred[Any] = repo.report_sales(since=span.start, until=span.end)
        return d.addCallback(built)

    def _dialer(self, path: list[str], request: Request) -> Any:
        dialer = _running(self.dialer)
        if not path:
            return {"campaigns": dialer.status()}
        campaign = dialer.campaigns.get(path[0])
        if campaign is None:
            raise ApiError(404, f"no campaign {path[0]!r}", "campaign")
        if path[1:] == ["holdings"]:
            return dialer.repository.run(dialer_store.lead_holdings, campaign.record.id).addCallback(
                lambda holdings: {"campaign": campaign.name, "handout": campaign.config.handout,
                                  "holdings": holdings})
        if path[1:] == ["ledger"]:
            tz = zone(campaign.config.campaign.timezone)
            text = _arg(request, "day")
            try:
                day = date.fromisoformat(text) if text else datetime.now(tz).date()
            except ValueError:
                raise ApiError(400, f"day: expected YYYY-MM-DD, got {text!r}", "day") from None
            return dialer.repository.run(dialer_store.abandon_ledger, campaign.record.id, day=day, tz=tz,
                                         machine_as_abandoned=dialer.config.amd.machine_as_abandoned)
        raise ApiError(404, "no such resource: /api/dialer/" + "/".join(path))

    def _handout(self, name: str, action: str, body: dict[str, Any]) -> Deferred[Any]:
        """``POST /api/dialer/<campaign>/handout|takeback``: leads to a team or its agents, or back
        (docs/lead-handout.md); 403 when the person may not."""
        return carry_out_handout(self.engine, _running(self.dialer), name, action, body)

    def _preview(self, agent: str, action: str, body: dict[str, Any]) -> Deferred[Any]:
        dialer = _running(self.dialer)
        if self.engine is not None:
            try:
                self.engine.settings.agent(agent)
            except KeyError:
                raise ApiError(400, f"unknown agent {agent!r}", "agent") from None
        result: Deferred[Any]
        try:
            if action == "preview":
                result = dialer.preview_next(agent, self._field(body, "campaign")).addCallback(
                    lambda lead: {"agent": agent, "lead": lead})
            elif action == "skip":
                minutes = body.get("retry_minutes", PREVIEW_SKIP_RETRY_MINUTES)
                if isinstance(minutes, bool) or not isinstance(minutes, int):
                    raise ApiError(400, f"expected whole minutes, got {minutes!r}", "retry_minutes")
                result = dialer.preview_skip(agent, self._field(body, "reason"), minutes).addCallback(
                    lambda released: {"agent": agent, "action": "skip", "ok": True, "released": released})
            else:
                result = dialer.preview_dial(agent).addCallback(
                    lambda _: {"agent": agent, "action": "dial", "ok": True})
        except PreviewError as exc:
            raise ApiError(409 if exc.field == "agent" else 400, str(exc), exc.field) from None
        return result

    def _follow_ups(self, agent: str) -> Deferred[Any]:
        """The agent's calls to follow up by the end of today (local), earliest first."""
        engine = self.engine
        if agent not in engine.settings.people:
            raise ApiError(404, f"unknown agent {agent!r}", "agent")
        repo = engine.repository
        if repo is None:
            raise ApiError(503, "no database configured")
        now = datetime.fromtimestamp(engine.clock.seconds(), UTC)
        until = _end_of_today(now, ZoneInfo(engine.settings.site.timezone))
        return repo.follow_ups_due(agent, until=until).addCallback(
            lambda due: {"agent": agent, "until": until, "follow_ups": due})

    def _customers(self, customer: str | None, request: Request) -> Deferred[Any]:
        """``GET /api/customers?q=`` (a number or part of a name) and ``GET /api/customers/<id>``
        (the customer and their last calls; docs/crm.md)."""
        repo = self._repo()
        if customer is None:
            text = _arg(request, "q") or ""
            return repo.run(crm_store.search_customers, text, limit=_int_arg(request, "limit", 20, 1, 1000)).addCallback(
                lambda found: {"customers": found})
        customer_id = _customer_id(customer)

        def with_calls(found: Any) -> Any:
            if found is None:
                raise ApiError(404, f"no customer {customer_id}", "id")
            return repo.run(crm_store.customer_history, customer_id=found.id, phone=found.phone,
                            limit=_int_arg(request, "limit", CUSTOMER_CALLS, 1, 1000)).addCallback(
                lambda calls: {"customer": found, "calls": calls})

        return repo.get_customer(customer_id).addCallback(with_calls)

    def _save_customer(self, customer: str | None, body: dict[str, Any], vip_number_locked: bool) -> Deferred[Any]:
        """``POST /api/customers`` (a new customer; ``ticket`` links that call to them) and
        ``POST /api/customers/<id>`` (changes; docs/crm.md)."""
        ticket = body.pop("ticket", None) if customer is None else None
        if ticket is not None and (not isinstance(ticket, str) or not ticket):
            raise ApiError(400, f"expected a ticket number, got {ticket!r}", "ticket")
        return save_customer(self._repo(), customer, body, ticket=ticket,
                             vip_number_locked=vip_number_locked).addCallback(lambda saved: {"customer": saved})

    def _repo(self) -> Repository:
        repo = self.engine.repository
        if repo is None:
            raise ApiError(503, "no database configured")
        return repo

    def _screen_pop(self, agent: str) -> Deferred[Any]:
        """The call last offered to ``agent``: its call record, the CRM customer and the
        caller's earlier calls."""
        engine = self.engine
        repo = engine.repository
        if repo is None:
            raise ApiError(503, "no database configured")
        linkedid = engine.screen_pops.get(agent)
        if linkedid is None:
            raise ApiError(404, f"no call offered to agent {agent!r} yet", "agent")
        record_d = engine.open_record(linkedid, agent)

        def with_customer(record: Any) -> Any:
            if record is None:
                raise ApiError(404, f"no call record for the call offered to agent {agent!r}", "agent")
            customer: Deferred[Any] = (succeed(None) if record.customer_id is None
                                       else repo.get_customer(record.customer_id))
            calls = repo.run(crm_store.customer_history, customer_id=record.customer_id, phone=record.phone,
                             exclude_id=record.id, limit=CUSTOMER_CALLS)
            return gatherResults([customer, calls], consumeErrors=True).addCallback(
                lambda found: {"call_record": record, "customer": found[0], "calls": found[1]})

        return record_d.addCallback(with_customer)

    def _failed(self, request: Request, failure: Failure) -> None:
        if failure.check(ApiError):
            exc = failure.value
            assert isinstance(exc, ApiError)
            self._finish(request, exc.status, {"error": exc.message, "field": exc.field})
        elif failure.check(InvalidFieldError):
            exc_field = failure.value
            assert isinstance(exc_field, InvalidFieldError)
            self._finish(request, 400, {"error": exc_field.problem, "field": exc_field.field})
        elif failure.check(NotPermitted, DispositionRefused, ReviewRefused, HandOutRefused):
            self._finish(request, 403, {"error": str(failure.value), "field": None})
        elif failure.check(PreviewError):  # found when the lead was checked again (dial)
            preview = failure.value
            assert isinstance(preview, PreviewError)
            self._finish(request, 409, {"error": str(preview), "field": preview.field})
        elif failure.check(NotFoundError):
            self._finish(request, 404, {"error": str(failure.value), "field": None})
        elif failure.check(ConflictError):
            conflict = str(failure.value)
            self._finish(request, 409, {"error": conflict, "field": conflict.split(":", 1)[0] or None})
        elif failure.check(AgentNotOnCall, CallEndedFirst):
            self._finish(request, 409, {"error": str(failure.value), "field": "agent"})
        elif failure.check(RecordingPauseRefused):
            paused = failure.value
            assert isinstance(paused, RecordingPauseRefused)
            self._finish(request, 409, {"error": str(paused), "field": paused.field})
        elif failure.check(TransferRefused):
            refused = failure.value
            assert isinstance(refused, TransferRefused)
            status = 400 if isinstance(refused, UnknownTarget) else 409
            self._finish(request, status, {"error": str(refused), "field": refused.field})
        elif failure.check(AmiActionFailed):
            self._finish(request, 502, {"error": f"Asterisk refused it: {failure.value}", "field": None})
        elif failure.check(*_ASTERISK_UNREACHABLE):
            self._finish(request, 503, {"error": _unreachable(request, failure), "field": None})
        elif failure.check(SpyFailed):
            self._finish(request, 502, {"error": str(failure.value), "field": None})
        elif failure.check(AgentError):
            self._finish(request, 400, {"error": str(failure.value), "field": "agent"})
        elif failure.check(TemplateError):
            self._finish(request, 400, {"error": str(failure.value), "field": "template"})
        elif failure.check(ValueError):
            self._finish(request, 400, {"error": str(failure.value), "field": None})
        else:
            _log.failure("web.internal_error method={method} path={path}", failure,
                         method=_ascii(request.method), path=_ascii(request.path))
            self._finish(request, 500, {"error": "internal error (logged by the daemon)", "field": None})

    def _error(self, request: Request, exc: ApiError) -> bytes:
        return self._body(request, exc.status, {"error": exc.message, "field": exc.field})

    def _body(self, request: Request, status: int, value: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        value = _jsonable(value)
        if _numbers_masked(request, self.engine):
            value = masked_json(value)  # an agent: customers' numbers as 138****8000
        # backslashreplace: an answer always goes out, even one quoting text that is not Unicode
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace")

    def _finish(self, request: Request, status: int, value: Any) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.write(self._body(request, status, value))
        request.finish()


#: Asterisk down or restarting: nothing was done (or its answer never came); the AMI client
#: reconnects by itself, so the same request or form may simply be sent again.
_ASTERISK_UNREACHABLE: tuple[type[Exception], ...] = (AmiNotConnected, AmiConnectionLost, AmiTimeout)


def _unreachable(request: Request, failure: Failure) -> str:
    """Log an action Asterisk could not be reached for; what to tell the person."""
    _log.warn("web.asterisk_unavailable method={method} path={path} error={error}",
              method=_ascii(request.method), path=_ascii(request.path), error=str(failure.value))
    return f"Asterisk is not reachable right now ({failure.value}); try again in a moment"


#: What a page's form may be refused with: shown to the person as it is (anything else is
#: logged as a failure and shown as "<action> failed").
_REFUSALS: tuple[type[Exception], ...] = (
    PreviewError, InvalidFieldError, DispositionRefused, AgentError, HandOutRefused, ReviewRefused, NotPermitted, AgentNotOnCall,
    CallEndedFirst,
    SpyFailed, NotFoundError, ValueError)


class _Page(Resource):
    """An HTML page; its forms (if any) post an action and are answered with a redirect back
    to the page saying what happened (``msg``) or why not (``err``)."""

    isLeaf = True

    @staticmethod
    def _html(request: Request, status: int, text: str) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return text.encode("utf-8")

    @classmethod
    def _send(cls, request: Request, status: int, text: str) -> None:
        """Answer a request left open (``NOT_DONE_YET``) with an HTML page."""
        request.write(cls._html(request, status, text))
        request.finish()

    @classmethod
    def _send_audio(cls, request: Request, file: tuple[bytes, str] | None, missing: str) -> None:
        """Answer a request left open with an audio file ((bytes, format)), or 404 saying ``missing``."""
        if file is None:
            cls._send(request, 404, f"<p>{html_escape(missing)}</p>")
            return
        data, fmt = file
        request.setHeader(b"Content-Type", _AUDIO_TYPES.get(fmt, "application/octet-stream").encode())
        request.setHeader(b"Content-Length", str(len(data)).encode())
        request.write(data)
        request.finish()

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        """The posted form: each field's (first) value, decoded; InvalidFieldError naming a
        field that is not UTF-8 or holds a NUL (nothing is stored altered)."""
        form: dict[str, str] = {}
        for key, values in (request.args or {}).items():
            name = key.decode("utf-8", "backslashreplace")
            try:
                form[name] = values[0].decode("utf-8") if values else ""
            except UnicodeDecodeError as exc:
                raise InvalidFieldError(name, f"not valid UTF-8 (byte {exc.start})") from None
        bad = unusable_text(form)
        if bad is not None:
            raise InvalidFieldError(*bad)
        return form

    @staticmethod
    def _answer(request: Request, done: Deferred[str], page: str, keep: dict[str, str], who: str,
                action: str, *, masked: bool = False) -> int:
        """Redirect to ``page`` (with ``keep`` in its query) once the action is ``done``
        (``masked``: the numbers in what it says masked, as the page shows them)."""

        def back(query: dict[str, str]) -> None:
            if masked:  # the query stays in the browser's address bar and history
                query = {key: mask_numbers_in(text) for key, text in query.items()}
            request.setResponseCode(303)
            request.setHeader(b"Location", f"{page}?{urlencode({**keep, **query})}".encode())
            request.finish()

        def refused(failure: Failure) -> dict[str, str]:
            if failure.check(ApiError):
                exc = failure.value
                assert isinstance(exc, ApiError)
                return {"err": exc.message}
            if failure.check(*_REFUSALS):
                return {"err": str(failure.value)}
            if failure.check(*_ASTERISK_UNREACHABLE):
                return {"err": _unreachable(request, failure)}
            _log.failure("page.action_failed who={who} action={action}", failure, who=who, action=action)
            return {"err": f"{action} failed: {failure.getErrorMessage()}"}

        done.addCallbacks(lambda message: {"msg": message}, refused).addCallback(back)
        return NOT_DONE_YET


class WallboardPage(_Page):
    """``GET /wallboard``: the queues, agents and campaigns as one self-reloading HTML page
    (:mod:`callcenter.wallboard_page`; docs/wallboard.md)."""

    def __init__(self, engine: Engine, dialer: DialerService | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.dialer = dialer

    def render_GET(self, request: Request) -> bytes:
        engine = self.engine
        settings = engine.settings
        now = engine.clock.seconds()
        local = datetime.fromtimestamp(now, ZoneInfo(settings.site.timezone))
        board = Board(
            site=settings.site.name, local_time=f"{local:%Y-%m-%d %H:%M:%S}", queues=engine.queue_views(),
            agents=engine.agents.agents(), people=settings.people,
            campaigns=self.dialer.status() if self.dialer is not None else [], now=now,
            abandon_limit=self.dialer.config.abandon_guard.limit if self.dialer is not None else 0.03,
            staffing=(engine.hotline_queue, engine.staffing_advice()) if engine.hotline_queue else None)
        return self._html(request, 200, render_wallboard(board))


class AgentPage(_Page):
    """``GET /agent/<id>``: the agent's page (state, screen pop, disposition form) and
    ``POST /agent/<id>/login|logout|pause|unpause|disposition`` from its forms, each answered
    with a redirect back to the page saying what happened (:mod:`callcenter.agent_page`); with
    the dialer, also ``preview|dial|skip`` for the leads of preview campaigns."""

    def __init__(self, engine: Engine, dialer: DialerService | None = None, sms: SmsService | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.dialer = dialer
        self.sms = sms

    def _agent(self, request: Request) -> tuple[AgentSettings | None, list[str]]:
        return _named(self.engine, request)

    def render_GET(self, request: Request) -> bytes | int:
        agent, path = self._agent(request)
        if agent is not None and len(path) == 3 and path[1] == "message":
            return self._message(request, agent, path[2])
        if agent is None or len(path) != 1:
            return self._html(request, 404, f"<p>No agent page here: {html_escape('/'.join(path))!s}</p>")
        engine = self.engine
        state, seconds, reason = _state_of(engine, agent.id)
        view = AgentView(
            agent=agent, state=state, state_seconds=seconds, pause_reason=reason,
            timezone=engine.settings.site.timezone,
            preview_campaigns=self.dialer.preview_campaigns() if self.dialer is not None else (),
            held=self.dialer.held_preview(agent.id) if self.dialer is not None else None,
            auto_dial=self.dialer.auto_dial_campaigns() if self.dialer is not None else {},
            auto_dial_held=self.dialer.auto_dial_held(agent.id) if self.dialer is not None else False,
            message=_arg(request, "msg") or "", error=_arg(request, "err") or "", sms=self.sms is not None,
            masked=_numbers_masked(request, engine),
            transfer_queues=tuple(q.name for q in engine.settings.queues),
            block_do_not_call=engine.settings.manual_dial.do_not_call == "block",
            transfer_agents=tuple((a.id, engine.settings.people[a.id].name) for a in engine.agents.agents()
                                  if a.state.value == "ready" and a.id in engine.settings.people))
        linkedid = engine.screen_pops.get(agent.id)
        if linkedid is not None:
            view = dataclasses.replace(view, transfers=engine.transfers_of(linkedid))
        consult = consult_leg(agent.id, engine.calls.channels.values())
        if consult is not None:
            view = dataclasses.replace(view, consulting=(consult.target_id, consult.answered))
        recording = recording_state(engine, agent.id) if state == "on_call" else None
        if recording is not None and recording["recorded"]:
            view = dataclasses.replace(view, recording=(
                recording["paused"], recording["paused_seconds"], engine.settings.recordings.pause_limit_seconds))
        repo = engine.repository
        if repo is None:
            return self._html(request, 200, render_agent_page(view))
        now = datetime.fromtimestamp(engine.clock.seconds(), UTC)
        find = (_arg(request, "find") or "").strip()
        view = dataclasses.replace(view, now=now, find=find)

        def current(opened: CallRecord | None) -> Any:  # the record as stored now: a disposition may have changed it
            return None if opened is None else repo.get_call_record(opened.id)

        def with_customer(record: CallRecord | None) -> Any:
            if record is None:
                return (None, None, None, [])
            customer: Deferred[Any] = (succeed(None) if record.customer_id is None
                                       else repo.get_customer(record.customer_id))
            listed: Deferred[Any] = (succeed(None) if not record.phone
                                     else repo.run(dialer_store.dnc_entry, record.phone))
            history = repo.run(crm_store.customer_history, customer_id=record.customer_id, phone=record.phone,
                               exclude_id=record.id, limit=CUSTOMER_CALLS)
            return gatherResults([customer, listed, history], consumeErrors=True).addCallback(
                lambda found: (record, *found))

        def show(results: list[Any]) -> None:
            (record, customer, do_not_call, history), (follow_ups, found, listed), today, message = results
            self._send(request, 200, render_agent_page(dataclasses.replace(
                view, record=record, customer=customer, do_not_call=do_not_call, history=history,
                follow_ups=follow_ups, found=found, do_not_call_numbers=frozenset(listed),
                today=today[0] if today else None, held_message=message)))

        def with_dnc(lists: list[Any]) -> Any:
            follow_ups, found = lists
            phones = [r.phone for r in follow_ups if r.phone] + [c.phone for c in found or ()]
            if not phones:
                return (follow_ups, found, set())
            return repo.run(dialer_store.dnc_numbers_among, phones).addCallback(
                lambda listed: (follow_ups, found, listed))

        def failed(failure: Failure) -> None:
            _log.failure("agent_page.failed agent={agent}", failure, agent=agent.id)
            self._send(request, 200, render_agent_page(
                dataclasses.replace(view, error="the call record could not be read; try again")))

        popped: Deferred[Any] = (succeed((None, None, None, [])) if linkedid is None else
                                 engine.open_record(linkedid, agent.id).addCallback(current).addCallback(with_customer))
        tz = ZoneInfo(engine.settings.site.timezone)
        searched: Deferred[Any] = (repo.run(crm_store.search_customers, find, limit=20) if find else succeed(None))
        due = gatherResults([repo.follow_ups_due(agent.id, until=_end_of_today(now, tz)), searched],
                            consumeErrors=True).addCallback(with_dnc)
        day = _today(now, tz)
        today: Deferred[Any] = repo.run(agent_time_store.agent_time_report, start=day.start, end=day.end, now=now,
                                        agent_id=agent.id)
        held_ticket = self._held_ticket(agent)
        message: Deferred[Any] = (succeed("") if held_ticket is None else
                                  repo.run(_message_format, held_ticket))
        gatherResults([popped, due, today, message], consumeErrors=True).addCallbacks(show, failed)
        return NOT_DONE_YET

    def _held_ticket(self, agent: AgentSettings) -> str | None:
        """The ticket of the call-back lead the agent holds in preview (None: none)."""
        held = self.dialer.held_preview(agent.id) if self.dialer is not None else None
        return held[1].extra.get("ticket") if held is not None else None

    def _message(self, request: Request, agent: AgentSettings, ticket: str) -> bytes | int:
        """``GET /agent/<id>/message/<ticket>``: the message a caller left (the IVR's
        voicemail), for the agent holding that call back in preview; 403 for anyone else's."""
        repo = self.engine.repository
        if repo is None:
            return self._html(request, 503, "<p>No database configured.</p>")
        if self._held_ticket(agent) != ticket:
            return self._html(request, 403, f"<p>{html_escape(ticket)} is not the call back you hold.</p>")

        def read(record: CallRecord | None) -> Any:
            return None if record is None else repo.run(_message_file, record.id)

        def play(file: tuple[bytes, str] | None) -> None:
            self._send_audio(request, file, f"{ticket} has no message on disk.")

        def failed(failure: Failure) -> None:
            _log.failure("agent_page.message_failed ticket={ticket}", failure, ticket=ticket)
            self._send(request, 500, "<p>the message could not be read</p>")

        repo.get_call_record_by_ticket(ticket).addCallback(read).addCallbacks(play, failed)
        return NOT_DONE_YET

    def render_POST(self, request: Request) -> bytes | int:
        agent, path = self._agent(request)
        if agent is None or len(path) != 2:
            return self._html(request, 404, f"<p>No agent action here: {html_escape('/'.join(path))!s}</p>")
        done = maybeDeferred(lambda: self._act(agent, path[1], self._form(request)))
        return self._answer(request, done, f"/agent/{quote(agent.id)}", {}, agent.id, path[1],
                            masked=_numbers_masked(request, self.engine))

    def _act(self, agent: AgentSettings, action: str, form: dict[str, str]) -> Deferred[str]:
        if action in ("preview", "dial", "skip"):
            return self._preview(agent, action, form)
        service = self.engine.agent_service
        if action == "login":
            return service.login(agent.id).addCallback(lambda _: "logged in")
        if action == "logout":
            return service.logout(agent.id).addCallback(lambda _: "logged out")
        if action == "pause":
            reason = _required(form, "reason", "say why you pause (break, lunch, training ...)")
            return service.pause(agent.id, reason).addCallback(lambda _: f"paused ({reason})")
        if action == "unpause":
            return service.unpause(agent.id).addCallback(lambda _: "ready")
        if action == "disposition":
            ticket, body = disposition_body(agent.id, form, self.engine.settings.site.timezone)
            return save_disposition(self.engine, ticket, parse_disposition(body)).addCallback(
                lambda record: f"disposition of {record.ticket_number} saved: {record.outcome or 'no outcome'}")
        if action == "call":
            return self._call(agent, form)
        if action == "customer":
            return self._save_customer(agent, form)
        if action == "transfer":
            kind, _, target = form.get("to", "").strip().partition(":")
            if kind == "agent":
                return service.transfer_to_agent(agent.id, target).addCallback(
                    lambda _: f"handed to agent {target}: their phone rings with the caller")
            if kind != "queue":
                raise InvalidFieldError("to", "choose a queue or an agent to transfer to")
            return service.transfer(agent.id, target).addCallback(
                lambda _: f"handed on to {target}: the caller waits there for its agents")
        if action == "consult":
            target = _required(form, "to_agent", "choose the agent to consult")
            return service.consult(agent.id, target).addCallback(
                lambda _: f"consulting agent {target}: the caller holds; hand over or go back to them")
        if action == "consult-number":
            phone = _required(form, "phone", "type the number to consult")
            return service.consult_number(agent.id, phone).addCallback(
                lambda _: f"calling {canonical_phone(phone)}: the caller holds; hand over or go back to them")
        if action == "recording-pause":
            return service.pause_recording(agent.id).addCallback(
                lambda _: "recording paused: the customer may read out the card number; resume it after")
        if action == "recording-resume":
            return service.resume_recording(agent.id).addCallback(lambda _: "recording again")
        if action == "consult-complete":
            return service.complete_consult(agent.id).addCallback(lambda _: "handed over: your phone is free")
        if action == "consult-cancel":
            return service.cancel_consult(agent.id).addCallback(lambda _: "back with the caller")
        if action == "consult-conference":
            return service.conference_consult(agent.id).addCallback(
                lambda _: "the caller, you and your colleague are on one call: hang up to leave them talking")
        if action == "sms-ticket":
            ticket = form.get("ticket", "").strip()

            def said(created: BroadcastCreated) -> str:
                if created.queued:
                    return f"the ticket number {ticket} is being texted to the caller"
                return f"{ticket} not texted: " + ", ".join(created.skipped)

            return text_ticket(self.engine, self.sms, ticket, agent.id).addCallback(said)
        raise ApiError(404, f"no agent action {action!r}")

    def _call(self, agent: AgentSettings, form: dict[str, str]) -> Deferred[str]:
        """"Call": a number typed (``phone``), or the number of a call (``ticket``: a follow-up,
        the screen pop's call back) or of a CRM customer (``customer_id``), looked up here
        (:func:`number_to_call`), so that a page showing numbers masked carries none."""
        phone = form.get("phone", "").strip()
        ticket, customer = form.get("ticket", "").strip(), form.get("customer_id", "").strip()
        who: Deferred[tuple[str, str | None, int | None]] = (
            succeed((phone, form.get("name", "").strip() or None, _customer_id(customer) if customer else None))
            if phone or not (ticket or customer) else
            number_to_call(self.engine.repository, ticket=ticket or None,
                           customer_id=_customer_id(customer) if not ticket else None))

        def call(found: tuple[str, str | None, int | None]) -> Deferred[str]:
            number, name, customer_id = found
            return call_customer(self.engine, agent.id, number, name=name, customer_id=customer_id).addCallback(
                lambda _: f"your phone rings: pick it up and {name or number} is called")

        return who.addCallback(call)

    def _save_customer(self, agent: AgentSettings, form: dict[str, str]) -> Deferred[str]:
        """The screen pop's CRM form: a new caller (linked to the call; the number is the
        call's) or a customer's notes."""
        repo = self.engine.repository
        if repo is None:
            raise ApiError(503, "no database configured")
        fields: dict[str, Any] = {k: form[k] for k in ("name", "phone", "email", "notes") if k in form}
        customer = form.get("customer_id", "").strip() or None
        if customer is not None:  # an empty email clears the customer's
            fields["email"] = form.get("email") or None
        elif fields.get("email", "").strip() == "":
            fields.pop("email", None)
        ticket = form.get("ticket") or None
        if customer is None and "phone" not in fields and ticket is not None:
            saved = number_to_call(repo, ticket=ticket, customer_id=None).addCallback(
                lambda found: save_customer(repo, None, {**fields, "phone": found[0]}, ticket=ticket))
        else:
            saved = save_customer(repo, customer, fields, ticket=ticket,
                                  vip_number_locked=vip_number_locked(Caller(person=agent)))
        if customer is not None:
            return saved.addCallback(lambda found: f"customer {found.name} saved")
        return saved.addCallback(
            lambda found: f"{found.name} ({found.phone}) is in the CRM now: their calls pop up with their record")

    def _preview(self, agent: AgentSettings, action: str, form: dict[str, str]) -> Deferred[str]:
        dialer = _running(self.dialer)
        if action == "preview":
            campaign = form.get("campaign", "").strip()
            return dialer.preview_next(agent.id, campaign).addCallback(
                lambda lead: f"next lead of {campaign}: {' '.join(filter(None, (lead.name, lead.phone)))}"
                if lead is not None else f"no lead of {campaign} is due now")
        if action == "dial":
            held = dialer.held_preview(agent.id)
            phone = held[1].phone if held is not None else ""
            return dialer.preview_dial(agent.id).addCallback(lambda _: f"your phone answered: dialing {phone}")
        reason = _required(form, "reason", "say why you skip this lead")
        minutes_text = form.get("retry_minutes", "").strip() or str(PREVIEW_SKIP_RETRY_MINUTES)
        if not is_digits(minutes_text) or len(minutes_text) > 6:
            raise InvalidFieldError("retry_minutes", f"expected whole minutes, got {minutes_text[:40]!r}")
        return dialer.preview_skip(agent.id, reason, int(minutes_text)).addCallback(
            lambda _: f"skipped: the lead is due again in {int(minutes_text)} min")


_AUDIO_TYPES: dict[str, str] = {"wav": "audio/wav", "wav49": "audio/wav", "gsm": "audio/x-gsm", "mp3": "audio/mpeg",
                                "ogg": "audio/ogg"}


def _on_disk(session: Any, call_record_id: int, *, message: bool = False) -> tuple[Path, str] | None:
    """(the path, the format) of the call's first recording still on disk (``message``: the
    message its caller left, ``<uniqueid>-message.<fmt>``, dialplans/hotline.conf), or None;
    blocking: run in the repository's thread pool."""
    for recording in list_recordings_for_call(session, call_record_id):
        path = Path(recording.path)
        if (not message or path.stem.endswith(MESSAGE_SUFFIX)) and recording.purged_at is None and path.is_file():
            return path, recording.format
    return None


def _read(found: tuple[Path, str] | None) -> tuple[bytes, str] | None:
    return None if found is None else (found[0].read_bytes(), found[1])


def _part_file(session: Any, recording: Recording | None) -> tuple[bytes, str] | None:
    """(the bytes, the format) of ``recording`` (a part of a call, :func:`review_part`) if it
    is still on disk, else None (blocking: run in the repository's thread pool)."""
    if recording is None or recording.purged_at is not None:
        return None
    path = Path(recording.path)
    return (path.read_bytes(), recording.format) if path.is_file() else None


def _message_file(session: Any, call_record_id: int) -> tuple[bytes, str] | None:
    """(the bytes, the format) of the message the call's caller left, or None (blocking)."""
    return _read(_on_disk(session, call_record_id, message=True))


def _message_format(session: Any, ticket: str) -> str:
    """The format of the message the caller of ``ticket`` left, on disk; "" for none (blocking)."""
    record = get_call_record_by_ticket(session, ticket)
    found = None if record is None else _on_disk(session, record.id, message=True)
    return "" if found is None else found[1]


class LeadPage(_Page):
    """``GET /lead/<id>[?team=T]``: a team lead's (or manager's) page, and ``POST
    /lead/<id>/spy|unpause|logout|handout|takeback|qa`` from its forms, each answered with a redirect back
    saying what happened (:mod:`callcenter.lead_page`)."""

    def __init__(self, engine: Engine, dialer: DialerService | None = None, sms: SmsService | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.dialer = dialer
        self.sms = sms

    def _person(self, request: Request) -> tuple[AgentSettings | None, list[str]]:
        person, path = _named(self.engine, request)
        return (person, path) if person is not None and person.role in ("lead", "manager") else (None, path)

    def _teams(self, person: AgentSettings) -> list[str]:
        agents = self.engine.settings.agents
        return sorted({a.team for a in agents if a.role == "agent" and a.team and person.oversees(a.team)})

    def render_GET(self, request: Request) -> bytes | int:
        person, path = self._person(request)
        if person is not None and len(path) == 3 and path[1] == "recording":
            return self._recording(request, person, path[2])
        if person is None or len(path) != 1:
            return self._html(request, 404, "<p>No team lead's page here: only leads and managers have one.</p>")
        engine = self.engine
        settings = engine.settings
        teams = self._teams(person)
        team = _arg(request, "team") or ""
        team = team if team in teams else (teams[0] if teams else person.team)
        members = []
        channels = list(engine.calls.channels.values())
        for member in settings.agents:
            if member.team == team and member.role == "agent":
                state, seconds, _ = _state_of(engine, member.id)
                consult = consult_leg(member.id, channels) if state == "on_call" else None
                members.append(TeamAgent(agent=member, state=state, state_seconds=seconds,
                                         consulting=consult.target_id if consult is not None else None))
        view = LeadView(person=person, team=team, teams=teams, agents=members, campaigns=[], sample=[],
                        scorecard=settings.qa.scorecard, timezone=settings.site.timezone,
                        message=_arg(request, "msg") or "", error=_arg(request, "err") or "",
                        sms=self.sms is not None)
        now = datetime.fromtimestamp(engine.clock.seconds(), UTC)
        span = _today(now, ZoneInfo(settings.site.timezone))
        today = span.first
        gathered: list[Deferred[Any]] = []
        dialer = self.dialer
        if dialer is not None:
            for campaign in dialer.campaigns.values():
                def held(holdings: list[LeadHolding], name: str = campaign.name,
                         mode: str = campaign.config.handout) -> CampaignHoldings:
                    return CampaignHoldings(name, mode, holdings)

                gathered.append(dialer.repository.run(dialer_store.lead_holdings, campaign.record.id).addCallback(held))
        repo = engine.repository
        sample: Deferred[Any] = (succeed([]) if repo is None else repo.qa_candidates(since=span.start, until=span.end)
                                 .addCallback(lambda found: choose_sample(found, [m.agent.id for m in members],
                                                                          settings.qa.sample_per_agent, today)))
        times: Deferred[Any] = (succeed([]) if repo is None else repo.run(
            agent_time_store.agent_time_report, start=span.start, end=span.end, now=now))

        def show(results: list[Any]) -> None:
            *campaigns, calls, times_today = results
            by_agent = {line.agent_id: line for line in times_today}
            agents = [dataclasses.replace(member, today=by_agent.get(member.agent.id)) for member in members]
            page = render_lead_page(dataclasses.replace(view, agents=agents, campaigns=campaigns, sample=calls))
            self._send(request, 200, page)

        def failed(failure: Failure) -> None:
            _log.failure("lead_page.failed lead={lead}", failure, lead=person.id)
            self._send(request, 200, render_lead_page(
                dataclasses.replace(view, error="the leads or the QA sample could not be read; try again")))

        gatherResults([*gathered, sample, times], consumeErrors=True).addCallbacks(show, failed)
        return NOT_DONE_YET

    def _recording(self, request: Request, person: AgentSettings, ticket: str) -> int:
        """``GET /lead/<id>/recording/<ticket>[?recording=ID]``: the recording of the call's part
        the person scores (:func:`review_part`, as ``POST .../qa`` with the same ``recording``),
        to play on the page (read in the repository's thread pool; 403 for a part the person
        may not score, 404 for a recording not of this call)."""
        engine = self.engine
        wanted = _arg(request, "recording") or ""

        def read(repo: Any, record: CallRecord) -> Deferred[tuple[bytes, str] | None]:
            recording_id = whole_number("recording", wanted) if wanted else None

            def heard(recordings: list[Recording]) -> Deferred[tuple[bytes, str] | None]:
                part = review_part(engine.settings.agents, person.id, record.agent_id, recordings, recording_id)
                return repo.run(_part_file, part.recording)  # type: ignore[no-any-return]

            return repo.list_recordings_for_call(record.id).addCallback(heard)  # type: ignore[no-any-return]

        def play(file: tuple[bytes, str] | None) -> None:
            self._send_audio(request, file, f"{ticket} has no recording on disk.")

        def refused(failure: Failure) -> None:
            status = (403 if failure.check(ReviewRefused) else 404 if failure.check(ApiError, InvalidFieldError)
                      else 500)
            if status == 500:
                _log.failure("lead_page.recording_failed ticket={ticket}", failure, ticket=ticket)
            text = str(failure.value) if status != 500 else "the recording could not be read"
            self._send(request, status, f"<p>{html_escape(text)}</p>")

        _with_record(engine, ticket, read).addCallbacks(play, refused)
        return NOT_DONE_YET

    def render_POST(self, request: Request) -> bytes | int:
        person, path = self._person(request)
        if person is None or len(path) != 2:
            return self._html(request, 404, "<p>No team lead's action here.</p>")
        try:
            form = self._form(request)
        except InvalidFieldError as exc:
            return self._answer(request, fail(exc), f"/lead/{quote(person.id)}", {}, person.id, path[1])
        done = maybeDeferred(self._act, person, path[1], form)
        return self._answer(request, done, f"/lead/{quote(person.id)}", {"team": form.get("team", "")},
                            person.id, path[1])

    def _act(self, person: AgentSettings, action: str, form: dict[str, str]) -> Deferred[str]:
        engine = self.engine
        if action == "spy":
            agent, mode = form.get("agent", ""), form.get("mode", "")
            return engine.supervisor.spy(person.id, agent, mode).addCallback(
                lambda _: f"your phone is in {mode} on agent {agent}'s call")
        if action in ("unpause", "logout"):
            agent_id = form.get("agent", "")
            member = engine.settings.people.get(agent_id)
            if member is None or member.role != "agent" or not person.oversees(member.team):
                raise ApiError(403, f"agent {agent_id!r} is not in {person.id}'s team", "agent")
            service = engine.agent_service
            if action == "unpause":
                return service.unpause(agent_id).addCallback(lambda _: f"agent {agent_id} is ready again")
            return service.logout(agent_id).addCallback(lambda _: f"agent {agent_id} logged out")
        if action in ("handout", "takeback"):
            dialer = _running(self.dialer)
            name, body = form_handout(person.id, form)
            if action == "takeback":
                body = {k: v for k, v in body.items() if k in ("by", "team", "agents")}

            def said(result: dict[str, Any]) -> str:
                if "taken" in result:
                    return f"{result['taken']} lead(s) of {name} taken back"
                given = result["given"]
                return f"{sum(given.values())} lead(s) of {name} given: " + ", ".join(
                    f"{who} {n}" for who, n in given.items())

            return carry_out_handout(engine, dialer, name, action, body).addCallback(said)
        if action == "sms":
            body = form_sms(person.id, form)

            def queued(created: BroadcastCreated) -> str:
                skipped = ", ".join(f"{n} {why}" for why, n in created.skipped.items())
                return (f"{created.queued} text(s) to the leads of {body['campaign']} queued"
                        + (f"; skipped: {skipped}" if skipped else ""))

            return send_broadcast(engine, self.dialer, self.sms, body).addCallback(queued)
        if action == "qa":
            ticket, body = form_review(person.id, form, engine.settings.qa.scorecard)
            review = parse_review(body, engine.settings.qa.scorecard)
            return save_review(engine, ticket, review).addCallback(
                lambda stored: f"{ticket} scored {stored.score:.1f}" + (" (failed: critical item)"
                                                                        if stored.failed else ""))
        raise ApiError(404, f"no team lead action {action!r}")


class ReportsPage(_Page):
    """``GET /reports?from=DAY&to=DAY&by=day|agent|queue``: the call report, the commission,
    the QA scores, the texts and the agents' time of a period on one page (:mod:`callcenter.reports_page`), read through
    the API's own report routes."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.api = ApiResource(engine)

    def render_GET(self, request: Request) -> bytes | int:
        settings = self.engine.settings
        path = _path(request)
        if path == ["records.csv"]:
            return self._call_log(request)
        if path:
            return self._html(request, 404, '<p>No such report. <a href="/reports">The reports</a>.</p>')
        view = ReportsView(site=settings.site.name, timezone=settings.site.timezone, first=None, last=None,
                           by=_arg(request, "by") or "day", scorecard=settings.qa.scorecard, people=settings.people)
        try:
            reading = [self.api._calls_report(request), self.api._commission_report(request),
                       self.api._qa_report(request), self.api._sms_report(request),
                       self.api._agent_time_report(request)]
        except ApiError as exc:
            error = f"{exc.field}: {exc.message}" if exc.field else exc.message
            return self._html(request, 400, render_reports_page(dataclasses.replace(view, error=error)))
        except InvalidFieldError as exc:  # "field: problem"
            return self._html(request, 400, render_reports_page(dataclasses.replace(view, error=str(exc))))

        def show(results: list[dict[str, Any]]) -> None:
            calls, commission, qa, sms, agent_time = results
            full = dataclasses.replace(view, first=calls["from"], last=calls["to"], calls=calls["lines"],
                                       commission=(commission["lines"], commission["totals"]), qa=qa["lines"],
                                       sms=sms["report"], agent_time=agent_time["lines"])
            self._send(request, 200, render_reports_page(full))

        def failed(failure: Failure) -> None:
            _log.failure("reports_page.failed", failure)
            self._send(request, 500, render_reports_page(
                dataclasses.replace(view, error="the reports could not be read; try again")))

        gatherResults(reading, consumeErrors=True).addCallbacks(show, failed)
        return NOT_DONE_YET

    def _call_log(self, request: Request) -> bytes | int:
        """``GET /reports/records.csv?from=DAY&to=DAY``: the period's call log as a CSV download
        (:mod:`callcenter.call_log`); a team lead gets their team's calls, a manager everyone's."""
        settings = self.engine.settings
        try:
            repo, span = self.api._report_period(request)
        except ApiError as exc:
            return self._html(request, 400, f"<p>{html_escape(exc.field or '')}: {html_escape(exc.message)}</p>")
        days = (span.last - span.first).days + 1
        if days > CALL_LOG_MAX_DAYS:
            return self._html(request, 400, f"<p>to: the call log is at most {CALL_LOG_MAX_DAYS} days at once "
                                            f"(a quarter), got {days}</p>")
        person = person_of(request)
        agents = settings.team_members(person.team) if person is not None and person.role != "manager" else None
        tz, people = ZoneInfo(settings.site.timezone), settings.people

        def build(session: Any) -> bytes:  # in the repository's thread: SQL, CSV and its encoding
            records = iter_call_records_between(session, since=span.start, until=span.end, agents=agents)
            return call_log_csv(records, tz, people).encode("utf-8-sig")

        d: Deferred[bytes] = repo.run(build)

        def send(data: bytes) -> None:
            request.setHeader(b"Content-Type", b"text/csv; charset=utf-8")
            request.setHeader(b"Content-Disposition",
                              f'attachment; filename="calls-{span.first.isoformat()}-{span.last.isoformat()}.csv"'
                              .encode())
            request.setHeader(b"Cache-Control", b"no-store")
            request.write(data)
            request.finish()

        def failed(failure: Failure) -> None:
            _log.failure("reports_page.call_log_failed", failure)
            self._send(request, 500, "<p>The call log could not be read; try again.</p>")

        d.addCallbacks(send, failed)
        return NOT_DONE_YET


class PasswordPage(_Page):
    """``GET /password``: the signed-in person's form to change their own web password;
    ``POST /password`` (current, new, repeat) changes it and comes back saying so
    (docs/web-access.md). The check and the new hash run in a thread (scrypt is slow on
    purpose); the guard reads the changed file at the next request."""

    def __init__(self, state_dir: Path, run_blocking: Callable[..., Deferred[Any]]) -> None:
        super().__init__()
        self.state_dir = state_dir
        self._run = run_blocking

    def render_GET(self, request: Request) -> bytes:
        person = person_of(request)
        message, error = _arg(request, "msg") or "", _arg(request, "err") or ""
        if person is None:
            body = "<p>The host's API token has no password: people's are set with <code>callcenter web password ID</code>.</p>"
        else:
            body = (f"<p>Signed in as {html_escape(person.name)} ({html_escape(person.id)}).</p>"
                    + (f'<p class="msg">{html_escape(message)}</p>' if message else "")
                    + (f'<p class="err">{html_escape(error)}</p>' if error else "")
                    + '<form method="post" action="/password">'
                    '<p><label>Current password <input type="password" name="current" autocomplete="current-password">'
                    '</label></p><p><label>New password <input type="password" name="new" autocomplete="new-password">'
                    '</label></p><p><label>New password again <input type="password" name="repeat" '
                    'autocomplete="new-password"></label></p><p><button>Change my password</button></p></form>'
                    f'<p class="muted">At least {MIN_PASSWORD_LENGTH} characters. After the change your browser '
                    'asks you to sign in again, with the new password.</p>')
        return self._html(request, 200, '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                          "<title>Change password</title><style>.err{color:#a00}.msg{color:#070}.muted{color:#666}"
                          f'</style></head><body><h1>Change password</h1>{body}<p><a href="/">front page</a></p>'
                          "</body></html>")

    def render_POST(self, request: Request) -> bytes | int:
        person = person_of(request)
        if person is None:
            return self._html(request, 400, "<p>The host's API token has no password to change.</p>")
        try:
            form = self._form(request)
        except InvalidFieldError as exc:
            return self._html(request, 400, f"<p>{html_escape(str(exc))}</p>")
        current, new, repeat = form.get("current", ""), form.get("new", ""), form.get("repeat", "")
        state_dir = self.state_dir

        def change() -> str:  # in a thread: scrypt twice, then the file
            stored = read_web_passwords(state_dir).get(person.id)
            matches = stored is not None and check_password(stored, current)
            problem = password_change_problem(matches, new, repeat, current)
            if problem is not None:
                raise ValueError(problem)
            set_web_password(state_dir, person.id, hash_password(new))
            return "password changed: sign in again with the new one"

        def logged(message: str) -> str:
            _log.info("web.password_changed person={person}", person=person.id)
            return message

        return self._answer(request, self._run(change).addCallback(logged), "/password", {}, person.id,
                            "change password")


class IndexPage(_Page):
    """``GET /``: the front page, linking the wallboard, the reports and the pages the signed-in
    person may open (everyone's, for the host's token)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def render_GET(self, request: Request) -> bytes:
        if _path(request):
            return self._html(request, 404, '<p>No such page. <a href="/">The front page</a> lists them.</p>')
        return self._html(request, 200, render_index(self.settings.site.name, self.settings.teams,
                                                     self.settings.agents, person_of(request)))
