"""IVR flows: YAML files -> frozen dataclasses that remember the line of every field.

A flow file (see ``ivr_flows/README.md``) holds the flow's name, its languages, the
prompt texts per language, business hours, holidays and a mapping of node id -> node.
This module owns the schema: it reads a file with :func:`read_flow`, reports every
malformed field at once as a :class:`FlowError` (file:line:column: field: message) and
returns a :class:`Flow`. The graph checks (dangling targets, unreachable nodes, missing
prompts, loops without exit) live in :mod:`callcenter.ivr.check`; use
:func:`callcenter.ivr.check.load_flow` to get a flow that passed both.

Pure: stdlib and yaml only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from callcenter.yamlsource import (
    Location,
    Locations,
    Path_,
    SourceProblem,
    YamlSourceError,
    load_yaml,
)

__all__ = [
    "FLOW_PROMPTS",
    "BranchNode",
    "BusinessHours",
    "CallbackNode",
    "Case",
    "CollectNode",
    "Condition",
    "Flow",
    "FlowError",
    "FlowProblem",
    "HangupNode",
    "MenuNode",
    "MessageNode",
    "Node",
    "PlayNode",
    "Prompt",
    "PromptRef",
    "QueueNode",
    "SetNode",
    "Target",
    "TransferNode",
    "VoicemailNode",
    "holidays_note",
    "read_flow",
]

T = TypeVar("T")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TERMINAL_KINDS = frozenset({"queue", "transfer", "callback", "voicemail", "message", "hangup"})
NODE_KINDS = frozenset({"play", "menu", "collect", "branch", "set"}) | TERMINAL_KINDS
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGITS = re.compile(r"^[0-9*#]$")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


FlowProblem = SourceProblem
"""One error in a flow file, with where it was written (the same type as a configuration error)."""


class FlowError(ValueError):
    """The flow is invalid; ``problems`` lists every error found, in file order."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.location.line, p.location.column)))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Prompt:
    """One prompt: its text per language and an optional stock Asterisk sound to fall back to."""

    name: str
    texts: Mapping[str, str]
    stock: str | None
    location: Location


@dataclass(frozen=True)
class Target:
    """A reference from one node to another (``next``, a menu choice, ``fallback``...)."""

    field: str
    node: str
    location: Location


@dataclass(frozen=True)
class PromptRef:
    """A reference from a node to a prompt."""

    field: str
    prompt: str
    location: Location


@dataclass(frozen=True)
class Condition:
    """All set facts must hold: ``caller_known``, ``caller_dialable`` (the caller id is a
    number to call back: not withheld), ``vip``, ``open`` (business hours and not a
    holiday), ``holiday``, and ``variable`` == ``equals``."""

    caller_known: bool | None = None
    caller_dialable: bool | None = None
    vip: bool | None = None
    open: bool | None = None
    holiday: bool | None = None
    variable: str | None = None
    equals: str | None = None


@dataclass(frozen=True)
class Case:
    """One branch case: when ``when`` holds, go to ``next``."""

    when: Condition
    next: str


@dataclass(frozen=True)
class _NodeBase:
    id: str
    location: Location
    targets: tuple[Target, ...] = field(repr=False)
    prompt_refs: tuple[PromptRef, ...] = field(repr=False)

    @property
    def kind(self) -> str:
        return _KIND_OF[type(self)]

    @property
    def terminal(self) -> bool:
        """True when the call leaves the IVR at this node."""
        return self.kind in TERMINAL_KINDS


@dataclass(frozen=True)
class PlayNode(_NodeBase):
    prompt: str
    next: str


@dataclass(frozen=True)
class MenuNode(_NodeBase):
    prompt: str
    choices: Mapping[str, str]
    timeout_seconds: int
    retries: int
    invalid_prompt: str | None
    timeout_prompt: str | None
    fallback: str


@dataclass(frozen=True)
class CollectNode(_NodeBase):
    prompt: str
    variable: str
    min_digits: int
    max_digits: int
    pattern: str | None
    timeout_seconds: int
    retries: int
    invalid_prompt: str | None
    timeout_prompt: str | None
    next: str
    fallback: str

    def accepts(self, digits: str) -> bool:
        """True when ``digits`` has a valid length and matches ``pattern``."""
        if not self.min_digits <= len(digits) <= self.max_digits:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, digits) is not None


@dataclass(frozen=True)
class BranchNode(_NodeBase):
    cases: tuple[Case, ...]
    default: str


@dataclass(frozen=True)
class SetNode(_NodeBase):
    variable: str
    value: str
    next: str


@dataclass(frozen=True)
class QueueNode(_NodeBase):
    queue: str
    priority: int
    busy_prompt: str | None = None
    """Played before queueing when no agent of the queue is free (the flow's by default)."""
    queue_message_prompt: str | None = None
    """Played by the dialplan when the caller leaves the queue unanswered, before the tone
    of their message (the flow's by default)."""


@dataclass(frozen=True)
class TransferNode(_NodeBase):
    target: str


@dataclass(frozen=True)
class CallbackNode(_NodeBase):
    number_variable: str | None


@dataclass(frozen=True)
class VoicemailNode(_NodeBase):
    mailbox: str


@dataclass(frozen=True)
class MessageNode(_NodeBase):
    prompt: str


@dataclass(frozen=True)
class HangupNode(_NodeBase):
    pass


N = TypeVar("N", bound=_NodeBase)

Node = (
    PlayNode | MenuNode | CollectNode | BranchNode | SetNode | QueueNode | TransferNode
    | CallbackNode | VoicemailNode | MessageNode | HangupNode
)

_KIND_OF: dict[type, str] = {
    PlayNode: "play", MenuNode: "menu", CollectNode: "collect", BranchNode: "branch",
    SetNode: "set", QueueNode: "queue", TransferNode: "transfer", CallbackNode: "callback",
    VoicemailNode: "voicemail", MessageNode: "message", HangupNode: "hangup",
}


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours per weekday (0 = Monday) as (start, end) minute ranges."""

    ranges: Mapping[int, tuple[tuple[int, int], ...]]

    def open_at(self, when: dt.datetime, weekday: int | None = None) -> bool:
        """True when ``when`` (local time) falls in an opening range of its weekday (or of
        ``weekday``: a make-up working day keeps the hours of the weekday it stands for)."""
        minute = when.hour * 60 + when.minute
        day = when.weekday() if weekday is None else weekday
        return any(start <= minute < end for start, end in self.ranges.get(day, ()))


@dataclass(frozen=True)
class Flow:
    """One IVR flow as loaded from its file."""

    name: str
    file: str
    location: Location
    languages: tuple[str, ...]
    language_variable: str
    entries: Mapping[str, str]
    entry_locations: Mapping[str, Location]
    fallback: str
    fallback_location: Location
    invalid_prompt: str | None
    timeout_prompt: str | None
    business_hours: BusinessHours
    holidays: frozenset[dt.date]
    prompts: Mapping[str, Prompt]
    nodes: Mapping[str, Node]
    workdays: Mapping[dt.date, int] = field(default_factory=dict)
    """Make-up working days (China's 调休: a weekend day worked in exchange for a holiday)
    -> the weekday (0 = Monday) whose hours they keep."""
    busy_prompt: str | None = None
    """The queue nodes' ``busy_prompt`` unless they name their own."""
    queue_message_prompt: str | None = None
    """The queue nodes' ``queue_message_prompt`` unless they name their own."""

    @property
    def default_language(self) -> str:
        """The first language listed: the one used until the caller chooses."""
        return self.languages[0]

    def sound(self, prompt: str, language: str) -> str:
        """The audio file (without extension) of ``prompt`` in ``language``."""
        return f"custom/{self.name}/{prompt}-{language}"

    def open_at(self, when: dt.datetime) -> bool:
        """Open at ``when`` (local time): not a holiday, and within the hours of its weekday
        (a make-up working day's: those of the weekday it stands for)."""
        day = when.date()
        return day not in self.holidays and self.business_hours.open_at(when, self.workdays.get(day))

    def holidays_left(self, today: dt.date) -> int | None:
        """Days from ``today`` to the last holiday listed (below 0 when all are past); None
        when the flow lists none (a line open every day of the year)."""
        return (max(self.holidays) - today).days if self.holidays else None


#: Days ahead under which the holiday list is said to run out (China's State Council
#: publishes the coming year's holidays in the autumn).
HOLIDAY_NOTICE_DAYS = 60


def holidays_note(flow: Flow, today: dt.date, within_days: int = HOLIDAY_NOTICE_DAYS) -> str | None:
    """A word for ops when the flow's holiday list runs out within ``within_days`` of
    ``today`` (or has run out): past it, a public holiday is a working day to the hotline,
    and its callers hear the menus and wait for agents who are not there, instead of the
    holiday notice. None when the list reaches further, or is empty (open all year)."""
    left = flow.holidays_left(today)
    if left is None or left >= within_days:
        return None
    last = max(flow.holidays)
    when = f"{left} days from today" if left >= 0 else f"{-left} days ago"
    return (f"{flow.file}: holidays: the last one listed is {last}, {when}: list the coming public "
            "holidays, or on them the hotline takes calls as on any working day")


# --------------------------------------------------------------------------- reading


class _Reader:
    """Collects problems while picking typed fields out of plain YAML data."""

    def __init__(self, locs: Locations) -> None:
        self.locs = locs
        self.problems: list[FlowProblem] = []

    def loc(self, path: Path_) -> Location:
        return self.locs.find(path)

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(FlowProblem(self.loc(path), _dotted(path), message))

    def mapping(self, data: Any, path: Path_) -> dict[str, Any]:
        if isinstance(data, dict):
            return data
        self.error(path, f"expected a mapping, got {_shown(data)}")
        return {}

    def get(self, data: Mapping[str, Any], path: Path_, key: str, convert: Callable[[Any], T],
            expected: str, default: T | None = None, required: bool = True) -> T | None:
        if key not in data:
            if required and default is None:
                self.error(path, f"missing field {key!r}")
            return default
        value = data[key]
        try:
            return convert(value)
        except (TypeError, ValueError):
            self.error((*path, key), f"expected {expected}, got {_shown(value)}")
            return default

    def unknown(self, data: Mapping[str, Any], path: Path_, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                self.error((*path, key), "unknown field")


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _shown(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _text(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError(value)


def _name(value: Any) -> str:
    if isinstance(value, str) and _NAME.match(value):
        return value
    raise ValueError(value)


def _variable(value: Any) -> str:
    if isinstance(value, str) and _VARIABLE.match(value):
        return value
    raise ValueError(value)


def _scalar(value: Any) -> str:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(value)


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise ValueError(value)

    return convert


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(value)


def _pattern(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(value) from exc
    return value


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    raise ValueError(value)


def _ranges(value: Any) -> tuple[tuple[int, int], ...]:
    if value == "closed":
        return ()
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        match = _RANGE.match(item) if isinstance(item, str) else None
        if match is None:
            raise ValueError(value)
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if not start < end <= 24 * 60:
            raise ValueError(value)
        result.append((start, end))
    return tuple(result)


#: The flow-level prompts (defaults of the nodes' fields of the same names).
FLOW_PROMPTS = ("invalid_prompt", "timeout_prompt", "busy_prompt", "queue_message_prompt")

_COMMON = {"kind"}
_RETRYING = {"prompt", "timeout_seconds", "retries", "invalid_prompt", "timeout_prompt", "fallback"}
_FIELDS: dict[str, set[str]] = {
    "play": {"prompt", "next"},
    "menu": {"choices"} | _RETRYING,
    "collect": {"variable", "min_digits", "max_digits", "pattern", "next"} | _RETRYING,
    "branch": {"cases", "default"},
    "set": {"variable", "value", "next"},
    "queue": {"queue", "priority", "busy_prompt", "queue_message_prompt"},
    "transfer": {"target"},
    "callback": {"number_variable"},
    "voicemail": {"mailbox"},
    "message": {"prompt"},
    "hangup": set(),
}


class _NodeReader:
    """Reads one node, recording its targets and prompt references with their lines."""

    def __init__(self, reader: _Reader, node_id: str, data: Mapping[str, Any], flow_fallback: str) -> None:
        self.r = reader
        self.id = node_id
        self.data = data
        self.path: Path_ = ("nodes", node_id)
        self.targets: list[Target] = []
        self.prompts: list[PromptRef] = []
        self.flow_fallback = flow_fallback

    def target(self, key: str, data: Mapping[str, Any] | None = None, path: Path_ | None = None) -> str:
        data = self.data if data is None else data
        path = self.path if path is None else path
        value = self.r.get(data, path, key, _name, "a node id") or ""
        if value:
            self.targets.append(Target(_dotted((*path, key)), value, self.r.loc((*path, key))))
        return value

    def prompt(self, key: str, required: bool = True) -> str | None:
        value = self.r.get(self.data, self.path, key, _name, "a prompt name", required=required)
        if value:
            self.prompts.append(PromptRef(_dotted((*self.path, key)), value, self.r.loc((*self.path, key))))
        return value

    def int_field(self, key: str, low: int, high: int, default: int) -> int:
        value = self.r.get(self.data, self.path, key, _int_in(low, high), f"an integer in {low}..{high}", default)
        return default if value is None else value

    def fallback(self) -> str:
        if "fallback" in self.data:
            return self.target("fallback")
        if self.flow_fallback:
            self.targets.append(Target(_dotted((*self.path, "fallback")), self.flow_fallback, self.r.loc(self.path)))
        return self.flow_fallback

    def base(self) -> dict[str, Any]:
        return {"id": self.id, "location": self.r.loc(self.path)}

    def finish(self, cls: type[N], **fields: Any) -> N:
        return cls(**self.base(), targets=tuple(self.targets), prompt_refs=tuple(self.prompts), **fields)

    def read(self, kind: str) -> Node:
        p, d = self.path, self.data
        if kind == "play":
            return self.finish(PlayNode, prompt=self.prompt("prompt") or "", next=self.target("next"))
        if kind in ("menu", "collect"):
            return self._read_retrying(kind)
        if kind == "branch":
            return self._read_branch()
        if kind == "set":
            return self.finish(
                SetNode,
                variable=self.r.get(d, p, "variable", _variable, "a variable name") or "",
                value=self.r.get(d, p, "value", _scalar, "a string or number") or "",
                next=self.target("next"),
            )
        if kind == "queue":
            return self.finish(
                QueueNode,
                queue=self.r.get(d, p, "queue", _name, "a queue name") or "",
                priority=self.int_field("priority", 0, 100, 0),
                busy_prompt=self.prompt("busy_prompt", required=False),
                queue_message_prompt=self.prompt("queue_message_prompt", required=False),
            )
        if kind == "transfer":
            return self.finish(TransferNode, target=self.r.get(d, p, "target", _text, "an extension or dial string") or "")
        if kind == "callback":
            number_variable = self.r.get(d, p, "number_variable", _variable, "a variable name", required=False)
            return self.finish(CallbackNode, number_variable=number_variable)
        if kind == "voicemail":
            return self.finish(VoicemailNode, mailbox=self.r.get(d, p, "mailbox", _scalar, "a mailbox such as 400@hotline") or "")
        if kind == "message":
            return self.finish(MessageNode, prompt=self.prompt("prompt") or "")
        return self.finish(HangupNode)

    def _read_retrying(self, kind: str) -> Node:
        p, d = self.path, self.data
        common = {
            "prompt": self.prompt("prompt") or "",
            "timeout_seconds": self.int_field("timeout_seconds", 1, 60, 5),
            "retries": self.int_field("retries", 0, 9, 2),
            "invalid_prompt": self.prompt("invalid_prompt", required=False),
            "timeout_prompt": self.prompt("timeout_prompt", required=False),
        }
        if kind == "menu":
            choices: dict[str, str] = {}
            raw = self.r.mapping(d.get("choices"), (*p, "choices")) if "choices" in d else {}
            if not raw:
                self.r.error((*p, "choices") if "choices" in d else p, "a menu needs at least one choice")
            for key in raw:
                if not _DIGITS.match(key):
                    self.r.error((*p, "choices", key), "expected a single key: 0-9 or *")
                elif key == "#":  # Asterisk's GET DATA reads # as the end of the input, never as a key
                    self.r.error((*p, "choices", key), "'#' ends the caller's input: it cannot be a choice "
                                                       "(use 0-9 or *)")
                choices[key] = self.target(key, raw, (*p, "choices"))
            return self.finish(MenuNode, choices=choices, fallback=self.fallback(), **common)
        min_digits = self.int_field("min_digits", 1, 32, 1)
        max_digits = self.int_field("max_digits", 1, 32, 1) if "max_digits" in d else None
        if max_digits is None:
            self.r.error(p, "missing field 'max_digits'")
            max_digits = min_digits
        elif max_digits < min_digits:
            self.r.error((*p, "max_digits"), f"must be >= min_digits ({min_digits})")
        return self.finish(
            CollectNode,
            variable=self.r.get(d, p, "variable", _variable, "a variable name") or "",
            min_digits=min_digits,
            max_digits=max_digits,
            pattern=self.r.get(d, p, "pattern", _pattern, "a regular expression", required=False),
            next=self.target("next"),
            fallback=self.fallback(),
            **common,
        )

    def _read_branch(self) -> Node:
        p = self.path
        cases: list[Case] = []
        raw_cases = self.data.get("cases")
        if not isinstance(raw_cases, list) or not raw_cases:
            self.r.error((*p, "cases") if "cases" in self.data else p, "a branch needs a non-empty list of cases")
            raw_cases = []
        for index, raw in enumerate(raw_cases):
            cp: Path_ = (*p, "cases", index)
            case = self.r.mapping(raw, cp)
            self.r.unknown(case, cp, {"when", "next"})
            when = self._condition(case.get("when"), (*cp, "when")) if "when" in case else None
            if when is None and "when" not in case:
                self.r.error(cp, "missing field 'when'")
            cases.append(Case(when or Condition(), self.target("next", case, cp)))
        return self.finish(BranchNode, cases=tuple(cases), default=self.target("default"))

    def _condition(self, raw: Any, path: Path_) -> Condition | None:
        data = self.r.mapping(raw, path)
        flags = ("caller_known", "caller_dialable", "vip", "open", "holiday")
        self.r.unknown(data, path, {*flags, "variable", "equals"})
        values = {key: self.r.get(data, path, key, _bool, "true or false", required=False) for key in flags}
        variable = self.r.get(data, path, "variable", _variable, "a variable name", required=False)
        equals = self.r.get(data, path, "equals", _scalar, "a string or number", required=False)
        if (variable is None) != (equals is None):
            self.r.error(path, "'variable' and 'equals' go together")
        if not data:
            self.r.error(path, "empty condition")
            return None
        return Condition(variable=variable, equals=equals, **values)


def _read_prompts(r: _Reader, data: Any, stock_data: Any) -> dict[str, Prompt]:
    stock: dict[str, str] = {}
    raw_stock = r.mapping(stock_data, ("stock_sounds",))
    for name in raw_stock:
        sound = r.get(raw_stock, ("stock_sounds",), name, _text, "a stock sound name such as 'vm-goodbye'")
        if sound:
            stock[name] = sound
    prompts: dict[str, Prompt] = {}
    for name, raw in r.mapping(data, ("prompts",)).items():
        path: Path_ = ("prompts", name)
        if not _NAME.match(name):
            r.error(path, "expected a prompt name (lower case, digits, _)")
        texts: dict[str, str] = {}
        for lang, text in r.mapping(raw, path).items():
            if isinstance(text, str) and text.strip():
                texts[lang] = text
            else:
                r.error((*path, lang), f"expected the prompt text, got {_shown(text)}")
        prompts[name] = Prompt(name, texts, stock.get(name), r.loc(path))
    for name in stock:
        if name not in prompts:
            r.error(("stock_sounds", name), f"no prompt {name!r}")
    return prompts


def _read_hours(r: _Reader, data: Any) -> BusinessHours:
    ranges: dict[int, tuple[tuple[int, int], ...]] = {}
    raw = r.mapping(data, ("business_hours",))
    for key in raw:
        if key not in WEEKDAYS:
            r.error(("business_hours", key), f"expected a weekday ({', '.join(WEEKDAYS)})")
            continue
        value = r.get(raw, ("business_hours",), key, _ranges, "'HH:MM-HH:MM', a list of them, or 'closed'")
        ranges[WEEKDAYS.index(key)] = value or ()
    return BusinessHours(ranges)


def read_flow(path: Path, display_name: str | None = None) -> Flow:
    """Read one flow file; raise :class:`FlowError` listing every schema problem.

    Graph problems (dangling targets, unreachable nodes...) are not checked here;
    see :func:`callcenter.ivr.check.load_flow`.
    """
    file = display_name or str(path)
    try:
        data, locs = load_yaml(path, file)
    except YamlSourceError as exc:  # syntax, a value YAML cannot build (the date 2026-13-01), not UTF-8
        raise FlowError([FlowProblem(exc.location, exc.key, exc.message)]) from None
    r = _Reader(locs)
    top = r.mapping(data, ())
    r.unknown(top, (), {"flow", "languages", "language_variable", "entries", "fallback", "invalid_prompt",
                        "timeout_prompt", "busy_prompt", "queue_message_prompt", "business_hours", "holidays", "workdays",
                        "prompts", "stock_sounds", "nodes"})
    name = r.get(top, (), "flow", _name, "a flow name (lower case, digits, _)") or ""
    languages: list[str] = []
    raw_langs = top.get("languages")
    if not isinstance(raw_langs, list) or not raw_langs:
        r.error(("languages",) if "languages" in top else (), "expected a non-empty list of language codes")
    else:
        for index, lang in enumerate(raw_langs):
            if not isinstance(lang, str) or not re.fullmatch(r"[a-z]{2,3}", lang):
                r.error(("languages", index), f"expected a language code such as 'zh', got {_shown(lang)}")
            else:
                languages.append(lang)
    entries: dict[str, str] = {}
    entry_locations: dict[str, Location] = {}
    raw_entries = r.mapping(top["entries"], ("entries",)) if "entries" in top else {}
    if "entries" not in top:
        r.error((), "missing field 'entries'")
    for entry in raw_entries:
        node = r.get(raw_entries, ("entries",), entry, _name, "a node id")
        if node:
            entries[entry] = node
            entry_locations[entry] = r.loc(("entries", entry))
    if "main" not in entries and "entries" in top:
        r.error(("entries",), "missing entry 'main'")
    fallback = r.get(top, (), "fallback", _name, "a node id") or ""
    prompt_refs = {key: r.get(top, (), key, _name, "a prompt name", required=False)
                   for key in FLOW_PROMPTS}
    holidays: set[dt.date] = set()
    raw_holidays = top.get("holidays", [])
    if not isinstance(raw_holidays, list):
        r.error(("holidays",), "expected a list of dates (YYYY-MM-DD)")
        raw_holidays = []
    for index, item in enumerate(raw_holidays):
        try:
            holidays.add(_date(item))
        except (TypeError, ValueError):
            r.error(("holidays", index), f"expected a date (YYYY-MM-DD), got {_shown(item)}")
    workdays: dict[dt.date, int] = {}
    raw_workdays = top.get("workdays", [])
    if not isinstance(raw_workdays, list):
        r.error(("workdays",), "expected a list of {date: YYYY-MM-DD, hours_of: WEEKDAY}")
        raw_workdays = []
    for index, item in enumerate(raw_workdays):
        wpath: Path_ = ("workdays", index)
        spec = r.mapping(item, wpath)
        r.unknown(spec, wpath, {"date", "hours_of"})
        day = r.get(spec, wpath, "date", _date, "a date (YYYY-MM-DD)")
        weekday = r.get(spec, wpath, "hours_of", WEEKDAYS.index, f"the weekday whose hours it keeps "
                                                                  f"({', '.join(WEEKDAYS)})")
        if day is None or weekday is None:
            continue
        if day in holidays:
            r.error((*wpath, "date"), f"{day} is also listed under holidays")
        elif day in workdays:
            r.error((*wpath, "date"), f"{day} is listed twice")
        else:
            workdays[day] = weekday
    prompts = _read_prompts(r, top.get("prompts", {}), top.get("stock_sounds", {}))
    nodes: dict[str, Node] = {}
    for node_id, raw in r.mapping(top.get("nodes"), ("nodes",)).items():
        npath: Path_ = ("nodes", node_id)
        if not _NAME.match(node_id):
            r.error(npath, "expected a node id (lower case, digits, _)")
        node_data = r.mapping(raw, npath)
        kind = node_data.get("kind")
        if kind not in NODE_KINDS:
            where = (*npath, "kind") if "kind" in node_data else npath
            r.error(where, f"unknown node kind {kind!r} (expected one of {', '.join(sorted(NODE_KINDS))})"
                    if "kind" in node_data else "missing field 'kind'")
            continue
        r.unknown(node_data, npath, _COMMON | _FIELDS[kind])
        nodes[node_id] = _NodeReader(r, node_id, node_data, fallback).read(kind)
    language_variable = r.get(top, (), "language_variable", _variable, "a variable name", "CC_LANGUAGE") or ""
    business_hours = _read_hours(r, top.get("business_hours", {}))
    if r.problems:
        raise FlowError(r.problems)
    return Flow(
        name=name,
        file=file,
        location=r.loc(()),
        languages=tuple(languages),
        language_variable=language_variable,
        entries=entries,
        entry_locations=entry_locations,
        fallback=fallback,
        fallback_location=r.loc(("fallback",)),
        invalid_prompt=prompt_refs["invalid_prompt"],
        timeout_prompt=prompt_refs["timeout_prompt"],
        business_hours=business_hours,
        holidays=frozenset(holidays),
        workdays=workdays,
        prompts=prompts,
        nodes=nodes,
        busy_prompt=prompt_refs["busy_prompt"],
        queue_message_prompt=prompt_refs["queue_message_prompt"],
    )
