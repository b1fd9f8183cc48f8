"""Benchmark: callcenter.staffing.erlang against pyworkforce's ErlangC, in one run.

1. Speed: required agents for 80% of calls answered in 20 s, for a 96-interval day
   (15-minute intervals) of 50 queues = 4,800 intervals, with this module (one vectorised
   call) and with pyworkforce (one ErlangC(...).required_positions per interval, as its
   API is meant to be used). pyworkforce's cost grows like A^1.5 per interval and ours
   hardly at all, so the ratio depends on queue sizes: three workloads are timed, large
   queues (where pyworkforce takes the ~0.2 ms per interval ERLANG.md measured), mid-size
   and small ones. Both are timed with the same timeit harness (loops of calls lasting at
   least 0.2 s, best of 5). Both answers are checked against each other; intervals where
   they differ are settled with mpmath.
2. Range: the largest load (10, 100, ... Erlangs) at which each still returns a finite,
   correct answer, for two questions: (a) the staffing answer itself (required agents for
   80/20 at AHT 180 s, checked with mpmath: SL(n) >= 0.8 > SL(n-1)), and (b) P(wait) at
   n = ceil(A + sqrt(A)), correct meaning within 1e-12 relative of mpmath. A library whose
   next load would take longer than the time budget is stopped there (and it says so).

pyworkforce is needed only here: the ``bench`` extra, ``.venv/bin/pip install -e '.[bench]'``
(it pulls pandas, scipy, ortools). Run from the repository root:
``.venv/bin/python bench/erlang.py``.
"""

from __future__ import annotations

import math
import platform
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np

from callcenter.staffing.erlang import erlang_c, required_agents

QUEUES, INTERVALS, INTERVAL_MIN = 50, 96, 15
TARGET_SL, TARGET_S = 0.8, 20.0
BUDGET_S = 20.0  # a single load may take at most this long
mp.mp.dps = 40


def day_of_queues(low: float, high: float, seed: int = 20261123
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Calls and AHT (seconds) per queue x 15-minute interval: a two-peak working day.

    Each queue's peak load is drawn log-uniformly from [low, high] Erlangs.
    """
    rng = np.random.default_rng(seed)
    hours = (np.arange(INTERVALS) + 0.5) * INTERVAL_MIN / 60.0
    shape = (np.exp(-((hours - 10.5) / 2.0) ** 2) + 0.85 * np.exp(-((hours - 14.5) / 2.2) ** 2)
             + 0.04)
    shape /= shape.max()
    aht = rng.uniform(120, 480, (QUEUES, 1)) * rng.normal(1.0, 0.03, (1, INTERVALS))
    aht = np.round(aht)
    peak_load = np.exp(rng.uniform(math.log(low), math.log(high), QUEUES))
    peak_calls = peak_load * INTERVAL_MIN * 60 / aht.mean(axis=1)
    noise = rng.normal(1.0, 0.08, (QUEUES, INTERVALS)).clip(0.7, 1.3)
    calls = np.round(peak_calls[:, None] * shape[None, :] * noise)
    return calls, aht


def per_call(fn: Callable[[], Any], repeats: int = 5) -> tuple[float, int]:
    """Seconds per call, as timeit measures it: loops of ``number`` calls lasting at least
    0.2 s (Timer.autorange), best of ``repeats`` loops, garbage collector off while timing.
    The same harness for both libraries."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeats, number)) / number, number


def ref_erlang_c(traffic: float, agents: int) -> mp.mpf:
    a = mp.mpf(traffic)
    log_mass = agents * mp.log(a) - a - mp.loggamma(agents + 1)
    b = mp.exp(log_mass) / mp.gammainc(agents + 1, a, mp.inf, regularized=True)
    return agents * b / (agents - a + a * b)


def ref_service_level(traffic: float, agents: int, aht: float, seconds: float) -> mp.mpf:
    if agents <= traffic:
        return mp.mpf(0)
    c = ref_erlang_c(traffic, agents)
    return 1 - c * mp.exp(-(agents - mp.mpf(traffic)) * mp.mpf(seconds) / mp.mpf(aht))


def minimal_ok(traffic: float, agents: int, aht: float) -> bool:
    return bool(ref_service_level(traffic, agents, aht, TARGET_S) >= TARGET_SL
                > ref_service_level(traffic, agents - 1, aht, TARGET_S))


def ladder(name: str, solve: Callable[[float], Any], check: Callable[[float, Any], bool],
           loads: list[float], scale: float) -> str:
    """Run loads upward until a wrong answer or the time budget; describe the outcome."""
    best, note, last_time = None, "", 0.0
    for load in loads:
        if last_time * scale > BUDGET_S:
            note = (f"stopped before {load:.0e}: projected {last_time * scale:.0f} s "
                    f"> {BUDGET_S:.0f} s budget")
            break
        t0 = time.perf_counter()
        try:
            answer = solve(load)
            ok = check(load, answer)
        except Exception as exc:  # noqa: BLE001 - a library failing is a result, not a crash
            answer, ok = f"{type(exc).__name__}: {exc}", False
        last_time = time.perf_counter() - t0
        if not ok:
            note = f"wrong at {load:.0e}: {answer}"
            break
        best = load
        print(f"    {name:12s} {load:9.0e} Erlangs ok in {last_time:7.3f} s", flush=True)
    shown = "none" if best is None else f"{best:.0e} Erlangs"
    if not note and best == loads[-1]:
        note = "the largest load tried"
    return f"{shown}" + (f" ({note})" if note else "")


def speed(title: str, calls: np.ndarray, aht: np.ndarray, erlang_c_class: Any
          ) -> tuple[float, float]:
    """Time both libraries on one workload, compare their answers; (ours, theirs) seconds."""
    traffic = calls * aht / (INTERVAL_MIN * 60)
    print(f"\n1. speed: {title}\n    {QUEUES} queues x {INTERVALS} intervals = {calls.size} "
          f"intervals, {int(calls.sum())} calls, load {traffic.min():.2f}..{traffic.max():.1f} "
          f"Erlangs (mean {traffic.mean():.1f}), target {TARGET_SL:.0%} in {TARGET_S:g} s")

    def ours() -> np.ndarray:
        return required_agents(calls, INTERVAL_MIN * 60, aht, TARGET_SL, TARGET_S).agents

    def theirs() -> np.ndarray:
        out = np.zeros(calls.shape, dtype=np.int64)
        for (q, i), n_calls in np.ndenumerate(calls):
            if n_calls <= 0:
                continue  # pyworkforce refuses 0 transactions
            e = erlang_c_class(transactions=float(n_calls), aht=float(aht[q, i]) / 60.0,
                               asa=TARGET_S / 60.0, interval=INTERVAL_MIN)
            out[q, i] = e.required_positions(service_level=TARGET_SL)["raw_positions"]
        return out

    n_ours, n_theirs = ours(), theirs()  # also the warm-up (imports, first allocation)
    t_ours, loops_ours = per_call(ours)
    t_theirs, loops_theirs = per_call(theirs)
    differ = np.argwhere(n_ours != n_theirs)
    print(f"    callcenter.staffing.erlang.required_agents : {t_ours * 1e3:9.3f} ms "
          f"(best of 5 x {loops_ours} calls)")
    print(f"    pyworkforce ErlangC.required_positions     : {t_theirs * 1e3:9.3f} ms "
          f"(best of 5 x {loops_theirs} calls)")
    print(f"    ratio                                      : {t_theirs / t_ours:9.1f} x")
    print(f"    answers differ in {len(differ)} of {calls.size} intervals", end="")
    if len(differ):
        right = sum(minimal_ok(float(traffic[q, i]), int(n_ours[q, i]), float(aht[q, i]))
                    for q, i in differ)
        print(f"; mpmath says this module is right in {right} of them")
    else:
        print()
    return t_ours, t_theirs


def main() -> int:
    try:
        import pyworkforce
        from pyworkforce.queuing import ErlangC
    except ImportError:
        print("pyworkforce is missing: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"pyworkforce {getattr(pyworkforce, '__version__', '?')}, mpmath {mp.__version__}, "
          f"{platform.machine()}")
    workloads = {"large queues (peaks 150-600 Erlangs)": (150.0, 600.0),
                 "mid-size queues (peaks 40-250 Erlangs)": (40.0, 250.0),
                 "small queues (peaks 2-40 Erlangs)": (2.0, 40.0)}
    ratios = {}
    for title, (low, high) in workloads.items():
        ratios[title] = speed(title, *day_of_queues(low, high), ErlangC)

    loads = [10.0 ** k for k in range(1, 13)]
    print("\n2a. largest load with a correct staffing answer (80/20, AHT 180 s, mpmath check)")

    def ours_staff(load: float) -> int:
        return int(required_agents(load * 3600 / 180, 3600, 180, TARGET_SL, TARGET_S).agents)

    def theirs_staff(load: float) -> int:
        e = ErlangC(transactions=load * 60 / 3, aht=3.0, asa=TARGET_S / 60, interval=60)
        return int(e.required_positions(service_level=TARGET_SL)["raw_positions"])

    def staff_ok(load: float, n: Any) -> bool:
        return isinstance(n, int) and minimal_ok(load, n, 180.0)

    a_ours = ladder("this module", ours_staff, staff_ok, loads, 4.0)
    a_theirs = ladder("pyworkforce", theirs_staff, staff_ok, loads, 32.0)

    print("\n2b. largest load with P(wait) at n = ceil(A + sqrt(A)) within 1e-12 of mpmath")

    def agents_for(load: float) -> int:
        return math.ceil(load + math.sqrt(load))

    def ours_wait(load: float) -> float:
        return float(erlang_c(load, agents_for(load)))

    def theirs_wait(load: float) -> float:
        e = ErlangC(transactions=load * 60, aht=1.0, asa=TARGET_S / 60, interval=60)
        return float(e.waiting_probability(agents_for(load)))

    def wait_ok(load: float, value: Any) -> bool:
        ref = ref_erlang_c(load, agents_for(load))
        return (isinstance(value, float) and math.isfinite(value)
                and float(abs(mp.mpf(value) - ref) / ref) <= 1e-12)

    b_ours = ladder("this module", ours_wait, wait_ok, loads, 4.0)
    b_theirs = ladder("pyworkforce", theirs_wait, wait_ok, loads, 11.0)

    print("\nsummary")
    for title, (t_ours, t_theirs) in ratios.items():
        print(f"    {title}: {t_ours * 1e3:.3f} ms vs {t_theirs * 1e3:.1f} ms "
              f"-> {t_theirs / t_ours:.0f}x faster (goal 100x)")
    print(f"    staffing answer correct up to: this module {a_ours}; pyworkforce {a_theirs}")
    print(f"    P(wait) exact up to          : this module {b_ours}; pyworkforce {b_theirs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
