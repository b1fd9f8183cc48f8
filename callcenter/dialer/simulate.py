"""A seeded discrete-event simulation of an outbound campaign day, driving any pacer.

This module owns the simulator behind ``callcenter dialer simulate`` and
``bench/dialer_pacing.py``: the workloads (:class:`Workload`), one simulated day
(:func:`simulate_day`), many seeded days per workload and pacer (:func:`compare`), the
table and the goals of issue 5 (:func:`format_table`, :func:`check_goals`), the CLI
(:func:`add_arguments`, :func:`run`), and three benchmark bounds that read the simulated
future and are never pacers (:data:`BOUNDS`: :class:`OracleDialer`,
:class:`AgentOraclePacer`, :class:`DialOraclePacer`).

The model, identical for every pacer (the dial stream, talk and wrap-up times come from
separate seeded streams, so every pacer meets the same called parties in the same order):

- every second the pacer is asked how many dials to place (its tick; VICIdial's pacer
  acts every 2.5 s of its own accord); a pacer whose ``dials_to_place`` takes the keyword
  ``dials_answered`` gets the answered calls not yet with an agent apart from the ringing
  dials;
- each dial is human, machine, busy, failed or unanswered with the workload's shares; the
  answer share (human + machine) follows a schedule of multipliers through the day;
  answered calls ring a lognormal time; unanswered ones ring ``ring_timeout``; answers
  later than that are unanswered;
- AMD: a human greets for 1-2.5 s and the HUMAN verdict comes 0.8 s after the greeting; a
  machine verdict comes 2.5-5 s after the answer. A share of humans is classified as
  machines (hung up; counted as abandoned, Ofcom-style, unless disabled) and a share of
  machines as humans (they take an agent for 3-10 s);
- a call classified human takes a ready agent at once, or the first agent freed within
  2 s of the end of the greeting; otherwise it is abandoned (the safe-harbor message
  plays, the pacer is told ``abandoned``);
- agents talk a lognormal time with humans, then wrap up (exponential or fixed), then are
  ready again; the pacer is told each call's talk and wrap-up.

Abandonment = abandoned / live answers (humans connected + abandoned). Utilization =
seconds agents talked with humans within the shift / (agents x shift seconds). The
physical limit is mean talk / (mean talk + mean wrap-up). Where the rest of the agent time
goes: "ready" is the share of agent time spent waiting for a call; of it, "no call coming"
counts, at each instant, the ready agents beyond the live answers already on their way
(dials placed that will ask for an agent): idle because too few dials were placed; the
remainder waited for a call already placed to ring and pass AMD (timing).
"""

from __future__ import annotations

import argparse
import heapq
import inspect
import math
import multiprocessing
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt

from callcenter.dialer.pacing import (
    FixedRatioPacer,
    Pacer,
    PacingSettings,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptivePacer,
)

__all__ = [
    "BOUNDS",
    "DEFAULT_PACERS",
    "DEFAULT_WORKLOADS",
    "WORKLOADS",
    "AgentOraclePacer",
    "DayResult",
    "DialOraclePacer",
    "OracleDialer",
    "Summary",
    "Workload",
    "add_arguments",
    "baseline_notes",
    "check_goals",
    "compare",
    "format_table",
    "make_pacer",
    "run",
    "simulate_day",
]

ABANDON_LIMIT: Final = 0.03
GREETING_S: Final = (1.0, 2.5)
HUMAN_VERDICT_AFTER_GREETING_S: Final = 0.8
CONNECT_WITHIN_S: Final = 2.0  # after the end of the greeting (FTC safe harbor)
MACHINE_VERDICT_S: Final = (2.5, 5.0)
MACHINE_AS_HUMAN_TALK_S: Final = (3.0, 10.0)
BUSY_S: Final = (1.0, 4.0)
FAILED_S: Final = (0.5, 2.0)
DAY_STARTS_AT_S: Final = 9 * 3600.0  # 09:00 local time, for VICIdial's time of day


@dataclass(frozen=True)
class Workload:
    """One kind of campaign day. Shares are per dial; ``noanswer`` takes the rest.

    ``answer_schedule``: ``(hours into the day, multiplier)`` steps applied to the human
    and machine shares (the multiplier in force is the last step started).
    """

    name: str
    description: str
    agents: int = 48
    shift_hours: float = 8.0
    human: float = 0.30
    machine: float = 0.10
    busy: float = 0.10
    failed: float = 0.0
    answer_schedule: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    answer_ring_mean: float = 9.0
    answer_ring_sd: float = 5.0
    talk_mean: float = 240.0
    talk_sd: float = 120.0
    wrap_mean: float = 15.0
    wrap_distribution: Literal["exponential", "fixed"] = "exponential"
    amd_human_as_machine: float = 0.0
    amd_machine_as_human: float = 0.03
    count_amd_false_positives: bool = True
    settings: PacingSettings = field(default_factory=PacingSettings)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"Workload {self.name!r}: {name}: {why}, got "
                              f"{getattr(self, name)!r}")

        if self.agents < 1:
            raise bad("agents", "expected at least 1")
        if not self.shift_hours > 0:
            raise bad("shift_hours", "expected > 0")
        for name in ("human", "machine", "busy", "failed", "amd_human_as_machine",
                     "amd_machine_as_human"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "expected a share in [0, 1]")
        for name in ("answer_ring_mean", "answer_ring_sd", "talk_mean", "talk_sd"):
            if not getattr(self, name) > 0:
                raise bad(name, "expected seconds > 0")
        if not self.wrap_mean >= 0:
            raise bad("wrap_mean", "expected seconds >= 0")
        if not self.answer_schedule or self.answer_schedule[0][0] != 0.0:
            raise bad("answer_schedule", "expected steps starting at hour 0")
        top = max(m for _, m in self.answer_schedule)
        if min(m for _, m in self.answer_schedule) < 0 or (
                (self.human + self.machine) * top + self.busy + self.failed > 1.0 + 1e-12):
            raise bad("answer_schedule", "shares times multipliers must stay within [0, 1]")

    @property
    def physical_limit(self) -> float:
        """Utilization of agents who never wait: mean talk / (mean talk + mean wrap-up)."""
        return self.talk_mean / (self.talk_mean + self.wrap_mean)

    @property
    def shift_seconds(self) -> float:
        """Length of the day in seconds."""
        return self.shift_hours * 3600.0


WORKLOADS: Final[dict[str, Workload]] = {w.name: w for w in (
    Workload("reference", "48 agents, 30/10/10/50% human/machine/busy/no answer, "
             "talk 240+-120 s, wrap 15 s, 8 h"),
    Workload("answer-halving", "reference; answer rate (human + machine) halves at 4 h",
             answer_schedule=((0.0, 1.0), (4.0, 0.5))),
    Workload("team-of-8", "reference with 8 agents", agents=8),
    Workload("short-calls", "reference with 60+-30 s talk", talk_mean=60.0, talk_sd=30.0),
    Workload("shift-start", "reference, 1 h day: every agent idle at the start",
             shift_hours=1.0),
    Workload("smoke", "4 agents, 15 minutes: a quick check of the tooling",
             agents=4, shift_hours=0.25),
    Workload("answer-drift", "reference; answer rate x1.3 in the 1st hour, x0.7 after "
             "lunch, x1.0 late", answer_schedule=((0.0, 1.3), (1.0, 1.0), (4.0, 0.7),
                                                  (6.0, 1.0))),
)}

DEFAULT_WORKLOADS: Final = ("reference", "answer-halving", "team-of-8", "short-calls",
                             "shift-start", "answer-drift")
DEFAULT_PACERS: Final = ("progressive", "vicidial-hard", "vicidial-average",
                          "vicidial-tapered", "predictive", "oracle")
BOUNDS: Final = ("oracle", "oracle-agents", "oracle-dials")
"""Benchmark bounds that see part of the future: table rows, never pacers."""


def make_pacer(name: str) -> Pacer:
    """A fresh pacer by name: ``progressive``, ``fixed:R``, ``vicidial-hard``,
    ``vicidial-average``, ``vicidial-tapered`` (VICIdial's three adaptive drop modes;
    ``vicidial`` is ``vicidial-hard``), ``predictive``; and the benchmark's bounds, not
    pacers, which need the simulator: ``oracle`` (:class:`OracleDialer`),
    ``oracle-agents`` (:class:`AgentOraclePacer`), ``oracle-dials``
    (:class:`DialOraclePacer`)."""
    if name == "progressive":
        return ProgressivePacer()
    if name == "predictive":
        return PredictivePacer()
    if name == "oracle":
        return OracleDialer()
    if name == "oracle-agents":
        return AgentOraclePacer()
    if name == "oracle-dials":
        return DialOraclePacer()
    if name == "vicidial-tapered":
        return VicidialAdaptivePacer(mode="TAPERED", clock_offset=DAY_STARTS_AT_S)
    if name in ("vicidial", "vicidial-hard"):
        return VicidialAdaptivePacer(mode="HARD_LIMIT", clock_offset=DAY_STARTS_AT_S)
    if name == "vicidial-average":
        return VicidialAdaptivePacer(mode="AVERAGE", clock_offset=DAY_STARTS_AT_S)
    if name.startswith("fixed:"):
        try:
            ratio = float(name.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"pacer: expected fixed:RATIO, got {name!r}") from None
        return FixedRatioPacer(ratio)
    raise ValueError(f"pacer: unknown {name!r}; expected progressive, fixed:R, vicidial, "
                     "vicidial-hard, vicidial-average, vicidial-tapered, predictive, oracle, "
                     "oracle-agents or oracle-dials")


@dataclass(frozen=True)
class DayResult:
    """What one simulated day produced. Outcomes are as the dialer saw them."""

    dials: int
    outcomes: dict[str, int]
    in_flight_at_end: int
    humans_connected: int
    abandoned: int              # the ledger: dropped humans + counted AMD false positives
    amd_false_positives: int
    human_talk_seconds: float   # within the shift
    busy_seconds: float         # talk (any) + wrap-up within the shift
    agents: int
    shift_seconds: float
    idle_agent_seconds: float = 0.0   # ready agents x seconds within the shift
    idle_uncovered_seconds: float = 0.0  # the part with no live answer on its way for them

    @property
    def live_answers(self) -> int:
        """Humans connected + abandoned."""
        return self.humans_connected + self.abandoned

    @property
    def abandon_rate(self) -> float:
        """Abandoned / live answers (0 with no live answer)."""
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def utilization(self) -> float:
        """Talk seconds with humans / (agents x shift seconds)."""
        return self.human_talk_seconds / (self.agents * self.shift_seconds)

    @property
    def realised_limit(self) -> float:
        """This day's ceiling: human talk / (all talk + wrap-up), all within the shift."""
        return self.human_talk_seconds / self.busy_seconds if self.busy_seconds else 0.0

    @property
    def dials_per_agent_hour(self) -> float:
        """Dials placed per agent-hour of the shift."""
        return self.dials / (self.agents * self.shift_seconds / 3600.0)

    @property
    def idle_share(self) -> float:
        """Share of agent time spent ready (waiting for a call)."""
        return self.idle_agent_seconds / (self.agents * self.shift_seconds)

    @property
    def idle_uncovered_share(self) -> float:
        """Share of agent time ready with no live answer on its way for them.

        At each instant ``min(ready, live answers pending)`` ready agents have a call
        already placed that will ask for an agent (they wait for its ring and AMD: the
        timing); the other ready agents wait because too few dials were placed.
        """
        uncovered = self.idle_uncovered_seconds
        return uncovered / (self.agents * self.shift_seconds)


class _Uniforms:
    """Batched draws from one generator: numpy per call is slow, per 4096 it is not."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(4096).tolist()
            self._i = 0
        value = self._buf[self._i]
        self._i += 1
        return value

    def peek(self, k: int) -> float:
        """The value ``next()`` would return after ``k`` more draws, without drawing."""
        while self._i + k >= len(self._buf):
            # same batches in the same order: the stream is unchanged by peeking
            self._buf = self._buf[self._i:] + self._rng.random(4096).tolist()
            self._i = 0
        return self._buf[self._i + k]


class OracleDialer:
    """NOT A PACER: an upper bound for the benchmark, usable only inside the simulator.

    It sees what no dialer can: the outcome and ring time of every dial not yet placed (the
    simulator's own random streams, read ahead without drawing) and when every running
    call and wrap-up will end. Each tick it places the next dials of the lead stream, in
    order, as long as each one that will ask for an agent finds one freed within the 2 s
    rule (after the agents already promised to calls on their way); dials that will not
    ask for an agent go out at once, within the same ratio and ringing caps as the
    pacers. So it never abandons a call (beyond AMD false positives) and an agent waits
    only while the next live lead in line rings. Machines that AMD passes as humans are
    counted as taking an agent for the rest of the look-ahead (they talk 3-10 s).

    It satisfies the :class:`~callcenter.dialer.pacing.Pacer` protocol only so that the
    benchmark can run it beside the pacers; :meth:`dials_to_place` refuses to be called.
    """

    def __init__(self) -> None:
        self.placed = 0

    def configure(self, settings: PacingSettings) -> None:
        """Nothing to adopt: the simulator passes the caps to the oracle's plan."""

    def record_attempt(self, ring_seconds: float, outcome: str) -> None:
        """Nothing to learn: the oracle already knows."""

    def record_call(self, talk_seconds: float, wrap_seconds: float) -> None:
        """Nothing to learn: the oracle already knows."""

    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float]) -> int:
        """Refuse: the oracle needs the future, which only :func:`simulate_day` has."""
        raise RuntimeError("OracleDialer is a benchmark bound, not a pacer: it runs only "
                           "inside simulate_day")


class AgentOraclePacer(PredictivePacer):
    """NOT A PACER: the predictive pacer told exactly when each busy agent will be free.

    A bound for the benchmark: the dials stay uncertain (it models them as the predictive
    pacer does), the agents do not (the simulator sets :attr:`free_at`, the end of each
    running call's wrap-up, before every tick). The gap between it and the predictive
    pacer is what forecasting talk and wrap-up times costs; the gap between it and
    :class:`OracleDialer`, what not knowing the dials' outcomes costs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.free_at: list[float] = []
        self.now = 0.0

    def _supply(self, agents_ready: int, agents_talking: Sequence[float],
                agents_wrapping: Sequence[float],
                horizons: npt.NDArray[np.float64]
                ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        free = np.sort(np.asarray(self.free_at, dtype=np.float64))
        freed = np.searchsorted(free, self.now + horizons, side="right")
        return agents_ready + freed.astype(np.float64), np.zeros(horizons.size)


class DialOraclePacer(PredictivePacer):
    """NOT A PACER: the predictive pacer told which dials in flight will ask for an agent.

    A bound for the benchmark: the simulator sets :attr:`live_at`, the time each call
    already placed will ask for an agent (the HUMAN verdict), before every tick; new dials
    and the agents stay uncertain, modelled as the predictive pacer does. The gap between
    it and the predictive pacer is what not knowing the outcome of the calls already
    ringing costs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live_at: list[float] = []
        self.now = 0.0

    def _demand(self, dials_ringing: Sequence[float], dials_answered: Sequence[float] | None,
                horizons: npt.NDArray[np.float64]
                ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        live = np.sort(np.asarray(self.live_at, dtype=np.float64))
        asked = np.searchsorted(live, self.now + horizons, side="right")
        return asked.astype(np.float64), np.zeros(horizons.size)


class _AnsweredAwarePacer(Protocol):
    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float], *,
                       dials_answered: Sequence[float] | None = None) -> int: ...


def _accepts_dials_answered(pacer: Pacer) -> bool:
    """Whether the pacer's ``dials_to_place`` takes the optional ``dials_answered``."""
    try:
        params = inspect.signature(pacer.dials_to_place).parameters
    except (TypeError, ValueError):
        return False
    param = params.get("dials_answered")
    return param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY


_TICK, _RESOLVE, _DEADLINE, _TALK_END, _WRAP_END = range(5)


def simulate_day(workload: Workload, pacer: Pacer, seed: int | Sequence[int]) -> DayResult:
    """Run one campaign day of ``workload`` with ``pacer``; deterministic for ``seed``."""
    streams = np.random.SeedSequence(seed).spawn(3)
    dial_u = _Uniforms(np.random.default_rng(streams[0]))
    talk_rng = np.random.default_rng(streams[1])
    wrap_rng = np.random.default_rng(streams[2])
    settings = workload.settings
    pacer.configure(settings)
    ring_timeout = settings.ring_timeout
    end = workload.shift_seconds
    n_agents = workload.agents

    sigma2 = math.log1p((workload.talk_sd / workload.talk_mean) ** 2)
    talks = iter(talk_rng.lognormal(math.log(workload.talk_mean) - sigma2 / 2,
                                    math.sqrt(sigma2), 200_000).tolist())
    if workload.wrap_distribution == "fixed":
        wraps: Iterator[float] = iter([workload.wrap_mean] * 200_000)
    else:
        wraps = iter(wrap_rng.exponential(workload.wrap_mean, 200_000).tolist()
                     if workload.wrap_mean > 0 else [0.0] * 200_000)
    r_sigma2 = math.log1p((workload.answer_ring_sd / workload.answer_ring_mean) ** 2)
    r_mu, r_sigma = math.log(workload.answer_ring_mean) - r_sigma2 / 2, math.sqrt(r_sigma2)
    ring_z = (np.random.default_rng(streams[0].spawn(1)[0])
              .standard_normal(400_000).tolist())
    zi = 0
    schedule = [(h * 3600.0, m) for h, m in workload.answer_schedule]

    events: list[tuple[float, int, int, int]] = []
    seq = 0
    ready: list[int] = list(range(n_agents))
    talk_start: dict[int, float] = {}
    wrap_start: dict[int, float] = {}
    call_talk: dict[int, tuple[float, float, bool]] = {}  # agent -> (talk, wrap, human)
    in_flight: dict[int, float] = {}   # dial id -> placed at
    # dial id -> (placed, verdict, kind) kind: 0 human, 1 machine-as-human
    waiting: dict[int, tuple[float, float, int]] = {}
    queue: deque[int] = deque()
    pending: dict[int, tuple[str, float, int]] = {}  # dial id -> (outcome, placed, kind)
    outcomes = {o: 0 for o in ("human", "machine", "busy", "noanswer", "failed", "abandoned")}
    dials = humans = abandoned = fps = 0
    human_talk = busy = 0.0
    live_pending = 0  # placed dials that will ask for an agent, not yet asked
    answered_at: dict[int, float] = {}  # dial id -> answer time, while in flight
    verdict_at: dict[int, float] = {}   # dial id -> HUMAN verdict time, until it comes
    oracle = pacer if isinstance(pacer, OracleDialer) else None
    split_answered = oracle is None and _accepts_dials_answered(pacer)
    idle = idle_uncovered = 0.0
    last_t = 0.0

    def push(t: float, kind: int, ident: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, ident))

    def answer_multiplier(t: float) -> float:
        m = 1.0
        for start, mult in schedule:
            if t >= start:
                m = mult
        return m

    def connect(dial: int, t: float, placed: float, verdict: float, kind: int) -> None:
        nonlocal humans
        agent = ready.pop()
        in_flight.pop(dial, None)
        answered_at.pop(dial, None)
        outcomes["human"] += 1
        pacer.record_attempt(verdict - placed, "human")
        if kind == 0:
            humans += 1
            talk = next(talks)
        else:
            lo, hi = MACHINE_AS_HUMAN_TALK_S
            talk = lo + (hi - lo) * dial_u.next()
        talk_start[agent] = t
        call_talk[agent] = (talk, next(wraps), kind == 0)
        push(t + talk, _TALK_END, agent)

    def draw_dial(t: float, uniform: Callable[[], float],
                  z: float) -> tuple[str, float, int, float]:
        """(outcome, resolves at, kind, answered at or inf) of a dial placed at ``t``."""
        m = answer_multiplier(t)
        p_h, p_m = workload.human * m, workload.machine * m
        u = uniform()
        answer = math.exp(r_mu + r_sigma * z)
        if u < p_h + p_m and answer < ring_timeout:
            u1, u2 = uniform(), uniform()
            if u < p_h:
                greeting = GREETING_S[0] + (GREETING_S[1] - GREETING_S[0]) * u1
                verdict = t + answer + greeting + HUMAN_VERDICT_AFTER_GREETING_S
                what = "machine-fp" if u2 < workload.amd_human_as_machine else "live"
                return what, verdict, 0, t + answer
            if u2 < workload.amd_machine_as_human:
                verdict = t + answer + GREETING_S[0] + HUMAN_VERDICT_AFTER_GREETING_S
                return "live", verdict, 1, t + answer
            lo, hi = MACHINE_VERDICT_S
            return "machine", t + answer + lo + (hi - lo) * u1, 1, t + answer
        if u < p_h + p_m + workload.busy:
            return "busy", t + BUSY_S[0] + (BUSY_S[1] - BUSY_S[0]) * uniform(), 2, math.inf
        if u < p_h + p_m + workload.busy + workload.failed:
            return ("failed", t + FAILED_S[0] + (FAILED_S[1] - FAILED_S[0]) * uniform(), 2,
                    math.inf)
        return "noanswer", t + ring_timeout, 2, math.inf

    def plan_oracle(t: float, oracle: OracleDialer) -> int:
        """How many of the next dials the oracle places now (see :class:`OracleDialer`)."""
        free = [t] * len(ready)
        free += [s + call_talk[a][0] + call_talk[a][1] for a, s in talk_start.items()]
        free += [s + call_talk[a][1] for a, s in wrap_start.items()]
        heapq.heapify(free)
        grace = CONNECT_WITHIN_S - HUMAN_VERDICT_AFTER_GREETING_S
        claims = [waiting[d][1] for d in queue if d in waiting]
        claims += sorted(verdict_at.values())
        for verdict in claims:  # calls already on their way take the first agents freed
            if free and free[0] <= verdict + grace:
                heapq.heappop(free)
        agents = n_agents
        upper = min(math.floor(settings.max_ratio * agents + 1e-9)
                    - len(in_flight) - len(talk_start),
                    math.floor(settings.max_ringing_per_agent * agents + 1e-9)
                    - len(in_flight))
        k_u = 0

        def peek_uniform() -> float:
            nonlocal k_u
            value = dial_u.peek(k_u)
            k_u += 1
            return value

        n = 0
        while n < upper:
            what, at, _, _ = draw_dial(t, peek_uniform, ring_z[zi + n])
            if what == "live":
                if not free or free[0] > at + grace:
                    break  # it would be dropped: wait until an agent frees in time
                heapq.heappop(free)
            n += 1
        oracle.placed += n
        return n

    t_tick = 0.0
    push(0.0, _TICK, 0)
    while events:
        t, _, kind, ident = heapq.heappop(events)
        t_clip = min(t, end)
        if t_clip > last_t:
            idle += len(ready) * (t_clip - last_t)
            idle_uncovered += max(0, len(ready) - live_pending) * (t_clip - last_t)
            last_t = t_clip
        if t >= end:
            break
        if kind == _TICK:
            ringing_ages = [t - placed for dial, placed in in_flight.items()
                            if answered_at.get(dial, math.inf) > t or not split_answered]
            if isinstance(pacer, AgentOraclePacer):
                pacer.now = t
                pacer.free_at = [s + call_talk[a][0] + call_talk[a][1]
                                 for a, s in talk_start.items()]
                pacer.free_at += [s + call_talk[a][1] for a, s in wrap_start.items()]
            if isinstance(pacer, DialOraclePacer):
                pacer.now = t
                pacer.live_at = [waiting[d][1] for d in queue if d in waiting]
                pacer.live_at += verdict_at.values()
            if oracle is not None:
                n = plan_oracle(t, oracle)
            elif split_answered:
                n = cast(_AnsweredAwarePacer, pacer).dials_to_place(
                    t, len(ready), [t - s for s in talk_start.values()],
                    [t - s for s in wrap_start.values()], ringing_ages,
                    dials_answered=[t - a for a in answered_at.values() if a <= t])
            else:
                n = pacer.dials_to_place(
                    t, len(ready), [t - s for s in talk_start.values()],
                    [t - s for s in wrap_start.values()], ringing_ages)
            if n < 0:
                raise ValueError(f"pacer returned {n} dials")
            for _ in range(n):
                dials += 1
                dial = dials
                in_flight[dial] = t
                what, at, who, answered = draw_dial(t, dial_u.next, ring_z[zi])
                zi += 1
                pending[dial] = (what, t, who)
                if what == "live":
                    live_pending += 1
                    verdict_at[dial] = at
                if answered < math.inf:
                    answered_at[dial] = answered
                push(at, _RESOLVE, dial)
            t_tick += 1.0
            push(t_tick, _TICK, 0)
        elif kind == _RESOLVE:
            what, placed, who = pending.pop(ident)
            if what == "live":
                live_pending -= 1
                verdict_at.pop(ident)
                if ready:
                    connect(ident, t, placed, t, who)
                else:
                    waiting[ident] = (placed, t, who)
                    queue.append(ident)
                    grace = CONNECT_WITHIN_S - HUMAN_VERDICT_AFTER_GREETING_S
                    push(t + grace, _DEADLINE, ident)
                continue
            in_flight.pop(ident)
            answered_at.pop(ident, None)
            if what == "machine-fp":
                fps += 1
                if workload.count_amd_false_positives:
                    abandoned += 1
                what = "machine"
            outcomes[what] += 1
            pacer.record_attempt(t - placed, what)
        elif kind == _DEADLINE:
            info = waiting.pop(ident, None)
            if info is not None:
                placed, verdict, who = info
                in_flight.pop(ident)
                answered_at.pop(ident, None)
                outcomes["abandoned"] += 1
                if who == 0:
                    abandoned += 1
                pacer.record_attempt(verdict - placed, "abandoned")
        elif kind == _TALK_END:
            start = talk_start.pop(ident)
            talk, wrap, human = call_talk[ident]
            if human:
                human_talk += talk
            busy += talk
            wrap_start[ident] = t
            push(t + wrap, _WRAP_END, ident)
        else:  # _WRAP_END
            start = wrap_start.pop(ident)
            talk, wrap, _ = call_talk.pop(ident)
            busy += wrap
            pacer.record_call(talk, wrap)
            ready.append(ident)
            while queue and ready:
                dial = queue.popleft()
                info = waiting.pop(dial, None)
                if info is not None:
                    connect(dial, t, info[0], info[1], info[2])
    # the shift ends: count the parts of calls, wrap-ups and waits inside it
    if end > last_t:
        idle += len(ready) * (end - last_t)
        idle_uncovered += max(0, len(ready) - live_pending) * (end - last_t)
    for agent, start in talk_start.items():
        _, _, human = call_talk[agent]
        if human:
            human_talk += end - start
        busy += end - start
    for start in wrap_start.values():
        busy += end - start
    return DayResult(dials=dials, outcomes=outcomes, in_flight_at_end=len(in_flight),
                     humans_connected=humans, abandoned=abandoned, amd_false_positives=fps,
                     human_talk_seconds=human_talk, busy_seconds=busy, agents=n_agents,
                     shift_seconds=end, idle_agent_seconds=idle,
                     idle_uncovered_seconds=idle_uncovered)


@dataclass(frozen=True)
class Summary:
    """Many seeded days of one workload with one pacer."""

    workload: str
    pacer: str
    days: int
    utilization: float             # mean over days
    physical_limit: float
    abandon_mean: float            # mean of the days' abandonment rates
    abandon_max: float
    days_within_limit: float       # share of days at or under 3% abandonment
    dials_per_agent_hour: float
    idle_share: float = 0.0            # mean share of agent time spent ready
    idle_uncovered_share: float = 0.0  # the part with no live answer on its way

    @property
    def share_of_limit(self) -> float:
        """Utilization as a share of the physical limit."""
        return self.utilization / self.physical_limit


def _one_day(job: tuple[str, str, int, int, PacingSettings | None]) -> DayResult:
    workload_name, pacer_name, seed, day, settings = job
    workload = WORKLOADS[workload_name]
    if settings is not None:
        workload = replace(workload, settings=settings)
    return simulate_day(workload, make_pacer(pacer_name),
                        (seed, zlib.crc32(workload_name.encode()), day))


def compare(workloads: Sequence[str], pacers: Sequence[str], days: int, seed: int,
            processes: int = 2, settings: PacingSettings | None = None,
            progress: Callable[[str], None] | None = None) -> list[Summary]:
    """Run ``days`` seeded days per workload per pacer; one :class:`Summary` each.

    Day ``d`` of a workload uses the same seed for every pacer. Results do not depend on
    ``processes``. ``settings`` overrides every workload's pacing settings.
    """
    for name in workloads:
        if name not in WORKLOADS:
            raise ValueError(f"workload: unknown {name!r}; expected one of "
                             f"{', '.join(WORKLOADS)}")
    for name in pacers:
        make_pacer(name)
    if days < 1:
        raise ValueError(f"days: expected at least 1, got {days}")
    jobs = [(w, p, seed, d, settings) for w in workloads for p in pacers for d in range(days)]
    if processes > 1:
        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with ctx.Pool(processes) as pool:
            results = pool.map(_one_day, jobs, chunksize=1)
    else:
        results = [_one_day(job) for job in jobs]
    out: list[Summary] = []
    for i in range(0, len(jobs), days):
        w, p = jobs[i][0], jobs[i][1]
        day_results = results[i:i + days]
        rates = np.array([r.abandon_rate for r in day_results])
        out.append(Summary(
            workload=w, pacer=p, days=days,
            utilization=float(np.mean([r.utilization for r in day_results])),
            physical_limit=WORKLOADS[w].physical_limit,
            abandon_mean=float(rates.mean()), abandon_max=float(rates.max()),
            days_within_limit=float(np.mean(rates <= ABANDON_LIMIT + 1e-12)),
            dials_per_agent_hour=float(np.mean([r.dials_per_agent_hour
                                                for r in day_results])),
            idle_share=float(np.mean([r.idle_share for r in day_results])),
            idle_uncovered_share=float(np.mean([r.idle_uncovered_share
                                                for r in day_results]))))
        if progress is not None:
            progress(f"{w} / {p}: done")
    return out


def format_table(summaries: Sequence[Summary]) -> str:
    """The markdown table: one row per workload and pacer."""
    lines = [("| workload | pacer | utilization | % of limit (limit) | abandonment mean (max) "
             "| days <= 3% | dials / agent-h | ready: all (no call coming) |"),
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        lines.append(
            f"| {s.workload} | "
            f"{s.pacer + ' (bound, not a pacer)' if s.pacer in BOUNDS else s.pacer} | "
            f"{100 * s.utilization:.1f}% | "
            f"{100 * s.share_of_limit:.1f}% ({100 * s.physical_limit:.1f}%) | "
            f"{100 * s.abandon_mean:.2f}% ({100 * s.abandon_max:.2f}%) | "
            f"{100 * s.days_within_limit:.0f}% | {s.dials_per_agent_hour:.1f} | "
            f"{100 * s.idle_share:.1f}% ({100 * s.idle_uncovered_share:.1f}%) |")
    return "\n".join(lines)


def check_goals(summaries: Sequence[Summary]) -> list[tuple[str, bool]]:
    """The acceptance goals of issue 5 that these summaries can judge, each with pass/fail.

    Per workload with a ``predictive`` row: at or under 3% on at least 95% of days; on the
    reference, at least 95% of the physical limit; against each VICIdial row, a higher
    utilization at no higher mean abandonment (``[literal]``: every VICIdial mode, even one
    abandoning far over 3%); and, separately, against the VICIdial modes whose mean
    abandonment is at or under 3% (``[legal]``), when there is one. :func:`baseline_notes`
    says where no VICIdial mode is legal.
    """
    by = {(s.workload, s.pacer): s for s in summaries}
    goals: list[tuple[str, bool]] = []
    for (w, p), s in by.items():
        if p != "predictive":
            continue
        goals.append(((f"{w}: predictive <= 3% abandonment on >= 95% of days "
                      f"({100 * s.days_within_limit:.0f}%)"), s.days_within_limit >= 0.95))
        if w == "reference":
            goals.append(((f"{w}: predictive >= 95% of the physical limit "
                          f"({100 * s.share_of_limit:.1f}%)"), s.share_of_limit >= 0.95))
        for (w2, p2), base in by.items():
            if w2 == w and p2.startswith("vicidial"):
                goals.append((
                    (f"{w}: [literal] predictive utilization {100 * s.utilization:.1f}% > {p2} "
                    f"{100 * base.utilization:.1f}% at abandonment {100 * s.abandon_mean:.2f}%"
                    f" <= {100 * base.abandon_mean:.2f}%"),
                    s.utilization > base.utilization
                    and s.abandon_mean <= base.abandon_mean))
        legal = [b for (w2, p2), b in by.items() if w2 == w and p2.startswith("vicidial")
                 and b.abandon_mean <= ABANDON_LIMIT + 1e-12]
        if legal:
            best = max(legal, key=lambda b: b.utilization)
            goals.append((
                (f"{w}: [legal] predictive utilization {100 * s.utilization:.1f}% > best "
                 f"VICIdial mode at <= 3% mean abandonment, {best.pacer} "
                 f"{100 * best.utilization:.1f}% (abandonment {100 * s.abandon_mean:.2f}% vs "
                 f"{100 * best.abandon_mean:.2f}%)"),
                s.utilization > best.utilization and s.abandon_mean <= best.abandon_mean))
    return goals


def baseline_notes(summaries: Sequence[Summary]) -> list[str]:
    """Workloads where no VICIdial mode holds 3% mean abandonment (no legal baseline)."""
    by = {(s.workload, s.pacer): s for s in summaries}
    notes: list[str] = []
    for w in dict.fromkeys(s.workload for s in summaries):
        if (w, "predictive") not in by:
            continue
        vici = [s for s in summaries if s.workload == w and s.pacer.startswith("vicidial")]
        if vici and all(s.abandon_mean > ABANDON_LIMIT + 1e-12 for s in vici):
            rates = ", ".join(f"{s.pacer} {100 * s.abandon_mean:.2f}%" for s in vici)
            notes.append(f"{w}: no VICIdial mode at or under 3% mean abandonment ({rates}); "
                         "only the [literal] comparison applies")
    return notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``callcenter dialer simulate``."""
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS),
                        help="workload to run (repeatable; default: all but smoke)")
    parser.add_argument("--pacer", action="append",
                        help="pacer to run (repeatable): progressive, fixed:R, vicidial-hard "
                        "(= vicidial), vicidial-average, vicidial-tapered, predictive; bounds "
                        "that read the simulated future, not pacers: oracle, oracle-agents, "
                        "oracle-dials (default: "
                        f"{', '.join(DEFAULT_PACERS)})")
    parser.add_argument("--days", type=int, default=20, help="seeded days per workload")
    parser.add_argument("--seed", type=int, default=1, help="base seed")
    parser.add_argument("--processes", type=int, default=2, help="worker processes")
    parser.add_argument("--goals", action="store_true",
                        help="also print the issue's goals with pass/fail")


def run(args: argparse.Namespace) -> int:
    """Run the comparison and print the table (and the goals with ``--goals``)."""
    workloads = args.workload or list(DEFAULT_WORKLOADS)
    pacers = args.pacer or list(DEFAULT_PACERS)
    try:
        for name in pacers:
            make_pacer(name)
        if args.days < 1:
            raise ValueError(f"--days: expected at least 1, got {args.days}")
    except ValueError as exc:
        print(f"callcenter dialer simulate: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    summaries = compare(workloads, pacers, args.days, args.seed, max(1, args.processes))
    elapsed = time.perf_counter() - t0
    print(f"{args.days} seeded days per workload and pacer, seed {args.seed}, "
          f"{elapsed:.0f} s")
    print()
    print(format_table(summaries))
    if args.goals:
        print()
        print("Goals of issue 5. [literal]: against every VICIdial mode, a higher utilization "
              "at no higher mean abandonment, as the issue words it; [legal]: against the "
              "best VICIdial mode whose mean abandonment is at or under 3%.")
        for note in baseline_notes(summaries):
            print(f"NOTE  {note}")
        failed = 0
        for text, ok in check_goals(summaries):
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
            failed += not ok
        return 1 if failed else 0
    return 0
