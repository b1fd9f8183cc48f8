"""SMS broadcast: the gateway's pure rules, the texts of a broadcast, the service that
sends them at the site's rate inside the sending window and files the replies, its HTTP
routes, and the Asterisk files rendered for the gateway. The service runs on the real
storage (SQLite and PostgreSQL) with a fake AMI and a fake clock."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from callcenter.ami.actions import AmiAction
from callcenter.ami.client import AmiActionFailed, AmiNotConnected, AmiResult
from callcenter.ami.codec import Message
from callcenter.asterisk.conffile import parse_config
from callcenter.asterisk.render import AsteriskEndpoints, render_project_config
from callcenter.http_api import ApiResource
from callcenter.metrics import EngineMetrics
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import load_settings
from callcenter.sms.compose import Contact, compose
from callcenter.sms.gateway import (
    ReplyError,
    Tokens,
    destination,
    in_window,
    parse_reply,
    sender_uri,
)
from callcenter.sms.service import SmsService
from callcenter.sms.text import SmsPolicy, TemplateError
from callcenter.storage import dialer as dialer_store
from callcenter.storage import sms as sms_store
from tests.httpapi import get_json, post_json
from tests.syncrepository import SyncRepository

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def received(**fields: str) -> Message:
    return Message.from_pairs([("Event", "UserEvent"), ("UserEvent", "SmsReceived"), *fields.items()])


# --- the gateway's rules ---------------------------------------------------------------------


def test_addresses_go_through_the_gateway_endpoint() -> None:
    assert destination("13900000001", "10.0.0.5:5070") == "pjsip:sms-gateway/sip:13900000001@10.0.0.5:5070"
    assert sender_uri("10690000", "10.0.0.5") == '"10690000" <sip:10690000@10.0.0.5>'


def test_the_sending_window_is_local_time_start_inclusive_end_exclusive() -> None:
    hours = (time(8, 0), time(21, 0))
    assert in_window(hours, SHANGHAI, datetime(2026, 12, 7, 0, 0, tzinfo=UTC))  # 08:00 local
    assert not in_window(hours, SHANGHAI, datetime(2026, 12, 6, 23, 59, tzinfo=UTC))  # 07:59
    assert not in_window(hours, SHANGHAI, datetime(2026, 12, 7, 13, 0, tzinfo=UTC))  # 21:00
    assert in_window((time(0, 0), time.max), SHANGHAI, datetime(2026, 12, 7, 15, 59, 59, tzinfo=UTC))  # 23:59:59


def test_tokens_pace_the_rate_without_a_burst_after_idling() -> None:
    tokens = Tokens(4.0, now=0.0)
    assert tokens.take(0.0) == 0
    assert tokens.take(0.5) == 2
    assert tokens.take(0.6) == 0  # 0.4 of a message saved
    assert tokens.take(0.75) == 1
    assert tokens.take(100.0) == 4  # one second's worth, not 400
    slow = Tokens(0.5, now=0.0)
    assert [slow.take(t) for t in (1.0, 2.0, 3.0, 4.0)] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="rate"):
        Tokens(0.0, now=0.0)


def test_a_reply_event_is_read_and_a_bad_one_names_its_header() -> None:
    reply = parse_reply(received(To="10690000", From=b64("<sip:13900000017@10.0.0.5>"), Body=b64(" Ｔ ")))
    assert reply is not None
    assert (reply.phone, reply.to, reply.body, reply.opt_out) == ("13900000017", "10690000", " Ｔ ", True)
    chat = parse_reply(received(To="10690000", From=b64('"x" <sip:13900000028@gw>'), Body=b64("好的，请来电")))
    assert chat is not None and not chat.opt_out
    assert parse_reply(Message.from_pairs([("Event", "UserEvent"), ("UserEvent", "CCFax")])) is None
    with pytest.raises(ReplyError, match="Body is not base64"):
        parse_reply(received(To="10690000", From=b64("sip:1@h"), Body="%%%"))
    with pytest.raises(ReplyError, match="no From header"):
        parse_reply(received(To="10690000", Body=b64("T")))
    with pytest.raises(ReplyError, match="no To header"):
        parse_reply(received(From=b64("sip:1@h"), Body=b64("T")))


def test_compose_fills_each_text_and_refuses_one_too_long_naming_it() -> None:
    policy = SmsPolicy(signature="【某某公司】", opt_out_note="回T退订", max_parts=1)
    texts = compose("{name}您好，您的{plan}套餐已生效。", policy, [
        Contact("13900000001", "张伟", {"plan": "畅享"}, lead_id=7), Contact("13900000002")])
    assert [(t.phone, t.body, t.parts, t.lead_id) for t in texts] == [
        ("13900000001", "【某某公司】张伟您好，您的畅享套餐已生效。回T退订", 1, 7),
        ("13900000002", "【某某公司】您好，您的套餐已生效。回T退订", 1, None)]
    with pytest.raises(TemplateError, match=r"^the text for lead 8 \(13900000003\): "):
        compose("{name}", policy, [Contact("13900000003", "长" * 80, lead_id=8)])
    with pytest.raises(TemplateError, match="nmae"):
        compose("{nmae}您好", policy, [Contact("13900000001", "张伟")])


# --- the service -------------------------------------------------------------------------------


class FakeAmi:
    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.sent: list[tuple[AmiAction, Deferred[AmiResult]]] = []
        self.connected = True
        self.refuse_with: Exception | None = None

    def subscribe(self, callback: Any, name: str | None = None) -> Any:
        self.listeners.append(callback)
        return self

    def cancel(self) -> None:
        pass

    def send(self, action: AmiAction, timeout: float | None = None) -> Deferred[AmiResult]:
        if self.refuse_with is not None:
            return fail(self.refuse_with)
        d: Deferred[AmiResult] = Deferred()
        self.sent.append((action, d))
        return d

    def answer(self, i: int, response: str = "Success", message: str = "Message successfully sent") -> None:
        action, d = self.sent[i]
        reply = Message.from_pairs([("Response", response), ("Message", message)])
        if response == "Success":
            d.callback(AmiResult(action, f"a-{i}", reply))
        else:
            d.errback(AmiActionFailed(action, reply))


def _service(sessions: sessionmaker[Session], *, at: datetime = MORNING, rate: float = 2.0
             ) -> tuple[SmsService, FakeAmi, Clock, CollectorRegistry]:
    ami, clock, registry = FakeAmi(), Clock(), CollectorRegistry()
    clock.advance(at.timestamp())
    settings = replace(SETTINGS, sms=replace(SETTINGS.sms, gateway="10.0.0.5", signature="【某某公司】",
                                             rate_per_second=rate))
    service = SmsService(settings, ami, SyncRepository(sessions), clock, gateway="10.0.0.5",
                         metrics=EngineMetrics(registry))
    service.startService()
    return service, ami, clock, registry


def _phones(n: int) -> list[str]:
    return [f"139{i:08d}" for i in range(n)]


def _body(action: AmiAction) -> str:
    return base64.b64decode(action.get("Base64Body") or "").decode("utf-8")


def test_a_broadcast_goes_out_at_the_rate_and_each_answer_is_filed(sessions: sessionmaker[Session]) -> None:
    service, ami, clock, registry = _service(sessions)
    created = service.broadcast(name="通知", template="您好，新品上市", actor="9001", phones=_phones(5)).result
    assert (created.queued, created.skipped) == (5, {})
    clock.advance(0)  # the pump called at once finds no token yet
    for _ in range(2):
        clock.advance(0.5)
    assert len(ami.sent) == 2  # 2 a second
    action, _ = ami.sent[0]
    assert action.name == "MessageSend"
    assert action.get("Destination") == "pjsip:sms-gateway/sip:13900000000@10.0.0.5"
    assert action.get("From") == '"10690000" <sip:10690000@10.0.0.5>'
    assert _body(action) == "【某某公司】您好，新品上市回T退订"
    ami.answer(0)
    ami.answer(1, "Error", "Message failed to send.")
    assert service.in_flight == 0
    clock.advance(0.5)
    clock.advance(0.5)
    clock.advance(0.5)
    clock.advance(0.5)
    assert len(ami.sent) == 5
    for i in range(2, 5):
        ami.answer(i)
    progress = service.progress(created.broadcast_id).result
    assert progress.by_status == {"sent": 4, "failed": 1}, progress
    assert registry.get_sample_value("callcenter_sms_sent_total", {"result": "sent"}) == 4
    assert registry.get_sample_value("callcenter_sms_sent_total", {"result": "failed"}) == 1


def test_outside_the_window_or_without_ami_nothing_is_sent_and_nothing_lost(sessions: sessionmaker[Session]) -> None:
    evening = datetime(2026, 12, 7, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    service, ami, clock, _ = _service(sessions, at=evening)
    created = service.broadcast(name="晚间", template="您好", actor="9001", phones=_phones(4)).result
    for _ in range(10):
        clock.advance(0.5)
    assert ami.sent == []
    assert service.progress(created.broadcast_id).result.by_status == {"queued": 4}
    clock.advance(11 * 3600)  # 08:30 the next day: one second's worth (2), not a night's
    assert len(ami.sent) == 2
    ami.connected = False
    clock.advance(0.5)
    assert len(ami.sent) == 2  # waits for AMI
    ami.connected, ami.refuse_with = True, AmiNotConnected("down")
    clock.advance(0.5)
    assert service.progress(created.broadcast_id).result.by_status == {"queued": 2, "sending": 2}
    ami.refuse_with = None  # the refused one went back to the queue and goes now, first
    clock.advance(0.5)
    assert [a.get("Destination") for a, _ in ami.sent] == [
        f"pjsip:sms-gateway/sip:1390000000{i}@10.0.0.5" for i in range(3)]


def test_an_idle_queue_is_not_read_until_a_broadcast_comes(sessions: sessionmaker[Session]) -> None:
    service, ami, clock, _ = _service(sessions)
    takes: list[int] = []
    run = service.repository.run

    def counting(function: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if function is sms_store.take_queued:
            takes.append(kwargs["limit"])
        return run(function, *args, **kwargs)

    service.repository.run = counting  # type: ignore[method-assign]
    for _ in range(20):
        clock.advance(0.5)
    assert takes == [1]  # one look finds nothing; then no SQL while idle
    takes.clear()
    service.broadcast(name="通知", template="您好", actor="9001", phones=_phones(1))
    for _ in range(20):
        clock.advance(0.5)
    assert takes == [2] and len(ami.sent) == 1  # one read: the second's worth of tokens kept while idle


def test_a_slow_read_of_the_queue_costs_no_rate(sessions: sessionmaker[Session]) -> None:
    """While one read of the queue is under way, the next turns wait without spending their
    tokens, so the messages after a slow read still go at the configured rate."""
    service, ami, clock, _ = _service(sessions)
    service.broadcast(name="通知", template="您好", actor="9001", phones=_phones(8))
    run = service.repository.run
    held: list[tuple[Deferred[Any], Any]] = []

    def slow(function: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if function is sms_store.take_queued and not held:
            d: Deferred[Any] = Deferred()
            held.append((d, run(function, *args, **kwargs)))
            return d
        return run(function, *args, **kwargs)

    service.repository.run = slow  # type: ignore[method-assign]
    clock.advance(0.5)  # one token: a read of 1 starts and hangs
    for _ in range(4):
        clock.advance(0.5)  # 2 s: the tokens meanwhile are kept (up to one second's worth, 2)
    assert ami.sent == []
    d, result = held[0]
    result.addCallback(d.callback)  # the read ends
    assert len(ami.sent) == 1
    clock.advance(0.5)
    assert len(ami.sent) == 3  # the kept 2 at once, not 1


def test_a_broadcast_queued_while_the_queue_is_read_is_sent(sessions: sessionmaker[Session]) -> None:
    """A broadcast committed after a read of the queue began, whose answer reaches the
    service before the read's, is still sent: the read's short answer (it could not see the
    broadcast) does not mark the queue empty, and the next turn reads it again."""
    service, ami, clock, _ = _service(sessions)
    run = service.repository.run
    held: list[tuple[Deferred[Any], Any]] = []

    def slow(function: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if function is sms_store.take_queued and not held:
            d: Deferred[Any] = Deferred()
            held.append((d, run(function, *args, **kwargs)))  # reads the queue now: empty
            return d  # its answer comes later
        return run(function, *args, **kwargs)

    service.repository.run = slow  # type: ignore[method-assign]
    clock.advance(0.5)  # the first token: a read of 1 starts
    assert len(held) == 1
    created = service.broadcast(name="通知", template="您好", actor="9001", phones=_phones(2)).result
    clock.advance(0)  # the broadcast's own turn finds the read still under way
    d, result = held[0]
    result.addCallback(d.callback)  # the read answers: nothing, fewer than asked
    assert ami.sent == []
    for _ in range(4):
        clock.advance(0.5)
    assert len(ami.sent) == 2
    assert service.progress(created.broadcast_id).result.by_status == {"sending": 2}


def test_a_daemon_stopped_mid_send_marks_those_failed_at_start(sessions: sessionmaker[Session]) -> None:
    service, ami, clock, _ = _service(sessions)
    created = service.broadcast(name="通知", template="您好", actor="9001", phones=_phones(1)).result
    clock.advance(0.5)
    assert len(ami.sent) == 1
    service.stopService()  # never answered
    again, _, _, _ = _service(sessions)
    assert again.ready.result == 1
    progress = again.progress(created.broadcast_id).result
    assert progress.by_status == {"failed": 1}


def test_an_unsubscribe_reply_puts_the_number_on_the_dnc_list(sessions: sessionmaker[Session]) -> None:
    service, ami, _, registry = _service(sessions)
    heard: list[Any] = []
    service.reply_listeners.append(heard.append)
    ami.listeners[0](received(To="10690000", From=b64("<sip:13900000017@10.0.0.5>"), Body=b64("退订")))
    ami.listeners[0](received(To="10690000", From=b64("<sip:13900000028@10.0.0.5>"), Body=b64("好的")))
    ami.listeners[0](received(To="10690000", From=b64("<sip:1@h>"), Body="not base64!"))  # logged, skipped
    replies = service.replies().result
    assert [r.phone for r in heard] == ["13900000028"]  # the reply, not the opt-out: a call-back for the dialer
    assert [(r.phone, r.opt_out, r.added_to_dnc) for r in replies] == [
        ("13900000028", False, False), ("13900000017", True, True)]
    with sessions.begin() as session:
        assert dialer_store.is_dnc(session, "13900000017") and not dialer_store.is_dnc(session, "13900000028")
    assert registry.get_sample_value("callcenter_sms_replies_total", {"kind": "opt_out"}) == 1
    created = service.broadcast(name="再次", template="您好", actor="9001",
                                phones=["13900000017", "13900000028"]).result
    assert (created.queued, created.skipped) == (1, {"dnc": 1})


# --- HTTP ----------------------------------------------------------------------------------------


class FakeEngine:
    settings = SETTINGS


def test_http_routes_check_who_may_broadcast_and_name_bad_fields(sessions: sessionmaker[Session]) -> None:
    service, _, _, _ = _service(sessions)
    api = ApiResource(FakeEngine(), None, None, service)  # type: ignore[arg-type]
    status, body = post_json(api, [b"sms", b"broadcasts"],
                             {"by": "9001", "name": "通知", "template": "您好", "phones": ["13900000001"]})
    assert status == 200 and body["broadcast"]["queued"] == 1, body
    broadcast_id = body["broadcast"]["broadcast_id"]
    refusals: list[tuple[dict[str, Any], int, str | None]] = [
        ({"by": "2101", "name": "n", "template": "t", "phones": ["13900000001"]}, 403, "by"),  # an agent
        ({"by": "8001", "name": "n", "template": "t", "phones": ["13900000001"]}, 403, "by"),  # a lead: numbers
        ({"by": "8001", "name": "n", "template": "t", "campaign": "spring", "team": "team2"}, 403, "team"),
        ({"by": "9001", "name": "n", "template": "t"}, 400, "campaign"),  # neither campaign nor phones
        ({"by": "9001", "name": "n", "template": "t", "phones": "13900000001"}, 400, "phones"),
        ({"by": "9001", "name": "n", "template": "t", "phones": ["1"], "cc": 1}, 400, "cc"),
        ({"by": "nobody", "name": "n", "template": "t", "phones": ["13900000001"]}, 400, "by"),
        ({"by": "9001", "name": "n", "template": "{nmae}", "phones": ["13900000001"]}, 400, "template"),
        ({"by": "9001", "name": "n", "template": "t", "campaign": "spring"}, 404, None),  # no dialer
    ]
    for sent, code, field in refusals:
        status, body = post_json(api, [b"sms", b"broadcasts"], sent)
        assert (status, body.get("field")) == (code, field), (sent, body)
    status, body = get_json(api, [b"sms", b"broadcasts", str(broadcast_id).encode()])
    assert status == 200 and body["broadcast"]["total"] == 1
    status, body = get_json(api, [b"sms", b"broadcasts"])
    assert status == 200 and [b["broadcast_id"] for b in body["broadcasts"]] == [broadcast_id]
    status, body = get_json(api, [b"sms", b"broadcasts", b"x"])
    assert (status, body["field"]) == (400, "id")
    status, body = get_json(api, [b"sms", b"replies"])
    assert (status, body) == (200, {"replies": []})
    off = ApiResource(FakeEngine(), None, None, None)  # type: ignore[arg-type]
    status, body = get_json(off, [b"sms", b"replies"])
    assert status == 404 and "sms.gateway" in body["error"]


# --- Asterisk files ------------------------------------------------------------------------------


def _rendered(tmp_path: Path, gateway: str, *, lab: bool) -> dict[str, str]:
    settings = replace(SETTINGS, site=replace(SETTINGS.site, state_dir=tmp_path / "state"),
                       sms=replace(SETTINGS.sms, gateway=gateway))
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    endpoints = AsteriskEndpoints("127.0.0.1", 15038, "127.0.0.1", 15060, "127.0.0.1", 14573, "/srv/rec", lab=lab)
    return dict(render_project_config(settings, secrets, endpoints))


def test_the_gateway_endpoint_is_rendered_only_when_sms_is_on(tmp_path: Path) -> None:
    off = parse_config(_rendered(tmp_path, "", lab=False)["pjsip.conf"], "pjsip.conf")
    assert "sms-gateway" not in off and "anonymous" not in off
    files = _rendered(tmp_path, "10.0.0.5:5070", lab=False)
    pjsip = parse_config(files["pjsip.conf"], "pjsip.conf")
    kinds = {section["type"]: section for section in pjsip["sms-gateway"]}
    assert kinds["endpoint"]["message_context"] == "sms-in"
    assert kinds["aor"]["contact"] == "sip:10.0.0.5:5070"
    assert kinds["identify"]["match"] == "10.0.0.5"
    assert "anonymous" not in pjsip  # production never takes unidentified requests
    plan = parse_config(files["extensions.conf"], "extensions.conf")
    assert plan["globals"][0]["SMS_SENDER"] == "10690000" and "sms-in" in plan and "lab-sms" not in plan
    lab = _rendered(tmp_path, "", lab=True)
    lab_pjsip = parse_config(lab["pjsip.conf"], "pjsip.conf")
    assert {s["type"] for s in lab_pjsip["sms-gateway"]} == {"endpoint", "aor"}  # the lab Asterisk itself
    assert lab_pjsip["anonymous"][0]["message_context"] == "lab-sms"
    assert "lab-sms" in parse_config(lab["extensions.conf"], "extensions.conf")
