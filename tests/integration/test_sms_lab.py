"""SMS broadcast on the real lab Asterisk 22: the engine's ``MessageSend`` goes out as a SIP
MESSAGE through the ``sms-gateway`` endpoint, which in the lab is this Asterisk itself; the
simulated network (``[lab-sms]``, dialplans/lab/sms-network.conf) reports each delivery
with the text that arrived, and handsets ending in 7 and 8 reply through the gateway to the
sender number, into the project's ``[sms-in]``, whose ``SmsReceived`` events the engine
files (a "T" puts the number on the do-not-call list).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.codec import Message
from callcenter.service import EngineServices
from callcenter.settings import Settings
from callcenter.storage import dialer as dialer_store
from tests.labengine import ROOT, callback_leads, engine_on_lab
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def sms_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
            ) -> Iterator[tuple[EngineServices, LabHandle, list[Message]]]:
    def change(settings: Settings) -> Settings:
        return replace(settings, sms=replace(settings.sms, signature="【测试公司】", rate_per_second=20.0,
                                             hours=(clock_time(0, 0), clock_time.max), min_days_between=0))

    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=change,
                       dialer_config=ROOT / "config" / "dialer.yaml") as (services, handle, _):
        delivered: list[Message] = []
        reactor_thread.call(lambda: services.ami.subscribe(
            lambda m: delivered.append(m) if m.get("UserEvent") == "LabSmsDelivered" else None, "UserEvent"))
        assert services.sms is not None
        reactor_thread.call(lambda: services.sms.ready if services.sms is not None else None, timeout=20)
        yield services, handle, delivered


def _until(what: str, check: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {seconds:g} s; last {check()!r}")


def _text(event: Message, field: str) -> str:
    return base64.b64decode(event.get(field) or "").decode("utf-8")


def test_a_broadcast_reaches_the_network_and_an_unsubscribe_reply_lands_on_the_dnc_list(
        sms_lab: tuple[EngineServices, LabHandle, list[Message]], reactor_thread: ReactorThread) -> None:
    services, _, delivered = sms_lab
    sms, repository = services.sms, services.engine.repository
    assert sms is not None and repository is not None
    now = datetime.now(UTC)
    reactor_thread.call(repository.run, dialer_store.add_dnc, ["13900000005"], source="test", now=now)
    created = reactor_thread.call(
        sms.broadcast, name="发货通知", template="您好，尾号{phone}的订单已发货，如有疑问请回复。", actor="9001",
        phones=["13900000001", "13900000017", "13900000028", "13900000005", "139 0000 0001", "12345"])
    assert created.queued == 3, created
    assert created.skipped == {"dnc": 1, "duplicate": 1, "invalid": 1}, created
    progress = _until("three messages sent", lambda: (
        p := reactor_thread.call(sms.progress, created.broadcast_id)).by_status.get("sent") == 3 and p)
    assert progress.by_status.get("queued", 0) == progress.by_status.get("sending", 0) == 0, progress
    arrived = _until("three messages delivered on the simulated network", lambda: len(delivered) >= 3 and delivered)
    bodies = {event.get("To"): _text(event, "Body") for event in arrived}
    assert set(bodies) == {"13900000001", "13900000017", "13900000028"}, bodies
    assert bodies["13900000017"] == "【测试公司】您好，尾号13900000017的订单已发货，如有疑问请回复。回T退订"
    assert all("10690000" in _text(event, "From") for event in arrived)  # the sender number replies go to
    # 13900000017 replies "T" and 13900000028 a sentence, through the gateway to [sms-in]
    replies = _until("two replies filed", lambda: len(r := reactor_thread.call(sms.replies)) >= 2 and r)
    by_phone = {r.phone: r for r in replies}
    assert (by_phone["13900000017"].body, by_phone["13900000017"].opt_out,
            by_phone["13900000017"].added_to_dnc) == ("T", True, True), replies
    assert (by_phone["13900000028"].body, by_phone["13900000028"].opt_out) == ("好的，请来电", False), replies
    assert by_phone["13900000017"].to_number == "10690000"
    assert reactor_thread.call(repository.run, dialer_store.is_dnc, "13900000017")
    # the replies ran [sms-in] on Asterisk's message channel (Message/ast_msg_queue, never hung
    # up): no call on the engine's board
    board = reactor_thread.call(lambda: list(services.engine.calls.channels.values()))
    assert board == [], board
    assert reactor_thread.call(lambda: services.engine.calls.counters.get("message_channel", 0)) >= 1
    # the customer who answered is a call-back for an agent (the shipped hotline-callbacks campaign)
    assert _until("the reply queued as a call-back", lambda: callback_leads(services, reactor_thread)) == [("13900000028", {"sms_reply": "好的，请来电"})]
    # the next broadcast skips the number that unsubscribed
    again = reactor_thread.call(sms.broadcast, name="第二次", template="新品上市", actor="9001",
                                phones=["13900000017", "13900000001"])
    assert (again.queued, again.skipped) == (1, {"dnc": 1}), again
    _until("the second broadcast sent", lambda: reactor_thread.call(
        sms.progress, again.broadcast_id).by_status.get("sent") == 1)
    # an agent texts a caller the ticket number: a notice, signed, without the opt-out note
    ticket = reactor_thread.call(sms.text_ticket, ticket="GD20261206042", phone="13900000051", name="王芳",
                                 agent="1001")
    assert ticket.queued == 1, ticket
    notice = _until("the ticket number delivered", lambda: [e for e in delivered if e.get("To") == "13900000051"])
    assert _text(notice[0], "Body") == "【测试公司】您好，您本次来电的工单号为GD20261206042，感谢您的来电。"
