"""Pacing of the outbound dialer: how many calls to place now, sans-IO.

This module owns the :class:`Pacer` contract and its four implementations. A pacer is told
what happened (:meth:`Pacer.record_attempt` when a dial ends or reaches an agent,
:meth:`Pacer.record_call` when an agent finishes a call and its wrap-up) and is asked,
about once a second, how many dials to place now (:meth:`Pacer.dials_to_place`). It has
no clock of its own: ``now`` is passed in, in seconds (any origin; differences matter,
except for :class:`VicidialAdaptivePacer`, which maps it to a time of day).

Terms used by every pacer:

- ``agents_ready``: agents logged in, idle and not yet reserved for a call.
- ``agents_talking`` / ``agents_wrapping``: seconds into each current call / wrap-up.
- ``dials_ringing``: seconds since each in-flight dial was placed, for every placed call
  not yet connected to an agent nor ended: ringing, or answered and still in AMD or
  waiting for an agent (VICIdial's "in flight"). The simulator and the dialer service
  both follow this convention. :meth:`PredictivePacer.dials_to_place` also takes an
  optional keyword ``dials_answered`` (seconds since the answer of each call answered and
  not yet with an agent); when it is given, those calls are *not* also in
  ``dials_ringing``. The :class:`Pacer` protocol keeps the five positional parameters, so
  every pacer conforms and every caller may leave the keyword out.
- a *line* is a ringing dial or a call with an agent; the *dial ratio* is lines per agent
  (1.0 = one line per agent, progressive dialing).
- ``ring_seconds`` in :meth:`Pacer.record_attempt` is the time from the dial to the moment
  it ended or asked for an agent (the AMD verdict for answered calls).

Nothing here imports Twisted or SQLAlchemy; numpy only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "OUTCOMES",
    "FixedRatioPacer",
    "Pacer",
    "PacingSettings",
    "PredictivePacer",
    "ProgressivePacer",
    "VicidialAdaptivePacer",
]

OUTCOMES: Final = ("human", "machine", "busy", "noanswer", "failed", "abandoned")
"""What a dial can end in. ``abandoned`` is a live (human) answer that found no agent in
time (it heard the safe-harbor message)."""

_LIVE: Final = frozenset(("human", "abandoned"))
_SAFE_HARBOR_RING_S: Final = 15.0
_MAX_RING_TIMEOUT_S: Final = 120.0

FloatArray = npt.NDArray[np.float64]


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")


def _check_seconds(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name}: expected a finite number of seconds >= 0, got {value!r}")


@dataclass(frozen=True)
class PacingSettings:
    """Operator settings shared by every pacer (``config/dialer.yaml``).

    ``target_abandon``: the abandonment rate to stay under (abandoned / live answers).
    ``min_ratio`` / ``max_ratio``: bounds on lines per agent. ``max_ringing_per_agent``:
    bound on ringing dials per logged-in agent. ``ring_timeout``: seconds an unanswered dial
    rings before it is given up (at least 15 s: the safe-harbor rule).
    """

    target_abandon: float = 0.03
    min_ratio: float = 1.0
    max_ratio: float = 3.0
    max_ringing_per_agent: float = 3.0
    ring_timeout: float = 25.0

    def __post_init__(self) -> None:
        def bad(field: str, why: str, value: float) -> ValueError:
            return ValueError(f"PacingSettings.{field}: {why}, got {value!r}")

        for field in ("target_abandon", "min_ratio", "max_ratio", "max_ringing_per_agent",
                      "ring_timeout"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(field, "expected a number", value)
            if not math.isfinite(value):
                raise bad(field, "expected a finite number", value)
        if not 0.0 < self.target_abandon < 1.0:
            raise bad("target_abandon", "expected a fraction in (0, 1)", self.target_abandon)
        if not 1.0 <= self.max_ratio <= 20.0:
            raise bad("max_ratio", "expected lines per agent in [1, 20]", self.max_ratio)
        if not 0.0 <= self.min_ratio <= self.max_ratio:
            raise bad("min_ratio", f"expected lines per agent in [0, max_ratio={self.max_ratio}]",
                      self.min_ratio)
        if not 0.0 < self.max_ringing_per_agent <= 20.0:
            raise bad("max_ringing_per_agent", "expected a number in (0, 20]",
                      self.max_ringing_per_agent)
        if self.ring_timeout < _SAFE_HARBOR_RING_S:
            raise bad("ring_timeout", "must be at least 15 s (safe harbor: unanswered calls "
                      "ring at least 15 s)", self.ring_timeout)
        if self.ring_timeout > _MAX_RING_TIMEOUT_S:
            raise bad("ring_timeout", f"expected at most {_MAX_RING_TIMEOUT_S:g} s",
                      self.ring_timeout)


class Pacer(Protocol):
    """What the dialer service (and the simulator) drive: learn, then say how many to dial."""

    def configure(self, settings: PacingSettings) -> None:
        """Adopt new settings (hot reload) and keep what was learned."""

    def record_attempt(self, ring_seconds: float, outcome: str) -> None:
        """One dial ended or reached an agent; ``outcome`` is one of :data:`OUTCOMES`."""

    def record_call(self, talk_seconds: float, wrap_seconds: float) -> None:
        """An agent finished a call and its wrap-up."""

    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float]) -> int:
        """How many dials to place now (>= 0)."""


def _check_state(agents_ready: int, agents_talking: Sequence[float],
                 agents_wrapping: Sequence[float], dials_ringing: Sequence[float]) -> None:
    if agents_ready < 0:
        raise ValueError(f"agents_ready: expected >= 0, got {agents_ready!r}")
    del agents_talking, agents_wrapping, dials_ringing


def _caps(settings: PacingSettings, ready: int, talking: int, wrapping: int,
          ringing: int) -> tuple[int, int]:
    """(lower, upper) bounds on dials to place now from the ratio and ringing limits.

    Lines (ringing + talking) stay within ``max_ratio`` x logged-in agents and ringing dials
    within ``max_ringing_per_agent`` x logged-in agents; at least ``min_ratio`` x (ready +
    talking) lines are kept (1.0: never fewer than progressive dialing).
    """
    agents = ready + talking + wrapping
    lines = ringing + talking
    upper = min(math.floor(settings.max_ratio * agents + 1e-9) - lines,
                math.floor(settings.max_ringing_per_agent * agents + 1e-9) - ringing)
    upper = max(upper, 0)
    lower = math.ceil(settings.min_ratio * (ready + talking) - 1e-9) - lines
    return min(max(lower, 0), upper), upper


class _RulePacer:
    """A pacer that follows a fixed rule: it learns nothing, but checks what it is told."""

    def __init__(self, settings: PacingSettings | None = None) -> None:
        self.settings = settings or PacingSettings()

    def configure(self, settings: PacingSettings) -> None:
        """Adopt new settings (the caps; the rule itself stays)."""
        self.settings = settings

    def record_attempt(self, ring_seconds: float, outcome: str) -> None:
        """Validate and ignore: a rule learns nothing."""
        _check_seconds("ring_seconds", ring_seconds)
        _check_outcome(outcome)

    def record_call(self, talk_seconds: float, wrap_seconds: float) -> None:
        """Validate and ignore."""
        _check_seconds("talk_seconds", talk_seconds)
        _check_seconds("wrap_seconds", wrap_seconds)


class ProgressivePacer(_RulePacer):
    """One dial per ready agent not already covered by a ringing dial (dial ratio 1:1)."""

    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float]) -> int:
        """``agents_ready - ringing``, never below 0 nor above the ringing cap."""
        _check_state(agents_ready, agents_talking, agents_wrapping, dials_ringing)
        agents = agents_ready + len(agents_talking) + len(agents_wrapping)
        cap = math.floor(self.settings.max_ringing_per_agent * agents + 1e-9) - len(dials_ringing)
        return max(0, min(agents_ready - len(dials_ringing), cap))


class FixedRatioPacer(_RulePacer):
    """``ratio`` lines per available agent: place ``floor(ratio x agents) - in flight``.

    ``agents`` are the ready and talking agents (agents in wrap-up are paused, as in
    VICIdial's RATIO dial method); in flight are the ringing dials and the calls with an
    agent. Bounded by the settings' ``max_ratio`` and ``max_ringing_per_agent``; a new
    configuration changes those caps and keeps the ratio.
    """

    def __init__(self, ratio: float, settings: PacingSettings | None = None) -> None:
        if isinstance(ratio, bool) or not (isinstance(ratio, (int, float))
                                           and math.isfinite(ratio) and ratio >= 1.0):
            raise ValueError(f"ratio: expected a number >= 1.0, got {ratio!r}")
        super().__init__(settings)
        self.ratio = float(ratio)

    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float]) -> int:
        """``floor(ratio x (ready + talking)) - (ringing + talking)``, within the caps."""
        _check_state(agents_ready, agents_talking, agents_wrapping, dials_ringing)
        talking, ringing = len(agents_talking), len(dials_ringing)
        goal = math.floor(self.ratio * (agents_ready + talking) + 1e-9) - ringing - talking
        _, upper = _caps(self.settings, agents_ready, talking, len(agents_wrapping), ringing)
        return max(0, min(goal, upper))


DropMode = Literal["HARD_LIMIT", "AVERAGE", "TAPERED"]
_DROP_MODES: Final = ("HARD_LIMIT", "AVERAGE", "TAPERED")


class VicidialAdaptivePacer:
    """VICIdial's adaptive dial level (``AST_VDadapt.pl`` + ``AST_VDauto_dial.pl``).

    Placing, every 2.5 s of ``now``: ``goal = round(level x agents)`` lines, with ``agents``
    the agents not paused (ready or talking; agents in wrap-up sit in VICIdial's
    disposition screen, which is paused), and place ``goal - lines`` (lines = ringing dials
    and calls with an agent). Adapting ``level``: every 1 s sample ready agents, logged-in
    agents and waiting calls into 15-sample moving averages; every 15 s
    ``m = (avg_ready - avg_waiting + diff_target) / avg_total``, weighted by the intensity,
    ``level = clamp(level x (1 + m), 1, max_ratio)``; then the drop rules: more than 20
    calls in the last minute and over 50% dropped halves the level; otherwise more than 50
    calls today and today's drop % (drops / (answers + drops), recounted every 60 s,
    cumulative since midnight) over the target applies the drop mode (``HARD_LIMIT``:
    level 1; ``AVERAGE``: halve; ``TAPERED``: ``x min(1, (latest_hhmm - HHMM) / 1000)``,
    1 after the latest time).

    The contract does not report answered calls waiting for an agent; a dropped call
    waited its last 2 s, so each abandoned outcome counts as a waiting call for the 2 s
    before it was recorded.

    ``clock_offset``: seconds to add to ``now`` for seconds since local midnight (the
    drop count restarts at midnight, TAPERED reads the time of day).
    """

    SAMPLES: Final = 15
    ADAPT_EVERY_S: Final = 15.0
    PLACE_EVERY_S: Final = 2.5
    RECOUNT_EVERY_S: Final = 60.0

    def __init__(self, settings: PacingSettings | None = None, *,
                 mode: DropMode = "HARD_LIMIT", intensity: float = 0.0,
                 diff_target: float = 0.0, latest_hhmm: int = 2100,
                 clock_offset: float = 0.0) -> None:
        if mode not in _DROP_MODES:
            raise ValueError(f"mode: expected one of {', '.join(_DROP_MODES)}, got {mode!r}")
        if not -100.0 <= intensity <= 100.0:
            raise ValueError(f"intensity: expected a number in [-100, 100], got {intensity!r}")
        if not 0 <= latest_hhmm <= 2400:
            raise ValueError(f"latest_hhmm: expected HHMM in [0, 2400], got {latest_hhmm!r}")
        self.settings = settings or PacingSettings()
        self.mode: DropMode = mode
        self.intensity = intensity
        self.diff_target = diff_target
        self.latest_hhmm = latest_hhmm
        self.clock_offset = clock_offset
        self.level = 1.0
        self._now: float | None = None
        self._ready: deque[float] = deque(maxlen=self.SAMPLES)
        self._total: deque[float] = deque(maxlen=self.SAMPLES)
        self._waiting: deque[float] = deque(maxlen=self.SAMPLES)
        self._next_sample = -math.inf
        self._next_adapt = -math.inf
        self._next_place = -math.inf
        self._next_recount = -math.inf
        self._day: int | None = None
        self._calls_today = 0
        self._answers_today = 0
        self._drops_today = 0
        self._drop_pct_today = 0.0
        self._calls_recent: deque[float] = deque()   # times of attempts, last minute
        self._drops_recent: deque[float] = deque()   # times of drops, last minute

    def configure(self, settings: PacingSettings) -> None:
        """Adopt new settings (drop target and maximum level); the level is kept."""
        self.settings = settings
        self.level = min(self.level, settings.max_ratio)

    def record_attempt(self, ring_seconds: float, outcome: str) -> None:
        """Count the attempt for today's and the last minute's drop statistics."""
        _check_seconds("ring_seconds", ring_seconds)
        _check_outcome(outcome)
        stamp = self._now if self._now is not None else 0.0
        self._calls_today += 1
        self._calls_recent.append(stamp)
        if outcome in _LIVE:
            self._answers_today += 1
        if outcome == "abandoned":
            self._drops_today += 1
            self._drops_recent.append(stamp)

    def record_call(self, talk_seconds: float, wrap_seconds: float) -> None:
        """Validate and ignore: VICIdial's level does not use call lengths."""
        _check_seconds("talk_seconds", talk_seconds)
        _check_seconds("wrap_seconds", wrap_seconds)

    def _hhmm(self, now: float) -> int:
        local = (now + self.clock_offset) % 86400.0
        return int(local // 3600) * 100 + int(local % 3600 // 60)

    def _roll_day(self, now: float) -> None:
        day = int((now + self.clock_offset) // 86400.0)
        if day != self._day:
            first, self._day = self._day is None, day
            if first:  # attempts recorded before the first tick count for this day
                return
            self._calls_today = self._answers_today = self._drops_today = 0
            self._drop_pct_today = 0.0

    def _adapt(self, now: float) -> None:
        avg_total = sum(self._total) / self.SAMPLES
        differential = (sum(self._ready) - sum(self._waiting)) / self.SAMPLES
        m = (differential + self.diff_target) / avg_total if avg_total > 0 else 0.0
        i = self.intensity / 100.0
        m = m * abs(i - 1.0) if m < 0 else m * (i + 1.0)
        level = min(max(self.level * (1.0 + m), 1.0), self.settings.max_ratio)
        while self._calls_recent and self._calls_recent[0] <= now - 60.0:
            self._calls_recent.popleft()
        while self._drops_recent and self._drops_recent[0] <= now - 60.0:
            self._drops_recent.popleft()
        calls_one = len(self._calls_recent)
        if calls_one > 20 and len(self._drops_recent) > 0.5 * calls_one:
            level /= 2.0
        elif (self._calls_today > 50
              and self._drop_pct_today > 100.0 * self.settings.target_abandon):
            if self.mode == "HARD_LIMIT":
                level = 1.0
            elif self.mode == "AVERAGE":
                level /= 2.0
            else:
                hours_left = self.latest_hhmm - self._hhmm(now)
                level = 1.0 if hours_left < 0 else level * min(1.0, hours_left / 1000.0)
        self.level = min(max(level, 1.0), self.settings.max_ratio)

    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float]) -> int:
        """Sample, adapt and place on VICIdial's own schedule; 0 between placements."""
        _check_state(agents_ready, agents_talking, agents_wrapping, dials_ringing)
        self._now = now
        self._roll_day(now)
        talking, wrapping, ringing = len(agents_talking), len(agents_wrapping), len(dials_ringing)
        if now >= self._next_sample:
            self._next_sample = now + 1.0
            while self._drops_recent and self._drops_recent[0] <= now - 60.0:
                self._drops_recent.popleft()
            waiting = float(sum(1 for t in self._drops_recent if t > now - 2.0))
            total = float(agents_ready + talking + wrapping)
            if not self._total:  # first sample fills the window, as VICIdial does
                for _ in range(self.SAMPLES):
                    self._ready.append(float(agents_ready))
                    self._total.append(total)
                    self._waiting.append(waiting)
            self._ready.append(float(agents_ready))
            self._total.append(total)
            self._waiting.append(waiting)
        if now >= self._next_recount:
            self._next_recount = now + self.RECOUNT_EVERY_S
            self._drop_pct_today = (100.0 * self._drops_today / self._answers_today
                                    if self._answers_today else 0.0)
        if now >= self._next_adapt:
            if self._next_adapt > -math.inf:
                self._adapt(now)
            self._next_adapt = now + self.ADAPT_EVERY_S
        if now < self._next_place:
            return 0
        self._next_place = now + self.PLACE_EVERY_S
        goal = round(self.level * (agents_ready + talking))
        agents = agents_ready + talking + wrapping
        cap = math.floor(self.settings.max_ringing_per_agent * agents + 1e-9) - ringing
        return max(0, min(goal - ringing - talking, cap))


class _Samples:
    """The last ``capacity`` observations of a duration, seeded with prior quantiles."""

    def __init__(self, capacity: int, prior: FloatArray) -> None:
        self.capacity = capacity
        self.values: list[float] = [float(v) for v in prior]
        self._next = len(self.values) % capacity
        self._sorted: FloatArray = np.sort(np.asarray(self.values, dtype=np.float64))
        self._dirty = 0
        self._quantiles: FloatArray | None = None

    def add(self, value: float) -> None:
        if len(self.values) < self.capacity:
            self.values.append(value)
        else:
            self.values[self._next] = value
            self._next = (self._next + 1) % self.capacity
        self._dirty += 1

    def sorted(self) -> FloatArray:
        if self._dirty:
            self._sorted = np.sort(np.asarray(self.values, dtype=np.float64))
            self._dirty = 0
            self._quantiles = None
        return self._sorted

    def quantiles(self, k: int = 8) -> FloatArray:
        """``k`` evenly spaced quantiles (midpoints), cached until the next sample."""
        if self._dirty or self._quantiles is None:
            s = self.sorted()
            self._quantiles = s[((np.arange(k) + 0.5) * s.size / k).astype(np.intp)]
        return self._quantiles

    def survival(self, x: FloatArray) -> FloatArray:
        """P(duration > x), smoothed so it is never exactly 0 or 1."""
        s = self.sorted()
        n = s.size
        above = n - np.searchsorted(s, x, side="right")
        return np.asarray((above + 0.5) / (n + 1.0), dtype=np.float64)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


class PredictivePacer:
    """Model-based pacing that keeps the share of answers finding no agent under target.

    Learned online: the share of dials that ask for an agent (human answers, exponentially
    weighted over about ``HALF_LIFE_ATTEMPTS`` attempts, so a change of the answer rate is
    tracked within minutes), the time from dial to that moment (a decayed histogram, one
    for answers and one for the rest), and the last talk and wrap-up times. Priors make it
    work from the first dial.

    Each tick, for look-ahead horizons ``h`` (the median and the 90th percentile of the
    time from dial to answer):

    - supply ``S = ready + sum Bernoulli(q_i) + sum Bernoulli(u_j)``, with ``q_i = P(call
      and wrap-up end within h | talked a_i)`` and ``u_j = P(wrap-up ends within h |
      wrapped w_j)``;
    - demand ``D = sum Bernoulli(d_k) + Binomial(n, p F(h))`` from the ringing dials (``d_k
      = P(answer within h | still ringing at r_k)``) and ``n`` new dials;
    - the n-th new dial, if answered, finds no agent when ``D_old + B_{n-1} >= S``; that
      probability comes from the exact means and variances of the sums (normal with a
      continuity correction), so few agents, with a wide spread, get a wide margin.

    ``n`` is the largest count whose last dial finds no agent with probability <= ``tau``
    at every horizon, within the ratio and ringing caps (never fewer than progressive).
    ``tau = target x exp(g)``: ``g`` integrates (set point - outcome) over live answers,
    so the realised abandonment converges to a set point below the target; the set point
    leaves a margin for sampling noise that shrinks with the live answers seen so far
    (:meth:`set_point`).

    Agents count as supply when freed by ``h + CONNECT_GRACE_S`` (an answered person may
    wait 1.2 s after the HUMAN verdict: the 2 s rule less the verdict's 0.8 s).

    Inputs follow the module's conventions: ``agents_ready`` counts ready agents only;
    ``dials_ringing`` holds the age of every placed call not yet with an agent (answered
    calls in AMD or waiting for an agent included), unless the caller passes
    ``dials_answered``: then the answered calls come apart, each counted as a live answer
    due at once with the learned share of answered calls that are people (live / (live +
    machine outcomes), decayed like the answer share), and a ringing dial, known not yet
    answered, is at least ``AMD_HUMAN_VERDICT_S`` from asking for an agent.
    """

    HALF_LIFE_ATTEMPTS: Final = 150.0
    PRIOR_ATTEMPTS: Final = 30.0
    PRIOR_ANSWER_SHARE: Final = 0.25
    BIN_S: Final = 0.5
    FEEDBACK_GAIN: Final = 0.002
    LEDGER_HOURS: Final = 8.0
    RATE_TIME_CONSTANT_S: Final = 1800.0
    MARGIN_Z: Final = 1.5
    G_MIN: Final = -4.0
    G_MAX: Final = 3.0
    HORIZON_QUANTILES: Final = (0.5, 0.9)
    AMD_HUMAN_VERDICT_S: Final = 2.3   # app_amd: greeting up to 1.5 s + 0.8 s of silence
    CONNECT_GRACE_S: Final = 1.2       # 2 s rule after the greeting, less the 0.8 s verdict

    def __init__(self, target_abandon: float = 0.03) -> None:
        self.settings = PacingSettings(target_abandon=target_abandon)
        nbins = math.ceil((_MAX_RING_TIMEOUT_S + 10.0) / self.BIN_S)
        self._edges: FloatArray = np.arange(nbins + 1, dtype=np.float64) * self.BIN_S
        self._decay = 0.5 ** (1.0 / self.HALF_LIFE_ATTEMPTS)
        self._hist_live: FloatArray = np.zeros(nbins)
        self._hist_other: FloatArray = np.zeros(nbins)
        self._seed_ring_priors()
        self._cdf_live: FloatArray = np.zeros(nbins + 1)
        self._cdf_other: FloatArray = np.zeros(nbins + 1)
        self._horizon_values: FloatArray = np.zeros(len(self.HORIZON_QUANTILES))
        self._horizon_cdf: FloatArray = np.zeros(len(self.HORIZON_QUANTILES))
        self._answer_share = self.PRIOR_ANSWER_SHARE
        self._answered_live = self.PRIOR_ATTEMPTS * self.PRIOR_ANSWER_SHARE
        self._answered_other = self.PRIOR_ATTEMPTS * self.PRIOR_ANSWER_SHARE / 3.0
        self._ring_dirty = True
        probs = (np.arange(30) + 0.5) / 30
        talk_prior = np.exp(math.log(180.0) + 0.6 * _normal_quantiles(probs))
        wrap_prior = -20.0 * np.log1p(-probs)
        self._talk = _Samples(300, talk_prior)
        self._wrap = _Samples(300, wrap_prior)
        self.gain = 0.0
        self._binding = False
        self._rate_events = 0.0
        self._rate_time = 0.0
        self._live_seen = 0
        self._last_now: float | None = None

    def _seed_ring_priors(self) -> None:
        """Prior ring times: answers around 5-20 s; the rest quick (busy) or timing out."""
        centers = self._edges[:-1] + self.BIN_S / 2
        live = np.exp(-0.5 * ((centers - 11.0) / 4.0) ** 2)
        other = 0.25 * np.exp(-0.5 * ((centers - 3.0) / 1.0) ** 2) / 1.0
        other += 0.15 * np.exp(-0.5 * ((centers - 13.0) / 4.0) ** 2) / 4.0
        timeout = int(self.settings.ring_timeout / self.BIN_S)
        other_mass = other.sum()
        w_live = self.PRIOR_ATTEMPTS * self.PRIOR_ANSWER_SHARE
        w_other = self.PRIOR_ATTEMPTS - w_live
        self._hist_live = live / live.sum() * w_live
        self._hist_other = other / other_mass * w_other * 0.4
        self._hist_other[min(timeout, self._hist_other.size - 1)] += w_other * 0.6

    def configure(self, settings: PacingSettings) -> None:
        """Adopt new settings; learned distributions and feedback are kept."""
        self.settings = settings

    def record_attempt(self, ring_seconds: float, outcome: str) -> None:
        """Learn the answer share, the time to answer and (for live answers) the ledger."""
        _check_seconds("ring_seconds", ring_seconds)
        _check_outcome(outcome)
        b = min(int(ring_seconds / self.BIN_S), self._hist_live.size - 1)
        self._hist_live *= self._decay
        self._hist_other *= self._decay
        self._answered_live *= self._decay
        self._answered_other *= self._decay
        if outcome in _LIVE:
            self._answered_live += 1.0
        elif outcome == "machine":
            self._answered_other += 1.0
        if outcome in _LIVE:
            self._hist_live[b] += 1.0
            self._rate_events += 1.0
            self._live_seen += 1
            self._feedback(1.0 if outcome == "abandoned" else 0.0)
        else:
            self._hist_other[b] += 1.0
        self._ring_dirty = True

    def record_call(self, talk_seconds: float, wrap_seconds: float) -> None:
        """Learn the talk and wrap-up time distributions."""
        _check_seconds("talk_seconds", talk_seconds)
        _check_seconds("wrap_seconds", wrap_seconds)
        self._talk.add(talk_seconds)
        self._wrap.add(wrap_seconds)

    def set_point(self) -> float:
        """The abandonment rate the feedback aims at: the target less a volume margin.

        The margin is ``MARGIN_Z`` binomial standard deviations of the rate over ``N`` live
        answers, ``N`` = the live answers seen so far, at most the volume of
        ``LEDGER_HOURS`` at the current rate: wide while few answers back the ledger (a
        short day, the start of a shift), narrowing as the ledger fills.
        """
        target = self.settings.target_abandon
        rate = self._rate_events / self._rate_time if self._rate_time > 0 else 0.0
        live_per_ledger = min(rate * self.LEDGER_HOURS * 3600.0, float(self._live_seen))
        if live_per_ledger < 1.0:
            return target * 0.4
        margin = self.MARGIN_Z * math.sqrt((1.0 - target) / (target * live_per_ledger))
        return target * max(0.4, 1.0 - margin)

    def _feedback(self, abandoned: float) -> None:
        error = (self.set_point() - abandoned) / self.settings.target_abandon
        if error > 0 and not self._binding:
            return  # anti-windup: no credit while the caps, not the model, limit dialing
        self.gain = min(max(self.gain + self.FEEDBACK_GAIN * error, self.G_MIN), self.G_MAX)

    def _refresh_ring_model(self) -> None:
        live, other = self._hist_live, self._hist_other
        m_live, m_other = float(live.sum()), float(other.sum())
        self._answer_share = m_live / (m_live + m_other)
        self._cdf_live = np.concatenate(([0.0], np.cumsum(live) / m_live))
        self._cdf_other = np.concatenate(([0.0], np.cumsum(other) / m_other))
        idx = np.minimum(np.searchsorted(self._cdf_live, self.HORIZON_QUANTILES),
                         self._edges.size - 1)
        self._horizon_values = self._edges[idx]
        self._horizon_cdf = self._cdf_live[idx]
        self._ring_dirty = False

    def dials_to_place(self, now: float, agents_ready: int,
                       agents_talking: Sequence[float],
                       agents_wrapping: Sequence[float],
                       dials_ringing: Sequence[float], *,
                       dials_answered: Sequence[float] | None = None) -> int:
        """The most dials whose expected abandonment stays under the effective target.

        ``dials_answered`` (optional): seconds since the answer of each call answered and
        not yet with an agent (in AMD or waiting); those calls are then not also in
        ``dials_ringing``. Each counts as a live answer due at once with the learned share
        of answered calls that ask for an agent (live / (live + machine outcomes)).
        """
        _check_state(agents_ready, agents_talking, agents_wrapping, dials_ringing)
        for age in dials_answered or ():
            _check_seconds("dials_answered", age)
        if self._last_now is not None and now > self._last_now:
            dt = now - self._last_now
            k = math.exp(-dt / self.RATE_TIME_CONSTANT_S)
            self._rate_events *= k
            self._rate_time = self._rate_time * k + dt
        self._last_now = now
        talking, wrapping = len(agents_talking), len(agents_wrapping)
        # in flight, for the caps: the answered calls are not also in dials_ringing
        ringing = len(dials_ringing) + len(dials_answered or ())
        if agents_ready + talking + wrapping == 0:
            self._binding = False
            return 0
        lower, upper = _caps(self.settings, agents_ready, talking, wrapping, ringing)
        if upper <= lower:
            self._binding = False
            return upper
        if self._ring_dirty:
            self._refresh_ring_model()
        tau = min(self.settings.target_abandon * math.exp(self.gain), 0.5)
        p = self._answer_share
        horizons = self._horizon_values
        s_mean, s_var = self._supply(agents_ready, agents_talking, agents_wrapping,
                                     horizons + self.CONNECT_GRACE_S)
        d_mean, d_var = self._demand(dials_ringing, dials_answered, horizons)
        best = upper
        for i in range(horizons.size):
            p_new = p * self._horizon_cdf[i]
            best = min(best, self._largest_n(lower, best, p_new,
                                             float(d_mean[i] - s_mean[i]),
                                             float(d_var[i] + s_var[i]), tau))
            if best <= lower:
                break
        self._binding = best < upper
        return max(best, lower)

    def _demand(self, dials_ringing: Sequence[float], dials_answered: Sequence[float] | None,
                horizons: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and variance of the calls placed that ask for an agent by ``now + h``."""
        p = self._answer_share
        d_mean = np.zeros(horizons.size)
        d_var = np.zeros(horizons.size)
        if dials_ringing:
            ring_age = np.asarray(dials_ringing, dtype=np.float64)
            # a dial known not yet answered is at least the AMD verdict away from asking
            shift = self.AMD_HUMAN_VERDICT_S if dials_answered is not None else 0.0
            f_live_r = np.interp(ring_age + shift, self._edges, self._cdf_live)
            f_other_r = np.interp(ring_age, self._edges, self._cdf_other)
            f_live_h = np.interp(ring_age[:, None] + horizons[None, :], self._edges,
                                 self._cdf_live)
            alive = np.maximum(p * (1.0 - f_live_r) + (1.0 - p) * (1.0 - f_other_r), 1e-9)
            d = np.clip(p * (f_live_h - f_live_r[:, None]) / alive[:, None], 0.0, 1.0)
            d_mean = d.sum(axis=0)
            d_var = (d * (1.0 - d)).sum(axis=0)
        answered = dials_answered or ()
        if answered:
            share = self._answered_live / (self._answered_live + self._answered_other)
            d_mean = d_mean + share * len(answered)
            d_var = d_var + share * (1.0 - share) * len(answered)
        return d_mean, d_var

    def _supply(self, agents_ready: int, agents_talking: Sequence[float],
                agents_wrapping: Sequence[float],
                horizons: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and variance of the agents free by ``now + h`` for each horizon ``h``."""
        talking, wrapping = len(agents_talking), len(agents_wrapping)
        s_mean = np.full(horizons.size, float(agents_ready))
        s_var = np.zeros(horizons.size)
        if talking:
            talk_age = np.asarray(agents_talking, dtype=np.float64)
            wq = self._wrap.quantiles()
            s_now = self._talk.survival(talk_age)
            later = self._talk.survival(talk_age[:, None, None] + horizons[None, None, :]
                                        - wq[None, :, None])
            q = np.minimum(np.maximum(s_now[:, None, None] - later, 0.0).mean(axis=1)
                           / s_now[:, None], 1.0)
            s_mean += q.sum(axis=0)
            s_var += (q * (1.0 - q)).sum(axis=0)
        if wrapping:
            wrap_age = np.asarray(agents_wrapping, dtype=np.float64)
            w_now = self._wrap.survival(wrap_age)
            u = np.maximum(w_now[:, None] - self._wrap.survival(
                wrap_age[:, None] + horizons[None, :]), 0.0) / w_now[:, None]
            s_mean += u.sum(axis=0)
            s_var += (u * (1.0 - u)).sum(axis=0)
        return s_mean, s_var

    @staticmethod
    def _largest_n(lower: int, upper: int, p_new: float, base_mean: float, base_var: float,
                   tau: float) -> int:
        """Largest n in [lower, upper] whose n-th dial finds no agent with P <= tau.

        The n-th new dial, answered, finds no agent when the other answers (ringing dials
        and n - 1 new ones) already take every agent freed: ``P(D_old + B_{n-1} - S >= 0)``
        with a normal of the exact mean and variance and a continuity correction. It grows
        with n, so a bisection finds the answer.
        """
        def ok(n: int) -> bool:
            if n == 0:
                return True
            mean = base_mean + (n - 1) * p_new
            var = base_var + (n - 1) * p_new * (1.0 - p_new)
            return _normal_cdf((mean + 0.5) / math.sqrt(max(var, 1e-12))) <= tau

        if not ok(lower):
            return lower
        lo, hi = lower, upper  # ok(lo) holds
        if ok(hi):
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
        return lo


def _normal_quantiles(probs: FloatArray) -> FloatArray:
    """Standard normal quantiles (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
         3.754408661907416e+00)
    out = np.empty_like(probs)
    for i, p in enumerate(probs):
        if p < 0.02425:
            q = math.sqrt(-2 * math.log(p))
            out[i] = ((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                      / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1))
        elif p > 1 - 0.02425:
            q = math.sqrt(-2 * math.log(1 - p))
            out[i] = -((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                       / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1))
        else:
            q = p - 0.5
            r = q * q
            out[i] = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                      / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1))
    return out
