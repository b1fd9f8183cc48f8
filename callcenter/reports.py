"""Call reports from the call records: volume, service level, ASA, AHT, FCR and CSAT.

Pure (no SQLAlchemy, no Twisted): :func:`build_report` takes the facts of the call records
(:class:`CallFacts`, read by :func:`callcenter.storage.repository.report_facts`) and
returns one :class:`ReportLine` per day, agent or queue, and a total.

The measures, as call centers define them:

- **calls**: records started in the period (``inbound``: hotline callers, IVR-only calls
  included; ``outbound``: dialer calls that reached an agent).
- **answered**: calls an agent took: the queue stay ended ``answered``, or, for records
  without a queue result (outbound, or older than revision 0004), a talk time above 0.
- **abandoned**, **unanswered**: queue stays the caller ended, or the queue ended (its
  timeout, no agents).
- **service level**: queued calls answered within the queue's ``service_level_seconds``
  over all queued calls (answered + abandoned + unanswered), as the wallboard counts them.
- **ASA**: mean seconds answered queued callers waited.
- **AHT**: mean handle time of answered calls: talk plus the queue's wrap-up
  (``wrapup_time``: after-call work is Asterisk's fixed wrap-up, not measured per call).
- **FCR** (first-call resolution, the repeat-call method): an answered inbound call is
  resolved at first contact when the same caller (the customer, else the phone number)
  does not call the hotline again within ``fcr_days`` (7). Only calls whose window has
  passed count (``fcr_calls``); a later call outside the period still counts as a repeat.
- **CSAT**: mean post-call survey score (1-5), the number of answers and each score's count.
- **transferred** ("handed on"): answered calls an agent handed on to a queue or another
  agent at least once. A call is one record, counted in its day, its first queue and its
  last agent's line; its hops say who handed it on.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from callcenter.settings import QueueSettings
from callcenter.storage.records import InvalidFieldError

__all__ = ["FCR_DAYS", "GROUPINGS", "CallFacts", "ReportLine", "ReportPeriod", "build_report", "period", "queue_targets"]

def queue_targets(queues: Iterable[QueueSettings]) -> tuple[dict[str, int], dict[str, int]]:
    """Each queue's service-level target and wrap-up, in seconds: the two maps
    :func:`build_report` takes (``service_level_seconds``, ``wrapup_seconds``)."""
    queues = list(queues)
    return {q.name: q.service_level_seconds for q in queues}, {q.name: q.wrapup_time for q in queues}


FCR_DAYS: Final = 7
"""Days within which a repeat call from the same caller means the first was not resolved."""

GROUPINGS: Final = ("day", "agent", "queue")
"""What a report's lines can be grouped by."""

TOTAL: Final = "total"
"""The key of the last line, every call of the period."""


@dataclass(frozen=True)
class CallFacts:
    """What a report needs of one call record (``started_at`` timezone-aware)."""

    started_at: datetime
    direction: str
    queue: str | None = None
    queue_result: str | None = None
    agent_id: str | None = None
    caller: str | None = None
    """Who called, for FCR: ``customer:<id>`` when the customer is known, else the phone."""
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    csat: int | None = None
    transferred: bool = False
    """An agent handed the call on at least once (the record's ``transfers``)."""

    @property
    def answered(self) -> bool:
        if self.queue_result is not None:
            return self.queue_result == "answered"
        return (self.talk_seconds or 0) > 0


@dataclass(frozen=True)
class ReportPeriod:
    """Local days ``first`` to ``last`` (inclusive) of ``tz``, as UTC-aware bounds."""

    first: date
    last: date
    tz: ZoneInfo
    start: datetime
    end: datetime
    """Midnight after ``last`` (exclusive)."""


#: The days a report may cover: any call this engine recorded, with room for the time
#: zones (Python's dates end at 9999-12-31, and the day after the last is the period's end).
FIRST_DAY: Final = date(1970, 1, 1)
LAST_DAY: Final = date(9998, 12, 31)


def period(first: date, last: date, tz: ZoneInfo) -> ReportPeriod:
    """The period from local day ``first`` to ``last``; InvalidFieldError (``to``) if ``last``
    is before ``first``, (``from`` / ``to``) for a day outside :data:`FIRST_DAY` .. :data:`LAST_DAY`."""
    for name, day in (("from", first), ("to", last)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidFieldError(name, f"{day.isoformat()} is not between {FIRST_DAY} and {LAST_DAY}")
    if last < first:
        raise InvalidFieldError("to", f"{last.isoformat()} is before from {first.isoformat()}")
    return ReportPeriod(first, last, tz, datetime.combine(first, time(), tz),
                        datetime.combine(last + timedelta(days=1), time(), tz))


@dataclass(frozen=True)
class ReportLine:
    """One group's measures (None where there is nothing to measure)."""

    key: str
    calls: int
    inbound: int
    outbound: int
    answered: int
    abandoned: int
    unanswered: int
    answered_within_target: int
    service_level: float | None
    asa: float | None
    aht: float | None
    fcr: float | None
    fcr_calls: int
    """Answered inbound calls whose repeat window has passed (the FCR denominator)."""
    csat: float | None
    csat_responses: int
    csat_scores: tuple[int, int, int, int, int]
    """How many answers gave 1, 2, 3, 4 and 5."""
    transferred: int = 0
    """Answered calls an agent handed on (to a queue or an agent) at least once."""


@dataclass
class _Sums:
    calls: int = 0
    inbound: int = 0
    outbound: int = 0
    answered: int = 0
    abandoned: int = 0
    unanswered: int = 0
    within: int = 0
    queued_answered: int = 0
    wait_total: float = 0.0
    handle_total: float = 0.0
    fcr_calls: int = 0
    fcr_resolved: int = 0
    csat_total: int = 0
    csat_scores: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    transferred: int = 0

    def line(self, key: str) -> ReportLine:
        queued = self.queued_answered + self.abandoned + self.unanswered
        responses = sum(self.csat_scores)
        return ReportLine(
            key=key, calls=self.calls, inbound=self.inbound, outbound=self.outbound, answered=self.answered,
            abandoned=self.abandoned, unanswered=self.unanswered, answered_within_target=self.within,
            service_level=self.within / queued if queued else None,
            asa=self.wait_total / self.queued_answered if self.queued_answered else None,
            aht=self.handle_total / self.answered if self.answered else None,
            fcr=self.fcr_resolved / self.fcr_calls if self.fcr_calls else None, fcr_calls=self.fcr_calls,
            csat=self.csat_total / responses if responses else None, csat_responses=responses,
            csat_scores=self.csat_scores, transferred=self.transferred,
        )


def _key(call: CallFacts, by: str, tz: ZoneInfo) -> str:
    if by == "day":
        return call.started_at.astimezone(tz).date().isoformat()
    value = call.agent_id if by == "agent" else call.queue
    return value or "-"


def _resolved(starts: Sequence[datetime], started_at: datetime, window: timedelta) -> bool:
    """No call in the caller's sorted ``starts`` after ``started_at`` and within ``window`` of it."""
    following = bisect.bisect_right(starts, started_at)  # the caller's next call, if any
    return following == len(starts) or starts[following] > started_at + window


def build_report(calls: Iterable[CallFacts], report_period: ReportPeriod, *, by: str,
                 service_level_seconds: Mapping[str, int], wrapup_seconds: Mapping[str, int],
                 now: datetime, fcr_days: int = FCR_DAYS) -> list[ReportLine]:
    """One line per ``by`` group (days in order, agents and queues by name) and the total.

    ``calls`` are the records started in the period and, for FCR, those up to ``fcr_days``
    after it, in any order; they are read once (a stream of a year's records is fine: only
    the inbound calls' callers and times are kept). ``service_level_seconds`` and
    ``wrapup_seconds`` are per queue (a queue missing from them counts with 0). InvalidFieldError
    names a bad ``by`` or ``fcr_days``.
    """
    if by not in GROUPINGS:
        raise InvalidFieldError("by", f"expected one of {', '.join(GROUPINGS)}, got {by!r}")
    if isinstance(fcr_days, bool) or not isinstance(fcr_days, int) or fcr_days < 1:
        raise InvalidFieldError("fcr_days", f"expected whole days >= 1, got {fcr_days!r}")
    window = timedelta(days=fcr_days)
    groups: dict[str, _Sums] = defaultdict(_Sums)
    total = _Sums()
    by_caller: dict[str, list[datetime]] = defaultdict(list)  # every inbound call's start, per caller
    first_calls: list[tuple[str, str, datetime]] = []  # (group, caller, start) of calls FCR judges
    for call in calls:
        inbound = call.direction == "inbound"
        if inbound and call.caller:
            by_caller[call.caller].append(call.started_at)
        if not report_period.start <= call.started_at < report_period.end:
            continue
        key = _key(call, by, report_period.tz)
        for sums in (groups[key], total):
            _add(sums, call, service_level_seconds, wrapup_seconds)
        if inbound and call.answered and call.caller and call.started_at + window <= now:
            # a caller with no number (withheld) cannot be told calling again: not judged
            first_calls.append((key, call.caller, call.started_at))
    for starts in by_caller.values():
        starts.sort()
    for key, caller, started_at in first_calls:
        resolved = _resolved(by_caller.get(caller, []), started_at, window)
        for sums in (groups[key], total):
            sums.fcr_calls += 1
            sums.fcr_resolved += resolved
    keys = sorted(groups)
    if by == "day":  # every day of the period, quiet ones too
        days = (report_period.last - report_period.first).days + 1
        keys = [(report_period.first + timedelta(days=d)).isoformat() for d in range(days)]
    return [groups[k].line(k) if k in groups else _Sums().line(k) for k in keys] + [total.line(TOTAL)]


def _add(sums: _Sums, call: CallFacts, service_level_seconds: Mapping[str, int],
         wrapup_seconds: Mapping[str, int]) -> None:
    sums.calls += 1
    if call.direction == "inbound":
        sums.inbound += 1
    else:
        sums.outbound += 1
    queue = call.queue or ""
    if call.answered:
        sums.answered += 1
        sums.handle_total += (call.talk_seconds or 0) + wrapup_seconds.get(queue, 0)
        sums.transferred += call.transferred
    # the callers' queue stays only: a dialer call's is its connect window, whose abandons are
    # the dialer's own ledger (docs/dialer.md)
    stay = call.queue_result if call.direction == "inbound" else None
    if stay == "answered":
        wait = call.wait_seconds or 0
        sums.queued_answered += 1
        sums.wait_total += wait
        if wait <= service_level_seconds.get(queue, 0):
            sums.within += 1
    elif stay == "abandoned":
        sums.abandoned += 1
    elif stay == "unanswered":
        sums.unanswered += 1
    if call.csat is not None and 1 <= call.csat <= 5:
        sums.csat_total += call.csat
        scores = list(sums.csat_scores)
        scores[call.csat - 1] += 1
        sums.csat_scores = (scores[0], scores[1], scores[2], scores[3], scores[4])
