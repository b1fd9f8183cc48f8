"""Fax on the real lab Asterisk 22 (res_fax + spandsp): received on the fax number, sent to a
fax machine on the simulated network, each filed in the faxes table from the dialplan's
``CCFax`` event; the fax channels limit incoming faxes, and outgoing ones while incoming faxes
take them all.

A fax machine calling in is ``Local/<fax number>@from-pstn/n`` whose other half runs
``SendFAX`` (``[lab-fax-sender]``); the one called is ``Local/1990007...@sim-pstn``, which
answers with ``ReceiveFAX``. The page is a real TIFF class F made by ghostscript in the lab's
root file system.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import actions
from callcenter.fax import FaxBusy
from callcenter.lab.pages import fax_page
from callcenter.service import EngineServices
from tests.labengine import engine_on_lab
from tests.labfixture import LabFactory, LabHandle
from tests.reactorthread import ReactorThread

pytestmark = pytest.mark.lab


@pytest.fixture
def fax_lab(lab_factory: LabFactory, reactor_thread: ReactorThread, tmp_path: Path
            ) -> Iterator[tuple[EngineServices, LabHandle]]:
    with engine_on_lab(lab_factory, reactor_thread, tmp_path, change=lambda settings: replace(
            settings, fax=replace(settings.fax, channels=2, ring_seconds=20))) as (services, handle, _):
        yield services, handle


def _page(lab_factory: LabFactory, handle: LabHandle) -> tuple[Path, str]:
    """A one-page TIFF class F in the recordings directory: (host path, path as Asterisk sees it)."""
    return fax_page(lab_factory.runtime, handle.recordings_dir, handle.endpoints.recordings_dir, "test-page.tif")


def _faxes(services: EngineServices, reactor_thread: ReactorThread) -> list[Any]:
    assert services.fax is not None
    faxes: list[Any] = reactor_thread.call(services.fax.recent, 20)
    return faxes


def _send_in(services: EngineServices, reactor_thread: ReactorThread, page: str, caller: str) -> Any:
    """A fax machine with caller id ``caller`` calls the fax number to send ``page``: the
    OriginateResponse (Success once the fax number answered)."""
    number = services.engine.settings.fax.number
    action = actions.originate(f"Local/{number}@from-pstn/n", context="lab-fax-sender", exten="s", priority=1,
                               caller_id=f"Fax <{caller}>", timeout_ms=20000, variables={"LAB_FAX_FILE": page})
    return reactor_thread.call(services.ami.originate, action, timeout=30)


def test_a_fax_to_the_fax_number_is_received_and_filed(fax_lab: tuple[EngineServices, LabHandle],
                                                       lab_factory: LabFactory,
                                                       reactor_thread: ReactorThread) -> None:
    services, handle = fax_lab
    _, page = _page(lab_factory, handle)
    assert _send_in(services, reactor_thread, page, "02012345678").get("Response") == "Success"
    done = _wait(services, reactor_thread, lambda f: f.direction == "inbound", count=1)
    (fax,) = done
    assert (fax.status, fax.pages, fax.number, fax.error) == ("SUCCESS", 1, "02012345678", ""), fax
    assert fax.bitrate >= 9600 and fax.size_bytes > 1000, fax
    stored = Path(fax.path)
    assert stored.is_file() and stored.parent == handle.recordings_dir / "fax" / "in", fax
    assert stored.read_bytes()[:4] in (b"II*\x00", b"MM\x00*")


def test_a_fax_is_sent_to_a_fax_machine_and_its_result_filed(fax_lab: tuple[EngineServices, LabHandle],
                                                             lab_factory: LabFactory,
                                                             reactor_thread: ReactorThread) -> None:
    services, handle = fax_lab
    host_page, _ = _page(lab_factory, handle)
    assert services.fax is not None
    record = reactor_thread.call(services.fax.send, "19900070001", host_page, timeout=30)
    assert (record.direction, record.status, record.number) == ("outbound", "SENDING", "19900070001")
    (fax,) = _wait(services, reactor_thread, lambda f: f.direction == "outbound" and f.status != "SENDING", count=1)
    assert (fax.fax_id, fax.status, fax.pages) == (record.fax_id, "SUCCESS", 1), fax
    busy = reactor_thread.call(services.fax.send, "19900010001", host_page, timeout=30)  # a busy line
    (result,) = _wait(services, reactor_thread, lambda f: f.fax_id == busy.fax_id and f.status != "SENDING",
                      count=1)
    assert (result.status, result.pages) == ("BUSY", 0), result


def test_incoming_faxes_beyond_the_fax_channels_hear_busy(fax_lab: tuple[EngineServices, LabHandle],
                                                          lab_factory: LabFactory,
                                                          reactor_thread: ReactorThread) -> None:
    """With fax.channels 2, three fax machines calling at once: two faxes filed, the third refused."""
    services, handle = fax_lab
    _, page = _page(lab_factory, handle)
    answers = [_send_in(services, reactor_thread, page, caller) for caller in ("02011110001", "02011110002",
                                                                               "02011110003")]
    assert [(a.get("Response"), a.get("Reason")) for a in answers] == [
        ("Success", "4"), ("Success", "4"), ("Failure", "5")]  # 5: busy
    done = _wait(services, reactor_thread, lambda f: f.direction == "inbound", count=2)
    assert sorted(f.status for f in done) == ["SUCCESS", "SUCCESS"]
    time.sleep(3)  # the third caller was refused at once: nothing more comes
    assert len([f for f in _faxes(services, reactor_thread) if f.direction == "inbound"]) == 2


def test_an_outgoing_fax_is_refused_busy_while_incoming_calls_take_the_fax_channels(
        fax_lab: tuple[EngineServices, LabHandle], lab_factory: LabFactory, reactor_thread: ReactorThread) -> None:
    """Received and sent faxes share the fax channels: with both of the 2 taken by callers to
    the fax number, the daemon refuses a send before placing its call (it sees the channels
    in [fax-in]). Blind to them (a fax arriving between its check and the answer), it places
    the fax, and [fax-out] refuses it once answered: filed BUSY, "all 2 fax channels are in
    use", nothing sent."""
    services, handle = fax_lab
    assert services.fax is not None
    host_page, _ = _page(lab_factory, handle)
    for name in ("SIM_RING_MIN", "SIM_RING_MAX"):  # the fax machine called answers after 1 s
        reactor_thread.call(services.ami.send, actions.setvar(name, 1), timeout=10)
    number = services.engine.settings.fax.number
    for caller in ("02011110001", "02011110002"):  # callers who hold the fax number for 20 s, sending nothing
        action = actions.originate(f"Local/{number}@from-pstn/n", application="Playback",
                                   data="silence/10&silence/10", caller_id=f"Caller <{caller}>", timeout_ms=20000)
        answer = reactor_thread.call(services.ami.originate, action, timeout=30)
        assert answer.get("Response") == "Success", answer
    reactor_thread.wait_for(lambda: services.fax is not None and services.fax.receiving() == 2, timeout=10,
                            message="the engine never saw the two calls in [fax-in]")
    with pytest.raises(FaxBusy, match=r"^all 2 fax channels are in use \(0 sending, 2 receiving\)"):
        reactor_thread.call(services.fax.send, "19900070001", host_page, timeout=30)
    services.fax.calls = None  # as if the callers came between the daemon's check and the answer
    sent = reactor_thread.call(services.fax.send, "19900070001", host_page, timeout=30)
    (fax,) = _wait(services, reactor_thread, lambda f: f.fax_id == sent.fax_id and f.status != "SENDING", count=1)
    assert (fax.status, fax.error, fax.pages) == ("BUSY", "all 2 fax channels are in use", 0), fax


def _wait(services: EngineServices, reactor_thread: ReactorThread, wanted: Any, *, count: int) -> list[Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [f for f in _faxes(services, reactor_thread) if wanted(f)]
        if len(found) >= count and all(f.status != "SENDING" for f in found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"faxes after 120 s: {_faxes(services, reactor_thread)}")
