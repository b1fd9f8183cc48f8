"""The daemon's start (callcenter/service.py ``start_services``): a database it cannot reach
or a port already taken is one line naming the setting, and nothing is left running (the
process would otherwise hang with its threads after a traceback)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock

from callcenter.service import StartError, start_services
from callcenter.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


class _TakenPortReactor(MemoryReactorClock):
    """A reactor on which one port is taken by another program."""

    def __init__(self, taken: int) -> None:
        super().__init__()
        self.taken = taken

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        if port == self.taken:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        return super().listenTCP(port, factory, backlog, interface)

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:  # the storage threads' answers
        self.callLater(0, f, *args, **kwargs)


def _settings(tmp_path: Path, url: str | None = None) -> Settings:
    base = load_settings(ROOT / "config")
    return replace(base, site=replace(base.site, state_dir=tmp_path / "var"),
                   database=replace(base.database, url=url or f"sqlite:///{tmp_path / 'cc.sqlite3'}"))


def test_an_unreachable_database_names_the_url_without_its_password(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "postgresql://cc:s3cret@127.0.0.1:1/callcenter")
    with pytest.raises(StartError) as caught:
        start_services(settings, MemoryReactorClock())
    message = str(caught.value)
    assert message.startswith("database.url postgresql://cc:***@127.0.0.1:1/callcenter: ") and "s3cret" not in message
    assert "refused" in message and "\n" not in message


@pytest.mark.parametrize("field", ["agi", "http", "metrics"])
def test_a_taken_port_names_its_setting_and_stops_what_had_started(tmp_path: Path, field: str) -> None:
    settings = _settings(tmp_path)
    port = getattr(settings, field).port
    reactor = _TakenPortReactor(port)
    with pytest.raises(StartError, match=rf"^{field}\.port {port} on [0-9.]+: Address already in use$"):
        start_services(settings, reactor)
    # stopped again: the storage threads (which would keep the process alive) and the AMI client
    assert not [t for t in threading.enumerate() if t.name.startswith("callcenter-storage")]
    assert reactor.connectors and all(connector.stoppedConnecting for connector in reactor.connectors)
