"""Sans-IO call-state model fed by AMI messages.

This module owns what the engine knows about live telephony: the channels Asterisk
has up (unique id, linked id, state, caller id, connected line, dialplan position,
tracked variables such as ``LEAD_ID``), the bridges joining them, and the calls made
of them, grouped by ``Linkedid``. It turns the AMI event stream into a few facts
(:class:`CallStarted`, :class:`CallAnswered`, :class:`CallBridged`,
:class:`CallEnded` with durations, :class:`ChannelHungUp`, :class:`OriginateResult`,
:class:`StateAnomaly`). No I/O, no Twisted, no clock object.

Time
    Every time comes from the caller: ``handle(msg, now)``. When Asterisk sends a
    ``Timestamp`` header (``timestampevents = yes`` in ``manager.conf``) that value
    wins; Asterisk 22 does not send it by default (the recorded capture has none),
    so the AMI protocol passes its clock's ``seconds()`` when the bytes arrived.
    Tests pass a logical clock, so every result is deterministic.

Channel states
    Asterisk's ``ChannelState`` codes 0-9 (:class:`ChannelState`). Every state change
    is looked up in one table, :data:`TRANSITIONS`, which says what it means
    (:class:`Transition`). Unlike h11, an illegal transition does not raise: Asterisk
    is the source of truth and the stream must go on, so the reported state is
    applied and a :class:`StateAnomaly` fact (and a counter) records it. Repeats
    (``Newstate Up`` twice) are only counted.

Calls
    A call starts with the first channel of its ``Linkedid`` and ends when its last
    channel hangs up. It is *answered* when any of its channels first goes Up (for
    a dialer call, the callee answering; for an inbound call, the dialplan's
    ``Answer()``), and *talking* while one of its channels is in a bridge with at
    least one other channel. :class:`CallEnded` gives ``duration`` (start to end),
    ``ring_time`` (start to answer) and ``talk_time`` (summed bridged time). The two
    halves of a Local channel (``;1``/``;2``, paired by ``LocalBridge``) are one
    logical call path (:attr:`Call.paths`).

Performance
    Events are dispatched by name through a dict of bound methods; events the model
    does not need (``TestEvent``, ``DeviceStateChange``, queue events, ...) cost one
    dict miss. Channels, calls and bridges are mutable ``__slots__`` records inside;
    the public API hands out frozen dataclass snapshots (:class:`Channel`,
    :class:`Call`, :class:`Bridge`) built on request. Handlers read
    :attr:`~callcenter.ami.codec.Message.fields` (the header dict) directly.

Memory
    A channel is dropped at its ``Hangup``, a call when its last channel is gone (the
    :class:`CallEnded` fact carries its data), a bridge at ``BridgeDestroy``. The
    unique ids of recently hung-up channels are remembered (bounded) so that a stray
    event after a ``Hangup`` does not resurrect the channel.

Unknown channels
    An event about a unique id never seen (a channel created before this AMI session)
    creates the channel, and its call, on the fly from the channel snapshot every
    channel event carries; the call's facts then say ``late=True``.

Reconnection
    ``CoreShowChannel`` list items are *not* applied by :meth:`CallState.handle`: they
    are written by a different Asterisk thread than the channel events and race them
    (the recorded capture lists channels before their ``Newchannel``). After a
    reconnection the AMI client calls :meth:`CallState.begin_resync`, sends
    ``CoreShowChannels``, keeps handling events, gathers the list items up to
    ``CoreShowChannelsComplete`` and calls :meth:`CallState.resync`. It replaces the
    channel table (events since ``begin_resync`` win over the list) and ends the calls
    whose channels vanished meanwhile (``CallEnded(disconnected=True)``).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias

from callcenter.ami.codec import Message

__all__ = [
    "DEFAULT_VARIABLES",
    "TRANSITIONS",
    "Bridge",
    "Call",
    "CallAnswered",
    "CallBridged",
    "CallEnded",
    "CallStarted",
    "CallState",
    "Channel",
    "ChannelHungUp",
    "ChannelState",
    "Fact",
    "OriginateResult",
    "StateAnomaly",
    "Transition",
]


# --------------------------------------------------------------------------------------
# Channel states and the transition table
# --------------------------------------------------------------------------------------


class ChannelState(enum.IntEnum):
    """Asterisk's ``enum ast_channel_state`` (the ``ChannelState`` header, 0-9)."""

    DOWN = 0
    RSRVD = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7
    DIALING_OFFHOOK = 8
    PRERING = 9

    @property
    def desc(self) -> str:
        """The ``ChannelStateDesc`` text Asterisk writes for this state."""
        return _STATE_DESC[self]


_STATE_DESC: Final[Mapping[ChannelState, str]] = MappingProxyType(
    {
        ChannelState.DOWN: "Down",
        ChannelState.RSRVD: "Rsrvd",
        ChannelState.OFFHOOK: "OffHook",
        ChannelState.DIALING: "Dialing",
        ChannelState.RING: "Ring",
        ChannelState.RINGING: "Ringing",
        ChannelState.UP: "Up",
        ChannelState.BUSY: "Busy",
        ChannelState.DIALING_OFFHOOK: "Dialing Offhook",
        ChannelState.PRERING: "Pre-ring",
    }
)

#: Asterisk runs the dialplan of a SIP MESSAGE (an SMS in or out) on one long-lived
#: pseudo-channel, ``Message/ast_msg_queue``: it is announced (``Newchannel``, Up) and never
#: hangs up. It is no call: the model leaves it out (counted as ``message_channel``).
_MESSAGE_CHANNEL: Final = "Message/"

# Header text -> state, so a state change costs one dict lookup (no int()).
_STATE_BY_CODE: Final[Mapping[str, ChannelState]] = MappingProxyType(
    {str(int(s)): s for s in ChannelState}
)


class Transition(enum.Enum):
    """What a channel state change means to the model."""

    PROGRESS = "progress"
    """A pre-answer state to another (Down -> Ring, Ring -> Busy, ...): no fact."""
    ANSWER = "answer"
    """A pre-answer state to Up: the channel (and maybe its call) is answered."""
    REPEAT = "repeat"
    """The same state again (``Newstate Up`` twice): counted, no fact."""
    ILLEGAL = "illegal"
    """Up back to a pre-answer state: applied anyway, reported as an anomaly."""


_PRE_ANSWER: Final = tuple(s for s in ChannelState if s is not ChannelState.UP)

TRANSITIONS: Final[Mapping[tuple[ChannelState, ChannelState], Transition]] = (
    MappingProxyType(
        {
            **{
                (a, b): Transition.PROGRESS
                for a in _PRE_ANSWER
                for b in _PRE_ANSWER
                if a is not b
            },
            **{(a, ChannelState.UP): Transition.ANSWER for a in _PRE_ANSWER},
            **{(ChannelState.UP, b): Transition.ILLEGAL for b in _PRE_ANSWER},
            **{(a, a): Transition.REPEAT for a in ChannelState},
        }
    )
)
"""The one table of channel state transitions: ``(old, new) -> Transition``."""

DEFAULT_VARIABLES: Final[frozenset[str]] = frozenset({"LEAD_ID", "CAMPAIGN_ID"})
"""Channel variables kept by default (``VarSet`` of any other name is ignored)."""

_ORIGINATE_REASONS: Final[Mapping[int, str]] = MappingProxyType(
    {
        0: "failed",
        1: "hangup",
        2: "local ring",
        3: "ringing",
        4: "answered",
        5: "busy",
        8: "congestion",
    }
)


# --------------------------------------------------------------------------------------
# Snapshots (public, frozen)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Channel:
    """A snapshot of one Asterisk channel."""

    uniqueid: str
    linkedid: str
    name: str
    state: ChannelState
    caller_id_num: str
    caller_id_name: str
    connected_line_num: str
    connected_line_name: str
    context: str
    exten: str
    priority: int
    application: str
    created_at: float
    answered_at: float | None
    variables: Mapping[str, str]
    bridge_id: str | None
    local_peer: str | None
    """Unique id of the other half of a Local channel (``;1`` <-> ``;2``)."""
    dial_status: str | None
    """``DialEnd`` status when this channel was dialled (``ANSWER``, ``BUSY``...)."""


@dataclass(frozen=True, slots=True)
class Bridge:
    """A snapshot of one Asterisk bridge and the channels in it."""

    bridge_id: str
    bridge_type: str
    technology: str
    name: str
    creator: str
    channels: tuple[str, ...]
    created_at: float


@dataclass(frozen=True, slots=True)
class Call:
    """A snapshot of one call: every channel sharing one ``Linkedid``.

    For a live call ``channels`` are the channels up now and ``ended_at`` is None; in
    :class:`CallEnded` they are every channel the call ever had and the end time.
    Caller id and ``context``/``exten`` are those of the call's first channel, as they
    are now (or were when it hung up).
    ``paths`` group the channels into logical call paths: the two halves of a Local
    channel form one path, any other channel is a path on its own.
    """

    linkedid: str
    channels: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]
    started_at: float
    answered_at: float | None
    bridged_at: float | None
    ended_at: float | None
    talk_time: float
    """Seconds spent so far in a bridge with at least one other channel."""
    caller_id_num: str
    caller_id_name: str
    context: str
    exten: str
    variables: Mapping[str, str]
    originate_action_id: str | None
    late: bool
    """True when first seen mid-call (before this session, or by a resync)."""

    @property
    def lead_id(self) -> str | None:
        """The dialer's ``LEAD_ID`` channel variable, if any channel had it."""
        return self.variables.get("LEAD_ID")

    @property
    def campaign_id(self) -> str | None:
        """The dialer's ``CAMPAIGN_ID`` channel variable, if any channel had it."""
        return self.variables.get("CAMPAIGN_ID")


# --------------------------------------------------------------------------------------
# Facts (public, frozen)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The first channel of a new ``Linkedid`` appeared."""

    at: float
    linkedid: str
    uniqueid: str
    channel: str
    caller_id_num: str
    caller_id_name: str
    context: str
    exten: str
    late: bool
    """True when the call began before it was seen (adopted channel, resync)."""


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A channel of the call went Up for the first time in the call."""

    at: float
    linkedid: str
    uniqueid: str
    channel: str
    ring_time: float
    """Seconds from the call's start to this answer."""


@dataclass(frozen=True, slots=True)
class CallBridged:
    """A channel of the call is in a bridge with another channel (talking)."""

    at: float
    linkedid: str
    bridge_id: str
    channels: tuple[str, ...]
    """Unique ids of the channels in the bridge at that moment."""
    wait_time: float
    """Seconds from the call's start to this bridge."""
    first: bool
    """True for the call's first bridge."""


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The last channel of a call hung up (or vanished while disconnected).

    Durations, in seconds: ``duration`` from start to end; ``ring_time`` from start
    to answer (the whole duration if never answered); ``talk_time`` in a bridge with
    another channel (0 if never bridged), always ``<= duration``.
    """

    at: float
    call: Call
    duration: float
    ring_time: float
    talk_time: float
    answered: bool
    cause: int | None
    """Hangup cause of the call's originating channel (or of its last channel)."""
    cause_txt: str | None
    disconnected: bool
    """True when the call ended while the AMI session was down (found by resync)."""

    @property
    def linkedid(self) -> str:
        """The call's ``Linkedid``."""
        return self.call.linkedid

    @property
    def lead_id(self) -> str | None:
        """The dialer's ``LEAD_ID``, if any channel of the call had it."""
        return self.call.lead_id


@dataclass(frozen=True, slots=True)
class ChannelHungUp:
    """One channel is gone (``Hangup``, or absent from a resync list)."""

    at: float
    uniqueid: str
    linkedid: str
    channel: str
    cause: int | None
    cause_txt: str | None
    created_at: float
    answered_at: float | None
    dial_status: str | None
    disconnected: bool


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """The ``OriginateResponse`` of an ``Async`` Originate (matched by ActionID)."""

    at: float
    action_id: str | None
    success: bool
    reason: int | None
    """0 failed, 1 hangup, 3 ringing/no answer, 4 answered, 5 busy, 8 congestion."""
    reason_txt: str
    uniqueid: str | None
    channel: str
    linkedid: str | None
    """The call it started, when its channel is still known."""


@dataclass(frozen=True, slots=True)
class StateAnomaly:
    """Something the model could not apply cleanly; log it, the stream goes on."""

    at: float
    kind: str
    """``illegal_transition``, ``unknown_state`` or ``malformed_event`` (each also
    counted in :attr:`CallState.counters`)."""
    uniqueid: str | None
    detail: str


Fact: TypeAlias = (
    CallStarted
    | CallAnswered
    | CallBridged
    | CallEnded
    | ChannelHungUp
    | OriginateResult
    | StateAnomaly
)
"""Everything :meth:`CallState.handle` may return."""


# --------------------------------------------------------------------------------------
# Internal mutable records
# --------------------------------------------------------------------------------------


class _ChannelRecord:
    __slots__ = (
        "answered_at",
        "application",
        "bridge",
        "call",
        "caller_name",
        "caller_num",
        "connected_name",
        "connected_num",
        "context",
        "created_at",
        "dial_status",
        "exten",
        "linkedid",
        "local_peer",
        "name",
        "priority",
        "seen",
        "state",
        "uniqueid",
        "variables",
    )

    def __init__(self, uniqueid: str, linkedid: str, created_at: float) -> None:
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.name = ""
        self.state = ChannelState.DOWN
        self.caller_num = ""
        self.caller_name = ""
        self.connected_num = ""
        self.connected_name = ""
        self.context = ""
        self.exten = ""
        self.priority = 0
        self.application = ""
        self.created_at = created_at
        self.answered_at: float | None = None
        self.variables: dict[str, str] = {}
        self.bridge: _BridgeRecord | None = None
        self.local_peer: str | None = None
        self.dial_status: str | None = None
        self.call: _CallRecord | None = None
        # Resync generation of the last event that updated this channel.
        self.seen = 0

    def snapshot(self) -> Channel:
        bridge = self.bridge
        return Channel(
            uniqueid=self.uniqueid,
            linkedid=self.linkedid,
            name=self.name,
            state=self.state,
            caller_id_num=self.caller_num,
            caller_id_name=self.caller_name,
            connected_line_num=self.connected_num,
            connected_line_name=self.connected_name,
            context=self.context,
            exten=self.exten,
            priority=self.priority,
            application=self.application,
            created_at=self.created_at,
            answered_at=self.answered_at,
            variables=dict(self.variables),
            bridge_id=None if bridge is None else bridge.bridge_id,
            local_peer=self.local_peer,
            dial_status=self.dial_status,
        )


class _CallRecord:
    __slots__ = (
        "action_id",
        "answered_at",
        "bridged_at",
        "cause",
        "cause_final",
        "cause_txt",
        "channels",
        "history",
        "late",
        "linkedid",
        "origin",
        "started_at",
        "talk_since",
        "talk_total",
        "talking",
        "variables",
    )

    def __init__(
        self, linkedid: str, origin: _ChannelRecord, started_at: float, late: bool
    ) -> None:
        self.linkedid = linkedid
        self.channels: dict[str, _ChannelRecord] = {}
        self.history: list[_ChannelRecord] = []
        self.origin = origin
        self.started_at = started_at
        self.answered_at: float | None = None
        self.bridged_at: float | None = None
        self.talking = 0
        self.talk_since: float | None = None
        self.talk_total = 0.0
        self.variables: dict[str, str] = {}
        self.action_id: str | None = None
        self.late = late
        self.cause: int | None = None
        self.cause_txt: str | None = None
        self.cause_final = False

    def talk_time(self, at: float) -> float:
        since = self.talk_since
        return self.talk_total if since is None else self.talk_total + (at - since)

    def snapshot(self, at: float, ended_at: float | None = None) -> Call:
        records = self.history if ended_at is not None else list(self.channels.values())
        ids = {rec.uniqueid for rec in records}
        paths: list[tuple[str, ...]] = []
        paired: set[str] = set()
        for rec in records:
            if rec.uniqueid in paired:
                continue
            peer = rec.local_peer
            if peer is not None and peer in ids and peer not in paired:
                paired.add(peer)
                paths.append((rec.uniqueid, peer))
            else:
                paths.append((rec.uniqueid,))
            paired.add(rec.uniqueid)
        origin = self.origin
        return Call(
            linkedid=self.linkedid,
            channels=tuple(rec.uniqueid for rec in records),
            paths=tuple(paths),
            started_at=self.started_at,
            answered_at=self.answered_at,
            bridged_at=self.bridged_at,
            ended_at=ended_at,
            talk_time=self.talk_time(at),
            caller_id_num=origin.caller_num,
            caller_id_name=origin.caller_name,
            context=origin.context,
            exten=origin.exten,
            variables=dict(self.variables),
            originate_action_id=self.action_id,
            late=self.late,
        )


class _BridgeRecord:
    __slots__ = (
        "bridge_id",
        "bridge_type",
        "created_at",
        "creator",
        "members",
        "name",
        "talking",
        "technology",
    )

    def __init__(
        self, bridge_id: str, fields: Mapping[str, str], created_at: float
    ) -> None:
        self.bridge_id = bridge_id
        self.bridge_type = fields.get("BridgeType", "")
        self.technology = fields.get("BridgeTechnology", "")
        self.name = fields.get("BridgeName", "")
        self.creator = fields.get("BridgeCreator", "")
        self.created_at = created_at
        self.members: dict[str, _ChannelRecord] = {}
        # Calls talking in this bridge (>= 2 members), by linkedid, in order.
        self.talking: dict[str, _CallRecord] = {}

    def snapshot(self) -> Bridge:
        return Bridge(
            bridge_id=self.bridge_id,
            bridge_type=self.bridge_type,
            technology=self.technology,
            name=self.name,
            creator=self.creator,
            channels=tuple(self.members),
            created_at=self.created_at,
        )


_Handler: TypeAlias = Callable[[Message, dict[str, str], float, list[Fact]], None]


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _parse_duration(text: str | None) -> float:
    """``CoreShowChannel`` ``Duration`` (``HH:MM:SS``) in seconds; 0 if unreadable."""
    if not text:
        return 0.0
    total = 0
    try:
        for part in text.split(":"):
            total = total * 60 + int(part)
    except ValueError:
        return 0.0
    return float(total)


def _no_uniqueid(value: str | None) -> str | None:
    return None if value is None or value in ("", "<unknown>", "<null>") else value


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


class CallState:
    """Channels, bridges and calls, kept up to date from AMI events.

    ``handle(msg, now)`` applies one message and returns the facts it produced (often
    none). ``resync(items, now)`` rebuilds the channel table from a complete
    ``CoreShowChannels`` list after a reconnection.

    ``variables`` names the channel variables kept (``VarSet``, and ``ChanVariable``
    headers on ``Newchannel``/adopted/resync channels); ``None`` keeps every variable,
    at most ``max_variables`` per channel. A leading ``_``/``__`` (inheritance marker)
    is stripped from names. ``hangup_memory`` bounds how many hung-up unique ids are
    remembered to ignore stray late events.
    """

    __slots__ = (
        "_bridges",
        "_calls",
        "_channels",
        "_counters",
        "_dispatch",
        "_generation",
        "_hangup_memory",
        "_hung_up",
        "_max_variables",
        "_resync_from",
        "_tracked",
    )

    def __init__(
        self,
        variables: Collection[str] | None = DEFAULT_VARIABLES,
        *,
        max_variables: int = 64,
        hangup_memory: int = 4096,
    ) -> None:
        self._channels: dict[str, _ChannelRecord] = {}
        self._calls: dict[str, _CallRecord] = {}
        self._bridges: dict[str, _BridgeRecord] = {}
        # Insertion-ordered dict used as a bounded FIFO set.
        self._hung_up: dict[str, None] = {}
        self._hangup_memory = hangup_memory
        self._tracked: frozenset[str] | None = (
            None if variables is None else frozenset(variables)
        )
        self._max_variables = max_variables
        self._counters: Counter[str] = Counter()
        self._generation = 0
        self._resync_from: int | None = None
        self._dispatch: dict[str | None, _Handler] = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "NewCallerid": self._on_newcallerid,
            "NewConnectedLine": self._on_newconnectedline,
            "Newexten": self._on_newexten,
            "VarSet": self._on_varset,
            "Rename": self._on_rename,
            "Hangup": self._on_hangup,
            "BridgeCreate": self._on_bridgecreate,
            "BridgeEnter": self._on_bridgeenter,
            "BridgeLeave": self._on_bridgeleave,
            "BridgeDestroy": self._on_bridgedestroy,
            "DialBegin": self._on_dialbegin,
            "DialEnd": self._on_dialend,
            "LocalBridge": self._on_localbridge,
            "OriginateResponse": self._on_originateresponse,
        }

    # ---------------------------------------------------------------- public API

    def handle(self, msg: Message, now: float) -> list[Fact]:
        """Apply one AMI message; return the facts it produced, in order.

        ``now`` is the time the message arrived (seconds, any epoch); a ``Timestamp``
        header, when Asterisk sends one, is used instead. Responses and events the
        model does not use are ignored. Never raises on odd input: a malformed event
        gives a :class:`StateAnomaly`.
        """
        facts: list[Fact] = []
        # The table's keys are event names; a response's name is its status
        # (Success, Error, ...), so responses never match.
        handler = self._dispatch.get(msg.name)
        if handler is not None:
            self._apply(handler, msg, now, facts)
        return facts

    def handle_all(self, messages: Iterable[Message], now: float) -> list[Fact]:
        """Apply messages in order (e.g. one ``AmiParser.feed`` result); all facts.

        Same result as calling :meth:`handle` on each message with the same ``now``.
        """
        facts: list[Fact] = []
        get = self._dispatch.get
        for msg in messages:
            handler = get(msg.name)
            if handler is None:
                continue
            fields = msg.fields
            try:
                stamp = fields.get("Timestamp")
                handler(msg, fields, now if stamp is None else float(stamp), facts)
            except (KeyError, ValueError):
                facts.append(self._malformed(msg, now))
        return facts

    def _apply(
        self, handler: _Handler, msg: Message, now: float, facts: list[Fact]
    ) -> None:
        fields = msg.fields
        try:
            stamp = fields.get("Timestamp")
            handler(msg, fields, now if stamp is None else float(stamp), facts)
        except (KeyError, ValueError):
            facts.append(self._malformed(msg, now))

    def _malformed(self, msg: Message, now: float) -> StateAnomaly:
        """The anomaly for an event whose headers could not be applied."""
        detail = f"{msg.name} could not be applied: {msg.text!r}"
        return self._anomaly(now, "malformed_event", msg.fields.get("Uniqueid"), detail)

    def begin_resync(self) -> None:
        """Mark the start of a new AMI session (call before sending CoreShowChannels).

        Events handled from now on are at least as fresh as the list that
        :meth:`resync` will get: a channel they create or update keeps what they say,
        and is not dropped for missing from the list (it may be younger than it).
        """
        self._generation += 1
        self._resync_from = self._generation

    def resync(self, channel_events: Iterable[Message], now: float) -> list[Fact]:
        """Replace the channel table with a ``CoreShowChannels`` list (reconnection).

        ``channel_events`` are the ``CoreShowChannel`` items of one complete list
        (other messages are skipped). Listed channels are created (``created_at`` from
        their ``Duration``; a new call says ``late=True``) or refreshed (state, caller
        id, dialplan position, bridge). Channels not listed hung up while disconnected:
        :class:`ChannelHungUp` with ``disconnected=True``, and calls left without
        channels end with ``CallEnded(disconnected=True)``. What happened unseen (an
        answer, a bridge) is dated ``now``, the best the list can tell.

        The list races the live events (Asterisk writes them from different threads),
        so after :meth:`begin_resync` the events win: channels created or updated by
        events since then are neither refreshed nor dropped, and a listed channel
        whose ``Hangup`` was already seen stays gone.
        """
        start = self._resync_from
        self._resync_from = None
        facts: list[Fact] = []
        listed: dict[str, _ChannelRecord] = {}
        stale: dict[str, _ChannelRecord] = {}  # listed, not updated by events since
        bridge_of: dict[str, str] = {}
        for msg in channel_events:
            if msg.name != "CoreShowChannel":
                continue
            f = msg.fields
            uid = f.get("Uniqueid")
            if not uid:
                detail = "CoreShowChannel without Uniqueid"
                facts.append(self._anomaly(now, "malformed_event", None, detail))
                continue
            if uid in self._hung_up:
                self._counters["listed_after_hangup"] += 1
                continue
            rec = self._channels.get(uid)
            if rec is None:
                created = now - _parse_duration(f.get("Duration"))
                rec = self._adopt(msg, f, now, "", facts, created_at=created)
                if rec is None:  # the message-routing channel
                    continue
                stale[uid] = rec
            elif start is None or rec.seen < start:
                self._refresh(rec, f, now, facts)
                self._read_chanvariables(rec, msg)
                stale[uid] = rec
            listed[uid] = rec
            bridge_id = f.get("BridgeId")
            if bridge_id:
                bridge_of[uid] = bridge_id

        # Channels neither listed nor seen in events since begin_resync() are gone.
        for uid in list(self._channels):
            rec = self._channels[uid]
            if uid not in listed and (start is None or rec.seen < start):
                self._leave_bridge(rec, now, facts)
                self._drop_channel(rec, now, None, None, True, facts)

        # Bridge membership of the refreshed channels comes from the list.
        for uid, rec in stale.items():
            current = rec.bridge
            if current is not None and current.bridge_id != bridge_of.get(uid):
                self._leave_bridge(rec, now, facts)
        for uid, rec in stale.items():
            bridge_id = bridge_of.get(uid)
            if bridge_id is not None and rec.bridge is None:
                bridge = self._bridges.get(bridge_id)
                if bridge is None:
                    bridge = _BridgeRecord(bridge_id, {}, now)
                    self._bridges[bridge_id] = bridge
                bridge.members[uid] = rec
                rec.bridge = bridge
        for bridge_id in list(self._bridges):
            bridge = self._bridges[bridge_id]
            self._retalk(bridge, now, facts)
            if not bridge.members:
                del self._bridges[bridge_id]
        return facts

    @property
    def channels(self) -> Mapping[str, Channel]:
        """Snapshots of the channels up now, by unique id (built on each access)."""
        return {uid: rec.snapshot() for uid, rec in self._channels.items()}

    @property
    def channel_ids(self) -> frozenset[str]:
        """Unique ids of the channels up now (cheap)."""
        return frozenset(self._channels)

    def channel(self, uniqueid: str) -> Channel | None:
        """Snapshot of one channel, or None if it is not up."""
        rec = self._channels.get(uniqueid)
        return None if rec is None else rec.snapshot()

    def calls(self, now: float) -> Mapping[str, Call]:
        """Snapshots of the live calls, by linkedid; ``talk_time`` counted to ``now``."""
        return {lid: call.snapshot(now) for lid, call in self._calls.items()}

    def call(self, linkedid: str, now: float) -> Call | None:
        """Snapshot of one live call, or None."""
        rec = self._calls.get(linkedid)
        return None if rec is None else rec.snapshot(now)

    @property
    def bridges(self) -> Mapping[str, Bridge]:
        """Snapshots of the bridges, by bridge unique id."""
        return {bid: bridge.snapshot() for bid, bridge in self._bridges.items()}

    @property
    def counters(self) -> Mapping[str, int]:
        """Counts of unusual but tolerated input, by kind.

        With a :class:`StateAnomaly` fact: ``illegal_transition``, ``unknown_state``,
        ``malformed_event``. Counted only: ``repeated_state`` (e.g. Up twice),
        ``adopted_channel`` (created from a mid-call event), ``event_after_hangup``,
        ``duplicate_newchannel``, ``variables_dropped`` (over ``max_variables``),
        ``listed_after_hangup`` (resync list item for a channel already hung up),
        ``message_channel`` (events of Asterisk's message-routing channel, left out).
        """
        return dict(self._counters)

    # ---------------------------------------------------------------- helpers

    def _anomaly(
        self, at: float, kind: str, uniqueid: str | None, detail: str
    ) -> StateAnomaly:
        self._counters[kind] += 1
        return StateAnomaly(at, kind, uniqueid, detail)

    def _attach(
        self, rec: _ChannelRecord, at: float, late: bool, facts: list[Fact]
    ) -> _CallRecord:
        """Add a new channel record to the table and to its call (created if new)."""
        self._channels[rec.uniqueid] = rec
        rec.seen = self._generation
        lid = rec.linkedid
        call = self._calls.get(lid)
        if call is None:
            call = self._calls[lid] = _CallRecord(lid, rec, at, late)
            facts.append(
                CallStarted(
                    at,
                    lid,
                    rec.uniqueid,
                    rec.name,
                    rec.caller_num,
                    rec.caller_name,
                    rec.context,
                    rec.exten,
                    late,
                )
            )
        elif at < call.started_at:
            call.started_at = at
        call.channels[rec.uniqueid] = rec
        call.history.append(rec)
        rec.call = call
        return call

    def _adopt(
        self,
        msg: Message,
        f: Mapping[str, str],
        at: float,
        prefix: str,
        facts: list[Fact],
        created_at: float | None = None,
    ) -> _ChannelRecord | None:
        """Create a channel never seen from the snapshot headers an event carries.

        ``created_at`` (resync: now minus the listed ``Duration``) dates the channel
        and, for a new call, its start; an answer is dated ``at``.
        """
        uid = f.get(prefix + "Uniqueid")
        if not uid:
            facts.append(
                self._anomaly(
                    at, "malformed_event", None, f"{msg.name} without {prefix}Uniqueid"
                )
            )
            return None
        if uid in self._hung_up:
            self._counters["event_after_hangup"] += 1
            return None
        if f.get(prefix + "Channel", "").startswith(_MESSAGE_CHANNEL):
            self._counters["message_channel"] += 1
            return None
        self._counters["adopted_channel"] += 1
        rec = _ChannelRecord(
            uid,
            f.get(prefix + "Linkedid") or uid,
            at if created_at is None else created_at,
        )
        rec.name = f.get(prefix + "Channel", "")
        rec.caller_num = f.get(prefix + "CallerIDNum", "")
        rec.caller_name = f.get(prefix + "CallerIDName", "")
        rec.connected_num = f.get(prefix + "ConnectedLineNum", "")
        rec.connected_name = f.get(prefix + "ConnectedLineName", "")
        rec.context = f.get(prefix + "Context", "")
        rec.exten = f.get(prefix + "Exten", "")
        rec.priority = _int_or_none(f.get(prefix + "Priority")) or 0
        if not prefix:
            rec.application = f.get("Application", "")
            self._read_chanvariables(rec, msg)
        state = _STATE_BY_CODE.get(f.get(prefix + "ChannelState", ""))
        if state is None:
            facts.append(
                self._anomaly(
                    at,
                    "unknown_state",
                    uid,
                    f"ChannelState {f.get(prefix + 'ChannelState')!r}",
                )
            )
            state = ChannelState.DOWN
        rec.state = state
        call = self._attach(rec, rec.created_at, True, facts)
        for name, value in rec.variables.items():
            call.variables[name] = value
        if state is ChannelState.UP:
            self._answer(rec, at, facts)
        return rec

    def _lookup(
        self, msg: Message, f: Mapping[str, str], at: float, facts: list[Fact]
    ) -> _ChannelRecord | None:
        rec = self._channels.get(f.get("Uniqueid", ""))
        if rec is None:
            return self._adopt(msg, f, at, "", facts)
        rec.seen = self._generation
        return rec

    def _read_chanvariables(self, rec: _ChannelRecord, msg: Message) -> None:
        if "ChanVariable" in msg.fields:
            for name, value in msg.variables.items():
                self._set_variable(rec, name, value)

    def _set_variable(self, rec: _ChannelRecord, name: str, value: str) -> None:
        if name[:1] == "_":
            name = name.lstrip("_")
        tracked = self._tracked
        if tracked is not None and name not in tracked:
            return
        variables = rec.variables
        if not value:
            variables.pop(name, None)
            return
        if name not in variables and len(variables) >= self._max_variables:
            self._counters["variables_dropped"] += 1
            return
        variables[name] = value
        call = rec.call
        if call is not None:
            call.variables[name] = value

    def _answer(self, rec: _ChannelRecord, at: float, facts: list[Fact]) -> None:
        if rec.answered_at is None:
            rec.answered_at = at
        call = rec.call
        if call is not None and call.answered_at is None:
            call.answered_at = at
            facts.append(
                CallAnswered(
                    at, call.linkedid, rec.uniqueid, rec.name, at - call.started_at
                )
            )

    def _set_state(
        self, rec: _ChannelRecord, code: str | None, at: float, facts: list[Fact]
    ) -> None:
        new = _STATE_BY_CODE.get(code or "")
        if new is None:
            facts.append(
                self._anomaly(
                    at, "unknown_state", rec.uniqueid, f"ChannelState {code!r}"
                )
            )
            return
        old = rec.state
        transition = TRANSITIONS[old, new]
        rec.state = new
        if transition is Transition.ANSWER:
            self._answer(rec, at, facts)
        elif transition is Transition.REPEAT:
            self._counters["repeated_state"] += 1
        elif transition is Transition.ILLEGAL:
            facts.append(
                self._anomaly(
                    at, "illegal_transition", rec.uniqueid, f"{old.desc} -> {new.desc}"
                )
            )

    def _refresh(
        self, rec: _ChannelRecord, f: Mapping[str, str], at: float, facts: list[Fact]
    ) -> None:
        """Update a known channel from a full snapshot (resync list item)."""
        rec.name = f.get("Channel", rec.name)
        rec.caller_num = f.get("CallerIDNum", rec.caller_num)
        rec.caller_name = f.get("CallerIDName", rec.caller_name)
        rec.connected_num = f.get("ConnectedLineNum", rec.connected_num)
        rec.connected_name = f.get("ConnectedLineName", rec.connected_name)
        rec.context = f.get("Context", rec.context)
        rec.exten = f.get("Exten", rec.exten)
        priority = _int_or_none(f.get("Priority"))
        if priority is not None:
            rec.priority = priority
        rec.application = f.get("Application", rec.application)
        self._set_state(rec, f.get("ChannelState"), at, facts)

    def _start_talk(
        self, call: _CallRecord, bridge: _BridgeRecord, at: float, facts: list[Fact]
    ) -> None:
        call.talking += 1
        if call.talking == 1:
            call.talk_since = at
        first = call.bridged_at is None
        if first:
            call.bridged_at = at
        facts.append(
            CallBridged(
                at,
                call.linkedid,
                bridge.bridge_id,
                tuple(bridge.members),
                at - call.started_at,
                first,
            )
        )

    @staticmethod
    def _stop_talk(call: _CallRecord, at: float) -> None:
        call.talking -= 1
        if call.talking <= 0:
            call.talking = 0
            since = call.talk_since
            if since is not None:
                call.talk_total += at - since
                call.talk_since = None

    def _retalk(self, bridge: _BridgeRecord, at: float, facts: list[Fact]) -> None:
        """Recompute which calls talk in ``bridge`` (those with a member, if >= 2)."""
        members = bridge.members
        present: dict[str, _CallRecord] = {}
        if len(members) >= 2:
            for rec in members.values():
                call = rec.call
                if call is not None:
                    present[call.linkedid] = call
        talking = bridge.talking
        for lid in [lid for lid in talking if lid not in present]:
            self._stop_talk(talking.pop(lid), at)
        for lid, call in present.items():
            if lid not in talking:
                talking[lid] = call
                self._start_talk(call, bridge, at, facts)

    def _leave_bridge(self, rec: _ChannelRecord, at: float, facts: list[Fact]) -> None:
        bridge = rec.bridge
        if bridge is not None:
            rec.bridge = None
            bridge.members.pop(rec.uniqueid, None)
            self._retalk(bridge, at, facts)

    def _drop_channel(
        self,
        rec: _ChannelRecord,
        at: float,
        cause: int | None,
        cause_txt: str | None,
        disconnected: bool,
        facts: list[Fact],
    ) -> None:
        uid = rec.uniqueid
        del self._channels[uid]
        hung_up = self._hung_up
        hung_up[uid] = None
        if len(hung_up) > self._hangup_memory:
            del hung_up[next(iter(hung_up))]
        facts.append(
            ChannelHungUp(
                at,
                uid,
                rec.linkedid,
                rec.name,
                cause,
                cause_txt,
                rec.created_at,
                rec.answered_at,
                rec.dial_status,
                disconnected,
            )
        )
        call = rec.call
        if call is None:  # pragma: no cover - every record is attached
            return
        call.channels.pop(uid, None)
        if not call.cause_final:
            # The originating channel's cause is the call's; else the last one's.
            call.cause = cause
            call.cause_txt = cause_txt
            call.cause_final = rec is call.origin
        if call.channels:
            return
        del self._calls[call.linkedid]
        since = call.talk_since
        if since is not None:
            call.talk_total += at - since
            call.talk_since = None
            call.talking = 0
        answered = call.answered_at
        duration = at - call.started_at
        facts.append(
            CallEnded(
                at,
                call.snapshot(at, ended_at=at),
                duration,
                duration if answered is None else answered - call.started_at,
                call.talk_total,
                answered is not None,
                call.cause,
                call.cause_txt,
                disconnected,
            )
        )
        # Break the call <-> channel reference cycles: the fact now holds the data.
        for old in call.history:
            old.call = None
        call.history.clear()

    # ---------------------------------------------------------------- handlers

    def _on_newchannel(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        uid = f["Uniqueid"]
        rec = self._channels.get(uid)
        if rec is not None:
            self._counters["duplicate_newchannel"] += 1
            self._refresh(rec, f, at, facts)
            return
        name = f["Channel"]
        if name.startswith(_MESSAGE_CHANNEL):
            self._counters["message_channel"] += 1
            return
        self._hung_up.pop(uid, None)
        rec = _ChannelRecord(uid, f.get("Linkedid") or uid, at)
        rec.name = name
        rec.caller_num = f.get("CallerIDNum", "")
        rec.caller_name = f.get("CallerIDName", "")
        rec.connected_num = f.get("ConnectedLineNum", "")
        rec.connected_name = f.get("ConnectedLineName", "")
        rec.context = f.get("Context", "")
        rec.exten = f.get("Exten", "")
        rec.priority = int(f.get("Priority") or 0)
        state = _STATE_BY_CODE.get(f.get("ChannelState", ""))
        if state is None:
            facts.append(
                self._anomaly(
                    at, "unknown_state", uid, f"ChannelState {f.get('ChannelState')!r}"
                )
            )
            state = ChannelState.DOWN
        rec.state = state
        self._attach(rec, at, False, facts)
        if "ChanVariable" in f:
            self._read_chanvariables(rec, msg)
        if state is ChannelState.UP:
            self._answer(rec, at, facts)

    def _on_newstate(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._channels.get(f.get("Uniqueid", ""))
        if rec is None:
            self._adopt(msg, f, at, "", facts)  # the adopted snapshot has the new state
            return
        rec.seen = self._generation
        self._set_state(rec, f.get("ChannelState"), at, facts)

    def _on_newcallerid(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        self._set_party(msg, f, at, facts, ("caller_num", "CallerIDNum"), ("caller_name", "CallerIDName"))

    def _on_newconnectedline(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        self._set_party(msg, f, at, facts, ("connected_num", "ConnectedLineNum"),
                        ("connected_name", "ConnectedLineName"))

    def _set_party(self, msg: Message, f: dict[str, str], at: float, facts: list[Fact],
                   *fields: tuple[str, str]) -> None:
        """A party's number and name changed: copy each (attribute, header) from the event."""
        rec = self._lookup(msg, f, at, facts)
        if rec is not None:
            for attribute, header in fields:
                setattr(rec, attribute, f.get(header, ""))

    def _on_newexten(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._lookup(msg, f, at, facts)
        if rec is None:
            return
        rec.context = f["Context"]
        rec.exten = f["Exten"]
        rec.priority = int(f["Priority"])
        rec.application = f.get("Application", "")

    def _on_varset(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        name = f.get("Variable", "")
        tracked = self._tracked
        if (
            tracked is not None
            and name not in tracked
            and (name[:1] != "_" or name.lstrip("_") not in tracked)
        ):
            return
        uid = f.get("Uniqueid")
        if uid is None:  # a global variable (Channel: none)
            return
        rec = self._channels.get(uid)
        if rec is None:
            rec = self._adopt(msg, f, at, "", facts)
            if rec is None:
                return
        self._set_variable(rec, name, f.get("Value", ""))

    def _on_rename(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._lookup(msg, f, at, facts)
        if rec is not None:
            rec.name = f.get("Newname", rec.name)

    def _on_hangup(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._lookup(msg, f, at, facts)
        if rec is None:
            return
        self._leave_bridge(rec, at, facts)
        self._drop_channel(
            rec, at, _int_or_none(f.get("Cause")), f.get("Cause-txt"), False, facts
        )

    def _bridge(self, f: dict[str, str], at: float) -> _BridgeRecord:
        bridge_id = f["BridgeUniqueid"]
        bridge = self._bridges.get(bridge_id)
        if bridge is None:
            bridge = self._bridges[bridge_id] = _BridgeRecord(bridge_id, f, at)
        return bridge

    def _on_bridgecreate(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        self._bridge(f, at)

    def _on_bridgeenter(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        bridge = self._bridge(f, at)
        rec = self._lookup(msg, f, at, facts)
        if rec is None:
            return
        if rec.bridge is not None and rec.bridge is not bridge:
            self._leave_bridge(rec, at, facts)
        rec.bridge = bridge
        bridge.members[rec.uniqueid] = rec
        self._retalk(bridge, at, facts)

    def _on_bridgeleave(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._channels.get(f.get("Uniqueid", ""))
        if rec is None:
            self._adopt(msg, f, at, "", facts)
            return
        rec.seen = self._generation
        bridge = self._bridges.get(f["BridgeUniqueid"])
        if bridge is not None and rec.bridge is bridge:
            self._leave_bridge(rec, at, facts)

    def _on_bridgedestroy(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        bridge = self._bridges.pop(f["BridgeUniqueid"], None)
        if bridge is None or not bridge.members:
            return
        for rec in bridge.members.values():
            rec.bridge = None
        bridge.members.clear()
        self._retalk(bridge, at, facts)

    def _on_dialbegin(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._channels.get(f.get("DestUniqueid", ""))
        if rec is None:
            rec = self._adopt(msg, f, at, "Dest", facts)
            if rec is None:
                return
        rec.dial_status = ""

    def _on_dialend(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        rec = self._channels.get(f.get("DestUniqueid", ""))
        if rec is None:
            rec = self._adopt(msg, f, at, "Dest", facts)
            if rec is None:
                return
        rec.dial_status = f.get("DialStatus", "")

    def _on_localbridge(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        one = self._channels.get(f.get("LocalOneUniqueid", "")) or self._adopt(
            msg, f, at, "LocalOne", facts
        )
        two = self._channels.get(f.get("LocalTwoUniqueid", "")) or self._adopt(
            msg, f, at, "LocalTwo", facts
        )
        if one is not None and two is not None:
            one.local_peer = two.uniqueid
            two.local_peer = one.uniqueid

    def _on_originateresponse(
        self, msg: Message, f: dict[str, str], at: float, facts: list[Fact]
    ) -> None:
        uid = _no_uniqueid(f.get("Uniqueid"))
        action_id = f.get("ActionID")
        linkedid: str | None = None
        if uid is not None:
            rec = self._channels.get(uid)
            if rec is not None and rec.call is not None:
                linkedid = rec.linkedid
                if action_id is not None:
                    rec.call.action_id = action_id
        reason = _int_or_none(f.get("Reason"))
        reason_txt = (
            "unknown"
            if reason is None
            else _ORIGINATE_REASONS.get(reason, f"reason {reason}")
        )
        facts.append(
            OriginateResult(
                at,
                action_id,
                f.get("Response") == "Success",
                reason,
                reason_txt,
                uid,
                f.get("Channel", ""),
                linkedid,
            )
        )
