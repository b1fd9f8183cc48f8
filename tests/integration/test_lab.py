"""The lab on the real Asterisk 22: boot, AMI, several instances, kill/restart, cleanup.

Run with ``-p tests.labfixture``; needs root (chroot runtime) or
``CALLCENTER_LAB_RUNTIME=host``.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from callcenter.lab.asterisk_base import DEBIAN_INSTALLATION, Installation
from callcenter.lab.instance import (
    ChrootRuntime,
    HostRuntime,
    LabInstance,
    LabPorts,
)
from callcenter.lab.rootfs import LabError, is_mounted, processes_rooted_in
from tests.labfixture import LabFactory, LabHandle

pytestmark = pytest.mark.lab

Message = list[tuple[str, str]]

EXTENSIONS = """\
[general]
static = yes
writeprotect = yes

[test-context]
exten => s,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()

exten => rec,1,Answer()
 same => n,MixMonitor(lab-${UNIQUEID}.wav)
 same => n,Playback(beep)
 same => n,Wait(0.5)
 same => n,Hangup()
"""


@pytest.fixture
def lab_extensions() -> str:
    return EXTENSIONS


def get(message: Message, key: str) -> str | None:
    for name, value in message:
        if name.lower() == key.lower():
            return value
    return None


class Ami:
    """A tiny blocking AMI session over a raw socket (test side only)."""

    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buffer = b""
        self.greeting = self._read_line()
        self.counter = 0
        reply = self.action("Login", Username=username, Secret=secret)
        assert get(reply, "Response") == "Success", reply

    def _read_line(self) -> str:
        while b"\r\n" not in self.buffer:
            self.buffer += self._recv()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("AMI connection closed")
        return data

    def read(self) -> Message:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        pairs = []
        for line in raw.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            pairs.append((name, value))
        return pairs

    def send(self, action: str, **headers: str) -> str:
        self.counter += 1
        action_id = headers.pop("ActionID", f"lab-test-{self.counter}")
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def wait_for(
        self, match: Callable[[Message], bool], timeout: float = 15
    ) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            message = self.read()
            if match(message):
                return message
        raise TimeoutError("no matching AMI message")

    def action(self, action: str, **headers: str) -> Message:
        action_id = self.send(action, **headers)
        return self.wait_for(
            lambda m: get(m, "ActionID") == action_id and get(m, "Response") is not None
        )

    def close(self) -> None:
        self.sock.close()


def ami_for(handle: LabHandle) -> Ami:
    return Ami(handle.ami_host, handle.ami_port, handle.ami_username, handle.ami_secret)


def asterisk_version(handle: LabHandle) -> str:
    ami = ami_for(handle)
    try:
        return get(ami.action("CoreSettings"), "AsteriskVersion") or ""
    finally:
        ami.close()


def test_core_settings_report_asterisk_22(lab: LabHandle) -> None:
    """A lab instance boots a real Asterisk 22 that answers AMI on its own port."""
    ami = ami_for(lab)
    try:
        assert ami.greeting.startswith("Asterisk Call Manager/")
        settings = ami.action("CoreSettings")
        assert get(settings, "Response") == "Success"
        assert (get(settings, "AsteriskVersion") or "").startswith("22.")
    finally:
        ami.close()


def test_async_originate_answers_with_the_same_action_id(lab: LabHandle) -> None:
    """Originate (Async) of a Local channel ends in OriginateResponse Success carrying
    the ActionID we sent: the contract the engine's dialer relies on."""
    ami = ami_for(lab)
    try:
        action_id = ami.send(
            "Originate",
            ActionID="lab-originate-1",
            Channel="Local/s@test-context",
            Application="Wait",
            Data="1",
            Async="true",
        )
        queued = ami.wait_for(
            lambda m: get(m, "ActionID") == action_id and get(m, "Response") is not None
        )
        assert get(queued, "Response") == "Success"
        result = ami.wait_for(lambda m: get(m, "Event") == "OriginateResponse")
        assert get(result, "ActionID") == "lab-originate-1"
        assert get(result, "Response") == "Success"
    finally:
        ami.close()


def test_cli_command_reaches_the_instance(lab: LabHandle) -> None:
    """cli_command runs `asterisk -rx` on this instance's control socket (used by tests
    to set device states)."""
    assert "Asterisk 22" in lab.cli_command("core show version")
    lab.cli_command("devstate change Custom:labagent1 INUSE")
    states = lab.cli_command("devstate list")
    assert "Custom:labagent1" in states
    assert "InUse" in states or "INUSE" in states


def test_prometheus_metrics_on_the_instance_http_port(lab: LabHandle) -> None:
    """http.conf and prometheus.conf give each instance its own /metrics endpoint."""
    url = f"http://127.0.0.1:{lab.ports.http}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    assert response.status == 200
    assert "asterisk_core_uptime_seconds" in body


def test_mixmonitor_files_land_in_the_host_recordings_dir(
    lab: LabHandle,
) -> None:
    """A relative MixMonitor file name ends up in the host directory the instance was
    given (bind mount for the chroot runtime)."""
    ami = ami_for(lab)
    try:
        ami.send(
            "Originate",
            Channel="Local/rec@test-context",
            Application="Wait",
            Data="3",
            Async="true",
        )
        ami.wait_for(lambda m: get(m, "Event") == "OriginateResponse")
    finally:
        ami.close()
    deadline = time.monotonic() + 15
    found: list[Path] = []
    while time.monotonic() < deadline and not found:
        found = [
            p for p in lab.recordings_dir.glob("lab-*.wav") if p.stat().st_size > 44
        ]
        time.sleep(0.2)
    assert found, f"no recording in {lab.recordings_dir}"


def test_two_instances_run_side_by_side(lab_factory: LabFactory) -> None:
    """Two instances of one root run at once on different ports; stopping one leaves
    the other (and the shared /proc mount) working."""
    first = lab_factory.start()
    second = lab_factory.start()
    try:
        assert first.ports.all_ports().isdisjoint(second.ports.all_ports())
        assert asterisk_version(first).startswith("22.")
        assert asterisk_version(second).startswith("22.")
        lab_factory.stop(first)
        assert asterisk_version(second).startswith("22.")
    finally:
        lab_factory.stop(second)
        lab_factory.stop(first)


def test_kill_then_restart_on_the_same_ports(lab_factory: LabFactory) -> None:
    """kill() is a crash (AMI refuses connections, status not running); restart() brings
    Asterisk back on the very same ports, as the engine's reconnect tests expect."""
    handle = lab_factory.start()
    try:
        ports = handle.ports
        handle.instance.kill()
        status = handle.instance.status()
        assert not status.running
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", ports.ami), timeout=2).close()
        handle.instance.restart()
        assert handle.instance.ports == ports
        assert handle.instance.status().running
        assert asterisk_version(handle).startswith("22.")
    finally:
        lab_factory.stop(handle)


def test_stop_leaves_no_process_and_no_mounts(lab_factory: LabFactory) -> None:
    """stop() ends the process by pid, removes the recordings bind mount, and /proc is
    mounted in the root only while some process still runs there."""
    handle = lab_factory.start()
    instance = handle.instance
    pid = instance.pid()
    assert pid is not None
    instance.stop()
    try:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
        assert instance.pid() is None
        assert not instance.pid_file.exists()
        assert not is_mounted(instance.monitor_dir)
        if isinstance(instance.runtime, ChrootRuntime):
            root = instance.runtime.root
            assert is_mounted(root / "proc") == bool(processes_rooted_in(root))
    finally:
        lab_factory.stop(handle)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_failed_boot_reports_the_asterisk_log(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """When Asterisk refuses to boot, start() raises with the tail of its log (the
    reason is right there) and leaves nothing running."""
    instance = LabInstance(
        lab_factory.new_name(), tmp_path, lab_factory.runtime, LabPorts.allocate()
    )
    broken = "[modules]\nautoload = yes\nrequire = no_such_module.so\n"
    instance.write_config({"modules.conf": broken})
    try:
        with pytest.raises(LabError) as failure:
            instance.start(timeout=30)
        assert "did not boot" in str(failure.value)
        assert "no_such_module" in str(failure.value)
        assert instance.pid() is None
    finally:
        instance.stop()
        instance.remove()
        instance.ports.release()


def test_host_runtime_runs_an_asterisk_outside_the_root(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """The host runtime (asterisk -C with host paths, no chroot, no mounts) boots an
    instance. Emulated with the root's own binary started through the root's dynamic
    loader, as if Asterisk were installed on the host."""
    runtime = lab_factory.runtime
    if isinstance(runtime, HostRuntime):
        host = runtime
    else:
        assert isinstance(runtime, ChrootRuntime)
        root = runtime.root
        loader = root / "usr/lib64/ld-linux-x86-64.so.2"
        if not loader.exists():
            pytest.skip("host-runtime emulation needs an amd64 root")
        wrapper = tmp_path / "bin" / "asterisk"
        wrapper.parent.mkdir()
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec {loader} --library-path {root}/usr/lib/x86_64-linux-gnu "
            f'{root}/usr/sbin/asterisk "$@"\n'
        )
        wrapper.chmod(0o755)
        inside = DEBIAN_INSTALLATION
        host = HostRuntime(
            wrapper,
            Installation(
                modules=f"{root}{inside.modules}",
                data=f"{root}{inside.data}",
                agi=f"{root}{inside.agi}",
                sbin=str(wrapper.parent),
            ),
        )
    instance = LabInstance(
        lab_factory.new_name(), tmp_path / "inst", host, LabPorts.allocate()
    )
    instance.write_config({})
    try:
        instance.start(timeout=60)
        assert instance.home == tmp_path / "inst" / instance.name / "home"
        assert "Asterisk 22" in instance.cli_command("core show version")
        assert instance.monitor_dir.is_symlink()
        assert instance.endpoints.recordings_dir == str(instance.recordings_dir)
    finally:
        instance.stop()
        instance.ports.release()
    assert instance.pid() is None
    assert not os.path.exists(instance.pid_file)
