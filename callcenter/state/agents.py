"""Sans-IO agent-state model fed by AMI queue events.

This module owns what the engine knows about each agent: whether the agent is logged in
(a member of at least one queue), ready, ringing, on a call, in wrap-up or paused, since
when, in which queues, why paused, the call being handled (caller channel ``Uniqueid``,
``Linkedid``), and the running totals (calls handled, talk time). No I/O, no Twisted, no
clock object: every time comes from the caller (``handle(msg, now)``, ``tick(now)``).

Agents
    An agent is a queue member whose interface carries the agent's digits:
    ``PJSIP/agent2101`` (production) or ``Local/2101@lab-agents/n`` (lab) are agent
    ``2101`` (:func:`agent_id_of`). Members without digits are not agents and ignored.

States and transitions
    :class:`AgentState` lists the six states. Every event is reduced to a
    :class:`Trigger`, and every (state, trigger) pair is looked up in one table,
    :data:`TRANSITIONS`. A pair not in the table is illegal: a :class:`AgentAnomaly`
    fact records it and the state is left as it was (never an exception: Asterisk's
    stream must go on). A change of state yields an :class:`AgentStateChanged` fact.

Pause
    A member is paused per queue (``QueueMemberPause``); the agent counts as paused when
    paused in every queue joined (no queue can ring them). Pausing during a ring or a
    call keeps the agent ringing/on the call; when the call ends the pause wins over
    wrap-up. app_queue forgets the reason on unpause and across restarts (its
    ``PausedReason`` comes back empty), so a known reason is kept when Asterisk reports a
    pause without one, and the last reason stays readable after unpausing
    (:attr:`Agent.last_pause_reason`).

Wrap-up
    After ``AgentComplete`` the agent is in wrap-up for the queue's wrap-up seconds (given
    per queue to the board, from ``QueueSettings.wrapup_time``) and becomes ready when
    :meth:`AgentBoard.tick` passes the deadline (:meth:`AgentBoard.next_deadline` says
    when), or earlier when an event says otherwise (a new ring, a pause).

Ringing that ends without a word
    With ``ringall`` or a caller abandoning, app_queue hangs the ringing member's channel
    up without ``AgentRingNoAnswer``; a ``Hangup`` of the channel that was ringing
    (``DestUniqueid`` of ``AgentCalled``) ends the ring.

Calls of the agent's own
    A customer called back (``[agent-dial]``), a preview dial (``[dialer-preview]``) or a
    call between two agents (``[from-agents]``, both of them) is not app_queue's: the
    dialplan raises ``UserEvent AgentBusy`` when it starts and ``AgentFree`` when the
    agent's channel hangs up. A waiting agent (ready, in wrap-up or
    paused) is on a call meanwhile, so the dialer does not count them ready; after it they
    are available again (paused if they still are). Device states are recorded but decide
    nothing: their events come in no fixed order with app_queue's (the real capture has an
    agent's phone turning ``INUSE`` after ``AgentComplete``).

Resync
    :meth:`AgentBoard.resync` rebuilds the board from a ``QueueStatus`` snapshot
    (``QueueMember`` items: ``Location``, ``Paused``, ``PausedReason``, ``InCall``,
    ``Status``). The snapshot is the truth, so it bypasses the table; changes are
    reported with reason ``"resync"``. ``QueueMember`` items fed to :meth:`handle` (list
    events seen in a raw stream) only update membership and pause, never call states.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from callcenter.ami.codec import Message

__all__ = [
    "CANNOT_CALL_OUT",
    "NO_ANSWER",
    "TRANSITIONS",
    "Agent",
    "AgentAnomaly",
    "AgentAutoPaused",
    "AgentBoard",
    "AgentFact",
    "AgentState",
    "AgentStateChanged",
    "Trigger",
    "agent_id_of",
    "pause_reason",
]


NO_ANSWER: Final = "no answer"
"""The pause reason of an agent Asterisk paused for letting a queue call ring out (queues.conf
``autopause``; Asterisk says ``Auto-Pause``)."""

_ASTERISK_REASONS: Final = {"Auto-Pause": NO_ANSWER}


def pause_reason(reported: str | None) -> str | None:
    """A pause reason as Asterisk reports it, in the engine's words (``Auto-Pause`` -> "no answer")."""
    return _ASTERISK_REASONS.get(reported, reported) if reported else reported


class AgentState(enum.Enum):
    """What an agent is doing, as the engine reports it."""

    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class Trigger(enum.Enum):
    """What an AMI event means for an agent (the columns of :data:`TRANSITIONS`)."""

    LOGIN = "login"  # joined a first queue (QueueMemberAdded)
    LOGOUT = "logout"  # left the last queue (QueueMemberRemoved)
    PAUSE = "pause"  # now paused in every queue joined
    UNPAUSE = "unpause"  # no longer paused everywhere
    RING = "ring"  # AgentCalled
    RING_END = "ring_end"  # AgentRingNoAnswer, or the ringing channel hung up
    CONNECT = "connect"  # AgentConnect
    COMPLETE = "complete"  # AgentComplete
    DUMP = "dump"  # AgentDump: the agent hung up before talking
    WRAPUP_END = "wrapup_end"  # tick() passed the wrap-up deadline
    OWN_CALL = "own_call"  # UserEvent AgentBusy: a call of the agent's own starts
    OWN_CALL_END = "own_call_end"  # UserEvent AgentFree: it ended


class _Then(enum.Enum):
    """Targets that depend on the agent's pause flag and wrap-up deadline."""

    AVAILABLE = "available"  # paused if paused, wrap-up if still due, else ready
    AFTER_CALL = "after_call"  # paused if paused, wrap-up if the queue has one, else ready
    SAME = "same"  # legal, and the state does not change


_S = AgentState
_T = Trigger
_LOGGED_IN: Final = (_S.READY, _S.RINGING, _S.ON_CALL, _S.WRAP_UP, _S.PAUSED)

#: States in which an agent cannot start a call of their own (click-to-call): logged out,
#: their phone ringing, on a call. The agent service refuses; the agent's page offers no button.
CANNOT_CALL_OUT: Final = frozenset({_S.LOGGED_OUT, _S.RINGING, _S.ON_CALL})

#: The one table of legal transitions: (state, trigger) -> new state (or a rule).
TRANSITIONS: Final[Mapping[tuple[AgentState, Trigger], AgentState | _Then]] = {
    (_S.LOGGED_OUT, _T.LOGIN): _Then.AVAILABLE,
    **{(state, _T.LOGOUT): _S.LOGGED_OUT for state in _LOGGED_IN},
    (_S.READY, _T.PAUSE): _S.PAUSED,
    (_S.WRAP_UP, _T.PAUSE): _S.PAUSED,
    (_S.RINGING, _T.PAUSE): _Then.SAME,  # the ring goes on; paused once it ends
    (_S.ON_CALL, _T.PAUSE): _Then.SAME,  # paused after the call (no wrap-up)
    (_S.PAUSED, _T.UNPAUSE): _Then.AVAILABLE,
    (_S.READY, _T.UNPAUSE): _Then.SAME,
    (_S.RINGING, _T.UNPAUSE): _Then.SAME,
    (_S.ON_CALL, _T.UNPAUSE): _Then.SAME,
    (_S.WRAP_UP, _T.UNPAUSE): _Then.SAME,
    (_S.READY, _T.RING): _S.RINGING,
    (_S.WRAP_UP, _T.RING): _S.RINGING,  # Asterisk's own wrap-up was shorter
    (_S.RINGING, _T.RING): _S.RINGING,  # a second queue rings the same agent
    (_S.PAUSED, _T.RING): _S.RINGING,  # the pause raced the ring
    (_S.RINGING, _T.RING_END): _Then.AVAILABLE,
    (_S.READY, _T.CONNECT): _S.ON_CALL,  # AgentCalled missed (before a resync)
    (_S.RINGING, _T.CONNECT): _S.ON_CALL,
    (_S.WRAP_UP, _T.CONNECT): _S.ON_CALL,
    (_S.PAUSED, _T.CONNECT): _S.ON_CALL,
    (_S.ON_CALL, _T.COMPLETE): _Then.AFTER_CALL,
    (_S.RINGING, _T.DUMP): _Then.AVAILABLE,
    (_S.ON_CALL, _T.DUMP): _Then.AVAILABLE,
    (_S.WRAP_UP, _T.WRAPUP_END): _S.READY,
    # The agent's own calls (a customer called back, a preview dial): the dialplan's
    # AgentBusy/AgentFree say so, not app_queue. A paused agent calling out is on a call too,
    # and paused again after it.
    (_S.READY, _T.OWN_CALL): _S.ON_CALL,
    (_S.WRAP_UP, _T.OWN_CALL): _S.ON_CALL,
    (_S.PAUSED, _T.OWN_CALL): _S.ON_CALL,
    (_S.ON_CALL, _T.OWN_CALL_END): _Then.AVAILABLE,
}




@dataclass(frozen=True)
class AgentStateChanged:
    """An agent went from ``old`` to ``new`` at ``at`` (seconds); ``reason`` says why."""

    agent: str
    old: AgentState
    new: AgentState
    at: float
    reason: str


@dataclass(frozen=True)
class AgentAnomaly:
    """An event that the transition table does not allow; the state was kept."""

    agent: str
    state: AgentState
    trigger: Trigger | None
    event: str
    at: float
    detail: str


@dataclass(frozen=True)
class AgentAutoPaused:
    """Asterisk paused ``agent`` at ``at`` for letting a queue call ring out (queues.conf
    ``autopause``): once per such pause, not when a resync or the end of a call finds them
    still paused for it."""

    agent: str
    at: float


AgentFact = AgentStateChanged | AgentAnomaly | AgentAutoPaused


@dataclass(frozen=True)
class Agent:
    """A snapshot of one agent on the board."""

    id: str
    state: AgentState
    since: float
    queues: tuple[str, ...]
    paused_queues: tuple[str, ...]
    pause_reason: str | None
    last_pause_reason: str | None
    interface: str | None
    state_interface: str | None
    device_state: str | None
    call_uniqueid: str | None
    call_linkedid: str | None
    call_queue: str | None
    wrapup_until: float | None
    calls_handled: int
    talk_time: float


@dataclass
class _Record:
    id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    queues: set[str] = field(default_factory=set)
    paused_queues: set[str] = field(default_factory=set)
    pause_reason: str | None = None
    last_pause_reason: str | None = None
    interface: str | None = None
    state_interface: str | None = None
    device_state: str | None = None
    call_uniqueid: str | None = None
    call_linkedid: str | None = None
    call_queue: str | None = None
    ring_uniqueid: str | None = None
    wrapup_until: float | None = None
    calls_handled: int = 0
    talk_time: float = 0.0
    own_calls: set[str] = field(default_factory=set)
    """On a call of their own (AgentBusy), not app_queue's, while not empty: the channels
    (Uniqueid) that said AgentBusy and have not said AgentFree yet. More than one when a
    colleague's call rings the agent during their own call; that ring ending unanswered
    does not end their call."""
    member_uniqueid: str | None = None
    """The agent's channel on the queue call (AgentConnect's ``DestUniqueid``)."""
    left: tuple[str, float] | None = None
    """(the caller's uniqueid, seconds talked) of a queue call the agent's channel hung up on
    before app_queue's ``AgentComplete``, which is then only counted."""

    @property
    def paused(self) -> bool:
        return bool(self.queues) and self.queues <= self.paused_queues

    def snapshot(self) -> Agent:
        return Agent(
            id=self.id,
            state=self.state,
            since=self.since,
            queues=tuple(sorted(self.queues)),
            paused_queues=tuple(sorted(self.paused_queues & self.queues)),
            pause_reason=self.pause_reason,
            last_pause_reason=self.last_pause_reason,
            interface=self.interface,
            state_interface=self.state_interface,
            device_state=self.device_state,
            call_uniqueid=self.call_uniqueid,
            call_linkedid=self.call_linkedid,
            call_queue=self.call_queue,
            wrapup_until=self.wrapup_until,
            calls_handled=self.calls_handled,
            talk_time=self.talk_time,
        )


_DIGITS: Final = re.compile(r"(\d+)")
#: app_queue member Status codes that mean the member's device is ringing.
_RINGING_STATUS: Final = frozenset({"6", "7"})
_IN_USE_STATUS: Final = frozenset({"2", "3", "7", "8"})  # in use, busy, ringing in use, on hold
_UNSEEN_CALL: Final = "(call under way at the resync)"
"""The stand-in for the channel of an agent's own call a resync finds under way (its
``AgentBusy`` came before this session, or while AMI was down): the next ``AgentFree`` ends it."""


def agent_id_of(interface: str | None) -> str | None:
    """The agent id in a member interface (``PJSIP/agent2101`` -> ``2101``), or ``None``.

    The id is the first run of digits after the technology's ``/``
    (``Local/2101@lab-agents/n`` -> ``2101``).
    """
    if not interface:
        return None
    _, slash, rest = interface.partition("/")
    match = _DIGITS.search(rest if slash else interface)
    return match.group(1) if match else None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value or 0))
    except ValueError:
        return 0.0


class AgentBoard:
    """The live state of every agent, fed AMI events (see the module docstring).

    ``wrapup_seconds`` maps queue name -> wrap-up seconds (``QueueSettings.wrapup_time``);
    queues not in it use ``default_wrapup``. :meth:`handle`, :meth:`tick` and
    :meth:`resync` return the facts they produced, in order.
    """

    def __init__(self, wrapup_seconds: Mapping[str, int] | None = None, *, default_wrapup: int = 0) -> None:
        self._wrapup = dict(wrapup_seconds or {})
        self._default_wrapup = default_wrapup
        self._agents: dict[str, _Record] = {}
        self._by_state_interface: dict[str, str] = {}
        self._by_ring_uniqueid: dict[str, str] = {}
        self._by_member_uniqueid: dict[str, str] = {}
        self.anomalies = 0
        self._handlers = {
            "QueueMemberAdded": self._on_member_added,
            "QueueMemberRemoved": self._on_member_removed,
            "QueueMemberPause": self._on_member_update,
            "QueueMemberPaused": self._on_member_update,  # pre-Asterisk-12 name
            "QueueMemberStatus": self._on_member_update,
            "QueueMember": self._on_member_update,
            "AgentCalled": self._on_called,
            "AgentRingNoAnswer": self._on_ring_no_answer,
            "AgentConnect": self._on_connect,
            "AgentComplete": self._on_complete,
            "AgentDump": self._on_dump,
            "DeviceStateChange": self._on_device_state,
            "UserEvent": self._on_user_event,
            "Hangup": self._on_hangup,
        }

    # -- queries ----------------------------------------------------------------------

    def agent(self, agent_id: str) -> Agent | None:
        """A snapshot of agent ``agent_id``, or ``None`` if the board never saw it."""
        record = self._agents.get(agent_id)
        return record.snapshot() if record is not None else None

    def state_of(self, agent_id: str) -> AgentState:
        """The state of ``agent_id`` (``LOGGED_OUT`` if never seen)."""
        record = self._agents.get(agent_id)
        return record.state if record is not None else AgentState.LOGGED_OUT

    def agents(self) -> list[Agent]:
        """Snapshots of every agent seen, sorted by id."""
        return [self._agents[key].snapshot() for key in sorted(self._agents)]

    def next_deadline(self) -> float | None:
        """The earliest wrap-up end still pending (when to call :meth:`tick`), or ``None``."""
        deadlines = [r.wrapup_until for r in self._agents.values() if r.wrapup_until is not None]
        return min(deadlines) if deadlines else None

    # -- input ------------------------------------------------------------------------

    def handle(self, msg: Message, now: float) -> list[AgentFact]:
        """Apply one AMI event; return the facts it produced (events not about agents: none)."""
        handler = self._handlers.get(msg.name or "")
        if handler is None:
            return []
        facts: list[AgentFact] = []
        handler(msg, now, facts)
        return facts

    def handles(self, msg: Message) -> bool:
        """Is ``msg`` an event the board reads (one that may change an agent)?"""
        return (msg.name or "") in self._handlers

    def tick(self, now: float) -> list[AgentFact]:
        """End the wrap-ups due by ``now``."""
        facts: list[AgentFact] = []
        for record in self._agents.values():
            if record.wrapup_until is not None and record.wrapup_until <= now:
                record.wrapup_until = None
                if record.state is AgentState.WRAP_UP:
                    self._apply(record, Trigger.WRAPUP_END, "tick", now, facts, "wrap-up over")
        return facts

    def resync(self, queue_status: Iterable[Message], now: float) -> list[AgentFact]:
        """Rebuild the board from a ``QueueStatus`` snapshot (its ``QueueMember`` items).

        Agents absent from the snapshot are logged out; the others get their queues,
        pause and call state from it. Call ids and totals survive when the agent is
        still on a call; a known pause reason survives an empty ``PausedReason``.
        """
        seen: dict[str, list[Message]] = {}
        for item in queue_status:
            if item.name != "QueueMember":
                continue
            agent_id = agent_id_of(item.fields.get("Location") or item.fields.get("Interface"))
            if agent_id is not None:
                seen.setdefault(agent_id, []).append(item)
        facts: list[AgentFact] = []
        for agent_id in sorted(set(self._agents) | set(seen)):
            record = self._record(agent_id)
            items = seen.get(agent_id, [])
            record.queues = set()
            record.paused_queues = set()
            reason: str | None = None
            in_call = ringing = in_use = False
            for item in items:
                fields = item.fields
                queue = fields.get("Queue", "")
                record.queues.add(queue)
                record.interface = fields.get("Location") or fields.get("Interface") or record.interface
                self._set_state_interface(record, fields.get("StateInterface"))
                if _flag(fields.get("Paused")):
                    record.paused_queues.add(queue)
                    reason = reason or pause_reason(fields.get("PausedReason")) or None
                in_call = in_call or _flag(fields.get("InCall"))
                ringing = ringing or fields.get("Status") in _RINGING_STATUS
                in_use = in_use or fields.get("Status") in _IN_USE_STATUS
            if record.paused:
                record.pause_reason = reason or record.pause_reason or record.last_pause_reason
            elif record.pause_reason is not None:
                record.last_pause_reason = record.pause_reason
                record.pause_reason = None
            if not items:
                new = AgentState.LOGGED_OUT
            elif in_call:
                new = AgentState.ON_CALL
            elif in_use:
                # InCall counts queue calls only: a phone in use outside them is a call of the
                # agent's own (AgentBusy), which the next AgentFree ends
                new = AgentState.ON_CALL
                record.own_calls = record.own_calls or {_UNSEEN_CALL}
            elif ringing:
                new = AgentState.RINGING
            else:
                new = self._available(record, now)
            if new not in (AgentState.ON_CALL, AgentState.RINGING):
                self._clear_call(record)
                record.own_calls.clear()  # its AgentFree came while AMI was down
            if new is not AgentState.WRAP_UP:
                record.wrapup_until = None
            self._move(record, new, now, facts, "resync")
        return facts

    # -- event handlers ---------------------------------------------------------------

    def _member(self, msg: Message, now: float, facts: list[AgentFact]) -> _Record | None:
        """The agent a member event is about; an agent never seen joins the event's queue."""
        fields = msg.fields
        interface = fields.get("Interface") or fields.get("Location")
        agent_id = agent_id_of(interface)
        if agent_id is None:
            return None
        record = self._agents.get(agent_id)
        if record is None:
            record = self._record(agent_id)
            queue = fields.get("Queue")
            if queue and msg.name not in ("QueueMemberAdded", "QueueMemberRemoved"):
                # A member from before this session (a static member, or a login the
                # board did not see): it is logged in to the event's queue.
                record.queues.add(queue)
                self._apply(record, Trigger.LOGIN, msg.name or "", now, facts, "discovered")
        record.interface = interface
        self._set_state_interface(record, fields.get("StateInterface"))
        return record

    def _on_member_added(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        queue = msg.fields.get("Queue", "")
        was_in = bool(record.queues) and record.state is not AgentState.LOGGED_OUT
        record.queues.add(queue)
        if _flag(msg.fields.get("Paused")):
            record.paused_queues.add(queue)
            self._note_reason(record, msg.fields.get("PausedReason"))
        else:
            record.paused_queues.discard(queue)
        if not was_in:
            self._apply(record, Trigger.LOGIN, "QueueMemberAdded", now, facts, f"joined {queue}")
        else:
            self._pause_changed(record, msg, now, facts)

    def _on_member_removed(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        queue = msg.fields.get("Queue", "")
        if queue not in record.queues:
            self._anomaly(record, Trigger.LOGOUT, "QueueMemberRemoved", now, facts, f"not a member of {queue!r}")
            return
        record.queues.discard(queue)
        record.paused_queues.discard(queue)
        if not record.queues:
            self._apply(record, Trigger.LOGOUT, "QueueMemberRemoved", now, facts, f"left {queue}")
        else:
            self._pause_changed(record, msg, now, facts)

    def _on_member_update(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        """QueueMemberPause/Status and QueueMember: membership and pause, never calls."""
        record = self._member(msg, now, facts)
        if record is None:
            return
        fields = msg.fields
        queue = fields.get("Queue", "")
        if record.state is AgentState.LOGGED_OUT or queue not in record.queues:
            self._anomaly(record, None, msg.name or "", now, facts, f"not a member of {queue!r}")
            return
        auto_paused = reason_changed = False
        if "Paused" in fields:
            if _flag(fields.get("Paused")):
                was_paused, before = bool(record.paused_queues), record.pause_reason
                record.paused_queues.add(queue)
                self._note_reason(record, fields.get("PausedReason"))
                auto_paused = record.pause_reason == NO_ANSWER and (not was_paused or before != NO_ANSWER)
                reason_changed = record.state is AgentState.PAUSED and before is not None \
                    and record.pause_reason != before
            else:
                record.paused_queues.discard(queue)
        self._pause_changed(record, msg, now, facts)
        if reason_changed:  # the agent changed the reason of their pause (break -> lunch): a new stretch
            facts.append(AgentStateChanged(record.id, AgentState.PAUSED, AgentState.PAUSED, now,
                                           f"pause reason: {record.pause_reason}"))
        if auto_paused:
            facts.append(AgentAutoPaused(record.id, now))
        # on the call a resync found (no AgentBusy seen; maybe a call that sends none, a
        # supervisor's own ChanSpy): the phone no longer in use ends it
        if record.state is AgentState.ON_CALL and record.own_calls == {_UNSEEN_CALL} \
                and fields.get("Status") == "1":
            record.own_calls.clear()
            self._apply(record, Trigger.OWN_CALL_END, msg.name or "", now, facts, "phone no longer in use")
        # rung before this session (a resync found it ringing, its channel unknown): the phone
        # stopped ringing, answered or not (a caller who gave up)
        if record.state is AgentState.RINGING and record.ring_uniqueid is None \
                and "Status" in fields and fields.get("Status") not in _RINGING_STATUS \
                and self._apply(record, Trigger.RING_END, msg.name or "", now, facts, "ring ended"):
            self._clear_call(record)

    def _on_called(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        if self._apply(record, Trigger.RING, "AgentCalled", now, facts, f"ringing for {msg.fields.get('Queue')}"):
            self._set_call(record, msg)
            self._set_ring(record, msg.fields.get("DestUniqueid"))
            record.wrapup_until = None

    def _on_ring_no_answer(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        if self._apply(record, Trigger.RING_END, "AgentRingNoAnswer", now, facts, "no answer"):
            self._clear_call(record)

    def _on_connect(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        if self._apply(record, Trigger.CONNECT, "AgentConnect", now, facts, f"answered in {msg.fields.get('Queue')}"):
            self._set_call(record, msg)
            self._set_ring(record, None)
            self._set_member(record, msg.fields.get("DestUniqueid"))
            record.wrapup_until = None

    def _on_complete(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        queue = msg.fields.get("Queue", "")
        if record.left is not None and record.left[0] == msg.fields.get("Uniqueid"):
            # the agent's channel hung up on this call earlier (they left a three-way call,
            # or the hangup came first): it ended then; only count it now
            record.calls_handled += 1
            record.talk_time += min(_seconds(msg.fields.get("TalkTime")), record.left[1])
            record.left = None
            return
        if record.state is AgentState.ON_CALL:
            record.calls_handled += 1
            record.talk_time += _seconds(msg.fields.get("TalkTime"))
            self._start_wrapup(record, queue, now)
        hung_up_by = msg.fields.get("Reason") or "unknown"
        if self._apply(record, Trigger.COMPLETE, "AgentComplete", now, facts, f"call ended ({hung_up_by})"):
            self._clear_call(record)

    def _on_dump(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        record = self._member(msg, now, facts)
        if record is None:
            return
        if self._apply(record, Trigger.DUMP, "AgentDump", now, facts, "agent hung up"):
            self._clear_call(record)

    def _on_device_state(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        agent_id = self._by_state_interface.get(msg.fields.get("Device", ""))
        if agent_id is not None:
            self._agents[agent_id].device_state = msg.fields.get("State")

    def _on_user_event(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        """``AgentBusy`` / ``AgentFree`` (``UserEvent``, ``Agent: <id>``): the dialplan's word that
        an agent's own call (a customer called back, a preview dial) starts or ends. Device
        states cannot say it: their events come in no fixed order with app_queue's."""
        kind = msg.fields.get("UserEvent")
        if kind not in ("AgentBusy", "AgentFree"):
            return
        record = self._agents.get(msg.fields.get("Agent", ""))
        if record is None:
            return
        channel = msg.fields.get("Uniqueid", "")
        if kind == "AgentBusy":
            if record.state is AgentState.LOGGED_OUT:
                return  # not a queue member now: nothing to account for
            if record.state in (AgentState.READY, AgentState.WRAP_UP, AgentState.PAUSED):
                record.own_calls = {channel}  # any other left would have them on a call: gone unseen
                record.wrapup_until = None  # a call of their own ends any wrap-up
                self._apply(record, Trigger.OWN_CALL, kind, now, facts, "own call")
            elif record.own_calls:
                record.own_calls.add(channel)  # another leg meanwhile: a colleague rings them
            return
        if channel in record.own_calls:
            record.own_calls.discard(channel)
        elif _UNSEEN_CALL in record.own_calls:
            record.own_calls.discard(_UNSEEN_CALL)  # the call a resync found, its channel unknown
        elif len(record.own_calls) == 1:
            record.own_calls.clear()  # one call, its channel renamed on the way (a masquerade): that one
        else:
            return  # not a call of theirs
        if not record.own_calls and record.state is AgentState.ON_CALL:
            self._apply(record, Trigger.OWN_CALL_END, kind, now, facts, "own call ended")

    def _on_hangup(self, msg: Message, now: float, facts: list[AgentFact]) -> None:
        uniqueid = msg.fields.get("Uniqueid", "")
        member_of = self._by_member_uniqueid.pop(uniqueid, None)
        if member_of is not None:
            self._member_hung_up(self._agents[member_of], uniqueid, now, facts)
            return
        agent_id = self._by_ring_uniqueid.pop(uniqueid, None)
        if agent_id is None:
            return
        record = self._agents[agent_id]
        record.ring_uniqueid = None
        if record.state is AgentState.RINGING:
            self._apply(record, Trigger.RING_END, "Hangup", now, facts, "ring cancelled")
            self._clear_call(record)

    def _member_hung_up(self, record: _Record, uniqueid: str, now: float, facts: list[AgentFact]) -> None:
        """The agent's channel on a queue call hung up. Usually ``AgentComplete`` has come
        already; when it has not (the agent left a three-way call the caller is still on, so
        app_queue reports the call only when the caller hangs up), the agent's part of the
        call ends here, with its wrap-up, and the late ``AgentComplete`` is only counted."""
        record.member_uniqueid = None
        if record.state is not AgentState.ON_CALL or record.own_calls or record.call_uniqueid is None:
            return
        record.left = (record.call_uniqueid, max(0.0, now - record.since))
        self._start_wrapup(record, record.call_queue or "", now)
        if self._apply(record, Trigger.COMPLETE, "Hangup", now, facts, "call ended (agent's phone hung up)"):
            self._clear_call(record)

    # -- the machine --------------------------------------------------------------------

    def _apply(
        self, record: _Record, trigger: Trigger, event: str, now: float, facts: list[AgentFact], reason: str
    ) -> bool:
        """Look ``(state, trigger)`` up in :data:`TRANSITIONS`; False (and an anomaly) if illegal."""
        target = TRANSITIONS.get((record.state, trigger))
        if target is None:
            self._anomaly(record, trigger, event, now, facts, f"{trigger.value} while {record.state.value}")
            return False
        if target is _Then.SAME:
            return True
        if target is _Then.AVAILABLE:
            new = self._available(record, now)
        elif target is _Then.AFTER_CALL:
            new = AgentState.PAUSED if record.paused else self._available(record, now)
        else:
            assert isinstance(target, AgentState)
            new = target
        if new is AgentState.PAUSED and record.paused:
            reason = f"{reason}; paused: {record.pause_reason}" if record.pause_reason else reason
        self._move(record, new, now, facts, reason)
        return True

    def _available(self, record: _Record, now: float) -> AgentState:
        if record.paused:
            return AgentState.PAUSED
        if record.wrapup_until is not None and record.wrapup_until > now:
            return AgentState.WRAP_UP
        return AgentState.READY

    def _move(self, record: _Record, new: AgentState, now: float, facts: list[AgentFact], reason: str) -> None:
        if new is AgentState.LOGGED_OUT:
            self._clear_call(record)
            record.wrapup_until = None
            record.paused_queues.clear()
            if record.pause_reason is not None:
                record.last_pause_reason = record.pause_reason
                record.pause_reason = None
        if new is record.state:
            return
        old = record.state
        if old is AgentState.LOGGED_OUT:  # a new shift: the wallboard counts since the log-in
            record.calls_handled = 0
            record.talk_time = 0.0
        record.state = new
        record.since = now
        facts.append(AgentStateChanged(record.id, old, new, now, reason))

    def _pause_changed(self, record: _Record, msg: Message, now: float, facts: list[AgentFact]) -> None:
        """Fire PAUSE/UNPAUSE when the agent's overall pause flag no longer matches its state."""
        event = msg.name or ""
        paused = record.paused
        if paused and record.state is not AgentState.PAUSED:
            reason = "paused" + (f": {record.pause_reason}" if record.pause_reason else "")
            self._apply(record, Trigger.PAUSE, event, now, facts, reason)
        elif not paused and record.state is AgentState.PAUSED:
            if record.pause_reason is not None:
                record.last_pause_reason = record.pause_reason
                record.pause_reason = None
            self._apply(record, Trigger.UNPAUSE, event, now, facts, "unpaused")
        elif not paused and record.pause_reason is not None and not record.paused_queues:
            record.last_pause_reason = record.pause_reason
            record.pause_reason = None

    def _note_reason(self, record: _Record, reason: str | None) -> None:
        if reason:
            record.pause_reason = pause_reason(reason)
        elif record.pause_reason is None:
            # app_queue lost it (unpause/restart); keep the last one we were told.
            record.pause_reason = record.last_pause_reason

    def _anomaly(
        self, record: _Record, trigger: Trigger | None, event: str, now: float, facts: list[AgentFact], detail: str
    ) -> None:
        self.anomalies += 1
        facts.append(AgentAnomaly(record.id, record.state, trigger, event, now, detail))

    # -- bookkeeping ------------------------------------------------------------------

    def _record(self, agent_id: str) -> _Record:
        record = self._agents.get(agent_id)
        if record is None:
            record = self._agents[agent_id] = _Record(agent_id)
        return record

    def _set_state_interface(self, record: _Record, state_interface: str | None) -> None:
        if state_interface and state_interface != record.state_interface:
            if record.state_interface is not None:
                self._by_state_interface.pop(record.state_interface, None)
            record.state_interface = state_interface
            self._by_state_interface[state_interface] = record.id

    def _set_ring(self, record: _Record, uniqueid: str | None) -> None:
        if record.ring_uniqueid is not None:
            self._by_ring_uniqueid.pop(record.ring_uniqueid, None)
        record.ring_uniqueid = uniqueid
        if uniqueid:
            self._by_ring_uniqueid[uniqueid] = record.id

    def _set_call(self, record: _Record, msg: Message) -> None:
        record.call_uniqueid = msg.fields.get("Uniqueid")
        record.call_linkedid = msg.fields.get("Linkedid")
        record.call_queue = msg.fields.get("Queue")

    def _start_wrapup(self, record: _Record, queue: str, now: float) -> None:
        """The wrap-up after a call of ``queue`` ends at ``now`` (none for 0 seconds)."""
        wrapup = self._wrapup.get(queue, self._default_wrapup)
        record.wrapup_until = now + wrapup if wrapup > 0 else None

    def _set_member(self, record: _Record, uniqueid: str | None) -> None:
        if record.member_uniqueid is not None:
            self._by_member_uniqueid.pop(record.member_uniqueid, None)
        record.member_uniqueid = uniqueid
        if uniqueid:
            self._by_member_uniqueid[uniqueid] = record.id

    def _clear_call(self, record: _Record) -> None:
        self._set_ring(record, None)
        self._set_member(record, None)
        record.call_uniqueid = record.call_linkedid = record.call_queue = None
