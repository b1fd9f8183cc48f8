"""Fax without Asterisk: the CCFax event, the page check, the service with a fake AMI and a real
database, the HTTP routes, the configuration and the generated dialplan."""

from __future__ import annotations

import base64
import gzip
from dataclasses import replace
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
from callcenter.fax import MAX_FAX_BYTES, FaxBusy, check_tiff, parse_fax_event
from callcenter.fax_service import FaxService
from callcenter.http_api import ApiResource
from callcenter.metrics import EngineMetrics
from callcenter.secrets import load_or_create_secrets
from callcenter.settings import ConfigError, load_settings
from callcenter.storage.records import InvalidFieldError
from tests.httpapi import get_json, post_json
from tests.syncrepository import SyncRepository

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")
CAPTURE = ROOT.parent / "shared" / "fixtures" / "ami" / "asterisk22-queue-dialer-fax.ami.gz"
TIFF = b"II*\x00" + bytes(2000)


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
        self.originates: list[tuple[Any, Deferred[Message]]] = []

    def subscribe(self, callback: Any, name: str | None = None) -> Any:
        self.listeners.append(callback)
        return self

    def cancel(self) -> None:
        pass

    def originate(self, action: Any, *, timeout: float | None = None) -> Deferred[Message]:
        d: Deferred[Message] = Deferred()
        self.originates.append((action, d))
        return d


def _service(sessions: sessionmaker[Session], tmp_path: Path) -> tuple[FaxService, FakeAmi, CollectorRegistry]:
    ami = FakeAmi()
    registry = CollectorRegistry()
    settings = replace(SETTINGS, fax=replace(SETTINGS.fax, channels=2))
    service = FaxService(settings, ami, SyncRepository(sessions), Clock(), RecordingPaths("/srv/rec", tmp_path),
                         metrics=EngineMetrics(registry))
    service.startService()
    return service, ami, registry


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
