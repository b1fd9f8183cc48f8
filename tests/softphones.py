"""Agents as real SIP softphones in tests, played by SIPp (Debian's ``sip-tester``).

A :class:`Softphone` is one agent's phone, ``PJSIP/agent<ID>`` on a lab Asterisk:

- :meth:`Softphone.register` runs ``tests/sipp/register.xml`` (REGISTER, the 401 digest
  challenge answered with the agent's secret, 200 OK) and returns what Asterisk answered;
- :meth:`Softphone.answer_calls` starts a second SIPp on the registered port (one SIPp
  cannot take the INVITE that follows a REGISTER: SIPp maps messages to calls by Call-ID)
  running ``tests/sipp/uas_answer.xml`` (the far end hangs up) or
  ``uas_answer_hangup.xml`` (the phone hangs up after ``hold_seconds``), optionally
  sending RTP from a pcap (G.711 a-law audio so MixMonitor records sound, or an RFC 2833
  DTMF digit);
- :meth:`Softphone.stop` ends every SIPp the phone started (by its pid); the pytest
  fixture ``softphones`` stops them all at teardown.

Every SIPp runs with ``-timeout`` and is killed by its pid when it outlives its bound.
What SIPp sent and received is read back from its ``-trace_msg`` log
(:func:`parse_message_log`), so tests assert on real SIP traffic.

Load as a plugin (``-p tests.softphones``) or import the fixture into a test module.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = [
    "DTMF_PCAP_DIR",
    "G711A_PCAP",
    "SCENARIOS",
    "AnswerResult",
    "RegisterResult",
    "SipMessage",
    "Softphone",
    "SoftphoneError",
    "Softphones",
    "dtmf_pcap",
    "free_udp_port",
    "parse_message_log",
    "release_udp_ports",
    "softphones",
]

SCENARIOS = Path(__file__).resolve().parent / "sipp"
DTMF_PCAP_DIR = Path("/usr/share/sip-tester")
#: 236 packets (about 4.7 s) of G.711 a-law speech, sent to the port in Asterisk's SDP.
G711A_PCAP = DTMF_PCAP_DIR / "g711a.pcap"
LOOPBACK = "127.0.0.1"
_MEDIA_MARKER = "<!-- MEDIA:"

_claimed: set[int] = set()
_claimed_lock = threading.Lock()


class SoftphoneError(RuntimeError):
    """SIPp is missing, a scenario failed, or a softphone step did not finish in time."""


def dtmf_pcap(digit: str) -> Path:
    """The RFC 2833 capture of one DTMF digit shipped by sip-tester (``0-9``, ``*``, ``#``)."""
    names = {"*": "star", "#": "pound", **{d: d for d in "0123456789"}}
    if digit not in names:
        raise ValueError(f"no RFC 2833 capture for DTMF digit {digit!r}")
    return DTMF_PCAP_DIR / f"dtmf_2833_{names[digit]}.pcap"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _udp_free(port: int) -> bool:
    for address in (LOOPBACK, "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def free_udp_port(avoid: Iterable[int] = (), span: int = 1) -> int:
    """A free loopback UDP port (``span`` consecutive ones, the first even) in 20000-29999.

    Outside the kernel's ephemeral range (like the lab's own ports) and never one of
    ``avoid`` (e.g. the instance's SIP and RTP ports) or one this process already
    handed out; released with :func:`release_udp_ports`.
    """
    low, high = _ephemeral_range()
    taken = set(avoid)
    rng = random.Random()
    with _claimed_lock:
        for _ in range(2000):
            start = rng.randrange(20000, 30000 - span) & ~1
            block = range(start, start + span)
            if any(p in taken or p in _claimed or low <= p <= high for p in block):
                continue
            if all(_udp_free(p) for p in block):
                _claimed.update(block)
                return start
    raise SoftphoneError("no free loopback UDP port for a softphone in 20000-29999")


def release_udp_ports(ports: Iterable[int]) -> None:
    """Forget ports handed out by :func:`free_udp_port`."""
    with _claimed_lock:
        _claimed.difference_update(ports)


# ------------------------------------------------------------------ message log


@dataclass(frozen=True)
class SipMessage:
    """One SIP message from a SIPp ``-trace_msg`` log."""

    direction: str  # "received" or "sent"
    start_line: str
    headers: tuple[tuple[str, str], ...]

    @property
    def method(self) -> str | None:
        """The request method (``INVITE``), or None for a response."""
        return (
            None
            if self.start_line.startswith("SIP/2.0")
            else self.start_line.split()[0]
        )

    @property
    def status(self) -> int | None:
        """The response status code (``200``), or None for a request."""
        if not self.start_line.startswith("SIP/2.0 "):
            return None
        return int(self.start_line.split()[1])

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


_BLOCK = re.compile(
    r"^\w+ message (received|sent) (?:\[\d+\] bytes|\(\d+ bytes\)) ?:\s*$", re.MULTILINE
)


def parse_message_log(text: str) -> list[SipMessage]:
    """The SIP messages of a SIPp ``-trace_msg`` log, in order.

    Each message follows a line ``UDP message received [N] bytes :`` or ``UDP message
    sent (N bytes):``; a log cut off in the middle of a message (SIPp still writing)
    keeps what is complete up to there.
    """
    marks = list(_BLOCK.finditer(text))
    messages: list[SipMessage] = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end() : end]
        lines = [line.rstrip("\r") for line in body.strip("\r\n").split("\n")]
        lines = [line for line in lines if not line.startswith("-" * 20)]
        if not lines or not lines[0].strip():
            continue
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line.strip():
                break
            name, sep, value = line.partition(":")
            if sep:
                headers.append((name.strip(), value.strip()))
        messages.append(SipMessage(mark.group(1), lines[0].strip(), tuple(headers)))
    return messages


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class RegisterResult:
    """What a REGISTER run got: SIPp's exit code and every response status received."""

    returncode: int
    statuses: tuple[int, ...]
    messages: tuple[SipMessage, ...] = field(repr=False)

    @property
    def ok(self) -> bool:
        """The authenticated REGISTER got 200 OK and SIPp reported success."""
        return self.returncode == 0 and bool(self.statuses) and self.statuses[-1] == 200


@dataclass(frozen=True)
class AnswerResult:
    """What the answering SIPp saw: INVITEs in, 200 OKs with SDP out, BYEs each way."""

    returncode: int | None
    messages: tuple[SipMessage, ...] = field(repr=False)

    def _count(
        self, direction: str, method: str | None, status: int | None = None
    ) -> int:
        return sum(
            1
            for m in self.messages
            if m.direction == direction
            and (method is None or m.method == method)
            and (status is None or m.status == status)
        )

    @property
    def invites(self) -> int:
        """INVITEs received (retransmissions included)."""
        return self._count("received", "INVITE")

    @property
    def invite_call_ids(self) -> set[str]:
        """Distinct calls offered to the phone."""
        return {
            m.header("Call-ID") or ""
            for m in self.messages
            if m.direction == "received" and m.method == "INVITE"
        }

    @property
    def answered(self) -> int:
        """200 OK answers to INVITEs sent (answers to BYE not counted)."""
        return sum(
            1
            for m in self.messages
            if m.direction == "sent"
            and m.status == 200
            and (m.header("CSeq") or "").endswith("INVITE")
        )

    @property
    def acks(self) -> int:
        return self._count("received", "ACK")

    @property
    def byes_received(self) -> int:
        return self._count("received", "BYE")

    @property
    def byes_sent(self) -> int:
        return self._count("sent", "BYE")

    def invite(self, index: int = 0) -> SipMessage:
        """The ``index``-th INVITE received."""
        invites = [
            m
            for m in self.messages
            if m.direction == "received" and m.method == "INVITE"
        ]
        return invites[index]


# ------------------------------------------------------------------ softphone


def _sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SoftphoneError("sipp not found: install Debian's sip-tester package")
    return path


class Softphone:
    """One agent's SIP phone (``PJSIP/agent<ID>``) on a lab Asterisk, played by SIPp."""

    _counter = itertools.count(1)

    def __init__(
        self,
        agent_id: str,
        sip_port: int,
        secret: str,
        local_port: int | None = None,
        *,
        workdir: Path | None = None,
        asterisk_host: str = LOOPBACK,
        avoid_ports: Iterable[int] = (),
    ) -> None:
        self.agent_id = agent_id
        self.username = f"agent{agent_id}"
        self.sip_port = sip_port
        self.asterisk_host = asterisk_host
        self._secret = secret
        avoid = {sip_port, *avoid_ports}
        self._ports: list[int] = []
        if local_port is None:
            local_port = free_udp_port(avoid)
            self._ports.append(local_port)
        self.local_port = local_port
        avoid.add(local_port)
        # SIPp binds the media port and the next ones (RTP, RTCP, video): keep 4 free.
        self.media_port = free_udp_port(avoid, span=4)
        self._ports.extend(range(self.media_port, self.media_port + 4))
        # Without ``workdir`` the phone's logs go to a temporary directory removed by
        # stop(); under a test's tmp_path they stay for a failure's post-mortem.
        self._own_workdir = workdir is None
        base = (
            Path(tempfile.mkdtemp(prefix="softphone-")) if workdir is None else workdir
        )
        self.workdir = base / f"{self.username}-{next(self._counter)}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._processes: list[subprocess.Popen[bytes]] = []
        self._uas: subprocess.Popen[bytes] | None = None
        self._uas_log: Path | None = None

    def __repr__(self) -> str:
        return f"Softphone({self.username} on {LOOPBACK}:{self.local_port})"

    # -------------------------------------------------------------- processes

    def _start(
        self, name: str, args: list[str], bound: float
    ) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{name}.messages.log"
        log.unlink(missing_ok=True)
        command = [
            _sipp(),
            f"{self.asterisk_host}:{self.sip_port}",
            "-i", LOOPBACK,
            "-p", str(self.local_port),
            "-mi", LOOPBACK,
            "-mp", str(self.media_port),
            "-s", self.username,
            "-nostdin",
            "-trace_msg", "-message_file", str(log),
            "-trace_err", "-error_file", str(self.workdir / f"{name}.errors.log"),
            "-timeout", f"{max(1, int(bound + 0.999))}s",
            *args,
        ]  # fmt: skip
        with open(self.workdir / f"{name}.out", "wb") as out:
            process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._processes.append(process)
        return process, log

    def _end(self, process: subprocess.Popen[bytes], grace: float = 2.0) -> int:
        """Stop ``process`` (our own SIPp, by its pid) and reap it."""
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(5)
        if process in self._processes:
            self._processes.remove(process)
        return process.returncode

    def _errors(self, name: str) -> str:
        texts = []
        for suffix in (".out", ".errors.log"):
            path = self.workdir / f"{name}{suffix}"
            if path.exists():
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts)

    # -------------------------------------------------------------- registration

    def register(
        self, expires: int = 300, timeout: float = 10.0, check: bool = True
    ) -> RegisterResult:
        """REGISTER with the agent's secret; wait for the outcome (at most ``timeout`` s).

        With ``check`` (the default) anything but 200 OK raises SoftphoneError carrying
        SIPp's messages; ``check=False`` returns the result (e.g. to assert a refusal).
        ``expires=0`` removes the phone's contact.
        """
        if self._uas is not None and self._uas.poll() is None:
            raise SoftphoneError(
                f"{self}: register while answering calls on the same port"
            )
        process, log = self._start(
            "register",
            [
                "-sf", str(SCENARIOS / "register.xml"),
                "-au", self.username,
                "-ap", self._secret,
                "-key", "expires", str(expires),
                "-m", "1",
                "-timeout_error",
            ],
            timeout,
        )  # fmt: skip
        try:
            returncode = process.wait(timeout + 5)
        except subprocess.TimeoutExpired:
            returncode = self._end(process)
        else:
            self._end(process)
        messages = tuple(
            parse_message_log(log.read_text(errors="replace")) if log.exists() else ()
        )
        result = RegisterResult(
            returncode,
            tuple(m.status for m in messages if m.direction == "received" and m.status),
            messages,
        )
        if check and not result.ok:
            raise SoftphoneError(
                f"{self}: REGISTER failed (sipp exit {returncode}, responses "
                f"{list(result.statuses)}):\n{self._errors('register')}"
            )
        return result

    def unregister(self, timeout: float = 10.0) -> RegisterResult:
        """REGISTER with ``Expires: 0``: Asterisk drops the phone's contact."""
        return self.register(expires=0, timeout=timeout)

    # -------------------------------------------------------------- answering

    def answer_calls(
        self,
        count: int = 1,
        hold_seconds: float | None = None,
        pcap: Path | None = None,
        timeout: float = 30.0,
        refer_to: str | None = None,
    ) -> None:
        """Start answering the next ``count`` calls in the background (180, 200 OK + SDP).

        With ``hold_seconds`` the phone hangs up (BYE) that long after the ACK; without,
        it waits for the far end's BYE. ``pcap`` (e.g. :data:`G711A_PCAP` or
        ``dtmf_pcap("5")``) is played as RTP to Asterisk after each ACK. The SIPp ends
        after ``count`` calls or ``timeout`` seconds; read what it saw with
        :meth:`answered` or :meth:`wait_answered`. ``refer_to`` (with ``hold_seconds``): instead
        of hanging up, the phone's transfer key: a blind-transfer REFER to that number.
        """
        if self._uas is not None and self._uas.poll() is None:
            raise SoftphoneError(f"{self}: already answering calls")
        name = "uas_answer" if hold_seconds is None else "uas_answer_hangup"
        if refer_to is not None:
            if hold_seconds is None:
                raise SoftphoneError(f"{self}: a transfer needs hold_seconds (when to press the key)")
            name = "uas_answer_refer"
        text = (SCENARIOS / f"{name}.xml").read_text()
        if pcap is not None:
            if not pcap.is_file():
                raise SoftphoneError(f"{self}: no pcap file {pcap}")
            if _MEDIA_MARKER not in text:
                raise SoftphoneError(
                    f"{SCENARIOS / name}.xml: no {_MEDIA_MARKER} marker"
                )
            play = f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n  '
            text = text.replace(_MEDIA_MARKER, play + _MEDIA_MARKER, 1)
        scenario = self.workdir / f"{name}.xml"
        scenario.write_text(text)
        args = ["-sf", str(scenario), "-m", str(count)]
        if hold_seconds is not None:
            args += ["-d", str(int(hold_seconds * 1000))]
        if refer_to is not None:
            args += ["-key", "refer_to", refer_to]
        self._uas, self._uas_log = self._start("uas", args, timeout)
        # SIPp binds its port at once; give it a moment so the first INVITE finds it.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and _udp_free(self.local_port):
            if self._uas.poll() is not None:
                raise SoftphoneError(
                    f"{self}: answering SIPp exited:\n{self._errors('uas')}"
                )
            time.sleep(0.02)

    def answered(self) -> AnswerResult:
        """What the answering SIPp has seen so far (it may still be running)."""
        if self._uas is None or self._uas_log is None:
            raise SoftphoneError(f"{self}: answer_calls() was not started")
        text = (
            self._uas_log.read_text(errors="replace") if self._uas_log.exists() else ""
        )
        return AnswerResult(self._uas.poll(), tuple(parse_message_log(text)))

    def wait_for_invite(self, timeout: float = 10.0, count: int = 1) -> AnswerResult:
        """Wait until ``count`` distinct calls were offered (INVITE) and answered (200 OK)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.answered()
            if len(result.invite_call_ids) >= count and result.answered >= count:
                return result
            if time.monotonic() >= deadline or result.returncode is not None:
                raise SoftphoneError(
                    f"{self}: {len(result.invite_call_ids)} INVITE(s), {result.answered} "
                    f"answered, sipp exit {result.returncode}, within {timeout} s:\n"
                    f"{[m.start_line for m in result.messages]}\n{self._errors('uas')}"
                )
            time.sleep(0.05)

    def wait_answered(self, timeout: float = 30.0) -> AnswerResult:
        """Wait for the answering SIPp to finish its calls (killed after ``timeout`` s)."""
        if self._uas is None:
            raise SoftphoneError(f"{self}: answer_calls() was not started")
        try:
            self._uas.wait(timeout)
        except subprocess.TimeoutExpired:
            self._end(self._uas)
        return self.answered()

    # -------------------------------------------------------------- teardown

    def stop(self) -> None:
        """End every SIPp this phone started (by pid) and free its ports."""
        for process in list(self._processes):
            self._end(process)
        release_udp_ports(self._ports)
        self._ports = []
        if self._own_workdir:
            shutil.rmtree(self.workdir.parent, ignore_errors=True)


class Softphones:
    """Makes softphones for one test and stops them all at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._phones: list[Softphone] = []

    def __call__(
        self,
        agent_id: str,
        sip_port: int,
        secret: str,
        local_port: int | None = None,
        *,
        avoid_ports: Iterable[int] = (),
    ) -> Softphone:
        phone = Softphone(
            agent_id,
            sip_port,
            secret,
            local_port,
            workdir=self.workdir,
            avoid_ports=avoid_ports,
        )
        self._phones.append(phone)
        return phone

    def stop_all(self) -> None:
        for phone in self._phones:
            phone.stop()
        self._phones = []


@pytest.fixture
def softphones(tmp_path: Path) -> Iterator[Softphones]:
    """A softphone factory: ``softphones("1001", sip_port, secret)``; all stopped at teardown.

    Skips the test when ``sipp`` is not installed (fails with ``CI=true``).
    """
    if shutil.which("sipp") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("sipp (sip-tester) is not installed", pytrace=False)
        pytest.skip("sipp (sip-tester) is not installed")
    phones = Softphones(tmp_path / "softphones")
    try:
        yield phones
    finally:
        phones.stop_all()
