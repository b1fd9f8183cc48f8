"""Engine configuration: YAML files validated into frozen dataclasses.

Order of precedence (later wins): the shipped defaults in ``config/`` (``callcenter.yaml``,
``agents.yaml``, ``queues.yaml``), then ``config/site.yaml`` if present, then each file
named by ``--config`` or the ``CALLCENTER_CONFIG`` environment variable (``:``-separated).

Every problem is collected, not only the first, and reported as
``file:line:column: dotted.key: what is wrong`` by :class:`ConfigError`. Unknown keys are
errors too: a misspelt ``retention_dayz`` must not silently fall back to a default.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import time
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter import recording_files
from callcenter.commission import SHARES, CommissionRates
from callcenter.privacy import AGENT_NUMBERS
from callcenter.sms.compose import TICKET_FIELDS
from callcenter.sms.text import SmsPolicy, TemplateError, prepare_template
from callcenter.yamlsource import (
    Location,
    Locations,
    Path_,
    SourceProblem,
    YamlSourceError,
    dotted,
    load_yaml,
    merge,
)

__all__ = [
    "MISSING",
    "AgentSettings",
    "AgiSettings",
    "AmiSettings",
    "ConfigError",
    "ConfigProblem",
    "DatabaseSettings",
    "FaxSettings",
    "HttpSettings",
    "IvrSettings",
    "LabSettings",
    "LoggingSettings",
    "NotFinite",
    "QaItem",
    "QaSettings",
    "QueueSettings",
    "Reader",
    "RecordingSettings",
    "Settings",
    "SiteSettings",
    "TeamSettings",
    "describe_value",
    "did_you_mean",
    "finite_number",
    "load_settings",
]

DEFAULT_FILES = ("callcenter.yaml", "agents.yaml", "queues.yaml")
SITE_FILE = "site.yaml"
QUEUE_STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom")
ROLES = ("agent", "lead", "manager")
_AGENT_ID = re.compile(r"^[0-9]{3,8}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


ConfigProblem = SourceProblem
"""One configuration error: where, which key, what is wrong (file:line:column: key: message)."""


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class SiteSettings:
    name: str
    timezone: str
    ticket_prefix: str
    state_dir: Path


@dataclass(frozen=True)
class AmiSettings:
    host: str
    port: int
    username: str
    connect_timeout: float
    action_timeout: float
    ping_interval: float
    reconnect_max_delay: float


@dataclass(frozen=True)
class AgiSettings:
    bind: str
    port: int
    advertise_host: str
    command_timeout: float


@dataclass(frozen=True)
class SipSettings:
    bind: str
    port: int


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    threads: int


@dataclass(frozen=True)
class HttpSettings:
    bind: str
    port: int


@dataclass(frozen=True)
class RecordingSettings:
    directory: Path
    retention_days: int
    format: str
    pause_limit_seconds: int = 120
    """A recording an agent paused (card numbers) resumes by itself after this long; 0: only
    when the agent resumes it (docs/agents.md, "Pausing the recording")."""


@dataclass(frozen=True)
class LabSettings:
    cache_dir: Path | None
    asterisk: str
    mirror: str | None


@dataclass(frozen=True)
class IvrSettings:
    hotline_flow: Path | None
    """The IVR flow the ``hotline`` FastAGI script walks (None: straight to the queue)."""
    sounds_dir: Path
    """Where ``callcenter prompts build`` writes ``custom/<flow>/<prompt>-<lang>.wav``."""
    channels: int = 8
    """Callers in the IVR at once; the next ones skip the menus and wait in the hotline queue."""


@dataclass(frozen=True)
class LoggingSettings:
    level: str
    format: str


@dataclass(frozen=True)
class TeamSettings:
    id: str
    name: str


@dataclass(frozen=True)
class AgentSettings:
    id: str
    name: str
    team: str
    role: str
    queues: Mapping[str, int]
    """Queue name -> penalty for the queues this agent takes calls from."""

    @property
    def endpoint(self) -> str:
        """The PJSIP endpoint (and SIP user name) of this agent's softphone."""
        return f"agent{self.id}"

    def oversees(self, team: str) -> bool:
        """Whether this person's role covers the work of agents of ``team``.

        A manager oversees everyone's work; a team lead their own team's; nobody else
        any. Supervision, dispositions written for others, QA scoring and the lead
        hand-out all use this one rule, each adding its own (such as "not oneself").
        """
        if self.role == "manager":
            return True
        return self.role == "lead" and bool(self.team) and team == self.team


@dataclass(frozen=True)
class QueueSettings:
    name: str
    strategy: str
    ring_timeout: int
    retry: int
    wrapup_time: int
    max_callers: int
    weight: int
    service_level_seconds: int
    announce_position: bool
    """Tell a waiting caller their place in the queue every ``announce_every`` seconds."""
    overflow_after: int
    """Seconds a caller waits for the primary agents (penalty 0) before agents with a
    higher penalty (the designated overflow agents) are rung too; 0: all at once."""
    max_wait: int = 300
    """Seconds a caller waits at most (``Queue()``'s timeout); then a hotline caller (an
    inbound call) is asked to leave a message and is called back (dialplans/hotline.conf)."""
    message_key: str | None = None
    """A key that takes a waiting caller out of the queue to leave a message and be called
    back (queues.conf ``context``); None: no key. The IVR's ``busy_prompt`` says which."""
    when_empty: str = "wait"
    """``message``: when no agent is logged in (or every agent's phone is unreachable),
    callers leave the queue at once for the message (``leavewhenempty``); ``wait``: they wait."""
    announce_holdtime: bool = False
    """Tell a waiting caller the expected wait (Asterisk's estimate) with the position."""
    announce_every: int = 0
    """Seconds between those announcements (queues.conf ``announce-frequency``); 0: none. They
    are Asterisk's own sounds (queue-youarenext, queue-thereare, queue-holdtime...) in the
    caller's channel language (docs/ivr.md, "Telling callers their place")."""
    pause_on_no_answer: bool = False
    """An agent whose phone rings ``ring_timeout`` seconds unanswered is paused in every queue
    (queues.conf ``autopause = all``; reason "no answer") until they come back and unpause:
    callers stop ringing an empty desk, and the dialer stops counting the agent as ready. Not
    for a dialer's queue: its Queue() lasts only the connect window, and Asterisk pauses a
    member still ringing when Queue()'s time runs out (docs/agents.md)."""
    call_back_abandoned: int | None = None
    """A caller who hangs up after waiting at least this many seconds in the queue is called
    back: a lead of ``dialer.callbacks_campaign`` with the call's ticket, closed by itself
    when the number reaches an agent on a later call first (docs/ivr.md, "Callers who hang
    up waiting"). None: never; 0: every caller who hung up waiting."""
    per_team: bool = False
    """Besides this queue, one queue per team of its agents (:func:`team_queue_name`), which
    only that team's agents join: a dialer campaign with ``route: team`` connects the
    answered calls of a team's leads there (docs/lead-handout.md, "Calls to the team")."""
    parent: str = ""
    """For a team's queue: the ``per_team`` queue it was made from (empty for configured queues)."""
    team: str = ""
    """For a team's queue: the team whose agents join it."""


def team_queue_name(queue: str, team: str) -> str:
    """The name of ``team``'s own queue of the ``per_team`` queue ``queue``: ``outbound-team1``."""
    return f"{queue}-{team}"


@dataclass(frozen=True)
class QaItem:
    """One line of the QA scorecard (``qa.scorecard``; :mod:`callcenter.qa`)."""

    id: str
    label: str
    weight: int
    critical: bool = False
    """Rated 0, it fails the whole call (compliance)."""


DEFAULT_SCORECARD: tuple[QaItem, ...] = (
    QaItem("greeting", "Greets the caller and names the company", 10),
    QaItem("verify", "Verifies who the caller is", 15),
    QaItem("listen", "Finds out what the caller needs", 25),
    QaItem("resolve", "Gives a correct answer or next step", 30),
    QaItem("close", "Sums up and closes politely", 10),
    QaItem("compliance", "No pressure, no false promises, data handled by the rules", 10, critical=True),
)


@dataclass(frozen=True)
class QaSettings:
    """``qa``: how many recorded calls per agent a reviewer is offered a day, and the scorecard."""

    sample_per_agent: int = 2
    scorecard: tuple[QaItem, ...] = DEFAULT_SCORECARD


@dataclass(frozen=True)
class FaxSettings:
    """``fax``: the fax number, the fax channels and how faxes are sent (docs/fax.md)."""

    number: str = "4008"
    """The number the trunk delivers into ``[from-pstn]`` for the fax machine."""
    channels: int = 4
    """Faxes under way at once, received and sent together."""
    trunk: str = "PJSIP/{phone}@pstn"
    caller_id: str = ""
    ring_seconds: int = 60


#: The numbers [from-pstn] (dialplans/hotline.conf) routes to the hotline.
_HOTLINE_NUMBER: Final = re.compile(r"^400([0-9]{7})?$")
_TRUNK: Final = re.compile(r"^[^{}]*\{phone\}[^{}]*$")
_TRUNK_HINT: Final = "a channel with {phone}, e.g. PJSIP/{phone}@pstn"


@dataclass(frozen=True)
class ManualDialSettings:
    """``manual_dial``: agents' own calls to customers, from the page's "Call" or dialed on
    the softphone (docs/agents.md, "Calling a customer")."""

    trunk: str = "PJSIP/{phone}@pstn"
    """The channel a customer's number is dialed on; ``{phone}`` is the number."""
    caller_id: str = ""
    """The caller id customers see ("": the trunk's)."""
    ring_seconds: int = 45
    """How long the customer's phone may ring."""
    do_not_call: str = "warn"
    """A number on the do-not-call list: ``warn`` (flagged on the page, dialed: a service call
    may be owed) or ``block`` (refused, 409)."""


@dataclass(frozen=True)
class LastAgentSettings:
    """``last_agent``: a hotline caller who talked with an agent lately rings that agent first,
    when they are ready (docs/agents.md, "A returning caller reaches their agent")."""

    days: int = 0
    """How far back a call counts (0: off; every caller goes to the queue)."""
    ring_seconds: int = 15
    """How long that agent's phone rings before the caller goes to the queue as usual."""


@dataclass(frozen=True)
class PrivacySettings:
    """``privacy``: what agents see of customers' numbers (:mod:`callcenter.privacy`)."""

    agent_numbers: str = "masked"
    """``masked`` (``138****8000`` on their page, in the API and on their softphone) or ``full``."""

    @property
    def mask_for_agents(self) -> bool:
        return self.agent_numbers == "masked"


@dataclass(frozen=True)
class SmsSettings:
    """``sms``: SMS broadcast through the SMS gateway over SIP MESSAGE (docs/sms.md)."""

    gateway: str = ""
    """``host`` or ``host:port`` of the SMS gateway (a GSM gateway or the operator's SMS
    centre reached over SIP); "" turns SMS off. The lab uses the lab Asterisk itself."""
    sender: str = "10690000"
    """The number messages are sent from, and replies come to."""
    rate_per_second: float = 5.0
    """Messages handed to the gateway per second (operators cap a sender's rate)."""
    hours: tuple[time, time] = (time(8, 0), time(21, 0))
    """Sending window in the site's time zone; queued messages wait for the next one."""
    signature: str = ""
    """Put at the start of every message if the text does not start with it (【公司】)."""
    opt_out_note: str = "回T退订"
    """Put at the end of every message unless the text has it; a reply T puts the number on
    the do-not-call list."""
    max_parts: int = 3
    """The longest message allowed, in SMS parts (70 Chinese characters each, 67 once split)."""
    min_days_between: int = 7
    """A number gets at most one marketing text in this many days, whoever sends it (0: no
    cap); an agent's notice of a ticket number is neither capped nor counted."""
    ticket_template: str = "您好，您本次来电的工单号为{ticket}，感谢您的来电。"
    """The text an agent sends a caller from the screen pop: their call's ticket number
    (fields: ``{ticket}``, ``{name}``, ``{phone}``, ``{agent}``)."""

    @property
    def enabled(self) -> bool:
        return bool(self.gateway)


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration. Build it with :func:`load_settings`."""

    site: SiteSettings
    ami: AmiSettings
    agi: AgiSettings
    sip: SipSettings
    database: DatabaseSettings
    http: HttpSettings
    metrics: HttpSettings
    recordings: RecordingSettings
    lab: LabSettings
    ivr: IvrSettings
    logging: LoggingSettings
    teams: tuple[TeamSettings, ...]
    agents: tuple[AgentSettings, ...]
    queues: tuple[QueueSettings, ...]
    root: Path
    sources: tuple[str, ...] = field(default=())
    commission: CommissionRates = field(default_factory=CommissionRates)
    """Sales commission shares by role (``commission``; :mod:`callcenter.commission`)."""
    qa: QaSettings = field(default_factory=QaSettings)
    """Call sampling and the scorecard team leads score recordings on (``qa``)."""
    fax: FaxSettings = field(default_factory=FaxSettings)
    """The fax number and channels (``fax``)."""
    sms: SmsSettings = field(default_factory=SmsSettings)
    """The SMS gateway, sender and sending rules (``sms``)."""
    manual_dial: ManualDialSettings = field(default_factory=ManualDialSettings)
    """How agents' own calls to customers go out (``manual_dial``)."""
    last_agent: LastAgentSettings = field(default_factory=LastAgentSettings)
    """Whether a returning hotline caller rings the agent they last talked with (``last_agent``)."""
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    """What agents see of customers' numbers (``privacy``)."""

    @cached_property
    def people(self) -> Mapping[str, AgentSettings]:
        """Every configured agent (leads and managers too) by id."""
        return MappingProxyType({agent.id: agent for agent in self.agents})

    def agent(self, agent_id: str) -> AgentSettings:
        """The agent with id ``agent_id`` (``KeyError`` if unknown)."""
        return self.people[agent_id]

    @property
    def hotline_queue(self) -> str | None:
        """The hotline's queue: ``hotline`` when configured, else the first queue (None: no queues)."""
        names = [q.name for q in self.queues]
        return "hotline" if "hotline" in names else (names[0] if names else None)

    def queue(self, name: str) -> QueueSettings:
        """The queue called ``name`` (``KeyError`` if unknown)."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise KeyError(name)

    def team_members(self, team: str) -> frozenset[str]:
        """The ids of everyone of ``team`` (agents and its lead): whose calls are the team's."""
        return frozenset(a.id for a in self.agents if a.team == team)

    def team_queues(self, parent: str) -> dict[str, str]:
        """Team -> the name of that team's queue, for the ``per_team`` queue ``parent`` (empty if not one)."""
        return {q.team: q.name for q in self.queues if q.parent == parent}


T = TypeVar("T")
MISSING: Any = object()
"""Default of a :class:`Reader` key that must be written (its absence is a problem)."""


class Reader:
    """Typed access to one mapping of the configuration, collecting problems.

    Shared with the other YAML files' loaders (``callcenter.dialer.config``): each key is
    read with its default and range, every problem is collected with its location.
    """

    def __init__(self, data: Any, path: Path_, locs: Locations, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.locs = locs
        self.problems = problems
        self.used: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.problem((), f"must be a mapping, got {describe_value(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def key(self, name: str | int | None = None) -> str:
        return dotted(self.path if name is None else (*self.path, name))

    def problem(self, sub: Path_, message: str) -> None:
        path = (*self.path, *sub)
        name = sub[-1] if sub else None
        reader_key = self.key(name) if len(sub) <= 1 else self.key() + "." + ".".join(map(str, sub))
        self.problems.append(ConfigProblem(self.locs.find(path), reader_key, message))

    def get(self, name: str, default: Any, convert: Callable[[Any], T], expected: str) -> T:
        self.used.add(name)
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            if default is MISSING:
                self.problem((name,), f"is required ({expected})")
                return _placeholder(expected)  # type: ignore[no-any-return]
            return default  # type: ignore[no-any-return]
        try:
            return convert(value)
        except NotFinite as exc:
            self.problem((name,), f"{exc}, got {describe_value(value)}")
            return default if default is not MISSING else _placeholder(expected)  # type: ignore[no-any-return]
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            self.problem((name,), f"expected {expected}, got {describe_value(value)}{detail}")
            return default if default is not MISSING else _placeholder(expected)  # type: ignore[no-any-return]

    def text(self, name: str, default: Any = MISSING, pattern: re.Pattern[str] | None = None, hint: str = "a string") -> str:
        def convert(value: Any) -> str:
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise TypeError("")
            text = str(value)
            if pattern is not None and not pattern.match(text):
                raise ValueError("")
            return text

        return self.get(name, default, convert, hint)

    def integer(self, name: str, default: Any = MISSING, lo: int | None = None, hi: int | None = None) -> int:
        expected = "an integer" + _range_text(lo, hi)

        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError("")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise ValueError("")
            return value

        return self.get(name, default, convert, expected)

    def number(self, name: str, default: Any = MISSING, lo: float | None = None, hi: float | None = None) -> float:
        """A number within ``lo..hi``, never ``.nan`` or ``.inf`` (:func:`finite_number`)."""
        expected = "a number" + _range_text(lo, hi)

        def convert(value: Any) -> float:
            number = finite_number(value, _range_text(lo, hi))
            if (lo is not None and number < lo) or (hi is not None and number > hi):
                raise ValueError("")
            return number

        return self.get(name, default, convert, expected)

    def flag(self, name: str, default: Any = MISSING) -> bool:
        def convert(value: Any) -> bool:
            if not isinstance(value, bool):
                raise TypeError("")
            return value

        return self.get(name, default, convert, "true or false")

    def choice(self, name: str, choices: Sequence[str], default: Any = MISSING) -> str:
        def convert(value: Any) -> str:
            if value not in choices:
                raise ValueError("")
            return str(value)

        return self.get(name, default, convert, "one of " + ", ".join(choices))

    def port(self, name: str, default: Any = MISSING) -> int:
        return self.integer(name, default, 1, 65535)

    def sub(self, name: str) -> Reader:
        self.used.add(name)
        return Reader(self.data.get(name), (*self.path, name), self.locs, self.problems)

    def items(self, name: str) -> list[Reader]:
        """Readers for each mapping in the list at ``name``."""
        self.used.add(name)
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem((name,), f"must be a list, got {describe_value(value)}")
            return []
        return [Reader(item, (*self.path, name, i), self.locs, self.problems) for i, item in enumerate(value)]

    def mapping(self, name: str) -> dict[str, Reader]:
        """Readers for each value of the mapping at ``name``, keyed by its keys."""
        sub = self.sub(name)
        return {str(key): Reader(value, (*sub.path, key), self.locs, self.problems) for key, value in sub.data.items()}

    def done(self) -> None:
        """Report keys that were never read: they are typos or unsupported settings."""
        for key in self.data:
            if key not in self.used:
                self.problem((key,), "unknown setting")


class NotFinite(ValueError):
    """A number that is ``.nan`` or infinite; its message is the whole ``expected ...``
    (:meth:`Reader.get` adds the value written)."""


def finite_number(value: Any, within: str = "") -> float:
    """A YAML number (an int or a float, not a bool) as a float; the one rule every numeric
    setting is read by.

    ``.nan`` passes any range check (``nan < lo`` and ``nan > hi`` are both false), and
    ``.inf`` one without an upper bound: taken, they would stall a timer or crash later
    with no file or line (a commission share as a ``Decimal``). So anything not finite
    raises :class:`NotFinite` ("expected a finite number", as
    :class:`~callcenter.dialer.pacing.PacingSettings` says) with ``within`` (the range,
    such as ``" in 1..3600"``) after it; a non-number raises ``TypeError``. An integer too
    long for a float is not finite either.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise NotFinite(f"expected a finite number{within}")
    return number


def _placeholder(expected: str) -> Any:
    if expected.startswith("an integer"):
        return 0
    if expected.startswith("a number"):
        return 0.0
    if expected == "true or false":
        return False
    return ""


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in {lo}..{hi}"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def describe_value(value: Any) -> str:
    """What a YAML value is, for messages: ``a mapping``, ``a list``, or its repr."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``known`` (difflib, cutoff 0.6), or ``""``."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _path(root: Path, text: str) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else root / path


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return value


def _build(data: Mapping[str, Any], locs: Locations, root: Path, problems: list[ConfigProblem]) -> Settings:
    top = Reader(data, (), locs, problems)

    site_r = top.sub("site")
    site = SiteSettings(
        name=site_r.text("name", "callcenter"),
        timezone=site_r.get("timezone", "UTC", _timezone, "an IANA time zone such as Asia/Shanghai"),
        ticket_prefix=site_r.text("ticket_prefix", "GD", re.compile(r"^[A-Z]{2}$"), "two capital letters"),
        state_dir=_path(root, site_r.text("state_dir", "var")),
    )
    site_r.done()

    asterisk_r = top.sub("asterisk")
    ami_r = asterisk_r.sub("ami")
    ami = AmiSettings(
        host=ami_r.text("host", "127.0.0.1"),
        port=ami_r.port("port", 5038),
        username=ami_r.text("username", "callcenter", re.compile(r"^[A-Za-z0-9_-]+$"), "letters, digits, _ or -"),
        connect_timeout=ami_r.number("connect_timeout", 5.0, 0.1, 300),
        action_timeout=ami_r.number("action_timeout", 10.0, 0.1, 600),
        ping_interval=ami_r.number("ping_interval", 20.0, 1, 3600),
        reconnect_max_delay=ami_r.number("reconnect_max_delay", 10.0, 0.1, 600),
    )
    ami_r.done()
    agi_r = asterisk_r.sub("agi")
    agi = AgiSettings(
        bind=agi_r.text("bind", "127.0.0.1"),
        port=agi_r.port("port", 4573),
        advertise_host=agi_r.text("advertise_host", "127.0.0.1"),
        command_timeout=agi_r.number("command_timeout", 30.0, 0.1, 3600),
    )
    agi_r.done()
    sip_r = asterisk_r.sub("sip")
    sip = SipSettings(bind=sip_r.text("bind", "127.0.0.1"), port=sip_r.port("port", 5060))
    sip_r.done()
    asterisk_r.done()

    db_r = top.sub("database")
    database = DatabaseSettings(
        url=db_r.text("url", "sqlite:///var/callcenter.sqlite3"),
        threads=db_r.integer("threads", 4, 1, 64),
    )
    db_r.done()

    http_r = top.sub("http")
    http = HttpSettings(bind=http_r.text("bind", "127.0.0.1"), port=http_r.port("port", 8080))
    http_r.done()
    metrics_r = top.sub("metrics")
    metrics = HttpSettings(bind=metrics_r.text("bind", "127.0.0.1"), port=metrics_r.port("port", 9108))
    metrics_r.done()

    rec_r = top.sub("recordings")
    recordings = RecordingSettings(
        directory=_path(root, rec_r.text("directory", "recordings")),
        retention_days=rec_r.integer("retention_days", 180, 1, 36500),
        format=rec_r.choice("format", tuple(recording_files.EXTENSIONS), "wav"),
        pause_limit_seconds=rec_r.integer("pause_limit_seconds", 120, 0, 3600),
    )
    rec_r.done()

    lab_r = top.sub("lab")
    cache = lab_r.text("cache_dir", "")
    lab = LabSettings(
        cache_dir=_path(root, cache) if cache else None,
        asterisk=lab_r.choice("asterisk", ("auto", "chroot", "host"), "auto"),
        mirror=lab_r.text("mirror", "") or None,
    )
    lab_r.done()

    ivr_r = top.sub("ivr")
    flow = ivr_r.text("hotline_flow", "ivr_flows/hotline.yaml")
    ivr = IvrSettings(
        hotline_flow=_path(root, flow) if flow else None,
        sounds_dir=_path(root, ivr_r.text("sounds_dir", "var/sounds")),
        channels=ivr_r.integer("channels", 8, 1, 1000),
    )
    ivr_r.done()

    log_r = top.sub("logging")
    logging = LoggingSettings(
        level=log_r.choice("level", ("debug", "info", "warn", "error"), "info"),
        format=log_r.choice("format", ("text", "json"), "text"),
    )
    log_r.done()

    queues = _queues(top)
    teams = _teams(top)
    agents = _agents(top, {t.id for t in teams}, {q.name for q in queues})
    queues, agents = _team_queues(top, queues, agents)
    commission = _commission(top, {a.id for a in agents})
    qa = _qa(top)
    fax_r = top.sub("fax")
    default_fax = FaxSettings()
    fax = FaxSettings(
        number=fax_r.text("number", default_fax.number, re.compile(r"^[0-9]{2,20}$"), "2 to 20 digits"),
        channels=fax_r.integer("channels", default_fax.channels, 1, 64),
        trunk=fax_r.text("trunk", default_fax.trunk, _TRUNK, _TRUNK_HINT),
        caller_id=fax_r.text("caller_id", default_fax.caller_id),
        ring_seconds=fax_r.integer("ring_seconds", default_fax.ring_seconds, 5, 300),
    )
    if _HOTLINE_NUMBER.match(fax.number):  # [from-pstn]'s own _400XXXXXXX is matched before its includes
        fax_r.problem(("number",), f"{fax.number} is a hotline number: [from-pstn] (dialplans/hotline.conf) sends "
                                   "400 and 400XXXXXXX to the hotline, so a fax to it would never reach the fax")
    fax_r.done()
    sms = _sms(top.sub("sms"))
    dial_r = top.sub("manual_dial")
    default_dial = ManualDialSettings()
    manual_dial = ManualDialSettings(
        trunk=dial_r.text("trunk", default_dial.trunk, _TRUNK, _TRUNK_HINT),
        caller_id=dial_r.text("caller_id", default_dial.caller_id, re.compile(r"^[0-9+]{0,20}$"),
                              "up to 20 digits (an optional +), or empty"),
        ring_seconds=dial_r.integer("ring_seconds", default_dial.ring_seconds, 5, 300),
        do_not_call=dial_r.choice("do_not_call", ("warn", "block"), default_dial.do_not_call),
    )
    dial_r.done()
    last_r = top.sub("last_agent")
    default_last = LastAgentSettings()
    last_agent = LastAgentSettings(
        days=last_r.integer("days", default_last.days, 0, 3660),
        ring_seconds=last_r.integer("ring_seconds", default_last.ring_seconds, 5, 120),
    )
    last_r.done()
    privacy_r = top.sub("privacy")
    privacy = PrivacySettings(
        agent_numbers=privacy_r.choice("agent_numbers", AGENT_NUMBERS, PrivacySettings().agent_numbers))
    privacy_r.done()
    top.done()
    return Settings(
        site=site, ami=ami, agi=agi, sip=sip, database=database, http=http, metrics=metrics,
        recordings=recordings, lab=lab, ivr=ivr, logging=logging, teams=teams, agents=agents, queues=queues, root=root,
        commission=commission, qa=qa, fax=fax, sms=sms, manual_dial=manual_dial, last_agent=last_agent,
        privacy=privacy,
    )


_HOURS = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]-(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")


def _sms(reader: Reader) -> SmsSettings:
    default = SmsSettings()
    gateway = reader.text("gateway", default.gateway, re.compile(r"^$|^[A-Za-z0-9.-]+(:[0-9]{1,5})?$"),
                          "host or host:port of the SMS gateway, or \"\" for none")
    sender = reader.text("sender", default.sender, re.compile(r"^[0-9]{3,20}$"), "3 to 20 digits")
    rate = reader.number("rate_per_second", default.rate_per_second, 0.1, 100.0)
    start, end = default.hours
    hours = reader.text("hours", "08:00-21:00", _HOURS, "HH:MM-HH:MM, e.g. 08:00-21:00 (00:00-24:00: all day)")
    if _HOURS.match(hours):
        first, last = hours.split("-")
        # 24:00 is the end of the day: the last instant time can say
        window = time.fromisoformat(first), time.max if last == "24:00" else time.fromisoformat(last)
        if window[0] >= window[1]:
            reader.problem(("hours",), "must be a window within one day, its start before its end")
        else:
            start, end = window
    sms = SmsSettings(
        gateway=gateway, sender=sender, rate_per_second=rate, hours=(start, end),
        signature=reader.text("signature", default.signature),
        opt_out_note=reader.text("opt_out_note", default.opt_out_note),
        max_parts=reader.integer("max_parts", default.max_parts, 1, 10),
        min_days_between=reader.integer("min_days_between", default.min_days_between, 0, 365),
        ticket_template=reader.text("ticket_template", default.ticket_template),
    )
    try:
        prepare_template(sms.ticket_template, SmsPolicy(), TICKET_FIELDS)
    except TemplateError as exc:
        reader.problem(("ticket_template",), str(exc))
    reader.done()
    return sms


def _commission(top: Reader, agents: set[str]) -> CommissionRates:
    """``commission``: each role's share of a sale (fractions, kept as exact decimals)."""
    r = top.sub("commission")
    default = CommissionRates()
    shares = {name: Decimal(str(r.number(name, float(default.rate(name)), 0.0, 1.0))) for name in SHARES}
    director = r.text("director_id", "") or None
    if director is not None and director not in agents:
        hint = did_you_mean(director, sorted(agents)).rstrip()
        r.problem(("director_id",), f"unknown agent id {director!r}{f' ({hint})' if hint else ''}; agents are "
                                    "listed in agents.yaml")
    rates = CommissionRates(**shares, director_id=director)
    if rates.total > 1:
        largest = max(SHARES, key=lambda name: shares[name])  # likely the mistyped one; its file and line
        listed = ", ".join(f"{name} {shares[name]}" for name in SHARES)
        r.problem((largest,), f"the shares add up to {rates.total} ({listed}), more than the whole sale")
    r.done()
    return rates


_QA_ITEM_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _qa(top: Reader) -> QaSettings:
    """``qa``: the daily sample size and the scorecard (the shipped one if none is given)."""
    r = top.sub("qa")
    per_agent = r.integer("sample_per_agent", 2, 0, 100)
    items = []
    seen: set[str] = set()
    listed = r.items("scorecard")
    for item in listed:
        item_id = item.text("id", pattern=_QA_ITEM_ID, hint="a short name (lower-case letters, digits, _)")
        if item_id in seen:
            item.problem(("id",), f"duplicate scorecard item {item_id!r}")
        seen.add(item_id)
        items.append(QaItem(id=item_id, label=item.text("label", item_id), weight=item.integer("weight", 1, 1, 100),
                            critical=item.flag("critical", False)))
        item.done()
    if "scorecard" in r.data and not listed:
        r.problem(("scorecard",), "needs at least one item")
    r.done()
    return QaSettings(sample_per_agent=per_agent, scorecard=tuple(items) or DEFAULT_SCORECARD)


_QUEUE_KEY = re.compile(r"[0-9*#]\Z")
#: What callers of a queue with no agent to answer do (``when_empty``).
WHEN_EMPTY: Final = ("wait", "message")


def _queues(top: Reader) -> tuple[QueueSettings, ...]:
    result = []
    for name, q in top.mapping("queues").items():
        if not _NAME.match(name):
            q.problem((), "queue names are a letter then letters, digits, _ or - (at most 40)")
        overflow_after = q.integer("overflow_after", 0, 0, 3600)
        max_wait = q.integer("max_wait", 300, 10, 3600)
        if overflow_after >= max_wait:
            q.problem(("overflow_after",), f"{overflow_after} s is not below max_wait ({max_wait} s): "
                      "callers would leave the queue before the overflow agents ring")
        announce_position = q.flag("announce_position", False)
        announce_holdtime = q.flag("announce_holdtime", False)
        announce_every = q.integer("announce_every", 0, 0, 3600)
        if (announce_position or announce_holdtime) and not announce_every:
            on = [n for n, v in (("announce_position", announce_position), ("announce_holdtime", announce_holdtime))
                  if v]
            if "announce_every" in q.data:  # set to 0 (a site turning them off): that line is the one to fix
                q.problem(("announce_every",), f"0 makes no announcements, but {' and '.join(on)} "
                          f"{'is' if len(on) == 1 else 'are'} on: set them to false, or the seconds between two")
            else:
                q.problem((on[0],), "needs announce_every: the seconds between announcements (0 makes none)")
        result.append(QueueSettings(
            name=name,
            strategy=q.choice("strategy", QUEUE_STRATEGIES, "rrmemory"),
            ring_timeout=q.integer("ring_timeout", 15, 1, 600),
            retry=q.integer("retry", 2, 0, 600),
            wrapup_time=q.integer("wrapup_time", 10, 0, 3600),
            max_callers=q.integer("max_callers", 0, 0, 100000),
            weight=q.integer("weight", 0, 0, 100),
            service_level_seconds=q.integer("service_level_seconds", 20, 1, 3600),
            announce_position=announce_position,
            announce_holdtime=announce_holdtime,
            announce_every=announce_every,
            overflow_after=overflow_after,
            max_wait=max_wait,
            message_key=q.text("message_key", None, _QUEUE_KEY, "one key: 0-9, * or #") or None,
            when_empty=q.choice("when_empty", WHEN_EMPTY, "wait"),
            pause_on_no_answer=q.flag("pause_on_no_answer", False),
            call_back_abandoned=q.integer("call_back_abandoned", None, 0, 3600),
            per_team=q.flag("per_team", False),
        ))
        q.done()
    return tuple(result)


def _team_queues(top: Reader, queues: tuple[QueueSettings, ...],
                 agents: tuple[AgentSettings, ...]) -> tuple[tuple[QueueSettings, ...], tuple[AgentSettings, ...]]:
    """Each ``per_team`` queue's team queues, and each agent in one of its team's, at the same penalty.

    A team queue is made for every team with an agent in the ``per_team`` queue; it has
    the queue's settings. An agent without a team joins none. A team queue's name taken by
    a configured queue is a problem named at ``per_team``.
    """
    configured = {q.name for q in queues}
    made: list[QueueSettings] = []
    joined: dict[str, dict[str, int]] = {}
    for queue in queues:
        if not queue.per_team:
            continue
        teams = sorted({a.team for a in agents if a.team and queue.name in a.queues})
        for team in teams:
            name = team_queue_name(queue.name, team)
            if name in configured:
                top.sub("queues").problem((queue.name, "per_team"), f"team {team}'s queue would be called {name!r}, "
                                          "the name of a configured queue; rename one of them")
                continue
            made.append(replace(queue, name=name, per_team=False, parent=queue.name, team=team))
            for agent in agents:
                if agent.team == team and queue.name in agent.queues:
                    joined.setdefault(agent.id, {})[name] = agent.queues[queue.name]
    if not made:
        return queues, agents
    return (*queues, *made), tuple(replace(a, queues={**a.queues, **joined[a.id]}) if a.id in joined else a
                                   for a in agents)


def _teams(top: Reader) -> tuple[TeamSettings, ...]:
    result = []
    seen: set[str] = set()
    for t in top.items("teams"):
        team_id = t.text("id", pattern=_NAME, hint="a short name (letters, digits, _ or -)")
        if team_id in seen:
            t.problem(("id",), f"duplicate team id {team_id!r}")
        seen.add(team_id)
        result.append(TeamSettings(id=team_id, name=t.text("name", team_id)))
        t.done()
    return tuple(result)


def _agents(top: Reader, teams: set[str], queues: set[str]) -> tuple[AgentSettings, ...]:
    result = []
    seen: set[str] = set()
    for a in top.items("agents"):
        agent_id = a.text("id", pattern=_AGENT_ID, hint="3 to 8 digits (the agent's extension)")
        if agent_id in seen:
            a.problem(("id",), f"duplicate agent id {agent_id!r}")
        seen.add(agent_id)
        team = a.text("team", "")
        if team and team not in teams:
            a.problem(("team",), f"unknown team {team!r} (teams: {', '.join(sorted(teams)) or 'none'})")
        penalties: dict[str, int] = {}
        for queue, penalty_r in _queue_penalties(a):
            if queue not in queues:
                a.problem(("queues", queue), f"unknown queue {queue!r} (queues: {', '.join(sorted(queues)) or 'none'})")
            penalties[queue] = penalty_r
        result.append(AgentSettings(
            id=agent_id,
            name=a.text("name", f"Agent {agent_id}"),
            team=team,
            role=a.choice("role", ROLES, "agent"),
            queues=penalties,
        ))
        a.done()
    return tuple(result)


def _queue_penalties(a: Reader) -> Iterable[tuple[str, int]]:
    """``queues:`` of an agent: a list of names, or a mapping name -> penalty."""
    a.used.add("queues")
    value = a.data.get("queues")
    if value is None:
        return []
    if isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                a.problem(("queues", i), f"expected a queue name, got {describe_value(item)}")
                continue
            pairs.append((item, 0))
        return pairs
    if isinstance(value, Mapping):
        pairs = []
        for name, penalty in value.items():
            if isinstance(penalty, bool) or not isinstance(penalty, int) or not 0 <= penalty <= 100:
                a.problem(("queues", name), f"expected a penalty 0..100, got {describe_value(penalty)}")
                continue
            pairs.append((str(name), penalty))
        return pairs
    a.problem(("queues",), f"expected a list of queue names or a mapping name -> penalty, got {describe_value(value)}")
    return []


def config_files(config_dir: Path, extra: Sequence[Path] = ()) -> list[Path]:
    """The files that make up the configuration, in precedence order."""
    files = [config_dir / name for name in DEFAULT_FILES if (config_dir / name).exists()]
    site = config_dir / SITE_FILE
    if site.exists():
        files.append(site)
    env = os.environ.get("CALLCENTER_CONFIG", "")
    files.extend(Path(p) for p in env.split(":") if p)
    files.extend(extra)
    return files


def default_config_dir() -> Path:
    """``$CALLCENTER_HOME/config``, else ``./config``."""
    home = os.environ.get("CALLCENTER_HOME")
    return Path(home) / "config" if home else Path.cwd() / "config"


def load_settings(config_dir: Path | None = None, extra: Sequence[Path] = (), root: Path | None = None) -> Settings:
    """Load, merge and validate the configuration; raise :class:`ConfigError` on any problem.

    Relative paths in the configuration are resolved against ``root`` (default: the
    parent of the configuration directory, i.e. the project's checkout).
    """
    config_dir = (config_dir or default_config_dir()).resolve()
    root = (root or config_dir.parent).resolve()
    files = config_files(config_dir, extra)
    if not files:
        raise ConfigError([ConfigProblem(Location(str(config_dir), 1, 1), "", "no configuration files found")])
    merged: Any = {}
    locs = Locations(_display(files[0], root))
    problems: list[ConfigProblem] = []
    for path in files:
        name = _display(path, root)
        try:
            data, file_locs = load_yaml(path, name)
        except YamlSourceError as exc:  # syntax, a value YAML cannot build, bytes that are not UTF-8
            problems.append(exc.problem)
            continue
        except OSError as exc:
            problems.append(ConfigProblem(Location(name, 1, 1), "", f"cannot read: {exc.strerror}"))
            continue
        if data is None:
            continue
        if not isinstance(data, Mapping):
            problems.append(ConfigProblem(file_locs.find(()), "", f"the top level must be a mapping, got {describe_value(data)}"))
            continue
        merged = merge(merged, data, locs, file_locs)
    if problems:
        raise ConfigError(problems)
    settings = _build(merged, locs, root, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(**{**settings.__dict__, "sources": tuple(_display(p, root) for p in files)})


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
