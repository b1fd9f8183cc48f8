"""The abandonment guard's verdicts (pure): when a campaign must fall back to 1:1 dialing."""

from __future__ import annotations

import pytest

from callcenter.dialer.guard import GuardSettings, LedgerCounts, judge

SETTINGS = GuardSettings(limit=0.03, min_live_answers=100, resume_fraction=0.9)


def spans(today: tuple[float, float], window: tuple[float, float]) -> tuple[LedgerCounts, ...]:
    return (LedgerCounts("today", *today), LedgerCounts("30 days", *window))


def test_a_span_over_the_limit_engages_and_the_reason_names_it() -> None:
    verdict = judge(SETTINGS, False, spans((400, 14), (5000, 100)))
    assert verdict.engaged and verdict.reason == "today: 3.50% of 400 live answers > 3.00%"
    verdict = judge(SETTINGS, False, spans((400, 4), (5000, 160)))
    assert verdict.engaged and verdict.reason == "30 days: 3.20% of 5000 live answers > 3.00%"


def test_at_the_limit_is_allowed() -> None:
    assert not judge(SETTINGS, False, spans((400, 12), (5000, 150))).engaged


def test_spans_with_too_few_live_answers_are_not_judged() -> None:
    """The first abandoned call of the morning is not a breach: 1 of 20 is 5%, but 20 < 100."""
    assert not judge(SETTINGS, False, spans((20, 1), (20, 1))).engaged
    assert judge(SETTINGS, False, spans((20, 1), (120, 4))).engaged  # the window has enough
    assert not judge(SETTINGS, False, spans((0, 0), (0, 0))).engaged


def test_engaged_it_lets_go_only_under_the_resume_bound() -> None:
    """Between 2.7% and 3% an engaged guard holds (no flapping at the limit); at or under 2.7% it lets go."""
    held = judge(SETTINGS, True, spans((1000, 28), (5000, 100)))
    assert held.engaged and held.reason == "today: 2.80% of 1000 live answers still above 2.70%"
    assert not judge(SETTINGS, False, spans((1000, 28), (5000, 100))).engaged
    assert not judge(SETTINGS, True, spans((1000, 27), (5000, 100))).engaged


def test_disabled_never_engages() -> None:
    off = GuardSettings(enabled=False)
    assert not judge(off, True, spans((400, 100), (400, 100))).engaged


@pytest.mark.parametrize(("field", "value", "message"), [
    ("limit", 0.0, "limit: a share in (0, 0.1], got 0.0"),
    ("limit", 0.2, "limit: a share in (0, 0.1], got 0.2"),
    ("min_live_answers", 0, "min_live_answers: at least 1, got 0"),
    ("check_seconds", 1.0, "check_seconds: 5..3600, got 1.0"),
    ("resume_fraction", 0.0, "resume_fraction: a share in (0, 1], got 0.0"),
])
def test_settings_reject_values_naming_the_field(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=r"^" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace(".", r"\.") + "$"):
        GuardSettings(**{field: value})  # type: ignore[arg-type]


def test_rate_of_an_empty_span_is_none() -> None:
    assert LedgerCounts("today", 0, 0).rate is None
    assert LedgerCounts("today", 8, 2).rate == 0.25
