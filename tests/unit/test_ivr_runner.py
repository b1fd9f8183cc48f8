"""The IVR runner: interpreter steps performed over an AGI session (a scripted fake here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger

from callcenter.agi.codec import AgiHangupError, GetDataResult, PlaybackResult
from callcenter.agi.server import AgiSession, FastAgiFactory
from callcenter.ivr import Callback, CallFacts, Flow, Hangup, Play, Queue, load_flow
from callcenter.ivr.runner import IvrOutcome, run_flow

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
OPEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
CLOSED = dt.datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI)
T = TypeVar("T")


class FakeAgi:
    """Answers like AgiSession: GET DATA takes the scripted keys (None = timeout)."""

    def __init__(self, keys: Sequence[str | None], hang_up_after: int | None = None) -> None:
        self.keys = list(keys)
        self.commands: list[tuple[str, ...]] = []
        self.variables: dict[str, str] = {}
        self.hang_up_after = hang_up_after
        self.pressed: dict[str, str] = {}  # sound -> the key the caller presses while it plays
        self.escapes: list[str] = []  # each STREAM FILE's escape digits

    def _log(self, *command: str) -> None:
        if self.hang_up_after is not None and len(self.commands) >= self.hang_up_after:
            raise AgiHangupError(f"{command[0]}: channel hung up")
        self.commands.append(command)

    async def stream_file(self, name: str, escape_digits: str = "", offset: int | None = None,
                          timeout: float | None = None) -> PlaybackResult:
        self._log("STREAM FILE", name)
        self.escapes.append(escape_digits)
        pressed = self.pressed.pop(name, None)
        return PlaybackResult(pressed, 3000) if pressed and pressed in escape_digits else PlaybackResult(None, 8000)

    async def get_data(self, prompt: str, timeout_ms: int | None = None, max_digits: int | None = None,
                       timeout: float | None = None) -> GetDataResult:
        self._log("GET DATA", prompt, str(timeout_ms), str(max_digits))
        key = self.keys.pop(0)
        return GetDataResult("", True) if key is None else GetDataResult(key, False)

    async def set_variable(self, name: str, value: str | int, timeout: float | None = None) -> None:
        self._log("SET VARIABLE", name, str(value))
        self.variables[name] = str(value)

    async def hangup(self, channel: str | None = None, timeout: float | None = None) -> None:
        self._log("HANGUP")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (the fake answers at once)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise AssertionError("the coroutine suspended")


@pytest.fixture(scope="module")
def hotline() -> Flow:
    return load_flow(ROOT / "ivr_flows" / "hotline.yaml")


def _run(agi: FakeAgi, flow: Flow, facts: CallFacts, **kw: Any) -> IvrOutcome:
    outcome = run_sync(run_flow(agi, flow, facts, **kw))
    assert agi.keys == [], "unused scripted keys"
    return outcome


def test_vip_caller_leaves_queue_and_priority_for_the_dialplan(hotline: Flow) -> None:
    """The runner plays, collects and sets variables, then hands CC_QUEUE/PRIORITY to the dialplan."""
    agi = FakeAgi(["2", "1"])
    outcome = _run(agi, hotline, CallFacts("13912345678", OPEN, caller_known=True, vip=True))
    assert agi.commands == [
        ("STREAM FILE", "custom/hotline/welcome-zh"),
        ("GET DATA", "custom/hotline/language-zh", "4000", "1"),
        ("SET VARIABLE", "CC_LANGUAGE", "en"),
        ("STREAM FILE", "custom/hotline/welcome_vip-en"),
        ("GET DATA", "custom/hotline/main_menu-en", "5000", "1"),
        ("SET VARIABLE", "CC_TOPIC", "order_status"),
        ("STREAM FILE", "custom/hotline/order_status_info-en"),
        ("SET VARIABLE", "CHANNEL(language)", "en"),  # Asterisk's own sounds (queue announcements) in en
        ("SET VARIABLE", "CC_IVR_PATH", outcome.path_text),
        ("SET VARIABLE", "CC_QUEUE", "hotline"),
        ("SET VARIABLE", "CC_QUEUE_PRIORITY", "10"),
        ("SET VARIABLE", "CC_QUEUE_MESSAGE_PROMPT", "custom/hotline/still_busy-en"),
        ("SET VARIABLE", "CC_IVR_RESULT", "queue"),
    ]
    assert outcome.step == Queue(
        "hotline", 10, busy=Play("all_busy", "en", "custom/hotline/all_busy-en", "queue-periodic-announce"),
        message=Play("still_busy", "en", "custom/hotline/still_busy-en", "vm-intro"))
    assert outcome.path_text == ("welcome>language>language=2>set_en>hours>customer>greet_vip>"
                                 "main_menu>main_menu=1>topic_order>order_info>route>queue_vip")
    assert not outcome.caller_hung_up


@pytest.mark.parametrize("busy", [True, False])
def test_a_caller_about_to_wait_hears_how_to_leave_a_message_instead(hotline: Flow, busy: bool) -> None:
    """The queue step plays the busy prompt (press 1 for a message) only when no agent of the
    queue is free, in the caller's language, before the variables for the dialplan."""
    asked: list[str] = []

    def queue_busy(queue: str) -> bool:
        asked.append(queue)
        return busy

    agi = FakeAgi(["1", "0"])
    _run(agi, hotline, CallFacts("13912345678", OPEN), queue_busy=queue_busy)
    assert asked == ["hotline"]
    tail = agi.commands[agi.commands.index(("STREAM FILE", "custom/hotline/connecting-zh")) + 1:]
    assert tail[0] == ("STREAM FILE", "custom/hotline/all_busy-zh") if busy else tail[0][0] == "SET VARIABLE"
    assert ("SET VARIABLE", "CC_QUEUE_MESSAGE_PROMPT", "custom/hotline/still_busy-zh") in tail
    assert [c for c in tail if c[0] == "STREAM FILE"] == ([("STREAM FILE", "custom/hotline/all_busy-zh")] if busy else [])


def test_the_message_key_pressed_during_the_busy_prompt_leaves_for_a_message_at_once(hotline: Flow) -> None:
    """The busy prompt says "press 1 to leave a message": it plays with the queue's message
    key as its escape digit, and a 1 pressed during it ends the walk with CC_QUEUE_EXIT=key
    (the dialplan goes to the message, not the queue; before, the 1 was thrown away and the
    caller waited up to max_wait). Played to the end: queued as before."""
    agi = FakeAgi(["1", "0"])
    agi.pressed["custom/hotline/all_busy-zh"] = "1"
    outcome = _run(agi, hotline, CallFacts("13912345678", OPEN), queue_busy=lambda _q: True,
                   message_key=lambda queue: "1" if queue == "hotline" else None)
    assert agi.escapes[-1] == "1"
    assert agi.variables["CC_QUEUE_EXIT"] == "key" and agi.commands[-1] == ("SET VARIABLE", "CC_QUEUE_EXIT", "key")
    assert outcome.path[-3:] == ("queue_hotline", "queue_hotline:busy", "queue_hotline:key")
    waits = FakeAgi(["1", "0"])
    _run(waits, hotline, CallFacts("13912345678", OPEN), queue_busy=lambda _q: True, message_key=lambda _q: "1")
    assert "CC_QUEUE_EXIT" not in waits.variables and waits.variables["CC_IVR_RESULT"] == "queue"
    no_key = FakeAgi(["1", "0"])
    no_key.pressed["custom/hotline/all_busy-zh"] = "1"
    _run(no_key, hotline, CallFacts("13912345678", OPEN), queue_busy=lambda _q: True)
    assert no_key.escapes[-1] == "" and "CC_QUEUE_EXIT" not in no_key.variables


def test_without_rendered_prompts_both_queue_prompts_are_asterisks_own(hotline: Flow) -> None:
    """The stock sounds: queue-periodic-announce while busy, vm-intro before a message; the
    path notes the busy prompt heard (``<queue node>:busy``)."""
    agi = FakeAgi(["1", "0"])
    outcome = _run(agi, hotline, CallFacts("13912345678", OPEN), sound_exists=lambda _s: False,
                   queue_busy=lambda _q: True)
    assert ("STREAM FILE", "queue-periodic-announce") in agi.commands
    assert agi.variables["CC_QUEUE_MESSAGE_PROMPT"] == "vm-intro"
    assert outcome.path[-2:] == ("queue_hotline", "queue_hotline:busy")
    assert agi.variables["CC_IVR_PATH"] == outcome.path_text


def test_a_flow_without_queue_prompts_plays_none_and_sets_no_message_prompt(tmp_path: Path) -> None:
    text = (ROOT / "ivr_flows" / "hotline.yaml").read_text(encoding="utf-8")
    bare = "\n".join(line for line in text.splitlines()
                     if not line.startswith(("busy_prompt:", "queue_message_prompt:")))
    (tmp_path / "bare.yaml").write_text(bare, encoding="utf-8")
    agi = FakeAgi(["1", "0"])
    outcome = _run(agi, load_flow(tmp_path / "bare.yaml"), CallFacts("13912345678", OPEN), queue_busy=lambda _q: True)
    assert "CC_QUEUE_MESSAGE_PROMPT" not in agi.variables
    assert not any("busy" in c[-1] for c in agi.commands)
    assert outcome.path[-1] == "queue_hotline"


def test_callback_number_is_stored_on_the_channel(hotline: Flow) -> None:
    """A callback request sets CC_CALLBACK_NUMBER while collecting and CC_CALLBACK at the end."""
    agi = FakeAgi(["1", "4", "2", "02087654321"])
    outcome = _run(agi, hotline, CallFacts("13912345678", OPEN))
    assert ("GET DATA", "custom/hotline/callback_number-zh", "8000", "12") in agi.commands
    assert agi.variables["CC_CALLBACK_NUMBER"] == "02087654321"
    assert agi.variables["CC_CALLBACK"] == "02087654321"
    assert agi.variables["CC_IVR_RESULT"] == "callback"
    assert "CC_QUEUE" not in agi.variables
    assert outcome.step == Callback("02087654321")
    assert outcome.variables["CC_CALLBACK_NUMBER"] == "02087654321"


def test_missing_rendered_prompts_fall_back_to_stock_sounds(hotline: Flow) -> None:
    """Without rendered files the runner plays stock sounds or skips, never a missing file."""
    agi = FakeAgi([None, None, None, None, None])
    outcome = _run(agi, hotline, CallFacts("13912345678", CLOSED), sound_exists=lambda _s: False)
    assert agi.commands == [
        ("GET DATA", "silence/1", "4000", "1"),
        ("GET DATA", "silence/1", "4000", "1"),
        ("SET VARIABLE", "CC_LANGUAGE", "zh"),
        ("GET DATA", "silence/1", "5000", "1"),
        ("GET DATA", "silence/1", "5000", "1"),
        ("GET DATA", "silence/1", "5000", "1"),
        ("STREAM FILE", "vm-goodbye"),
        ("SET VARIABLE", "CHANNEL(language)", "zh"),
        ("SET VARIABLE", "CC_IVR_PATH", outcome.path_text),
        ("SET VARIABLE", "CC_IVR_RESULT", "hangup"),
        ("HANGUP",),
    ]
    assert outcome.step == Hangup()
    assert outcome.path[-1] == "goodbye"


def test_caller_hangup_ends_the_walk_with_its_path(hotline: Flow) -> None:
    """A hangup during the main menu returns the path so far and sets nothing more."""
    agi = FakeAgi(["1"], hang_up_after=3)
    outcome = _run(agi, hotline, CallFacts("13912345678", OPEN))
    assert outcome.caller_hung_up
    assert outcome.step is None
    assert outcome.path[-1] == "main_menu"
    assert "CC_IVR_RESULT" not in agi.variables


def test_survey_entry_stores_the_csat_score(hotline: Flow) -> None:
    """The survey entry sets CC_CSAT from a valid key after refusing an invalid one, then hangs up."""
    agi = FakeAgi(["9", "4"])
    outcome = _run(agi, hotline, CallFacts("13912345678", OPEN, variables={"CC_LANGUAGE": "en"}),
                   entry="survey")
    assert agi.commands[:4] == [
        ("GET DATA", "custom/hotline/survey-en", "6000", "1"),
        ("STREAM FILE", "custom/hotline/survey_invalid-en"),
        ("GET DATA", "custom/hotline/survey-en", "6000", "1"),
        ("SET VARIABLE", "CC_CSAT", "4"),
    ]
    assert agi.commands[-1] == ("HANGUP",)
    assert outcome.step == Hangup()


def test_runner_over_the_real_fastagi_session(hotline: Flow) -> None:
    """On the real AgiSession the runner writes the AGI commands and waits for each reply."""
    outcomes: list[IvrOutcome] = []

    async def survey(agi: AgiSession) -> None:
        outcomes.append(await run_flow(agi, hotline, CallFacts(agi.env.callerid or "", OPEN), entry="survey"))

    factory = FastAgiFactory({"hotline-survey": survey}, Clock(), log=Logger(observer=lambda _e: None))
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(b"agi_network: yes\nagi_network_script: hotline-survey\n"
                          b"agi_uniqueid: 1700000000.1\nagi_callerid: 13912345678\n\n")
    wire: list[bytes] = []
    for reply in (b"200 result=5\n", b"200 result=1\n", b"200 result=0 endpos=8000\n",
                  b"200 result=1\n", b"200 result=1\n", b"200 result=1\n", b"200 result=1\n"):
        wire.append(transport.value())
        transport.clear()
        protocol.dataReceived(reply)
    assert wire == [
        b"GET DATA custom/hotline/survey-zh 6000 1\n",
        b"SET VARIABLE CC_CSAT 5\n",
        b'STREAM FILE custom/hotline/survey_thanks-zh ""\n',
        b"SET VARIABLE CHANNEL(language) zh\n",
        b"SET VARIABLE CC_IVR_PATH survey>survey=5>survey_thanks\n",
        b"SET VARIABLE CC_IVR_RESULT hangup\n",
        b"HANGUP\n",
    ]
    assert [o.step for o in outcomes] == [Hangup()]
    assert transport.disconnecting
