"""The sans-IO IVR interpreter walking the shipped hotline flow (ivr_flows/hotline.yaml)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.ivr import (
    Callback,
    CallFacts,
    Collect,
    DigitsEntered,
    Flow,
    Hangup,
    Interpreter,
    InterpreterError,
    Play,
    Queue,
    SetVariable,
    Step,
    Voicemail,
    load_flow,
)

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
MONDAY_10PM = dt.datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI)
NATIONAL_DAY_10AM = dt.datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def hotline() -> Flow:
    return load_flow(ROOT / "ivr_flows" / "hotline.yaml", "ivr_flows/hotline.yaml")


def facts(now: dt.datetime = MONDAY_10AM, *, caller_known: bool = False, vip: bool = False,
          language: str | None = None) -> CallFacts:
    variables = {"CC_LANGUAGE": language} if language else {}
    return CallFacts("13912345678", now, caller_known=caller_known, vip=vip, variables=variables)


def walk(interpreter: Interpreter, keys: Sequence[str | None]) -> list[Step]:
    """Drive the interpreter: every Collect takes the next key (None = timeout)."""
    pending = list(keys)
    steps = [interpreter.start()]
    while not interpreter.finished:
        step = steps[-1]
        if isinstance(step, Collect):
            key = pending.pop(0)
            result = DigitsEntered("", True) if key is None else DigitsEntered(key, False)
            steps.append(interpreter.resume(result))
        else:
            steps.append(interpreter.resume())
    assert pending == [], f"unused input {pending}"
    return steps


def queued(priority: int, language: str = "zh") -> Queue:
    """The hotline queue step: the flow's busy and queue-message prompts in the caller's language."""
    return Queue("hotline", priority,
                 busy=Play("all_busy", language, f"custom/hotline/all_busy-{language}", "queue-periodic-announce"),
                 message=Play("still_busy", language, f"custom/hotline/still_busy-{language}", "vm-intro"))


def prompts(steps: Sequence[Step]) -> list[str]:
    return [s.prompt for s in steps if isinstance(s, (Play, Collect))]


def test_known_vip_is_greeted_and_queued_first(hotline: Flow) -> None:
    """A VIP caller hears the VIP greeting in the chosen language and queues at priority 10."""
    interp = Interpreter(hotline, facts(caller_known=True, vip=True))
    steps = walk(interp, ["2", "2"])
    assert steps[-1] == queued(10, "en")  # the busy and message prompts in English too
    assert Play("welcome_vip", "en", "custom/hotline/welcome_vip-en", None) in steps
    assert SetVariable("CC_LANGUAGE", "en") in steps
    assert SetVariable("CC_TOPIC", "after_sales") in steps
    assert interp.path == ("welcome", "language", "language=2", "set_en", "hours", "customer",
                           "greet_vip", "main_menu", "main_menu=2", "topic_after_sales",
                           "connecting", "route", "queue_vip")


def test_known_caller_greeted_unknown_not_and_complaints_rank_above_others(hotline: Flow) -> None:
    """Known callers hear 'welcome back'; complaints queue at 5, other topics at 0."""
    known = walk(Interpreter(hotline, facts(caller_known=True)), ["1", "3"])
    assert "welcome_back" in prompts(known)
    assert known[-1] == queued(5)
    stranger = walk(Interpreter(hotline, facts()), ["1", "1"])
    assert "welcome_back" not in prompts(stranger)
    assert "welcome_vip" not in prompts(stranger)
    assert "order_status_info" in prompts(stranger)
    assert stranger[-1] == queued(0)
    assert all(s.language == "zh" for s in stranger if isinstance(s, (Play, Collect)))


def test_after_hours_offers_voicemail(hotline: Flow) -> None:
    """Outside business hours the caller hears the closed notice and can leave a message."""
    interp = Interpreter(hotline, facts(MONDAY_10PM, vip=True))
    steps = walk(interp, ["1", "2"])
    assert prompts(steps) == ["welcome", "language", "closed", "after_hours_menu", "voicemail_intro"]
    assert steps[-1] == Voicemail("400@hotline")


def test_holiday_branch_takes_a_callback_on_the_caller_id(hotline: Flow) -> None:
    """On a holiday in opening hours the holiday notice plays and callback uses the caller id."""
    steps = walk(Interpreter(hotline, facts(NATIONAL_DAY_10AM)), ["1", "1", "1"])
    assert "holiday" in prompts(steps)
    assert "closed" not in prompts(steps)
    assert steps[-1] == Callback("13912345678")


# every day of the 2026 breaks of the State Council's notice of 2025-11-04, and its make-up working days
BREAKS_2026 = [(1, 1, 3), (2, 15, 23), (4, 4, 6), (5, 1, 5), (6, 19, 21), (9, 25, 27), (10, 1, 7)]
MAKE_UP_DAYS_2026 = [(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)]


def test_every_day_of_the_2026_breaks_is_a_holiday_and_make_up_days_keep_weekday_hours(hotline: Flow) -> None:
    """The shipped flow: the hotline says it is a holiday on every day of a break (before, 16
    of them, weekdays among them, ran as normal days with nobody to answer), and a weekend
    day worked in exchange keeps a weekday's hours (open at 20:00, when a Saturday is closed)."""
    for month, first, last in BREAKS_2026:
        for day in range(first, last + 1):
            steps = walk(Interpreter(hotline, facts(dt.datetime(2026, month, day, 10, 0, tzinfo=SHANGHAI))),
                         ["1", "1", "1"])
            assert "holiday" in prompts(steps), (month, day)
    for month, day in MAKE_UP_DAYS_2026:
        evening = dt.datetime(2026, month, day, 20, 0, tzinfo=SHANGHAI)
        assert evening.weekday() >= 5 and hotline.open_at(evening), (month, day)
        steps = walk(Interpreter(hotline, facts(evening)), ["1", "0"])
        assert "closed" not in prompts(steps) and "holiday" not in prompts(steps), (month, day)
        assert steps[-1] == queued(0), (month, day)
    saturday_evening = dt.datetime(2026, 11, 28, 20, 0, tzinfo=SHANGHAI)
    assert not hotline.open_at(saturday_evening)


@pytest.mark.parametrize("withheld", ["anonymous", ""])
def test_a_withheld_caller_is_asked_for_a_number_and_never_promised_a_call_back_without_one(
        hotline: Flow, withheld: str) -> None:
    """After hours, a caller whose number is withheld asks for a call back on "this number":
    they are asked to key one in (before, they heard "your call back request is recorded"
    and nobody could ever call them). Keying nothing in, they hear that there is no number
    to call, not the confirmation."""
    after_hours = CallFacts(withheld, MONDAY_10PM)
    steps = walk(Interpreter(hotline, after_hours), ["1", "1", "1", "13912340000"])
    assert prompts(steps)[-2:] == ["callback_number", "callback_ok"]
    assert steps[-1] == Callback("13912340000")
    steps = walk(Interpreter(hotline, after_hours), ["1", "1", "1", None, None, None])
    assert "callback_ok" not in prompts(steps) and prompts(steps)[-1] == "callback_no_number"
    assert not any(isinstance(step, Callback) for step in steps)
    shown = walk(Interpreter(hotline, facts(MONDAY_10PM)), ["1", "1", "1"])  # a number to call: as before
    assert steps and shown[-1] == Callback("13912345678") and "callback_number" not in prompts(shown)


def test_invalid_and_timeouts_retry_then_take_the_flow_fallback(hotline: Flow) -> None:
    """Three failed main-menu attempts (retries: 2) go to the flow's fallback (an agent)."""
    interp = Interpreter(hotline, facts())
    steps = walk(interp, ["1", "7", None, "#"])
    assert prompts(steps) == ["welcome", "language", "main_menu", "invalid", "main_menu", "no_input",
                              "main_menu", "connecting"]
    assert steps[-1] == queued(0)
    assert interp.path[7:] == ("main_menu:invalid", "main_menu:timeout", "main_menu:invalid",
                               "topic_agent", "connecting", "route", "queue_hotline")


def test_a_valid_choice_after_a_retry_is_taken(hotline: Flow) -> None:
    """A wrong key, then a right one: the menu goes on with the right one."""
    steps = walk(Interpreter(hotline, facts()), ["1", "9", "3"])
    assert steps[-1] == queued(5)


def test_language_menu_defaults_to_mandarin_on_silence(hotline: Flow) -> None:
    """No key at the language menu (twice) continues in Mandarin."""
    interp = Interpreter(hotline, facts())
    steps = walk(interp, [None, None, "0"])
    assert SetVariable("CC_LANGUAGE", "zh") in steps
    assert interp.language == "zh"
    assert steps[-1] == queued(0)


def test_callback_stores_the_number_entered(hotline: Flow) -> None:
    """A callback to another number: a bad number is refused, the good one is stored and returned."""
    interp = Interpreter(hotline, facts())
    steps = walk(interp, ["2", "4", "2", "123", "13800138000"])
    assert SetVariable("CC_CALLBACK_NUMBER", "13800138000") in steps
    assert "invalid" in prompts(steps)
    assert prompts(steps)[-1] == "callback_ok"
    assert steps[-1] == Callback("13800138000")
    assert interp.variables["CC_CALLBACK_NUMBER"] == "13800138000"


@pytest.mark.parametrize("score", ["1", "3", "5"])
def test_csat_survey_accepts_1_to_5(hotline: Flow, score: str) -> None:
    """The post-call survey stores a score of 1-5 and thanks the caller."""
    interp = Interpreter(hotline, facts(language="en"), entry="survey")
    steps = walk(interp, [score])
    assert steps[0] == Collect("survey", "en", "custom/hotline/survey-en", None, 1, 6)
    assert steps[1:] == [SetVariable("CC_CSAT", score),
                         Play("survey_thanks", "en", "custom/hotline/survey_thanks-en", None), Hangup()]


def test_csat_survey_rejects_other_keys_then_gives_up(hotline: Flow) -> None:
    """0, 6 and 55 are refused with the survey's own prompt; after the retries no score is stored."""
    interp = Interpreter(hotline, facts(), entry="survey")
    steps = walk(interp, ["0", "6", "55"])
    assert prompts(steps) == ["survey", "survey_invalid", "survey", "survey_invalid", "survey"]
    assert steps[-1] == Hangup()
    assert "CC_CSAT" not in interp.variables
    assert not any(isinstance(s, SetVariable) for s in steps)


def test_interpreter_refuses_misuse(hotline: Flow) -> None:
    """Naive times, unknown entries, wrong resume values and resuming a finished walk raise."""
    with pytest.raises(ValueError, match="timezone-aware"):
        Interpreter(hotline, CallFacts("1", dt.datetime(2026, 1, 1, 10, 0)))
    with pytest.raises(ValueError, match="no entry 'nope'"):
        Interpreter(hotline, facts(), entry="nope")
    interp = Interpreter(hotline, facts())
    with pytest.raises(InterpreterError):
        interp.resume()
    assert isinstance(interp.start(), Play)
    with pytest.raises(InterpreterError, match="needs None"):
        interp.resume(DigitsEntered("1", False))
    walk_rest = interp.resume()
    assert isinstance(walk_rest, Collect)
    with pytest.raises(InterpreterError, match="needs DigitsEntered"):
        interp.resume()
    hung = Interpreter(hotline, facts(), entry="survey")
    walk(hung, [None, None, None])
    with pytest.raises(InterpreterError, match="ended"):
        hung.resume()


def test_time_is_read_in_the_site_time_zone(hotline: Flow) -> None:
    """02:00 UTC on a Monday is 10:00 in Shanghai: open, so the main menu is offered."""
    utc = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC).astimezone(SHANGHAI)
    steps = walk(Interpreter(hotline, facts(utc)), ["1", "0"])
    assert "main_menu" in prompts(steps)
