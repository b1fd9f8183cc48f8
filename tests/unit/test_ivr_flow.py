"""IVR flow files -> frozen dataclasses; schema errors name the file, line and field."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from callcenter.ivr import FlowError, check_file, load_flow, read_flow
from callcenter.ivr.flow import (
    BranchNode,
    CollectNode,
    MenuNode,
    QueueNode,
    holidays_note,
)

ROOT = Path(__file__).resolve().parents[2]
HOTLINE = ROOT / "ivr_flows" / "hotline.yaml"

MINIMAL = """\
flow: tiny
languages: [zh, en]
entries: {main: start}
fallback: bye
prompts:
  hello: {zh: "你好", en: "Hello"}
nodes:
  start:
    kind: play
    prompt: hello
    next: bye
  bye:
    kind: hangup
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(FlowError) as info:
        read_flow(path, "flow.yaml")
    return [str(p) for p in info.value.problems]


def test_hotline_flow_loads_with_every_required_part() -> None:
    """The shipped hotline has both languages, a VIP queue, hours, holidays and a 1-5 survey."""
    flow = load_flow(HOTLINE)
    assert flow.name == "hotline"
    assert flow.languages == ("zh", "en")
    assert flow.entries == {"main": "welcome", "survey": "survey"}
    kinds = {node.kind for node in flow.nodes.values()}
    assert kinds == {"play", "menu", "collect", "branch", "set", "queue", "callback", "voicemail",
                     "message", "hangup"}
    assert {n.priority for n in flow.nodes.values() if isinstance(n, QueueNode)} == {0, 5, 10}
    survey = flow.nodes["survey"]
    assert isinstance(survey, CollectNode)
    assert [d for d in "0123456789" if survey.accepts(d)] == list("12345")
    assert not survey.accepts("55")
    assert dt.date(2026, 10, 1) in flow.holidays
    assert flow.business_hours.open_at(dt.datetime(2026, 11, 23, 8, 30))
    assert not flow.business_hours.open_at(dt.datetime(2026, 11, 23, 21, 0))
    assert flow.sound("welcome", "en") == "custom/hotline/welcome-en"
    assert flow.prompts["goodbye"].stock == "vm-goodbye"


def test_nodes_are_frozen_and_remember_their_lines() -> None:
    """Nodes cannot be changed after loading; each knows where it and its targets were written."""
    flow = load_flow(HOTLINE, "hotline.yaml")
    menu = flow.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    with pytest.raises(dataclasses.FrozenInstanceError):
        menu.retries = 5  # type: ignore[misc]
    lines = HOTLINE.read_text(encoding="utf-8").splitlines()
    assert lines[menu.location.line - 1].strip() == "main_menu:"
    assert menu.fallback == "topic_agent"
    choice = next(t for t in menu.targets if t.field == "nodes.main_menu.choices.3")
    assert lines[choice.location.line - 1].strip() == '"3": topic_complaint'
    assert isinstance(flow.nodes["route"], BranchNode)


def test_minimal_flow_defaults(tmp_path: Path) -> None:
    """Omitted optional fields take their defaults (language variable, no hours = always closed)."""
    flow = load_flow(_write(tmp_path, MINIMAL))
    assert flow.language_variable == "CC_LANGUAGE"
    assert flow.default_language == "zh"
    assert not flow.business_hours.open_at(dt.datetime(2026, 11, 23, 10, 0))
    assert flow.holidays == frozenset()


def test_schema_errors_are_all_reported_with_line_and_field(tmp_path: Path) -> None:
    """Wrong types, unknown fields and bad values are listed together, in file order."""
    text = MINIMAL.replace("languages: [zh, en]", "languages: [zh, EN]").replace(
        "    next: bye\n", "    next: bye\n    colour: red\n"
    ) + (
        "  menu:\n"
        "    kind: menu\n"
        "    prompt: hello\n"
        "    retries: -1\n"
        "    choices: {\"12\": bye}\n"
        "  ask:\n"
        "    kind: collect\n"
        "    prompt: hello\n"
        "    variable: 9x\n"
        "    min_digits: 4\n"
        "    max_digits: 2\n"
        "    pattern: \"[\"\n"
        "    next: bye\n"
    )
    assert _problems(_write(tmp_path, text)) == [
        "flow.yaml:2:17: languages[1]: expected a language code such as 'zh', got 'EN'",
        "flow.yaml:12:5: nodes.start.colour: unknown field",
        "flow.yaml:18:5: nodes.menu.retries: expected an integer in 0..9, got -1",
        "flow.yaml:19:15: nodes.menu.choices.12: expected a single key: 0-9 or *",
        "flow.yaml:23:5: nodes.ask.variable: expected a variable name, got '9x'",
        "flow.yaml:25:5: nodes.ask.max_digits: must be >= min_digits (4)",
        "flow.yaml:26:5: nodes.ask.pattern: expected a regular expression, got '['",
    ]


def test_hash_is_no_menu_choice(tmp_path: Path) -> None:
    """GET DATA reads # as the end of the input (a # pressed first comes back empty, a
    timeout to the interpreter): a menu choice '#' could never be taken, so it is refused."""
    text = MINIMAL.replace("nodes:\n", "nodes:\n  menu:\n    kind: menu\n    prompt: hello\n"
                                        "    choices: {\"#\": bye, \"*\": bye}\n", 1)
    problems = _problems(_write(tmp_path, text))
    assert [p.split(": ", 1)[1] for p in problems if "choices" in p] == [
        "nodes.menu.choices.#: '#' ends the caller's input: it cannot be a choice (use 0-9 or *)"], problems


def test_a_value_yaml_cannot_build_is_named_by_line_and_key(tmp_path: Path) -> None:
    """An unquoted impossible date is read by YAML itself (a timestamp), which fails with no
    line: the flow's error names its line and key."""
    problems = _problems(_write(tmp_path, MINIMAL + "holidays: [2026-13-01]\n"))
    assert len(problems) == 1 and problems[0].startswith("flow.yaml:14:12: holidays[0]: '2026-13-01' is not a valid date")
    assert problems[0].endswith("write it in quotes if it is text"), problems


def test_top_level_errors(tmp_path: Path) -> None:
    """Missing entries, bad holidays, bad hours and stock sounds for unknown prompts are named."""
    text = MINIMAL.replace("entries: {main: start}\n", "") + (
        "holidays: [\"2026-13-01\"]\n"
        "business_hours: {mon: \"9-18\", moon: closed}\n"
        "stock_sounds: {hi: beep}\n"
    )
    assert _problems(_write(tmp_path, text)) == [
        "flow.yaml:1:1: missing field 'entries'",
        "flow.yaml:13:12: holidays[0]: expected a date (YYYY-MM-DD), got '2026-13-01'",
        "flow.yaml:14:18: business_hours.mon: expected 'HH:MM-HH:MM', a list of them, or 'closed', got '9-18'",
        "flow.yaml:14:31: business_hours.moon: expected a weekday (mon, tue, wed, thu, fri, sat, sun)",
        "flow.yaml:15:16: stock_sounds.hi: no prompt 'hi'",
    ]


def test_yaml_errors_become_flow_errors(tmp_path: Path) -> None:
    """Invalid YAML and duplicate node ids are flow errors with their line."""
    assert _problems(_write(tmp_path, MINIMAL + "  bye:\n    kind: hangup\n")) == [
        "flow.yaml:14:3: duplicate key 'bye'"
    ]
    assert _problems(_write(tmp_path, "flow: [x\n"))[0].startswith("flow.yaml:2:1: invalid YAML")


def test_branch_conditions_are_validated(tmp_path: Path) -> None:
    """A condition with an unknown fact, a non-boolean flag or a lone 'variable' is refused."""
    text = MINIMAL + (
        "  b:\n"
        "    kind: branch\n"
        "    cases:\n"
        "      - when: {weather: sunny}\n"
        "        next: bye\n"
        "      - when: {vip: yes please}\n"
        "        next: bye\n"
        "      - when: {variable: CC_X}\n"
        "        next: bye\n"
        "    default: bye\n"
    )
    assert _problems(_write(tmp_path, text)) == [
        "flow.yaml:17:16: nodes.b.cases[0].when.weather: unknown field",
        "flow.yaml:19:16: nodes.b.cases[1].when.vip: expected true or false, got 'yes please'",
        "flow.yaml:21:9: nodes.b.cases[2].when: 'variable' and 'equals' go together",
    ]


QUEUED = """\
flow: tiny
languages: [zh, en]
entries: {main: sales, vip: vip, end: bye}
fallback: bye
busy_prompt: busy
queue_message_prompt: sorry
prompts:
  busy: {zh: "忙", en: "Busy"}
  sorry: {zh: "抱歉", en: "Sorry"}
  vip_busy: {zh: "贵宾", en: "VIP"}
nodes:
  sales:
    kind: queue
    queue: hotline
  vip:
    kind: queue
    queue: hotline
    priority: 10
    busy_prompt: vip_busy
  bye:
    kind: hangup
"""


def test_queue_prompts_are_the_flows_unless_a_queue_node_names_its_own(tmp_path: Path) -> None:
    """``busy_prompt`` and ``queue_message_prompt``: flow-level defaults, per queue node overrides."""
    flow = read_flow(_write(tmp_path, QUEUED), "flow.yaml")
    assert (flow.busy_prompt, flow.queue_message_prompt) == ("busy", "sorry")
    sales, vip = flow.nodes["sales"], flow.nodes["vip"]
    assert isinstance(sales, QueueNode) and isinstance(vip, QueueNode)
    assert (sales.busy_prompt, sales.queue_message_prompt) == (None, None)
    assert (vip.busy_prompt, vip.queue_message_prompt) == ("vip_busy", None)
    assert [ref.prompt for ref in vip.prompt_refs] == ["vip_busy"]


def test_queue_prompts_naming_no_prompt_are_reported_with_their_line(tmp_path: Path) -> None:
    text = QUEUED.replace("busy_prompt: busy\n", "busy_prompt: bsy\n").replace(
        "    busy_prompt: vip_busy\n", "    busy_prompt: vip_bsy\n    queue_message_prompt: 7\n")
    assert _problems(_write(tmp_path, text)) == [
        "flow.yaml:20:5: nodes.vip.queue_message_prompt: expected a prompt name, got 7",
    ]
    text = text.replace("    queue_message_prompt: 7\n", "")
    assert [str(p) for p in check_file(_write(tmp_path, text), "flow.yaml")] == [
        "flow.yaml:1:1: busy_prompt: missing prompt 'bsy'",
        "flow.yaml:19:5: nodes.vip.busy_prompt: missing prompt 'vip_bsy'",
    ]


def test_make_up_working_days_keep_a_weekdays_hours_and_bad_ones_are_named(tmp_path: Path) -> None:
    """``workdays``: a weekend day worked in exchange for a holiday opens with the hours of
    the weekday named; a bad entry is refused naming its line and field."""
    text = MINIMAL + ('business_hours: {mon: "08:30-21:00", sat: "09:00-18:00"}\n'
                      "holidays: [2026-02-16]\n"
                      "workdays:\n  - {date: 2026-02-14, hours_of: mon}\n")
    flow = load_flow(_write(tmp_path, text), "flow.yaml")
    assert flow.open_at(dt.datetime(2026, 2, 14, 20, 0)) and not flow.open_at(dt.datetime(2026, 2, 21, 20, 0))
    assert not flow.open_at(dt.datetime(2026, 2, 16, 10, 0))  # the holiday
    bad = MINIMAL + ("holidays: [2026-02-16]\n"
                     "workdays:\n  - {date: 2026-02-14, hours_of: monday}\n  - {date: 2026-02-16, hours_of: mon}\n"
                     "  - {day: 2026-02-28}\n")
    problems = _problems(_write(tmp_path, bad))
    assert any("workdays[0].hours_of: expected the weekday whose hours it keeps (mon, tue" in p for p in problems)
    assert any("workdays[1].date: 2026-02-16 is also listed under holidays" in p for p in problems)
    assert any("workdays[2]" in p and "day" in p for p in problems), problems
    assert all(p.startswith("flow.yaml:") for p in problems), problems


def test_a_holiday_list_running_out_is_noted(tmp_path: Path) -> None:
    """Past the last holiday listed a public holiday is a working day to the hotline: within
    60 days of it (or after it) ops get a note naming the file and the date; a flow without
    holidays (open all year) gets none."""
    flow = load_flow(_write(tmp_path, MINIMAL + "holidays: [2026-10-01, 2027-01-01]\n"), "flow.yaml")
    assert flow.holidays_left(dt.date(2026, 12, 7)) == 25
    assert holidays_note(flow, dt.date(2026, 11, 2)) is None  # 60 days ahead
    assert holidays_note(flow, dt.date(2026, 11, 3)) == (
        "flow.yaml: holidays: the last one listed is 2027-01-01, 59 days from today: list the coming "
        "public holidays, or on them the hotline takes calls as on any working day")
    assert "2027-01-01, 0 days from today" in str(holidays_note(flow, dt.date(2027, 1, 1)))
    assert "2027-01-01, 31 days ago" in str(holidays_note(flow, dt.date(2027, 2, 1)))
    assert holidays_note(flow, dt.date(2026, 12, 7), within_days=20) is None
    open_all_year = load_flow(_write(tmp_path, MINIMAL), "flow.yaml")
    assert open_all_year.holidays_left(dt.date(2026, 12, 7)) is None
    assert holidays_note(open_all_year, dt.date(2030, 1, 1)) is None
