"""The daemon and the demo as a user runs them, against the real lab Asterisk.

These run the ``callcenter`` command in a subprocess, exactly as ``make demo`` and an
operator do: the lab instance, the engine's services, real calls, the database rows and
recording files they leave, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.labfixture import lab_unavailable

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _callcenter(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``callcenter ARGS``. Past ``timeout`` the command gets SIGTERM, as an operator's Ctrl-C,
    so it stops what it started (the demo its lab Asterisk) instead of being killed and leaving it
    running for the next test; the test then fails with everything the command printed."""
    command = [sys.executable, "-m", "callcenter.cli", *args]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            try:
                out, err = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
            raise AssertionError(f"callcenter {' '.join(args)} still running after {timeout:.0f} s; "
                                 f"it printed:\n{out}{err}") from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _web_password(site: Path, person: str) -> str:
    """``callcenter web password PERSON``: the new password it prints once."""
    made = _callcenter("--config", str(site), "web", "password", person, timeout=30)
    assert made.returncode == 0, made.stdout + made.stderr
    return made.stdout.splitlines()[0].rsplit(": ", 1)[1]


def _open(url: str, as_: tuple[str, str] | None, data: bytes | None = None, method: str | None = None,
          headers: dict[str, str] | None = None) -> Any:
    """``urlopen`` as a browser signed in as ``as_`` (id, web password; HTTP Basic)."""
    headers = dict(headers or {})
    if as_ is not None:
        headers["authorization"] = "Basic " + base64.b64encode(f"{as_[0]}:{as_[1]}".encode()).decode()
    return urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=10)


def _needs_root() -> None:
    if os.geteuid() != 0 and os.environ.get("CALLCENTER_LAB_RUNTIME") != "host":
        lab_unavailable("the chroot lab needs root")


def test_demo_places_real_calls_that_become_call_records_with_recordings(tmp_path: Path) -> None:
    """``callcenter demo``: hotline calls walk the IVR by DTMF, reach agents, rate the call in the survey,
    and each ends as a call record (IVR choices, CSAT) with a non-empty recording; then a campaign
    dials every lead, and its conversations pop the lead on the agent's desk."""
    _needs_root()
    state = tmp_path / "site.yaml"
    state.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\n")
    # The demo takes 3-4 minutes; its own limits (90 s for the hotline calls, 90 s for the faxes,
    # 240 s for the campaign) end it with a FAILED line well before this one stops it.
    result = _callcenter("--config", str(state), "demo", "--calls", "3", timeout=540)
    out = result.stdout + result.stderr
    if "lab Asterisk booting" not in out and result.returncode != 0:
        lab_unavailable(out[-2000:])
    assert result.returncode == 0, out
    assert "3/3 originates answered" in out
    assert "demo complete" in out
    rows = [line for line in out.splitlines() if line.startswith("GD")]
    assert len(rows) == 3, out
    for row in rows:
        assert row.split()[-1] == "B" and int(row.split()[-2]) > 44, row  # more than a WAV header
        assert "language=1 main_menu=0" in row, row  # the caller's DTMF choices in the IVR
        assert " 5  language=1" in row, row  # the CSAT digit pressed in the post-call survey
    assert any("Zhang Wei" in row for row in rows), "the known caller was looked up in the CRM"
    assert "CRM: known customer Zhang Wei (13800138000), VIP, added as customer 1 (POST /api/customers)" in out, out
    assert "CRM (GET /api/customers/1): Zhang Wei's calls today: GD" in out, out
    pops = [line for line in out.splitlines() if "screen pop on agent" in line and ", IVR " in line]
    assert len(pops) == 3, out  # the call record exists while the agent's phone rings
    assert any("Zhang Wei 13800138000, IVR language=1 main_menu=0" in line for line in pops), pops
    # the wallboard: callers seen waiting, then the day's counts over the HTTP API
    assert "caller(s) waiting in the hotline queue" in out, out
    assert "wallboard (GET /api/queues) hotline today: offered 3, answered 3, abandoned 0" in out, out
    # the agent's disposition over the HTTP API, on the first record
    assert ("during the call (POST /api/call-records/<ticket>/disposition): outcome resolved, issue billing, "
            "notes 'asked about") in out, out
    assert "keeps the agent's disposition: outcome resolved, issue billing" in out, out
    # then consults agent 2108 and hands the caller over: one record, the last agent, the hop
    assert "consults agent 2108 about GD" in out and "2108's phone rings with the same ticket" in out, out
    assert "hands the caller over (POST /api/agents/" in out and "2108 has the caller" in out, out
    handed = next(line for line in out.splitlines() if "is one record: the last agent 2108, handed on " in line)
    assert " to agent 2108 at 0:" in handed and "in hotline, rated 5" in handed, handed
    # QA: a manager's sample of today's recorded calls, one scored over the HTTP API
    qa = next(line for line in out.splitlines() if "QA: manager 9001 is offered" in line)
    assert "recorded call(s) today (GET /api/qa/sample)" in qa and ": 97.5 of 100" in qa, qa
    # fax: one received on the fax number, one sent to a fax machine, both filed
    assert "fax inbound from 02098765432: SUCCESS, 1 page(s)" in out, out
    assert "fax outbound to 19900070001: SUCCESS, 1 page(s)" in out, out
    # then the campaign: 40 leads dialed on the simulated network, conversations popped with the lead
    assert "40 leads imported" in out
    assert "IT (manager 9001) hands 40 leads to team1" in out
    assert "'s page (GET /agent/" in out and "shows the screen pop of GD" in out, out
    assert "without signing in, the same page answers HTTP 401" in out, out
    assert "the manager's page plays the recording of GD" in out, out
    assert "team lead 8001 shares them: 2103 10, 2104 10, 2105 10, 2106 10;" in out
    campaign_pops = [line for line in out.splitlines() if "screen pop on agent" in line and "campaign demo-campaign" in line]
    assert campaign_pops, out
    assert "'new'" not in next(line for line in out.splitlines() if "  leads: {" in line)  # every lead dialed
    assert "abandon ledger today:" in out
    # a customer reached asks not to be called again: the disposition puts the number on the DNC list
    dnc = next(line for line in out.splitlines() if "the customer asks not to be called again:" in line)
    assert "dispositions GD" in dnc and '"not interested"' in dnc and "goes on the do-not-call list" in dnc, dnc
    # SMS: team1's lead texts the team's leads, but not that number; the handsets ending in 7 unsubscribe
    assert ("SMS: team lead 8001 texts the 39 leads team1 holds (POST /api/sms/broadcasts), through the lab's "
            "SMS gateway (SIP MESSAGE), 20 a second; skipped: 1 dnc") in out, out
    assert "SMS: {'sent': 39, 'skipped': 1} (GET /api/sms/broadcasts/<id>); 8 replies" in out, out
    assert '4 of them "T": 13900000007, 13900000017, 13900000027, 13900000037 now on the do-not-call list' in out
    assert "the 4 customers who answered are call-backs waiting for an agent (preview campaign demo-callbacks)" in out
    # the day's report from the call records over the HTTP API: the hotline's three rated calls
    hotline = next(line for line in out.splitlines() if "report (GET /api/reports/calls?by=queue) today, hotline:" in line)
    assert "3 in," in hotline and "answered 3, abandoned 0, service level" in hotline, hotline
    assert "CSAT 5.00 from 3 answers" in hotline, hotline
    assert "report (GET /api/reports/calls?by=queue) today, total:" in out, out
    assert "agent time (GET /api/reports/agents) today, " in out and ", on calls " in out, out


def _demo_asterisks() -> list[int]:
    """Pids of running Asterisks of the demo's lab instance (named ``demo``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"asterisk") and any(a.endswith(b"/instances/demo/etc/asterisk.conf")
                                                               for a in args):
                pids.append(int(entry.name))
    return pids


def test_demo_interrupted_stops_the_engine_and_asterisk_and_exits(tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) in the middle of ``callcenter demo``: the engine and the lab Asterisk are
    stopped and the process exits, instead of hanging on the repository's threads with Asterisk left
    running."""
    _needs_root()
    state = tmp_path / "site.yaml"
    state.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\n")
    log = tmp_path / "demo.log"
    with log.open("w") as handle:
        demo = subprocess.Popen([sys.executable, "-m", "callcenter.cli", "--config", str(state), "demo", "--calls", "3"],
                                cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "engine up" not in log.read_text() and demo.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        out = log.read_text()
        if "engine up" not in out:
            if "lab Asterisk booting" not in out:
                lab_unavailable(out[-2000:])
            raise AssertionError(out)
        assert _demo_asterisks(), out
        time.sleep(3)  # calls under way
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out = log.read_text()
    assert "engine and lab Asterisk stopped" in out, out
    assert "demo complete" not in out
    assert demo.returncode != 0  # interrupted, not a success
    assert not _demo_asterisks(), out


def test_daemon_drives_a_lab_instance_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """``callcenter run --lab NAME`` logs in, serves health and metrics, and exits 0 on SIGTERM."""
    _needs_root()
    name = f"daemon{os.getpid()}"
    http, metrics, agi = _free_port(), _free_port(), _free_port()
    site = tmp_path / "site.yaml"
    site.write_text(
        f"site:\n  state_dir: {tmp_path / 'var'}\n"
        f"database:\n  url: sqlite:///{tmp_path / 'cc.sqlite3'}\n"
        f"http:\n  port: {http}\nmetrics:\n  port: {metrics}\n"
        f"asterisk:\n  agi:\n    port: {agi}\n"
        'sms:\n  hours: "00:00-24:00"\n'
    )
    up = _callcenter("--config", str(site), "lab", "up", "--name", name)
    if up.returncode != 0:
        lab_unavailable(up.stdout + up.stderr)
    log = tmp_path / "daemon.log"
    agent, lead, manager = (("2101", _web_password(site, "2101")), ("8001", _web_password(site, "8001")),
                            ("9001", _web_password(site, "9001")))
    try:
        with log.open("w") as handle:
            daemon = subprocess.Popen([sys.executable, "-m", "callcenter.cli", "--config", str(site), "run",
                                       "--lab", name], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
        try:
            health = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/health", timeout=2) as response:
                        health = json.load(response)
                    if health["ami_connected"]:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            assert health is not None and health["ami_connected"], log.read_text()
            assert health["ami_resyncs"] >= 1
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as response:
                text = response.read().decode()
            assert "callcenter_ami_connected 1.0" in text
            assert 'callcenter_queue_callers_waiting{queue="hotline"} 0.0' in text
            # nothing but health and metrics without signing in (docs/web-access.md)
            with pytest.raises(urllib.error.HTTPError) as info:
                _open(f"http://127.0.0.1:{http}/api/queues", None)
            assert info.value.code == 401 and info.value.headers["WWW-Authenticate"].startswith("Basic")
            info.value.close()
            with pytest.raises(urllib.error.HTTPError) as info:
                _open(f"http://127.0.0.1:{http}/api/queues", ("2101", "not the password"))
            assert json.load(info.value) == {"error": "wrong agent id or password", "field": None}
            info.value.close()
            with pytest.raises(urllib.error.HTTPError) as info:  # an agent opening their lead's page
                _open(f"http://127.0.0.1:{http}/lead/8001", agent)
            assert info.value.code == 403 and "2101 may open only their own lead page" in info.value.read().decode()
            info.value.close()
            with _open(f"http://127.0.0.1:{http}/api/queues", agent) as response:
                queues = {q["queue"]: q for q in json.load(response)["queues"]}
            assert set(queues) == {"hotline", "outbound"}
            assert (queues["hotline"]["waiting"], queues["hotline"]["service_level_seconds"]) == (0, 20)
            with pytest.raises(urllib.error.HTTPError) as info:
                _open(f"http://127.0.0.1:{http}/api/call-records?limit=0", lead)
            assert info.value.code == 400
            assert json.load(info.value) == {"error": "expected an integer 1..1000, got 0", "field": "limit"}
            info.value.close()
            # the CLI talks to the running daemon: refusals are clear and fail the command
            cli = _callcenter("--config", str(site), "supervisor", "spy", "--as", "2102", "2101", "--mode", "listen",
                              timeout=30)
            assert cli.returncode == 1 and "[HTTP 403]" in cli.stderr and "2102" in cli.stderr, cli.stderr
            cli = _callcenter("--config", str(site), "agent", "screen-pop", "1001", timeout=30)
            assert cli.returncode == 1 and "error (agent): no call offered to agent '1001'" in cli.stderr, cli.stderr
            cli = _callcenter("--config", str(site), "agent", "disposition", "GD20261205001", "--as", "2101",
                              "--outcome", "resolved", "--do-not-call", timeout=30)  # the body passes; the call is unknown
            assert cli.returncode == 1 and "error (ticket): no call record 'GD20261205001'" in cli.stderr, cli.stderr
            cli = _callcenter("--config", str(site), "agent", "disposition", "GD20261205001", "--as", "2101",
                              "--follow-up-at", "tomorrow", timeout=30)
            assert cli.returncode == 1 and "error (follow_up_at): not an ISO 8601 time" in cli.stderr, cli.stderr
            cli = _callcenter("--config", str(site), "agent", "pause", "9999", "--reason", "lunch", timeout=30)
            assert cli.returncode == 1 and "9999" in cli.stderr, cli.stderr
            for command in (["agent", "login", "2101"], ["agent", "pause", "2101", "--reason", "lunch"]):
                cli = _callcenter("--config", str(site), *command, timeout=30)
                assert cli.returncode == 0 and '"ok": true' in cli.stdout, cli.stdout + cli.stderr
            # the supervisor's wallboard page shows the paused agent as the AMI events made them
            page = ""
            deadline = time.monotonic() + 10
            while "paused (lunch)" not in page and time.monotonic() < deadline:
                with _open(f"http://127.0.0.1:{http}/wallboard", agent) as response:
                    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
                    page = response.read().decode()
                time.sleep(0.3)
            assert "<td>hotline</td>" in page and "<td>outbound</td>" in page, page
            assert '<td>2101</td><td class="text">Agent 2101</td><td class="text">team1</td>' in page, page
            assert '<td class="paused">paused (lunch)</td>' in page, page
            assert "<td>spring-sale</td>" in page, page  # the campaigns of config/dialer.yaml
            # the team lead's page: the team live, the campaigns' leads, and a spy the real engine refuses
            with _open(f"http://127.0.0.1:{http}/lead/8001", lead) as response:
                page = response.read().decode()
            assert "<td>2101</td><td>Agent 2101</td><td>paused</td>" in page, page
            assert "<h3>spring-sale <span class=muted>(handout: none)</span></h3>" in page, page
            with _open(f"http://127.0.0.1:{http}/lead/8001/spy", lead, method="POST",
                       data=b"agent=2101&mode=listen&team=team1") as response:  # the 303 is followed back to the page
                assert response.url.startswith(f"http://127.0.0.1:{http}/lead/8001?team=team1&err="), response.url
                page = response.read().decode()
            assert "not on a call" in page, page
            with _open(f"http://127.0.0.1:{http}/", agent) as response:
                page = response.read().decode()
            assert '<a href="/wallboard">Wallboard</a>' in page and '<a href="/agent/2101">' in page, page
            # the agent's page: state from the real board, and the shipped preview campaign's button
            with _open(f"http://127.0.0.1:{http}/agent/2101", agent) as response:
                page = response.read().decode()
            assert '<span class="state">paused (lunch)</span>' in page and ">Next lead: hotline-callbacks</button>" in page
            with _open(f"http://127.0.0.1:{http}/agent/2101/preview", agent, method="POST",
                       data=b"campaign=hotline-callbacks") as response:
                assert "msg=no+lead+of+hotline-callbacks+is+due+now" in response.url, response.url
            with _open(f"http://127.0.0.1:{http}/reports?by=queue", manager) as response:
                page = response.read().decode()
            assert "<h2>Calls by queue</h2>" in page and "<h2>Sales commission</h2>" in page, page
            # an SMS broadcast through the lab's gateway (the lab Asterisk's own SIP MESSAGE loop)
            cli = _callcenter("--config", str(site), "sms", "send", "--as", "9001", "--name", "notice",
                              "--template", "您好，您的预约已确认。", "13900000001", "020-1234-5678", timeout=30)
            assert cli.returncode == 0, cli.stdout + cli.stderr
            created = json.loads(cli.stdout)["broadcast"]
            assert (created["queued"], created["skipped"]) == (1, {"invalid": 1}), created
            cli = _callcenter("--config", str(site), "sms", "send", "--as", "2101", "--name", "x", "--template", "x",
                              "13900000001", timeout=30)
            assert cli.returncode == 1 and "[HTTP 403]" in cli.stderr, cli.stderr
            deadline = time.monotonic() + 20
            while True:
                cli = _callcenter("--config", str(site), "sms", "status", str(created["broadcast_id"]), timeout=30)
                status = json.loads(cli.stdout)["broadcast"]["by_status"]
                if status.get("sent") == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == {"sent": 1, "skipped": 1}, status
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as response:
                text = response.read().decode()
            assert 'callcenter_http_refused_total{reason="signin"} 2.0' in text, text
            assert 'callcenter_http_refused_total{reason="forbidden"} 1.0' in text, text
            # someone guessing 2108's password: the fifth wrong one locks 2108 from this address
            for _ in range(5):
                with pytest.raises(urllib.error.HTTPError) as info:
                    _open(f"http://127.0.0.1:{http}/wallboard", ("2108", "guess"))
                assert info.value.code == 401
                info.value.close()
            with pytest.raises(urllib.error.HTTPError) as info:
                _open(f"http://127.0.0.1:{http}/api/queues", ("2108", "guess"))
            assert (info.value.code, info.value.headers["Retry-After"]) == (429, "300")
            assert json.load(info.value)["error"] == "too many wrong sign-ins from your address: try again in 300 s"
            info.value.close()
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2) as response:
                text = response.read().decode()
            assert 'callcenter_http_refused_total{reason="locked"} 1.0' in text, text
            assert "web.sign_in_locked address=127.0.0.1 id=2108" in log.read_text()
            # the agent changes their own password; another site's form may not
            change = urlencode({"current": agent[1], "new": "my own new password",
                                "repeat": "my own new password"}).encode()
            with pytest.raises(urllib.error.HTTPError) as info:
                _open(f"http://127.0.0.1:{http}/password", agent, data=change, method="POST",
                      headers={"origin": "https://evil.example"})
            assert info.value.code == 403 and "another site" in info.value.read().decode()
            info.value.close()
            with pytest.raises(urllib.error.HTTPError) as info:  # changed; the redirect back asks to sign in again
                _open(f"http://127.0.0.1:{http}/password", agent, data=change, method="POST",
                      headers={"origin": f"http://127.0.0.1:{http}"})
            assert info.value.code == 401
            info.value.close()
            with _open(f"http://127.0.0.1:{http}/password?msg=changed", ("2101", "my own new password")) as response:
                assert "Signed in as Agent 2101 (2101)" in response.read().decode()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        text = log.read_text()
        assert "daemon.started" in text and "ami.logged_in" in text and "daemon.stopped" in text
        assert "Traceback" not in text, text
        # the agent's day as the daemon wrote it before it stopped: logged in, paused for lunch,
        # then unknown (the daemon down), not paused until whenever it starts again
        time.sleep(2)
        report = _callcenter("--config", str(site), "report", "agents", "--json", timeout=60)
        assert report.returncode == 0, report.stdout + report.stderr
        lines = {line["agent_id"]: line for line in json.loads(report.stdout)["lines"]}
        agent_day = lines["2101"]
        assert set(agent_day["paused_by_reason"]) == {"lunch"} and agent_day["paused"] > 0, agent_day
        assert agent_day["unknown"] >= 1.5, agent_day
    finally:
        _callcenter("--config", str(site), "lab", "down", "--name", name, "--purge")
