"""Fax without Asterisk: the CCFax event, the page check, the service with a fake AMI and a real
database, the HTTP routes, the configuration and the generated dialplan."""

from __future__ import annotations

import base64
import gzip
import os
import re
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from callcenter.ami.codec import AmiParser, Message
from callcenter.asterisk.conffile import parse_config
from callcenter.asterisk.render import AsteriskEndpoints, render_project_config
from callcenter.engine import RecordingPaths
from callcenter.fax import (
    MAX_FAX_BYTES,
    FaxBusy,
    check_tiff,
    inbox_fax_id,
    parse_fax_event,
    send_deadline,
    tiff_pages,
)
from callcenter.fax_service import FaxService
from callcenter.http_api import ApiResource
from callcenter.metrics import EngineMetrics
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import ConfigError, load_settings
from callcenter.storage.records import InvalidFieldError
from callcenter.storage.repository import add_outgoing_fax, file_fax
from tests.httpapi import get_json, post_json
from tests.syncrepository import SyncRepository, in_tx

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")
CAPTURE = ROOT / "tests" / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"
TIFF = b"II*\x00" + bytes(2000)
NOW = 1_800_000_000.0
"""The clock's time in the tests of deadlines (2027-01-15 08:00 UTC)."""


def pages_tiff(pages: int, order: str = "<") -> bytes:
    """A TIFF of ``pages`` image file directories (one entry each), in byte ``order``."""
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8 if pages else 0)
    ifds = b"".join(struct.pack(order + "H", 1) + bytes(12) + struct.pack(order + "I", 8 + 18 * (i + 1) if i < pages - 1 else 0)
                    for i in range(pages))
    return head + ifds + bytes(500)


def event(**fields: object) -> Message:
    return Message.from_pairs([("Event", "UserEvent"), ("UserEvent", "CCFax"),
                               *((k, str(v)) for k, v in fields.items())])


def test_the_ccfax_event_becomes_a_fax_result() -> None:
    result = parse_fax_event(event(FaxId="1795415288.385", Direction="inbound", Number="02012345678",
                                   Status="SUCCESS", Error="", Pages=1, Rate=14400, Remote="LAB FAX",
                                   File="/srv/rec/fax/in/x.tif"))
    assert result is not None
    assert (result.direction, result.number, result.status, result.pages, result.bitrate, result.remote_station) == (
        "inbound", "02012345678", "SUCCESS", 1, 14400, "LAB FAX")
    assert parse_fax_event(event(FaxId="1", Direction="sideways")) is None
    assert parse_fax_event(event(Direction="inbound")) is None  # no id: not ours to file
    odd = parse_fax_event(event(FaxId="2", Direction="outbound", Status="", Pages="x"))
    assert odd is not None and (odd.status, odd.pages) == ("FAILED", 0)


def test_no_event_of_a_real_capture_is_taken_for_a_fax_report() -> None:
    """Asterisk's own ReceiveFAX/SendFAX events (and every other one) are not CCFax reports."""
    parser = AmiParser()
    messages = parser.feed(gzip.decompress(CAPTURE.read_bytes()))
    assert sum(m.name in ("ReceiveFAX", "SendFAX") for m in messages) >= 2
    assert all(parse_fax_event(m) is None for m in messages)


def test_only_tiff_pages_are_sent(tmp_path: Path) -> None:
    (tmp_path / "page.tif").write_bytes(TIFF)
    check_tiff(tmp_path / "page.tif")
    (tmp_path / "page.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(InvalidFieldError, match=r"^file: '.*page\.pdf' is not a TIFF file \(make fax pages with gs"):
        check_tiff(tmp_path / "page.pdf")
    with pytest.raises(InvalidFieldError, match=r"^file: cannot read '.*missing\.tif'"):
        check_tiff(tmp_path / "missing.tif")


class FakeAmi:
    def __init__(self) -> None:
        self.listeners: list[Any] = []
        self.resync_listeners: list[Any] = []
        self.originates: list[tuple[Any, Deferred[Message]]] = []

    def subscribe(self, callback: Any, name: str | None = None) -> Any:
        self.listeners.append(callback)
        return self

    def on_resync(self, callback: Any) -> Any:
        self.resync_listeners.append(callback)
        return self

    def reconnected(self, *uniqueids: str) -> None:
        """A (re)connection: Asterisk's live channels are those with ``uniqueids``."""
        channels = [Message.from_pairs([("Event", "CoreShowChannel"), ("Uniqueid", u)]) for u in uniqueids]
        for callback in self.resync_listeners:
            callback(channels, [])

    def cancel(self) -> None:
        pass

    def originate(self, action: Any, *, timeout: float | None = None) -> Deferred[Message]:
        d: Deferred[Message] = Deferred()
        self.originates.append((action, d))
        return d


def _service(sessions: sessionmaker[Session], tmp_path: Path, clock: Clock | None = None
             ) -> tuple[FaxService, FakeAmi, CollectorRegistry]:
    ami = FakeAmi()
    registry = CollectorRegistry()
    settings = replace(SETTINGS, fax=replace(SETTINGS.fax, channels=2))
    service = FaxService(settings, ami, SyncRepository(sessions), clock or Clock(),
                         RecordingPaths("/srv/rec", tmp_path), metrics=EngineMetrics(registry))
    service.startService()
    return service, ami, registry


def _clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


def _answered(ami: FakeAmi, index: int, uniqueid: str) -> None:
    ami.originates[index][1].callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"),
                                                          ("Reason", "4"), ("Uniqueid", uniqueid)]))


def test_sending_places_the_call_and_files_how_it_ended(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    service, ami, registry = _service(sessions, tmp_path)
    page = tmp_path / "page.tif"
    page.write_bytes(TIFF)
    sent: list[Any] = []
    service.send("+86 20 1234 5678", page).addCallback(sent.append)
    (record,) = sent
    assert (record.direction, record.number, record.status) == ("outbound", "02012345678", "SENDING")
    (action, answered) = ami.originates[0]
    fields = dict(action.headers)
    assert fields["Channel"] == "PJSIP/02012345678@pstn" and fields["Context"] == "fax-out"
    copy = Path(record.path)
    assert copy.parent == tmp_path / "fax" / "out" and copy.read_bytes() == TIFF
    assert dict(action.variables)["CC_FAX_FILE"] == f"/srv/rec/fax/out/{copy.name}"
    answered.callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Success"), ("Reason", "4")]))
    ami.listeners[0](event(FaxId=record.fax_id, Direction="outbound", Number="02012345678", Status="SUCCESS",
                           Pages=2, Rate=9600, File=f"/srv/rec/fax/out/{copy.name}"))
    (done,) = service.recent(5).result
    assert (done.fax_id, done.status, done.pages, done.size_bytes, done.ended_at is not None) == (
        record.fax_id, "SUCCESS", 2, len(TIFF), True)
    assert service.sending == set()
    assert service.clock.getDelayedCalls() == []  # reported: its deadline is off
    assert registry.get_sample_value("callcenter_faxes_total", {"direction": "outbound", "status": "SUCCESS"}) == 1


def test_an_unanswered_fax_call_is_filed_and_the_channels_are_limited(sessions: sessionmaker[Session],
                                                                      tmp_path: Path) -> None:
    service, ami, _ = _service(sessions, tmp_path)
    page = tmp_path / "page.tif"
    page.write_bytes(TIFF)
    first, second = service.send("13800138000", page), service.send("13800138001", page)
    with pytest.raises(FaxBusy, match="all 2 fax channels are in use"):
        service.send("13800138002", page)
    ami.originates[0][1].callback(Message.from_pairs([("Event", "OriginateResponse"), ("Response", "Failure"),
                                                      ("Reason", "5")]))
    by_number = {f.number: f for f in service.recent(5).result}
    assert (by_number["13800138000"].status, by_number["13800138001"].status) == ("BUSY", "SENDING")
    assert first.result.fax_id != second.result.fax_id
    service.send("13800138002", page)  # a channel is free again
    ami.originates[1][1].errback(TimeoutError("AMI action timed out"))  # Asterisk never answered the Originate
    lost = next(f for f in service.recent(5).result if f.number == "13800138001")
    assert (lost.status, lost.error) == ("FAILED", "the call could not be placed: AMI action timed out")
    with pytest.raises(InvalidFieldError, match="^to: must be 3 to 15 digits"):
        service.send("fax me", page)


def test_faxes_being_received_take_the_fax_channels_before_a_send_dials(sessions: sessionmaker[Session],
                                                                         tmp_path: Path) -> None:
    """With one fax arriving ([fax-in]) and one being sent, the 2 channels are in use: a third
    send is refused before its call is placed (the dialplan would refuse it only once the far
    end answered); the arriving fax's channel gone, a send goes out."""
    from callcenter.state.calls import CallState

    calls = CallState()
    service, ami, _ = _service(sessions, tmp_path)
    service.calls = calls
    service.send("13800138000", TIFF)

    def event(name: str, uid: str, context: str, application: str = "ReceiveFAX") -> Message:
        return Message.from_pairs([("Event", name), ("Channel", f"PJSIP/trunk-{uid}"), ("ChannelState", "6"),
                                   ("ChannelStateDesc", "Up"), ("CallerIDNum", "02012345678"), ("Context", context),
                                   ("Exten", "s"), ("Priority", "1"), ("Uniqueid", uid), ("Linkedid", uid),
                                   ("Application", application)])

    calls.handle(event("Newchannel", "1800000000.5", "from-pstn"), 1.0)
    calls.handle(event("Newchannel", "1800000000.6", "from-pstn"), 1.4)
    calls.handle(event("Newexten", "1800000000.6", "fax-in", "Busy"), 1.5)  # a fax refused: not counted
    calls.handle(event("Newexten", "1800000000.5", "fax-in"), 2.0)
    with pytest.raises(FaxBusy, match=r"^all 2 fax channels are in use \(1 sending, 1 receiving\)"):
        service.send("13800138001", TIFF)
    assert len(ami.originates) == 1
    calls.handle(event("Hangup", "1800000000.5", "fax-in"), 60.0)
    service.send("13800138001", TIFF)
    assert len(ami.originates) == 2


def test_a_sent_fax_never_reported_is_given_up_at_its_deadline(sessions: sessionmaker[Session],
                                                              tmp_path: Path) -> None:
    """A sent fax whose CCFax report is lost (AMI reconnection, restart) does not stay SENDING
    nor hold its fax channel for good: at ring time + 180 s a page + 120 s it is filed FAILED,
    "no result from Asterisk", and its channel is free; a report that still comes wins."""
    clock = _clock()
    service, ami, registry = _service(sessions, tmp_path, clock)  # 2 channels, ring_seconds 60
    first = service.send("13800138000", TIFF).result
    second = service.send("13800138001", pages_tiff(2)).result
    _answered(ami, 0, "1800000000.1")
    _answered(ami, 1, "1800000000.2")
    clock.advance(359)  # 60 + 180 + 120 = 360 s for the one-page fax
    with pytest.raises(FaxBusy):
        service.send("13800138002", TIFF)
    assert {f.status for f in service.recent(5).result} == {"SENDING"}
    clock.advance(1)
    by_id = {f.fax_id: f for f in service.recent(5).result}
    assert (by_id[first.fax_id].status, by_id[first.fax_id].error) == (
        "FAILED", "no result from Asterisk: not reported within 360 s of placing the call")
    assert by_id[first.fax_id].ended_at == datetime.fromtimestamp(NOW + 360, UTC)
    assert by_id[second.fax_id].status == "SENDING"  # 2 pages: 60 + 2 x 180 + 120 = 540 s
    third = service.send("13800138002", TIFF).result  # the channel is free again
    clock.advance(180)
    assert service.recent(5).result[1].status == "FAILED" and service.sending == {third.fax_id}
    assert registry.get_sample_value("callcenter_faxes_total", {"direction": "outbound", "status": "FAILED"}) == 2
    ami.listeners[0](event(FaxId=first.fax_id, Direction="outbound", Number="13800138000", Status="SUCCESS",
                           Pages=1, Rate=9600))  # the report came after all
    assert next(f for f in service.recent(5).result if f.fax_id == first.fax_id).status == "SUCCESS"
    service.stopService()
    assert clock.getDelayedCalls() == []


def test_after_an_ami_reconnection_a_sent_fax_whose_call_is_gone_is_given_up(sessions: sessionmaker[Session],
                                                                            tmp_path: Path) -> None:
    """The reviewer's case: faxes answered, AMI drops, their reports are lost. At the
    reconnection, a fax whose call is no longer among Asterisk's channels is filed FAILED and
    its channel freed at once; one whose call is still up keeps its channel."""
    clock = _clock()
    service, ami, _ = _service(sessions, tmp_path, clock)
    gone = service.send("13800138000", TIFF).result
    going = service.send("13800138001", TIFF).result
    _answered(ami, 0, "1800000000.1")
    _answered(ami, 1, "1800000000.2")
    ami.reconnected("1800000000.2", "1800000000.3")
    by_id = {f.fax_id: f for f in service.recent(5).result}
    assert (by_id[gone.fax_id].status, by_id[gone.fax_id].error) == (
        "FAILED", "no result from Asterisk: the call ended while the engine was disconnected from AMI")
    assert by_id[going.fax_id].status == "SENDING" and service.sending == {going.fax_id}
    service.send("13800138002", TIFF)  # a channel is free
    assert len(clock.getDelayedCalls()) == 2  # the deadlines of the two still being sent


def test_at_start_up_faxes_left_sending_are_given_up_or_watched(sessions: sessionmaker[Session],
                                                               tmp_path: Path) -> None:
    """After a restart: a fax still SENDING past its deadline is filed FAILED at once; one
    still within it holds a fax channel until its report or its deadline; a fax filed is
    left alone."""
    placed = datetime.fromtimestamp(NOW, UTC)
    in_tx(sessions, add_outgoing_fax, "old", "13800138000", "", 0, placed - timedelta(seconds=361))
    in_tx(sessions, add_outgoing_fax, "recent", "13800138001", "", 0, placed - timedelta(seconds=100))
    in_tx(sessions, add_outgoing_fax, "done", "13800138002", "", 0, placed - timedelta(days=1))
    in_tx(sessions, file_fax, parse_fax_event(event(FaxId="done", Direction="outbound", Status="SUCCESS")), "", 0,
          placed - timedelta(days=1))
    clock = _clock()
    service, ami, registry = _service(sessions, tmp_path, clock)
    by_id = {f.fax_id: f for f in service.recent(5).result}
    assert (by_id["old"].status, by_id["old"].error) == (
        "FAILED", "no result from Asterisk: not reported within 360 s of placing the call")
    assert (by_id["recent"].status, by_id["done"].status) == ("SENDING", "SUCCESS")
    assert service.sending == {"recent"}  # still under way on Asterisk, maybe
    ami.reconnected()  # the first connection: no second watch of the same fax
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(259)
    assert next(f for f in service.recent(5).result if f.fax_id == "recent").status == "SENDING"
    clock.advance(1)
    assert next(f for f in service.recent(5).result if f.fax_id == "recent").status == "FAILED"
    assert service.sending == set() and clock.getDelayedCalls() == []
    assert registry.get_sample_value("callcenter_faxes_total", {"direction": "outbound", "status": "FAILED"}) == 2


def test_received_faxes_in_the_inbox_with_no_row_are_filed_on_connecting(sessions: sessionmaker[Session],
                                                                        tmp_path: Path) -> None:
    """A received fax whose report was missed is filed from its TIFF in the fax inbox (status
    RECEIVED, its pages, size and times) once the engine is connected to Asterisk, but not a
    fax still being received on a live call, nor one already filed, nor twice."""
    clock = _clock()
    service, ami, registry = _service(sessions, tmp_path, clock)
    inbox = tmp_path / "fax" / "in"
    missed = inbox / "20270115-075500-1799999700.12.tif"
    missed.write_bytes(pages_tiff(3))
    os.utime(missed, (NOW - 60, NOW - 60))
    (inbox / "20270115-075900-1799999940.14.tif").write_bytes(TIFF)  # its call is still up
    (inbox / "20270115-075000-1.1.tif").write_bytes(TIFF)
    ami.listeners[0](event(FaxId="1.1", Direction="inbound", Number="02012345678", Status="SUCCESS",
                           File="/srv/rec/fax/in/20270115-075000-1.1.tif"))
    (inbox / "notes.txt").write_text("not a fax")
    ami.reconnected("1799999940.14")
    ami.reconnected("1799999940.14")
    found = [f for f in service.recent(10).result if f.status == "RECEIVED"]
    assert [(f.fax_id, f.direction, f.pages, f.size_bytes, f.path) for f in found] == [
        ("1799999700.12", "inbound", 3, len(pages_tiff(3)), str(missed))]
    assert (found[0].created_at, found[0].ended_at) == (datetime(2027, 1, 15, 7, 55, tzinfo=UTC),
                                                        datetime.fromtimestamp(NOW - 60, UTC))
    assert found[0].error == "no result from Asterisk: filed from the file in the fax inbox"
    assert registry.get_sample_value("callcenter_faxes_total", {"direction": "inbound", "status": "RECEIVED"}) == 1
    ami.listeners[0](event(FaxId="1799999700.12", Direction="inbound", Number="02012345678", Status="SUCCESS",
                           Pages=3, File=f"/srv/rec/fax/in/{missed.name}"))  # a report still wins
    (fax,) = [f for f in service.recent(10).result if f.fax_id == "1799999700.12"]
    assert (fax.status, fax.number, fax.pages) == ("SUCCESS", "02012345678", 3)


def test_tiff_pages_and_the_send_deadline() -> None:
    """The pages are the TIFF's image file directories (either byte order; a broken or looping
    chain ends the count); a fax may take its ring time, 180 s a page (at least one) and 120 s."""
    assert [tiff_pages(pages_tiff(n)) for n in (1, 3)] == [1, 3]
    assert tiff_pages(pages_tiff(2, ">")) == 2
    assert tiff_pages(TIFF) == 0 and tiff_pages(b"%PDF-1.4") == 0 and tiff_pages(b"") == 0
    assert tiff_pages(pages_tiff(3)[:30]) == 1  # cut short in the second directory
    looping = bytearray(pages_tiff(2))
    looping[8 + 18 + 14:8 + 18 + 18] = struct.pack("<I", 8)  # the second page points back to the first
    assert tiff_pages(bytes(looping)) == 2
    placed = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert send_deadline(placed, 60, 0) == send_deadline(placed, 60, 1) == placed + timedelta(seconds=360)
    assert send_deadline(placed, 30, 10) == placed + timedelta(seconds=30 + 1800 + 120)
    assert inbox_fax_id("20270115-075500-1799999700.12.tif") == "1799999700.12"
    assert inbox_fax_id("scan.tif") == "scan"


def test_an_outgoing_fax_refused_by_the_dialplan_for_want_of_a_channel_is_filed_busy(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """[fax-out] reports a fax it refused (every fax channel taken by faxes coming in) as BUSY,
    "all N fax channels are in use": filed so, its channel and deadline freed."""
    service, ami, registry = _service(sessions, tmp_path, _clock())
    sent = service.send("13800138000", TIFF).result
    _answered(ami, 0, "1800000000.1")
    ami.listeners[0](event(FaxId=sent.fax_id, Direction="outbound", Number="13800138000", Status="BUSY",
                           Error="all 2 fax channels are in use", Pages="", Rate="", Remote=""))
    (fax,) = service.recent(5).result
    assert (fax.status, fax.error, fax.pages) == ("BUSY", "all 2 fax channels are in use", 0)
    assert service.sending == set() and service.clock.getDelayedCalls() == []
    assert registry.get_sample_value("callcenter_faxes_total", {"direction": "outbound", "status": "BUSY"}) == 1


def test_a_page_that_is_not_a_tiff_fails_the_send_and_frees_its_channel(sessions: sessionmaker[Session],
                                                                       tmp_path: Path) -> None:
    service, ami, _ = _service(sessions, tmp_path)
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    failures: list[Failure] = []
    service.send("13800138000", pdf).addErrback(failures.append)
    (failure,) = failures
    assert failure.check(InvalidFieldError) and str(failure.value).startswith("file: ")
    assert service.sending == set() and ami.originates == [] and service.recent(5).result == []
    assert list((tmp_path / "fax" / "out").iterdir()) == []


def test_a_received_fax_is_filed_from_its_event(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    service, ami, _ = _service(sessions, tmp_path)
    received = tmp_path / "fax" / "in" / "20261206-1.tif"
    received.write_bytes(TIFF)  # startService made fax/in
    ami.listeners[0](event(FaxId="1.1", Direction="inbound", Number="02012345678", Status="FAILED",
                           Error="T30_ERR_RX_NOCARRIER", Pages=0, File="/srv/rec/fax/in/20261206-1.tif"))
    (fax,) = service.recent(5).result
    assert (fax.direction, fax.status, fax.error, fax.path, fax.size_bytes) == (
        "inbound", "FAILED", "T30_ERR_RX_NOCARRIER", str(received), len(TIFF))


def test_http_routes_send_and_list_naming_bad_fields(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    service, _, _ = _service(sessions, tmp_path)
    page = tmp_path / "page.tif"
    page.write_bytes(TIFF)
    api = ApiResource(Any, None, service)  # type: ignore[arg-type]
    status, body = post_json(api, [b"faxes"], {"to": "13800138000", "file": str(page)})
    assert (status, body["fax"]["status"]) == (200, "SENDING")
    for sent, field in (({"to": "x", "file": str(page)}, "to"), ({"to": "13800138000", "file": "/nope.tif"}, "file"),
                        ({"to": "13800138000"}, "file"), ({"to": "1", "file": "p", "cc": "x"}, "cc")):
        status, body = post_json(api, [b"faxes"], sent)
        assert (status, body["field"]) == (400, field), body
    post_json(api, [b"faxes"], {"to": "13800138001", "file": str(page)})
    status, body = post_json(api, [b"faxes"], {"to": "13800138002", "file": str(page)})
    assert status == 409 and "fax channels are in use" in body["error"]
    status, body = get_json(api, [b"faxes"], {b"limit": [b"10"]})
    assert status == 200 and [f["number"] for f in body["faxes"]] == ["13800138001", "13800138000"]


def test_people_signed_in_send_the_pages_not_a_file_on_the_daemons_host(sessions: sessionmaker[Session],
                                                                        tmp_path: Path) -> None:
    """An agent's request may not name a file on the daemon's host (any TIFF it can read, a
    received fax, or a probe of which files exist): 403 naming ``file``, nothing sent. They
    send the pages themselves, base64 in ``tiff``; the host's token may do either."""
    service, ami, _ = _service(sessions, tmp_path)
    received = tmp_path / "fax" / "in" / "20261206-1.tif"
    received.write_bytes(TIFF)
    api = ApiResource(SimpleNamespace(settings=SETTINGS), None, service)  # type: ignore[arg-type]
    agent = SETTINGS.people["2101"]
    for path in (str(received), "/nonexistent/x", "/root/.bashrc"):
        status, body = post_json(api, [b"faxes"], {"to": "13800138000", "file": path}, person=agent)
        assert (status, body["field"]) == (403, "file") and "2101 is signed in" in body["error"], body
        assert path not in body["error"]
    assert ami.originates == [] and service.recent(5).result == []
    pages = base64.b64encode(TIFF).decode()
    status, body = post_json(api, [b"faxes"], {"to": "13800138000", "tiff": pages}, person=agent)
    assert (status, body["fax"]["status"]) == (200, "SENDING"), body
    (sent,) = service.recent(5).result
    assert Path(sent.path).parent == tmp_path / "fax" / "out" and Path(sent.path).read_bytes() == TIFF
    assert dict(ami.originates[0][0].variables)["CC_FAX_FILE"] == f"/srv/rec/fax/out/{Path(sent.path).name}"
    for bad, error in (({"to": "13800138001", "tiff": "not base64!"}, "not valid base64"),
                       ({"to": "13800138001", "tiff": base64.b64encode(b"%PDF-1.4").decode()}, "not a TIFF file"),
                       ({"to": "13800138001", "tiff": 12}, "expected a non-empty base64 string"),
                       ({"to": "13800138001", "tiff": "A" * (MAX_FAX_BYTES * 4 // 3 + 16)}, "more than"),
                       ({"to": "13800138001"}, "expected the pages")):
        status, body = post_json(api, [b"faxes"], bad, person=agent)
        assert (status, body["field"]) == (400, "file" if "tiff" not in bad else "tiff"), body
        assert error in body["error"], body
    status, body = post_json(api, [b"faxes"], {"to": "13800138001", "file": str(received), "tiff": pages})
    assert (status, body["field"]) == (400, "tiff") and "one of them" in body["error"], body
    status, body = post_json(api, [b"faxes"], {"to": "13800138001", "tiff": pages})  # the host's token
    assert status == 200, body
    assert len(ami.originates) == 2


def test_fax_settings_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text("fax:\n  number: 40-08\n  channels: 0\n  trunk: PJSIP/pstn\n")
    with pytest.raises(ConfigError) as info:
        load_settings(ROOT / "config", [bad])
    assert str(info.value).splitlines() == [
        f"{bad}:2:3: fax.number: expected 2 to 20 digits, got '40-08'",
        f"{bad}:3:3: fax.channels: expected an integer in 1..64, got 0",
        f"{bad}:4:3: fax.trunk: expected a channel with {{phone}}, e.g. PJSIP/{{phone}}@pstn, got 'PJSIP/pstn'",
    ]
    for number in ("4008001234", "400"):  # [from-pstn] routes these to the hotline first
        bad.write_text(f"fax:\n  number: '{number}'\n")
        with pytest.raises(ConfigError, match=rf"^{bad}:2:3: fax.number: {number} is a hotline number"):
            load_settings(ROOT / "config", [bad])
    bad.write_text("fax:\n  number: '40080012345'\n")  # 11 digits: not the hotline's pattern
    assert load_settings(ROOT / "config", [bad]).fax.number == "40080012345"


def test_the_dialplan_routes_the_fax_number_and_limits_the_channels(tmp_path: Path) -> None:
    settings = replace(SETTINGS, site=replace(SETTINGS.site, state_dir=tmp_path / "state"),
                       fax=replace(SETTINGS.fax, number="4009", channels=3))
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    endpoints = AsteriskEndpoints("127.0.0.1", 15038, "127.0.0.1", 15060, "127.0.0.1", 14573, "/srv/rec")
    text = dict(render_project_config(settings, secrets, endpoints))["extensions.conf"]
    plan = parse_config(text, "extensions.conf")
    assert plan["globals"][0]["FAX_CHANNELS"] == "3"
    assert "exten => 4009,1,Goto(fax-in,s,1)" in text
    assert "include => fax-number" in text and {"fax-in", "fax-out", "fax-report", "fax-number"} <= set(plan)


def test_the_outgoing_fax_dialplan_checks_the_fax_channels_before_sending(tmp_path: Path) -> None:
    """Faxes received and sent share FAX_CHANNELS: [fax-out] joins GROUP fax and, over the
    limit, hangs up before SendFAX with CC_FAX_STATUS=BUSY and a plain error, which the hangup
    handler reports in place of FAXSTATUS/FAXERROR; [fax-in] still refuses a caller over it.
    Both leave the group when they refuse, so a refused call is not counted while it ends."""
    settings = replace(SETTINGS, site=replace(SETTINGS.site, state_dir=tmp_path / "state"))
    secrets = load_or_create_secrets(settings.site.state_dir, [a.id for a in settings.agents])
    endpoints = AsteriskEndpoints("127.0.0.1", 15038, "127.0.0.1", 15060, "127.0.0.1", 14573, "/srv/rec")
    text = dict(render_project_config(settings, secrets, endpoints))["extensions.conf"]

    def steps(context: str) -> list[str]:  # "(label),App(args)" or "App(args)", in order
        lines = text.split(f"\n[{context}]\n", 1)[1].split("\n\n", 1)[0].splitlines()
        found = [re.match(r"^(?:exten => s,1|\s*same => n)(\([a-z]+\))?,(.*)$", line) for line in lines]
        return [f"{m[1]},{m[2]}" if m[1] else m[2] for m in found if m]

    check = "GotoIf($[${GROUP_COUNT(fax)} > ${FAX_CHANNELS}]?busy)"
    out = steps("fax-out")
    assert out.index("Set(CHANNEL(hangup_handler_push)=fax-report,s,1)") < out.index("Set(GROUP()=fax)")
    assert out.index("Set(GROUP()=fax)") + 1 == out.index(check) < out.index("SendFAX(${CC_FAX_FILE})")
    assert out[out.index("(busy),Set(GROUP()=)"):] == [
        "(busy),Set(GROUP()=)", "Set(CC_FAX_STATUS=BUSY)",
        "Set(CC_FAX_ERROR=all ${FAX_CHANNELS} fax channels are in use)", "Hangup()"]
    incoming = steps("fax-in")
    assert incoming.index("Set(GROUP()=fax)") + 1 == incoming.index(check) < incoming.index("ReceiveFAX(${CC_FAX_FILE})")
    assert incoming[-2:] == ["(busy),Set(GROUP()=)", "Busy(10)"]
    report = steps("fax-report")
    assert report[:3] == ['GotoIf($["${CC_FAX_STATUS}" != ""]?report)',
                          'Set(CC_FAX_STATUS=${IF($["${FAXSTATUS}" = ""]?FAILED:${FAXSTATUS})})',
                          "Set(CC_FAX_ERROR=${FAXERROR})"]
    assert "Status: ${CC_FAX_STATUS},Error: ${CC_FAX_ERROR}," in report[3] and report[3].startswith("(report),")
