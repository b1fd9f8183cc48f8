"""Campaign rules: the calling window in the called party's time and what follows an attempt."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from callcenter.dialer.campaign import (
    CallingHours,
    Campaign,
    LeadState,
    RetryPolicy,
    callable_at,
    decide_after_attempt,
    next_callable_at,
    zone,
)

SHANGHAI = zone("Asia/Shanghai")
NEW_YORK = zone("America/New_York")


def test_window_is_in_the_called_partys_local_time() -> None:
    """08:00-21:00 applies in the lead's zone: 13:00 UTC is 21:00 in Shanghai, 08:00 in New York."""
    hours = CallingHours()
    at = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    assert not callable_at(hours, SHANGHAI, at)  # end is exclusive
    assert callable_at(hours, NEW_YORK, at)  # start is inclusive
    assert callable_at(hours, SHANGHAI, at - timedelta(minutes=1))


def test_next_callable_is_the_next_window_start() -> None:
    """Out of hours, the next call may go at the next local 08:00 (today before it, tomorrow after it)."""
    hours = CallingHours(time(9, 0), time(20, 0))
    late = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai
    assert next_callable_at(hours, SHANGHAI, late) == datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    early = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    assert next_callable_at(hours, SHANGHAI, early) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    inside = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    assert next_callable_at(hours, SHANGHAI, inside) == inside


def test_next_callable_across_a_daylight_saving_change() -> None:
    """On the day New York's clocks go back, the window still opens at local 08:00 (13:00 UTC)."""
    hours = CallingHours()
    night = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 22:00 EDT on Oct 31
    assert next_callable_at(hours, NEW_YORK, night) == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def test_retry_policy_schedules_done_and_exhausted() -> None:
    """A retryable outcome is scheduled; a human ends the lead; the attempt cap exhausts it."""
    policy = RetryPolicy(max_attempts=2, retry_minutes={"busy": 30, "noanswer": None})
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    busy = decide_after_attempt(policy, 1, "busy", now)
    assert busy.state is LeadState.RETRY and busy.next_attempt_at == now + timedelta(minutes=30)
    assert decide_after_attempt(policy, 2, "busy", now).final == "exhausted"
    assert decide_after_attempt(policy, 1, "noanswer", now).final == "noanswer"
    assert decide_after_attempt(policy, 1, "machine", now).final == "machine"  # no rule: done
    human = decide_after_attempt(policy, 1, "human", now)
    assert human.state is LeadState.DONE and human.final == "human"


def test_abandoned_calls_wait_72_hours_by_default() -> None:
    """Ofcom: no repeat call within 72 hours of an abandoned call."""
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    decision = decide_after_attempt(RetryPolicy(), 1, "abandoned", now)
    assert decision.next_attempt_at == now + timedelta(hours=72)


def test_an_abandoned_last_call_ends_the_lead_as_abandoned_not_exhausted() -> None:
    """The attempt cap reached on an abandoned call: the person was reached, so the lead ends
    ``abandoned`` (never recycled). As ``exhausted`` it was recycled and redialed minutes
    after the dropped call, against the 72-hour rule."""
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    last = decide_after_attempt(RetryPolicy(max_attempts=3), 3, "abandoned", now)
    assert (last.state, last.final, last.next_attempt_at) == (LeadState.DONE, "abandoned", None)
    assert decide_after_attempt(RetryPolicy(max_attempts=3), 3, "noanswer", now).final == "exhausted"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"dial_mode": "robo"}, "dial_mode"),
    ({"machine_action": "beep"}, "machine_action"),
    ({"machine_action": "message"}, "machine_message"),
    ({"safe_harbor_message": ""}, "safe_harbor_message"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"name": "two words"}, "name"),
])
def test_invalid_campaign_names_the_field(kwargs: dict[str, str], field: str) -> None:
    """Each invalid campaign setting is refused with the field named."""
    with pytest.raises(ValueError, match=field):
        Campaign(name=kwargs.pop("name", "c1"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("policy", "field"), [
    ({"max_attempts": 0}, "max_attempts"),
    ({"retry_minutes": {"ringing": 5}}, "retry.ringing"),
    ({"retry_minutes": {"human": 5}}, "retry.human"),
    ({"retry_minutes": {"busy": 0}}, "retry.busy"),
])
def test_invalid_retry_policy_names_the_field(policy: dict[str, object], field: str) -> None:
    """Retry rules with unknown outcomes, retried humans or zero delays are refused."""
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**policy)  # type: ignore[arg-type]


def test_naive_times_and_unknown_outcomes_are_refused() -> None:
    """The rules never guess a time zone, and only the six outcomes exist."""
    with pytest.raises(ValueError, match="naive"):
        callable_at(CallingHours(), SHANGHAI, datetime(2026, 12, 2, 3, 0))
    with pytest.raises(ValueError, match="outcome"):
        decide_after_attempt(RetryPolicy(), 1, "voicemail", datetime(2026, 12, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="calling_hours"):
        CallingHours(time(21, 0), time(8, 0))
