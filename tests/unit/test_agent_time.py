"""Where an agent's time went (callcenter.agent_time, pure): states summed within the period,
the state a period opens in, pauses by reason, the daemon's gaps apart, occupancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.agent_time import StateChange, agent_time, occupancy

DAY = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def change(agent: str, hours: float, state: str, reason: str | None = None) -> StateChange:
    return StateChange(agent, at(hours), state, reason)


def test_a_shift_adds_up_state_by_state() -> None:
    """Logged in 08:00-17:00: ready, a call, wrap-up, lunch, a call, a short break, logged out."""
    changes = [
        change("2101", 8.0, "ready"), change("2101", 8.5, "ringing"), change("2101", 8.5 + 10 / 3600, "on_call"),
        change("2101", 9.0, "wrap_up"), change("2101", 9.25, "ready"), change("2101", 12.0, "paused", "lunch"),
        change("2101", 13.0, "ready"), change("2101", 14.0, "on_call"), change("2101", 15.0, "paused", "break"),
        change("2101", 15.25, "paused", "lunch"), change("2101", 15.5, "ready"), change("2101", 17.0, "logged_out"),
    ]
    [line] = agent_time(changes, at(0), at(24))
    assert line.agent_id == "2101"
    assert line.ringing == 10
    assert line.on_call == pytest.approx(0.5 * 3600 - 10 + 3600)
    assert line.wrap_up == 0.25 * 3600
    assert line.paused == 1.5 * 3600 and line.paused_by_reason == {"lunch": 1.25 * 3600, "break": 0.25 * 3600}
    assert line.ready == pytest.approx((0.5 + 2.75 + 1 + 1.5) * 3600)
    assert line.logged_in == pytest.approx(9 * 3600)
    assert (line.first_logged_in, line.last_logged_in) == (at(8), at(17))
    assert line.occupancy == pytest.approx((1.75 * 3600 - 10) / (7.5 * 3600))  # handling / (ready + ringing + handling)
    assert line.unknown == 0


def test_the_period_clips_and_opens_in_the_state_before_it() -> None:
    """A night shift seen from the day: the state the period opens in comes from the change
    before it; time outside the period does not count; the last state runs to the end given."""
    changes = [change("2102", -2.0, "ready"), change("2102", -1.0, "on_call"), change("2102", 1.0, "ready"),
               change("2102", 3.0, "logged_out"), change("2103", 10.0, "paused", None)]
    lines = agent_time(changes, at(0), at(12))
    assert [line.agent_id for line in lines] == ["2102", "2103"]
    night, still = lines
    assert (night.on_call, night.ready, night.logged_in) == (3600, 2 * 3600, 3 * 3600)
    assert (night.first_logged_in, night.last_logged_in) == (at(0), at(3))
    assert still.paused == 2 * 3600 and still.paused_by_reason == {"-": 2 * 3600}
    assert still.occupancy is None  # never available for a call


def test_the_daemons_gaps_are_counted_apart_and_agents_never_logged_in_left_out() -> None:
    """`unknown` (the daemon stopped) is not work; an agent who only logged out is not listed."""
    changes = [change("2101", 8.0, "ready"), change("2101", 9.0, "unknown"), change("2101", 9.5, "ready"),
               change("2101", 10.0, "logged_out"), change("2104", -30.0, "logged_out"), change("2104", 5.0, "unknown")]
    [line] = agent_time(changes, at(0), at(24))
    assert (line.agent_id, line.ready, line.unknown, line.logged_in) == ("2101", 1.5 * 3600, 0.5 * 3600, 1.5 * 3600)


def test_changes_out_of_order_are_refused_not_misread() -> None:
    with pytest.raises(ValueError, match="go back in time"):
        agent_time([change("2101", 9.0, "ready"), change("2101", 8.0, "paused")], at(0), at(24))
    with pytest.raises(ValueError, match="not together"):
        agent_time([change("2101", 8.0, "ready"), change("2102", 8.0, "ready"), change("2101", 9.0, "paused")],
                   at(0), at(24))
    with pytest.raises(ValueError, match="before start"):
        agent_time([], at(2), at(1))
    with pytest.raises(ValueError, match="state: expected one of"):
        change("2101", 8.0, "lunch")
    with pytest.raises(ValueError, match="aware"):
        StateChange("2101", datetime(2026, 12, 6), "ready")


def test_occupancy() -> None:
    assert occupancy(30, 90) == 0.75 and occupancy(0, 0) is None and occupancy(10, 0) == 0
