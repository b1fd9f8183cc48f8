"""Rendered IVR prompts play on the real Asterisk 22 as ``custom/<flow>/<prompt>-<lang>``.

Renders a Mandarin prompt with espeak-ng + sox, puts it where the lab Asterisk looks for
``custom/...`` sounds (Debian's ``<astdatadir>/sounds/custom``, inside the root file
system for the chroot runtime) and checks ``PLAYBACKSTATUS`` over AMI.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callcenter.prompts import build_prompts
from tests.labfixture import LabFactory, LabHandle, need_prompt_tools

pytestmark = pytest.mark.lab

Message = list[tuple[str, str]]

# Unique per test session: several sessions share one root file system (and its sounds).
FLOW = f"labtest{os.getpid()}"

EXTENSIONS = f"""\
[general]
static = yes
writeprotect = yes

[test-context]
exten => play,1,Answer()
 same => n,Playback(custom/{FLOW}/hello-zh)
 same => n,Set(PROMPT_PLAYED=${{PLAYBACKSTATUS}})
 same => n,Hangup()

exten => missing,1,Answer()
 same => n,Playback(custom/{FLOW}/absent-zh)
 same => n,Set(PROMPT_MISSING=${{PLAYBACKSTATUS}})
 same => n,Hangup()
"""


def get(message: Message, key: str) -> str | None:
    for name, value in message:
        if name.lower() == key.lower():
            return value
    return None


class Ami:
    """A tiny blocking AMI session over a raw socket (test side only)."""

    def __init__(self, handle: LabHandle) -> None:
        self.sock = socket.create_connection((handle.ami_host, handle.ami_port), timeout=10)
        self.buffer = b""
        self.counter = 0
        self._recv_until(b"\r\n")
        self.buffer = self.buffer.split(b"\r\n", 1)[1]  # the greeting line
        reply = self.action("Login", Username=handle.ami_username, Secret=handle.ami_secret)
        assert get(reply, "Response") == "Success", reply

    def _recv_until(self, marker: bytes) -> None:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("AMI connection closed")
            self.buffer += data

    def read(self) -> Message:
        self._recv_until(b"\r\n\r\n")
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        return [(n, v) for n, _, v in (line.partition(": ") for line in raw.decode().split("\r\n"))]

    def send(self, action: str, **headers: str) -> str:
        self.counter += 1
        action_id = f"prompts-{self.counter}"
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def wait_for(self, match: Callable[[Message], bool], timeout: float = 20) -> Message:
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
            lambda m: get(m, "ActionID") == action_id and get(m, "Response") is not None)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def lab_with_prompt(lab_factory: LabFactory, tmp_path: Path) -> Iterator[LabHandle]:
    """A lab instance whose Asterisk finds custom/FLOW/hello-zh, rendered from text."""
    need_prompt_tools()
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "test.yaml").write_text(
        f"flow: {FLOW}\nprompts:\n  hello:\n    zh: 您好，欢迎致电\n", encoding="utf-8")
    report = build_prompts(flows, tmp_path / "sounds")
    assert [s.prompt.playback_name for s in report.rendered if not s.prompt.asterisk_sound] == [
        f"custom/{FLOW}/hello-zh"]

    handle = lab_factory.start(extensions=EXTENSIONS)
    # Debian's sounds/custom, a link to /usr/local/share/asterisk/sounds (inside the root)
    instance = handle.instance
    target = instance.runtime.host_path(f"{instance.directories.data}/sounds/custom") / FLOW
    try:
        shutil.copytree(tmp_path / "sounds" / "custom" / FLOW, target)
        yield handle
    finally:
        shutil.rmtree(target, ignore_errors=True)
        lab_factory.stop(handle)


def play(ami: Ami, extension: str, variable: str) -> str:
    """Originate a Local call into ``extension``; the PLAYBACKSTATUS it stored."""
    ami.send("Originate", Channel=f"Local/{extension}@test-context", Application="Wait",
             Data="20", Async="true")
    event = ami.wait_for(lambda m: get(m, "Event") == "VarSet" and get(m, "Variable") == variable)
    return get(event, "Value") or ""


def test_rendered_prompt_plays_with_success(lab_with_prompt: LabHandle) -> None:
    """A prompt rendered by espeak-ng + sox is a file Asterisk really plays
    (PLAYBACKSTATUS=SUCCESS), while a prompt never rendered fails: the check can fail."""
    ami = Ami(lab_with_prompt)
    try:
        assert play(ami, "play", "PROMPT_PLAYED") == "SUCCESS"
        assert play(ami, "missing", "PROMPT_MISSING") == "FAILED"
    finally:
        ami.close()
    # Asterisk's logger writes from its own thread: the line may land after the AMI event
    expected = (f"Playing 'custom/{FLOW}/hello-zh.", f"File custom/{FLOW}/absent-zh does not exist")
    deadline = time.monotonic() + 10
    log = lab_with_prompt.instance.messages_log.read_text(errors="replace")
    while not all(line in log for line in expected) and time.monotonic() < deadline:
        time.sleep(0.2)
        log = lab_with_prompt.instance.messages_log.read_text(errors="replace")
    assert all(line in log for line in expected), [line for line in expected if line not in log]
    assert f"File custom/{FLOW}/hello-zh does not exist" not in log
