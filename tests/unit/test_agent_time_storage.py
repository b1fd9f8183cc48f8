"""agent_state_changes in SQL (SQLite and PostgreSQL): the report reads the state each agent
opens the period in, the period's changes and stops at now; a restart after a crash marks the
agents left logged in as unknown, so the downtime is not counted as work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from callcenter.agent_time import StateChange
from callcenter.storage.agent_time import (
    agent_time_report,
    close_open_states,
    record_agent_states,
)
from tests.syncrepository import in_tx

DAY = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def test_the_report_opens_each_agent_in_their_state_and_stops_at_now(sessions: sessionmaker[Session]) -> None:
    in_tx(sessions, record_agent_states, [
        StateChange("2101", at(-1), "paused", "meeting"),  # opens the day paused
        StateChange("2102", at(-8 * 24 - 1), "ready"),  # older than the look-back: not logged in
        StateChange("2103", at(-3), "ready"),  # no change today: ready all day so far
        StateChange("2101", at(1), "ready"), StateChange("2101", at(2), "on_call"),
        StateChange("2101", at(3), "wrap_up"), StateChange("2101", at(3.5), "ready"),
        StateChange("2101", at(3.5), "paused", "lunch"),  # same instant: the later row wins
        StateChange("2101", at(4), "logged_out"), StateChange("2104", at(2), "ready"),
        StateChange("2101", at(30), "ready"),  # tomorrow
    ])
    lines = {line.agent_id: line for line in in_tx(sessions, agent_time_report, start=at(0), end=at(24), now=at(6))}
    assert set(lines) == {"2101", "2103", "2104"}
    first = lines["2101"]
    assert first.paused_by_reason == {"meeting": 3600, "lunch": 1800}
    assert (first.ready, first.on_call, first.wrap_up, first.logged_in) == (3600, 3600, 1800, 4 * 3600)
    assert lines["2103"].ready == 6 * 3600 and lines["2103"].first_logged_in == at(0)
    assert lines["2104"].ready == 4 * 3600 and lines["2104"].last_logged_in == at(6)
    # yesterday, over: counted to its end, not to now; 2102's ready is still out of the look-back
    yesterday = {line.agent_id: line for line in in_tx(sessions, agent_time_report, start=at(-24), end=at(0), now=at(6))}
    assert set(yesterday) == {"2101", "2103"}
    assert (yesterday["2101"].paused_by_reason, yesterday["2103"].ready) == ({"meeting": 3600}, 3 * 3600)


def test_a_restart_marks_the_agents_left_logged_in_unknown(sessions: sessionmaker[Session]) -> None:
    in_tx(sessions, record_agent_states, [
        StateChange("2101", at(8), "on_call"), StateChange("2102", at(8), "logged_out"),
        StateChange("2103", at(8), "paused", "break"), StateChange("2104", at(8), "unknown"),
        StateChange("2101", at(12), "ready"),  # after the restart (written before the marker)
    ])
    assert in_tx(sessions, close_open_states, ["2101", "2102", "2103", "2104", "2105"], at(10)) == ["2101", "2103"]
    lines = {line.agent_id: line for line in in_tx(sessions, agent_time_report, start=at(0), end=at(24), now=at(13))}
    assert (lines["2101"].on_call, lines["2101"].unknown, lines["2101"].ready) == (2 * 3600, 2 * 3600, 3600)
    assert (lines["2103"].paused, lines["2103"].unknown) == (2 * 3600, 3 * 3600)
    assert set(lines) == {"2101", "2103"}
