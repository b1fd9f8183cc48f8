"""Agents' softphones (SIPp, ``tests.softphones``) against the real lab Asterisk 22.

The lab instance runs the project's own configuration (``render_project_config``: the
``agent<ID>`` PJSIP endpoints with per-install secrets, the queues and the 400 hotline
dialplan). No FastAGI server listens on the rendered AGI port, so ``AGI()`` fails and
the hotline dialplan goes straight on to ``Queue(hotline)``, as it does in production
when the engine is down. AMI is driven with the raw test client of ``test_lab``.

Needs root (chroot runtime) or ``CALLCENTER_LAB_RUNTIME=host``, and ``sipp``.
"""

from __future__ import annotations

import array
import random
import socket
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.cli import lab_project_files
from callcenter.lab.instance import InstanceEndpoints, tcp_port_free
from callcenter.secrets import Secrets, load_or_create_secrets
from callcenter.settings import Settings, load_settings
from tests.integration.test_lab import Ami, Message, get
from tests.labfixture import LabFactory, LabHandle
from tests.softphones import (
    G711A_PCAP,
    SoftphoneError,
    Softphones,
    dtmf_pcap,
    free_udp_port,
    parse_message_log,
    release_udp_ports,
    softphones,
)

__all__ = ["softphones"]  # the fixture, imported for this module

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@dataclass
class SoftphoneLab:
    """A lab Asterisk with the project's files, and the secrets it was rendered with."""

    handle: LabHandle
    settings: Settings
    secrets: Secrets

    @property
    def sip_port(self) -> int:
        return self.handle.endpoints.sip_port

    @property
    def instance_ports(self) -> set[int]:
        return set(self.handle.ports.all_ports())

    def ami(self) -> Ami:
        h = self.handle
        return Ami(h.ami_host, h.ami_port, h.ami_username, h.ami_secret)


def _unused_tcp_port(avoid: set[int]) -> int:
    """A loopback TCP port nobody listens on (the absent engine's FastAGI port)."""
    rng = random.Random()
    for _ in range(2000):
        port = rng.randrange(20000, 30000)
        if port not in avoid and tcp_port_free(port):
            return port
    raise RuntimeError("no free loopback TCP port in 20000-29999")


@pytest.fixture(scope="module")
def softphone_lab(
    lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SoftphoneLab]:
    """One lab instance with the project's pjsip/queues/extensions/manager files."""
    settings = load_settings(CONFIG_DIR)
    secrets = load_or_create_secrets(
        tmp_path_factory.mktemp("state"), [a.id for a in settings.agents]
    )

    def agi_port(ep: InstanceEndpoints) -> int:
        return _unused_tcp_port({ep.ami_port, ep.sip_port, ep.http_port})

    project_files = lab_project_files(settings, agi_port, secrets=secrets, agi_host="127.0.0.1")

    handle = lab_factory.start(
        project_files=project_files,
        ami_credentials=(settings.ami.username, secrets.ami_secret),
    )
    try:
        yield SoftphoneLab(handle, settings, secrets)
    finally:
        lab_factory.stop(handle)


def _contacts(lab: SoftphoneLab) -> str:
    return lab.handle.cli_command("pjsip show contacts")


def _originate(ami: Ami, timeout: float = 20, **headers: str) -> Message:
    """Async Originate; returns its OriginateResponse event."""
    action_id = f"softphone-{uuid.uuid4().hex[:8]}"
    reply = ami.action("Originate", ActionID=action_id, Async="true", **headers)
    assert get(reply, "Response") == "Success", reply
    return ami.wait_for(
        lambda m: (
            get(m, "Event") == "OriginateResponse" and get(m, "ActionID") == action_id
        ),
        timeout=timeout,
    )


def _peak_amplitude(path: Path) -> tuple[float, int]:
    """(seconds, peak absolute sample) of a 16-bit mono WAV file."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / wav.getframerate()
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    return seconds, max((abs(s) for s in samples), default=0)


def _recording(lab: SoftphoneLab, uniqueid: str, timeout: float = 5) -> Path:
    """The hotline's MixMonitor file of the call ``uniqueid``, once it is complete."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(lab.handle.recordings_dir.glob(f"*/{uniqueid}.wav"))
        if found and found[0].stat().st_size > 44:
            return found[0]
        if time.monotonic() >= deadline:
            listing = sorted(str(p) for p in lab.handle.recordings_dir.rglob("*"))
            raise AssertionError(f"no recording {uniqueid}.wav: {listing}")
        time.sleep(0.1)


# ------------------------------------------------------------------ without Asterisk


LOG = """\
----------------------------------------------- 2026-11-23 10:58:50.551234
UDP message received [120] bytes :

INVITE sip:agent1001@127.0.0.1:25070 SIP/2.0
Call-ID: abc
CSeq: 1 INVITE

v=0

----------------------------------------------- 2026-11-23 10:58:50.551401
UDP message sent (80 bytes):

SIP/2.0 200 OK
Call-ID: abc
CSeq: 1 INVITE

----------------------------------------------- 2026-11-23 10:58:51.000000
UDP message received [60] bytes :

BYE sip:agent1001@127.0.0.1:25070 SIP/2.0
Call-ID: abc
"""


def test_message_log_parser_reads_direction_start_line_and_headers() -> None:
    """parse_message_log splits a SIPp -trace_msg log into messages with direction,
    request method or response status and headers (SDP bodies are not headers)."""
    messages = parse_message_log(LOG)
    assert [(m.direction, m.method, m.status) for m in messages] == [
        ("received", "INVITE", None),
        ("sent", None, 200),
        ("received", "BYE", None),
    ]
    assert messages[0].header("call-id") == "abc"
    assert messages[0].header("v") is None
    assert messages[1].header("CSeq") == "1 INVITE"
    # A log cut in the middle of a message keeps the complete ones.
    assert len(parse_message_log(LOG[: LOG.index("SIP/2.0 200") + 3])) == 2


def test_free_udp_port_avoids_given_and_handed_out_ports() -> None:
    """free_udp_port never returns a port to avoid or one already handed out, and the
    port really is free to bind."""
    first = free_udp_port()
    second = free_udp_port(avoid={first + 2})
    try:
        assert first != second and second != first + 2
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", second))
    finally:
        release_udp_ports([first, second])


# ------------------------------------------------------------------ real lab


@pytest.mark.lab
def test_softphone_registers_and_is_listed_as_contact(
    softphone_lab: SoftphoneLab, softphones: Softphones
) -> None:
    """agent1001 registers with its generated secret (401 challenge, then 200 OK) and
    Asterisk lists the phone's contact; Expires 0 removes it again."""
    lab = softphone_lab
    phone = softphones(
        "1001", lab.sip_port, lab.secrets.sip_secret("1001"),
        avoid_ports=lab.instance_ports,
    )  # fmt: skip
    result = phone.register()
    assert result.ok and result.statuses[0] == 401 and result.statuses[-1] == 200
    contacts = _contacts(lab)
    assert f"agent1001/sip:agent1001@127.0.0.1:{phone.local_port}" in contacts, contacts

    assert phone.unregister().ok
    assert f"agent1001@127.0.0.1:{phone.local_port}" not in _contacts(lab)


@pytest.mark.lab
def test_wrong_password_is_refused_and_no_contact_is_added(
    softphone_lab: SoftphoneLab, softphones: Softphones
) -> None:
    """A REGISTER answering the challenge with a wrong password is refused (401/403, no
    200), register() raises by default, and Asterisk lists no contact for the agent."""
    lab = softphone_lab
    secret = lab.secrets.sip_secret("2101") + "-wrong"
    phone = softphones("2101", lab.sip_port, secret, avoid_ports=lab.instance_ports)
    result = phone.register(check=False, timeout=8)
    assert not result.ok
    assert 200 not in result.statuses
    assert result.statuses and set(result.statuses) <= {100, 401, 403}
    assert len(result.statuses) >= 2  # the challenge, then the refusal
    assert "agent2101/sip:" not in _contacts(lab)
    with pytest.raises(SoftphoneError, match="REGISTER failed"):
        phone.register(timeout=8)


@pytest.mark.lab
def test_originate_to_the_softphone_is_answered(
    softphone_lab: SoftphoneLab, softphones: Softphones
) -> None:
    """Originate PJSIP/agent1001 into Wait(3): the registered softphone gets the INVITE
    and answers with 200 OK + SDP (OriginateResponse Success), and Asterisk's BYE after
    the Wait ends the call cleanly on the phone."""
    lab = softphone_lab
    phone = softphones(
        "1001", lab.sip_port, lab.secrets.sip_secret("1001"),
        avoid_ports=lab.instance_ports,
    )  # fmt: skip
    phone.register()
    phone.answer_calls(count=1, pcap=G711A_PCAP, timeout=20)
    ami = lab.ami()
    try:
        response = _originate(
            ami,
            Channel="PJSIP/agent1001",
            Application="Wait",
            Data="3",
            Timeout="10000",
        )
    finally:
        ami.close()
    assert get(response, "Response") == "Success", response
    assert (get(response, "Channel") or "").startswith("PJSIP/agent1001-")

    seen = phone.wait_answered(timeout=15)
    assert seen.returncode == 0
    assert len(seen.invite_call_ids) == 1 and seen.answered >= 1
    assert seen.acks >= 1 and seen.byes_received >= 1 and seen.byes_sent == 0
    assert "sip:agent1001@127.0.0.1" in seen.invite(0).start_line


@pytest.mark.lab
def test_softphone_dtmf_reaches_asterisk(
    softphone_lab: SoftphoneLab, softphones: Softphones
) -> None:
    """RTP from sip-tester's RFC 2833 capture of "5", played by the answering softphone,
    is decoded by Asterisk as DTMF 5 received on the agent's channel (DTMFEnd event)."""
    lab = softphone_lab
    phone = softphones(
        "1001", lab.sip_port, lab.secrets.sip_secret("1001"),
        avoid_ports=lab.instance_ports,
    )  # fmt: skip
    phone.register()
    phone.answer_calls(count=1, pcap=dtmf_pcap("5"), timeout=20)
    ami = lab.ami()
    try:
        response = _originate(
            ami,
            Channel="PJSIP/agent1001",
            Application="Wait",
            Data="3",
            Timeout="10000",
        )
        assert get(response, "Response") == "Success", response
        channel = get(response, "Channel")
        dtmf = ami.wait_for(
            lambda m: get(m, "Event") == "DTMFEnd" and get(m, "Channel") == channel,
            timeout=10,
        )
    finally:
        ami.close()
    assert get(dtmf, "Digit") == "5" and get(dtmf, "Direction") == "Received", dtmf
    assert phone.wait_answered(timeout=10).returncode == 0


@pytest.mark.lab
def test_hotline_queue_call_reaches_the_softphone(
    softphone_lab: SoftphoneLab, softphones: Softphones
) -> None:
    """A 400 call (Local/400@from-pstn) is answered and recorded by the hotline dialplan,
    falls through the failed AGI to Queue(hotline), rings the logged-in agent's softphone
    PJSIP/agent1001 (INVITE answered) and AMI reports AgentConnect for that member; the
    phone hangs up after 2 s (AgentComplete, reason agent), and the call's recording
    holds the audio the softphone sent (not silence)."""
    lab = softphone_lab
    phone = softphones(
        "1001", lab.sip_port, lab.secrets.sip_secret("1001"),
        avoid_ports=lab.instance_ports,
    )  # fmt: skip
    phone.register()
    phone.answer_calls(count=1, hold_seconds=2, pcap=G711A_PCAP, timeout=25)
    ami = lab.ami()
    member = "PJSIP/agent1001"
    try:
        added = ami.action(
            "QueueAdd",
            Queue="hotline",
            Interface=member,
            StateInterface=member,
            MemberName="agent1001",
        )
        assert get(added, "Response") == "Success", added
        response = _originate(
            ami,
            Channel="Local/400@from-pstn/n",
            Application="Wait",
            Data="10",
            CallerID="Caller <13800000000>",
            Timeout="10000",
        )
        assert get(response, "Response") == "Success", response
        connect = ami.wait_for(
            lambda m: (
                get(m, "Event") == "AgentConnect" and get(m, "Queue") == "hotline"
            ),
            timeout=15,
        )
        assert get(connect, "Interface") == member, connect
        assert get(connect, "MemberName") == "agent1001"
        # The queued channel (the Local ;2 half running the hotline dialplan) names
        # the call's recording.
        caller_uniqueid = get(connect, "Uniqueid") or ""
        complete = ami.wait_for(
            lambda m: (
                get(m, "Event") == "AgentComplete" and get(m, "Interface") == member
            ),
            timeout=15,
        )
        assert get(complete, "Reason") == "agent", complete
    finally:
        try:
            ami.action("QueueRemove", Queue="hotline", Interface=member)
        finally:
            ami.close()

    seen = phone.wait_answered(timeout=10)
    assert seen.returncode == 0
    assert len(seen.invite_call_ids) == 1 and seen.answered >= 1
    assert seen.byes_sent >= 1 and seen.byes_received == 0
    seconds, peak = _peak_amplitude(_recording(lab, caller_uniqueid))
    assert seconds >= 1.5 and peak > 1000, (seconds, peak)
