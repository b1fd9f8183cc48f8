"""The ``callcenter`` command line: check-config exit codes and messages."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped configuration passes check-config with exit status 0."""
    assert main(["--config-dir", str(ROOT / "config"), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "configuration OK" in out and "): 2 queues, 8 teams, 58 agents" in out, out


def test_check_config_notes_a_holiday_list_about_to_run_out(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The hotline flow's last holiday within 60 days: a note (not a refusal) naming the file."""
    shipped = (ROOT / "ivr_flows" / "hotline.yaml").read_text(encoding="utf-8")
    start, end = shipped.index("holidays:"), shipped.index("\nprompts:")
    today = dt.date.today()
    for ahead, noted in ((10, True), (400, False)):
        flow = tmp_path / f"hotline-{ahead}.yaml"
        last = today + dt.timedelta(days=ahead)
        flow.write_text(shipped[:start] + f"holidays: [{last.isoformat()}]\n" + shipped[end:], encoding="utf-8")
        site = tmp_path / f"site-{ahead}.yaml"
        site.write_text(f"ivr:\n  hotline_flow: {flow}\n", encoding="utf-8")
        assert main(["--config-dir", str(ROOT / "config"), "--config", str(site), "check-config"]) == 0
        out = capsys.readouterr().out
        note = f"note: {flow}: holidays: the last one listed is {last}, "
        assert (note in out) is noted, out


def test_check_config_counts_team_queues_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("queues:\n  outbound:\n    per_team: true\n", encoding="utf-8")
    assert main(["--config-dir", str(ROOT / "config"), "--config", str(site), "check-config"]) == 0
    assert "): 2 queues (+6 team queues), 8 teams, 58 agents" in capsys.readouterr().out


def test_check_config_broken_yaml_names_file_line_key_and_fails(tmp_path: Path) -> None:
    """A broken override makes the real console command print file:line:col: key and exit non-zero."""
    bad = tmp_path / "broken.yaml"
    bad.write_text("asterisk:\n  ami:\n    port: abc\nmetrics:\n  prot: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "--config-dir", str(ROOT / "config"), "--config", str(bad),
         "check-config"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1
    assert f"{bad}:3:5: asterisk.ami.port: expected an integer in 1..65535, got 'abc'" in result.stderr
    assert f"{bad}:5:3: metrics.prot: unknown setting" in result.stderr
    assert "configuration invalid: 2 problem(s)" in result.stderr


def test_check_config_checks_the_dialer_yaml_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config validates dialer.yaml as well and names its file, line and key."""
    bad = tmp_path / "dialer.yaml"
    bad.write_text('dialer:\n  trunk: "PJSIP/{phone}@pstn"\n  pacing:\n    max_ratio: 0.5\n  campaigns: {}\n')
    assert main(["--config-dir", str(ROOT / "config"), "check-config", "--dialer-config", str(bad)]) == 1
    assert f"{bad}:4:5: dialer.pacing.max_ratio:" in capsys.readouterr().err
    assert main(["--config-dir", str(ROOT / "config"), "check-config"]) == 0
    assert "dialer.yaml" in capsys.readouterr().out


def test_check_config_yaml_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid YAML is reported with its line, and the command fails."""
    bad = tmp_path / "syntax.yaml"
    bad.write_text("site:\n  name: 'unterminated\n")
    assert main(["--config-dir", str(ROOT / "config"), "--config", str(bad), "check-config"]) == 1
    assert f"{bad}:" in capsys.readouterr().err


def test_web_password_set_printed_once_and_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`callcenter web password ID` prints a new password once and keeps only its hash;
    --stdin sets a chosen one (too short is refused, naming why); an unknown id is named;
    `web remove` takes sign-in away."""
    import io

    from callcenter.secrets import read_web_passwords
    from callcenter.web_access import check_password

    override = tmp_path / "site.yaml"
    override.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\n")
    base = ["--config-dir", str(ROOT / "config"), "--config", str(override), "web"]
    assert main([*base, "password", "2101"]) == 0
    out = capsys.readouterr().out
    password = out.splitlines()[0].rsplit(": ", 1)[1]
    assert out.startswith("web password of 2101 (Agent 2101, agent) set: ") and "only its hash is kept" in out
    stored = read_web_passwords(tmp_path / "var")["2101"]
    assert password not in (tmp_path / "var" / "secrets.yaml").read_text()
    assert check_password(stored, password)

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*base, "password", "8001", "--stdin"]) == 1
    assert "standard input: a password has at least 10 characters, got 5" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("the lead's own password\n"))
    assert main([*base, "password", "8001", "--stdin"]) == 0
    assert capsys.readouterr().out == "web password of 8001 (Team lead 1, lead) set\n"
    assert check_password(read_web_passwords(tmp_path / "var")["8001"], "the lead's own password")

    assert main([*base, "password", "7777"]) == 1
    assert "person: no '7777' among the configured people (config/agents.yaml)" in capsys.readouterr().err
    assert main([*base, "remove", "2101"]) == 0
    assert set(read_web_passwords(tmp_path / "var")) == {"8001"}


def test_web_passwords_for_everyone_missing_one_and_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A first install: `web password --missing` gives everyone without a password a new one,
    printed once as a list to hand out; `web list` says who has one; run again, nobody is missing."""
    from callcenter.secrets import read_web_passwords
    from callcenter.web_access import check_password

    override = tmp_path / "site.yaml"
    override.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\n")
    base = ["--config-dir", str(ROOT / "config"), "--config", str(override), "web"]
    assert main([*base, "password", "9001"]) == 0
    capsys.readouterr()
    assert main([*base, "password", "--missing"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("57 web password(s) set; hand each to its person")
    rows = {line.split()[0]: line.split() for line in lines[:-1]}
    assert len(rows) == 57 and "9001" not in rows and rows["2101"][:2] == ["2101", "agent"]
    stored = read_web_passwords(tmp_path / "var")
    assert len(stored) == 58 and check_password(stored["2101"], rows["2101"][2])
    assert main([*base, "password", "--missing"]) == 0
    assert capsys.readouterr().out == "everyone has a web password already\n"
    assert main([*base, "password", "2101", "--missing"]) == 1
    assert "give no person" in capsys.readouterr().err
    main([*base, "remove", "8001"])
    capsys.readouterr()
    assert main([*base, "list"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "no password" in listed["8001"] and "password set" in listed["2101"] and len(listed) == 58


@pytest.mark.parametrize(("days", "error"), [("-1", "expected 0 or more days, got -1"),
                                             ("ten", "expected a whole number of days, got 'ten'")])
def test_recordings_purge_refuses_a_bad_day_count(days: str, error: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--config-dir", str(ROOT / "config"), "recordings", "purge", "--days", days, "--dry-run"])
    assert exited.value.code == 2 and f"argument --days: {error}" in capsys.readouterr().err


def test_softphone_prints_each_persons_sip_account_from_the_installs_secrets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What ops hand an agent for their softphone: the server, agent<ID> and its generated password
    (the one the rendered pjsip.conf holds); an unknown id or a wildcard bind without --server exit 2."""
    from callcenter.secrets import load_or_create_secrets

    site = tmp_path / "site.yaml"
    site.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\nasterisk:\n  sip:\n    bind: 10.0.0.5\n",
                    encoding="utf-8")
    base = ["--config-dir", str(ROOT / "config"), "--config", str(site), "asterisk", "softphone"]
    assert main([*base, "2101"]) == 0
    password = load_or_create_secrets(tmp_path / "var", ["2101"]).sip_secret("2101")
    out = capsys.readouterr().out
    assert "  SIP server : 10.0.0.5:5060 (UDP)\n  user name  : agent2101\n" in out
    assert f"  password   : {password}\n" in out and out.startswith("2101 ")
    assert main([*base]) == 0
    assert capsys.readouterr().out.count("SIP server") == 58  # everyone in agents.yaml
    assert main([*base, "2101", "77"]) == 2
    assert "unknown id(s) 77" in capsys.readouterr().err
    site.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\nasterisk:\n  sip:\n    bind: 0.0.0.0\n", encoding="utf-8")
    assert main([*base, "2101"]) == 2
    assert "--server" in capsys.readouterr().err
    assert main([*base, "2101", "--server", "pbx.example.com"]) == 0
    assert "SIP server : pbx.example.com:5060" in capsys.readouterr().out


def test_sms_phones_file_names_each_bad_line_and_sends_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A manager's file of numbers: a line that is no number is named (file:line) and left out,
    the rest are sent; a file that cannot be read, or holds no number, sends nothing."""
    from callcenter.cli import _phones_file

    good = tmp_path / "phones.txt"
    good.write_text("\ufeff13800138000\n# the shop\nnot a phone\n\n+86 139 1111 2222\n", encoding="utf-8")
    assert _phones_file(good) == ["13800138000", "+86 139 1111 2222"]
    assert capsys.readouterr().err == (f"{good}:3: phone: must be 3 to 15 digits with an optional leading +, "
                                       "got 'not a phone' (left out)\n")
    assert _phones_file(tmp_path / "missing.txt") is None
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing.txt'}: cannot read: No such file or directory\n"
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"13800138000\n\xe9\n")
    assert _phones_file(latin) is None
    assert capsys.readouterr().err == (f"error: {latin}:2: not valid utf-8: byte 0xe9 cannot be decoded "
                                       "(try --encoding gb18030 or utf-8)\n")
    chinese = tmp_path / "gb.txt"  # a list saved by a Chinese Excel
    chinese.write_bytes("13800138000\n张三\n".encode("gb18030"))
    assert _phones_file(chinese, "gb18030") == ["13800138000"]
    assert capsys.readouterr().err == f"{chinese}:2: phone: must be 3 to 15 digits with an optional leading +, " \
                                      "got '张三' (left out)\n"
    assert _phones_file(chinese, "latin-9") is None
    assert "encoding: unknown encoding 'latin-9'" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody\n", encoding="utf-8")
    argv = ["--config-dir", str(ROOT / "config"), "sms", "send", "--as", "9001", "--name", "n", "--template", "t",
            "--phones-file", str(empty)]
    assert main(argv) == 1  # nothing to send: the daemon is not asked
    assert "no number to text" in capsys.readouterr().err


def test_lab_commands_take_the_configurations_lab_section_under_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config lab.cache_dir, lab.asterisk and lab.mirror reach every lab command (before,
    lab.asterisk and lab.mirror were read by nothing, and lab shell ignored cache_dir);
    --runtime and $CALLCENTER_LAB_RUNTIME win; lab.asterisk auto is chroot."""
    from callcenter.lab import cli as lab_cli

    seen: list[tuple[str, object, object, object]] = []
    monkeypatch.setattr(lab_cli, "run", lambda args, project_files=None: seen.append(
        (args.lab_command, args.cache_dir, args.runtime, getattr(args, "mirror", None))) or 0)
    monkeypatch.delenv(lab_cli.RUNTIME_ENV, raising=False)
    site = tmp_path / "site.yaml"
    site.write_text(f"lab: {{cache_dir: {tmp_path / 'cache'}, asterisk: host, mirror: 'http://mirror.example/debian'}}\n")
    assert main(["--config", str(site), "lab", "provision"]) == 0
    assert main(["--config", str(site), "lab", "shell"]) == 0
    assert main(["--config", str(site), "lab", "provision", "--runtime", "chroot", "--mirror", "http://m2/debian"]) == 0
    monkeypatch.setenv(lab_cli.RUNTIME_ENV, "chroot")
    assert main(["--config", str(site), "lab", "status"]) == 0
    cache = tmp_path / "cache"
    assert seen == [("provision", cache, "host", "http://mirror.example/debian"), ("shell", cache, "host", None),
                    ("provision", cache, "chroot", "http://m2/debian"), ("status", cache, None, None)]
