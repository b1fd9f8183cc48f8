"""The ``callcenter`` command line: check-config exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped configuration passes check-config with exit status 0."""
    assert main(["--config-dir", str(ROOT / "config"), "check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().out


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
