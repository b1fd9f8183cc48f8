"""The outbound dialer service: pacing ticks -> leads claimed -> AMI Originate -> outcomes stored.

This is the thin Twisted layer around the pure parts:

- every ``tick_seconds`` each active progressive or predictive campaign asks its
  :class:`~callcenter.dialer.pacing.Pacer` how many calls to place now, from the agents
  of the campaign's queue (the engine's :class:`~callcenter.state.agents.AgentBoard`)
  and the calls in flight (:class:`~callcenter.dialer.calls.DialBook`);
- it claims that many leads in the repository's thread pool
  (:func:`callcenter.storage.dialer.claim_leads`: DNC, calling hours and "never two
  attempts at once" are enforced there, in one transaction) and originates one call per
  lead into ``[dialer-answered]`` (``dialplans/dialer.conf``: AMD, machine handling, the
  outbound queue with the connect timeout, the safe-harbor message);
- AMI events end each call exactly once (:class:`DialBook`); the outcome goes to the
  pacer, to Prometheus and to the lead's attempt history
  (:func:`callcenter.storage.dialer.finish_attempt`, which applies the retry rules);
- ``config/dialer.yaml`` is watched (:class:`~callcenter.dialer.reload.ConfigWatcher`);
  a valid edit changes the pacers' settings within a tick, a bad one is logged and the
  running settings stay.

Preview campaigns are not paced: an agent asks for the next lead (:meth:`DialerService.preview_next`),
sees it, and dials it (:meth:`DialerService.preview_dial`): the agent's phone rings first
and the lead is dialed from it (``[dialer-preview]``).
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from callcenter.ami import actions
from callcenter.ami.client import (
    AmiClient,
    AmiConnectionLost,
    ListenerHandle,
    Subscription,
)
from callcenter.ami.codec import Message
from callcenter.dialer.calls import Dial, DialBook, DialConnected, DialEnded
from callcenter.dialer.campaign import zone
from callcenter.dialer.config import CampaignConfig, DialerConfig, PacerChoice
from callcenter.dialer.guard import GuardVerdict, LedgerCounts, judge
from callcenter.dialer.handout import owners_for_pacing, owners_for_preview
from callcenter.dialer.pacing import (
    FixedRatioPacer,
    Pacer,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptivePacer,
)
from callcenter.pending import PendingWork
from callcenter.settings import AgentSettings
from callcenter.state.agents import AgentBoard, AgentState, agent_id_of
from callcenter.storage import dialer as store
from callcenter.storage.dialer_records import (
    AttemptResult,
    CampaignRecord,
    LeadBacklog,
    LeadRow,
    LeadToDial,
    LedgerDay,
    OpenAttempt,
)
from callcenter.storage.records import InvalidFieldError, canonical_phone
from callcenter.storage.repository import Repository

__all__ = ["ABANDONED_COLUMN", "PREVIEW_SKIP_RETRY_MINUTES", "CampaignStatus", "DialerMetrics", "DialerService", "LaneStatus", "PreviewError",
           "make_pacer"]

_log = Logger(namespace="callcenter.dialer")

#: Calls claimed per tick at most (a burst of Originates is spread over the next ticks).
MAX_DIALS_PER_TICK = 20
#: Seconds a campaign with no lead due waits before asking the database again.
NO_LEADS_BACKOFF = 15.0
#: Seconds past the ring timeout before an unanswered call without OriginateResponse is lost.
RING_MARGIN = 20.0
#: Seconds an answered call may stay in AMD and the queue without a result.
ANSWERED_LIMIT = 180.0
#: Seconds a conversation may last before its attempt is closed as lost.
CONNECTED_LIMIT = 4 * 3600.0

BACKLOG_SECONDS = 15.0
#: How long a start waits for Asterisk's channel list to adopt the calls an earlier run left
#: (live ones are tracked again, the others end as failed); without it, all end as failed.
RECOVERY_WAIT = 30.0
#: The ``Uniqueid`` the dialer gives each call it places (``ChannelId``): ``dial-<run>-<attempt id>``.
_DIAL_UNIQUEID = re.compile(r"^dial-[0-9a-f]+-([0-9]+)$")
#: The events the dial book reads (held while a start adopts the earlier run's calls, at most
#: this many: the rest are dropped, logged).
_BOOK_EVENTS = frozenset({"UserEvent", "AgentConnect", "OriginateResponse"})
_HELD_EVENTS_MAX = 10_000
#: A start that could not end the earlier run's lost attempts tries again, this often.
STALE_RETRY_SECONDS = 60.0
STALE_TRIES = 10


def _duration(value: str | None) -> float | None:
    """Seconds of a ``CoreShowChannel`` ``Duration`` (``HH:MM:SS``), None if unreadable."""
    parts = (value or "").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    hours, minutes, seconds = (int(p) for p in parts)
    return float(hours * 3600 + minutes * 60 + seconds)
"""Seconds between two readings of the campaigns' leads still to call (the wallboard's
"waiting" column and the ``callcenter_dialer_leads_*`` gauges)."""


class PreviewError(ValueError):
    """A preview request the dialer refuses; ``field`` names the offending input."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


#: Seconds the agent's own phone may ring when a preview call starts.
AGENT_RING_SECONDS = 20
#: Minutes until a previewed lead the agent skipped is due again (unless the agent says otherwise).
PREVIEW_SKIP_RETRY_MINUTES = 60
#: The column of a call back for a caller who hung up waiting: how long, in which queue.
ABANDONED_COLUMN = "abandoned"


def make_pacer(choice: PacerChoice, timezone: str = "UTC") -> Pacer:
    """A new pacer of the kind ``choice.pacer``, configured with ``choice.settings``.

    ``timezone`` is the campaign's: VICIdial's pacer resets its drop count at local
    midnight and tapers by the local time of day.
    """
    pacer: Any
    if choice.pacer == "predictive":
        pacer = PredictivePacer(target_abandon=choice.settings.target_abandon)
    elif choice.pacer == "vicidial":
        offset = datetime.now(UTC).astimezone(zone(timezone)).utcoffset()
        pacer = VicidialAdaptivePacer(clock_offset=offset.total_seconds() if offset is not None else 0.0)
    elif choice.pacer == "fixed":
        pacer = FixedRatioPacer(choice.fixed_ratio)
    elif choice.pacer == "progressive":
        pacer = ProgressivePacer()
    else:
        raise ValueError(f"pacing.pacer: unknown pacer {choice.pacer!r}")
    pacer.configure(choice.settings)
    return pacer  # type: ignore[no-any-return]


class DialerMetrics:
    """Prometheus metrics of the dialer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = PromCounter("callcenter_dialer_attempts", "dial attempts ended, by campaign and outcome",
                                    ["campaign", "outcome"], registry=registry)
        self.placed = PromCounter("callcenter_dialer_calls_placed", "calls originated", ["campaign"], registry=registry)
        self.in_flight = Gauge("callcenter_dialer_calls_in_flight", "calls placed and not yet ended", ["campaign"],
                               registry=registry)
        self.connect_seconds = Histogram(
            "callcenter_dialer_connect_seconds", "answered human: AMD verdict -> agent bridged", ["campaign"],
            registry=registry, buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0))
        self.guard_engaged = Gauge("callcenter_dialer_abandon_guard_engaged",
                                   "1 while the campaign's ledger is over the abandonment limit and it dials "
                                   "progressively", ["campaign"], registry=registry)
        self.abandon_rate = Gauge("callcenter_dialer_abandon_rate",
                                  "abandoned / live answers since the service started (today's ledger is in SQL)",
                                  ["campaign"], registry=registry)
        self.config_reloads = PromCounter("callcenter_dialer_config_reloads", "dialer.yaml changes applied",
                                          registry=registry)
        self.db_errors = PromCounter("callcenter_dialer_db_errors", "dialer repository calls that failed",
                                     ["operation"], registry=registry)
        self.leads_waiting = Gauge("callcenter_dialer_leads_waiting", "leads still to call (new or retry), "
                                   f"read every {BACKLOG_SECONDS:g} s", ["campaign"], registry=registry)
        self.leads_due = Gauge("callcenter_dialer_leads_due", "leads still to call that are due now",
                               ["campaign"], registry=registry)
        self.oldest_lead_seconds = Gauge("callcenter_dialer_oldest_waiting_lead_seconds",
                                         "how long the oldest lead still to call has waited since it was added "
                                         "(a call back: since the caller asked); 0 with none", ["campaign"],
                                         registry=registry)


@dataclass
class _Lane:
    """A campaign's pacing lane: the whole campaign (``team`` empty), or, for a campaign
    with ``route: team``, one team: its agents, its leads, its calls, its own pacer."""

    team: str
    queue: str
    """Whose agents the lane paces for, and where its answered calls go."""
    pacer: Pacer
    progressive: ProgressivePacer
    """Paces the lane while the campaign's abandonment guard is engaged."""
    claiming: int = 0  # leads being claimed right now (count as ringing dials)
    idle_until: float = 0.0  # no lead was due: the clock reading to ask again at
    last_decision: int = 0


@dataclass
class _Campaign:
    """One campaign the service dials for."""

    record: CampaignRecord
    config: CampaignConfig
    lanes: dict[str, _Lane]
    """By team (``""``: the one lane of a campaign routed to its queue)."""
    placed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    connect_latencies: list[float] = field(default_factory=list)
    guard: GuardVerdict = field(default_factory=lambda: GuardVerdict(False))
    guard_due: float = 0.0  # clock reading of the next ledger check
    guard_checking: bool = False
    ledger: tuple[LedgerCounts, ...] = ()

    @property
    def name(self) -> str:
        return self.config.campaign.name

    @property
    def last_decision(self) -> int:
        """The dials the lanes' pacers asked for at their last tick, together."""
        return sum(lane.last_decision for lane in self.lanes.values())


@dataclass(frozen=True)
class LaneStatus:
    """One team's lane of a campaign with ``route: team``."""

    team: str
    queue: str
    agents_ready: int
    agents_busy: int
    in_flight: int
    last_decision: int


@dataclass(frozen=True)
class CampaignStatus:
    """What the dialer is doing for one campaign (for the API, the demo and tests)."""

    name: str
    campaign_id: int
    pacer: str
    dial_mode: str
    placed: int
    in_flight: int
    ringing: int
    agents_ready: int
    agents_busy: int
    last_decision: int
    outcomes: dict[str, int]
    abandon_rate: float | None
    max_ratio: float
    abandon_guard: str = ""
    """Why the campaign dials progressively now (its ledger is over the limit); empty when it does not."""
    ledger: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """The ledger the guard last read: ``"today"`` and ``"window"`` (the rolling 30 days, or since the
    campaign's first call), each ``{"live_answers", "abandoned", "rate"}``."""
    route: str = "queue"
    lanes: tuple[LaneStatus, ...] = ()
    """With ``route: team``: each team's agents, calls in flight and last decision."""
    backlog: LeadBacklog | None = None
    """Its leads still to call, as last read (every :data:`BACKLOG_SECONDS`); None before the first reading."""


@dataclass
class _Recovery:
    """A start taking over the calls an earlier run left in flight (see DialerService._recover)."""

    open: list[OpenAttempt] | None = None
    """The attempts still open in SQL, once read."""
    channels: list[Message] | None = None
    """Asterisk's channels (``CoreShowChannel`` events), once known."""
    events: list[Message] = field(default_factory=list)
    """The dial book's events meanwhile, replayed once the calls are adopted."""
    started: datetime | None = None
    """The start's wall clock: attempts started before it are the earlier run's."""
    timer: IDelayedCall | None = None


class DialerService(Service):
    """Places the calls of the active campaigns and records how each one ended."""

    name = "dialer"

    def __init__(
        self,
        config: DialerConfig,
        *,
        ami: AmiClient,
        repository: Repository,
        agents: AgentBoard,
        clock: IReactorTime,
        metrics: DialerMetrics,
        trunk: str | None = None,
        wrapup_seconds: Callable[[str], float] = lambda queue: 0.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        agent_channel: Callable[[str], str] = lambda agent: f"PJSIP/agent{agent}",
        on_conversation: Callable[[str, str], object] = lambda linkedid, agent: None,
        people: Mapping[str, AgentSettings] | None = None,
        team_queues: Callable[[str], Mapping[str, str]] = lambda queue: {},
    ) -> None:
        self.config = config
        self.ami = ami
        self.repository = repository
        self.agents = agents
        self.clock = clock
        self.metrics = metrics
        self.trunk = trunk or config.trunk
        self.wrapup_seconds = wrapup_seconds
        self.now = now
        self.agent_channel = agent_channel
        self.on_conversation = on_conversation
        self.people: Mapping[str, AgentSettings] = people or {}
        """The configured agents by id (their teams, for campaigns dialing handed-out leads)."""
        self.team_queues = team_queues
        """Team -> its queue, of a ``per_team`` queue (``Settings.team_queues``): the lanes of ``route: team``."""
        self.book = DialBook()
        self._previews: dict[str, tuple[_Campaign, LeadToDial]] = {}
        # an agent's claim under way (preview_next): a second request waits for its lead
        self._claiming: dict[str, tuple[_Campaign, list[Deferred[LeadToDial | None]]]] = {}
        # agents whose previewed lead is being checked before its call (preview_dial)
        self._dialing_previews: set[str] = set()
        self._auto_dialing: dict[str, int] = {}
        """Agent -> the attempt auto-dial placed for them (0 while their lead is being claimed)."""
        self._auto_after: dict[str, float] = {}
        """Agent -> clock reading before which auto-dial does not look for their next lead (none was due)."""
        self._auto_held: dict[str, float] = {}
        """Agent -> their board state's start when their phone did not answer an auto-dial: held until it changes."""
        self.campaigns: dict[str, _Campaign] = {}
        self._by_id: dict[int, _Campaign] = {}
        # every campaign's name by id, kept after dialer.yaml drops it: its calls still in
        # flight end under its name (metrics, logs)
        self._names: dict[int, str] = {}
        self._loop: LoopingCall | None = None
        self._subscriptions: list[Subscription | ListenerHandle] = []
        self._pending = PendingWork()
        self._backlogs: dict[int, LeadBacklog] = {}
        self._backlog_due = 0.0  # clock reading of the next backlog reading
        self._backlog_reading = False
        self._token = secrets.token_hex(3)
        self._recovery: _Recovery | None = None
        self.ready: Deferred[None] = Deferred()

    # ------------------------------------------------------------------ lifecycle

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self._recovery = _Recovery()
        self._subscriptions.append(self.ami.subscribe(self.on_event))
        self._subscriptions.append(self.ami.on_resync(self.on_resync))
        self._track(self._sync(self.config, recover=True).addCallbacks(self._started, self._start_failed))

    def _start_failed(self, failure: Failure) -> None:
        """The start could not read the campaigns: nothing is dialed, no event held."""
        self._recovery = None
        _log.failure("dialer.start_failed", failure)

    def _started(self, _: object) -> None:
        if not self.running:
            return
        self._start_loop()
        _log.info("dialer.started campaigns={campaigns} trunk={trunk}", campaigns=sorted(self.campaigns),
                  trunk=self.trunk)
        if not self.ready.called:
            self.ready.callback(None)

    def _start_loop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        loop = LoopingCall(self.tick)
        loop.clock = self.clock
        self._loop = loop
        loop.start(self.config.tick_seconds, now=False).addErrback(
            lambda failure: _log.failure("dialer.tick_loop_failed", failure))

    def stopService(self) -> Deferred[None] | None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        for handle in self._subscriptions:
            handle.cancel()
        self._subscriptions.clear()
        if self._recovery is not None and self._recovery.timer is not None and self._recovery.timer.active():
            self._recovery.timer.cancel()
        self._recovery = None
        # Calls still in flight go on in Asterisk: their attempts stay open for the next
        # start, which adopts those still live and ends the others as failed.
        if len(self.book):
            _log.info("dialer.stopped_with_calls count={count}: left in flight for the next start",
                      count=len(self.book))
        for agent, (_, lead) in list(self._previews.items()):
            self._close_preview(agent, lead, "previewed, not dialed: dialer stopped")
        return self._pending.wait()

    # ------------------------------------------------------------------ configuration

    def _sync(self, config: DialerConfig, *, recover: bool = False) -> Deferred[None]:
        """Store the campaigns' rules and build their pacers.

        With ``recover`` (at start-up only) the attempts an earlier run left open are read
        for :meth:`_recover`: those of every stored campaign, one removed or renamed in
        ``dialer.yaml`` since included (its leads would stay ``dialing`` for good).
        """
        campaigns = [c.campaign for c in config.campaigns]
        now = self.now()

        def in_thread(session: Any) -> tuple[list[CampaignRecord], list[OpenAttempt]]:
            records = store.sync_campaigns(session, campaigns)
            return records, store.open_attempts(session, started_before=now) if recover else []

        def built(result: tuple[list[CampaignRecord], list[OpenAttempt]]) -> None:
            records, left_open = result
            by_name = {r.name: r for r in records}
            for campaign_config in config.campaigns:
                name = campaign_config.campaign.name
                record = by_name[name]
                current = self.campaigns.get(name)
                if current is None:
                    current = _Campaign(record, campaign_config, self._lanes(campaign_config, {}))
                    self.campaigns[name] = current
                else:
                    self._reconfigure(current, campaign_config)
                    current.record = record
                self._by_id[record.id] = current
                self._names[record.id] = name
            for name in set(self.campaigns) - {c.campaign.name for c in config.campaigns}:
                _log.info("dialer.campaign_removed campaign={campaign}", campaign=name)
                gone = self.campaigns.pop(name)
                self._by_id.pop(gone.record.id, None)
            if recover and self._recovery is not None:
                self._recovery.open = left_open
                self._recovery.started = now
                self._recover_when_ready()

        return self.repository.run(in_thread).addCallback(built)

    # ------------------------------------------------------------------ taking over an earlier run's calls

    def _recover_when_ready(self) -> None:
        """Adopt the earlier run's calls once Asterisk's channels are known (or end them)."""
        recovery = self._recovery
        if recovery is None or recovery.open is None:
            return
        if not recovery.open:
            self._recover()
            return
        if recovery.channels is None and self.ami.connected:
            # the AMI session came up before this service listened: ask for the channels
            def listed(result: Any) -> None:
                if self._recovery is recovery and recovery.channels is None:
                    recovery.channels = list(result.events)
                    self._recover()

            self._track(self.ami.send(actions.core_show_channels()).addCallbacks(
                listed, lambda failure: _log.warn("dialer.recovery_channels_failed error={error}",
                                                  error=failure.getErrorMessage())))
        if recovery.channels is not None:
            self._recover()
        elif recovery.timer is None:
            recovery.timer = self.clock.callLater(RECOVERY_WAIT, self._recover)

    def _recover(self) -> None:
        """The start's take-over: each attempt an earlier run left open whose call is live in
        Asterisk (a channel ``dial-<run>-<attempt>``, or events for it since this run listens)
        is tracked again (:meth:`DialBook.adopt`) and ends with its call; the others end as
        ``failed``, their calls lost while no dialer listened. Then the events held meanwhile
        are read, and pacing starts."""
        recovery = self._recovery
        if recovery is None or recovery.open is None or recovery.started is None:
            return
        started = recovery.started
        self._recovery = None
        if recovery.timer is not None and recovery.timer.active():
            recovery.timer.cancel()
        channels = recovery.channels or []
        live: dict[int, Message] = {}
        for channel in channels:
            match = _DIAL_UNIQUEID.match(channel.get("Uniqueid") or "")
            if match:
                live[int(match.group(1))] = channel
        heard: dict[int, str] = {}  # attempt -> its call's Uniqueid, from the events held
        for msg in recovery.events:
            match = _DIAL_UNIQUEID.match(msg.get("Uniqueid") or "")
            if match:
                heard.setdefault(int(match.group(1)), match.group(0))
        now = self.clock.seconds()
        wall = self.now()
        adopted: list[int] = []
        for left in recovery.open:
            record = left.attempt
            found = live.get(record.id)
            uniqueid = found.get("Uniqueid") if found is not None else heard.get(record.id)
            if record.id in self.book:  # this service's own call (stopped and started again)
                adopted.append(record.id)
                continue
            if not uniqueid or record.lead_id is None:
                continue
            campaign = self._by_id.get(record.campaign_id)
            to_agent = campaign is not None and campaign.config.campaign.dial_mode == "preview"
            bridge = found.get("BridgeId") if found is not None else None
            if to_agent:  # a preview call's channel is the agent's phone
                agent = self._known_agent(found.get("Channel") if found is not None else None)
            else:
                agent = self._agent_in_bridge(channels, bridge, uniqueid) if bridge else None
            # placed when its channel was made (a preview lead is claimed when offered, maybe
            # long before its call), else when its attempt began
            age = _duration(found.get("Duration")) if found is not None else None
            placed_at = now - (age if age is not None else max(0.0, (wall - record.started_at).total_seconds()))
            # a route: team campaign paces each team's calls apart: its lead's team
            lane = left.lead_team if campaign is not None and left.lead_team in campaign.lanes else ""
            dial = self.book.adopt(record.id, record.lead_id, record.campaign_id, uniqueid, placed_at, now,
                                   answered=found is not None and found.get("ChannelState") == "6",
                                   bridged=bool(bridge), agent=agent, to_agent=to_agent, lane=lane or "")
            adopted.append(record.id)
            self._names.setdefault(record.campaign_id, str(record.campaign_id))
            name = self._names[record.campaign_id]
            self.metrics.in_flight.labels(name).inc()
            _log.info("dialer.call_adopted campaign={campaign} attempt={attempt} lead={lead} state={state} "
                      "agent={agent}: placed by an earlier run, live in Asterisk", campaign=name,
                      attempt=record.id, lead=record.lead_id,
                      state="with an agent" if dial.connected_at is not None else
                      "answered" if dial.answered else "ringing", agent=agent or "-")
        if len(recovery.open) > len(adopted):
            self._fail_stale(sorted({r.attempt.campaign_id for r in recovery.open}), started, frozenset(adopted))
        for msg in recovery.events:
            self.on_event(msg)
        if recovery.channels is not None:
            # adopted for events held whose channel the list did not show (they came before
            # it): unless those events ended it, the call ended unseen
            for attempt_id in adopted:
                if attempt_id not in live:
                    end = self.book.failed(attempt_id, now, "channel gone at the dialer's start")
                    if end is not None:
                        self._ended(end)

    def _fail_stale(self, campaign_ids: Sequence[int], started: datetime, keep: frozenset[int],
                    tries: int = 1) -> None:
        """End the earlier run's open attempts but ``keep`` as failed; tried again a minute
        later while the database refuses (their leads would stay ``dialing``)."""
        def in_thread(session: Any) -> int:
            return sum(store.fail_stale_attempts(session, campaign_id, started_before=started,
                                                 reason="open when the dialer (re)started", now=started, keep=keep)
                       for campaign_id in campaign_ids)

        def failed(failure: Failure) -> None:
            self._db_failed("fail_stale_attempts", failure)
            if self.running and tries < STALE_TRIES:
                self.clock.callLater(STALE_RETRY_SECONDS, self._fail_stale, campaign_ids, started, keep, tries + 1)

        d = self.repository.run(in_thread)
        d.addCallbacks(lambda count: _log.info(
            "dialer.stale_attempts_failed count={count}: open when the dialer (re)started, no live call",
            count=count), failed)
        self._track(d)

    def _known_agent(self, channel: str | None) -> str | None:
        """The agent of a phone's channel name (``PJSIP/agent2101-0000002a``), if one is known."""
        agent = agent_id_of(channel)
        if agent is not None and (agent in self.people or self.agents.state_of(agent) != AgentState.LOGGED_OUT):
            return agent
        return None

    def _agent_in_bridge(self, channels: Sequence[Message], bridge: str, uniqueid: str) -> str | None:
        """The agent whose phone shares ``bridge`` with the call ``uniqueid``, if one does."""
        for channel in channels:
            if channel.get("BridgeId") != bridge or channel.get("Uniqueid") == uniqueid:
                continue
            agent = self._known_agent(channel.get("Channel"))
            if agent is not None:
                return agent
        return None

    def _lanes(self, config: CampaignConfig, current: Mapping[str, _Lane], *,
               keep_pacers: bool = True) -> dict[str, _Lane]:
        """The lanes ``config`` asks for, each with ``config``'s pacing settings. A lane of ``current``
        with the same team and queue is kept (its calls being claimed, its back-off), and so is its
        pacer, with what it learned, unless ``keep_pacers`` is false (another kind of pacer)."""
        rules = config.campaign
        wanted = dict(self.team_queues(rules.queue)) if config.route == "team" else {"": rules.queue}
        if config.route == "team" and not wanted:
            _log.warn("dialer.no_team_queues campaign={campaign} queue={queue}: route: team, but the queue has "
                      "no team queues (per_team: true, agents with teams): nothing is dialed",
                      campaign=rules.name, queue=rules.queue)
        lanes = {}
        for team, queue in sorted(wanted.items()):
            lane = current.get(team)
            if lane is None or lane.queue != queue:
                lane = _Lane(team, queue, make_pacer(config.pacing, rules.timezone), ProgressivePacer())
            elif keep_pacers:
                lane.pacer.configure(config.pacing.settings)
            else:
                lane.pacer = make_pacer(config.pacing, rules.timezone)  # another kind starts learning afresh
            lane.progressive.configure(config.pacing.settings)
            lanes[team] = lane
        return lanes

    def _reconfigure(self, campaign: _Campaign, new: CampaignConfig) -> None:
        old = campaign.config.pacing
        same_kind = (new.pacing.pacer, new.pacing.fixed_ratio) == (old.pacer, old.fixed_ratio)
        campaign.lanes = self._lanes(new, campaign.lanes, keep_pacers=same_kind)
        campaign.config = new

    def apply_config(self, config: DialerConfig) -> Deferred[None]:
        """A new valid ``dialer.yaml``: new settings for the running campaigns (pacers keep what they learned)."""
        old_tick = self.config.tick_seconds
        self.config = config
        self.metrics.config_reloads.inc()
        d = self._sync(config)
        if config.tick_seconds != old_tick and self._loop is not None:
            d.addCallback(lambda _: self._start_loop())
        return self._track(d)

    # ------------------------------------------------------------------ pacing

    def tick(self) -> None:
        """One pacing step for every campaign that dials by itself."""
        if self._recovery is not None:  # the earlier run's calls first: they may hold agents
            return
        now = self.clock.seconds()
        for end in self.book.expire(now, ringing=self._ring_timeout() + RING_MARGIN, answered=ANSWERED_LIMIT,
                                    connected=CONNECTED_LIMIT):
            self._ended(end)
        self._read_backlogs(now)
        if not self.config.enabled or not self.ami.connected:
            return
        for campaign in list(self.campaigns.values()):
            rules = campaign.config.campaign
            if not rules.active:
                continue
            if rules.dial_mode == "preview":
                if campaign.config.auto_dial:
                    self._auto_dial(campaign, now)
                continue
            self._check_guard(campaign, now)
            # calls of a lane a dialer.yaml edit removed (route changed) count in every lane until they end
            orphans = {d.lane for d in self.book.dials() if d.campaign_id == campaign.record.id} - campaign.lanes.keys()
            for lane in list(campaign.lanes.values()):
                if now >= lane.idle_until:
                    self._pace(campaign, lane, now, orphans)

    def _read_backlogs(self, now: float) -> None:
        """Every :data:`BACKLOG_SECONDS`: each campaign's leads still to call (one query)."""
        if self._backlog_reading or now < self._backlog_due or not self.campaigns:
            return
        self._backlog_reading = True
        self._backlog_due = now + BACKLOG_SECONDS
        ids = {campaign.record.id: campaign.name for campaign in self.campaigns.values()}
        d = self.repository.run(store.lead_backlogs, list(ids), now=self.now())

        def read(found: dict[int, LeadBacklog]) -> None:
            self._backlogs = found
            at = self.now()
            for campaign_id, backlog in found.items():
                name = ids[campaign_id]
                self.metrics.leads_waiting.labels(name).set(backlog.waiting)
                self.metrics.leads_due.labels(name).set(backlog.due)
                self.metrics.oldest_lead_seconds.labels(name).set(
                    max(0.0, (at - backlog.oldest).total_seconds()) if backlog.oldest is not None else 0.0)

        d.addCallbacks(read, lambda failure: self._db_failed("lead_backlogs", failure))
        d.addBoth(lambda _: setattr(self, "_backlog_reading", False))
        self._track(d)

    def _ring_timeout(self) -> float:
        return max((c.config.pacing.settings.ring_timeout for c in self.campaigns.values()),
                   default=self.config.pacing.settings.ring_timeout)

    def _agents_of(self, queue: str, now: float) -> tuple[int, list[float], list[float]]:
        ready, talking, wrapping = 0, [], []
        for agent in self.agents.agents():
            if queue not in agent.queues or queue in agent.paused_queues:
                continue  # paused in this queue alone (made outside the engine): Asterisk rings them not
            if agent.state is AgentState.READY:
                ready += 1
            elif agent.state is AgentState.RINGING:
                talking.append(0.0)
            elif agent.state is AgentState.ON_CALL:
                talking.append(max(0.0, now - agent.since))
            elif agent.state is AgentState.WRAP_UP:
                wrapping.append(max(0.0, now - agent.since))
        return ready, talking, wrapping

    def _person(self, agent: str) -> AgentSettings:
        known = self.people.get(agent)
        return known if known is not None else AgentSettings(id=agent, name=agent, team="", role="agent", queues={})

    def _logged_in(self, queue: str) -> list[AgentSettings]:
        """The agents logged in to ``queue``, whatever they are doing."""
        return [self._person(a.id) for a in self.agents.agents()
                if queue in a.queues and a.state is not AgentState.LOGGED_OUT]

    def _pace(self, campaign: _Campaign, lane: _Lane, now: float, orphans: Collection[str] = ()) -> None:
        """One lane's pacing step: its queue's agents, its calls in flight (and those of ``orphans``,
        lanes no longer configured), its holders' leads."""
        ready, talking, wrapping = self._agents_of(lane.queue, now)
        # The pacers' convention (the simulator's too): every call placed and not yet with an
        # agent counts as ringing, aged from when it was placed, plus the leads being claimed
        # right now. The predictive pacer also takes the calls already answered (in AMD or
        # the queue: most of them are people about to need an agent) apart.
        lanes = {lane.team, *orphans}
        ringing = self.book.ringing(now, campaign.record.id, lanes) + [0.0] * lane.claiming
        answered = self.book.answered_waiting(campaign.record.id, lanes)
        pacer = lane.progressive if campaign.guard.engaged else lane.pacer
        if isinstance(pacer, PredictivePacer):
            since_answer = [max(0.0, now - (d.answered_at or now)) for d in answered]
            want = pacer.dials_to_place(now, ready, talking, wrapping, ringing, dials_answered=since_answer)
        else:
            want = pacer.dials_to_place(now, ready, talking, wrapping, ringing + [now - d.placed_at for d in answered])
        lane.last_decision = want
        want = min(want, MAX_DIALS_PER_TICK)
        if want <= 0 or lane.claiming:
            return
        owners = owners_for_pacing(campaign.config.handout, self._logged_in(lane.queue))
        if owners is not None and not owners:
            return  # nobody who holds leads is logged in
        lane.claiming = want
        claimed = self.repository.run(store.claim_leads, campaign.record.id, limit=want, now=self.now(),
                                      owners=owners)
        claimed.addCallbacks(lambda leads: self._dial(campaign, lane, leads),
                             lambda failure: self._db_failed("claim_leads", failure))
        claimed.addBoth(lambda _: setattr(lane, "claiming", 0))
        self._track(claimed)

    # ------------------------------------------------------------------ abandonment guard

    def _check_guard(self, campaign: _Campaign, now: float) -> None:
        """Every ``check_seconds``: read the campaign's ledger and let the guard judge it.

        Campaigns that dial one call per ready agent already are not judged (they have
        nothing to fall back to).
        """
        guard = self.config.abandon_guard
        if not self._guarded(campaign):
            if campaign.guard.engaged:
                self._set_guard(campaign, GuardVerdict(False))
            return
        if campaign.guard_checking or now < campaign.guard_due:
            return
        campaign.guard_checking = True
        campaign.guard_due = now + guard.check_seconds
        tz = zone(campaign.config.campaign.timezone)
        day = self.now().astimezone(tz).date()
        d = self.repository.run(store.abandon_ledger, campaign.record.id, day=day, tz=tz,
                                machine_as_abandoned=self.config.amd.machine_as_abandoned)

        def judged(ledger: LedgerDay) -> None:
            window_days = (ledger.day - ledger.window_first).days + 1
            campaign.ledger = (
                LedgerCounts("today", ledger.live_answers, ledger.abandoned),
                LedgerCounts(f"{window_days} day{'s' if window_days > 1 else ''}", ledger.window_live_answers,
                             ledger.window_abandoned),
            )
            if self._guarded(campaign):  # the configuration may have changed during the query
                self._set_guard(campaign, judge(self.config.abandon_guard, campaign.guard.engaged,
                                                campaign.ledger))

        d.addCallbacks(judged, lambda failure: self._db_failed("abandon_ledger", failure))
        d.addBoth(lambda _: setattr(campaign, "guard_checking", False))
        self._track(d)

    def _guarded(self, campaign: _Campaign) -> bool:
        return self.config.abandon_guard.enabled and campaign.config.pacing.pacer != "progressive"

    def _set_guard(self, campaign: _Campaign, verdict: GuardVerdict) -> None:
        was = campaign.guard.engaged
        campaign.guard = verdict
        if verdict.engaged == was:
            return
        self.metrics.guard_engaged.labels(campaign.name).set(1 if verdict.engaged else 0)
        if verdict.engaged:
            _log.warn("dialer.abandon_guard_engaged campaign={campaign} reason={reason}: dialing one call per "
                      "ready agent until the ledger is back under the limit", campaign=campaign.name,
                      reason=verdict.reason)
        else:
            _log.info("dialer.abandon_guard_released campaign={campaign}: back to the {pacer} pacer",
                      campaign=campaign.name, pacer=campaign.config.pacing.pacer)

    def _dial(self, campaign: _Campaign, lane: _Lane, leads: Sequence[LeadToDial]) -> None:
        if not leads:
            lane.idle_until = self.clock.seconds() + NO_LEADS_BACKOFF
            _log.debug("dialer.no_leads_due campaign={campaign} team={team}", campaign=campaign.name,
                       team=lane.team or "-")
            return
        for lead in leads:
            self._originate(campaign, lead, lane)

    def _originate(self, campaign: _Campaign, lead: LeadToDial, lane: _Lane | None = None,
                   agent: str | None = None, *, auto: bool = False) -> Deferred[Any]:
        """Place the call of ``lead``: to the lead (paced, by ``lane``), or to ``agent``'s phone first (preview;
        ``auto``: placed by auto-dial, not by the agent's click)."""
        rules = campaign.config.campaign
        settings = campaign.config.pacing.settings
        uniqueid = f"dial-{self._token}-{lead.attempt_id}"
        now = self.clock.seconds()
        self.book.placed(lead.attempt_id, lead.lead_id, campaign.record.id, uniqueid, now,
                         lane=lane.team if lane is not None else "")
        campaign.placed += 1
        self.metrics.placed.labels(campaign.name).inc()
        self.metrics.in_flight.labels(campaign.name).inc()
        variables: dict[str, object] = {
            "CC_CAMPAIGN": campaign.record.id,
            "CC_LEAD": lead.lead_id,
            "CC_ATTEMPT": lead.attempt_id,
            "CC_ATTEMPT_NO": lead.attempt_no,  # the lead's how-manieth call, for the call record
            "CC_QUEUE": lane.queue if lane is not None else rules.queue,
            "CC_CONNECT_TIMEOUT": self.config.connect_timeout,
            "CC_MACHINE_ACTION": rules.machine_action,
            "CC_MACHINE_MESSAGE": rules.machine_message,
            "CC_SAFE_HARBOR": rules.safe_harbor_message,
            "CC_AMD": 1 if self.config.amd.enabled else 0,
            "CC_DIRECTION": "outbound",
            # for the agent's screen pop and the call record (AMI splits Variable on commas)
            "CC_PHONE": lead.phone,
            "CC_CUSTOMER_NAME": (lead.name or "").replace(",", " "),
            "CC_CAMPAIGN_NAME": rules.name,
        }
        if agent is None:
            action = actions.originate(
                self.trunk.format(phone=lead.phone), context="dialer-answered", exten="s", priority=1,
                caller_id=rules.caller_id or None, timeout_ms=int(settings.ring_timeout * 1000),
                channel_id=uniqueid, variables=variables)
            timeout = settings.ring_timeout + RING_MARGIN
        else:
            variables |= {"CC_DIAL": self.trunk.format(phone=lead.phone), "CC_AGENT": agent,
                          "CC_RING_TIMEOUT": int(settings.ring_timeout)}
            action = actions.originate(
                self.agent_channel(agent), context="dialer-preview", exten="s", priority=1,
                caller_id=rules.caller_id or None, timeout_ms=AGENT_RING_SECONDS * 1000,
                channel_id=uniqueid, variables=variables)
            timeout = AGENT_RING_SECONDS + RING_MARGIN
        d = self.ami.originate(action, timeout=timeout)

        def responded(msg: Message) -> None:
            if agent is not None and msg.get("Reason") != "4":  # the agent's phone, not the lead, did not answer
                end = self.book.failed(lead.attempt_id, self.clock.seconds(),
                                       f"agent {agent}'s phone did not answer (reason {msg.get('Reason')})")
                if end is not None and auto:
                    self._auto_missed(campaign, agent, lead)
                    return
            else:
                end = self.book.originate_response(lead.attempt_id, msg, self.clock.seconds())
            if end is not None:
                self._ended(end)

        def failed(failure: Failure) -> None:
            if isinstance(failure.value, AmiConnectionLost):
                # sent, and its answer lost with the connection: the call may well be ringing
                # or talking in Asterisk. It stays in flight: its events after the reconnect
                # end it (a person dropped is still in the ledger), the resync ends it if its
                # channel is gone, and the ring limit (expire) if it never answered.
                _log.warn("dialer.originate_unknown campaign={campaign} attempt={attempt}: the AMI connection "
                          "was lost before Asterisk answered; the call is kept until the reconnect says",
                          campaign=campaign.name, attempt=lead.attempt_id)
                return
            end = self.book.failed(lead.attempt_id, self.clock.seconds(),
                                   f"Originate failed: {failure.getErrorMessage()}")
            if end is not None:
                self._ended(end)

        return self._track(d.addCallbacks(responded, failed))

    # ------------------------------------------------------------------ preview

    def request_callback(self, phone: str, *, name: str | None, ticket: str | None = None,
                         sms_reply: str | None = None, abandoned: str | None = None
                         ) -> Deferred[tuple[bool, str]]:
        """A customer to call back: a lead of ``dialer.callbacks_campaign``.

        Either a hotline caller (``ticket``: the call's, in the lead's ``ticket`` column) who
        asked in the IVR or left a message, or who hung up waiting in a queue
        (``abandoned``: how long and where, in the lead's ``abandoned`` column); or a customer
        who answered a text (``sms_reply``: what they wrote, in the lead's ``sms_reply``
        column). The lead is dialed like the campaign's others (a preview campaign: an agent
        previews it and dials), within the calling hours and the DNC list. A number whose
        earlier lead there is done is dialed again (the new request replaces the old); one
        still waiting or being dialed is not added twice, except that a request the customer
        made replaces a waiting call back for an abandoned call (its ticket is the one the
        agent needs); a number on the DNC list, or not a phone number, is not queued.
        Returns (queued, why not), and logs either way.
        """
        if (ticket is None) == (sms_reply is None):
            raise ValueError("a call-back request comes from a ticket or an SMS reply, one of the two")
        if abandoned is not None and ticket is None:
            raise ValueError("an abandoned call's call back needs the call's ticket")
        origin = f"ticket {ticket}" if ticket is not None else f"SMS reply {sms_reply!r}"
        wanted = self.config.callbacks_campaign
        campaign = self.campaigns.get(wanted) if wanted else None
        if campaign is None:
            return succeed(self._callback_logged(
                None, origin, phone, False, "no dialer.callbacks_campaign" if not wanted else f"no campaign {wanted!r}"))
        extra = {"ticket": ticket} if ticket is not None else {"sms_reply": (sms_reply or "")[:500]}
        if abandoned is not None:
            extra[ABANDONED_COLUMN] = abandoned
        try:
            row = LeadRow(line=1, phone=phone, name=name, extra=extra)
        except ValueError as exc:
            return succeed(self._callback_logged(campaign, origin, phone, False, str(exc)))
        now = self.now()
        if abandoned is not None:
            list_name, source, actor = f"callback {ticket}", f"hotline caller hung up waiting, ticket {ticket}", "queue"
        elif ticket is not None:
            list_name, source, actor = f"callback {ticket}", f"hotline call-back request, ticket {ticket}", "ivr"
        else:
            list_name, source, actor = f"callback sms {row.phone}", f"SMS reply from {row.phone}", "sms"

        def in_thread(session: Any) -> tuple[bool, str]:
            result = store.import_leads(session, campaign.record.id, [row], list_name=list_name,
                                        source_file=source, actor=actor, now=now)
            if result.rows_ok:
                return True, ""
            if result.duplicates and store.reopen_lead(session, campaign.record.id, row, now=now):
                return True, ""
            if result.duplicates and abandoned is None and store.replace_waiting_callback(
                    session, campaign.record.id, row, replaces=ABANDONED_COLUMN, now=now):
                return True, ""
            if result.duplicates:
                return False, "a call-back to this number is already waiting"
            return False, "; ".join(p.reason for p in result.problems)

        def failed(failure: Failure) -> tuple[bool, str]:
            self._db_failed("request_callback", failure)
            return False, failure.getErrorMessage()

        d = self.repository.run(in_thread)
        d.addCallbacks(lambda outcome: self._callback_logged(campaign, origin, row.phone, *outcome), failed)
        return self._track(d)

    def close_abandoned_callback(self, phone: str, *, ticket: str) -> Deferred[bool]:
        """``phone`` talked with an agent (call ``ticket``): its call back for an abandoned call,
        if one still waits, is no longer needed and is closed (final outcome ``called_again``).
        True if one was closed."""
        wanted = self.config.callbacks_campaign
        campaign = self.campaigns.get(wanted) if wanted else None
        try:
            number = canonical_phone(phone)
        except InvalidFieldError:
            return succeed(False)
        if campaign is None:
            return succeed(False)
        now = self.now()

        def in_thread(session: Any) -> bool:
            return store.close_waiting_callback(session, campaign.record.id, number, only=ABANDONED_COLUMN,
                                                outcome="called_again", note=f"talked with an agent: {ticket}",
                                                now=now)

        def logged(closed: bool) -> bool:
            if closed:
                _log.info("dialer.callback_closed campaign={campaign} phone={phone} ticket={ticket}",
                          campaign=campaign.name, phone=number, ticket=ticket)
            return closed

        def failed(failure: Failure) -> bool:
            self._db_failed("close_abandoned_callback", failure)
            return False

        d = self.repository.run(in_thread)
        d.addCallbacks(logged, failed)
        return self._track(d)

    @staticmethod
    def _callback_logged(campaign: _Campaign | None, origin: str, phone: str, queued: bool,
                         reason: str) -> tuple[bool, str]:
        if queued:
            _log.info("dialer.callback_queued campaign={campaign} from={origin} phone={phone}",
                      campaign=campaign.name if campaign else "-", origin=origin, phone=phone)
        else:
            _log.warn("dialer.callback_not_queued from={origin} phone={phone} reason={reason}", origin=origin,
                      phone=phone, reason=reason)
        return queued, reason

    def preview_next(self, agent: str, campaign_name: str) -> Deferred[LeadToDial | None]:
        """The lead ``agent`` should call next in preview campaign ``campaign_name`` (claimed for them).

        The same lead is returned until the agent dials it; None when no lead is due. A
        campaign dialing handed-out leads offers the agent only theirs (``handout: agent``)
        or theirs and their team's not given to anyone yet (``team``).
        """
        campaign = self.campaigns.get(campaign_name)
        if campaign is None:
            raise PreviewError(f"no campaign {campaign_name!r}", "campaign")
        if campaign.config.campaign.dial_mode != "preview":
            raise PreviewError(f"campaign {campaign_name!r} dials in {campaign.config.campaign.dial_mode} mode, "
                               "not preview", "campaign")
        held = self._previews.get(agent) or self._claiming.get(agent)
        if held is not None and held[0] is not campaign:
            raise PreviewError(f"agent {agent} holds a lead of campaign {held[0].name!r}: dial it first", "agent")
        if agent in self._previews:
            return succeed(self._previews[agent][1])
        if agent in self._claiming:  # a second click while the first claim runs: the same lead
            waiter: Deferred[LeadToDial | None] = Deferred()
            self._claiming[agent][1].append(waiter)
            return waiter
        owners = owners_for_preview(campaign.config.handout, self._person(agent))
        self._claiming[agent] = (campaign, [])
        try:
            claimed = self.repository.run(store.claim_leads, campaign.record.id, limit=1, now=self.now(),
                                          owners=owners)
        except BaseException:
            del self._claiming[agent]  # no claim under way: the next request makes its own
            raise

        def hold(leads: list[LeadToDial]) -> LeadToDial | None:
            if not leads:
                return None
            self._previews[agent] = (campaign, leads[0])
            return leads[0]

        def settle(result: Any) -> Any:
            for waiter in self._claiming.pop(agent, (campaign, []))[1]:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)
            return result

        return self._track(claimed.addCallback(hold).addBoth(settle))

    # ------------------------------------------------------------------ auto-dial (preview campaigns)

    def _auto_dial(self, campaign: _Campaign, now: float) -> None:
        """Each agent of the campaign's queue ready for ``auto_dial`` seconds, with no auto-dialed call
        in flight, gets their next lead dialed: their phone rings, then the lead (as their "Dial")."""
        rules = campaign.config.campaign
        for agent in self.agents.agents():
            if (rules.queue not in agent.queues or agent.state is not AgentState.READY
                    or now - agent.since < campaign.config.auto_dial or agent.id in self._auto_dialing
                    or now < self._auto_after.get(agent.id, 0.0) or self._auto_held.get(agent.id) == agent.since):
                continue
            if agent.id in self._previews or agent.id in self._claiming or agent.id in self._dialing_previews:
                continue  # a lead the agent took (or is taking, or dialing) by hand: theirs
            self._auto_held.pop(agent.id, None)
            self._auto_dialing[agent.id] = 0
            self.preview_next(agent.id, campaign.name).addCallbacks(
                lambda lead, agent_id=agent.id: self._auto_claimed(campaign, agent_id, lead),
                lambda failure, agent_id=agent.id: self._auto_failed(agent_id, failure))

    def _auto_claimed(self, campaign: _Campaign, agent: str, lead: LeadToDial | None) -> None:
        self._auto_dialing.pop(agent, None)
        if lead is None:
            self._auto_after[agent] = self.clock.seconds() + NO_LEADS_BACKOFF
            return
        self._auto_place(campaign, agent, lead)

    def _auto_place(self, campaign: _Campaign, agent: str, lead: LeadToDial) -> None:
        self._previews.pop(agent, None)
        self._auto_dialing[agent] = lead.attempt_id
        _log.info("dialer.auto_dial campaign={campaign} agent={agent} lead={lead}", campaign=campaign.name,
                  agent=agent, lead=lead.lead_id)
        self._originate(campaign, lead, agent=agent, auto=True)

    def _auto_failed(self, agent: str, failure: Failure) -> None:
        self._auto_dialing.pop(agent, None)
        self._auto_after[agent] = self.clock.seconds() + NO_LEADS_BACKOFF
        self._db_failed("claim_leads", failure)

    def _auto_missed(self, campaign: _Campaign, agent: str, lead: LeadToDial) -> None:
        """The agent's phone did not answer an auto-dial: the lead waits again with no attempt counted,
        and auto-dial leaves the agent alone until their state changes (a pause, a call, a log-in)."""
        self.metrics.in_flight.labels(campaign.name).dec()
        self._auto_dialing.pop(agent, None)
        seen = self.agents.agent(agent)
        self._auto_held[agent] = seen.since if seen is not None else self.clock.seconds()
        _log.warn("dialer.auto_dial_missed campaign={campaign} agent={agent} lead={lead}: the agent's phone did not "
                  "answer; no more auto-dials for them until they pause and come back, or take a call",
                  campaign=campaign.name, agent=agent, lead=lead.lead_id)
        now = self.now()
        d = self.repository.run(store.release_attempt, lead.attempt_id, due_at=now, now=now)
        self._track(d.addErrback(lambda failure: self._db_failed("release_attempt", failure)))

    def auto_dial_campaigns(self) -> dict[str, int]:
        """The active preview campaigns that dial agents' next leads for them: name -> seconds ready first."""
        return {name: c.config.auto_dial for name, c in sorted(self.campaigns.items())
                if c.config.campaign.dial_mode == "preview" and c.config.campaign.active and c.config.auto_dial}

    def auto_dial_held(self, agent: str) -> bool:
        """Whether auto-dial stopped for ``agent`` (their phone did not answer) and waits for them."""
        seen = self.agents.agent(agent)
        return seen is not None and self._auto_held.get(agent) == seen.since

    def preview_campaigns(self) -> list[str]:
        """The active preview campaigns, by name: those an agent asks for leads of."""
        return sorted(name for name, c in self.campaigns.items()
                      if c.config.campaign.dial_mode == "preview" and c.config.campaign.active)

    def held_preview(self, agent: str) -> tuple[str, LeadToDial] | None:
        """(campaign, lead) ``agent`` previews now and has neither dialed nor skipped, or None."""
        held = self._previews.get(agent)
        return None if held is None else (held[0].name, held[1])

    def preview_dial(self, agent: str) -> Deferred[Any]:
        """Dial the lead ``agent`` previewed: the agent's phone rings, then the lead's.

        The lead was claimed when it was offered, maybe hours ago: it is checked again first
        (:func:`~callcenter.storage.dialer.recheck_claim`: the do-not-call list, the calling
        hours in its time zone, the campaign still on). One that may no longer be dialed is
        not: :class:`PreviewError` says why, and its claim is undone.
        """
        held = self._previews.pop(agent, None)
        if held is None:
            raise PreviewError(f"agent {agent} has no previewed lead (ask for one first)", "agent")
        campaign, lead = held
        self._dialing_previews.add(agent)  # auto-dial leaves them alone while the lead is checked
        try:
            checked = self.repository.run(store.recheck_claim, lead.attempt_id, now=self.now())
        except BaseException:
            self._dialing_previews.discard(agent)
            self._previews[agent] = held  # nothing happened: still theirs to dial
            raise

        def dial(why_not: str | None) -> Deferred[Any]:
            self._dialing_previews.discard(agent)
            if why_not is not None:
                _log.warn("dialer.preview_not_dialed campaign={campaign} agent={agent} lead={lead}: {why}",
                          campaign=campaign.name, agent=agent, lead=lead.lead_id, why=why_not)
                raise PreviewError(f"lead {lead.lead_id} not dialed: {why_not}", "lead")
            return self._originate(campaign, lead, agent=agent)

        def unchecked(failure: Failure) -> Failure:
            # the check itself failed (the database): the lead is still the agent's to dial
            self._dialing_previews.discard(agent)
            self._previews.setdefault(agent, held)
            return failure

        return self._track(checked.addCallbacks(dial, unchecked))

    def preview_skip(self, agent: str, reason: str, retry_minutes: int = PREVIEW_SKIP_RETRY_MINUTES) -> Deferred[Any]:
        """The agent does not dial the lead they previewed: it waits again, due in ``retry_minutes``.

        No call was placed, so the claim is taken back (the attempt is not counted) and the
        skip is logged with the agent's ``reason``. The agent may ask for the next lead.
        """
        if not 1 <= retry_minutes <= 7 * 24 * 60:
            raise PreviewError(f"retry_minutes: 1..{7 * 24 * 60}, got {retry_minutes}", "retry_minutes")
        held = self._previews.pop(agent, None)
        if held is None:
            raise PreviewError(f"agent {agent} has no previewed lead to skip", "agent")
        campaign, lead = held
        now = self.now()
        d = self.repository.run(store.release_attempt, lead.attempt_id, due_at=now + timedelta(minutes=retry_minutes),
                                now=now)

        def released(ok: bool) -> bool:
            _log.info("dialer.preview_skipped campaign={campaign} agent={agent} lead={lead} reason={reason} "
                      "retry_minutes={minutes} released={ok}", campaign=campaign.name, agent=agent,
                      lead=lead.lead_id, reason=reason, minutes=retry_minutes, ok=ok)
            return ok

        def failed(failure: Failure) -> Failure:
            self._db_failed("release_attempt", failure)
            return failure

        return self._track(d.addCallbacks(released, failed))

    def _close_preview(self, agent: str, lead: LeadToDial, detail: str) -> None:
        self._previews.pop(agent, None)
        d = self.repository.run(store.finish_attempt, lead.attempt_id, AttemptResult("failed", detail=detail),
                                now=self.now())
        self._track(d.addErrback(lambda failure: self._db_failed("finish_attempt", failure)))

    # ------------------------------------------------------------------ AMI input

    def on_event(self, msg: Message) -> None:
        """Every AMI event: the dialplan's results, the outbound queue's connects, and the
        ``OriginateResponse`` of a call an earlier run placed."""
        if msg.name not in _BOOK_EVENTS:
            return
        if self._recovery is not None:  # the earlier run's calls are not known yet: read once they are
            if len(self._recovery.events) < _HELD_EVENTS_MAX:
                self._recovery.events.append(msg)
            elif len(self._recovery.events) == _HELD_EVENTS_MAX:
                self._recovery.events.append(msg)
                _log.warn("dialer.held_events_full: the start is still waiting for the database or Asterisk; "
                          "later events are dropped until it is done")
            return
        fact = self.book.handle(msg, self.clock.seconds())
        if isinstance(fact, DialConnected):
            campaign = self._by_id.get(fact.dial.campaign_id)
            if campaign is not None and not fact.dial.adopted:  # an adopted call's timings are partly unknown
                lane = campaign.lanes.get(fact.dial.lane)
                if lane is not None:
                    lane.pacer.record_attempt(fact.verdict_seconds, "human")
                campaign.connect_latencies.append(fact.connect_seconds)
                self.metrics.connect_seconds.labels(campaign.name).observe(fact.connect_seconds)
            if fact.dial.agent:
                self.on_conversation(fact.dial.uniqueid, fact.dial.agent)
        elif isinstance(fact, DialEnded):
            self._ended(fact)

    def on_resync(self, channels: list[Message], queue_status: list[Message]) -> None:
        """After an AMI reconnect: calls whose channel is gone have ended unseen (those still
        live go on: their events come on the new connection). At start-up: the channels the
        earlier run's calls are looked for in (:meth:`_recover`)."""
        if self._recovery is not None:
            self._recovery.channels = list(channels)
            if self._recovery.open is not None:
                self._recover_when_ready()
            return
        live = {m.get("Uniqueid") or "" for m in channels}
        now = self.clock.seconds()
        for end in self.book.forget_missing(live, now):
            self._ended(end)
        bridged = {m.get("Uniqueid") or "" for m in channels if m.get("BridgeId")}
        for dial in self.book.connected_unseen(bridged, now):
            _log.info("dialer.connected_unseen attempt={attempt}: with an agent at the resync (its AgentConnect "
                      "was lost with the AMI connection)", attempt=dial.attempt_id)

    # ------------------------------------------------------------------ outcomes

    def _ended(self, end: DialEnded) -> None:
        for agent, attempt in list(self._auto_dialing.items()):
            if attempt == end.dial.attempt_id:
                del self._auto_dialing[agent]
        campaign = self._by_id.get(end.dial.campaign_id)
        name = self._names.get(end.dial.campaign_id, str(end.dial.campaign_id))
        self.metrics.attempts.labels(name, end.outcome).inc()
        self.metrics.in_flight.labels(name).dec()
        if campaign is not None:
            campaign.outcomes[end.outcome] += 1
            live = campaign.outcomes["human"] + campaign.outcomes["abandoned"]
            if live:
                self.metrics.abandon_rate.labels(name).set(campaign.outcomes["abandoned"] / live)
            lane = campaign.lanes.get(end.dial.lane)  # gone if dialer.yaml changed the campaign's route
            if end.dial.adopted:  # placed by an earlier run: its timings are partly unknown, not learned
                lane = None
            if lane is not None and end.dial.connected_at is None:  # a connected call was learned at its connect
                lane.pacer.record_attempt(end.verdict_seconds, end.outcome)
            if lane is not None and end.outcome == "human" and end.dial.connected_at is not None:
                talk = max(0.0, end.ended_at - end.dial.connected_at)
                lane.pacer.record_call(talk, self.wrapup_seconds(lane.queue))
        _log.info("dialer.attempt_ended campaign={campaign} attempt={attempt} lead={lead} outcome={outcome} "
                  "ring={ring:.1f} connect={connect} detail={detail}", campaign=name, attempt=end.dial.attempt_id,
                  lead=end.dial.lead_id, outcome=end.outcome, ring=end.ring_seconds,
                  connect="-" if end.connect_seconds is None else f"{end.connect_seconds:.2f}", detail=end.detail)
        wall = self._wall(end.ended_at)
        answered_at = None if end.dial.answered_at is None else self._wall(end.dial.answered_at)
        talk_seconds = None
        if end.dial.connected_at is not None:
            talk_seconds = max(0.0, end.ended_at - end.dial.connected_at)
        result = AttemptResult(
            outcome=end.outcome, ring_seconds=end.ring_seconds, answered_at=answered_at, ended_at=wall,
            amd_status=end.dial.amd_status, amd_cause=end.dial.amd_cause, agent_id=end.dial.agent,
            uniqueid=end.dial.uniqueid, connect_seconds=end.connect_seconds, talk_seconds=talk_seconds,
            detail=(end.detail or (f"queue {end.queue_status}" if end.queue_status else ""))[:500],
        )
        d = self.repository.run(store.finish_attempt, end.dial.attempt_id, result, now=wall)
        d.addErrback(lambda failure: self._db_failed("finish_attempt", failure))
        self._track(d)

    def _wall(self, at: float) -> datetime:
        """The wall-clock time of clock reading ``at``."""
        return datetime.fromtimestamp(self.now().timestamp() - (self.clock.seconds() - at), UTC)

    def _db_failed(self, operation: str, failure: Failure) -> None:
        self.metrics.db_errors.labels(operation).inc()
        _log.error("dialer.db_failed operation={operation} error={error}", operation=operation,
                   error=failure.getErrorMessage())

    # ------------------------------------------------------------------ views

    def status(self) -> list[CampaignStatus]:
        """Per campaign: what the pacer decided last, what is in flight, and how calls ended."""
        now = self.clock.seconds()
        out = []
        for campaign in self.campaigns.values():
            rules = campaign.config.campaign
            ready, talking, wrapping = self._agents_of(rules.queue, now)
            dials = [d for d in self.book.dials() if d.campaign_id == campaign.record.id]
            live = campaign.outcomes["human"] + campaign.outcomes["abandoned"]
            out.append(CampaignStatus(
                name=campaign.name, campaign_id=campaign.record.id, pacer=campaign.config.pacing.pacer,
                dial_mode=rules.dial_mode, placed=campaign.placed, in_flight=len(dials),
                ringing=sum(1 for d in dials if not d.answered), agents_ready=ready,
                agents_busy=len(talking) + len(wrapping), last_decision=campaign.last_decision,
                outcomes=dict(campaign.outcomes),
                abandon_rate=campaign.outcomes["abandoned"] / live if live else None,
                max_ratio=campaign.config.pacing.settings.max_ratio,
                abandon_guard=campaign.guard.reason if campaign.guard.engaged else "",
                ledger={key: {"live_answers": span.live_answers, "abandoned": span.abandoned, "rate": span.rate}
                        for key, span in zip(("today", "window"), campaign.ledger, strict=False)},
                route=campaign.config.route,
                lanes=tuple(self._lane_status(lane, dials, now) for lane in campaign.lanes.values() if lane.team),
                backlog=self._backlogs.get(campaign.record.id),
            ))
        return out

    def _lane_status(self, lane: _Lane, dials: Sequence[Dial], now: float) -> LaneStatus:
        ready, talking, wrapping = self._agents_of(lane.queue, now)
        return LaneStatus(lane.team, lane.queue, ready, len(talking) + len(wrapping),
                          sum(1 for d in dials if d.lane == lane.team), lane.last_decision)

    def connect_latencies(self, campaign: str) -> list[float]:
        """Answer verdict -> agent bridged, seconds, for every connected call of ``campaign``."""
        found = self.campaigns.get(campaign)
        return list(found.connect_latencies) if found is not None else []

    @property
    def pending(self) -> int:
        """Repository and AMI operations still running."""
        return len(self._pending)

    def _track(self, d: Deferred[Any]) -> Deferred[Any]:
        return self._pending.track(d)

