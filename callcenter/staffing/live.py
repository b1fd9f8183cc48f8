"""Live staffing advice: agents needed now, from a queue's observed traffic.

:class:`LiveStaffingAdvisor` is a pure, clock-free core: the daemon feeds it the arrival
time of each call entering the queue and the handle time of each completed call, with
timestamps it reads from its own clock (seconds, any origin), and asks for
:meth:`~LiveStaffingAdvisor.advice` at a time of its choosing. Over a sliding window the
advisor returns the observed arrival rate, the mean handle time and the agents the Erlang C
(or, with a patience, Erlang A) model needs for the configured targets. No Twisted, no
clock, no I/O: the daemon turns the advice into a Prometheus gauge and an HTTP resource.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from callcenter.staffing.erlang import erlang_a_required_agents, required_agents

__all__ = ["LiveStaffingAdvisor", "StaffingAdvice"]


@dataclass(frozen=True)
class StaffingAdvice:
    """What the queue needs now, from the traffic of the last ``window_seconds``.

    ``window_seconds`` is the span actually observed (shorter than the configured window
    while the advisor warms up). ``aht`` is None when no call has completed in the window
    and no default was configured; ``agents`` (productive agents on the phones) and
    ``seats`` (people to schedule after shrinkage) are then None too.
    """

    at: float
    window_seconds: float
    arrivals: int
    completed: int
    arrival_rate: float  # calls per second
    aht: float | None
    traffic: float  # Erlangs
    agents: int | None
    seats: int | None
    service_level: float | None
    asa: float | None
    abandon: float | None

    @property
    def calls_per_hour(self) -> float:
        return self.arrival_rate * 3600.0

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready fields for the HTTP API (inf ASA becomes None)."""
        asa = None if self.asa is None or math.isinf(self.asa) else self.asa
        return {
            "at": self.at, "window_seconds": self.window_seconds, "arrivals": self.arrivals,
            "completed": self.completed, "arrival_rate": self.arrival_rate,
            "calls_per_hour": self.calls_per_hour, "aht": self.aht, "traffic": self.traffic,
            "agents": self.agents, "seats": self.seats, "service_level": self.service_level,
            "asa": asa, "abandon": self.abandon,
        }


class LiveStaffingAdvisor:
    """Sliding-window arrival rate and AHT of one queue, and the agents they need.

    ``started_at`` is when observation began (the daemon's clock at start-up): until a
    full window has passed, rates are taken over the time observed so far rather than
    diluted over the whole window. Events may arrive slightly out of order.
    """

    def __init__(self, *, started_at: float, window_seconds: float = 900.0,
                 target_sl: float = 0.8, target_seconds: float = 20.0,
                 max_occupancy: float | None = None, shrinkage: float = 0.0,
                 patience: float | None = None, max_abandon: float | None = None,
                 default_aht: float | None = None, min_span_seconds: float = 60.0) -> None:
        if not window_seconds > 0:
            raise ValueError("window_seconds must be > 0")
        if not 0.0 <= target_sl < 1.0:
            raise ValueError("target_sl must be in [0, 1)")
        if default_aht is not None and not default_aht > 0:
            raise ValueError("default_aht must be > 0")
        if max_abandon is not None and patience is None:
            raise ValueError("max_abandon needs a patience (Erlang A)")
        self.started_at = float(started_at)
        self.window_seconds = float(window_seconds)
        self.target_sl = target_sl
        self.target_seconds = target_seconds
        self.max_occupancy = max_occupancy
        self.shrinkage = shrinkage
        self.patience = patience
        self.max_abandon = max_abandon
        self.default_aht = default_aht
        self.min_span_seconds = min(float(min_span_seconds), self.window_seconds)
        self._arrivals: list[float] = []
        self._completions: list[tuple[float, float]] = []  # (at, handle seconds), sorted

    def record_arrival(self, at: float) -> None:
        """A caller entered the queue at ``at``."""
        if not self._arrivals or at >= self._arrivals[-1]:
            self._arrivals.append(at)
        else:
            bisect.insort(self._arrivals, at)

    def record_completion(self, at: float, handle_seconds: float) -> None:
        """A call of the queue ended at ``at`` after ``handle_seconds`` of talk + wrap-up."""
        if not handle_seconds >= 0 or math.isinf(handle_seconds):
            raise ValueError(f"handle_seconds must be finite and >= 0, got {handle_seconds!r}")
        item = (at, float(handle_seconds))
        if not self._completions or at >= self._completions[-1][0]:
            self._completions.append(item)
        else:
            bisect.insort(self._completions, item)

    def _forget_before(self, cutoff: float) -> None:
        del self._arrivals[:bisect.bisect_right(self._arrivals, cutoff)]
        cut = bisect.bisect_right(self._completions, (cutoff, math.inf))
        del self._completions[:cut]

    def advice(self, now: float) -> StaffingAdvice:
        """The observed traffic of the window ending at ``now`` and the agents it needs.

        Events older than the window are forgotten; events after ``now`` are kept for later.
        """
        cutoff = now - self.window_seconds
        self._forget_before(cutoff)
        span = min(self.window_seconds, max(now - self.started_at, 0.0))
        span = max(span, self.min_span_seconds)
        arrivals = bisect.bisect_right(self._arrivals, now)
        done = self._completions[:bisect.bisect_right(self._completions, (now, math.inf))]
        aht: float | None
        if done:
            aht = math.fsum(h for _, h in done) / len(done)
            if aht <= 0:
                aht = self.default_aht
        else:
            aht = self.default_aht
        rate = arrivals / span
        traffic = rate * aht if aht is not None else 0.0
        agents = seats = None
        level = asa = abandon = None
        if aht is not None:
            if self.patience is None:
                req = required_agents(arrivals, span, aht, self.target_sl, self.target_seconds,
                                      self.max_occupancy, self.shrinkage)
            else:
                req = erlang_a_required_agents(arrivals, span, aht, self.patience,
                                               self.target_sl, self.target_seconds,
                                               self.max_abandon, self.max_occupancy,
                                               self.shrinkage)
                abandon = float(req.abandon)
            agents, seats = int(req.agents), int(req.seats)
            level, asa = float(req.service_level), float(req.asa)
        return StaffingAdvice(at=now, window_seconds=span, arrivals=arrivals,
                              completed=len(done), arrival_rate=rate, aht=aht,
                              traffic=traffic, agents=agents, seats=seats,
                              service_level=level, asa=asa, abandon=abandon)
