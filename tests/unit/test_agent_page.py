"""The agent's page (callcenter.agent_page, http_api.AgentPage) on a real database (SQLite and PostgreSQL).

What a seated agent sees and does without any other tool: the call offered to them with the
CRM customer (the screen pop), the disposition form that writes the record through the same
checks as the API, log in, pause with a reason, ready, log out; each action answered by a
redirect back to the page saying what happened.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from callcenter.agent_page import (
    AgentView,
    disposition_body,
    refreshes,
    render_agent_page,
)
from callcenter.ami.codec import Message
from callcenter.http_api import AgentPage, ApiResource
from callcenter.settings import AgentSettings, load_settings
from callcenter.sms.service import SmsService
from callcenter.state.agents import AgentBoard
from callcenter.state.calls import Channel, ChannelState
from callcenter.storage import models
from callcenter.storage.records import (
    CallRecord,
    InvalidFieldError,
    NewCallRecord,
    NewCustomer,
)
from callcenter.transfer import (
    REFER_CONTEXT,
    ConsultRefused,
    TransferRefused,
    UnknownQueue,
)
from tests.httpapi import get_json, post_json, signed_in
from tests.syncrepository import SyncRepository

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")
STARTED = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class FakeAgentService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def _did(self, *call: str) -> Deferred[list[Any]]:
        self.calls.append(call)
        return succeed([])

    def login(self, agent: str) -> Deferred[list[Any]]:
        return self._did("login", agent)

    def logout(self, agent: str) -> Deferred[list[Any]]:
        return self._did("logout", agent)

    def pause(self, agent: str, reason: str) -> Deferred[list[Any]]:
        return self._did("pause", agent, reason)

    def unpause(self, agent: str) -> Deferred[list[Any]]:
        return self._did("unpause", agent)

    def call(self, agent: str, phone: str, *, name: str | None = None, customer_id: int | None = None) -> Deferred[Any]:
        self.calls.append(("call", agent, phone, name or "", str(customer_id)))
        return succeed(None)

    def transfer(self, agent: str, queue: str) -> Deferred[Any]:
        if queue == "billing":
            raise UnknownQueue("no queue 'billing' to transfer to (queues: hotline, outbound)")
        if queue == "hotline":
            raise TransferRefused("nobody else is logged in to queue 'hotline'", "queue")
        return self._did("transfer", agent, queue)

    def transfer_to_agent(self, agent: str, target: str) -> Deferred[Any]:
        return self._did("transfer_to_agent", agent, target)

    def consult(self, agent: str, target: str) -> Deferred[Any]:
        return self._did("consult", agent, target)

    def consult_number(self, agent: str, phone: str) -> Deferred[Any]:
        return self._did("consult_number", agent, phone)

    def complete_consult(self, agent: str) -> Deferred[Any]:
        if agent == "2102":
            raise ConsultRefused("agent 2105 has not answered yet: wait, or cancel the consult")
        return self._did("complete_consult", agent)

    def cancel_consult(self, agent: str) -> Deferred[Any]:
        return self._did("cancel_consult", agent)

    def conference_consult(self, agent: str) -> Deferred[Any]:
        return self._did("conference_consult", agent)


def _engine(sessions: sessionmaker[Session]) -> tuple[Any, CallRecord]:
    repo = SyncRepository(sessions)
    customer = repo.create_customer(NewCustomer(name="Zhang <Wei>", phone="13800138000", vip=True,
                                                notes="prefers mornings")).result
    record = repo.create_call_record(NewCallRecord(
        started_at=STARTED, direction="inbound", phone="13800138000", customer_id=customer.id,
        customer_name=customer.name, agent_id="2101", queue="hotline", ivr_path=("2", "1")),
        site_prefix="GD").result
    clock = Clock()
    clock.advance(1_000)
    board = AgentBoard({"hotline": 15})
    board.handle(Message.from_pairs([
        ("Event", "QueueMemberAdded"), ("Queue", "hotline"), ("Interface", "PJSIP/agent2101"),
        ("StateInterface", "PJSIP/agent2101"), ("Paused", "0"), ("Status", "1")]), 930.0)
    engine = SimpleNamespace(
        settings=SETTINGS, repository=repo, clock=clock, agents=board, agent_service=FakeAgentService(),
        screen_pops={"2101": "1733364000.1"}, transfers_of=lambda linkedid: (), calls=SimpleNamespace(channels={}),
        open_record=lambda linkedid, agent: succeed(record if linkedid == "1733364000.1" else None))
    return engine, record


def _get(page: AgentPage, *path: str, person: AgentSettings | None = None) -> tuple[int, str]:
    request = signed_in(DummyRequest([p.encode() for p in path]), person)
    body = page.render_GET(request)  # type: ignore[arg-type]
    text = body if isinstance(body, bytes) else b"".join(request.written)
    return request.responseCode or 200, text.decode()


def _post(page: AgentPage, path: list[str], form: dict[str, str], *,
          person: AgentSettings | None = None) -> tuple[int, dict[str, list[str]]]:
    request = signed_in(DummyRequest([p.encode() for p in path]), person)
    request.method = b"POST"
    request.path = ("/agent/" + "/".join(path)).encode()  # a real Request has it; DummyRequest does not
    request.args = {k.encode(): [v.encode()] for k, v in form.items()}
    page.render_POST(request)  # type: ignore[arg-type]
    assert request.finished
    (location,) = request.responseHeaders.getRawHeaders(b"location")
    url = urlsplit(location.decode())
    assert url.path == f"/agent/{path[0]}"
    return request.responseCode, parse_qs(url.query)


def test_the_screen_pop_then_the_disposition_written_from_the_form(sessions: sessionmaker[Session]) -> None:
    engine, record = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    status, html = _get(page, "2101")
    assert status == 200
    assert f"<h2>Call {record.ticket_number}</h2>" in html
    assert "<td>Caller</td><td>13800138000</td>" in html and "<td>IVR choices</td><td>2 &gt; 1</td>" in html
    assert "<td>Started</td><td>2026-12-05 10:00</td>" in html  # the site's time zone
    assert 'Customer: Zhang &lt;Wei&gt; <span class="vip">VIP</span>' in html and "prefers mornings" in html
    assert "State: <span class=\"state\">ready</span> for 1:10" in html
    assert '<a href="/signout">sign out</a>' in html
    assert 'http-equiv="refresh"' not in html  # a call without an outcome is on screen: no reload
    assert f'name="ticket" value="{record.ticket_number}"' in html

    status, query = _post(page, ["2101", "disposition"], {
        "ticket": record.ticket_number, "outcome": "resolved", "issue_type": "billing", "notes": "refund sent",
        "follow_up_at": "2026-12-07T10:00", "customer_name": "", "sale_amount": ""})
    assert (status, query) == (303, {"msg": [f"disposition of {record.ticket_number} saved: resolved"]})
    stored = engine.repository.get_call_record(record.id).result
    assert (stored.outcome, stored.issue_type, stored.description) == ("resolved", "billing", "refund sent")
    assert stored.follow_up_at == datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert stored.customer_name == "Zhang <Wei>"  # left empty in the form: not changed

    status, html = _get(page, "2101")
    assert "<td>Outcome</td><td>resolved</td>" in html and 'value="2026-12-07T10:00"' in html
    assert '<meta http-equiv="refresh" content="3; url=/agent/2101">' in html  # waiting for the next call


def test_the_customer_asks_not_to_be_called_again_from_the_form(sessions: sessionmaker[Session]) -> None:
    """The form's do-not-call box puts the caller's number on the DNC list with the disposition."""
    from callcenter.storage import dialer as dialer_store

    engine, record = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    assert '<input type="checkbox" name="do_not_call" value="yes">' in _get(page, "2101")[1]
    engine.clock = Clock()
    engine.clock.advance(datetime(2026, 12, 5, 2, 31, tzinfo=UTC).timestamp())  # 10:31 in Shanghai
    status, query = _post(page, ["2101", "disposition"], {
        "ticket": record.ticket_number, "outcome": "not interested", "do_not_call": "yes"})
    assert (status, query) == (303, {"msg": [f"disposition of {record.ticket_number} saved: not interested"]})
    assert engine.repository.run(dialer_store.is_dnc, "13800138000").result is True
    html = _get(page, "2101")[1]  # the screen pop now warns, and the box is gone
    assert ('<p class="err">Do not call: 13800138000 is on the do-not-call list since 2026-12-05 10:31 '
            f"(agent: asked on call {record.ticket_number}). No sales offers;") in html, html
    assert 'name="do_not_call"' not in html and "on the do-not-call list already" in html


def test_todays_follow_ups_are_listed_overdue_first_until_the_customer_is_called_again(
        sessions: sessionmaker[Session]) -> None:
    engine, record = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    repo = engine.repository
    engine.clock = Clock()
    engine.clock.advance(datetime(2026, 12, 7, 3, 0, tzinfo=UTC).timestamp())  # 11:00 in Shanghai

    def call(phone: str, follow_up: datetime | None, notes: str = "") -> str:
        made = repo.create_call_record(NewCallRecord(
            started_at=STARTED, direction="inbound", phone=phone, agent_id="2101", queue="hotline",
            follow_up_at=follow_up, description=notes), site_prefix="GD").result
        return str(made.ticket_number)

    overdue = call("13900000001", datetime(2026, 12, 7, 1, 30, tzinfo=UTC), "send the <contract>")  # 09:30
    later = call("13900000002", datetime(2026, 12, 7, 8, 0, tzinfo=UTC))  # 16:00 today
    call("13900000003", datetime(2026, 12, 8, 2, 0, tzinfo=UTC))  # tomorrow: not yet
    status, html = _get(page, "2101")
    assert status == 200 and "<h2>Follow-ups due today (2)</h2>" in html, html
    assert (f"<tr><td class=err>09:30 (overdue)</td><td>{overdue}</td><td></td><td>13900000001</td><td></td>"
            '<td>send the &lt;contract&gt;</td><td><form class="inline" method="post" action="/agent/2101/call">'
            f'<input type="hidden" name="ticket" value="{overdue}"><button type="submit">Call</button></form></td>'
            "</tr>") in html  # a click calls the customer back (docs/agents.md, "Calling a customer")
    assert f"<tr><td>16:00</td><td>{later}</td>" in html
    assert "(do not call)" not in html
    from callcenter.storage import dialer as dialer_store

    repo.run(dialer_store.add_dnc, ["+86 139 0000 0002"], source="agent", now=datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
    html = _get(page, "2101")[1]  # a follow-up whose customer asked not to be called is flagged
    assert '<td>13900000002 <span class="err">(do not call)</span></td>' in html, html
    assert html.count("(do not call)") == 1
    repo.create_call_record(NewCallRecord(started_at=datetime(2026, 12, 7, 2, 0, tzinfo=UTC), direction="outbound",
                                          phone="13900000001", agent_id="2101"), site_prefix="GD")  # called back
    status, html = _get(page, "2101")
    assert "<h2>Follow-ups due today (1)</h2>" in html and overdue not in html.split("Follow-ups")[1]
    assert record.ticket_number in html  # the screen pop is still there
    api = ApiResource(engine)  # the same list for the CLI (callcenter agent follow-ups 2101)
    status, body = get_json(api, [b"agents", b"2101", b"follow-ups"])
    assert status == 200 and [r["ticket_number"] for r in body["follow_ups"]] == [later], body
    assert body["until"] == "2026-12-07T23:59:59.999999+08:00"  # the end of the day in Shanghai
    assert get_json(api, [b"agents", b"nobody", b"follow-ups"])[0] == 404


def test_the_agent_texts_the_caller_the_ticket_number(sessions: sessionmaker[Session]) -> None:
    """With SMS on, the screen pop has a button; the text is sms.ticket_template, signed, without the
    opt-out note (a notice, not marketing); only someone who may disposition the call may send it."""
    engine, record = _engine(sessions)
    settings = replace(SETTINGS, sms=replace(SETTINGS.sms, gateway="10.0.0.5", signature="【某某公司】"))
    ami = SimpleNamespace(subscribe=lambda *a: SimpleNamespace(cancel=lambda: None), connected=False)
    sms = SmsService(settings, ami, engine.repository, engine.clock, gateway="10.0.0.5")
    page = AgentPage(engine, None, sms)  # type: ignore[arg-type]
    status, html = _get(page, "2101")
    assert 'action="/agent/2101/sms-ticket"' in html and "Text the ticket number to 13800138000" in html
    assert _post(page, ["2101", "sms-ticket"], {"ticket": record.ticket_number}) == (
        303, {"msg": [f"the ticket number {record.ticket_number} is being texted to the caller"]})
    assert _post(page, ["2102", "sms-ticket"], {"ticket": record.ticket_number})[1]["err"] == [
        "agent 2102 may disposition only their own calls; this call was taken by agent 2101"]
    (sent,) = sms.recent().result
    assert (sent.name, sent.created_by, sent.by_status) == (f"ticket {record.ticket_number}", "2101", {"queued": 1})
    with sessions.begin() as session:
        body = session.scalar(select(models.SmsMessage.body))
    assert body == f"【某某公司】您好，您本次来电的工单号为{record.ticket_number}，感谢您的来电。"
    api = ApiResource(engine, None, None, sms)  # type: ignore[arg-type]
    status, answer = post_json(api, [b"call-records", record.ticket_number.encode(), b"sms"], {"by": "2101"})
    assert status == 200 and answer["broadcast"]["queued"] == 1, answer
    status, answer = post_json(api, [b"call-records", b"GD20990101001", b"sms"], {"by": "2101"})
    assert (status, answer["field"]) == (404, "ticket")
    assert "sms-ticket" not in _get(AgentPage(engine), "2101")[1]  # type: ignore[arg-type]


def test_bad_or_refused_dispositions_come_back_with_the_reason(sessions: sessionmaker[Session]) -> None:
    engine, record = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    ticket = record.ticket_number
    assert _post(page, ["2101", "disposition"], {"ticket": ticket, "outcome": "sale", "sale_amount": "19.999"}) == (
        303, {"err": ["sale_amount: at most two decimals (fen), got '19.999'"]})
    assert _post(page, ["2101", "disposition"], {"ticket": ticket, "follow_up_at": "next week"})[1] == {
        "err": ["follow_up_at: expected a date and time, got 'next week'"]}
    assert _post(page, ["2102", "disposition"], {"ticket": ticket, "outcome": "sale"})[1]["err"][0].startswith(
        "agent 2102 may disposition only their own calls")
    assert _post(page, ["2101", "disposition"], {"ticket": "GD20990101001", "outcome": "x"})[1] == {
        "err": ["no call record 'GD20990101001'"]}
    assert engine.repository.get_call_record(record.id).result.outcome is None  # nothing written


def test_log_in_pause_ready_log_out(sessions: sessionmaker[Session]) -> None:
    engine, _ = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    assert _post(page, ["2101", "pause"], {"reason": " "})[1] == {
        "err": ["reason: say why you pause (break, lunch, training ...)"]}
    assert _post(page, ["2101", "pause"], {"reason": "lunch"})[1] == {"msg": ["paused (lunch)"]}
    assert _post(page, ["2101", "unpause"], {})[1] == {"msg": ["ready"]}
    assert _post(page, ["2101", "logout"], {})[1] == {"msg": ["logged out"]}
    assert _post(page, ["2102", "login"], {})[1] == {"msg": ["logged in"]}
    assert _post(page, ["2101", "dance"], {})[1] == {"err": ["no agent action 'dance'"]}
    assert engine.agent_service.calls == [("pause", "2101", "lunch"), ("unpause", "2101"), ("logout", "2101"),
                                          ("login", "2102")]
    status, html = _get(page, "2102")  # logged out as far as the board knows; no call offered yet
    assert status == 200 and "<span class=\"state\">logged out</span>" in html and "No call offered yet" in html
    assert ">Log in</button>" in html and 'http-equiv="refresh"' in html
    assert _get(page, "9999")[0] == 404 and _get(page)[0] == 404


def test_a_button_pressed_while_asterisk_is_down_says_so(sessions: sessionmaker[Session]) -> None:
    """With AMI not connected the agent reads that Asterisk is unreachable, not "login failed"."""
    from twisted.internet.defer import fail

    from callcenter.ami.client import AmiNotConnected

    engine, _ = _engine(sessions)
    engine.agent_service.login = lambda agent: fail(AmiNotConnected("AMI: not connected; QueueAdd not sent"))
    page = AgentPage(engine)  # type: ignore[arg-type]
    assert _post(page, ["2101", "login"], {})[1] == {
        "err": ["Asterisk is not reachable right now (AMI: not connected; QueueAdd not sent); try again in a moment"]}


@pytest.mark.parametrize(("state", "outcome", "expected"), [
    ("ready", None, False), ("ready", "resolved", True), ("on_call", "resolved", False), ("ringing", None, False),
    ("paused", "sale", True), ("wrap_up", "sale", False), ("logged_out", None, False),
])
def test_the_page_reloads_only_while_the_agent_waits_with_nothing_left_to_write(
        state: str, outcome: str | None, expected: bool) -> None:
    record = CallRecord(id=1, ticket_number="GD1", started_at=STARTED, direction="inbound", customer_id=None,
                        customer_name=None, phone="1", issue_type=None, description="", outcome=outcome,
                        follow_up_at=None, csat=None, agent_id="2101", queue=None, uniqueid=None, linkedid=None,
                        answered_at=None, ended_at=None, wait_seconds=None, talk_seconds=None, queue_result=None,
                        ivr_path=(), created_at=STARTED)
    view = AgentView(agent=SETTINGS.agent("2101"), state=state, state_seconds=1.0, pause_reason=None,
                     timezone="Asia/Shanghai", record=record)
    assert refreshes(view) is expected
    assert refreshes(replace(view, record=None)) is (state in ("ready", "paused", "logged_out"))
    assert ('http-equiv="refresh"' in render_agent_page(view)) is expected


def test_an_agent_paused_for_not_answering_is_told_why() -> None:
    view = AgentView(agent=SETTINGS.agent("2101"), state="paused", state_seconds=30.0, pause_reason="no answer",
                     timezone="Asia/Shanghai")
    page = render_agent_page(view)
    assert '<span class="state">paused (no answer)</span>' in page
    assert "nobody answered, so you were paused in every queue. Press Ready when you are back." in page
    assert "nobody answered" not in render_agent_page(replace(view, pause_reason="lunch"))


def test_the_form_becomes_the_apis_disposition_body() -> None:
    form = {"ticket": " GD1 ", "outcome": "sale", "notes": "", "sale_amount": "1999.00",
            "follow_up_at": "2026-12-07T09:30", "issue_type": "  "}
    assert disposition_body("2101", form, "Asia/Shanghai") == ("GD1", {
        "agent": "2101", "outcome": "sale", "sale_amount": "1999.00", "follow_up_at": "2026-12-07T09:30:00+08:00"})
    assert disposition_body("2101", {"ticket": "GD1", "outcome": "no", "do_not_call": "yes"}, "Asia/Shanghai") == (
        "GD1", {"agent": "2101", "outcome": "no", "do_not_call": True})
    with pytest.raises(InvalidFieldError, match="^ticket: the form names no call"):
        disposition_body("2101", {"outcome": "x"}, "Asia/Shanghai")


def test_the_agent_sees_where_their_day_went(sessions: sessionmaker[Session]) -> None:
    """Under the state, today so far (docs/reports.md, "Agent time"): only this agent's, only today's."""
    from callcenter.agent_time import StateChange
    from callcenter.storage.agent_time import record_agent_states

    engine, _ = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    engine.clock = Clock()
    engine.clock.advance(datetime(2026, 12, 7, 3, 0, tzinfo=UTC).timestamp())  # 11:00 in Shanghai
    assert "Today:" not in _get(page, "2101")[1]  # nothing recorded yet

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, 7, hour, minute, tzinfo=UTC)

    engine.repository.run(record_agent_states, [
        StateChange("2101", datetime(2026, 12, 6, 9, 0, tzinfo=UTC), "logged_out"),  # yesterday
        StateChange("2101", at(1), "ready"), StateChange("2101", at(1, 30), "on_call"),
        StateChange("2101", at(2, 0), "wrap_up"), StateChange("2101", at(2, 1), "paused", "lunch"),
        StateChange("2102", at(0), "on_call")])
    status, html = _get(page, "2101")
    assert status == 200
    assert ('<p class="muted">Today: logged in 2:00:00, on calls 0:30:00, wrap-up 0:01:00, paused 0:59:00 '
            "(lunch 0:59:00), occupancy 51%</p>") in html, html


def test_the_agent_calls_a_customer_from_the_page_or_the_api(sessions: sessionmaker[Session]) -> None:
    """A number typed in, the screen pop's "Call ... back", a follow-up's "Call", a CRM
    customer's "Call": each asks the agent service to ring the agent's phone, then the
    customer (docs/agents.md). The buttons name the call or the customer; the number, name
    and CRM id are looked up by the daemon."""
    engine, record = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    status, html = _get(page, "2101")
    assert '<input type="tel" name="phone" placeholder="a number to call" required' in html  # ready: may call
    assert ('<form class="inline" method="post" action="/agent/2101/call"><input type="hidden" name="ticket" '
            f'value="{record.ticket_number}"><button type="submit">Call 13800138000 back</button>') in html
    status, query = _post(page, ["2101", "call"], {"phone": "13800138000", "name": "Zhang", "customer_id": "3"})
    assert status == 303 and query["msg"] == ["your phone rings: pick it up and Zhang is called"]
    assert engine.agent_service.calls[-1] == ("call", "2101", "13800138000", "Zhang", "3")
    status, query = _post(page, ["2101", "call"], {"ticket": record.ticket_number})
    assert status == 303 and query["msg"] == ["your phone rings: pick it up and Zhang <Wei> is called"], query
    assert engine.agent_service.calls[-1] == ("call", "2101", "13800138000", "Zhang <Wei>", str(record.customer_id))
    status, query = _post(page, ["2101", "call"], {"customer_id": str(record.customer_id)})
    assert status == 303 and engine.agent_service.calls[-1] == (
        "call", "2101", "13800138000", "Zhang <Wei>", str(record.customer_id))
    calls = len(engine.agent_service.calls)
    for form, error in (({"ticket": "GD19990101999"}, "ticket: no call GD19990101999"),
                        ({"customer_id": "999"}, "customer_id: no customer 999")):
        status, query = _post(page, ["2101", "call"], form)
        assert status == 303 and query["err"] == [error], query
    assert len(engine.agent_service.calls) == calls  # nothing called
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"phone": "+86 138 0013 8000"})
    assert (status, body) == (200, {"agent": "2101", "action": "call", "phone": "13800138000", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"ticket": record.ticket_number})
    assert (status, body["phone"]) == (200, "13800138000") and engine.agent_service.calls[-1] == (
        "call", "2101", "13800138000", "Zhang <Wei>", str(record.customer_id))  # the call's caller
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"customer_id": record.customer_id, "name": "Z"})
    assert status == 200 and engine.agent_service.calls[-1] == (
        "call", "2101", "13800138000", "Z", str(record.customer_id))  # the customer's number
    for bad, field in [({"phone": "1", "extension": "x"}, "extension"), ({"phone": "1", "customer_id": True},
                       "customer_id"), ({"name": "x"}, "phone"), ({"phone": "1", "name": 5}, "name"),
                       ({"ticket": "GD19990101999"}, "ticket"), ({"ticket": 5}, "ticket"),
                       ({"customer_id": 999}, "customer_id")]:
        status, body = post_json(api, [b"agents", b"2101", b"call"], bad)
        assert (status, body["field"]) == (400, field), body


def _talking_with_2102_ready(engine: Any) -> None:
    """2101 answers the hotline call on screen; 2102 logs in to outbound, ready."""
    engine.agents.handle(Message.from_pairs([
        ("Event", "AgentConnect"), ("Queue", "hotline"), ("Interface", "PJSIP/agent2101"), ("Uniqueid", "1733364000.1"),
        ("Linkedid", "1733364000.1"), ("HoldTime", "3")]), 940.0)
    engine.agents.handle(Message.from_pairs([
        ("Event", "QueueMemberAdded"), ("Queue", "outbound"), ("Interface", "PJSIP/agent2102"),
        ("StateInterface", "PJSIP/agent2102"), ("Paused", "0"), ("Status", "1")]), 941.0)


def test_the_agent_hands_the_caller_on_to_a_queue_from_the_page_or_the_api(sessions: sessionmaker[Session]) -> None:
    """While the agent talks, the page offers the queues to transfer to; the hops so far show
    on the screen pop (docs/agents.md, "Handing a call on")."""
    engine, _ = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    status, html = _get(page, "2101")
    assert 'action="/agent/2101/transfer"' not in html  # ready, not talking: nothing to transfer
    _talking_with_2102_ready(engine)
    engine.transfers_of = lambda linkedid: ("1001>hotline@125", "2105>agent:2101@200") \
        if linkedid == "1733364000.1" else ()
    status, html = _get(page, "2101")
    assert ('<form class="inline" method="post" action="/agent/2101/transfer"><select name="to" '
            'aria-label="transfer to"><optgroup label="queues"><option value="queue:hotline">hotline</option>') in html
    assert ('<optgroup label="agents ready now"><option value="agent:2102">2102 Agent 2102</option></optgroup>'
            in html)  # 2102 is ready; 2101 (on this call) is not offered
    assert "<td>Handed on</td><td>1001 to hotline at 2:05; 2105 to agent 2101 at 3:20</td>" in html
    status, query = _post(page, ["2101", "transfer"], {"to": "queue:outbound"})
    assert status == 303 and query["msg"] == ["handed on to outbound: the caller waits there for its agents"]
    assert engine.agent_service.calls[-1] == ("transfer", "2101", "outbound")
    status, query = _post(page, ["2101", "transfer"], {"to": "queue:billing"})
    assert status == 303 and "no queue 'billing'" in query["err"][0]
    status, query = _post(page, ["2101", "transfer"], {"to": "agent:2102"})
    assert status == 303 and query["msg"] == ["handed to agent 2102: their phone rings with the caller"]
    assert engine.agent_service.calls[-1] == ("transfer_to_agent", "2101", "2102")
    status, query = _post(page, ["2101", "transfer"], {})
    assert status == 303 and "choose a queue or an agent" in query["err"][0]
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = post_json(api, [b"agents", b"2101", b"transfer"], {"queue": "outbound"})
    assert (status, body) == (200, {"agent": "2101", "action": "transfer", "queue": "outbound", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"transfer"], {"to_agent": "2102"})
    assert (status, body) == (200, {"agent": "2101", "action": "transfer", "to_agent": "2102", "ok": True})
    for bad, code, field in [({"queue": "billing"}, 400, "queue"), ({"queue": ""}, 400, "queue"),
                             ({"queue": "hotline"}, 409, "queue"), ({}, 400, "queue"),
                             ({"queue": "hotline", "to_agent": "2102"}, 400, "queue"),
                             ({"queue": "outbound", "agent": "2102"}, 400, "agent")]:
        status, body = post_json(api, [b"agents", b"2101", b"transfer"], bad)
        assert (status, body["field"]) == (code, field), body


def _channel(uniqueid: str, name: str, context: str, exten: str, state: ChannelState = ChannelState.UP) -> Channel:
    return Channel(uniqueid=uniqueid, linkedid="1733364000.1", name=name, state=state, caller_id_num="",
                   caller_id_name="", connected_line_num="", connected_line_name="", context=context, exten=exten,
                   priority=1, application="", created_at=0.0, answered_at=0.0, variables=MappingProxyType({}),
                   bridge_id="consult", local_peer=None, dial_status=None)


def test_the_agent_consults_a_colleague_first_from_the_page_or_the_api(sessions: sessionmaker[Session]) -> None:
    """While talking, "Consult first" with an agent ready now; while consulting, the page says
    with whom and offers "Hand over" once they answered and "Back to the caller" always
    (docs/agents.md, "Consult first")."""
    engine, _ = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    _talking_with_2102_ready(engine)
    status, html = _get(page, "2101")
    assert ('<form class="inline" method="post" action="/agent/2101/consult"><select name="to_agent" '
            'aria-label="consult"><option value="2102">2102 Agent 2102</option></select> '
            '<button type="submit">Consult first</button></form>') in html
    status, query = _post(page, ["2101", "consult"], {"to_agent": "2102"})
    assert status == 303 and query["msg"] == ["consulting agent 2102: the caller holds; hand over or go back to them"]
    assert engine.agent_service.calls[-1] == ("consult", "2101", "2102")
    status, query = _post(page, ["2101", "consult"], {})
    assert status == 303 and "choose the agent to consult" in query["err"][0]
    mine = _channel("1.2", "PJSIP/agent2101-00000001", "from-agents", "s")
    leg = _channel("1.5", "Local/2102@cc-transfer-refer-00000002;1", REFER_CONTEXT, "2102", ChannelState.RING)
    engine.calls.channels = {c.uniqueid: c for c in (mine, leg)}
    status, html = _get(page, "2101")
    assert "Consulting 2102 Agent 2102 (ringing); the caller holds." in html
    assert 'action="/agent/2101/consult-complete"' not in html and 'action="/agent/2101/transfer"' not in html
    assert '<button type="submit">Back to the caller</button>' in html
    engine.calls.channels["1.5"] = replace(leg, state=ChannelState.UP)
    status, html = _get(page, "2101")
    assert "Consulting 2102 Agent 2102 (talking)" in html
    assert 'action="/agent/2101/consult-complete"><button type="submit">Hand over</button>' in html
    assert 'action="/agent/2101/consult-conference"><button type="submit">Three-way</button>' in html
    status, query = _post(page, ["2101", "consult-conference"], {})
    assert status == 303 and query["msg"] == [
        "the caller, you and your colleague are on one call: hang up to leave them talking"]
    status, query = _post(page, ["2101", "consult-complete"], {})
    assert status == 303 and query["msg"] == ["handed over: your phone is free"]
    status, query = _post(page, ["2101", "consult-cancel"], {})
    assert status == 303 and query["msg"] == ["back with the caller"]
    assert engine.agent_service.calls[-2:] == [("complete_consult", "2101"), ("cancel_consult", "2101")]
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = get_json(api, [b"agents", b"2101", b"consult"])
    assert (status, body) == (200, {"agent": "2101", "consulting": "2102", "outside": False, "answered": True})
    status, body = get_json(api, [b"agents", b"2102", b"consult"])
    assert (status, body["field"]) == (404, "agent")
    status, body = post_json(api, [b"agents", b"2101", b"consult"], {"to_agent": "2102"})
    assert (status, body) == (200, {"agent": "2101", "action": "consult", "to_agent": "2102", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"consult", b"complete"], {})
    assert (status, body) == (200, {"agent": "2101", "action": "consult complete", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"consult", b"cancel"], {})
    assert (status, body) == (200, {"agent": "2101", "action": "consult cancel", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"consult", b"conference"], {})
    assert (status, body) == (200, {"agent": "2101", "action": "consult conference", "ok": True})
    status, body = post_json(api, [b"agents", b"2102", b"consult", b"complete"], {})
    assert (status, body["field"]) == (409, "agent") and "not answered yet" in body["error"]
    for path, bad, code in [([b"consult"], {}, 400), ([b"consult"], {"to_agent": "2102", "queue": "x"}, 400),
                            ([b"consult", b"merge"], {}, 404), ([b"consult", b"cancel"], {"now": True}, 400)]:
        status, body = post_json(api, [b"agents", b"2101", *path], bad)
        assert status == code, body


def test_the_agent_consults_an_outside_number_from_the_page_or_the_api(sessions: sessionmaker[Session]) -> None:
    """"Consult a number" while talking (even with no colleague ready); while it rings, the
    page names the number; the API takes ``phone`` instead of ``to_agent``, not both."""
    engine, _ = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    _talking_with_2102_ready(engine)
    status, html = _get(page, "2101")
    assert ('<form class="inline" method="post" action="/agent/2101/consult-number"><input name="phone" size="14" '
            'inputmode="tel" aria-label="number to consult"> <button type="submit">Consult a number</button></form>'
            ) in html
    status, query = _post(page, ["2101", "consult-number"], {"phone": "+86 20 1234 5678"})
    assert status == 303 and query["msg"] == ["calling 02012345678: the caller holds; hand over or go back to them"]
    assert engine.agent_service.calls[-1] == ("consult_number", "2101", "+86 20 1234 5678")
    status, query = _post(page, ["2101", "consult-number"], {"phone": " "})
    assert status == 303 and "type the number to consult" in query["err"][0]
    mine = _channel("1.2", "PJSIP/agent2101-00000001", "from-agents", "s")
    leg = _channel("1.6", "Local/00002012345678@cc-transfer-refer-00000002;1", REFER_CONTEXT, "00002012345678",
                   ChannelState.RING)
    engine.calls.channels = {c.uniqueid: c for c in (mine, leg)}
    status, html = _get(page, "2101")
    assert "Consulting 02012345678 (ringing); the caller holds." in html
    api = ApiResource(engine)  # type: ignore[arg-type]
    status, body = get_json(api, [b"agents", b"2101", b"consult"])
    assert (status, body) == (200, {"agent": "2101", "consulting": "02012345678", "outside": True, "answered": False})
    status, body = post_json(api, [b"agents", b"2101", b"consult"], {"phone": "020-1234-5678"})
    assert (status, body) == (200, {"agent": "2101", "action": "consult", "phone": "02012345678", "ok": True})
    status, body = post_json(api, [b"agents", b"2101", b"consult"], {"phone": "110", "to_agent": "2102"})
    assert (status, body["field"]) == (400, "to_agent") and "say whom to consult" in body["error"]


def test_the_screen_pop_shows_the_callers_earlier_calls_and_keeps_the_crm(sessions: sessionmaker[Session]) -> None:
    """The customer's earlier calls, newest first, under the screen pop; the customer's notes
    saved from it; a caller not in the CRM yet added from it, with this call linked
    (docs/crm.md)."""
    engine, record = _engine(sessions)
    repo = engine.repository
    page = AgentPage(engine)  # type: ignore[arg-type]
    status, html = _get(page, "2101")
    assert "<h2>Earlier calls</h2>" in html and "No earlier calls from this caller." in html
    earlier = repo.create_call_record(NewCallRecord(
        started_at=STARTED.replace(day=3), direction="outbound", phone="13800138000", agent_id="2201",
        outcome="sale", description="bought the yearly plan"), site_prefix="GD").result
    status, html = _get(page, "2101")
    assert (f"<td>2026-12-03 10:00</td><td>{earlier.ticket_number}</td><td>outbound</td><td>2201</td><td>sale</td>"
            "<td>bought the yearly plan</td><td>-</td>") in html
    assert "<button>Save the customer</button>" in html and ">prefers mornings</textarea>" in html
    status, query = _post(page, ["2101", "customer"], {"customer_id": str(record.customer_id),
                                                        "notes": "prefers mornings; speaks Cantonese", "email": ""})
    assert (status, query["msg"]) == (303, ["customer Zhang <Wei> saved"])
    assert repo.get_customer(record.customer_id).result.notes == "prefers mornings; speaks Cantonese"
    status, query = _post(page, ["2101", "customer"], {"customer_id": str(record.customer_id), "email": "bad"})
    assert status == 303 and "email" in query["err"][0]

    stranger = repo.create_call_record(NewCallRecord(
        started_at=STARTED, direction="inbound", phone="13900000042", agent_id="2101", queue="hotline"),
        site_prefix="GD").result
    engine.screen_pops["2101"] = "stranger"
    engine.open_record = lambda linkedid, agent: succeed(stranger)
    status, html = _get(page, "2101")
    assert "<button>Add 13900000042 to the CRM</button>" in html
    assert f'<input type="hidden" name="ticket" value="{stranger.ticket_number}">' in html
    assert 'name="phone"' not in html.split("Add 13900000042")[0].rsplit("<form", 1)[1]  # the call's number
    status, query = _post(page, ["2101", "customer"], {"ticket": stranger.ticket_number,  # as the form posts
                                                        "name": "Li Na", "email": "", "notes": "new customer"})
    assert (status, query["msg"]) == (303, ["Li Na (13900000042) is in the CRM now: their calls pop up with their record"])
    linked = repo.get_call_record(stranger.id).result
    customer = repo.get_customer(linked.customer_id).result
    assert (customer.name, customer.phone, customer.notes, linked.customer_name) == (
        "Li Na", "13900000042", "new customer", "Li Na")
    status, html = _get(page, "2101")
    assert "<h2>Customer: Li Na</h2>" in html and "<button>Save the customer</button>" in html
    status, query = _post(page, ["2101", "customer"], {"ticket": stranger.ticket_number, "phone": "13900000042",
                                                        "name": "Again"})
    assert status == 303 and "already has 13900000042" in query["err"][0]
    assert query["err"][0].startswith(f"phone: customer {customer.id} already has")  # a refusal, not "failed"


def test_the_agent_finds_a_customer_and_calls_them(sessions: sessionmaker[Session]) -> None:
    """``?find=``: customers by number or name, each with "Call" (docs/crm.md)."""
    engine, _ = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    status, html = _get(page, "2101")
    assert status == 200
    assert 'placeholder="a number or a name" aria-label="find a customer"' in html and "No customer matches" not in html
    request = DummyRequest([b"2101"])
    request.args = {b"find": [b"+86 138 0013 8000"]}
    body = page.render_GET(request)  # type: ignore[arg-type]
    html = (body if isinstance(body, bytes) else b"".join(request.written)).decode()
    assert '<td>Zhang &lt;Wei&gt; <span class=vip>VIP</span></td><td>13800138000</td>' in html
    assert 'value="+86 138 0013 8000"' in html  # the search box keeps what was looked for
    assert html.count('action="/agent/2101/call"') >= 2  # the screen pop's "Call back" and the customer's "Call"
    request = DummyRequest([b"2101"])
    request.args = {b"find": [b"nobody"]}
    body = page.render_GET(request)  # type: ignore[arg-type]
    assert "No customer matches &#x27;nobody&#x27;." in (body if isinstance(body, bytes) else b"".join(request.written)).decode()


def test_a_site_may_block_its_agents_own_calls_to_do_not_call_numbers(sessions: sessionmaker[Session]) -> None:
    """manual_dial.do_not_call: warn (the default) dials a listed number (flagged on the page);
    block refuses it with the reason, on the page and over the API (409, field phone)."""
    from callcenter.storage import dialer as dialer_store

    engine, _ = _engine(sessions)
    engine.repository.run(dialer_store.add_dnc, ["13800138000"], source="agent", reason="asked on the phone",
                          now=datetime(2026, 12, 5, 2, 0, tzinfo=UTC))
    page, api = AgentPage(engine), ApiResource(engine)  # type: ignore[arg-type]
    status, query = _post(page, ["2101", "call"], {"phone": "13800138000"})
    assert status == 303 and "msg" in query  # warn: dialed
    assert engine.agent_service.calls[-1][:3] == ("call", "2101", "13800138000")
    engine.settings = replace(SETTINGS, manual_dial=replace(SETTINGS.manual_dial, do_not_call="block"))
    dialed = len(engine.agent_service.calls)
    status, query = _post(page, ["2101", "call"], {"phone": "+86 138 0013 8000"})
    assert status == 303 and query["err"] == [
        "13800138000 is on the do-not-call list (agent: asked on the phone); manual_dial.do_not_call is block"]
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"phone": "13800138000"})
    assert (status, body["field"]) == (409, "phone")
    assert len(engine.agent_service.calls) == dialed  # nothing dialed
    html = _get(page, "2101")[1]  # the screen pop's caller is listed: no "Call back" button
    assert "Call 13800138000 back</button>" not in html
    assert '<span class="muted">not called: on the do-not-call list</span>' in html
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"phone": "13900000001"})
    assert status == 200 and engine.agent_service.calls[-1][:3] == ("call", "2101", "13900000001")


def test_an_agent_sees_customers_numbers_masked_and_still_calls_them(sessions: sessionmaker[Session]) -> None:
    """``privacy.agent_numbers: masked`` (shipped): agent 2101 signed in sees 138****8000 on
    their page (the screen pop, the customer, the follow-ups, the CRM search, the buttons'
    labels) and in the API's answers, and the page carries the number nowhere, not in a
    button, not in the address bar after a call; they call by the call or the customer. Their
    team lead sees the numbers whole, as does the host's API token."""
    assert SETTINGS.privacy.agent_numbers == "masked"
    engine, record = _engine(sessions)
    page = AgentPage(engine)  # type: ignore[arg-type]
    agent, lead = SETTINGS.people["2101"], SETTINGS.people["8001"]
    repo = engine.repository
    engine.clock = Clock()
    engine.clock.advance(datetime(2026, 12, 5, 1, 0, tzinfo=UTC).timestamp())
    repo.create_call_record(NewCallRecord(
        started_at=STARTED, direction="inbound", phone="13900000001", agent_id="2101", queue="hotline",
        follow_up_at=datetime(2026, 12, 5, 8, 0, tzinfo=UTC), description="or her mobile 13977776666",
        outcome="callback requested: 13966665555"), site_prefix="GD")
    engine.transfers_of = lambda linkedid: ("2101>outside:13912349999@30",)  # a consulted outside number
    request = DummyRequest([b"2101"])
    request.args = {b"find": [b"Zhang"]}
    body = page.render_GET(signed_in(request, agent))  # type: ignore[arg-type]
    html = (body if isinstance(body, bytes) else b"".join(request.written)).decode()
    assert not any(n in html for n in ("13800138000", "13900000001", "13912349999", "13977776666",
                                       "13966665555")), html
    assert "<td>callback requested: 139****5555</td>" in html  # the follow-up's outcome
    assert "<td>Handed on</td><td>2101 to outside:139****9999 at 0:30</td>" in html
    assert "<td>Caller</td><td>138****8000</td>" in html and "<td>Phone</td><td>138****8000</td>" in html
    assert "<td>139****0001</td>" in html and "<td>or her mobile 139****6666</td>" in html  # the follow-up
    assert "Call 138****8000 back</button>" in html
    assert "<tr><td>Zhang &lt;Wei&gt; <span class=vip>VIP</span></td><td>138****8000</td>" in html  # the CRM search
    assert f'<input type="hidden" name="ticket" value="{record.ticket_number}">' in html
    assert f'<input type="hidden" name="customer_id" value="{record.customer_id}">' in html
    status, query = _post(page, ["2101", "call"], {"ticket": record.ticket_number}, person=agent)
    assert query["msg"] == ["your phone rings: pick it up and Zhang <Wei> is called"]
    status, query = _post(page, ["2101", "call"], {"phone": "13912345678"}, person=agent)
    assert query["msg"] == ["your phone rings: pick it up and 139****5678 is called"]  # the address bar too
    assert engine.agent_service.calls[-1][2] == "13912345678"  # called all the same

    status, html = _get(page, "2101", person=lead)  # their team lead: whole
    assert status == 200 and "<td>Caller</td><td>13800138000</td>" in html

    api = ApiResource(engine)  # type: ignore[arg-type]
    for person, shown in ((agent, "138****8000"), (lead, "13800138000"), (None, "13800138000")):
        status, body = get_json(api, [b"agents", b"2101", b"screen-pop"], person=person)
        assert status == 200 and body["call_record"]["phone"] == shown, body
        assert body["customer"]["phone"] == shown
    status, body = post_json(api, [b"agents", b"2101", b"call"], {"phone": "13912345678"}, person=agent)
    assert (status, body["phone"]) == (200, "139****5678")
