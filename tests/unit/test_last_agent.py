"""A returning hotline caller rings the agent they last talked with: the lookup, the engine's
hotline script, the settings and the rendered ring time (docs/agents.md, "A returning caller
reaches their agent"). The lab test: tests/integration/test_last_agent_lab.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.task import Clock

from callcenter.ami.codec import Message
from callcenter.asterisk.render import render_extensions
from callcenter.engine import Engine, RecordingPaths
from callcenter.metrics import EngineMetrics
from callcenter.overflow import overflow_device
from callcenter.settings import ConfigError, LastAgentSettings, load_settings
from callcenter.storage import crm as crm_store
from callcenter.storage import repository as repo
from callcenter.storage.records import NewCallRecord
from tests.syncrepository import SyncRepository, in_tx
from tests.unit.test_engine import FakeAmi, run_at_once
from tests.unit.test_render import ENDPOINTS

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _call(sessions: sessionmaker[Session], days_ago: float, agent: str | None, *, answered: bool = True,
          phone: str = "13800138000", direction: str = "outbound") -> None:
    started = NOW - timedelta(days=days_ago)
    in_tx(sessions, repo.create_call_record, NewCallRecord(
        started_at=started, direction=direction, phone=phone, agent_id=agent,
        answered_at=started if answered else None), site_prefix="GD")


def test_the_last_agent_is_the_latest_answered_call_with_an_agent_in_the_window(
        sessions: sessionmaker[Session]) -> None:
    since = NOW - timedelta(days=30)
    assert in_tx(sessions, crm_store.last_agent, "13800138000", since) is None
    _call(sessions, 40, "2101")                          # too long ago
    assert in_tx(sessions, crm_store.last_agent, "13800138000", since) is None
    _call(sessions, 10, "2105", direction="inbound")
    _call(sessions, 5, "2107")
    _call(sessions, 3, "2108", answered=False)           # rang, never talked
    _call(sessions, 2, None, direction="inbound")        # abandoned in the queue
    _call(sessions, 1, "2109", phone="13900000001")      # another number
    assert in_tx(sessions, crm_store.last_agent, "13800138000", since) == "2107"
    assert in_tx(sessions, crm_store.last_agent, "+86 138-0013-8000", since) == "2107"  # any spelling
    assert in_tx(sessions, crm_store.last_agent, "anonymous", since) is None


class _HotlineAgi:
    """A hotline call's FastAGI session in which every IVR channel is taken: straight to the queue."""

    def __init__(self, caller: str) -> None:
        self.env = type("Env", (), {"callerid": caller})()
        self.set: dict[str, str] = {}

    async def get_variable(self, name: str, timeout: float | None = None) -> str | None:
        return "full" if name == "CC_IVR_SEATS" else None

    async def set_variable(self, name: str, value: str | int, timeout: float | None = None) -> None:
        self.set[name] = str(value)


def _run(engine: Engine, caller: str) -> dict[str, str]:
    agi = _HotlineAgi(caller)
    run_at_once(engine.agi_hotline(agi))  # type: ignore[arg-type]
    return agi.set


def _engine(sessions: sessionmaker[Session], days: int) -> tuple[Engine, Any]:
    clock = Clock()
    clock.advance(NOW.timestamp())
    ami = FakeAmi()
    settings = replace(load_settings(ROOT / "config"), last_agent=LastAgentSettings(days=days, ring_seconds=12))
    engine = Engine(settings, ami, SyncRepository(sessions), EngineMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                    clock, RecordingPaths("/srv/rec", Path("/tmp/rec")))
    engine.startService()
    return engine, ami.events[0]


def _member(agent: str, **fields: str) -> Message:
    return Message.from_pairs({"Event": "QueueMemberAdded", "Queue": "outbound", "Interface": f"PJSIP/agent{agent}",
                               "StateInterface": f"PJSIP/agent{agent}", "MemberName": agent, "Paused": "0",
                               "Status": "1", **fields}.items())


def test_the_hotline_script_rings_the_last_agent_only_when_they_are_ready(sessions: sessionmaker[Session]) -> None:
    _call(sessions, 2, "2105")
    _call(sessions, 1, "7777", phone="13900000007")  # no such agent any more
    engine, send = _engine(sessions, 30)
    queued = {"CC_QUEUE": "hotline", "CC_IVR_MAIN_PATH": "ivr=full", "CHANNEL(language)": "zh"}
    assert _run(engine, "13800138000") == queued  # 2105 is logged out
    send(_member("2105"))
    assert _run(engine, "13800138000") == {**queued, "CC_LAST_AGENT": "2105",
                                           "CC_LAST_AGENT_PHONE": "PJSIP/agent2105"}
    assert _run(engine, "13900000007") == queued
    assert _run(engine, "13911112222") == queued  # never talked with anyone
    send(Message.from_pairs([("Event", "QueueMemberPause"), ("Queue", "outbound"), ("Interface", "PJSIP/agent2105"),
                             ("MemberName", "2105"), ("Paused", "1"), ("PausedReason", "lunch")]))
    assert engine.agents.state_of("2105").value == "paused"
    assert _run(engine, "13800138000") == queued
    off, send_off = _engine(sessions, 0)
    send_off(_member("2105"))
    assert _run(off, "13800138000") == queued


def test_a_database_error_leaves_the_caller_to_the_queue(sessions: sessionmaker[Session]) -> None:
    engine, send = _engine(sessions, 30)
    send(_member("2105"))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database down")

    engine.repository.run = broken  # type: ignore[union-attr, method-assign]
    assert _run(engine, "13800138000") == {"CC_QUEUE": "hotline", "CC_IVR_MAIN_PATH": "ivr=full",
                                           "CHANNEL(language)": "zh"}
    assert engine.metrics.db_errors.labels("last_agent")._value.get() == 1.0


def test_the_setting_is_validated_and_rendered(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("last_agent:\n  days: 30\n  ring_seconds: 20\n", encoding="utf-8")
    settings = load_settings(ROOT / "config", [site])
    assert settings.last_agent == LastAgentSettings(days=30, ring_seconds=20)
    assert load_settings(ROOT / "config").last_agent.days == 0  # shipped off
    assert "\nLAST_AGENT_RING_SECONDS = 20\n" in render_extensions(settings, ENDPOINTS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("last_agent:\n  days: -1\n  ring: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(ROOT / "config", [bad])
    assert str(info.value).splitlines() == [
        f"{bad}:2:3: last_agent.days: expected an integer in 0..3660, got -1",
        f"{bad}:3:3: last_agent.ring: unknown setting",
    ]


def test_the_overflow_agents_ring_at_once_when_the_primary_agent_is_away(sessions: sessionmaker[Session]) -> None:
    """queues.yaml ``overflow_after``: callers wait that long for the hotline's primary agent
    (1001, penalty 0) before the overflow agents (2101, 2102, penalty 5) ring too. With 1001
    logged out or paused there is nobody to wait for, nor with 1001's phone unreachable: the
    engine sets the device ``Custom:cc-overflow-hotline`` INUSE (dialplans/hotline.conf and
    transfer.conf then set no penalty limit), and NOT_INUSE again when 1001 is there (on a
    call too: the caller waits for them). Sent when it changes, all again after a
    reconnection; a send that failed is sent again at the next change."""
    engine, send = _engine(sessions, 0)
    ami = engine.ami
    device = "DEVICE_STATE(Custom:cc-overflow-hotline)"

    def told() -> list[str]:
        values = [action.get("Value") for action in ami.sent  # type: ignore[attr-defined]
                  if action.name == "Setvar" and action.get("Variable") == device]
        ami.sent.clear()  # type: ignore[attr-defined]
        return values

    def gauge() -> float:
        return float(engine.metrics.overflow_now.labels("hotline")._value.get())

    def member(agent: str, event: str = "QueueMemberAdded", **fields: str) -> Message:
        return Message.from_pairs({"Event": event, "Queue": "hotline", "Interface": f"PJSIP/agent{agent}",
                                   "StateInterface": f"PJSIP/agent{agent}", "MemberName": agent, "Paused": "0",
                                   "Status": "1", **fields}.items())

    send(member("2101"))
    assert engine.primaries_away("hotline")
    assert told() == ["INUSE"] and gauge() == 1.0
    assert {v["queue"]: v["overflow_now"] for v in engine.queue_views()} == {"hotline": True, "outbound": None}
    send(member("2101", "QueueMemberStatus", Status="2", InCall="1"))
    assert told() == []  # no change: nothing sent
    send(member("1001"))
    assert not engine.primaries_away("hotline")
    assert told() == ["NOT_INUSE"] and gauge() == 0.0
    assert [v["overflow_now"] for v in engine.queue_views() if v["queue"] == "hotline"] == [False]
    send(member("1001", "QueueMemberPause", Paused="1", PausedReason="lunch"))
    assert engine.primaries_away("hotline")
    assert told() == ["INUSE"]
    send(member("1001", "QueueMemberPause", Paused="0"))
    send(member("1001", "QueueMemberStatus", Status="2", InCall="1"))  # on a call: there
    assert not engine.primaries_away("hotline")
    assert told() == ["NOT_INUSE"]
    phone = {"Event": "DeviceStateChange", "Device": "PJSIP/agent1001"}
    send(Message.from_pairs({**phone, "State": "UNAVAILABLE"}.items()))  # the softphone is gone
    assert engine.primaries_away("hotline")
    assert told() == ["INUSE"]
    send(Message.from_pairs({**phone, "State": "INUSE"}.items()))
    assert not engine.primaries_away("hotline")
    assert told() == ["NOT_INUSE"]
    assert not engine.primaries_away("outbound")  # no overflow_after: never
    assert not engine.primaries_away("nosuchqueue")
    assert all(action.get("Variable") == device for action in ami.sent)  # type: ignore[attr-defined]

    # a send that fails is sent again at the next change of the board
    ami.failing = RuntimeError("not connected")  # type: ignore[attr-defined]
    send(member("1001", "QueueMemberRemoved"))
    assert engine.primaries_away("hotline")
    assert told() == ["INUSE"]
    ami.failing = None  # type: ignore[attr-defined]
    send(member("2101", "QueueMemberStatus", Status="1", InCall="0"))
    assert told() == ["INUSE"]
    send(member("2101", "QueueMemberStatus", Status="2", InCall="1"))
    assert told() == []

    # a reconnection: told again, whatever was said before (a restarted Asterisk keeps it in astdb)
    engine.on_resync([], [])
    assert told() == ["INUSE"]


def test_the_callers_already_waiting_reach_the_overflow_agents_when_the_primary_agent_leaves(
        sessions: sessionmaker[Session]) -> None:
    """A caller who joined while 1001 was there is limited to penalty 0 (the primary agent)
    for overflow_after: when 1001 leaves (logs out, pauses), the engine drops the overflow
    agents' penalty in the hotline to 0 (QueuePenalty), so that caller rings them at once
    too, and puts it back to the configured 5 when 1001 is there again. An overflow agent who
    joins while 1001 is away gets 0 as well; sent again after a reconnection, and after a
    send that failed."""
    engine, send = _engine(sessions, 0)
    ami = engine.ami

    def penalties() -> list[tuple[str | None, str | None, str | None]]:
        values = [(action.get("Interface"), action.get("Queue"), action.get("Penalty"))
                  for action in ami.sent if action.name == "QueuePenalty"]  # type: ignore[attr-defined]
        ami.sent.clear()  # type: ignore[attr-defined]
        return values

    def member(agent: str, event: str = "QueueMemberAdded", **fields: str) -> Message:
        return Message.from_pairs({"Event": event, "Queue": "hotline", "Interface": f"PJSIP/agent{agent}",
                                   "StateInterface": f"PJSIP/agent{agent}", "MemberName": agent, "Paused": "0",
                                   "Status": "1", **fields}.items())

    send(member("1001"))
    assert penalties() == []  # the primary agent's own penalty is never touched
    send(member("2101"))
    assert penalties() == [("PJSIP/agent2101", "hotline", "5")]  # as configured (told once)
    send(member("2101", "QueueMemberStatus", Status="2", InCall="1"))
    assert penalties() == []
    send(member("1001", "QueueMemberPause", Paused="1", PausedReason="end of shift"))
    assert penalties() == [("PJSIP/agent2101", "hotline", "0")]
    send(member("2102"))  # joins while 1001 is away: 0 at once
    assert penalties() == [("PJSIP/agent2102", "hotline", "0")]
    send(member("1001", "QueueMemberPause", Paused="0"))
    assert penalties() == [("PJSIP/agent2101", "hotline", "5"), ("PJSIP/agent2102", "hotline", "5")]
    send(member("2102", "QueueMemberRemoved"))
    send(member("1001", "QueueMemberRemoved"))
    assert penalties() == [("PJSIP/agent2101", "hotline", "0")]
    send(member("2102"))  # back in the queue (Asterisk added them at 5): told 0 again
    assert penalties() == [("PJSIP/agent2102", "hotline", "0")]
    ami.failing = RuntimeError("not connected")  # type: ignore[attr-defined]
    send(member("1001"))
    assert penalties() == [("PJSIP/agent2101", "hotline", "5"), ("PJSIP/agent2102", "hotline", "5")]
    ami.failing = None  # type: ignore[attr-defined]
    send(member("2101", "QueueMemberStatus", Status="1", InCall="0"))
    assert penalties() == [("PJSIP/agent2101", "hotline", "5"), ("PJSIP/agent2102", "hotline", "5")]
    listed = [Message.from_pairs({"Event": "QueueMember", "Queue": "hotline", "Name": agent,
                                  "Location": f"PJSIP/agent{agent}", "StateInterface": f"PJSIP/agent{agent}",
                                  "Membership": "dynamic", "Penalty": "0", "Paused": "0", "Status": "1",
                                  "InCall": "0"}.items()) for agent in ("2101",)]
    engine.on_resync([], listed)  # 1001 gone meanwhile: told again from what Asterisk lists
    assert penalties() == [("PJSIP/agent2101", "hotline", "0")]


def test_a_queue_that_no_longer_overflows_gives_its_agents_their_configured_penalty(tmp_path: Path) -> None:
    """The site turns the hotline's overflow off (overflow_after: 0) while Asterisk still has
    2101 at penalty 0 there (astdb kept what an earlier daemon set): 2101's configured 5 is
    what the engine wants, not nothing (before: only overflowing queues were looked at, so
    the 0 stayed for good). A primary agent (penalty 0) is never listed."""
    from callcenter.overflow import overflow_penalties
    from callcenter.state.agents import AgentBoard

    site = tmp_path / "queues.yaml"
    site.write_text("queues:\n  hotline:\n    overflow_after: 0\n", encoding="utf-8")
    settings = load_settings(ROOT / "config", [site])
    board = AgentBoard({"hotline": 15})
    for agent in ("1001", "2101"):
        board.handle(Message.from_pairs([
            ("Event", "QueueMemberAdded"), ("Queue", "hotline"), ("Interface", f"PJSIP/agent{agent}"),
            ("StateInterface", f"PJSIP/agent{agent}"), ("Penalty", "0"), ("Paused", "0"), ("Status", "1")]), 1.0)
    assert overflow_penalties(settings, board.agents()) == {("hotline", "PJSIP/agent2101"): 5}
    shipped = load_settings(ROOT / "config")
    assert overflow_penalties(shipped, board.agents()) == {("hotline", "PJSIP/agent2101"): 5}  # 1001 there
    board.handle(Message.from_pairs([("Event", "QueueMemberRemoved"), ("Queue", "hotline"),
                                     ("Interface", "PJSIP/agent1001")]), 2.0)
    assert overflow_penalties(shipped, board.agents()) == {("hotline", "PJSIP/agent2101"): 0}


def test_every_dialplan_that_queues_a_caller_reads_the_overflow_device() -> None:
    """The hotline and the transfers (the engine's, a phone's own key, a colleague who did
    not answer: all through cc-transfer's queue-<NAME>) set the caller's penalty limit in one
    place, [cc-overflow-limit], which reads the device the engine keeps: every agent
    (QUEUE_ANY_PENALTY, never empty: app_queue warns of an empty value on every call) while it
    is INUSE or the queue has no overflow, the queue's start penalty otherwise; each Queue()
    of theirs comes after it."""
    read = f'"${{DEVICE_STATE({overflow_device("${ARG1}")})}}" = "INUSE" | "${{QUEUE_START_PENALTY_${{ARG1}}}}" = ""'
    texts = {name: (ROOT / "dialplans" / name).read_text(encoding="utf-8") for name in ("hotline.conf", "transfer.conf")}
    setters = [line for text in texts.values() for line in text.splitlines()
               if "QUEUE_MAX_PENALTY" in line and "Set(" in line]
    assert len(setters) == 1 and read in setters[0], setters
    assert "?${QUEUE_ANY_PENALTY}:${QUEUE_START_PENALTY_${ARG1}})" in setters[0], setters
    limit = texts["hotline.conf"].split("\n[cc-overflow-limit]", 1)[1]
    assert setters[0] in limit.split("\n[", 1)[0]  # the one setter is the Gosub's
    for name, text in texts.items():
        section = text.split("[hotline]" if name == "hotline.conf" else "[cc-transfer]", 1)[1].split("\n[", 1)[0]
        lines = section.splitlines()
        queues = [i for i, line in enumerate(lines) if "Queue(${CC_QUEUE}" in line]
        gosubs = [i for i, line in enumerate(lines) if "Gosub(cc-overflow-limit,s,1(${CC_QUEUE}))" in line]
        assert queues and len(gosubs) == 1 and all(gosubs[0] < i for i in queues), (name, gosubs, queues)
