"""The live view of each queue: callers waiting now and today's service, from AMI queue events.

A supervisor's wallboard asks, per queue: how many callers wait and for how long the
longest has, and, for the day so far, how many calls were offered, answered, abandoned or
left unanswered (the queue's timeout, no agents), the service level (answered within the
queue's ``service_level_seconds`` / calls that left the queue), the average speed of
answer and the average talk time.

:class:`QueueBoard` is pure (no Twisted, no clock): the engine hands it each AMI event
with the time read from its clock and the local day (site time zone), the ``QueueEntry``
items of a ``QueueStatus`` snapshot after a (re)connection, and asks for :meth:`views`.

What app_queue sends, as the real Asterisk 22 capture shows it (``QueueCallerJoin`` ->
``QueueCallerLeave`` -> ``AgentConnect`` for an answered call, ``QueueCallerAbandon`` ->
``QueueCallerLeave`` for an abandoned one): a caller stops waiting at ``Leave``; the
``AgentConnect`` that follows (``HoldTime`` = seconds waited) makes it answered. A caller
who left without an abandon and without a connect within :data:`CONNECT_GRACE_S` left
unanswered (a key, ``WITHDRAW``...). app_queue also sends ``QueueCallerAbandon`` when its
timeout passes or an empty queue lets the caller go (``QUEUESTATUS`` TIMEOUT, LEAVEEMPTY,
seen in the lab); the dialplan then goes on with the caller, and the engine says so
(:meth:`QueueBoard.left_unanswered`): unanswered too. Counters start at zero at the first
event of a new day.

How each caller's stay ended (:meth:`QueueBoard.stay_of`) goes into the call record
(``queue_result``), so a daemon started mid-day counts the day's earlier stays again from
SQL (:meth:`QueueBoard.add_history`); only the stays in progress while no daemon ran are
missing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Final

from callcenter.ami.codec import Message

__all__ = ["CONNECT_GRACE_S", "QUEUE_RESULTS", "QueueBoard", "QueueStay", "QueueView"]

#: Seconds after ``QueueCallerLeave`` within which an ``AgentConnect`` still makes the call answered.
CONNECT_GRACE_S: Final = 5.0

#: How a caller's stay in a queue ended.
QUEUE_RESULTS: Final = ("answered", "abandoned", "unanswered")

#: Ended stays kept for :meth:`QueueBoard.stay_of` (the oldest go first beyond this).
STAYS_KEPT: Final = 10_000


@dataclass(frozen=True)
class QueueStay:
    """How one caller's stay in a queue ended: ``result`` (one of :data:`QUEUE_RESULTS`) after
    ``wait`` seconds; ``talk``: the answered call's talk seconds, where known (history)."""

    queue: str
    result: str
    wait: float
    talk: float | None = None


@dataclass(frozen=True)
class QueueView:
    """One queue now (``waiting``, ``longest_wait``) and today (the rest)."""

    queue: str
    day: date | None
    """The local day the counters are for (None before the first event)."""
    waiting: int
    longest_wait: float
    """Seconds the longest-waiting caller has waited (0 with nobody waiting)."""
    offered: int
    answered: int
    abandoned: int
    unanswered: int
    """Left the queue neither answered nor abandoned (the queue's timeout, no agents left)."""
    answered_within_target: int
    service_level_seconds: int
    service_level: float | None
    """answered within ``service_level_seconds`` / calls that left the queue (None before any)."""
    asa: float | None
    """Mean seconds answered callers waited."""
    average_talk: float | None
    """Mean talk seconds of the calls completed today (``AgentComplete``)."""
    completed: int


@dataclass
class _Day:
    day: date | None = None
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    unanswered: int = 0
    within: int = 0
    hold_total: float = 0.0
    completed: int = 0
    talk_total: float = 0.0

    def count(self, stay: QueueStay, target: int) -> None:
        """One stay that ended (``target``: the queue's service-level seconds)."""
        if stay.result == "abandoned":
            self.abandoned += 1
        elif stay.result == "unanswered":
            self.unanswered += 1
        else:
            self.answered += 1
            self.hold_total += stay.wait
            if stay.wait <= target:
                self.within += 1


@dataclass
class _Queue:
    name: str
    target: int
    waiting: dict[str, float] = field(default_factory=dict)  # uniqueid -> joined at
    left: dict[str, tuple[float, float]] = field(default_factory=dict)  # uniqueid -> (joined, left at)
    abandoned: set[str] = field(default_factory=set)  # abandoned callers whose Leave is still to come
    today: _Day = field(default_factory=_Day)


class QueueBoard:
    """Per-queue waiting callers and the day's counters, fed AMI queue events.

    ``service_level_seconds``: queue name -> the service-level threshold (``queues.yaml``);
    events of other queues are ignored.
    """

    def __init__(self, service_level_seconds: Mapping[str, int]) -> None:
        self._queues = {name: _Queue(name, int(target)) for name, target in service_level_seconds.items()}
        self._stays: OrderedDict[str, QueueStay] = OrderedDict()  # uniqueid -> its ended stay

    def handle(self, msg: Message, now: float, day: date) -> None:
        """Take one AMI event (anything but the queue events is ignored)."""
        name = msg.name
        if name not in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect",
                        "AgentComplete"):
            return
        fields = msg.fields
        queue = self._queues.get(fields.get("Queue") or "")
        uniqueid = fields.get("Uniqueid") or ""
        if queue is None or not uniqueid:
            return
        today = self._today(queue, day)
        self._expire(queue, now)
        if name == "QueueCallerJoin":
            queue.waiting[uniqueid] = now
            today.offered += 1
        elif name == "QueueCallerAbandon":
            joined = queue.waiting.pop(uniqueid, None)
            if joined is not None:
                self._ended(queue, uniqueid, QueueStay(queue.name, "abandoned",
                                                       _seconds(fields.get("HoldTime"), now - joined)))
            queue.abandoned.add(uniqueid)
        elif name == "QueueCallerLeave":
            joined = queue.waiting.pop(uniqueid, None)
            if uniqueid in queue.abandoned:
                queue.abandoned.discard(uniqueid)
            elif joined is not None:
                queue.left[uniqueid] = (joined, now)
        elif name == "AgentConnect":
            joined_left = queue.left.pop(uniqueid, None)
            joined = queue.waiting.pop(uniqueid, None)
            if joined_left is None and joined is None:
                return  # joined before this board started (or counted already)
            start = joined_left[0] if joined_left is not None else joined
            assert start is not None
            self._ended(queue, uniqueid, QueueStay(queue.name, "answered",
                                                   _seconds(fields.get("HoldTime"), now - start)))
        elif name == "AgentComplete":
            today.completed += 1
            today.talk_total += _seconds(fields.get("TalkTime"), 0.0)

    def resync(self, queue_status: Iterable[Message], now: float) -> None:
        """Rebuild the waiting callers from a ``QueueStatus`` snapshot (``QueueEntry``: ``Wait`` seconds)."""
        for known in self._queues.values():
            known.waiting.clear()
            known.left.clear()
            known.abandoned.clear()
        for item in queue_status:
            if item.name != "QueueEntry":
                continue
            queue = self._queues.get(item.fields.get("Queue") or "")
            uniqueid = item.fields.get("Uniqueid") or ""
            if queue is not None and uniqueid:
                queue.waiting[uniqueid] = now - _seconds(item.fields.get("Wait"), 0.0)

    def views(self, now: float, day: date) -> list[QueueView]:
        """Every configured queue, in configuration order, as of ``now`` on local ``day``."""
        out = []
        for name, queue in self._queues.items():
            self._expire(queue, now)
            today = queue.today if queue.today.day in (None, day) else _Day(day)
            left_queue = today.answered + today.abandoned + today.unanswered
            out.append(QueueView(
                queue=name, day=today.day, waiting=len(queue.waiting),
                longest_wait=max((now - t for t in queue.waiting.values()), default=0.0),
                offered=today.offered, answered=today.answered, abandoned=today.abandoned,
                unanswered=today.unanswered, answered_within_target=today.within,
                service_level_seconds=queue.target,
                service_level=today.within / left_queue if left_queue else None,
                asa=today.hold_total / today.answered if today.answered else None,
                average_talk=today.talk_total / today.completed if today.completed else None,
                completed=today.completed,
            ))
        return out

    def waiting(self, queue: str) -> int:
        """Callers waiting in ``queue`` now (0 for a queue not configured)."""
        known = self._queues.get(queue)
        return len(known.waiting) if known is not None else 0

    def stay_of(self, uniqueid: str, now: float) -> QueueStay | None:
        """How the caller ``uniqueid``'s last stay in a queue ended, taken off the board.

        Ask when the call is over: a caller still within the connect grace after leaving
        hung up unconnected, so is unanswered now. None if the caller never left a queue
        this board saw them join (or waits still: the call cannot be over).
        """
        for queue in self._queues.values():
            left = queue.left.pop(uniqueid, None)
            if left is not None:
                self._ended(queue, uniqueid, QueueStay(queue.name, "unanswered", left[1] - left[0]))
        return self._stays.pop(uniqueid, None)

    def left_unanswered(self, uniqueid: str) -> None:
        """The caller ``uniqueid`` is still on the line after leaving the queue unanswered (the
        dialplan goes on: the queue's timeout, no agent to answer, a key): their stay counts as
        unanswered, not abandoned. app_queue sends ``QueueCallerAbandon`` for a timeout and for
        leaving an empty queue as for a caller who hung up; only the dialplan can tell."""
        stay = self._stays.get(uniqueid)
        if stay is None or stay.result != "abandoned":
            return
        self._stays[uniqueid] = replace(stay, result="unanswered")
        queue = self._queues.get(stay.queue)
        if queue is not None and queue.today.abandoned > 0:
            queue.today.abandoned -= 1
            queue.today.unanswered += 1

    def add_history(self, day: date, stays: Iterable[QueueStay]) -> None:
        """Count stays of local ``day`` that ended before this board saw events (call records).

        A queue whose counters are already on a later day ignores them; stays of queues
        not configured are ignored.
        """
        for stay in stays:
            queue = self._queues.get(stay.queue)
            if queue is None or stay.result not in QUEUE_RESULTS:
                continue
            if queue.today.day not in (None, day):
                continue
            today = self._today(queue, day)
            today.offered += 1
            today.count(stay, queue.target)
            if stay.result == "answered" and stay.talk is not None:
                today.completed += 1
                today.talk_total += stay.talk

    def _ended(self, queue: _Queue, uniqueid: str, stay: QueueStay) -> None:
        """Count the stay on the queue's day and keep it for :meth:`stay_of`."""
        queue.today.count(stay, queue.target)
        self._stays[uniqueid] = stay
        self._stays.move_to_end(uniqueid)
        while len(self._stays) > STAYS_KEPT:
            self._stays.popitem(last=False)

    @staticmethod
    def _today(queue: _Queue, day: date) -> _Day:
        if queue.today.day != day:
            queue.today = _Day(day)
        return queue.today

    def _expire(self, queue: _Queue, now: float) -> None:
        """Callers who left the queue and were not connected within the grace: unanswered."""
        for uniqueid, (joined, left_at) in list(queue.left.items()):
            if now - left_at > CONNECT_GRACE_S:
                del queue.left[uniqueid]
                self._ended(queue, uniqueid, QueueStay(queue.name, "unanswered", left_at - joined))


def _seconds(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if value >= 0 else default
