"""The softphone's own dials under ``manual_dial.do_not_call: block``: the engine's FastAGI
check that [agent-dial] runs first (docs/agents.md, "Calling a customer"). The lab test:
tests/integration/test_agent_dial_dnc_lab.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.task import Clock

from callcenter.asterisk.render import render_extensions
from callcenter.engine import Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.settings import load_settings
from callcenter.storage import dialer as dialer_store
from tests.syncrepository import SyncRepository, in_tx
from tests.unit.test_engine import FakeAmi, run_at_once
from tests.unit.test_render import ENDPOINTS

ROOT = Path(__file__).resolve().parents[2]


class _Agi:
    def __init__(self, number: str) -> None:
        self.env = type("Env", (), {"extension": number, "args": ("2101",)})()
        self.set: dict[str, str] = {}

    async def set_variable(self, name: str, value: str | int, timeout: float | None = None) -> None:
        self.set[name] = str(value)


def _run(engine: Engine, number: str) -> dict[str, str]:
    agi = _Agi(number)
    run_at_once(engine.agi_agent_dial_check(agi))  # type: ignore[arg-type]
    return agi.set


def _engine(sessions: sessionmaker[Session], mode: str) -> tuple[Engine, CollectorRegistry]:
    base = load_settings(ROOT / "config")
    registry = CollectorRegistry()
    engine = Engine(replace(base, manual_dial=replace(base.manual_dial, do_not_call=mode)), FakeAmi(),  # type: ignore[arg-type]
                    SyncRepository(sessions), EngineMetrics(registry), Clock(),
                    RecordingPaths("/srv/rec", Path("/tmp/rec")))
    return engine, registry


def test_a_listed_number_is_refused_only_in_block_mode(sessions: sessionmaker[Session]) -> None:
    in_tx(sessions, dialer_store.add_dnc, ["13800138000"], source="customer", reason="asked",
          now=datetime(2026, 12, 6, tzinfo=UTC))
    engine, registry = _engine(sessions, "block")
    assert _run(engine, "13800138000") == {"CC_DIAL_ALLOWED": "no", "CC_DIAL_REFUSED": "do_not_call"}
    assert _run(engine, "+86 138 0013 8000") == {"CC_DIAL_ALLOWED": "no", "CC_DIAL_REFUSED": "do_not_call"}
    assert _run(engine, "13900000001") == {"CC_DIAL_ALLOWED": "yes"}
    assert _run(engine, "12") == {"CC_DIAL_ALLOWED": "yes"}  # no number: the trunk refuses it
    assert registry.get_sample_value("callcenter_agent_dials_refused_total", {"reason": "do_not_call"}) == 2.0
    warned, _ = _engine(sessions, "warn")
    assert _run(warned, "13800138000") == {"CC_DIAL_ALLOWED": "yes"}


def test_a_list_that_cannot_be_read_refuses_the_call(sessions: sessionmaker[Session]) -> None:
    engine, registry = _engine(sessions, "block")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database down")

    engine.repository.run = broken  # type: ignore[union-attr, method-assign]
    assert _run(engine, "13900000001") == {"CC_DIAL_ALLOWED": "no", "CC_DIAL_REFUSED": "check_failed"}
    assert registry.get_sample_value("callcenter_agent_dials_refused_total", {"reason": "check_failed"}) == 1.0
    assert registry.get_sample_value("callcenter_db_errors_total", {"operation": "dnc_entry"}) == 1.0


@pytest.mark.parametrize("mode", ["warn", "block"])
def test_the_mode_is_rendered_for_the_dialplan(mode: str) -> None:
    base = load_settings(ROOT / "config")
    settings = replace(base, manual_dial=replace(base.manual_dial, do_not_call=mode))
    assert f"\nAGENT_DIAL_CHECK = {mode}\n" in render_extensions(settings, ENDPOINTS)
