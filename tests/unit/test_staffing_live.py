"""LiveStaffingAdvisor: sliding-window rate and AHT, and the agents they need, clock-free."""

from __future__ import annotations

import math

import pytest

from callcenter.staffing.erlang import erlang_a_required_agents, required_agents
from callcenter.staffing.live import LiveStaffingAdvisor


def feed_steady(advisor: LiveStaffingAdvisor, start: float, end: float, every: float,
                handle: float) -> None:
    t = start
    while t < end:
        advisor.record_arrival(t)
        advisor.record_completion(t, handle)
        t += every


def test_steady_traffic_gives_rate_aht_and_erlang_c_agents() -> None:
    """40 calls in a 600 s window at 180 s AHT: 12 Erlangs, agents as required_agents says."""
    advisor = LiveStaffingAdvisor(started_at=0.0, window_seconds=600.0, target_sl=0.8,
                                  target_seconds=20.0, shrinkage=0.3)
    feed_steady(advisor, 1001.0, 1600.0, 15.0, 180.0)
    advice = advisor.advice(1600.0)
    assert advice.arrivals == 40
    assert advice.arrival_rate == pytest.approx(40 / 600)
    assert advice.calls_per_hour == pytest.approx(240.0)
    assert advice.aht == 180.0
    assert advice.traffic == pytest.approx(12.0)
    req = required_agents(40, 600.0, 180.0, 0.8, 20.0, shrinkage=0.3)
    assert (advice.agents, advice.seats) == (int(req.agents), int(req.seats))
    assert advice.service_level is not None and advice.service_level >= 0.8


def test_window_forgets_old_calls() -> None:
    """Arrivals and handle times older than the window (now - window, now] no longer count."""
    advisor = LiveStaffingAdvisor(started_at=0.0, window_seconds=300.0, default_aht=100.0)
    feed_steady(advisor, 0.0, 300.0, 10.0, 400.0)  # busy, long calls
    feed_steady(advisor, 301.0, 600.0, 60.0, 120.0)  # quiet, short calls
    advice = advisor.advice(600.0)
    assert advice.arrivals == 5
    assert advice.aht == 120.0
    assert advisor.advice(2000.0).arrivals == 0
    assert advisor.advice(2000.0).agents == 0


def test_warm_up_uses_the_time_observed_so_far() -> None:
    """Two minutes after start, 10 calls mean 5 a minute, not 10 per 15-minute window."""
    advisor = LiveStaffingAdvisor(started_at=500.0, window_seconds=900.0)
    feed_steady(advisor, 500.0, 620.0, 12.0, 200.0)
    advice = advisor.advice(620.0)
    assert advice.window_seconds == 120.0
    assert advice.calls_per_hour == pytest.approx(300.0)


def test_no_completed_call_and_no_default_gives_no_agent_count() -> None:
    """Without a handle time the advisor says so rather than guessing."""
    advisor = LiveStaffingAdvisor(started_at=0.0)
    advisor.record_arrival(10.0)
    advice = advisor.advice(100.0)
    assert advice.aht is None and advice.agents is None and advice.seats is None
    assert advice.as_dict()["agents"] is None
    with_default = LiveStaffingAdvisor(started_at=0.0, default_aht=240.0)
    with_default.record_arrival(10.0)
    assert with_default.advice(100.0).agents is not None


def test_out_of_order_and_future_events() -> None:
    """Late-delivered events are placed in order; events after `now` wait their turn."""
    advisor = LiveStaffingAdvisor(started_at=0.0, window_seconds=100.0, default_aht=60.0)
    for t in (50.0, 90.0, 20.0, 150.0):
        advisor.record_arrival(t)
    advisor.record_completion(95.0, 30.0)
    advisor.record_completion(60.0, 90.0)
    advice = advisor.advice(100.0)
    assert advice.arrivals == 3 and advice.completed == 2 and advice.aht == 60.0
    assert advisor.advice(200.0).arrivals == 1


def test_erlang_a_advice_with_patience() -> None:
    """With a patience the advice comes from Erlang A and reports abandonment."""
    advisor = LiveStaffingAdvisor(started_at=0.0, window_seconds=600.0, patience=120.0,
                                  max_abandon=0.03)
    feed_steady(advisor, 0.0, 600.0, 6.0, 240.0)
    advice = advisor.advice(600.0)
    req = erlang_a_required_agents(100, 600.0, 240.0, 120.0, 0.8, 20.0, 0.03)
    assert advice.agents == int(req.agents)
    assert advice.abandon is not None and advice.abandon <= 0.03


def test_as_dict_is_json_ready_and_invalid_settings_raise() -> None:
    """ASA infinity is not leaked into JSON; nonsense settings are refused up front."""
    advisor = LiveStaffingAdvisor(started_at=0.0, default_aht=60.0)
    data = advisor.advice(10.0).as_dict()
    assert all(not (isinstance(v, float) and math.isinf(v)) for v in data.values())
    with pytest.raises(ValueError):
        LiveStaffingAdvisor(started_at=0.0, window_seconds=0.0)
    with pytest.raises(ValueError):
        LiveStaffingAdvisor(started_at=0.0, max_abandon=0.05)
    with pytest.raises(ValueError):
        advisor.record_completion(1.0, -5.0)
