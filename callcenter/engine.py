"""The engine: AMI events -> call state -> facts -> metrics, call records, staffing advice.

This is the service layer between the thin protocols and storage. It owns no socket:
the AMI client feeds it events (and resync snapshots), the FastAGI server runs its
scripts, the repository stores what it decides. The clock is passed in.

What it does with a call:

* every AMI event updates :class:`~callcenter.state.calls.CallState`; the resulting facts
  update the Prometheus metrics and are logged;
* the FastAGI script ``hotline`` looks the caller up by caller id (screen-pop data) and
  tells the dialplan which queue to use (``CC_QUEUE``);
* when an inbound call ends, a call record is written (ticket number, phone, customer,
  times, queue wait, talk time) with its recording (path, duration, size);
* hotline queue arrivals and completed calls feed the live Erlang staffing advice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any, Final, TypeVar, cast
from zoneinfo import ZoneInfo

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from callcenter import recording_files
from callcenter.agent_channels import agent_of_channel
from callcenter.agent_state_log import AgentStateLog
from callcenter.agents import PJSIP_INTERFACES, AgentService, MemberInterfaces
from callcenter.agi.server import AgiSession
from callcenter.ami import actions
from callcenter.ami.client import AmiClient, ListenerHandle, Subscription
from callcenter.ami.codec import Message
from callcenter.ivr.check import load_flow
from callcenter.ivr.flow import Flow, holidays_note
from callcenter.ivr.interpreter import CallFacts
from callcenter.ivr.interpreter import Queue as IvrQueue
from callcenter.ivr.runner import run_flow
from callcenter.metrics import EngineMetrics
from callcenter.overflow import (
    overflow_now,
    overflow_penalties,
    overflow_state_action,
    primaries_away,
)
from callcenter.pending import PendingWork
from callcenter.recording_pause import Paused, RecordingPauses, pause_offsets
from callcenter.settings import QueueSettings, Settings
from callcenter.staffing.live import LiveStaffingAdvisor, StaffingAdvice
from callcenter.state.agents import (
    AgentAnomaly,
    AgentAutoPaused,
    AgentBoard,
    AgentState,
    AgentStateChanged,
)
from callcenter.state.calls import (
    Call,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallState,
    Fact,
    StateAnomaly,
)
from callcenter.state.queues import QueueBoard, QueueStay
from callcenter.storage import crm as crm_store
from callcenter.storage import dialer as dialer_store
from callcenter.storage.records import (
    UNSET,
    CallRecord,
    CallRecordUpdate,
    InvalidFieldError,
    NewCallRecord,
    NewRecording,
    canonical_phone,
    dialable,
    is_digits,
)
from callcenter.storage.repository import Repository, open_call_record_of
from callcenter.supervisor import DEFAULT_SUPERVISOR_CHANNEL, SupervisorService
from callcenter.transfer import (
    AGENT_TARGET_PREFIX,
    OUTSIDE_EXTEN_PREFIX,
    OUTSIDE_TARGET_PREFIX,
    TRANSFER_CONTEXT,
    Transfer,
    hop,
    is_agent_transfer_exten,
    parse_attended_transfer,
    parse_blind_transfer,
)

__all__ = ["TRACKED_VARIABLES", "Engine", "RecordingPaths"]

OUTSIDE_ASK = "ask-" + OUTSIDE_EXTEN_PREFIX
"""cc-transfer's extension of a consult leg dialing an outside number: ``ask-000<number>``."""

CALL_PATH_DB_SECONDS: Final = 2.0
"""How long a caller's FastAGI script waits for a database read (the CRM lookup, the last
agent, the do-not-call check) before going on without it: the line is silent meanwhile."""

TRACKED_VARIABLES = frozenset({
    "LEAD_ID", "CAMPAIGN_ID", "CC_DIRECTION", "CC_RECORDING", "CC_QUEUE", "CC_CUSTOMER_ID", "CC_CUSTOMER_NAME",
    "MEMBERINTERFACE", "QUEUEWAIT", "AGENT_ID", "CC_IVR_MAIN_PATH", "CC_CSAT", "CC_TOPIC",
    "CC_CALLBACK", "CC_MESSAGE", "CC_LANGUAGE", "CC_PHONE", "CC_LEAD", "CC_CAMPAIGN", "CC_CAMPAIGN_NAME", "CC_ATTEMPT",
    "CC_ATTEMPT_NO",
})
#: Calls that get a call record: the hotline's, and the dialer's calls that reach an agent.
_RECORDED_DIRECTIONS = ("inbound", "outbound")
HOTLINE_QUEUE = "hotline"
MESSAGE_SUFFIX = "-message"
"""A message a caller left is ``<the call's recording>-message.<format>`` (dialplans/hotline.conf)."""
HOTLINE_CONTEXT = "hotline"
"""The hotline's dialplan context (dialplans/hotline.conf), whose Dial rings a returning caller's agent."""
#: The IVR path of a hotline caller who found every IVR channel taken and skipped the menus.
IVR_FULL = "ivr=full"

_log = Logger(namespace="callcenter.engine")
T = TypeVar("T")


@dataclass(frozen=True)
class RecordingPaths:
    """Maps a recording path as Asterisk wrote it to the same file on this host.

    For a chroot lab the two differ (the host directory is bind-mounted inside the root);
    in production they are the same directory.
    """

    asterisk_dir: str
    host_dir: Path

    def to_host(self, path: str) -> Path:
        prefix = self.asterisk_dir.rstrip("/") + "/"
        if path.startswith(prefix):
            return self.host_dir / path[len(prefix):]
        return Path(path)

    def to_asterisk(self, path: Path) -> str:
        """The inverse of :meth:`to_host`: a file under ``host_dir`` as Asterisk sees it."""
        return f"{self.asterisk_dir.rstrip('/')}/{path.relative_to(self.host_dir).as_posix()}"


@dataclass(frozen=True)
class CallbackRequest:
    """A hotline caller to call back: ``phone``, the call's ``record``, and for a caller who
    hung up waiting (``call_back_abandoned``) how long and where (``waited 35 s in hotline``);
    None for one who asked (the IVR's callback, a message left)."""

    phone: str
    record: CallRecord
    abandoned: str | None = None


def abandoned_wait(stay: QueueStay | None, queues: Mapping[str, QueueSettings]) -> str | None:
    """``waited N s in QUEUE`` when the caller hung up waiting at least the queue's
    ``call_back_abandoned`` seconds (to be called back); None otherwise."""
    if stay is None or stay.result != "abandoned":
        return None
    queue = queues.get(stay.queue)
    if queue is None or queue.call_back_abandoned is None or stay.wait < queue.call_back_abandoned:
        return None
    return f"waited {round(stay.wait)} s in {stay.queue}"


def _callback_outcome(variables: Mapping[str, str]) -> str | Any:
    """A call-back request (the IVR's callback, or a message left: dialplans/hotline.conf) is
    the call's outcome until an agent calls back; UNSET without one."""
    number = variables.get("CC_CALLBACK")
    if not number:
        return UNSET
    if variables.get("CC_MESSAGE"):
        return f"message left; callback requested: {number}"  # at most 54 of the outcome's 64 characters
    return f"callback requested: {number}"


def campaign_description(variables: Mapping[str, str]) -> str:
    """A dialer call's record: which campaign, lead and how many calls to that lead so far
    (``campaign spring-sale, lead 5, call 2``); "" for a call no campaign placed (an agent's
    own: nothing to say yet)."""
    if not variables.get("CC_CAMPAIGN"):
        return ""
    text = f"campaign {variables.get('CC_CAMPAIGN_NAME') or variables.get('CC_CAMPAIGN')}, lead {variables.get('CC_LEAD')}"
    number = variables.get("CC_ATTEMPT_NO")
    return f"{text}, call {number}" if number else text


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Engine(Service):
    """Keeps call state from AMI, serves the FastAGI scripts, writes call records."""

    name = "engine"

    def __init__(
        self,
        settings: Settings,
        ami: AmiClient,
        repository: Repository | None,
        metrics: EngineMetrics,
        clock: IReactorTime,
        recordings: RecordingPaths,
        *,
        recording_settle_seconds: float = 1.0,
        agent_interfaces: MemberInterfaces = PJSIP_INTERFACES,
        supervisor_channel: str = DEFAULT_SUPERVISOR_CHANNEL,
    ) -> None:
        self.settings = settings
        self.ami = ami
        self.repository = repository
        self.metrics = metrics
        self.clock = clock
        self.recordings = recordings
        self.recording_settle_seconds = recording_settle_seconds
        self.calls = CallState(TRACKED_VARIABLES)
        self.agents = AgentBoard({q.name: q.wrapup_time for q in settings.queues})
        self.queues = QueueBoard({q.name: q.service_level_seconds for q in settings.queues})
        self._agent_tick: Any = None
        self.agent_service = AgentService(settings, ami, self.agents, cast(Any, clock), interfaces=agent_interfaces,
                                          channels=lambda: self.calls.channels.values())
        self.hotline_flow: Flow | None = (
            load_flow(settings.ivr.hotline_flow) if settings.ivr.hotline_flow is not None else None)
        self.supervisor = SupervisorService(settings, ami, self.calls, clock, supervisor_channel=supervisor_channel)
        self.timezone = ZoneInfo(settings.site.timezone)
        self._queues_by_name = {q.name: q for q in settings.queues}
        hotline = settings.hotline_queue
        self.hotline_queue = hotline
        self.advisor = LiveStaffingAdvisor(
            started_at=clock.seconds(),
            target_sl=0.8,
            target_seconds=float(settings.queue(hotline).service_level_seconds) if hotline else 20.0,
        )
        self.records_written = 0
        self.fact_listeners: list[Callable[[Fact], None]] = []
        #: Called when a hotline caller is to be called back (asked the IVR, left a message, or
        #: hung up waiting in a queue with ``call_back_abandoned``), once the call's record is
        #: written (the composition root hands it to the dialer).
        self.callback_listeners: list[Callable[[CallbackRequest], object]] = []
        #: Called with the record of every call in which a number talked with an agent (the
        #: dialer closes that number's waiting call-back for an abandoned call).
        self.talked_listeners: list[Callable[[CallRecord], object]] = []
        self._open_records: dict[str, Deferred[CallRecord | None]] = {}
        """Linkedid -> the call record opened when an agent's phone rang (screen pop)."""
        self._late_calls: set[str] = set()
        """Linkedids of calls first seen already under way and not known from their start (a
        restarted daemon): their records are completed from SQL (:meth:`_close_late_record`)."""
        self.screen_pops: dict[str, str] = {}
        """Agent id -> linkedid of the call last offered to that agent."""
        self._connected_agent: dict[str, tuple[str | None, float | None]] = {}
        """Linkedid -> (agent id, seconds in queue) from AgentConnect, until the call ends: the
        last agent connected, and the caller's wait before the first."""
        self._transfers: dict[str, list[str]] = {}
        """Linkedid -> the call's transfer hops so far (callcenter.transfer.hop)."""
        self._ivr_walks: dict[str, str] = {}
        """A hotline caller's channel uniqueid -> their IVR path so far (``a>b>c``), until the
        walk ends with a choice (CC_IVR_MAIN_PATH) or the call ends (a caller who hung up
        mid-walk: the record takes it); dropped with the call either way."""
        self._consults: dict[str, str] = {}
        """Linkedid -> the hop target a consult's leg rang, ``agent:<ID>`` or ``outside:<number>``
        (``AttendedTransfer`` may not name it)."""
        self.recording_pauses = RecordingPauses()
        """Recording channels Asterisk reports muted (an agent's pause for card numbers), and
        each recording file's pauses until the file is filed."""
        self._resume_timers: dict[str, Any] = {}
        """Uniqueid of a muted recording channel -> its automatic resume."""
        self._overflow_told: dict[str, bool] = {}
        """Queue -> whether its primary agents are away, as last sent to Asterisk (its overflow
        device state, :meth:`_tell_overflow`)."""
        self._penalties_told: dict[tuple[str, str], int] = {}
        """(queue, member interface) -> the overflow agent's penalty there as last sent to
        Asterisk (``QueuePenalty``, :meth:`_tell_overflow`)."""
        self._consult_pops: dict[str, tuple[str, str, str | None]] = {}
        """Consulted colleague -> (the customer's linkedid, the colleague's channel rung, the
        screen pop they had before): given back when that channel ends without the handover."""
        self._first_stay: dict[str, QueueStay] = {}
        """Linkedid -> the caller's stay in the queue they first waited in, once transferred."""
        self._recordings: dict[str, list[tuple[str, str | None, float]]] = {}
        """Linkedid -> each recording started on the call (``CC_RECORDING`` set): path, the agent
        whose channel records (None: the customer's), when. A call handed on by an agent whose
        own channel recorded (their own calls) gets a second one (dialplans/transfer.conf)."""
        self._pending = PendingWork()
        self._subscriptions: list[Subscription | ListenerHandle] = []
        self.agent_state_log = (AgentStateLog(repository, clock, metrics, self._pending)
                                if repository is not None else None)
        """Every agent state change, written for the agent time report."""

    # ------------------------------------------------------------------ lifecycle

    def startService(self) -> None:
        super().startService()
        self.metrics.ami_connected.set_function(lambda: 1.0 if self.ami.connected else 0.0)
        if self.hotline_queue is not None:
            queue = self.hotline_queue

            def agents_needed() -> float:
                agents = self.staffing_advice().agents
                return float("nan") if agents is None else float(agents)

            self.metrics.staffing_agents_needed.labels(queue).set_function(agents_needed)
            self.metrics.staffing_arrival_rate.labels(queue).set_function(
                lambda: self.staffing_advice().calls_per_hour)
        if self.hotline_flow is not None:
            flow = self.hotline_flow

            def holidays_left() -> float:
                left = flow.holidays_left(self._local_day(self.clock.seconds()))
                return float("nan") if left is None else float(left)

            self.metrics.hotline_holidays_days_left.set_function(holidays_left)
            note = holidays_note(flow, self._local_day(self.clock.seconds()))
            if note is not None:
                _log.warn("hotline.holidays_running_out {note}", note=note)
        self._subscriptions.append(self.ami.subscribe(self.on_event))
        self._subscriptions.append(self.ami.on_resync(self.on_resync))
        self._load_queue_history()
        if self.agent_state_log is not None:
            self.agent_state_log.started(agent.id for agent in self.settings.agents)

    def _load_queue_history(self) -> None:
        """Put the day's queue stays that ended before this start (call records) on the wallboard.

        The board counts the stays whose events it sees from now on; the records hold those
        that ended earlier: together the day, less the stays under way while no daemon ran.
        """
        if self.repository is None:
            return
        now = self.clock.seconds()
        day = self._local_day(now)
        since = datetime.combine(day, time(), self.timezone)

        def loaded(stays: list[QueueStay]) -> None:
            self.queues.add_history(day, stays)
            _log.info("queues.history day={day} stays={stays}", day=day.isoformat(), stays=len(stays))

        def failed(failure: Failure) -> None:
            self.metrics.db_errors.labels("queue_stays").inc()
            _log.failure("queues.history_failed", failure)

        d = self.repository.queue_stays(since=since, ended_before=_utc(now))
        self._pending.track(d.addCallbacks(loaded, failed))

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        for handle in self._subscriptions:
            handle.cancel()
        self._subscriptions.clear()
        if self._agent_tick is not None and self._agent_tick.active():
            self._agent_tick.cancel()
        self._agent_tick = None
        self._cancel_resumes()
        if self.agent_state_log is not None:
            self.agent_state_log.stopping(
                agent.id for agent in self.agents.agents() if agent.state is not AgentState.LOGGED_OUT)
        # Call records, recordings and agent states in flight are written before the daemon stops.
        return self._pending.wait()

    def agi_router(self) -> Mapping[str, Callable[[AgiSession], Any]]:
        """FastAGI scripts this engine serves, by script name."""
        return {"hotline": self.agi_hotline, "hotline-survey": self.agi_hotline_survey,
                "agent-dial-check": self.agi_agent_dial_check}

    # ------------------------------------------------------------------ AMI input

    def on_event(self, msg: Message) -> None:
        """One AMI event: update call state, metrics and staffing advice."""
        now = self.clock.seconds()
        if msg.name:
            self.metrics.ami_events.labels(msg.name).inc()
        if msg.problems:
            self.metrics.ami_frame_problems.inc(len(msg.problems))
        self._queue_event(msg, now)
        self.queues.handle(msg, now, self._local_day(now))
        for fact in self.calls.handle(msg, now):
            self.on_fact(fact)
        self._agent_facts(self.agents.handle(msg, now))
        if self.agents.handles(msg):
            self._tell_overflow()

    def on_resync(self, channels: list[Message], queue_status: list[Message]) -> None:
        """After a (re)connection: rebuild channels from the CoreShowChannels snapshot."""
        self.metrics.ami_resyncs.inc()
        self.metrics.ami_connections.inc()
        self.recording_pauses.clear()  # reported again only as they change: a pause goes unseen
        self._cancel_resumes()
        self.calls.begin_resync()
        facts = self.calls.resync(channels, self.clock.seconds())
        _log.info("ami.resync channels={channels} queue_items={items} facts={facts}",
                  channels=len(channels), items=len(queue_status), facts=len(facts))
        for fact in facts:
            self.on_fact(fact)
        self._agent_facts(self.agents.resync(queue_status, self.clock.seconds()))
        self.queues.resync(queue_status, self.clock.seconds())
        self._overflow_told.clear()  # a restarted Asterisk may have kept an old word (astdb)
        self._penalties_told.clear()
        self._tell_overflow()
        self._refresh_gauges()

    def _agent_facts(self, facts: list[Any]) -> None:
        """Log agent state changes and keep one timer for the next wrap-up end."""
        for fact in facts:
            if isinstance(fact, AgentStateChanged):
                if fact.new is not fact.old:  # paused -> paused: the pause's reason changed
                    self.metrics.agent_transitions.labels(fact.new.value).inc()
                board = self.agents.agent(fact.agent) if fact.new is AgentState.PAUSED else None
                pause_reason = board.pause_reason if board is not None else None
                if self.agent_state_log is not None:
                    self.agent_state_log.changed(fact.agent, fact.at, fact.new.value, pause_reason)
                _log.info("agent.state agent={agent} {old} -> {new} reason={reason}", agent=fact.agent,
                          old=fact.old.value, new=fact.new.value, reason=fact.reason)
            elif isinstance(fact, AgentAutoPaused):  # once per ring-out, not on a resync or after a call
                self.metrics.no_answer_pauses.labels(fact.agent).inc()
                _log.warn("agent.paused_no_answer agent={agent}: a queue call rang out on their phone; paused "
                          "in every queue until they unpause", agent=fact.agent)
            elif isinstance(fact, AgentAnomaly):
                self.metrics.agent_anomalies.inc()
        deadline = self.agents.next_deadline()
        if self._agent_tick is not None and self._agent_tick.active():
            if deadline is not None and self._agent_tick.getTime() == deadline:
                return
            self._agent_tick.cancel()
        self._agent_tick = None
        if deadline is not None and self.running:
            delay = max(0.0, deadline - self.clock.seconds())
            self._agent_tick = self.clock.callLater(delay, self._tick_agents)

    def _tick_agents(self) -> None:
        self._agent_tick = None
        self._agent_facts(self.agents.tick(self.clock.seconds()))

    def _agent_dial(self, msg: Message) -> None:
        """``UserEvent AgentDial`` (``[agent-dial]``): an agent calls a customer themselves; their
        screen pop shows the call, and its record is opened now, as for a queue call."""
        fields = msg.fields
        agent, linkedid = fields.get("Agent"), fields.get("Linkedid")
        if not agent or not linkedid:
            _log.warn("agent_dial.unreadable fields={fields}", fields=dict(fields))
            return
        self.screen_pops[agent] = linkedid
        self.open_record(linkedid, agent)

    def _queue_event(self, msg: Message, now: float) -> None:
        name = msg.name
        if name == "UserEvent" and msg.fields.get("UserEvent") == "AgentDial":
            self._agent_dial(msg)
            return
        if name == "BlindTransfer":
            self._transferred(msg, now)
            return
        if name == "AttendedTransfer":
            self._consulted(msg, now)
            return
        if name in ("MixMonitorMute", "Hangup"):
            self._recording_pause_event(msg, now)
            if name == "Hangup" and self._consult_pops:
                self._consult_over(msg.fields.get("Uniqueid") or "")
            return
        if name in ("DialBegin", "DialEnd"):
            self._dial_to_agent(msg)
            return
        if name == "VarSet":
            fields = msg.fields
            linkedid, path = fields.get("Linkedid"), fields.get("Value")
            if fields.get("Variable") == "CC_QUEUE_EXIT" and path:
                self._left_for_message(fields.get("Uniqueid") or "", path)
                return
            # the call's recordings: each CC_RECORDING, and a message the caller left (CC_MESSAGE;
            # a file path: the dialer's CC_MESSAGE names the sound it played, dialplans/dialer.conf)
            if fields.get("Variable") in ("CC_RECORDING", "CC_MESSAGE") and linkedid and path and path.startswith("/"):
                started = self._recordings.setdefault(linkedid, [])
                if all(path != seen for seen, _, _ in started):
                    by = agent_of_channel(fields.get("Channel") or "")  # the lab's numbers are Local/<digits>@ too
                    started.append((path, by if by in self.settings.people else None, now))
            return
        if name not in ("QueueCallerJoin", "AgentComplete", "AgentConnect", "AgentCalled"):
            return
        fields = msg.fields
        if name == "AgentCalled":
            linkedid = fields.get("Linkedid")
            agent = _agent_from_interface(fields.get("Interface"))
            if linkedid and agent:
                self.screen_pops[agent] = linkedid
                self.open_record(linkedid, agent)
            return
        if name == "AgentConnect":
            linkedid = fields.get("Linkedid")
            if linkedid:
                # a transferred caller's wait is the one before the first agent answered
                earlier = self._connected_agent.get(linkedid)
                self._connected_agent[linkedid] = (
                    _agent_from_interface(fields.get("Interface")),
                    earlier[1] if earlier is not None else _float(fields.get("HoldTime")))
            return
        if fields.get("Queue") != self.hotline_queue:
            return
        if name == "QueueCallerJoin":
            self.advisor.record_arrival(now)
        elif name == "AgentComplete":
            talk = _float(fields.get("TalkTime"))
            wrap = float(self.settings.queue(self.hotline_queue).wrapup_time) if self.hotline_queue else 0.0
            self.advisor.record_completion(now, talk + wrap)

    def _transferred(self, msg: Message, now: float) -> None:
        """``BlindTransfer``: an agent handed the call on (from the engine's action or their
        softphone). The hop goes on the call record; the caller's first queue stay is kept
        for it (its wait and service level are the caller's, not the second queue's)."""
        self._hand_on(parse_blind_transfer(msg, self.settings.people), msg, now)

    def _recording_pause_event(self, msg: Message, now: float) -> None:
        """A recording muted (an agent's pause: card numbers) or unmuted, as Asterisk reports
        it; a muted one resumes by itself after ``recordings.pause_limit_seconds``."""
        change = self.recording_pauses.handle(msg, now, self._recording_path)
        if change is None:  # most hangups: no recording was paused there
            return
        if isinstance(change, Paused):
            self.metrics.recording_pauses.inc()
            _log.info("recording.paused channel={channel} linkedid={linkedid}", channel=change.channel,
                      linkedid=change.linkedid)
            limit = self.settings.recordings.pause_limit_seconds
            if limit > 0:
                self._resume_timers[change.uniqueid] = self.clock.callLater(limit, self._auto_resume, change)
        else:
            timer = self._resume_timers.pop(change, None)
            if timer is not None and timer.active():
                timer.cancel()
            if msg.name == "MixMonitorMute":
                _log.info("recording.resumed uniqueid={uniqueid}", uniqueid=change)

    def _recording_path(self, uniqueid: str) -> str | None:
        """The file a channel records (``CC_RECORDING``), or None."""
        channel = self.calls.channels.get(uniqueid)
        return channel.variables.get("CC_RECORDING") if channel is not None else None

    def _cancel_resumes(self) -> None:
        for timer in self._resume_timers.values():
            if timer.active():
                timer.cancel()
        self._resume_timers.clear()

    def _auto_resume(self, paused: Paused) -> None:
        """The pause limit passed: record the call again (the agent forgot to resume)."""
        self._resume_timers.pop(paused.uniqueid, None)
        if self.recording_pauses.get(paused.uniqueid) != paused:
            return
        self.metrics.recording_auto_resumes.inc()
        _log.warn("recording.auto_resumed channel={channel} after={limit}s", channel=paused.channel,
                  limit=self.settings.recordings.pause_limit_seconds)
        self.ami.send(actions.mix_monitor_mute(paused.channel, muted=False)).addErrback(
            lambda failure: _log.error("recording.auto_resume_failed channel={channel} error={error}",
                                       channel=paused.channel, error=failure.getErrorMessage()))

    def _left_for_message(self, uniqueid: str, reason: str) -> None:
        """A caller left a queue unanswered for a message and a call back (dialplans/hotline.conf
        ``queue-left``/``queue-message``, ``CC_QUEUE_EXIT`` the reason)."""
        channel = self.calls.channels.get(uniqueid)
        queue = channel.variables.get("CC_QUEUE", "") if channel is not None else ""
        self.queues.left_unanswered(uniqueid)  # not abandoned: still on the line
        self.metrics.queue_messages.labels(queue or "unknown", reason).inc()
        _log.info("queue.left_for_message uniqueid={uniqueid} queue={queue} reason={reason}",
                  uniqueid=uniqueid, queue=queue, reason=reason)

    def _consult_over(self, uniqueid: str) -> None:
        """A consulted colleague's phone (``uniqueid``) stopped ringing unanswered, or hung up,
        before the caller was handed to them: their screen pop goes back to the call they had
        before (its disposition is theirs to set; the customer's is not)."""
        for agent, (linkedid, rung, before) in list(self._consult_pops.items()):
            if rung != uniqueid:
                continue
            del self._consult_pops[agent]
            if self.screen_pops.get(agent) != linkedid:
                continue  # another call was offered to them since
            if before is None:
                del self.screen_pops[agent]
            else:
                self.screen_pops[agent] = before

    def _consulted(self, msg: Message, now: float) -> None:
        """``AttendedTransfer``: an agent handed the held customer to the colleague they
        consulted. Besides the hop, the colleague is now the call's agent, and a customer
        whose call was recorded on the agent's channel only (the agent's own call) starts a
        recording of their own, as a blind transfer's ``cc-transfer-record`` does."""
        transfer = parse_attended_transfer(msg, self.settings.people)
        if transfer is not None:
            consulted = self._consults.pop(transfer.linkedid, None)
            if not transfer.target:
                # the event names no target when the consult leg was optimised away first
                # (seen in the lab): the colleague whose phone the leg rang, or its outside number
                target = consulted or "unknown"
                transfer = dataclasses.replace(transfer, target=target)
        self._hand_on(transfer, msg, now)
        if transfer is None or not transfer.ok:
            return
        if transfer.target.startswith(AGENT_TARGET_PREFIX):
            colleague = transfer.target[len(AGENT_TARGET_PREFIX):]
            self._consult_pops.pop(colleague, None)  # the call is theirs now: their screen pop stays
            earlier = self._connected_agent.get(transfer.linkedid)
            self._connected_agent[transfer.linkedid] = (colleague, earlier[1] if earlier is not None else None)
        self._record_transferee(transfer)

    def _record_transferee(self, transfer: Transfer) -> None:
        """Start the customer's own recording after an attended transfer when every file of
        the call so far is the transferring agent's (made on their channel, which hangs up)."""
        started = self._recordings.get(transfer.linkedid)
        if not started or transfer.agent_id is None or transfer.transferee_channel is None \
                or transfer.transferee_uniqueid is None:
            return
        if any(by != transfer.agent_id for _, by, _ in started):
            return  # the customer's channel records already (hotline and dialer calls)
        first = PurePosixPath(started[0][0])
        path = str(first.with_name(transfer.transferee_uniqueid + first.suffix))
        channel = transfer.transferee_channel
        # CC_RECORDING first: its VarSet files the recording, and a later blind transfer
        # (cc-transfer-record) sees the channel is recorded already
        sent = self.ami.send(actions.setvar("CC_RECORDING", path, channel=channel))
        sent.addCallback(lambda _: self.ami.send(actions.mix_monitor(channel, path)))
        sent.addErrback(lambda failure: _log.warn("transfer.recording_failed channel={channel} error={error}",
                                                  channel=channel, error=failure.getErrorMessage()))

    def _hand_on(self, transfer: Transfer | None, msg: Message, now: float) -> None:
        if transfer is None:
            _log.warn("transfer.unreadable fields={fields}", fields=dict(msg.fields))
            return
        queue = transfer.target if transfer.target in self._queues_by_name else "other"
        self.metrics.transfers.labels(queue, "done" if transfer.ok else "failed").inc()
        _log.info("call.transferred linkedid={linkedid} agent={agent} to={target} result={result}",
                  linkedid=transfer.linkedid, agent=transfer.agent_id, target=transfer.target,
                  result=transfer.result)
        if not transfer.ok:
            return
        call = self.calls.call(transfer.linkedid, now)
        offset = now - call.started_at if call is not None else 0.0
        self._transfers.setdefault(transfer.linkedid, []).append(hop(transfer.agent_id, transfer.target, offset))
        if transfer.transferee_uniqueid and transfer.linkedid not in self._first_stay:
            stay = self.queues.stay_of(transfer.transferee_uniqueid, now)
            if stay is not None:
                self._first_stay[transfer.linkedid] = stay

    def _dial_to_agent(self, msg: Message) -> None:
        """A call handed to one agent (cc-transfer's Dial): their screen pops when their phone
        rings, and they are the call's agent once they answer."""
        fields = msg.fields
        linkedid = fields.get("Linkedid")
        # a consult's leg (cc-transfer ask-<ID>) rings the colleague with the customer's call:
        # their screen pops, but the call is theirs only once the transfer completes
        consult = fields.get("Context") == TRANSFER_CONTEXT and (fields.get("Exten") or "").startswith("ask-")
        # a returning caller ringing the agent they last talked with ([hotline]'s Dial)
        last_agent = fields.get("Context") == HOTLINE_CONTEXT
        # cc-transfer's desk-<ID>: the call handed to one agent, whose Dial may come before
        # Asterisk's BlindTransfer event (which adds the hop) is read
        desk = is_agent_transfer_exten(fields.get("Context") or "", fields.get("Exten") or "")
        if not linkedid or (linkedid not in self._transfers and not consult and not last_agent and not desk):
            return
        exten = fields.get("Exten") or ""
        if consult and msg.name == "DialBegin" and exten.startswith(OUTSIDE_ASK):
            self._consults[linkedid] = OUTSIDE_TARGET_PREFIX + exten[len(OUTSIDE_ASK):]  # an outside number
            return
        agent = agent_of_channel(fields.get("DestChannel") or "")
        if agent is None or agent not in self.settings.people:
            return
        if msg.name == "DialBegin":
            if consult:
                self._consults[linkedid] = AGENT_TARGET_PREFIX + agent
                self._consult_pops[agent] = (linkedid, fields.get("DestUniqueid") or "",
                                             self.screen_pops.get(agent))
            self.screen_pops[agent] = linkedid
            self.open_record(linkedid, agent)
        elif consult and fields.get("DialStatus") != "ANSWER":
            self._consult_over(fields.get("DestUniqueid") or "")  # never answered: cancelled or no answer
        elif fields.get("DialStatus") == "ANSWER" and not consult:
            earlier = self._connected_agent.get(linkedid)
            self._connected_agent[linkedid] = (agent, earlier[1] if earlier is not None else None)

    def transfers_of(self, linkedid: str) -> tuple[str, ...]:
        """The transfer hops of a live call so far (the screen pop's "handed on by")."""
        return tuple(self._transfers.get(linkedid, ()))

    # ------------------------------------------------------------------ facts

    def on_fact(self, fact: Fact) -> None:
        """React to one call-state fact."""
        metrics = self.metrics
        if isinstance(fact, CallStarted):
            metrics.calls_started.inc()
            if fact.late and fact.linkedid not in self._open_records:  # not known from its start here
                self._late_calls.add(fact.linkedid)
        elif isinstance(fact, CallAnswered):
            metrics.calls_answered.inc()
        elif isinstance(fact, CallEnded):
            metrics.calls_ended.inc()
            metrics.call_duration.observe(fact.duration)
            _log.info(
                "call.ended linkedid={linkedid} from={caller} duration={duration:.1f} talk={talk:.1f} "
                "answered={answered} cause={cause}",
                linkedid=fact.linkedid, caller=fact.call.caller_id_num, duration=fact.duration,
                talk=fact.talk_time, answered=fact.answered, cause=fact.cause_txt,
            )
            direction = fact.call.variables.get("CC_DIRECTION")
            late = fact.linkedid in self._late_calls
            self._late_calls.discard(fact.linkedid)
            # Every hotline call gets a record; a dialer call only if it reached an agent
            # (the dialer's attempt history keeps the rest).
            if late and direction is None and self.repository is not None:
                # its variables unseen (began before a restart): its record is completed from SQL
                self._track(self._close_late_record(fact))
                self._forget(fact.linkedid, fact.call.channels)
            elif direction == "inbound" or (direction == "outbound" and fact.linkedid in self._open_records):
                self._track(self.record_call(fact))
            else:
                self._forget(fact.linkedid, fact.call.channels)
        elif isinstance(fact, StateAnomaly):
            _log.warn("call.anomaly {fact}", fact=fact)
        for listener in list(self.fact_listeners):
            listener(fact)
        self._refresh_gauges()

    def _walk_of(self, channels: Iterable[str]) -> tuple[str, ...]:
        """The IVR path of a caller who hung up mid-walk on one of ``channels`` (dropped)."""
        found = ""
        for uniqueid in channels:
            found = self._ivr_walks.pop(uniqueid, "") or found
        return tuple(p for p in found.split(">") if p)

    def _forget(self, linkedid: str, channels: Iterable[str] = ()) -> None:
        """Drop what was kept of an ended call that gets no record here."""
        self._walk_of([linkedid, *channels])
        self._connected_agent.pop(linkedid, None)
        self._transfers.pop(linkedid, None)
        self._consults.pop(linkedid, None)
        self._first_stay.pop(linkedid, None)
        self._recordings.pop(linkedid, None)

    def _refresh_gauges(self) -> None:
        self.metrics.channels_active.set(len(self.calls.channel_ids))
        self.metrics.calls_active.set(len(self.calls.calls(self.clock.seconds())))

    def _track(self, d: Deferred[Any]) -> None:
        """Keep ``d`` until it fires, so a stopping daemon waits for its writes."""
        self._pending.track(d)

    # ------------------------------------------------------------------ call records

    def open_record(self, linkedid: str, agent: str | None) -> Deferred[CallRecord | None]:
        """Create the call record when an agent's phone first rings (the screen pop).

        The record carries what is known then: caller, CRM customer, queue, IVR choices and
        the ringing agent; :meth:`record_call` completes it when the call ends.
        """
        existing = self._open_records.get(linkedid)
        if existing is not None:
            return _fork(existing)
        call = self.calls.call(linkedid, self.clock.seconds())
        if self.repository is None or call is None or call.variables.get("CC_DIRECTION") not in _RECORDED_DIRECTIONS:
            return succeed(None)
        result = self._create_record(call, agent)
        self._open_records[linkedid] = result
        self._track(result)
        return _fork(result)

    def _create_record(self, call: Call, agent: str | None) -> Deferred[CallRecord | None]:
        """Insert the call record of ``call`` (live or ended snapshot); failures are logged."""
        assert self.repository is not None
        variables = call.variables
        started = _utc(call.started_at)
        outbound = variables.get("CC_DIRECTION") == "outbound"
        if outbound:  # a dialer call: the lead's number and name (the caller id is the campaign's)
            phone, name = variables.get("CC_PHONE") or None, variables.get("CC_CUSTOMER_NAME") or None
        else:
            phone = call.caller_id_num if call.caller_id_num not in ("", "<unknown>") else None
            name = variables.get("CC_CUSTOMER_NAME") or (
                call.caller_id_name if call.caller_id_name not in ("", "<unknown>") else None)
        new = NewCallRecord(
            started_at=started,
            direction="outbound" if outbound else "inbound",
            customer_id=_customer_id(variables),
            customer_name=name,
            phone=phone,
            agent_id=agent,
            queue=variables.get("CC_QUEUE") or (None if outbound else self.hotline_queue),
            uniqueid=call.channels[0] if call.channels else None,
            linkedid=call.linkedid,
            answered_at=_utc(call.answered_at) if call.answered_at is not None else None,
            issue_type=variables.get("CC_TOPIC") or None,
            description=campaign_description(variables) if outbound else "",
            ivr_path=_ivr_path(variables),
        )
        day = started.astimezone(self.timezone).date()
        created = self.repository.create_call_record(new, site_prefix=self.settings.site.ticket_prefix, ticket_day=day)

        def opened(record: CallRecord) -> CallRecord:
            _log.info("record.opened ticket={ticket} phone={phone} agent={agent}",
                      ticket=record.ticket_number, phone=record.phone, agent=agent)
            return record

        def failed(failure: Failure) -> None:
            self.metrics.db_errors.labels("create_call_record").inc()
            _log.failure("record.failed linkedid={linkedid}", failure, linkedid=call.linkedid)

        result: Deferred[CallRecord | None] = created.addCallbacks(opened, failed)
        return result

    def _queue_stay(self, call: Call) -> QueueStay | None:
        """How the ended call's stay in a queue ended (the wallboard's account), if it queued."""
        now = self.clock.seconds()
        stays = [stay for uniqueid in call.channels if (stay := self.queues.stay_of(uniqueid, now)) is not None]
        return stays[-1] if stays else None

    def _close_late_record(self, ended: CallEnded) -> Deferred[CallRecord | None]:
        """A call that began before this engine saw it (the daemon restarted meanwhile) ended:
        its variables were never seen, so :meth:`record_call` cannot judge it. Its record, if
        one was opened before the restart (an agent's phone rang), is completed with what is
        known: the end, the talk this engine saw (at least), the agent who took it. Without
        it the record stayed half-written: in the report's volume, neither answered nor
        abandoned, no talk, no end."""
        assert self.repository is not None
        repo = self.repository
        connected_agent, _ = self._connected_agent.pop(ended.linkedid, (None, None))

        def complete(record: CallRecord | None) -> Any:
            if record is None:
                _log.info("record.unseen_call linkedid={linkedid}: began before this daemon, no record to complete",
                          linkedid=ended.linkedid)
                return None
            _log.info("record.completed_late ticket={ticket} linkedid={linkedid}: began before this daemon; "
                      "talk {talk:.0f} s seen", ticket=record.ticket_number, linkedid=ended.linkedid,
                      talk=ended.talk_time)
            return repo.update_call_record(record.id, CallRecordUpdate(
                agent_id=connected_agent if connected_agent is not None else UNSET,
                answered_at=_utc(ended.call.answered_at) if ended.call.answered_at is not None else None,
                ended_at=_utc(ended.at), talk_seconds=round(ended.talk_time)))

        def failed(failure: Failure) -> None:
            _log.failure("record.late_failed linkedid={linkedid}", failure, linkedid=ended.linkedid)

        found: Deferred[CallRecord | None] = repo.run(open_call_record_of, ended.linkedid)
        result: Deferred[CallRecord | None] = found.addCallback(complete)
        result.addErrback(failed)
        return result

    def record_call(self, ended: CallEnded) -> Deferred[CallRecord | None]:
        """Complete (or create) the call record of an ended inbound call, then its recording.

        A call that never rang an agent (abandoned in the IVR or the queue, after hours)
        gets its record here, from the ended call's snapshot.
        """
        if self.repository is None:
            self._walk_of(ended.call.channels)
            return succeed(None)
        repo = self.repository
        call = ended.call
        variables = call.variables
        connected_agent, hold_time = self._connected_agent.pop(call.linkedid, (None, None))
        last_stay = self._queue_stay(call)
        stay = self._first_stay.pop(call.linkedid, None) or last_stay
        transfers = self._transfers.pop(call.linkedid, None)
        self._consults.pop(call.linkedid, None)
        walked = self._walk_of(call.channels)
        asked = variables.get("CC_CALLBACK")
        abandoned = None if asked or variables.get("CC_DIRECTION") != "inbound" else \
            abandoned_wait(last_stay, self._queues_by_name)
        recordings = self._recordings.pop(call.linkedid, None) or (
            [(variables["CC_RECORDING"], None, call.started_at)] if variables.get("CC_RECORDING") else [])
        wait = hold_time if hold_time is not None else (
            _float(variables.get("QUEUEWAIT")) if variables.get("QUEUEWAIT") else None)
        if wait is None and stay is not None:
            wait = stay.wait
        agent = connected_agent or _agent_from_interface(variables.get("MEMBERINTERFACE"))
        started = _utc(call.started_at)
        opened = self._open_records.pop(call.linkedid, None) or self._create_record(call, agent)
        customer_id = _customer_id(variables)
        csat = variables.get("CC_CSAT", "")
        changes = CallRecordUpdate(
            agent_id=agent if agent is not None else UNSET,  # keep the agent the record was opened for
            customer_id=customer_id if customer_id is not None else UNSET,
            answered_at=_utc(call.answered_at) if call.answered_at is not None else None,
            ended_at=_utc(ended.at),
            wait_seconds=round(wait) if wait is not None else None,
            talk_seconds=round(ended.talk_time),
            queue=stay.queue if stay is not None else UNSET,
            queue_result=stay.result if stay is not None else None,
            # issue_type is not set here: the record got the IVR's topic when it was opened (the
            # IVR ran before the queue), and the agent may have changed it during the call
            csat=int(csat) if csat in ("1", "2", "3", "4", "5") else UNSET,
            ivr_path=_ivr_path(variables) or walked or UNSET,  # walked: a caller who hung up mid-walk
            # a call-back request (the IVR's, a message left) is the call's outcome until an agent
            # calls back, unless an agent who had the call (then handed it on) wrote one
            outcome_if_none=_callback_outcome(variables),  # never over an agent's disposition
            transfers=tuple(transfers) if transfers else UNSET,
        )

        def complete(record: CallRecord | None) -> Deferred[CallRecord] | None:
            if record is None:
                return None
            if abandoned and dialable(record.phone):  # the call back is the call's outcome until made
                return repo.update_call_record(record.id, dataclasses.replace(
                    changes, outcome_if_none=f"hung up, {abandoned}; callback: {record.phone}"[:64]))
            return repo.update_call_record(record.id, changes)

        def written(record: CallRecord | None) -> CallRecord | None:
            if record is None:
                return None
            self.records_written += 1
            _log.info("record.written ticket={ticket} phone={phone} talk={talk}",
                      ticket=record.ticket_number, phone=record.phone, talk=record.talk_seconds)
            for index, (path, by, at) in enumerate(recordings):
                # the call's own recording starts with the call; another one (a transfer's) when it did
                since = started if index == 0 else _utc(at)
                self._track(self._add_recording_later(record, path, since, by or agent or record.agent_id))
            number = dialable(record.phone) if abandoned else ""
            request = CallbackRequest(asked, record) if asked else \
                CallbackRequest(number, record, abandoned) if number else None
            if request is not None:
                for listener in self.callback_listeners:
                    listener(request)
            if record.agent_id is not None and record.talk_seconds and record.phone:
                for talked in self.talked_listeners:
                    talked(record)
            return record

        def failed(failure: Failure) -> None:
            self.metrics.db_errors.labels("update_call_record").inc()
            _log.failure("record.failed linkedid={linkedid}", failure, linkedid=call.linkedid)

        result: Deferred[CallRecord | None] = opened.addCallback(complete).addCallbacks(written, failed)
        return result

    def _add_recording_later(self, record: CallRecord, path: str, started: datetime,
                             agent: str | None) -> Deferred[None]:
        """MixMonitor closes its file just after the hangup: look at it a moment later."""
        assert self.repository is not None
        repo = self.repository
        host_path = self.recordings.to_host(path)
        fmt = recording_files.format_of(host_path) or self.settings.recordings.format
        spans = self.recording_pauses.take_spans(path)
        d: Deferred[None] = Deferred()

        def inspect() -> NewRecording | None:  # runs in the repository's thread pool
            if not host_path.exists():
                return None
            duration = recording_files.seconds(host_path, fmt)
            return NewRecording(
                call_record_id=record.id, path=str(host_path), started_at=started,
                duration_seconds=duration, size_bytes=host_path.stat().st_size, format=fmt, agent_id=agent,
                pauses=pause_offsets(spans, started.timestamp(), duration),
            )

        def run() -> None:
            inspected = repo.run(lambda _session: inspect())

            def store(new: NewRecording | None) -> Any:
                if new is None:
                    _log.warn("recording.missing ticket={ticket} path={path}",
                              ticket=record.ticket_number, path=str(host_path))
                    return None
                return repo.add_recording(new)

            def failed(failure: Failure) -> None:
                self.metrics.db_errors.labels("add_recording").inc()
                _log.failure("recording.failed ticket={ticket}", failure, ticket=record.ticket_number)

            def finished(_: object) -> None:
                d.callback(None)

            stored = inspected.addCallback(store)
            stored.addErrback(failed)
            stored.addBoth(finished)

        self.clock.callLater(self.recording_settle_seconds, run)
        return d

    # ------------------------------------------------------------------ FastAGI scripts

    async def agi_hotline(self, agi: AgiSession) -> None:
        """Entry of a 400 hotline call: CRM lookup by caller id (screen pop), then the IVR.

        The IVR flow ends by handing the dialplan its choice (``CC_QUEUE``,
        ``CC_QUEUE_PRIORITY``, ``CC_IVR_RESULT``...); without a flow the call is queued.
        """
        env = agi.env
        caller = env.callerid if env.callerid not in ("", "unknown") else ""
        self.metrics.agi_sessions.labels("hotline").inc()
        customer = await self._lookup(caller)
        if customer is not None:
            await agi.set_variable("CC_CUSTOMER_ID", str(customer.id))
            await agi.set_variable("CC_CUSTOMER_NAME", customer.name)
            _log.info("hotline.known_caller phone={phone} customer={name} vip={vip}",
                      phone=caller, name=customer.name, vip=customer.vip)
        if self.hotline_flow is None:
            await agi.set_variable("CC_QUEUE", self.hotline_queue or "hotline")
            await self._queued(agi, caller, self.hotline_queue or "hotline")
            return
        if await agi.get_variable("CC_IVR_SEATS") == "full":  # every IVR channel taken (ivr.channels)
            self.metrics.ivr_full.inc()
            _log.info("hotline.ivr_full caller={caller}: straight to the queue", caller=caller)
            # no language menu: Asterisk's own sounds (queue announcements) in the flow's default
            await agi.set_variable("CHANNEL(language)", self.hotline_flow.default_language)
            await agi.set_variable("CC_QUEUE", self.hotline_queue or "hotline")
            await agi.set_variable("CC_IVR_MAIN_PATH", IVR_FULL)
            await self._queued(agi, caller, self.hotline_queue or "hotline")
            return
        uniqueid = env.uniqueid

        def walked(path: tuple[str, ...]) -> None:
            if uniqueid:  # kept for the record of a caller who hangs up mid-walk
                self._ivr_walks[uniqueid] = ">".join(path)

        outcome = await run_flow(agi, self.hotline_flow, self._facts(caller, customer),
                                 sound_exists=self._sound_exists, queue_busy=self.queue_busy,
                                 message_key=self._message_key, progress=walked)
        _log.info("hotline.ivr caller={caller} path={path} result={result}", caller=caller,
                  path=">".join(outcome.path), result=type(outcome.step).__name__ if outcome.step else "hangup")
        if outcome.step is not None:
            self._ivr_walks.pop(uniqueid, None)
            await agi.set_variable("CC_IVR_MAIN_PATH", ">".join(outcome.path))
        if isinstance(outcome.step, IvrQueue):
            await self._queued(agi, caller, outcome.step.queue)

    def _message_key(self, queue: str) -> str | None:
        """The key that takes a caller of ``queue`` to a message (its ``message_key``), if any."""
        found = self._queues_by_name.get(queue)
        return found.message_key if found is not None else None

    def queue_busy(self, queue: str) -> bool:
        """Would one more caller of ``queue`` wait? True when its agents ready now (logged in,
        not paused there) are no more than the callers already waiting: the IVR then plays
        the queue's busy prompt (how to leave a message instead; docs/ivr.md)."""
        ready = sum(1 for agent in self.agents.agents()
                    if agent.state is AgentState.READY and queue in agent.queues
                    and queue not in agent.paused_queues)
        return ready <= self.queues.waiting(queue)

    async def _queued(self, agi: AgiSession, caller: str, queue: str) -> None:
        """The caller goes to ``queue``: their last agent first, if so set."""
        if self._overflow_told.get(queue):  # what the dialplan reads (:meth:`_tell_overflow`)
            _log.info("hotline.overflow_now caller={caller} queue={queue}: no primary agent there, "
                      "the overflow agents ring at once", caller=caller, queue=queue)
        await self._last_agent_first(agi, caller)

    def primaries_away(self, queue: str) -> bool:
        """Should a caller of ``queue`` ring its overflow agents at once (its primary agents
        all away)? :func:`callcenter.overflow.primaries_away` on the board now."""
        return primaries_away(self.settings, queue, self.agents.agents())

    def _tell_overflow(self) -> None:
        """Keep each overflowing queue's device state (:func:`callcenter.overflow.overflow_device`)
        what the board says: ``INUSE`` while its primary agents are away; and its overflow
        agents' penalty there 0 meanwhile, for the callers already waiting
        (:func:`callcenter.overflow.overflow_penalties`). Sent when it changes, and all again
        after each (re)connection; a failed send is sent again at the next change."""
        if not self.ami.connected:
            return  # the resync after the reconnection tells it
        board = self.agents.agents()
        overflowing = overflow_now(self.settings, board)
        self._tell_penalties(overflow_penalties(self.settings, board, overflowing))
        for queue, away in overflowing.items():
            if self._overflow_told.get(queue) == away:
                continue
            self._overflow_told[queue] = away
            self.metrics.overflow_now.labels(queue).set(1.0 if away else 0.0)
            _log.info("queue.overflow_now queue={queue} {word}", queue=queue,
                      word="on: no primary agent there, the overflow agents ring at once" if away
                      else "off: a primary agent is there, callers wait overflow_after for them first")

            def failed(failure: Failure, queue: str = queue) -> None:
                self._overflow_told.pop(queue, None)
                _log.warn("queue.overflow_now_not_sent queue={queue}: {error}", queue=queue,
                          error=failure.getErrorMessage())

            self.ami.send(overflow_state_action(queue, away)).addErrback(failed)

    def _tell_penalties(self, wanted: dict[tuple[str, str], int]) -> None:
        """Send each overflow agent's penalty that differs from the one last sent."""
        for key in set(self._penalties_told) - set(wanted):
            del self._penalties_told[key]  # logged out of the queue: a new member starts as configured
        for (queue, interface), penalty in sorted(wanted.items()):
            if self._penalties_told.get((queue, interface)) == penalty:
                continue
            self._penalties_told[(queue, interface)] = penalty
            _log.info("queue.overflow_penalty queue={queue} member={member} penalty={penalty}", queue=queue,
                      member=interface, penalty=penalty)

            def failed(failure: Failure, key: tuple[str, str] = (queue, interface)) -> None:
                self._penalties_told.pop(key, None)
                _log.warn("queue.overflow_penalty_not_sent queue={queue} member={member}: {error}", queue=key[0],
                          member=key[1], error=failure.getErrorMessage())

            self.ami.send(actions.queue_penalty(interface, penalty, queue=queue)).addErrback(failed)

    async def _last_agent_first(self, agi: AgiSession, caller: str) -> None:
        """A caller about to be queued who talked with an agent in the last ``last_agent.days``
        rings that agent first when they are ready now (``CC_LAST_AGENT`` and its phone,
        ``CC_LAST_AGENT_PHONE``, for dialplans/hotline.conf; docs/agents.md, "A returning
        caller reaches their agent"). Any doubt (off, no number, no database, a database
        error, an agent not ready) leaves the call to the queue."""
        days = self.settings.last_agent.days
        if days <= 0 or not caller or self.repository is None:
            return
        since = datetime.fromtimestamp(self.clock.seconds() - days * 86400.0, UTC)
        try:
            agent: str | None = await self._on_the_call(self.repository.run(crm_store.last_agent, caller, since),
                                                        "last_agent")
        except Exception:  # noqa: BLE001 - a database outage must not stop the call
            self.metrics.db_errors.labels("last_agent").inc()
            return
        if agent is None or agent not in self.settings.people:
            return
        state = self.agents.state_of(agent)
        if state is not AgentState.READY:
            _log.info("hotline.last_agent caller={caller} agent={agent} not ready ({state}): the queue",
                      caller=caller, agent=agent, state=state.value)
            return
        await agi.set_variable("CC_LAST_AGENT", agent)
        await agi.set_variable("CC_LAST_AGENT_PHONE", self.agent_service.interface(agent))
        _log.info("hotline.last_agent caller={caller} agent={agent}: rings first", caller=caller, agent=agent)

    async def agi_hotline_survey(self, agi: AgiSession) -> None:
        """Post-call CSAT survey (1-5) after the agent hangs up; the score lands on the record."""
        self.metrics.agi_sessions.labels("hotline-survey").inc()
        if self.hotline_flow is None:
            return
        caller = agi.env.callerid if agi.env.callerid not in ("", "unknown") else ""
        language = await agi.get_variable("CC_LANGUAGE")
        facts = self._facts(caller, None, {"CC_LANGUAGE": language} if language else {})
        outcome = await run_flow(agi, self.hotline_flow, facts, entry="survey", sound_exists=self._sound_exists)
        score = outcome.variables.get("CC_CSAT")
        if score:
            await agi.set_variable("CC_CSAT", score)
            _log.info("hotline.csat caller={caller} score={score}", caller=caller, score=score)

    async def agi_agent_dial_check(self, agi: AgiSession) -> None:
        """A number an agent dialed on their softphone, checked against the do-not-call list
        before [agent-dial] calls it (``manual_dial.do_not_call: block``; docs/agents.md,
        "Calling a customer"): ``CC_DIAL_ALLOWED`` yes, or no with ``CC_DIAL_REFUSED`` saying
        why. A list that cannot be read refuses the call: block means no listed number is
        called, and an unread list cannot say which are."""
        self.metrics.agi_sessions.labels("agent-dial-check").inc()
        number = agi.env.extension
        agent = agi.env.args[0] if agi.env.args else ""
        if self.settings.manual_dial.do_not_call != "block":
            await agi.set_variable("CC_DIAL_ALLOWED", "yes")
            return
        try:
            phone = canonical_phone(number)
        except InvalidFieldError:
            await agi.set_variable("CC_DIAL_ALLOWED", "yes")  # no number: the trunk refuses it
            return
        reason = None
        if self.repository is None:
            reason = "check_failed"
        else:
            try:
                entry = await self._on_the_call(self.repository.run(dialer_store.dnc_entry, phone), "dnc_entry")
            except Exception:  # noqa: BLE001 - refused below, and counted
                self.metrics.db_errors.labels("dnc_entry").inc()
                reason = "check_failed"
            else:
                reason = "do_not_call" if entry is not None else None
        if reason is None:
            await agi.set_variable("CC_DIAL_ALLOWED", "yes")
            return
        self.metrics.agent_dials_refused.labels(reason).inc()
        _log.warn("agent_dial.refused agent={agent} phone={phone} reason={reason}", agent=agent, phone=phone,
                  reason=reason)
        await agi.set_variable("CC_DIAL_ALLOWED", "no")
        await agi.set_variable("CC_DIAL_REFUSED", reason)

    async def _lookup(self, caller: str) -> Any:
        if not caller or self.repository is None:
            return None
        try:
            return await self._on_the_call(self.repository.find_customer_by_phone(caller), "find_customer_by_phone")
        except Exception:  # noqa: BLE001 - a bad caller id or a DB outage must not stop the call
            self.metrics.db_errors.labels("find_customer_by_phone").inc()
            return None

    def _on_the_call(self, read: Deferred[T], what: str) -> Deferred[T]:
        """A database read a caller is waiting on (silence on the line meanwhile): given up
        after ``CALL_PATH_DB_SECONDS`` (``TimeoutError``; the callers go on without it)."""
        def slow(failure: Failure) -> Failure:
            if failure.check(defer.TimeoutError):
                _log.warn("db.too_slow_for_a_caller read={what} after={seconds}s", what=what,
                          seconds=CALL_PATH_DB_SECONDS)
            return failure

        return read.addTimeout(CALL_PATH_DB_SECONDS, self.clock).addErrback(slow)

    def _facts(self, caller: str, customer: Any, variables: Mapping[str, str] | None = None) -> CallFacts:
        now = datetime.fromtimestamp(self.clock.seconds(), self.timezone)
        return CallFacts(caller_id=caller, now=now, caller_known=customer is not None,
                         vip=bool(customer is not None and customer.vip),
                         customer_name=customer.name if customer is not None else None,
                         variables=dict(variables or {}))

    def _sound_exists(self, name: str) -> bool:
        """Whether a prompt was rendered (``custom/<flow>/<prompt>-<lang>``) or is a stock sound."""
        if name.startswith("custom/"):
            return (self.settings.ivr.sounds_dir / f"{name}.wav").exists()
        return True

    # ------------------------------------------------------------------ views

    @property
    def writes_pending(self) -> int:
        """Call records and recordings still being written (the daemon waits for them on stop)."""
        return len(self._pending)

    def connected_agent(self, linkedid: str) -> str | None:
        """The agent id a queue connected this call to, if any (from AgentConnect)."""
        found = self._connected_agent.get(linkedid)
        return found[0] if found else None

    def _local_day(self, now: float) -> date:
        return datetime.fromtimestamp(now, self.timezone).date()

    def queue_views(self) -> list[dict[str, Any]]:
        """Each queue now and today (:class:`QueueView`), with its agents by state (the wallboard)
        and ``overflow_now``: its primary agents all away, so its callers ring the overflow
        agents at once (None: the queue does not overflow)."""
        now = self.clock.seconds()
        overflowing = overflow_now(self.settings, self.agents.agents())  # queues with overflow_after
        out = []
        for view in self.queues.views(now, self._local_day(now)):
            out.append({**dataclasses.asdict(view), "agents": self._agents_by_state(view.queue),
                        "overflow_now": overflowing.get(view.queue)})
        return out

    def _agents_by_state(self, queue: str | None = None) -> dict[str, int]:
        """Logged-in agents (of ``queue``, or all) counted by state."""
        counts = dict.fromkeys(("ready", "ringing", "on_call", "wrap_up", "paused"), 0)
        for agent in self.agents.agents():
            if (queue is None or queue in agent.queues) and agent.state.value in counts:
                counts[agent.state.value] += 1
        return counts

    def staffing_advice(self) -> StaffingAdvice:
        """Agents needed now on the hotline queue, from its observed traffic."""
        return self.advisor.advice(self.clock.seconds())

    def health(self) -> dict[str, Any]:
        """What /api/health reports."""
        return {
            "ami_connected": self.ami.connected,
            "ami_connections": self.ami.connections_made,
            "ami_reconnects": self.ami.reconnects,
            "ami_resyncs": self.ami.resyncs,
            "channels": len(self.calls.channel_ids),
            "calls": len(self.calls.calls(self.clock.seconds())),
            "records_written": self.records_written,
            "agents": self._agents_by_state(),
        }


def _customer_id(variables: Mapping[str, str]) -> int | None:
    """The CRM customer id the ``hotline`` script put on the call, if any."""
    value = variables.get("CC_CUSTOMER_ID", "")
    return int(value) if is_digits(value) and len(value) < 19 else None  # 19 digits may pass BIGINT


def _ivr_path(variables: Mapping[str, str]) -> tuple[str, ...]:
    """The IVR walk (``CC_IVR_MAIN_PATH``, nodes joined by ``>``) as a tuple."""
    return tuple(p for p in variables.get("CC_IVR_MAIN_PATH", "").split(">") if p)


def _fork(master: Deferred[T]) -> Deferred[T]:
    """A Deferred with ``master``'s result whose callbacks cannot change ``master``'s."""
    child: Deferred[T] = Deferred()

    def relay(result: T) -> T:
        child.callback(result)
        return result

    master.addCallback(relay)
    return child


def _agent_from_interface(interface: str | None) -> str | None:
    """``PJSIP/agent2101`` or ``Local/2101@lab-agents/n`` -> ``2101``."""
    if not interface:
        return None
    tail = interface.split("/", 1)[-1]
    tail = tail.split("@", 1)[0]
    digits = tail.removeprefix("agent")
    return digits if is_digits(digits) else None


def _float(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0
