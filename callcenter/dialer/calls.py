"""The dialer's calls in flight, sans-IO: from Originate to one recorded outcome each.

:class:`DialBook` is fed what the Twisted side sees, with the time it saw it:

- :meth:`DialBook.placed` when an ``Originate`` is sent (the engine chose the new
  channel's ``Uniqueid`` with ``ChannelId``, so every later event can be matched);
- :meth:`DialBook.originate_response` with the ``OriginateResponse`` event: a busy,
  unanswered or failed call ends here (``Reason`` 5, 3, 8/0/1), an answered one waits for
  the dialplan;
- :meth:`DialBook.handle` with every AMI event: the dialplan's ``UserEvent``\\s
  (``DialerAnswered``, ``DialerAMD``, ``DialerResult``, see ``dialplans/dialer.conf``)
  and the outbound queue's ``AgentConnect`` (answer -> agent bridged latency);
- :meth:`DialBook.adopt` at start-up for each call an earlier run placed that is still
  live in Asterisk (its ``OriginateResponse``, broadcast to every AMI session, then ends
  it if it was not answered);
- :meth:`DialBook.expire` from a timer: a call that never got its final event (an AMI
  reconnect lost it) ends as ``failed`` instead of staying in flight forever.

Each call ends exactly once, as a :class:`DialEnded` carrying the outcome the pacer and
the lead's attempt history need. Everything else (storage, pacing, metrics) happens in
:mod:`callcenter.dialer.service`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Final

from callcenter.ami.codec import Message
from callcenter.dialer.campaign import ATTEMPT_OUTCOMES
from callcenter.state.agents import agent_id_of
from callcenter.storage.records import is_digits

__all__ = ["Dial", "DialBook", "DialConnected", "DialEnded", "DialFact", "outcome_of_reason"]

#: OriginateResponse ``Reason`` codes (Asterisk's AST_CONTROL_*): how an unanswered call ended.
_REASONS: Final = {"1": "failed", "3": "noanswer", "5": "busy", "8": "failed", "0": "failed"}
_ANSWERED: Final = "4"


def outcome_of_reason(reason: str | None) -> str | None:
    """The outcome of an ``OriginateResponse`` ``Reason``; None for 4 (answered: see the dialplan)."""
    if reason == _ANSWERED:
        return None
    return _REASONS.get(reason or "", "failed")


@dataclass(frozen=True)
class Dial:
    """One call placed for one attempt of one lead."""

    attempt_id: int
    lead_id: int
    campaign_id: int
    uniqueid: str
    placed_at: float
    answered_at: float | None = None
    amd_at: float | None = None
    amd_status: str | None = None
    amd_cause: str | None = None
    connected_at: float | None = None
    agent: str | None = None
    lane: str = ""
    """The campaign's pacing lane that placed it: a team (``route: team``), else empty."""
    adopted: bool = False
    """Placed by an earlier run of the dialer and found live at this one's start
    (:meth:`DialBook.adopt`): its timings before the start are not known."""
    to_agent: bool = False
    """A preview call: its Originate rang the agent's phone first (set for adopted calls,
    whose ``OriginateResponse`` the book reads itself)."""

    @property
    def answered(self) -> bool:
        """True once the far end answered (the dialplan reported it, or Originate did)."""
        return self.answered_at is not None


@dataclass(frozen=True)
class DialEnded:
    """A call's one final outcome (one of ``ATTEMPT_OUTCOMES``) and its timings, in seconds."""

    dial: Dial
    outcome: str
    ended_at: float
    ring_seconds: float
    connect_seconds: float | None  # answer verdict (AMD, or answer) -> agent bridged
    queue_status: str | None
    detail: str
    verdict_seconds: float  # placed -> AMD verdict (else answer, else end): what pacers learn as ring time


@dataclass(frozen=True)
class DialConnected:
    """An answered human was bridged to an agent (``AgentConnect``): the pacer learns it now."""

    dial: Dial
    ring_seconds: float
    connect_seconds: float
    verdict_seconds: float  # placed -> the call needed an agent (AMD verdict, else answer)


DialFact = DialConnected | DialEnded


class DialBook:
    """Calls in flight, by attempt id and by the answered channel's ``Uniqueid``."""

    def __init__(self) -> None:
        self._by_attempt: dict[int, Dial] = {}
        self._by_uniqueid: dict[str, int] = {}
        self.unknown_events = 0

    def __len__(self) -> int:
        return len(self._by_attempt)

    def __contains__(self, attempt_id: object) -> bool:
        return attempt_id in self._by_attempt

    def dials(self) -> list[Dial]:
        """Every call in flight, oldest first."""
        return sorted(self._by_attempt.values(), key=lambda d: d.placed_at)

    def ringing(self, now: float, campaign_id: int | None = None,
                lanes: Collection[str] | None = None) -> list[float]:
        """Seconds each unanswered call (of ``campaign_id`` and placed by one of ``lanes``, or all)
        has been ringing."""
        return [now - d.placed_at for d in self._by_attempt.values()
                if d.answered_at is None and campaign_id in (None, d.campaign_id)
                and (lanes is None or d.lane in lanes)]

    def answered_waiting(self, campaign_id: int | None = None, lanes: Collection[str] | None = None) -> list[Dial]:
        """Answered calls (of ``campaign_id`` and placed by one of ``lanes``, or all) not yet with an
        agent nor ended: in AMD or the queue. A call AMD judged a machine will ask for no agent
        (it hangs up or hears the campaign's message): it is not among them."""
        return [d for d in self._by_attempt.values()
                if d.answered_at is not None and d.connected_at is None and d.amd_status != "MACHINE"
                and campaign_id in (None, d.campaign_id) and (lanes is None or d.lane in lanes)]

    def placed(self, attempt_id: int, lead_id: int, campaign_id: int, uniqueid: str, now: float,
               lane: str = "") -> Dial:
        """An ``Originate`` was sent for ``attempt_id`` with ``ChannelId: uniqueid`` (by the campaign's ``lane``)."""
        if attempt_id in self._by_attempt:
            raise ValueError(f"attempt {attempt_id} is already in flight")
        if uniqueid in self._by_uniqueid:
            raise ValueError(f"uniqueid {uniqueid!r} is already in flight")
        dial = Dial(attempt_id, lead_id, campaign_id, uniqueid, now, lane=lane)
        self._by_attempt[attempt_id] = dial
        self._by_uniqueid[uniqueid] = attempt_id
        return dial

    def adopt(self, attempt_id: int, lead_id: int, campaign_id: int, uniqueid: str, placed_at: float,
              now: float, *, answered: bool, bridged: bool, agent: str | None = None,
              to_agent: bool = False, lane: str = "") -> Dial:
        """A call an earlier run placed, live in Asterisk at this run's start: tracked again.

        ``answered`` (its channel is up) and ``bridged`` (in a bridge: with an agent) are
        what the channel list says; both count from ``now``, the first moment seen (its
        AMD verdict and connect are not known). ``to_agent``: a preview call, whose
        Originate rings the agent's phone (not the lead's); ``lane``: the campaign's pacing
        lane it counts in. Its later events end it as any other.
        """
        dial = self.placed(attempt_id, lead_id, campaign_id, uniqueid, placed_at, lane=lane)
        if answered or bridged:
            dial = replace(dial, answered_at=now, connected_at=now if bridged else None, agent=agent)
        dial = replace(dial, adopted=True, to_agent=to_agent, agent=agent)
        self._by_attempt[attempt_id] = dial
        return dial

    def originate_response(self, attempt_id: int, msg: Message, now: float) -> DialEnded | None:
        """The ``OriginateResponse`` of ``attempt_id``: ends an unanswered call."""
        dial = self._by_attempt.get(attempt_id)
        if dial is None:
            return None
        outcome = outcome_of_reason(msg.get("Reason"))
        if outcome is None:
            if dial.answered_at is None:
                self._by_attempt[attempt_id] = replace(dial, answered_at=now)
            return None
        return self._end(dial, outcome, now, detail=f"OriginateResponse {msg.get('Response')} reason {msg.get('Reason')}")

    def failed(self, attempt_id: int, now: float, detail: str) -> DialEnded | None:
        """The call could not be placed or was lost (an AMI error, a timeout)."""
        dial = self._by_attempt.get(attempt_id)
        return None if dial is None else self._end(dial, "failed", now, detail=detail)

    def handle(self, msg: Message, now: float) -> DialFact | None:
        """One AMI event; returns what it meant for a call in flight, if anything."""
        name = msg.name
        if name == "UserEvent":
            return self._user_event(msg, now)
        if name == "OriginateResponse":
            # broadcast to every AMI session: an adopted call's (sent by an earlier run) ends
            # it if it was not answered. Others come to their Originate's waiter.
            attempt_id = self._by_uniqueid.get(msg.get("Uniqueid") or "")
            dial = self._by_attempt.get(attempt_id) if attempt_id is not None else None
            if dial is None or not dial.adopted:
                return None
            if dial.to_agent and msg.get("Reason") != _ANSWERED:  # the agent's phone, not the lead, did not answer
                return self._end(dial, "failed", now,
                                 detail=f"agent {dial.agent or '?'}'s phone did not answer (reason {msg.get('Reason')})")
            return self.originate_response(dial.attempt_id, msg, now)
        if name == "AgentConnect":
            attempt_id = self._by_uniqueid.get(msg.get("Uniqueid") or "")
            dial = self._by_attempt.get(attempt_id) if attempt_id is not None else None
            if dial is not None and dial.connected_at is None:
                answered = dial.answered_at if dial.answered_at is not None else now
                dial = replace(dial, answered_at=answered, connected_at=now,
                               agent=_agent(msg.get("Interface")) or dial.agent)
                self._by_attempt[dial.attempt_id] = dial
                verdict = dial.amd_at if dial.amd_at is not None else answered
                return DialConnected(dial, answered - dial.placed_at, max(0.0, now - verdict),
                                     verdict - dial.placed_at)
        return None

    def expire(self, now: float, *, ringing: float, answered: float, connected: float) -> list[DialEnded]:
        """End calls whose final event is overdue as ``failed`` (lost, e.g. over an AMI reconnect).

        Limits in seconds since placed: ``ringing`` for unanswered calls (the ring timeout
        plus a margin), ``answered`` for calls in AMD or the queue, ``connected`` for calls
        with an agent (a conversation ends the attempt only when it hangs up).
        """
        ends = []
        for dial in list(self._by_attempt.values()):
            limit = ringing if dial.answered_at is None else answered if dial.connected_at is None else connected
            if now - dial.placed_at > limit:
                ends.append(self._end(dial, "failed", now, detail=f"no final event within {limit:.0f} s"))
        return ends

    def connected_unseen(self, bridged_uniqueids: set[str], now: float) -> list[Dial]:
        """After an AMI resync: calls in flight found in a bridge (with an agent, their
        ``AgentConnect`` lost with the connection) are connected from ``now``, so the limit
        for a conversation applies to them, not the one for a call waiting for an agent."""
        found = []
        for dial in list(self._by_attempt.values()):
            if dial.connected_at is None and dial.uniqueid in bridged_uniqueids:
                dial = replace(dial, answered_at=dial.answered_at if dial.answered_at is not None else now,
                               connected_at=now)
                self._by_attempt[dial.attempt_id] = dial
                found.append(dial)
        return found

    def forget_missing(self, live_uniqueids: set[str], now: float) -> list[DialEnded]:
        """After an AMI resync: calls whose channel is gone end as ``failed`` (answered ones,
        and ringing ones whose ``OriginateResponse`` was lost with the connection: every
        Originate waiting for its answer is, so none of those calls can end otherwise)."""
        gone = [d for d in self._by_attempt.values() if d.uniqueid not in live_uniqueids]
        return [self._end(d, "failed", now, detail="channel gone after an AMI reconnect") for d in gone]

    # ------------------------------------------------------------------ internals

    def _user_event(self, msg: Message, now: float) -> DialFact | None:
        kind = msg.get("UserEvent")
        if kind not in ("DialerAnswered", "DialerAMD", "DialerResult"):
            return None
        attempt_id = _int(msg.get("Attempt"))
        dial = self._by_attempt.get(attempt_id) if attempt_id is not None else None
        if dial is None:
            self.unknown_events += 1
            return None
        if dial.answered_at is None:
            dial = replace(dial, answered_at=now)
        if kind == "DialerAMD":
            dial = replace(dial, amd_at=now, amd_status=msg.get("AMDStatus") or None,
                           amd_cause=msg.get("AMDCause") or None)
        self._by_attempt[dial.attempt_id] = dial
        if kind == "DialerAnswered" and (msg.get("AgentConnected") or "").lower() == "yes" \
                and dial.connected_at is None:
            # a preview call: the agent dialed the lead, who answered on the agent's line
            dial = replace(dial, connected_at=now, agent=_agent(msg.get("Agent")) or dial.agent)
            self._by_attempt[dial.attempt_id] = dial
            return DialConnected(dial, now - dial.placed_at, 0.0, now - dial.placed_at)
        if kind != "DialerResult":
            return None
        outcome = (msg.get("Outcome") or "").lower()
        if outcome not in ATTEMPT_OUTCOMES:
            return self._end(dial, "failed", now, detail=f"DialerResult with unknown outcome {outcome!r}")
        agent = _agent(msg.get("Agent")) or dial.agent
        if dial.amd_status is None and msg.get("AMDStatus"):
            dial = replace(dial, amd_status=msg.get("AMDStatus"), amd_cause=msg.get("AMDCause") or None)
        return self._end(replace(dial, agent=agent), outcome, now,
                         queue_status=msg.get("QueueStatus") or None,
                         detail=msg.get("Detail") or "")

    def _end(self, dial: Dial, outcome: str, now: float, *, queue_status: str | None = None,
             detail: str = "") -> DialEnded:
        self._by_attempt.pop(dial.attempt_id, None)
        self._by_uniqueid.pop(dial.uniqueid, None)
        answered = dial.answered_at
        ring = (answered if answered is not None else now) - dial.placed_at
        connect = None
        if dial.connected_at is not None:
            verdict = dial.amd_at if dial.amd_at is not None else answered
            connect = max(0.0, dial.connected_at - (verdict if verdict is not None else dial.connected_at))
        verdict_at = dial.amd_at if dial.amd_at is not None else answered if answered is not None else now
        return DialEnded(dial, outcome, now, max(0.0, ring), connect, queue_status, detail,
                         max(0.0, verdict_at - dial.placed_at))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _agent(interface: str | None) -> str | None:
    """``Local/2101@lab-agents/n``, ``PJSIP/agent2101`` or ``2101`` -> ``2101``."""
    if not interface:
        return None
    return interface if is_digits(interface) else agent_id_of(interface)

