"""The ``callcenter`` CLI talking to a stand-in for the running daemon (unit tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def cli_with_fake_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                         ) -> tuple[list[tuple[str, str, Any]], Callable[..., int]]:
    """(the API requests the CLI sent: method, path, body; ``run(*argv)``, which runs
    ``callcenter`` with a site configuration under ``tmp_path``). Every request answers 200."""
    from callcenter import cli

    sent: list[tuple[str, str, Any]] = []

    def api(settings: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        sent.append((method, path, body))
        return 200, {"ok": True}

    monkeypatch.setattr(cli, "_api", api)
    site = tmp_path / "site.yaml"
    site.write_text(f"site:\n  state_dir: {tmp_path / 'var'}\n")
    return sent, lambda *argv: cli.main(["--config", str(site), *argv])
