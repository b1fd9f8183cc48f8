"""The dialer's configuration: ``config/dialer.yaml`` validated into frozen dataclasses.

This module owns the file's schema: the dialer-wide settings (trunk, tick, connect
timeout, AMD), the pacing settings (:class:`~callcenter.dialer.pacing.PacingSettings` plus
the choice of pacer) and the campaigns (:class:`~callcenter.dialer.campaign.Campaign`,
each with its pacing: the dialer's defaults with the campaign's overrides).

It is pure apart from reading the file when :func:`load_dialer_config` is not handed the
text. Every problem is collected, not only the first, and raised as the same
:class:`~callcenter.settings.ConfigError` the main configuration uses, each problem as
``file:line:column: dialer.pacing.max_ratio: what is wrong``. Unknown keys are errors
with a did-you-mean. The rules of :mod:`callcenter.dialer.campaign` and
:mod:`callcenter.dialer.pacing` are reused: their ``ValueError`` s are re-raised located.

The compliance bounds checked here (see ``/work/shared/DIALER.md``): ring at least 15 s,
an answered person reaches an agent within 2 s, calling hours within 08:00-21:00 of the
called party, no retry within 72 hours of an abandoned call, a returnable caller ID, an
abandonment target of at most 10% (3% by default).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Final

from callcenter.dialer.campaign import (
    ATTEMPT_OUTCOMES,
    DIAL_MODES,
    MACHINE_ACTIONS,
    CallingHours,
    Campaign,
    RetryPolicy,
    zone,
)
from callcenter.dialer.guard import GuardSettings
from callcenter.dialer.handout import HANDOUT_MODES
from callcenter.dialer.pacing import PacingSettings
from callcenter.settings import (
    MISSING,
    ConfigError,
    ConfigProblem,
    Reader,
    Settings,
    describe_value,
    did_you_mean,
    finite_number,
)
from callcenter.yamlsource import (
    Location,
    Locations,
    Path_,
    YamlSourceError,
    parse_yaml,
)

__all__ = [
    "PACERS",
    "ROUTES",
    "AmdSettings",
    "CampaignConfig",
    "DialerConfig",
    "GuardSettings",
    "PacerChoice",
    "callback_notes",
    "check",
    "describe_changes",
    "load_dialer_config",
    "parse_dialer_config",
    "validate_against",
]

#: The pacers behind :class:`~callcenter.dialer.pacing.Pacer` a campaign can use.
PACERS: Final = ("predictive", "vicidial", "fixed", "progressive")
#: Where a campaign's answered calls go: its queue, or the queue of the team holding the lead.
ROUTES: Final = ("queue", "team")
#: Upper bound of every dial ratio (dials per available agent).
MAX_RATIO: Final = 10.0
#: The calling window the rules allow (TSR: 8:00-21:00 local time of the called party).
EARLIEST_CALL: Final = time(8, 0)
LATEST_CALL: Final = time(21, 0)
#: Ofcom: no repeat call within 72 hours of an abandoned call.
MIN_ABANDONED_RETRY_MINUTES: Final = 72 * 60

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_CALLER_ID = re.compile(r"^\+?[0-9]{3,20}$")
_CHANNEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/\S+$")
_SOUND = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_SOUND_EXTENSION = re.compile(r"\.(wav|wav49|gsm|sln[0-9]*|ulaw|alaw|g722|g729|mp3|ogg)$", re.IGNORECASE)
_RETRY_OUTCOMES: Final = tuple(o for o in ATTEMPT_OUTCOMES if o != "human")


@dataclass(frozen=True)
class AmdSettings:
    """Answering-machine detection on answered calls."""

    enabled: bool = True
    machine_as_abandoned: float = 0.0
    """Share of AMD "machine" verdicts counted as abandoned live calls (AMD false positives)."""


@dataclass(frozen=True)
class PacerChoice:
    """Which pacer paces a campaign, with its settings."""

    pacer: str = "predictive"
    settings: PacingSettings = field(default_factory=PacingSettings)
    fixed_ratio: float = 1.5
    """Dials per available agent when ``pacer`` is ``fixed``."""


@dataclass(frozen=True)
class CampaignConfig:
    """One campaign as configured: its rules and its effective pacing."""

    campaign: Campaign
    pacing: PacerChoice
    handout: str = "none"
    """Which leads it dials: all (``none``), or only those handed out to a ``team`` or an
    ``agent`` who is logged in (:mod:`callcenter.dialer.handout`)."""
    route: str = "queue"
    """Where an answered call goes: the campaign's ``queue`` (any of its agents), or, with
    ``team``, the queue of the team holding the lead (the queue is ``per_team``), paced
    team by team (docs/lead-handout.md, "Calls to the team")."""
    auto_dial: int = 0
    """Preview campaigns: seconds an agent of the queue is ready before their next lead is
    dialed for them (their phone rings first, as with "Dial"); 0: the agent clicks "Dial"."""

    @property
    def name(self) -> str:
        """The campaign's name (its key under ``dialer.campaigns``)."""
        return self.campaign.name


@dataclass(frozen=True)
class DialerConfig:
    """The whole validated ``config/dialer.yaml``. Build it with :func:`load_dialer_config`."""

    enabled: bool
    trunk: str
    """Channel to dial, with ``{phone}`` standing for the lead's number."""
    tick_seconds: float
    connect_timeout: int
    """Whole seconds an answered person may wait for an agent before the call is abandoned."""
    amd: AmdSettings
    pacing: PacerChoice
    """The dialer-wide pacing defaults (each campaign's :attr:`CampaignConfig.pacing` is effective)."""
    campaigns: tuple[CampaignConfig, ...]
    abandon_guard: GuardSettings = field(default_factory=GuardSettings)
    """When a campaign's ledger is over the legal limit, it dials progressively (:mod:`~callcenter.dialer.guard`)."""
    callbacks_campaign: str | None = None
    """The campaign (of :attr:`campaigns`) that takes the hotline's call-back requests as leads."""
    source: str = field(default="", compare=False)
    """The file it was read from, as shown in messages."""
    locations: Locations | None = field(default=None, compare=False, repr=False)
    """Where each key was written (for :func:`validate_against`)."""

    def campaign(self, name: str) -> CampaignConfig:
        """The campaign called ``name`` (``KeyError`` if unknown)."""
        for campaign in self.campaigns:
            if campaign.name == name:
                return campaign
        raise KeyError(name)

    def dial_string(self, phone: str) -> str:
        """The channel to originate for ``phone`` (the trunk with ``{phone}`` filled in)."""
        return self.trunk.format(phone=phone)


class _DialerReader(Reader):
    """:class:`~callcenter.settings.Reader` whose unknown-key errors suggest a known key."""

    def sub(self, name: str) -> _DialerReader:
        self.used.add(name)
        return _DialerReader(self.data.get(name), (*self.path, name), self.locs, self.problems)

    def readers(self, name: str) -> dict[str, _DialerReader]:
        """Readers for each value of the mapping at ``name``, keyed by its keys."""
        sub = self.sub(name)
        return {str(key): _DialerReader(value, (*sub.path, key), self.locs, self.problems)
                for key, value in sub.data.items()}

    def done(self) -> None:
        known = sorted(self.used)
        for key in self.data:
            if key not in self.used:
                close = did_you_mean(str(key), known).rstrip()
                hint = f" ({close})" if close else f" (known: {', '.join(known)})"
                self.problem((key,), "unknown setting" + hint)

    def located(self, error: ValueError, fields: Sequence[str] = ()) -> None:
        """Report a ``ValueError`` of a pure rule at the key its message names.

        The dialer's dataclasses raise ``"retry.busy: minutes must be ..."`` (or
        ``"PacingSettings.max_ratio: ..."``): the dotted prefix is the key below this
        reader. With ``fields``, the first of them that the message mentions is the key.
        """
        message = str(error)
        match = re.match(r"^(?:[A-Z][A-Za-z]*\.)?([a-z_]+(?:\.[a-z_]+)*): (.*)$", message, re.DOTALL)
        sub: Path_ = ()
        if match:
            sub = tuple(match.group(1).split("."))
            message = match.group(2)
        if fields and (not sub or sub[0] not in fields):
            sub = next(((name,) for name in fields if re.search(rf"\b{re.escape(name)}\b", message)), ())
        if sub == ("name",):  # a campaign's name is its key
            sub = ()
        self.problem(sub, message)


def parse_dialer_config(text: str | bytes, source: str) -> DialerConfig:
    """Validate the YAML ``text`` of a dialer configuration named ``source`` in messages.

    ``text`` may be the file's bytes (the reload watcher's snapshot): bytes that are not
    UTF-8 are a problem located like any other (:func:`~callcenter.yamlsource.decode`).
    Raises :class:`~callcenter.settings.ConfigError` listing every problem.
    """
    try:
        data, locs = parse_yaml(text, source)
    except YamlSourceError as exc:
        raise ConfigError([exc.problem]) from None
    if not isinstance(data, Mapping):
        raise ConfigError([ConfigProblem(locs.find(()), "", f"must be a mapping, got {describe_value(data)}")])
    problems: list[ConfigProblem] = []
    if not isinstance(data.get("dialer"), Mapping):
        # Nothing below would be found: say so once instead of once per required key.
        top = _DialerReader(data, (), locs, problems)
        top.sub("dialer")  # reports a non-mapping dialer: value
        if "dialer" not in data:
            top.problem((), "the top-level key 'dialer' is missing")
        elif data["dialer"] is None:
            top.problem(("dialer",), "is empty (a mapping with trunk, pacing and campaigns)")
        top.done()
        raise ConfigError(_in_file_order(problems))
    config = _build(data, locs, problems)
    if problems:
        raise ConfigError(_in_file_order(problems))
    return dataclasses.replace(config, source=source, locations=locs)


def _in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.location.line, p.location.column))


def load_dialer_config(path: Path, text: str | bytes | None = None, source: str | None = None) -> DialerConfig:
    """Load and validate the dialer configuration at ``path``.

    ``text`` is the file's content when the caller has read it already (the reload
    watcher reads off the reactor thread); otherwise the file is read here. ``source``
    is the name shown in messages (default: ``path`` as given). Raises
    :class:`~callcenter.settings.ConfigError` listing every problem, also when the file
    cannot be read.
    """
    name = source if source is not None else str(path)
    if text is None:
        try:
            text = path.read_bytes()  # decoded by parse_yaml, which locates bytes that are not UTF-8
        except OSError as exc:
            raise ConfigError([ConfigProblem(Location(name, 1, 1), "", f"cannot read: {exc.strerror}")]) from None
    return parse_dialer_config(text, name)


def validate_against(config: DialerConfig, settings: Settings) -> list[ConfigProblem]:
    """Problems of ``config`` that only the main configuration reveals (unknown queues, a
    team route to a queue that is not ``per_team``, a dialing campaign's calls sent to a
    queue whose waiting callers are taken to a message)."""
    locs = config.locations or Locations(config.source)
    queues = sorted(q.name for q in settings.queues)
    problems = []

    def problem(campaign: CampaignConfig, key: str, message: str) -> None:
        problems.append(ConfigProblem(locs.find(("dialer", "campaigns", campaign.name, key)),
                                      f"dialer.campaigns.{campaign.name}.{key}", message))

    for campaign in config.campaigns:
        name = campaign.campaign.queue
        if name not in queues:
            hint = did_you_mean(name, queues)
            problem(campaign, "queue", f"unknown queue {name!r} ({hint}queues: {', '.join(queues) or 'none'})")
        elif campaign.route == "team" and not settings.queue(name).per_team:
            problem(campaign, "route", f"route: team needs a queue per team: set per_team: true on queue {name!r} "
                                       "in config/queues.yaml")
        elif campaign.campaign.dial_mode != "preview" and (
                (queue := settings.queue(name)).message_key is not None or queue.when_empty == "message"):
            # answered dialer calls wait in Queue(): a key or an empty queue would take them to
            # the hotline's message branch, which is for inbound callers (docs/ivr.md)
            problem(campaign, "queue", f"queue {name!r} takes waiting callers to a message (message_key or "
                                       "when_empty: message in config/queues.yaml): not for a "
                                       f"{campaign.campaign.dial_mode} campaign's answered calls")
        elif campaign.campaign.dial_mode != "preview" and settings.queue(name).pause_on_no_answer:
            # timeoutpriority = conf: a phone that starts ringing rings its whole ring_timeout, far
            # past the connect window after which an answered person hears the safe-harbor message
            problem(campaign, "queue", f"queue {name!r} has pause_on_no_answer (config/queues.yaml): its agents' "
                                       "phones would ring their whole ring timeout, past the 2 s an answered "
                                       f"person may wait, and pause an agent a second slow: not for a "
                                       f"{campaign.campaign.dial_mode} campaign's answered calls")
    return problems


def callback_notes(config: DialerConfig, settings: Settings) -> list[str]:
    """What the configuration asks for and nobody will do, to say (not refuse): queues that
    call back callers who hang up waiting (``call_back_abandoned``) with no
    ``dialer.callbacks_campaign`` to give those call backs to (the IVR's call-back requests
    and messages are not called back either then)."""
    calling_back = [q.name for q in settings.queues if q.call_back_abandoned is not None and not q.parent]
    if not calling_back or config.callbacks_campaign is not None:
        return []
    return [(f"{config.source}: dialer.callbacks_campaign is not set: callers who hang up waiting in "
            f"{', '.join(calling_back)} (call_back_abandoned in config/queues.yaml), and those who ask for a "
            "call back, will not be called back")]


def check(path: Path, settings: Settings | None, source: str | None = None) -> list[str]:
    """Every problem of the dialer configuration at ``path``, as printable lines ([] if valid).

    With ``settings`` the campaigns' queues are checked against the configured queues.
    A missing file is a problem: callers for whom the dialer is optional test first.
    """
    try:
        config = load_dialer_config(path, source=source)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in validate_against(config, settings)] if settings is not None else []


# --- building -------------------------------------------------------------------------


def _build(data: Any, locs: Locations, problems: list[ConfigProblem]) -> DialerConfig:
    top = _DialerReader(data, (), locs, problems)
    d = top.sub("dialer")
    enabled = d.flag("enabled", True)
    trunk = d.get("trunk", MISSING, _trunk, "a channel with {phone}, e.g. PJSIP/{phone}@pstn")
    tick = d.number("tick_seconds", 1.0, 0.2, 10.0)
    connect_timeout = d.integer("connect_timeout", 1, 1, 2)

    amd_r = d.sub("amd")
    amd = AmdSettings(
        enabled=amd_r.flag("enabled", True),
        machine_as_abandoned=amd_r.number("machine_as_abandoned", 0.0, 0.0, 1.0),
    )
    amd_r.done()

    if amd.enabled and connect_timeout is not None and connect_timeout > 1:
        # the 2 s rule counts from the end of the greeting; AMD's HUMAN verdict comes 0.8 s after
        # it (after-greeting silence), and the queue's wait starts there: 2 s would be 2.8 s
        d.problem(("connect_timeout",), f"at most 1 with amd enabled, got {connect_timeout}: AMD says HUMAN 0.8 s "
                                        "after the greeting ends, and the person must meet an agent within 2 s of it")
    guard = _guard(d.sub("abandon_guard"))
    pacing = _pacer_choice(d.sub("pacing"), PacerChoice(), None)
    campaigns = [
        campaign for name, reader in d.readers("campaigns").items()
        if (campaign := _campaign(name, reader, pacing)) is not None
    ]
    if guard.enabled:
        _targets_within_guard(d, guard, pacing, campaigns)
    callbacks = d.text("callbacks_campaign", None, _NAME, "a campaign name of dialer.campaigns")
    names = [str(name) for name in (d.data.get("campaigns") or {})] if isinstance(d.data.get("campaigns"), Mapping) else []
    if callbacks is not None and callbacks not in names:
        hint = did_you_mean(callbacks, names)
        d.problem(("callbacks_campaign",), f"no campaign {callbacks!r} in dialer.campaigns ({hint}campaigns: "
                                           f"{', '.join(names) or 'none'})")
    d.done()
    top.done()
    return DialerConfig(
        enabled=enabled, trunk=trunk, tick_seconds=tick, connect_timeout=connect_timeout,
        amd=amd, pacing=pacing, campaigns=tuple(campaigns), abandon_guard=guard, callbacks_campaign=callbacks,
    )


def _guard(r: _DialerReader) -> GuardSettings:
    """``dialer.abandon_guard``; defaults (3%, judged from 100 live answers) when absent."""
    base = GuardSettings()
    before = len(r.problems)
    enabled = r.flag("enabled", base.enabled)
    limit = r.get("limit", base.limit, _abandon_rate, "a share in (0, 0.1], e.g. 0.03 for 3%")
    min_live = r.integer("min_live_answers", base.min_live_answers, 1, 1_000_000)
    check_seconds = r.number("check_seconds", base.check_seconds, 5.0, 3600.0)
    resume = r.number("resume_fraction", base.resume_fraction, 0.01, 1.0)
    r.done()
    if len(r.problems) != before:
        return base
    return GuardSettings(enabled=enabled, limit=limit, min_live_answers=min_live,
                         check_seconds=check_seconds, resume_fraction=resume)


def _targets_within_guard(d: _DialerReader, guard: GuardSettings, pacing: PacerChoice,
                          campaigns: Sequence[CampaignConfig]) -> None:
    """A pacer aiming above the guard's limit would spend its day held to progressive."""
    def complaint(target: float) -> str:
        return (f"{target:g} is above dialer.abandon_guard.limit ({guard.limit:g}): the guard would hold "
                f"the campaign to progressive dialing; lower it or raise the limit")

    if pacing.settings.target_abandon > guard.limit:
        d.problem(("pacing", "target_abandon"), complaint(pacing.settings.target_abandon))
    for c in campaigns:
        target = c.pacing.settings.target_abandon
        if target > guard.limit and target != pacing.settings.target_abandon:
            d.problem(("campaigns", c.name, "pacing", "target_abandon"), complaint(target))


def _trunk(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("")
    if not _CHANNEL.match(value):
        raise ValueError("not a channel: technology/resource")
    if "{phone}" not in value:
        raise ValueError("no {phone} in it")
    try:
        value.format(phone="0")
    except (KeyError, IndexError, ValueError):
        raise ValueError("{phone} is the only placeholder; write other braces as {{ and }}") from None
    return value


def _abandon_rate(value: Any) -> float:
    rate = finite_number(value, " in (0, 0.1]")
    if not 0 < rate <= 0.1:
        raise ValueError("")
    return rate


def _pacer_choice(r: _DialerReader, base: PacerChoice, dial_mode: str | None) -> PacerChoice:
    """Read a ``pacing`` block; unset keys keep ``base`` (the dialer's defaults for a campaign)."""
    before = len(r.problems)
    s = base.settings
    pacer = r.choice("pacer", PACERS, base.pacer)
    target = r.get("target_abandon", s.target_abandon, _abandon_rate, "a share in (0, 0.1], e.g. 0.03 for 3%")
    min_ratio = r.number("min_ratio", s.min_ratio, 1.0, MAX_RATIO)
    max_ratio = r.number("max_ratio", s.max_ratio, 1.0, MAX_RATIO)
    ringing = r.number("max_ringing_per_agent", s.max_ringing_per_agent, 1.0, MAX_RATIO)
    ring_timeout = r.number("ring_timeout", s.ring_timeout, 15.0, 120.0)
    fixed_ratio = r.number("fixed_ratio", base.fixed_ratio, 1.0, MAX_RATIO)
    r.done()
    written = set(r.data)
    if min_ratio > max_ratio and written & {"min_ratio", "max_ratio"}:
        if "max_ratio" in written:
            r.problem(("max_ratio",), f"must be >= min_ratio ({min_ratio}), got {max_ratio}")
        else:
            r.problem(("min_ratio",), f"must be <= max_ratio ({max_ratio}), got {min_ratio}")
    involved = [k for k in ("fixed_ratio", "max_ratio", "min_ratio", "pacer") if k in written]
    if pacer == "fixed" and not min_ratio <= fixed_ratio <= max_ratio and involved:
        r.problem((involved[0],), f"with pacer fixed, fixed_ratio ({fixed_ratio}) must be within "
                                  f"min_ratio..max_ratio ({min_ratio}..{max_ratio})")
    if dial_mode is not None and dial_mode != "predictive":
        if "pacer" in written and pacer != "progressive":
            r.problem(("pacer",), f"a {dial_mode} campaign dials one call per ready agent: "
                                  f"leave pacer out or write progressive, got {pacer!r}")
        pacer = "progressive"
    settings = s
    if len(r.problems) == before:
        try:
            settings = PacingSettings(
                target_abandon=target, min_ratio=min_ratio, max_ratio=max_ratio,
                max_ringing_per_agent=ringing, ring_timeout=ring_timeout,
            )
        except ValueError as exc:
            r.located(exc, [f.name for f in dataclasses.fields(PacingSettings)])
    return PacerChoice(pacer=pacer, settings=settings, fixed_ratio=fixed_ratio)


def _campaign(name: str, c: _DialerReader, pacing: PacerChoice) -> CampaignConfig | None:
    before = len(c.problems)
    if not _NAME.match(name):
        c.problem((), "campaign names are a letter then letters, digits, _ or - (at most 40)")
    dial_mode = c.choice("dial_mode", DIAL_MODES, "predictive")
    caller_id = c.get("caller_id", MISSING, _caller_id, 'a returnable phone number in quotes, e.g. "4008001234"')
    queue = c.text("queue", "outbound", _NAME, "a queue name (letters, digits, _ or -)")
    timezone = c.get("timezone", "Asia/Shanghai", _timezone, "an IANA time zone such as Asia/Shanghai")
    hours = _calling_hours(c.sub("calling_hours"))
    max_attempts = c.integer("max_attempts", 3, 1, 100)
    retry = _retry_minutes(c.sub("retry"))
    machine_action = c.choice("machine_action", MACHINE_ACTIONS, "hangup")
    sound_hint = "an Asterisk sound name without extension, e.g. custom/dialer/safe_harbor-zh"
    machine_message = c.get("machine_message", "", _sound, sound_hint)
    safe_harbor = c.get("safe_harbor_message", MISSING, _sound, sound_hint)
    active = c.flag("active", True)
    handout = c.choice("handout", HANDOUT_MODES, "none")
    route = c.choice("route", ROUTES, "queue")
    auto_dial = c.integer("auto_dial", 0, 0, 600)
    if auto_dial and dial_mode != "preview":
        c.problem(("auto_dial",), f"auto_dial is for preview campaigns (each agent's next lead dialed for them); a "
                                  f"{dial_mode} campaign dials by its pacer")
    elif 0 < auto_dial < 3:
        c.problem(("auto_dial",), f"at least 3 seconds (time to write the last call's disposition), or 0 for off; "
                                  f"got {auto_dial}")
    if route == "team" and dial_mode == "preview":
        c.problem(("route",), "route: team is for paced campaigns (progressive, predictive); a preview call "
                              "rings the agent who previewed the lead")
    elif route == "team" and handout == "none":
        c.problem(("route",), "route: team sends each lead's call to the team holding it: it needs handout: team "
                              "or agent (with handout: none leads are dialed whoever holds them)")
    campaign_pacing = _pacer_choice(c.sub("pacing"), pacing, dial_mode)
    c.done()
    policy = RetryPolicy()
    if retry is not None:
        try:
            policy = RetryPolicy(max_attempts=max_attempts, retry_minutes=retry)
        except ValueError as exc:
            c.located(exc)
    clean = len(c.problems) == before
    try:
        # With problems reported already, fields the reader checked get valid stand-ins so
        # that Campaign's own rules (machine_message) are still judged, each problem once.
        campaign = Campaign(
            name=name if clean else "campaign", dial_mode=dial_mode, caller_id=caller_id, queue=queue,
            timezone=timezone, calling_hours=hours or CallingHours(), retry=policy,
            machine_action=machine_action, machine_message=machine_message,
            safe_harbor_message=safe_harbor if clean else "campaign", active=active,
        )
    except ValueError as exc:
        c.located(exc)
        return None
    return (CampaignConfig(campaign=campaign, pacing=campaign_pacing, handout=handout, route=route,
                           auto_dial=auto_dial) if clean else None)


def _caller_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise TypeError("write the number in quotes: YAML drops leading zeros and reads 0-prefixed numbers as octal")
    if not isinstance(value, str):
        raise TypeError("")
    if not _CALLER_ID.match(value):
        raise ValueError("3 to 20 digits, optionally after a +")
    return value


def _timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("")
    try:
        zone(value)
    except ValueError:
        raise ValueError("unknown time zone") from None
    return value


def _sound(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("")
    if not _SOUND.match(value) or ".." in value.split("/"):
        raise ValueError("")
    if _SOUND_EXTENSION.search(value):
        raise ValueError("leave out the extension: Asterisk picks the format")
    return value


def _clock_time(value: Any) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        raise TypeError('write the time in quotes, e.g. "20:00": YAML reads 20:00 unquoted as a number of minutes')
    if not isinstance(value, str):
        raise TypeError("")
    match = _TIME.match(value)
    if match is None:
        raise ValueError("")
    return time(int(match.group(1)), int(match.group(2)))


def _calling_hours(r: _DialerReader) -> CallingHours | None:
    before = len(r.problems)
    start = r.get("start", EARLIEST_CALL, _clock_time, "a time HH:MM")
    end = r.get("end", LATEST_CALL, _clock_time, "a time HH:MM")
    r.done()
    if start < EARLIEST_CALL:
        r.problem(("start",), f"calls may start at 08:00 local time of the called party at the earliest, got {start:%H:%M}")
    if end > LATEST_CALL:
        r.problem(("end",), f"calls must end by 21:00 local time of the called party, got {end:%H:%M}")
    if len(r.problems) != before:
        return None
    try:
        return CallingHours(start=start, end=end)
    except ValueError as exc:
        r.problem(("end",) if "end" in r.data else ("start",), str(exc).removeprefix("calling_hours: "))
        return None


def _retry_minutes(r: _DialerReader) -> dict[str, int | None] | None:
    """``retry:`` outcome -> minutes (null: no retry) over the defaults of :class:`RetryPolicy`."""
    before = len(r.problems)
    minutes: dict[str, int | None] = dict(RetryPolicy().retry_minutes)
    for outcome, value in r.data.items():
        r.used.add(outcome)
        if outcome not in ATTEMPT_OUTCOMES:
            hint = did_you_mean(str(outcome), _RETRY_OUTCOMES)
            r.problem((outcome,), f"not an outcome ({hint}one of {', '.join(_RETRY_OUTCOMES)})")
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            r.problem((outcome,), f"expected minutes (an integer >= 1) or null for no retry, got {describe_value(value)}")
            continue
        if (outcome == "abandoned" and value is not None and value < MIN_ABANDONED_RETRY_MINUTES):
            r.problem((outcome,), f"at least {MIN_ABANDONED_RETRY_MINUTES} minutes (Ofcom: no repeat call within "
                                  f"72 hours of an abandoned call) or null, got {value}")
            continue
        minutes[outcome] = value
    if len(r.problems) != before:
        return None
    return minutes


# --- describing a reload ---------------------------------------------------------------


def describe_changes(old: DialerConfig, new: DialerConfig) -> list[str]:
    """Each setting that differs, as ``dialer.pacing.max_ratio: 3.0 -> 2.0``, in file order.

    An added or removed campaign is one line (``dialer.campaigns.x: added``). A campaign's
    pacing line is left out when the campaign follows the dialer-wide value both before
    and after: the ``dialer.pacing`` line already says it.
    """
    before, after = _flatten(old), _flatten(new)
    lines = []
    for key in _ordered_union(before, after):
        was, now = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if was == now:
            continue
        parts = key.split(".")
        if parts[1] == "campaigns":
            head = ".".join(parts[:3])
            if len(parts) == 3:
                lines.append(f"{key}: {'added' if now is not _ABSENT else 'removed'}")
                continue
            if (head in before) != (head in after):
                continue  # covered by the campaign's added/removed line
            if parts[3] == "pacing":
                dialer_wide = f"dialer.pacing.{parts[4]}"
                if was == before[dialer_wide] and now == after[dialer_wide]:
                    continue
        lines.append(f"{key}: {_show(was)} -> {_show(now)}")
    return lines


_ABSENT: Any = object()


def _ordered_union(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    keys = list(a)
    keys.extend(k for k in b if k not in a)
    return keys


def _flatten(config: DialerConfig) -> dict[str, Any]:
    flat: dict[str, Any] = {
        "dialer.enabled": config.enabled,
        "dialer.trunk": config.trunk,
        "dialer.tick_seconds": config.tick_seconds,
        "dialer.connect_timeout": config.connect_timeout,
        "dialer.amd.enabled": config.amd.enabled,
        "dialer.amd.machine_as_abandoned": config.amd.machine_as_abandoned,
    }
    flat["dialer.callbacks_campaign"] = config.callbacks_campaign
    for f in dataclasses.fields(config.abandon_guard):
        flat[f"dialer.abandon_guard.{f.name}"] = getattr(config.abandon_guard, f.name)
    _flatten_pacing(flat, "dialer.pacing", config.pacing)
    for entry in config.campaigns:
        c = entry.campaign
        prefix = f"dialer.campaigns.{c.name}"
        flat[prefix] = True
        flat.update({
            f"{prefix}.dial_mode": c.dial_mode,
            f"{prefix}.caller_id": c.caller_id,
            f"{prefix}.queue": c.queue,
            f"{prefix}.timezone": c.timezone,
            f"{prefix}.calling_hours.start": c.calling_hours.start,
            f"{prefix}.calling_hours.end": c.calling_hours.end,
            f"{prefix}.max_attempts": c.retry.max_attempts,
        })
        for outcome in _RETRY_OUTCOMES:
            flat[f"{prefix}.retry.{outcome}"] = c.retry.retry_minutes.get(outcome)
        flat.update({
            f"{prefix}.machine_action": c.machine_action,
            f"{prefix}.machine_message": c.machine_message,
            f"{prefix}.safe_harbor_message": c.safe_harbor_message,
            f"{prefix}.active": c.active,
            f"{prefix}.handout": entry.handout,
            f"{prefix}.route": entry.route,
            f"{prefix}.auto_dial": entry.auto_dial,
        })
        _flatten_pacing(flat, f"{prefix}.pacing", entry.pacing)
    return flat


def _flatten_pacing(flat: dict[str, Any], prefix: str, choice: PacerChoice) -> None:
    flat[f"{prefix}.pacer"] = choice.pacer
    for f in dataclasses.fields(choice.settings):
        flat[f"{prefix}.{f.name}"] = getattr(choice.settings, f.name)
    flat[f"{prefix}.fixed_ratio"] = choice.fixed_ratio


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, str):
        return repr(value)
    return str(value)

