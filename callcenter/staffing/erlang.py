"""Erlang B, C and A queueing formulas for staffing, exact and vectorised with numpy.

This module owns the numbers every staffing decision in the engine is made from: reports,
the dialer, the wallboard and the ``callcenter staffing plan`` command all call it.

Conventions (the same for every function):

- ``traffic`` is the offered load in Erlangs (arrival rate x mean handle time), ``agents``
  are whole agent counts (integers, or floats holding whole numbers); times (``aht``,
  ``patience``, ``target_seconds``) are in seconds.
- Every argument broadcasts like a numpy ufunc; the result is a float64 array of the
  broadcast shape (a 0-d array for scalar arguments: use ``float(...)``).
- No factorials and no power series in linear space: Erlang B comes from its stable
  recursion ``B(n) = A B(n-1) / (n + A B(n-1))`` (a contraction, so rounding errors die out),
  Erlang C and the service level from cancellation-free rearrangements, Erlang A from
  regularized incomplete gamma ratios whose prefactor ``x^s e^-x / Gamma(s+1)`` is computed
  with Loader's saddle-point form (``stirlerr`` and ``bd0``), never from ``lgamma``
  differences. Relative error stays below 1e-12 (typically a few ulps) from 1 to 10,000
  agents and beyond, including loads within a hair of the agent count.
- An Erlang C queue with ``agents <= traffic`` never empties: P(wait) = 1, service level 0,
  ASA infinite (``inf``, not NaN and not an exception). Zero traffic means nobody calls:
  P(wait) = 0, service level 1, ASA 0. With abandonment (Erlang A) fewer agents than
  Erlangs is a valid, finite operating point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ErlangAMetrics",
    "StaffingRequirement",
    "asa",
    "erlang_a_abandon",
    "erlang_a_asa",
    "erlang_a_metrics",
    "erlang_a_occupancy",
    "erlang_a_required_agents",
    "erlang_a_service_level",
    "erlang_a_wait",
    "erlang_a_wait_exceeds",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "regularized_gamma_p",
    "regularized_gamma_q",
    "required_agents",
    "service_level",
    "traffic_erlangs",
    "wait_exceeds",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_EPS: Final = 2.0**-54  # convergence threshold of series and continued fractions
_TINY: Final = 1e-300  # Lentz's guard against a zero denominator
_LN_SQRT_2PI: Final = 0.5 * math.log(2.0 * math.pi)
_UNDERFLOW_LOG: Final = -750.0  # exp() of anything below this is exactly 0.0 in float64
_SEATS_SLACK: Final = 1e-9  # tolerance for decimal shrinkage fractions (14 / 0.7 -> 20 seats)


# --------------------------------------------------------------------------- validation


def _floats(value: npt.ArrayLike, name: str, *, low: float = 0.0, allow_low: bool = True,
            allow_inf: bool = False) -> FloatArray:
    if type(value) is float or type(value) is int:  # a plain number: no reductions needed
        number = float(value)
        if (number >= low if allow_low else number > low) and (allow_inf or number < math.inf):
            return np.array(number)  # NaN fails both tests above
    arr = np.asarray(value, dtype=np.float64)
    # Fast path: two reductions decide that everything is valid (NaN fails both tests,
    # since min() propagates it); only a failing array pays for the detailed diagnosis.
    if arr.size:
        lowest, highest = arr.min(), arr.max()
        if (lowest >= low if allow_low else lowest > low) and (allow_inf or highest < np.inf):
            return arr
    return _floats_checked(arr, name, low=low, allow_low=allow_low, allow_inf=allow_inf)


def _floats_checked(arr: FloatArray, name: str, *, low: float, allow_low: bool,
                    allow_inf: bool) -> FloatArray:
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not be NaN")
    if not allow_inf and np.isinf(arr).any():
        raise ValueError(f"{name} must be finite")
    bad = arr < low if allow_low else arr <= low
    if bad.any():
        op = ">=" if allow_low else ">"
        raise ValueError(f"{name} must be {op} {low:g}, got {arr[bad].flat[0]!r}")
    return arr


def _agent_counts(value: npt.ArrayLike, name: str = "agents") -> FloatArray:
    """Whole, non-negative agent counts, returned as float64 (exact up to 2**53)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be whole numbers, got dtype {arr.dtype}")
    counts = arr.astype(np.float64)
    if not np.isfinite(counts).all() or (counts != np.floor(counts)).any():
        raise ValueError(f"{name} must be whole numbers of agents")
    if (counts < 0).any():
        raise ValueError(f"{name} must be >= 0")
    return counts


def _common_shape(*arrays: FloatArray) -> tuple[int, ...]:
    """np.broadcast_shapes of the arrays, without its cost when they agree (or are 0-d)."""
    shape: tuple[int, ...] = ()
    for arr in arrays:
        if arr.shape and arr.shape != shape:
            shape = np.broadcast_shapes(shape, arr.shape) if shape else arr.shape
    return shape


def _shaped(values: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """Reshape a flat result; a scalar call gets a numpy scalar, as from a numpy ufunc."""
    out = values.reshape(shape)
    return out if shape else out[()]  # a numpy scalar, as numpy ufuncs return


def _shaped_int(values: npt.NDArray[np.float64 | np.int64], shape: tuple[int, ...]) -> IntArray:
    out = values.astype(np.int64).reshape(shape)
    return out if shape else out[()]  # a numpy scalar, as numpy ufuncs return


def _flat(*arrays: FloatArray) -> tuple[tuple[int, ...], list[FloatArray]]:
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    return shape, [np.ascontiguousarray(np.broadcast_to(a, shape)).ravel() for a in arrays]


# ------------------------------------------------- incomplete gamma (no scipy, no lgamma gaps)

# Coefficients of the Stirling series of ln Gamma(x+1) - Stirling's formula.
_S0: Final = 1.0 / 12.0
_S1: Final = 1.0 / 360.0
_S2: Final = 1.0 / 1260.0
_S3: Final = 1.0 / 1680.0
_S4: Final = 1.0 / 1188.0
_lgamma_ufunc: Final = np.frompyfunc(math.lgamma, 1, 1)


def _stirlerr(s: FloatArray) -> FloatArray:
    """ln Gamma(s+1) - (s+1/2) ln s + s - ln sqrt(2 pi), for s > 0."""
    out = np.empty_like(s)
    big = s >= 15.0
    if big.any():
        x = s[big]
        xx = x * x
        out[big] = (_S0 - (_S1 - (_S2 - (_S3 - _S4 / xx) / xx) / xx) / xx) / x
    small = ~big
    if small.any():
        x = s[small]
        lg = np.asarray(_lgamma_ufunc(x + 1.0), dtype=np.float64)
        out[small] = lg - (x + 0.5) * np.log(x) + x - _LN_SQRT_2PI
    return out


def _bd0(x: FloatArray, m: FloatArray) -> FloatArray:
    """x ln(x/m) + m - x without cancellation (Loader 2000), for x > 0, m > 0."""
    out = np.empty_like(x)
    near = np.abs(x - m) < 0.1 * (x + m)
    if near.any():
        xn, mn = x[near], m[near]
        v = (xn - mn) / (xn + mn)
        s = (xn - mn) * v
        ej = 2.0 * xn * v
        v2 = v * v
        for j in range(1, 40):
            ej = ej * v2
            s_new = s + ej / (2 * j + 1)
            if np.array_equal(s_new, s):
                break
            s = s_new
        out[near] = s
    far = ~near
    if far.any():
        xf, mf = x[far], m[far]
        out[far] = xf * np.log(xf / mf) + mf - xf
    return out


def _log_gamma_prefix(s: FloatArray, x: FloatArray) -> FloatArray:
    """ln(x^s e^-x / Gamma(s+1)) for s >= 0, x > 0: the Poisson mass at s with mean x."""
    out = -x.copy()  # s == 0
    pos = s > 0
    if pos.any():
        sp, xp = s[pos], x[pos]
        out[pos] = -_stirlerr(sp) - _bd0(sp, xp) - 0.5 * np.log(2.0 * np.pi * sp)
    return out


def _gamma_prefix(s: FloatArray, x: FloatArray) -> FloatArray:
    return np.exp(_log_gamma_prefix(s, x))


def _kummer_series(s: FloatArray, x: FloatArray, *, with_moment: bool = False
                   ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Sum_{k>=0} x^k / ((s+1)...(s+k)) for x < s + 1, split as (1, tail, moment).

    Returns ``(tail, total, moment)``: the terms k >= 1, the whole sum (1 + tail) and, when
    asked, ``Sum k x^k / ((s+1)...(s+k))``. All terms are positive and decreasing, so the sum
    is accurate to a few ulps; it stops once a geometric bound of the rest is below 2^-54.
    """
    n = s.size
    tail = np.zeros(n)
    moment = np.zeros(n)
    term = np.ones(n)
    idx = np.arange(n)
    ss, xx = s, x
    k = 0
    while idx.size:
        k += 1
        term = term * (xx / (ss + k))
        tail[idx] += term
        if with_moment:
            moment[idx] += k * term
        r = xx / (ss + (k + 1))
        one_minus_r = 1.0 - r
        rest = term * r / one_minus_r
        done = rest <= _EPS * (1.0 + tail[idx])
        if with_moment:
            done &= term * r * (k / one_minus_r + 1.0 / (one_minus_r * one_minus_r)) \
                <= _EPS * np.maximum(moment[idx], _TINY)
        if done.any():
            keep = ~done
            idx, term, ss, xx = idx[keep], term[keep], ss[keep], xx[keep]
    return tail, 1.0 + tail, moment


def _gamma_cf(s: FloatArray, x: FloatArray) -> FloatArray:
    """Continued fraction h with Gamma(s, x) = x^s e^-x h, for x >= s + 1 (modified Lentz)."""
    n = s.size
    result = np.empty(n)
    idx = np.arange(n)
    ss, xx = s, x
    b = xx + 1.0 - ss
    c = np.full(n, 1.0 / _TINY)
    d = 1.0 / b
    h = d.copy()
    i = 0
    while idx.size:
        i += 1
        an = -i * (i - ss)
        b = b + 2.0
        d = an * d + b
        d = np.where(np.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        done = np.abs(delta - 1.0) <= _EPS
        if done.any():
            result[idx[done]] = h[done]
            keep = ~done
            idx, ss, xx, b, c, d, h = idx[keep], ss[keep], xx[keep], b[keep], c[keep], d[keep], h[keep]
    return result


def _reg_gamma_pair(s: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(P(s, x), Q(s, x)) on flat arrays, s > 0, x >= 0, each accurate where it is small."""
    p = np.zeros_like(x)
    q = np.ones_like(x)
    pos = x > 0
    low = pos & (x < s + 1.0)
    if low.any():
        sl, xl = s[low], x[low]
        _, total, _ = _kummer_series(sl, xl)
        pl = _gamma_prefix(sl, xl) * total
        p[low] = pl
        q[low] = 1.0 - pl
    high = pos & ~low
    if high.any():
        sh, xh = s[high], x[high]
        qh = sh * _gamma_prefix(sh, xh) * _gamma_cf(sh, xh)
        q[high] = qh
        p[high] = 1.0 - qh
    return p, q


def regularized_gamma_p(s: npt.ArrayLike, x: npt.ArrayLike) -> FloatArray:
    """Regularized lower incomplete gamma P(s, x) = gamma(s, x) / Gamma(s), s > 0, x >= 0.

    Series below ``x = s + 1``, continued fraction above; relative error ~1e-14 wherever
    P is the smaller of P and Q (use :func:`regularized_gamma_q` for the other side).
    """
    sa = _floats(s, "s", allow_low=False)
    xa = _floats(x, "x")
    shape, (sf, xf) = _flat(sa, xa)
    p, _ = _reg_gamma_pair(sf, xf)
    return _shaped(p, shape)


def regularized_gamma_q(s: npt.ArrayLike, x: npt.ArrayLike) -> FloatArray:
    """Regularized upper incomplete gamma Q(s, x) = 1 - P(s, x), s > 0, x >= 0."""
    sa = _floats(s, "s", allow_low=False)
    xa = _floats(x, "x")
    shape, (sf, xf) = _flat(sa, xa)
    _, q = _reg_gamma_pair(sf, xf)
    return _shaped(q, shape)


# ----------------------------------------------------------------------------- Erlang B

# Loads for which every element runs the Erlang B recursion from B(0) = 1 at one shared
# count k (below): for them the damped recursion of _erlang_b_flat starts at 0 anyway
# (8 sqrt(A) + 2 >= A up to ~80 Erlangs), so both give the same bits; the shared count
# only makes a step one numpy call cheaper. The agent bound keeps the walk short.
_SHARED_MAX_LOAD: Final = 64.0
_SHARED_MAX_AGENTS: Final = 160
_SHARED_MIN_LOAD: Final = 1e-300  # 1/A stays finite (used for counts below 1)


def _shared_path(a: FloatArray, n: FloatArray) -> BoolArray:
    """Which (load, count) pairs take the shared-count recursion: from them alone.

    If (a, n) does, so does (a, k) for every k < n.
    """
    path: BoolArray = (a <= _SHARED_MAX_LOAD) & (a >= _SHARED_MIN_LOAD)
    path &= n <= _SHARED_MAX_AGENTS
    return path


def _recursion_from_zero(load: FloatArray, depth: npt.NDArray[np.intp]) -> FloatArray:
    """B(depth, load) elementwise by the recursion from B(0) = 1, every element at count k.

    With one count for all, a step is three numpy calls (a B, k + a B, the quotient), the
    very operations of :func:`_damped_recursion`. Elements run deepest first: those still
    stepping at count k are a prefix. A depth below 0 (down to -2) gives 1, 2 (times 1/A):
    states from which one or two steps reach B(0) = 1 exactly (x / x = 1).
    """
    size = load.size
    top = int(depth.max()) if size else 0
    if top <= 0:
        return np.where(depth >= 0, 1.0, -depth / load)
    key = (top - depth).astype(np.uint8)
    order = np.argsort(key, kind="stable")  # a radix sort for small integers
    key = key[order]
    # active[k - 1] = number of elements with depth >= k, i.e. key <= top - k; then the
    # number with depth >= 0 (key <= top: depths below 0 sort last)
    queries = np.arange(top - 1, -2, -1, dtype=np.intp)
    queries[-1] = top
    active = np.searchsorted(key, queries.astype(np.uint8), side="right").tolist()
    aa = load[order]
    b = np.ones(size)
    nonnegative = active.pop()
    if nonnegative < size:
        b[nonnegative:] = (key[nonnegative:] - top) / aa[nonnegative:]
    ab = np.empty(size)
    denom = np.empty(size)
    multiply, add, divide = np.multiply, np.add, np.divide
    for k, (bb, ll, pp, dd) in enumerate(
            ((b[:m], aa[:m], ab[:m], denom[:m]) for m in active), start=1):
        multiply(ll, bb, pp)
        add(pp, float(k), dd)
        divide(pp, dd, bb)
    out = np.empty(size)
    out[order] = b
    return out


def _recursion_start(load: FloatArray, count: FloatArray) -> FloatArray:
    """Where the damped Erlang B recursion toward ``count`` starts (see _erlang_b_flat).

    For every count above the load this is ``_stable_start(load)``: the same start, so
    B(n+1) is exactly one recursion step from B(n) there.
    """
    below = np.maximum(load - count, 0.0)
    start = np.floor(load - np.sqrt(64.0 * load + below * below) - 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = count - np.ceil(40.0 / np.log(load / count))  # each step damps by n/a
    start = np.where(count < load, np.maximum(start, geometric), start)
    clipped: FloatArray = np.clip(start, 0.0, count - 1.0)
    return clipped


def _stable_start(load: FloatArray) -> FloatArray:
    """_recursion_start(load, count) for any count > load, bit for bit."""
    return np.maximum(np.floor(load - np.sqrt(64.0 * load) - 2.0), 0.0)


def _damped_recursion(load: FloatArray, count: FloatArray, start: FloatArray
                      ) -> tuple[FloatArray, FloatArray]:
    """(B(count), count + load B(count - 1)) by the recursion from an approximate B(start).

    Lockstep with a growing prefix: sorted by steps needed (most first), the elements still
    idle at iteration s are a tail, so each iteration works on a contiguous slice. An
    element with count == start gets the start value (and no second result).
    """
    need = count - start
    steps_max = int(need.max()) if need.size else 0
    # a stable sort of small integers is a radix sort in numpy: much cheaper than floats
    key = (steps_max - need).astype(np.int16 if steps_max < 32767 else np.int64)
    order = np.argsort(key, kind="stable")
    load, count, need = load[order], count[order], need[order]
    steps = int(need[0]) if need.size else 0
    # B(n0) = (1 - r) + r / (a (1 - r)) + O(1 / (n0 (1 - r)^2)^2), r = n0 / a < 1
    first = start[order]
    spare = 1.0 - first / load
    blk = np.where(first > 0, spare + (first / load) / (load * spare), 1.0)
    joins = steps - need  # iteration after which each element joins (ascending)
    k = first.copy()  # the count reached, once an element is stepping (whole numbers)
    ab = np.empty_like(load)
    denom = np.empty_like(load)
    active = np.searchsorted(joins, np.arange(steps), side="right").tolist()
    add, multiply, divide = np.add, np.multiply, np.divide
    for kk, ll, bb, aa, dd in ((k[:m], load[:m], blk[:m], ab[:m], denom[:m]) for m in active):
        add(kk, 1.0, kk)
        multiply(ll, bb, aa)
        add(kk, aa, dd)
        divide(aa, dd, bb)
    b = np.empty_like(blk)
    b[order] = blk
    d = np.empty_like(denom)
    d[order] = denom
    return b, d


def _erlang_b_flat(a: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(B(n, a), 1 - B(n, a)) on flat arrays of loads a >= 0 and whole agent counts n >= 0.

    The recursion ``B(k) = a B(k-1) / (k + a B(k-1))``, with ``1 - B(n) = n / (n + a
    B(n-1))``. It multiplies a relative error in B by ``1 - B(k) <= k/a`` per step, so it
    need not start at 0: it starts at the n0 from which that damping exceeds e^-32 before
    reaching n (about 8 sqrt(a) below the load), from a two-term expansion of B(n0) that is
    within 1e-3 there. Counts so far above the load that B underflows float64 are answered
    0 without iterating. Loads up to 64 Erlangs with n <= 160 start at 0 anyway and run
    with one shared count (:func:`_recursion_from_zero`, the same bits, fewer numpy calls);
    the choice depends on (a, n) alone, so a batch gives each element what a call for it
    alone gives.
    """
    b = np.zeros_like(a)
    bc = np.ones_like(a)
    no_trunks = n == 0
    b[no_trunks] = 1.0
    bc[no_trunks] = 0.0
    work = (a > 0) & ~no_trunks
    shared = work & _shared_path(a, n)
    if shared.any():
        sel = np.flatnonzero(shared)
        load, count = a[sel], n[sel]
        ab = load * _recursion_from_zero(load, (count - 1.0).astype(np.intp))
        denom = count + ab
        b[sel] = ab / denom
        bc[sel] = count / denom  # 1 - B(n) = n / (n + A B(n-1)), exact form
        work &= ~shared
    beyond = work & (n > a + 1.0)
    if beyond.any():
        # B <= P(N = n) / P(N <= n) <= 2 P(N = n) for a Poisson N of mean a and n > a + 1.
        log_mass = _log_gamma_prefix(n[beyond], a[beyond])
        negligible = np.zeros_like(work)
        negligible[beyond] = log_mass + math.log(2.0) < _UNDERFLOW_LOG
        work &= ~negligible
    idx = np.flatnonzero(work)
    if idx.size == 0:
        return b, bc
    load = a[idx]
    count = n[idx]
    # Start n0 so that the damping Sum_{n0 < k <= n} ln(a / k) >= Sum (a - k) / a exceeds 32
    # (the start value is within 1e-3 there, so 1e-3 e^-32 < 2^-53 remains).
    blk, denom = _damped_recursion(load, count, _recursion_start(load, count))
    b[idx] = blk
    bc[idx] = count / denom  # 1 - B(n) = n / (n + A B(n-1)), exact form
    return b, bc


def erlang_b(traffic: npt.ArrayLike, agents: npt.ArrayLike) -> FloatArray:
    """Erlang B blocking probability of ``agents`` trunks offered ``traffic`` Erlangs.

    ``erlang_b(A, 0)`` is 1 (no trunk, every call blocked) and ``erlang_b(0, n)`` is 0 for
    n >= 1.
    """
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    shape, (lf, cf) = _flat(load, count)
    b, _ = _erlang_b_flat(lf, cf)
    return _shaped(b, shape)


# ----------------------------------------------------------------------------- Erlang C


@dataclass(frozen=True)
class _ErlangC:
    wait: FloatArray  # C, probability that a caller waits
    no_wait: FloatArray  # 1 - C, accurate even when C is close to 1
    spare: FloatArray  # agents - traffic (> 0 where the queue is stable)


def _erlang_c_flat(a: FloatArray, n: FloatArray) -> _ErlangC:
    b, bc = _erlang_b_flat(a, n)
    spare = n - a  # exact when n and a are within a factor 2 (Sterbenz)
    stable = spare > 0
    wait = np.ones_like(a)
    no_wait = np.zeros_like(a)
    denom = spare + a * b  # C = n B / (n - A + A B), both terms positive
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = np.where(stable, n * b / denom, wait)
        no_wait = np.where(stable, spare * bc / denom, no_wait)
    idle = a == 0
    wait[idle] = 0.0
    no_wait[idle] = 1.0
    return _ErlangC(wait=wait, no_wait=no_wait, spare=spare)


def erlang_c(traffic: npt.ArrayLike, agents: npt.ArrayLike) -> FloatArray:
    """Erlang C probability that a caller has to wait (M/M/n, infinite patience).

    ``C = n B / (n - A + A B)`` with B from the Erlang B recursion: no subtraction of nearly
    equal numbers even at loads within 0.01% of the agent count. 1 when agents <= traffic.
    """
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    shape, (lf, cf) = _flat(load, count)
    return _shaped(_erlang_c_flat(lf, cf).wait, shape)


def _service_parts(c: _ErlangC, a: FloatArray, aht: FloatArray, seconds: FloatArray
                   ) -> tuple[FloatArray, FloatArray]:
    """(service level, 1 - service level), each computed from positive terms only."""
    stable = c.spare > 0
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.where(stable, c.spare * (seconds / aht), 0.0)
        late = np.where(stable, c.wait * np.exp(-x), 1.0)
        level = np.where(stable, c.no_wait - c.wait * np.expm1(-x), 0.0)
    idle = a == 0
    late[idle] = 0.0
    level[idle] = 1.0
    return level, late


def service_level(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                  target_seconds: npt.ArrayLike) -> FloatArray:
    """Erlang C service level: share of callers answered within ``target_seconds``.

    ``SL = 1 - C exp(-(n - A) t / AHT)``, evaluated as ``(1 - C) + C (1 - exp(-x))`` so that
    it keeps full relative precision when it is small; 0 when agents <= traffic.
    """
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    handle = _floats(aht, "aht", allow_low=False)
    seconds = _floats(target_seconds, "target_seconds")
    shape, (lf, cf, hf, sf) = _flat(load, count, handle, seconds)
    level, _ = _service_parts(_erlang_c_flat(lf, cf), lf, hf, sf)
    return _shaped(level, shape)


def wait_exceeds(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                 seconds: npt.ArrayLike) -> FloatArray:
    """Erlang C probability that a caller waits longer than ``seconds``: 1 - service level.

    Computed directly (``C exp(-(n - A) t / AHT)``), so it keeps its relative precision
    when the service level is close to 1.
    """
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    handle = _floats(aht, "aht", allow_low=False)
    secs = _floats(seconds, "seconds")
    shape, (lf, cf, hf, sf) = _flat(load, count, handle, secs)
    _, late = _service_parts(_erlang_c_flat(lf, cf), lf, hf, sf)
    return _shaped(late, shape)


def _asa_from(c: _ErlangC, a: FloatArray, aht: FloatArray) -> FloatArray:
    stable = c.spare > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(stable, c.wait * aht / c.spare, np.inf)
    out[a == 0] = 0.0
    return out


def asa(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike) -> FloatArray:
    """Erlang C average speed of answer in seconds: ``C AHT / (n - A)``; inf if n <= A."""
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    handle = _floats(aht, "aht", allow_low=False)
    shape, (lf, cf, hf) = _flat(load, count, handle)
    return _shaped(_asa_from(_erlang_c_flat(lf, cf), lf, hf), shape)


def _occupancy_flat(a: FloatArray, n: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(n > 0, np.minimum(a / n, 1.0), 0.0)
    return out


def occupancy(traffic: npt.ArrayLike, agents: npt.ArrayLike) -> FloatArray:
    """Share of time agents are busy: ``A / n``, capped at 1 (n <= A); 0 with no agents."""
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    shape, (lf, cf) = _flat(load, count)
    return _shaped(_occupancy_flat(lf, cf), shape)


def traffic_erlangs(calls: npt.ArrayLike, interval_seconds: npt.ArrayLike,
                    aht: npt.ArrayLike) -> FloatArray:
    """Offered load in Erlangs of ``calls`` arriving over ``interval_seconds``."""
    c = _floats(calls, "calls")
    i = _floats(interval_seconds, "interval_seconds", allow_low=False)
    h = _floats(aht, "aht", allow_low=False)
    out: FloatArray = np.asarray(c * h / i, dtype=np.float64)
    return out


# ------------------------------------------------------------------- staffing requirement


@dataclass(frozen=True)
class StaffingRequirement:
    """Smallest staffing meeting the targets, per interval (arrays of one shape).

    ``agents`` are productive agents on the phones, ``seats`` the people to schedule once
    shrinkage (breaks, training, absence) is taken out. The metrics are those achieved by
    ``agents``. ``abandon`` is 0 for Erlang C plans (no abandonment in the model).
    """

    traffic: FloatArray
    agents: IntArray
    seats: IntArray
    service_level: FloatArray
    asa: FloatArray
    occupancy: FloatArray
    wait_probability: FloatArray
    abandon: FloatArray


def _seats(agents: FloatArray, shrinkage: FloatArray) -> IntArray:
    raw = agents / (1.0 - shrinkage)
    return np.ceil(raw * (1.0 - _SEATS_SLACK)).astype(np.int64)


def _min_agents_for_occupancy(a: FloatArray, max_occ: FloatArray) -> FloatArray:
    """Smallest n with occupancy(a, n) <= max_occ, checked with the same expression."""
    n = np.ceil(a / max_occ)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = (n > 1) & (a / np.maximum(n - 1.0, 1.0) <= max_occ)
        n = np.where(lower, n - 1.0, n)
        n = np.where(a / np.maximum(n, 1.0) > max_occ, n + 1.0, n)
    return np.where(a > 0, n, 0.0)


# ------------------------------------------------ first guess for the required-agents search
#
# Halfin and Whitt's heavy-traffic limit: with n = A + x sqrt(A), Erlang C tends to
# 1 / (1 + x Phi(x) / phi(x)). The service-level target C e^(-(n - A) t / AHT) <= 1 - SL
# becomes ln(1 + x R(x)) + kappa x = L with R = Phi / phi, kappa = (t / AHT) sqrt(A) and
# L = -ln(1 - SL); the ASA target C AHT / (n - A) <= T becomes x (1 + x R(x)) omega >= 1 with
# omega = (T / AHT) sqrt(A). Both are solved once on a grid (kappa, omega) and read back
# by index. The guess only decides where the exact search looks first: a wrong guess costs
# time, never a wrong answer. On loads from 0.01 to 5,000 Erlangs the exact answer is
# within one agent of A + x sqrt(A) + 1/4 for the usual targets.
_GUESS_OFFSET: Final = 0.25
_NOISY_TARGET: Final = 1e-10  # 1 - SL below this: searched linearly (see _search_erlang_c)
_FAR_TAIL: Final = 1e-300  # Erlang B below this: settled with erlang_b itself
_REFINE_LOAD: Final = 1e4  # above this load the guess is solved, not read from the grid
_KAPPA_STEPS: Final = 64  # grid points per unit of sqrt(kappa)
_KAPPA_POINTS: Final = 100 * _KAPPA_STEPS + 1  # kappa up to 10^4
_OMEGA_STEPS: Final = 16  # grid points per octave of omega
_OMEGA_LOW: Final = -30  # omega from 2^-30 ...
_OMEGA_POINTS: Final = 60 * _OMEGA_STEPS + 1  # ... to 2^30
_erfc_ufunc: Final = np.frompyfunc(math.erfc, 1, 1)


def _mills_ratio(x: FloatArray) -> FloatArray:
    """R(x) = Phi(x) / phi(x) for 0 <= x <= 12 (R < 1.3e32 there)."""
    out: FloatArray = np.asarray(_erfc_ufunc(-x / math.sqrt(2.0)), dtype=np.float64) \
        * (0.5 * math.sqrt(2.0 * math.pi)) * np.exp(0.5 * x * x)
    return out


def _hw_log_term(x: FloatArray) -> FloatArray:
    """ln(1 + x Phi(x) / phi(x)) for 0 <= x <= 12."""
    out: FloatArray = np.log1p(x * _mills_ratio(x))
    return out


def _hw_refine(x: FloatArray, kappa: FloatArray, target_log: FloatArray) -> FloatArray:
    """Newton steps on ln(1 + x R(x)) + kappa x = L from the grid's x (few intervals)."""
    for _ in range(4):
        r = _mills_ratio(x)
        xr = x * r
        slope = (r + x * (1.0 + xr)) / (1.0 + xr) + kappa
        x = np.clip(x - (np.log1p(xr) + kappa * x - target_log) / slope, 0.0, 12.0)
    return x


def _hw_refine_asa(x: FloatArray, omega: FloatArray) -> FloatArray:
    """Newton steps on ln omega + ln x + ln(1 + x R(x)) = 0 from the grid's x."""
    x = np.clip(x, 1e-300, 12.0)
    for _ in range(4):
        r = _mills_ratio(x)
        xr = x * r
        slope = 1.0 / x + (r + x * (1.0 + xr)) / (1.0 + xr)
        x = np.clip(x - (np.log(omega) + np.log(x) + np.log1p(xr)) / slope, 1e-300, 12.0)
    return x


@lru_cache(maxsize=64)
def _hw_service_level_guess(target_log: float) -> FloatArray:
    """x(kappa) at kappa = ((j + 1/2) / 64)^2 for one L = -ln(1 - SL) (read-only)."""
    column = np.zeros(_KAPPA_POINTS)
    if target_log > 0:
        lo, hi = 0.0, 12.0  # x at kappa = 0: ln(1 + x R(x)) = L, L <= 37 for SL < 1
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if float(_hw_log_term(np.array([mid]))[0]) >= target_log \
                else (mid, hi)
        x = np.geomspace(1e-9, lo, 4000)
        kappa = (target_log - _hw_log_term(x)) / x  # decreasing in x
        kappa[-1] = 0.0
        grid = ((np.arange(_KAPPA_POINTS) + 0.5) / _KAPPA_STEPS) ** 2  # read by truncation
        column = np.interp(grid, kappa[::-1], x[::-1])
    column.flags.writeable = False
    return column


@lru_cache(maxsize=1)
def _hw_asa_guess() -> FloatArray:
    """x(omega) on omega = 2^(j / 16 - 30) (read-only)."""
    x = np.geomspace(1e-12, 12.0, 6000)
    omega = 1.0 / (x * np.exp(_hw_log_term(x)))  # 1 / (x (1 + x R(x)))
    grid = np.exp2(np.arange(_OMEGA_POINTS) / _OMEGA_STEPS + _OMEGA_LOW)
    column = np.interp(grid, omega[::-1], x[::-1])
    column.flags.writeable = False
    return column


def _first_guess(a: FloatArray, aht: FloatArray, neg_tau: FloatArray, sl: FloatArray,
                 max_asa: FloatArray, check_asa: bool) -> FloatArray:
    """A count near the smallest one meeting the targets (a whole number >= 1)."""
    root = np.sqrt(a)
    kappa = root * neg_tau  # -kappa
    kappa *= -float(_KAPPA_STEPS * _KAPPA_STEPS)
    kappa_index = np.sqrt(kappa, out=kappa).astype(np.intp)  # sqrt(kappa) * 64, truncated
    np.minimum(kappa_index, _KAPPA_POINTS - 1, out=kappa_index)
    if sl.ndim == 0:
        x = np.take(_hw_service_level_guess(-math.log1p(-float(sl))), kappa_index)
    else:  # one column per distinct target, rounded to 1/16 in L
        target_log = np.rint(-np.log1p(-sl) * 16.0)
        levels, which = np.unique(target_log, return_inverse=True)
        table = np.stack([_hw_service_level_guess(float(v) / 16.0) for v in levels])
        x = table.ravel()[which.ravel() * _KAPPA_POINTS + kappa_index]
    # Beyond ~10^4 Erlangs one grid step is worth more than an agent (x is scaled by
    # sqrt(A)), and kappa may be past the grid: there the equations are solved instead.
    fine = None
    if a.max() > _REFINE_LOAD or kappa_index.max() == _KAPPA_POINTS - 1:
        fine = np.flatnonzero((a > _REFINE_LOAD) | (kappa_index == _KAPPA_POINTS - 1))
        x[fine] = _hw_refine(x[fine], -(root[fine] * neg_tau[fine]),
                             -np.log1p(-np.broadcast_to(sl, a.shape)[fine]))
    if check_asa:
        with np.errstate(divide="ignore", over="ignore"):
            omega = max_asa / aht * root
            octave = np.log2(omega)
        omega_index = np.clip(
            (octave - _OMEGA_LOW) * _OMEGA_STEPS + 0.5, 0.0, _OMEGA_POINTS - 1.0
        ).astype(np.intp)
        x_asa = _hw_asa_guess()[omega_index]
        if fine is not None:
            x_asa[fine] = _hw_refine_asa(x_asa[fine], np.minimum(omega[fine], 1e300))
        x = np.maximum(x, x_asa)
    x *= root
    x += a
    x += _GUESS_OFFSET
    return np.ceil(x, out=x)  # >= 1


# ------------------------------------------------------------ exact required-agents search


def _targets_met(k: FloatArray, b: FloatArray, bc: FloatArray, a: FloatArray,
                 neg_tau: FloatArray, aht: FloatArray, sl: FloatArray, max_asa: FloatArray,
                 check_asa: bool
                 ) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Do k > a agents meet the targets? With (wait, no_wait, level, spare) at k.

    The expressions are those of :func:`erlang_c`, :func:`service_level` and :func:`asa`
    for a stable queue, bit for bit (``spare * -tau`` is ``-(spare * tau)`` exactly), so the
    decision is the one those functions give. Callers mask out k <= a.
    """
    spare = k - a
    denom = spare + a * b
    wait = k * b / denom
    no_wait = spare * bc / denom
    level = no_wait - wait * np.expm1(spare * neg_tau)
    ok: BoolArray = level >= sl
    if check_asa:
        ok &= wait * aht / spare <= max_asa
    return ok, wait, no_wait, level, spare


def _part(x: FloatArray, idx: npt.NDArray[np.intp]) -> FloatArray:
    """A per-interval array restricted to idx; a 0-d target (the same for all) as it is."""
    return x if x.ndim == 0 else x[idx]


def _window(a: FloatArray, guess: FloatArray, shared: BoolArray | None
            ) -> tuple[FloatArray, FloatArray]:
    """Erlang B and k + A B(k-1) at k = g-2, g-1, g (rows), as :func:`erlang_b` has them.

    B(g - 3) comes from the shared-count recursion where ``shared`` (None: everywhere),
    else from the damped recursion started where erlang_b starts it for counts above the
    load (there g >= 3); three more steps give the rows. Rows at or below the load may
    differ from erlang_b (which may start lower for them) and are never used; rows below
    0 (guesses of 1 or 2) are not Erlang B at all.
    """
    prev = np.empty_like(a)
    depth = guess - 3.0
    if shared is None:
        prev = _recursion_from_zero(a, depth.astype(np.intp))
    else:
        for sel, on_path in ((np.flatnonzero(shared), True), (np.flatnonzero(~shared), False)):
            if not sel.size:
                continue
            if on_path:
                prev[sel] = _recursion_from_zero(a[sel], depth[sel].astype(np.intp))
            else:
                load, count = a[sel], depth[sel]
                prev[sel], _ = _damped_recursion(load, count,
                                                 np.minimum(_stable_start(load), count))
    rows = guess - np.array([[2.0], [1.0], [0.0]])
    state = np.empty_like(rows)
    denom = np.empty_like(rows)
    for j in range(3):
        ab = a * prev
        np.add(rows[j], ab, out=denom[j])
        np.divide(ab, denom[j], out=state[j])
        prev = state[j]
    return state, denom


def _search_erlang_c(a: FloatArray, aht: FloatArray, sl: FloatArray, secs: FloatArray,
                     max_asa: FloatArray, least: FloatArray | None = None
                     ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Smallest n > a, n >= least, meeting the SL and ASA targets, all intervals at once.

    Returns n and, at n, (wait, no_wait, level, spare) exactly as :func:`erlang_c` and
    :func:`service_level` compute them. ``a`` (> 0) and ``aht`` are flat arrays; ``sl``,
    ``secs`` and ``max_asa`` flat arrays of the same size or 0-d (one target for all
    intervals); ``least`` (e.g. the counts an occupancy cap needs) a flat array or None.

    A first guess g (Halfin-Whitt, :func:`_first_guess`) is usually the answer or next to
    it. Erlang B at g - 2, g - 1 and g comes from one exact pass, and the targets are
    checked at g - 1 and g together: met at g but not at g - 1 makes g the answer. Met at
    g - 1 already: g - 2 is checked, and unless it meets them too, g - 1 is the answer.
    Missed at g: those intervals step up one agent at a time from the exact B at g. An
    interval left after that (a guess far off, or counts so far above the load that
    erlang_b answers an exact 0) is bisected with :func:`erlang_c` itself. Every decision
    uses the values those public functions give.
    """
    size = a.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        neg_tau = -(secs / aht)  # -tau, tau as in service_level
        check_asa = math.isfinite(max_asa) if max_asa.ndim == 0 else \
            bool(np.isfinite(max_asa).any())
        guess = _first_guess(a, aht, neg_tau, sl, max_asa, check_asa)
        # Within ~1e-10 of 100% the service level's rounding (an ulp of 1) is no longer
        # small against its change per agent, so it need not rise monotonically: search
        # those intervals upward from the load, one agent at a time, for the first count.
        linear = None
        if _reaches(sl, 1.0 - _NOISY_TARGET):
            linear = np.flatnonzero(np.broadcast_to(1.0 - sl < _NOISY_TARGET, (size,)))
            guess[linear] = np.floor(a[linear]) + 1.0
        if least is not None:
            np.maximum(guess, least, out=guess)
        unsure = []
        if a.max() <= _SHARED_MAX_LOAD and a.min() >= _SHARED_MIN_LOAD \
                and guess.max() <= _SHARED_MAX_AGENTS:
            shared = None  # every interval on the shared-count recursion
        else:
            shared = _shared_path(a, guess)
            guess[~shared] = np.maximum(guess[~shared], 3.0)  # the recursion starts at >= 0
        state, denom = _window(a, guess, shared)
        if shared is not None:
            # so far above the load (an occupancy cap) that erlang_b may answer an exact 0
            # where the recursion underflows to a subnormal: settled with erlang_b itself
            unsure.append(np.flatnonzero(~shared & (state.min(axis=0) < _FAR_TAIL)))
        rows = guess - np.array([[2.0], [1.0], [0.0]])
        ok, wait2, no_wait2, level2, spare2 = _targets_met(
            rows[1:], state[1:], rows[1:] / denom[1:], a, neg_tau, aht, sl, max_asa,
            check_asa)
        ok[0] &= spare2[0] > 0  # g - 1 may be at or below the load; g never is
        if least is not None:
            ok[0] &= guess > least  # g - 1 >= least
        n = guess
        wait, no_wait, level, spare = wait2[1], no_wait2[1], level2[1], spare2[1]
        out = (wait, no_wait, level, spare)
        # Met at g - 1 already: the answer is g - 1 unless g - 2 meets them too.
        lower = np.flatnonzero(ok[0])
        if lower.size:
            n[lower] -= 1.0
            for arr, row in zip(out, (wait2, no_wait2, level2, spare2), strict=True):
                arr[lower] = row[0, lower]
            k = n[lower] - 1.0
            met, *_ = _targets_met(k, state[0, lower], k / denom[0, lower], a[lower],
                                   neg_tau[lower], aht[lower], _part(sl, lower),
                                   _part(max_asa, lower), check_asa)
            met &= k > a[lower]
            if least is not None:
                met &= k >= least[lower]
            unsure.append(lower[met])
        # Missed at g: one agent more at a time (without a limit in the noisy case)
        missed = ~(ok[0] | ok[1])
        if linear is not None:
            missed[linear] = False
            slow = linear[~(ok[0, linear] | ok[1, linear])]
            if slow.size:
                unsure.append(_step_up(slow, n, state[2], a, neg_tau, aht, sl, max_asa,
                                       check_asa, out, steps=None))
        higher = np.flatnonzero(missed)
        if higher.size:
            unsure.append(_step_up(higher, n, state[2], a, neg_tau, aht, sl, max_asa,
                                   check_asa, out))
        rest = np.concatenate(unsure) if unsure else higher
        if rest.size:
            _settle_by_bisection(rest, a, aht, sl, secs, max_asa, check_asa, least,
                                 n, wait, no_wait, level, spare)
    return n, wait, no_wait, level, spare


def _step_up(idx: npt.NDArray[np.intp], n: FloatArray, b_at_n: FloatArray, a: FloatArray,
             neg_tau: FloatArray, aht: FloatArray, sl: FloatArray, max_asa: FloatArray,
             check_asa: bool, out: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
             steps: int | None = 6) -> npt.NDArray[np.intp]:
    """Intervals that missed at n: add agents from the exact B at n, answers in place.

    ``out`` is (wait, no_wait, level, spare). Returns the intervals still unanswered after
    ``steps`` agents (None: no limit) or that reached the far tail (see _FAR_TAIL).
    """
    k = n[idx]
    b = b_at_n[idx]
    aa, nt, hh = a[idx], neg_tau[idx], aht[idx]
    ss, mm = _part(sl, idx), _part(max_asa, idx)
    todo = np.ones(idx.size, dtype=bool)
    far = np.zeros(idx.size, dtype=bool)
    for _ in itertools.count() if steps is None else range(steps):
        k = k + 1.0
        ab = aa * b
        denom = k + ab
        b = ab / denom  # the step of erlang_b's recursions
        if b.min() < _FAR_TAIL:
            far |= todo & (b < _FAR_TAIL) & ~_shared_path(aa, k)
            todo &= ~far
        met, *values = _targets_met(k, b, k / denom, aa, nt, hh, ss, mm, check_asa)
        new = np.flatnonzero(met & todo)
        if new.size:
            dst = idx[new]
            n[dst] = k[new]
            for arr, val in zip(out, values, strict=True):
                arr[dst] = val[new]
            todo[new] = False
        if not todo.any():
            break
    unanswered: npt.NDArray[np.intp] = idx[todo | far]
    return unanswered


def _settle_by_bisection(idx: npt.NDArray[np.intp], a: FloatArray, aht: FloatArray,
                         sl: FloatArray, secs: FloatArray, max_asa: FloatArray,
                         check_asa: bool, least: FloatArray | None, n: FloatArray,
                         wait: FloatArray, no_wait: FloatArray, level: FloatArray,
                         spare: FloatArray) -> None:
    """The slow, sure path: bisect with erlang_c itself and write the answers in place."""
    def met_at(i: npt.NDArray[np.intp], counts: FloatArray
               ) -> tuple[BoolArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        ai = a[i]
        b, bc = _erlang_b_flat(ai, counts)
        out = _targets_met(counts, b, bc, ai, -(_part(secs, i) / aht[i]), aht[i],
                           _part(sl, i), _part(max_asa, i), check_asa)
        met = out[0] & (counts > ai)
        if least is not None:
            met &= counts >= least[i]
        return (met,) + out[1:]

    def met(sub: npt.NDArray[np.intp], counts: FloatArray) -> BoolArray:
        return met_at(idx[sub], counts)[0]

    lo = np.floor(a[idx])  # never meets the targets
    if least is not None:
        lo = np.maximum(lo, least[idx] - 1.0)
    hi = np.maximum(np.ceil(a[idx] + 3.0 * np.sqrt(a[idx]) + 2.0), lo + 1.0)
    found = _bracket_and_bisect(met, lo, hi)
    _, w, nw, lv, sp = met_at(idx, found)
    n[idx], wait[idx], no_wait[idx], level[idx], spare[idx] = found, w, nw, lv, sp


def _reaches(values: FloatArray, bound: float) -> bool:
    """Is any value >= bound (valid, non-NaN values)?"""
    return float(values) >= bound if values.ndim == 0 else bool(values.max(initial=-np.inf)
                                                                 >= bound)


def _prepare_targets(target_sl: npt.ArrayLike | None, target_seconds: npt.ArrayLike,
                     max_occupancy: npt.ArrayLike | None, shrinkage: npt.ArrayLike,
                     target_asa: npt.ArrayLike | None
                     ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    sl = np.zeros(()) if target_sl is None else _floats(target_sl, "target_sl")
    if _reaches(sl, 1.0):
        raise ValueError("target_sl must be below 1 (100% needs infinitely many agents)")
    secs = _floats(target_seconds, "target_seconds")
    occ = np.ones(()) if max_occupancy is None else _floats(max_occupancy, "max_occupancy",
                                                             allow_low=False)
    if _reaches(occ, math.nextafter(1.0, 2.0)):
        raise ValueError("max_occupancy must be in (0, 1]")
    shr = _floats(shrinkage, "shrinkage")
    if _reaches(shr, 1.0):
        raise ValueError("shrinkage must be in [0, 1)")
    speed = np.full((), np.inf) if target_asa is None else _floats(target_asa, "target_asa",
                                                                  allow_low=False)
    return sl, secs, occ, shr, speed


def required_agents(calls: npt.ArrayLike, interval_seconds: npt.ArrayLike, aht: npt.ArrayLike,
                    target_sl: npt.ArrayLike | None, target_seconds: npt.ArrayLike,
                    max_occupancy: npt.ArrayLike | None = None, shrinkage: npt.ArrayLike = 0.0,
                    *, target_asa: npt.ArrayLike | None = None) -> StaffingRequirement:
    """Smallest Erlang C agent counts meeting the targets, for many intervals at once.

    ``calls`` arrive over ``interval_seconds`` with mean handle time ``aht`` seconds. The
    answer is the smallest n > A (a stable queue) with service level >= ``target_sl``
    within ``target_seconds``, occupancy <= ``max_occupancy`` and, if given, ASA <=
    ``target_asa`` seconds; ``seats`` is the smallest head count whose productive part
    ``seats (1 - shrinkage)`` covers n. Intervals without calls need 0 agents.
    The answer is never taken from a rounded A (A = 10.5 may need 11, not 12): every
    count is checked with the expressions of :func:`service_level` and :func:`asa`.
    """
    calls_a = _floats(calls, "calls")
    interval = _floats(interval_seconds, "interval_seconds", allow_low=False)
    handle = _floats(aht, "aht", allow_low=False)
    sl, secs, occ, shr, speed = _prepare_targets(target_sl, target_seconds, max_occupancy,
                                                 shrinkage, target_asa)
    shape = _common_shape(calls_a, interval, handle, sl, secs, occ, shr, speed)
    size = math.prod(shape)

    def flat(x: FloatArray) -> FloatArray:
        # 0-d arguments stay 0-d (they broadcast in every operation below, never copied)
        if x.ndim == 0:
            return x
        return x.reshape(-1) if x.shape == shape else np.broadcast_to(x, shape).ravel()

    cf, inf_, slf, sef, ocf, shf, spf = (flat(x) for x in (calls_a, interval, sl, secs, occ,
                                                            shr, speed))
    hf = handle.reshape(-1) if handle.shape == shape else \
        np.ascontiguousarray(np.broadcast_to(handle, shape)).reshape(-1)
    a = cf * hf / inf_
    if a.shape != (size,):  # calls, interval and AHT all single numbers, targets not
        a = np.full(size, a)
    # Idle intervals (no calls) are searched with a stand-in load and overwritten after:
    # cheaper than gathering the busy intervals and scattering their answers back.
    idle = a == 0
    any_idle = bool(idle.any())
    # An occupancy cap is a least count (occupancy A/n falls as n grows): the search starts
    # there, so with a service level that is not monotone at the last ulp (targets within
    # 1e-10 of 100%) the answer is still the first count meeting every target.
    least = None if max_occupancy is None else \
        np.maximum(_min_agents_for_occupancy(a, ocf), 1.0)
    n, wait, _, level, spare = _search_erlang_c(
        np.where(idle, 1.0, a) if any_idle else a, hf, slf, sef, spf, least)
    # Every busy interval is stable here (n > A): the ASA needs none of the unstable-queue
    # cases of asa (same expression otherwise).
    speed_of_answer = wait * hf / spare
    occ_out = np.minimum(a / n, 1.0)
    if any_idle:
        n[idle] = 0.0
        wait[idle] = 0.0
        level[idle] = 1.0
        speed_of_answer[idle] = 0.0
    seats = n if shf.ndim == 0 and float(shf) == 0.0 else _seats(n, shf)
    return StaffingRequirement(
        traffic=_shaped(a, shape),
        agents=_shaped_int(n, shape),
        seats=_shaped_int(seats, shape),
        service_level=_shaped(level, shape),
        asa=_shaped(speed_of_answer, shape),
        occupancy=_shaped(occ_out, shape),
        wait_probability=_shaped(wait, shape),
        abandon=_shaped(np.zeros(size), shape),
    )


# ----------------------------------------------------------------------------- Erlang A


@dataclass(frozen=True)
class ErlangAMetrics:
    """Erlang A (M/M/n+M) steady state, arrays of the broadcast shape.

    ``asa`` is the mean wait over all callers (answered and abandoned), which equals
    ``abandon x patience``; ``service_level`` counts abandoned callers as failures;
    ``wait_exceeds`` is P(a caller's wait, until answer or abandonment, exceeds t).
    ``service_level``, ``service_failure`` (= 1 - service_level, computed directly) and
    ``wait_exceeds`` are NaN when no ``target_seconds`` was given.
    """

    wait_probability: FloatArray
    abandon: FloatArray
    asa: FloatArray
    occupancy: FloatArray
    service_level: FloatArray
    service_failure: FloatArray
    wait_exceeds: FloatArray


def _one_minus_phi(x: FloatArray, phi: FloatArray) -> FloatArray:
    """1 - (1 - e^-x) / x without cancellation: its Taylor series below x = 1/2."""
    out = 1.0 - phi
    small = x < 0.5
    if small.any():
        xs = x[small]
        term = xs / 2.0
        total = term.copy()
        for k in range(2, 24):
            term = term * (-xs / (k + 1))
            total = total + term
        out[small] = total
    return out


def _erlang_a_flat(r: FloatArray, n: FloatArray, aht: FloatArray, patience: FloatArray,
                   t: FloatArray | None) -> dict[str, FloatArray]:
    """Erlang A on flat arrays (Palm; Garnett, Mandelbaum & Reiman 2002).

    With a = n patience / AHT, b = R patience / AHT and M(s, x) = Sum x^k / ((s+1)...(s+k)):
    P(W>0) = E / (E + (1 - E) / M(a, b)) with E = ErlangB(n, R); P(Ab | W>0) = V / b where V
    is the mean of k under the weights of M; late service and long waits are ratios
    P(a+1, bu) / P(a, b) and P(a, bu) / P(a, b), u = exp(-t / patience). Below b = a + 1 the
    ratios are taken as series ratios with an explicit, stable exponent; above, P(a, b) is
    near 1 and the continued fraction gives it directly. Every subtraction left is between
    quantities of different size.
    """
    size = r.size
    out = {key: np.full(size, np.nan) for key in
           ("wait", "abandon", "asa", "occupancy", "level", "failure", "exceeds")}
    e, ec = _erlang_b_flat(r, n)
    idle = r == 0
    nobody = ~idle & (n == 0)
    endless = ~idle & ~nobody & np.isinf(patience)
    instant = ~idle & ~nobody & (patience == 0)
    general = ~idle & ~nobody & ~endless & ~instant
    has_t = t is not None
    tt = t if t is not None else np.zeros(size)

    out["wait"][idle] = 0.0
    out["abandon"][idle] = 0.0
    out["asa"][idle] = 0.0
    out["occupancy"][idle] = 0.0
    if has_t:
        out["level"][idle] = 1.0
        out["failure"][idle] = 0.0
        out["exceeds"][idle] = 0.0

    if nobody.any():
        out["wait"][nobody] = 1.0
        out["abandon"][nobody] = 1.0
        out["asa"][nobody] = patience[nobody]
        out["occupancy"][nobody] = 0.0
        if has_t:
            out["level"][nobody] = 0.0
            out["failure"][nobody] = 1.0
            with np.errstate(invalid="ignore"):
                out["exceeds"][nobody] = np.exp(-tt[nobody] / patience[nobody])

    if endless.any():
        sel = endless
        c = _erlang_c_flat(r[sel], n[sel])
        out["wait"][sel] = c.wait
        out["abandon"][sel] = 0.0
        out["asa"][sel] = _asa_from(c, r[sel], aht[sel])
        out["occupancy"][sel] = _occupancy_flat(r[sel], n[sel])
        if has_t:
            level, late = _service_parts(c, r[sel], aht[sel], tt[sel])
            out["level"][sel] = level
            out["failure"][sel] = late
            out["exceeds"][sel] = late

    if instant.any():
        sel = instant
        out["wait"][sel] = e[sel]
        out["abandon"][sel] = e[sel]
        out["asa"][sel] = 0.0
        out["occupancy"][sel] = r[sel] * ec[sel] / n[sel]
        if has_t:
            out["level"][sel] = ec[sel]
            out["failure"][sel] = e[sel]
            out["exceeds"][sel] = 0.0

    if not general.any():
        return out
    g = np.flatnonzero(general)
    rr, nn, hh, pp = r[g], n[g], aht[g], patience[g]
    eg, ecg = e[g], ec[g]
    ratio = pp / hh  # mu / theta
    a = nn * ratio
    b = rr * ratio
    x0 = np.empty(g.size)  # 1 / M(a, b)
    one_minus_x0 = np.empty(g.size)
    mean_k = np.empty(g.size)  # V = Sum k t_k / Sum t_k
    m_ab = np.empty(g.size)
    series = b < a + 1.0
    if series.any():
        tail, total, moment = _kummer_series(a[series], b[series], with_moment=True)
        m_ab[series] = total
        x0[series] = 1.0 / total
        one_minus_x0[series] = tail / total
        mean_k[series] = moment / total
    cf = ~series
    p_ab = np.empty(g.size)
    if cf.any():
        ac, bc_ = a[cf], b[cf]
        pre = _gamma_prefix(ac, bc_)
        q = ac * pre * _gamma_cf(ac, bc_)
        p = 1.0 - q
        p_ab[cf] = p
        xc = pre / p
        x0[cf] = xc
        one_minus_x0[cf] = 1.0 - xc
        mean_k[cf] = (rr[cf] - nn[cf]) * ratio[cf] + ac * xc  # b - a >= 1 here: no cancellation

    wait = eg / (eg + ecg * x0)
    no_wait = ecg * x0 / (eg + ecg * x0)
    abandon_given_wait = mean_k / b
    abandon = wait * abandon_given_wait
    served_given_wait = (nn / rr) * one_minus_x0  # (a / b)(1 - 1/M)
    out["wait"][g] = wait
    out["abandon"][g] = abandon
    out["asa"][g] = abandon * pp
    out["occupancy"][g] = rr * no_wait / nn + wait * one_minus_x0

    if has_t:
        tg = tt[g]
        theta_t = tg / pp
        u = np.exp(-theta_t)
        bu = b * u
        late_ratio = np.empty(g.size)  # P(a+1, bu) / P(a, b)
        long_ratio = np.empty(g.size)  # P(a, bu) / P(a, b)
        if series.any():
            s_a, s_b, s_bu = a[series], b[series], bu[series]
            _, m1, _ = _kummer_series(s_a + 1.0, s_bu)
            # b sigma - a theta t = (t / AHT) ((R - n) phi - n (1 - phi)), phi = sigma / theta t
            x = theta_t[series]
            with np.errstate(divide="ignore", invalid="ignore"):
                phi = np.where(x > 0, -np.expm1(-x) / x, 1.0)
            expo = tg[series] / hh[series] * ((rr[series] - nn[series]) * phi
                                              - nn[series] * _one_minus_phi(x, phi))
            with np.errstate(over="ignore", under="ignore"):
                late_ratio[series] = (s_b / (s_a + 1.0)) * np.exp(expo - theta_t[series]) \
                    * m1 / m_ab[series]
                long_ratio[series] = np.exp(expo) * (1.0 + s_bu / (s_a + 1.0) * m1) / m_ab[series]
        if cf.any():
            c_a, c_bu = a[cf], bu[cf]
            p_late, _ = _reg_gamma_pair(c_a + 1.0, c_bu)
            safe_bu = np.where(c_bu > 0, c_bu, 1.0)
            p_long = p_late + np.where(c_bu > 0, _gamma_prefix(c_a, safe_bu), 0.0)
            late_ratio[cf] = p_late / p_ab[cf]
            long_ratio[cf] = p_long / p_ab[cf]
        late_given_wait = (nn / rr) * late_ratio
        failure = wait * (abandon_given_wait + late_given_wait)
        direct = no_wait + wait * (served_given_wait - late_given_wait)
        level = np.where(failure <= 0.5, 1.0 - failure, direct)
        out["level"][g] = np.clip(level, 0.0, 1.0)
        out["failure"][g] = failure
        out["exceeds"][g] = wait * u * long_ratio
    return out


def _erlang_a_inputs(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                     patience: npt.ArrayLike, target_seconds: npt.ArrayLike | None
                     ) -> tuple[tuple[int, ...], dict[str, FloatArray]]:
    load = _floats(traffic, "traffic")
    count = _agent_counts(agents)
    handle = _floats(aht, "aht", allow_low=False)
    wait_limit = _floats(patience, "patience", allow_inf=True)
    if target_seconds is None:
        shape, (lf, cf, hf, pf) = _flat(load, count, handle, wait_limit)
        return shape, _erlang_a_flat(lf, cf, hf, pf, None)
    secs = _floats(target_seconds, "target_seconds")
    shape, (lf, cf, hf, pf, sf) = _flat(load, count, handle, wait_limit, secs)
    return shape, _erlang_a_flat(lf, cf, hf, pf, sf)


def erlang_a_metrics(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                     patience: npt.ArrayLike, target_seconds: npt.ArrayLike | None = None
                     ) -> ErlangAMetrics:
    """All Erlang A quantities in one pass (exponential patience of mean ``patience`` s).

    ``patience = inf`` is Erlang C; ``patience = 0`` is a loss system (Erlang B).
    """
    shape, res = _erlang_a_inputs(traffic, agents, aht, patience, target_seconds)
    return ErlangAMetrics(
        wait_probability=_shaped(res["wait"], shape),
        abandon=_shaped(res["abandon"], shape),
        asa=_shaped(res["asa"], shape),
        occupancy=_shaped(res["occupancy"], shape),
        service_level=_shaped(res["level"], shape),
        service_failure=_shaped(res["failure"], shape),
        wait_exceeds=_shaped(res["exceeds"], shape),
    )


def erlang_a_wait(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                  patience: npt.ArrayLike) -> FloatArray:
    """Erlang A probability that a caller has to wait (finds every agent busy)."""
    return erlang_a_metrics(traffic, agents, aht, patience).wait_probability


def erlang_a_abandon(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                     patience: npt.ArrayLike) -> FloatArray:
    """Erlang A probability that a caller hangs up before being answered."""
    return erlang_a_metrics(traffic, agents, aht, patience).abandon


def erlang_a_asa(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                 patience: npt.ArrayLike) -> FloatArray:
    """Erlang A mean wait in seconds over all callers (answered or abandoned).

    Always finite: abandonment keeps the queue stable even with fewer agents than Erlangs.
    """
    return erlang_a_metrics(traffic, agents, aht, patience).asa


def erlang_a_occupancy(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                       patience: npt.ArrayLike) -> FloatArray:
    """Erlang A agent occupancy: carried load ``A (1 - P(Ab))`` over agents."""
    return erlang_a_metrics(traffic, agents, aht, patience).occupancy


def erlang_a_service_level(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                           patience: npt.ArrayLike, target_seconds: npt.ArrayLike
                           ) -> FloatArray:
    """Erlang A share of callers answered within ``target_seconds`` (abandons fail)."""
    return erlang_a_metrics(traffic, agents, aht, patience, target_seconds).service_level


def erlang_a_wait_exceeds(traffic: npt.ArrayLike, agents: npt.ArrayLike, aht: npt.ArrayLike,
                          patience: npt.ArrayLike, seconds: npt.ArrayLike) -> FloatArray:
    """Erlang A probability that a caller is still waiting after ``seconds``."""
    return erlang_a_metrics(traffic, agents, aht, patience, seconds).wait_exceeds


def _erlang_a_targets_met(r: FloatArray, n: FloatArray, aht: FloatArray, patience: FloatArray,
                          sl: FloatArray, secs: FloatArray, max_ab: FloatArray,
                          max_occ: FloatArray) -> BoolArray:
    res = _erlang_a_flat(r, n, aht, patience, secs)
    ok: BoolArray = res["level"] >= sl  # the very expression erlang_a_service_level returns
    ok &= res["abandon"] <= max_ab
    ok &= res["occupancy"] <= max_occ
    return ok


def _bracket_and_bisect(met: Callable[[npt.NDArray[np.intp], FloatArray], BoolArray],
                        lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Smallest n > lo with met(n), given met(lo) false and met monotone.

    ``hi`` is a first guess of an upper end: where it does not meet the targets it becomes
    the lower end and the upper one doubles (2 hi + 1) until it does; then bisection.
    ``lo`` and ``hi`` are updated in place while bracketing.
    """
    bad = ~met(np.arange(hi.size), hi)
    while bad.any():
        lo[bad] = hi[bad]
        hi[bad] = hi[bad] * 2.0 + 1.0
        sub = np.flatnonzero(bad)
        bad[sub] = ~met(sub, hi[sub])
    return _bisect_agents(met, lo, hi)


def _bisect_agents(met: Callable[[npt.NDArray[np.intp], FloatArray], BoolArray],
                   lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Smallest n in (lo, hi] with met(n), given met(lo) false, met(hi) true, met monotone."""
    lo = lo.copy()
    hi = hi.copy()
    idx = np.flatnonzero(hi - lo > 1)
    while idx.size:
        mid = np.floor((lo[idx] + hi[idx]) / 2.0)
        ok = met(idx, mid)
        hi[idx[ok]] = mid[ok]
        lo[idx[~ok]] = mid[~ok]
        idx = idx[hi[idx] - lo[idx] > 1]
    return hi


def erlang_a_required_agents(calls: npt.ArrayLike, interval_seconds: npt.ArrayLike,
                             aht: npt.ArrayLike, patience: npt.ArrayLike,
                             target_sl: npt.ArrayLike | None = None,
                             target_seconds: npt.ArrayLike = 20.0,
                             max_abandon: npt.ArrayLike | None = None,
                             max_occupancy: npt.ArrayLike | None = None,
                             shrinkage: npt.ArrayLike = 0.0) -> StaffingRequirement:
    """Smallest Erlang A agent counts meeting a service level and/or abandonment cap.

    Unlike Erlang C this may staff below the load: callers who give up keep the queue
    finite. The search brackets every interval (lower end from the flow bound
    P(Ab) >= 1 - n/A, upper end doubled until the targets hold) and bisects all intervals
    together. ``patience = inf`` gives the Erlang C answer.
    """
    if target_sl is None and max_abandon is None and max_occupancy is None:
        raise ValueError("give target_sl, max_abandon or max_occupancy")
    calls_a = _floats(calls, "calls")
    interval = _floats(interval_seconds, "interval_seconds", allow_low=False)
    handle = _floats(aht, "aht", allow_low=False)
    wait_limit = _floats(patience, "patience", allow_inf=True)
    sl, secs, occ, shr, _ = _prepare_targets(target_sl, target_seconds, max_occupancy,
                                             shrinkage, None)
    cap = np.ones(()) if max_abandon is None else _floats(max_abandon, "max_abandon")
    shape, (cf, inf_, hf, pf, slf, sef, ocf, shf, capf) = _flat(
        calls_a, interval, handle, wait_limit, sl, secs, occ, shr, cap)
    r = cf * hf / inf_
    n = np.zeros_like(r)
    endless = np.isinf(pf) & (r > 0)
    if endless.any():
        sel = endless
        n[sel] = _search_erlang_c(r[sel], hf[sel], slf[sel], sef[sel], np.full((), np.inf),
                                  _min_agents_for_occupancy(r[sel], ocf[sel]))[0]
    work = (r > 0) & ~endless
    if work.any():
        w = np.flatnonzero(work)
        rw, hw, pw, slw, sew, ocw, capw = r[w], hf[w], pf[w], slf[w], sef[w], ocf[w], capf[w]
        if (capw <= 0).any():
            raise ValueError("max_abandon must be > 0 when callers can abandon")

        def met(sub: npt.NDArray[np.intp], counts: FloatArray) -> BoolArray:
            return _erlang_a_targets_met(rw[sub], counts, hw[sub], pw[sub], slw[sub], sew[sub],
                                         capw[sub], ocw[sub])

        # Served callers carry at most n Erlangs, so P(Ab) >= 1 - n/A and SL <= n/A:
        # any n below A (1 - min(cap, 1 - SL)) misses a target.
        slack = np.minimum(capw, 1.0 - slw)
        lo = np.maximum(np.floor(rw * (1.0 - slack) * (1.0 - 1e-9)) - 1.0, -1.0)
        hi = np.maximum(np.ceil(rw + 3.0 * np.sqrt(rw) + 2.0), lo + 1.0)
        n[w] = _bracket_and_bisect(met, lo, hi)
    res = _erlang_a_flat(r, n, hf, pf, sef)
    return StaffingRequirement(
        traffic=_shaped(r, shape),
        agents=_shaped_int(n, shape),
        seats=_shaped_int(_seats(n, shf), shape),
        service_level=_shaped(res["level"], shape),
        asa=_shaped(res["asa"], shape),
        occupancy=_shaped(res["occupancy"], shape),
        wait_probability=_shaped(res["wait"], shape),
        abandon=_shaped(res["abandon"], shape),
    )
