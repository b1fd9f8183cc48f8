"""Exactness, edge cases and minimality of callcenter.staffing.erlang.

References are computed with mpmath at 50-60 significant digits from formulas independent
of the implementation (incomplete gamma functions, not the recursions the module uses).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from callcenter import staffing
from callcenter.staffing import erlang
from callcenter.staffing.erlang import (
    asa,
    erlang_a_abandon,
    erlang_a_asa,
    erlang_a_metrics,
    erlang_a_required_agents,
    erlang_a_service_level,
    erlang_a_wait,
    erlang_b,
    erlang_c,
    occupancy,
    regularized_gamma_p,
    regularized_gamma_q,
    required_agents,
    service_level,
    wait_exceeds,
)

mp.mp.dps = 60
TOL = 1e-12
AGENTS = [1, 2, 3, 14, 50, 500, 5000, 10000]
# Load as a share of the agent count: light, typical, and within 0.1% / 0.01% / 1e-7 of it.
LOADS = [0.01, 0.2, 0.66, 0.9, 0.99, 0.999, 0.9999, 1 - 1e-7]


def ref_erlang_b(traffic: float, agents: int) -> mp.mpf:
    a = mp.mpf(traffic)
    log_mass = agents * mp.log(a) - a - mp.loggamma(agents + 1)
    return mp.exp(log_mass) / mp.gammainc(agents + 1, a, mp.inf, regularized=True)


def ref_erlang_c(traffic: float, agents: int) -> mp.mpf:
    b = ref_erlang_b(traffic, agents)
    a = mp.mpf(traffic)
    return agents * b / (agents - a + a * b)


def ref_reg_p(s: mp.mpf, x: mp.mpf) -> mp.mpf:
    if x < s:
        return mp.gammainc(s, 0, x, regularized=True)
    return 1 - mp.gammainc(s, x, mp.inf, regularized=True)


def ref_erlang_a(traffic: float, agents: int, aht: float, patience: float,
                 seconds: float) -> dict[str, mp.mpf]:
    """Garnett, Mandelbaum & Reiman (2002) formulas, as written in ERLANG.md."""
    r, h, p, t = (mp.mpf(v) for v in (traffic, aht, patience, seconds))
    e = ref_erlang_b(traffic, agents)
    a, b = agents * p / h, r * p / h
    p_ab = ref_reg_p(a, b)
    acal = mp.exp(mp.log(a) + b - a * mp.log(b) + mp.loggamma(a)) * p_ab
    wait = 1 / (1 + (1 / e - 1) / acal)
    rho = r / agents
    abandon_given_wait = 1 / (rho * acal) + 1 - 1 / rho
    u = mp.exp(-t / p)
    late = (a / b) * ref_reg_p(a + 1, b * u) / p_ab
    level = 1 - wait + wait * (a / b) * (ref_reg_p(a + 1, b) - ref_reg_p(a + 1, b * u)) / p_ab
    return {
        "wait_probability": wait,
        "abandon": wait * abandon_given_wait,
        "asa": wait * abandon_given_wait * p,
        "occupancy": r * (1 - wait * abandon_given_wait) / agents,
        "service_level": level,
        "service_failure": wait * (abandon_given_wait + late),
        "wait_exceeds": wait * u * ref_reg_p(a, b * u) / p_ab,
    }


def rel_err(value: float, ref: mp.mpf) -> float:
    """Relative error; a reference below float64's range must come out as (near) 0."""
    if abs(ref) < mp.mpf("1e-300"):
        return 0.0 if abs(float(value)) < 1e-290 else 1.0
    return float(abs(mp.mpf(float(value)) - ref) / abs(ref))


# ------------------------------------------------------------------------ exactness


def test_erlang_b_matches_mpmath_from_1_to_10000_agents() -> None:
    """Erlang B keeps 1e-12 relative error at light, saturated and overloaded traffic."""
    worst = 0.0
    for n in AGENTS:
        for share in [*LOADS, 1.0, 1.001, 1.5, 3.0]:
            traffic = n * share
            worst = max(worst, rel_err(erlang_b(traffic, n), ref_erlang_b(traffic, n)))
    assert worst < TOL


def test_erlang_c_service_level_and_asa_match_mpmath_near_saturation() -> None:
    """C, SL, 1 - SL and ASA stay exact up to traffic within 1e-7 of the agent count."""
    aht, target = 180.0, 20.0
    for n in AGENTS:
        for share in LOADS:
            traffic = n * share
            c = ref_erlang_c(traffic, n)
            spare = n - mp.mpf(traffic)
            late = c * mp.exp(-spare * target / aht)
            assert rel_err(erlang_c(traffic, n), c) < TOL, (n, traffic)
            assert rel_err(asa(traffic, n, aht), c * aht / spare) < TOL, (n, traffic)
            # the tail is compared on its own: 1 - SL is tiny when SL is close to 1
            assert rel_err(wait_exceeds(traffic, n, aht, target), late) < TOL, (n, traffic)
            assert rel_err(service_level(traffic, n, aht, target), 1 - late) < TOL, (n, traffic)


def test_non_integer_traffic_and_long_targets_match_mpmath() -> None:
    """Fractional Erlangs and target times of many handle times lose no precision."""
    for traffic, n, aht, target in [(0.37, 1, 60.0, 5.0), (10.5, 11, 60.0, 300.0),
                                    (123.456, 140, 240.0, 600.0), (2.5, 50, 180.0, 20.0)]:
        c = ref_erlang_c(traffic, n)
        late = c * mp.exp(-(n - mp.mpf(traffic)) * target / aht)
        assert rel_err(erlang_c(traffic, n), c) < TOL
        assert rel_err(wait_exceeds(traffic, n, aht, target), late) < TOL


ERLANG_A_POINTS = [
    (n, n * share, patience)
    for n in (1, 2, 14, 500, 5000, 10000)
    for share in (0.3, 0.95, 1.0, 1.05, 1.5)
    for patience in (1.0, 180.0, 600.0)
    if not (n >= 5000 and share == 1.5 and patience == 600.0)  # too slow/hard for mpmath
] + [(14, 10.0, 1e4), (500, 490.0, 1e4), (2, 3.0, 1e4), (5000, 4000.0, 1.0)]


def test_erlang_a_matches_mpmath_including_overload() -> None:
    """Erlang A P(wait), P(abandon), ASA, occupancy, SL, 1 - SL and P(W > t) are exact.

    The service level is compared relatively where it is >= 1e-3 and absolutely below
    (there it is a difference of two nearly equal probabilities); its complement and the
    long-wait tail are always compared relatively.
    """
    aht, target = 180.0, 20.0
    for n, traffic, patience in ERLANG_A_POINTS:
        got = erlang_a_metrics(traffic, n, aht, patience, target)
        ref = ref_erlang_a(traffic, n, aht, patience, target)
        for name, value in ref.items():
            err = rel_err(getattr(got, name), value)
            if name == "service_level" and value < 1e-3:
                err = float(abs(mp.mpf(float(got.service_level)) - value))
            assert err < TOL, (name, n, traffic, patience, err)


def test_erlang_a_matches_a_direct_birth_death_chain() -> None:
    """An independent check: the M/M/n+M chain summed state by state in mpmath."""
    traffic, n, aht, patience = 7.3, 6, 200.0, 90.0
    lam, mu, theta = mp.mpf(traffic) / aht, 1 / mp.mpf(aht), 1 / mp.mpf(patience)
    weights = [mp.mpf(1)]
    for j in range(1, 400):
        weights.append(weights[-1] * lam / (min(j, n) * mu + max(j - n, 0) * theta))
    total = mp.fsum(weights)
    wait = mp.fsum(weights[n:]) / total
    queue = mp.fsum((j - n) * w for j, w in enumerate(weights) if j > n) / total
    abandon = theta * queue / lam
    assert rel_err(erlang_a_wait(traffic, n, aht, patience), wait) < TOL
    assert rel_err(erlang_a_abandon(traffic, n, aht, patience), abandon) < TOL
    assert rel_err(erlang_a_asa(traffic, n, aht, patience), queue / lam) < TOL


def test_regularized_gamma_matches_mpmath() -> None:
    """The in-house P(s, x) and Q(s, x) are accurate to 1e-13 on both sides of x = s.

    Deep tails (values like 1e-235) are exp() of a large logarithm, and float64 rounding
    of that logarithm costs ~|ln P| ulps: the tolerance grows by 5e-16 |ln P|.
    """
    for s in (0.01, 0.5, 1.0, 7.3, 100.0, 5000.0, 1e5):
        for x in (s * 0.2, s * 0.9, s, s + 1, s * 1.1, s * 3 + 5):
            p = ref_reg_p(mp.mpf(s), mp.mpf(x))
            for got, ref in ((regularized_gamma_p(s, x), p), (regularized_gamma_q(s, x), 1 - p)):
                tol = 1e-13 + 5e-16 * abs(float(mp.log(ref)))
                assert rel_err(got, ref) < tol, (s, x)


# ------------------------------------------------------------------- worked examples


def test_erlang_c_worked_example_100_calls_per_half_hour() -> None:
    """ERLANG.md: A = 10, AHT 180 s, 20 s target: C, SL, ASA, occupancy for 11-14 agents."""
    expected = {11: (0.6821182047, 0.3896138117), 12: (0.4493882243, 0.6401580404),
                13: (0.285270453, 0.7955947884), 14: (0.1741319336, 0.8883500192)}
    for n, (c, sl) in expected.items():
        assert erlang_c(10, n) == pytest.approx(c, abs=1e-9)
        assert service_level(10, n, 180, 20) == pytest.approx(sl, abs=1e-9)
    assert asa(10, 14, 180) == pytest.approx(7.835937, abs=1e-6)
    assert occupancy(10, 14) == pytest.approx(0.7143, abs=1e-4)
    plan = required_agents(100, 1800, 180, 0.8, 20, shrinkage=0.3)
    assert (int(plan.agents), int(plan.seats)) == (14, 20)
    assert float(plan.service_level) == pytest.approx(0.8883500192, abs=1e-9)


def test_erlang_b_worked_examples() -> None:
    """ERLANG.md: loads carried at 1% blocking, and B(16), B(17) at 10 Erlangs."""
    assert erlang_b(8.1080428, 15) == pytest.approx(0.01, rel=1e-6)
    assert erlang_b(4.4611769, 10) == pytest.approx(0.01, rel=1e-6)
    assert erlang_b(84.064159, 100) == pytest.approx(0.01, rel=1e-6)
    assert erlang_b(10, 16) == pytest.approx(0.022301872, abs=1e-9)
    assert erlang_b(10, 17) == pytest.approx(0.012948875, abs=1e-9)


def test_erlang_a_worked_example() -> None:
    """ERLANG.md: 10/3 calls a minute, AHT 3 min, patience 5 min, 14 agents, 20 s."""
    m = erlang_a_metrics(10.0, 14, 180.0, 300.0, 20.0)
    assert m.wait_probability == pytest.approx(0.1452601143, abs=1e-10)
    assert m.abandon == pytest.approx(0.01398374412, abs=1e-11)
    assert m.asa / 60 == pytest.approx(0.06991872061, abs=1e-11)
    assert m.occupancy == pytest.approx(0.7042973256, abs=1e-10)
    assert m.service_level == pytest.approx(0.9167920919, abs=1e-10)
    assert m.wait_exceeds == pytest.approx(0.07604397273, abs=1e-11)
    assert erlang_a_service_level(10.0, 14, 180.0, 300.0, 20.0) == m.service_level


# ------------------------------------------------------------------------ edge cases


def test_agents_at_or_below_traffic_wait_surely_with_infinite_asa() -> None:
    """N <= A gives C = 1, SL = 0, ASA = inf and occupancy 1: no NaN, no exception."""
    traffic = np.array([10.0, 10.0, 10.5, 1e4])
    agents = np.array([10, 3, 10, 9999])
    assert np.array_equal(erlang_c(traffic, agents), np.ones(4))
    assert np.array_equal(service_level(traffic, agents, 180, 20), np.zeros(4))
    assert np.array_equal(wait_exceeds(traffic, agents, 180, 20), np.ones(4))
    assert np.isinf(asa(traffic, agents, 180)).all()
    assert np.array_equal(occupancy(traffic, agents), np.ones(4))


def test_zero_agents_and_zero_traffic() -> None:
    """No agents blocks and queues everything; no traffic means nobody waits."""
    assert erlang_b(5.0, 0) == 1.0
    assert erlang_c(5.0, 0) == 1.0
    assert math.isinf(asa(5.0, 0, 180))
    assert occupancy(5.0, 0) == 0.0
    assert erlang_b(0.0, 3) == 0.0
    assert erlang_c(0.0, 3) == 0.0
    assert service_level(0.0, 0, 180, 20) == 1.0
    assert asa(0.0, 0, 180) == 0.0
    m = erlang_a_metrics(5.0, 0, 180.0, 60.0, 20.0)
    assert (m.wait_probability, m.abandon, m.service_level, m.asa) == (1.0, 1.0, 0.0, 60.0)


def test_broadcasting_shapes_and_scalar_results() -> None:
    """Arguments broadcast like ufuncs; scalar calls return numpy scalars."""
    traffic = np.linspace(1.0, 40.0, 12).reshape(3, 4, 1)
    agents = np.arange(41, 43).reshape(1, 1, 2)
    assert erlang_c(traffic, agents).shape == (3, 4, 2)
    assert service_level(traffic, agents, [[[180.0]]], 20).shape == (3, 4, 2)
    assert erlang_a_wait(traffic, agents, 180.0, 120.0).shape == (3, 4, 2)
    assert isinstance(erlang_c(10, 14), float)
    expected = [float(erlang_c(t, 42)) for t in traffic.ravel()]
    assert erlang_c(traffic.ravel(), 42).tolist() == expected
    plan = required_agents([[100, 0], [250, 50]], 1800, 180, 0.8, 20)
    assert plan.agents.shape == (2, 2) and plan.agents.dtype == np.int64


def test_mixed_batches_give_the_same_answers_as_single_calls() -> None:
    """The lockstep recursion over a batch does not couple elements of different size."""
    traffic = np.array([0.5, 3.0, 950.0, 9990.0, 2.0])
    agents = np.array([1, 40, 1000, 10000, 1])
    batch = erlang_b(traffic, agents)
    single = [float(erlang_b(t, n)) for t, n in zip(traffic, agents, strict=True)]
    np.testing.assert_allclose(batch, single, rtol=1e-14)


def test_invalid_arguments_are_rejected() -> None:
    """Fractional or negative agents, negative or NaN traffic and bad targets raise."""
    with pytest.raises(ValueError, match="whole numbers"):
        erlang_c(10, 12.5)
    with pytest.raises(ValueError, match="agents"):
        erlang_c(10, -1)
    with pytest.raises(ValueError, match="traffic"):
        erlang_b(-1.0, 3)
    with pytest.raises(ValueError, match="NaN"):
        erlang_b(float("nan"), 3)
    with pytest.raises(ValueError, match="target_sl"):
        required_agents(100, 1800, 180, 1.0, 20)
    with pytest.raises(ValueError, match="shrinkage"):
        required_agents(100, 1800, 180, 0.8, 20, shrinkage=1.0)
    with pytest.raises(ValueError, match="max_occupancy"):
        required_agents(100, 1800, 180, 0.8, 20, max_occupancy=0.0)


def test_erlang_a_limits_are_erlang_c_and_erlang_b() -> None:
    """Infinite patience is Erlang C; zero patience is the Erlang B loss system."""
    c = erlang_a_metrics(10.0, 14, 180.0, math.inf, 20.0)
    assert c.wait_probability == erlang_c(10, 14)
    assert c.service_level == service_level(10, 14, 180, 20)
    assert c.abandon == 0.0
    loss = erlang_a_metrics(10.0, 14, 180.0, 0.0, 20.0)
    assert loss.wait_probability == erlang_b(10, 14) == loss.abandon
    assert loss.service_level == pytest.approx(1 - erlang_b(10, 14), rel=1e-15)


def test_erlang_a_is_finite_below_the_load() -> None:
    """With abandonment, fewer agents than Erlangs is a finite operating point."""
    m = erlang_a_metrics(50.0, 40, 180.0, 120.0, 20.0)
    assert 0.0 < m.abandon < 1.0 and math.isfinite(m.asa)
    assert m.occupancy < 1.0 and 0.0 < m.service_level < 1.0


# ------------------------------------------------------------------ required agents


def test_required_agents_is_minimal_across_many_intervals() -> None:
    """Each answer meets every target and one agent fewer misses one (random intervals)."""
    rng = np.random.default_rng(7)
    size = 600
    calls = rng.uniform(0, 2500, size)
    calls[:10] = 0
    aht = rng.uniform(30, 600, size)
    sl = rng.uniform(0.5, 0.99, size)
    secs = rng.uniform(0, 120, size)
    plan = required_agents(calls, 1800, aht, sl, secs, max_occupancy=0.9)
    a, n = plan.traffic, plan.agents
    busy = a > 0

    def meets(k: np.ndarray) -> np.ndarray:
        return (k > a) & (service_level(a, k, aht, secs) >= sl) & (occupancy(a, k) <= 0.9)

    assert meets(n)[busy].all()
    assert not meets(np.maximum(n - 1, 0))[busy].any()
    assert (n[~busy] == 0).all()
    np.testing.assert_array_equal(plan.service_level, service_level(a, n, aht, secs))


def test_required_agents_starts_at_floor_not_rounded_load() -> None:
    """A = 10.5 with a 5 min target at 80% needs 11 agents (round-half-even would say 12)."""
    plan = required_agents(10.5, 60, 60, 0.8, 300)
    assert int(plan.agents) == 11
    assert service_level(10.5, 11, 60, 300) >= 0.8


def test_full_occupancy_cap_on_integer_load_needs_one_more_agent() -> None:
    """max_occupancy = 1 with A = 10 gives 11 agents (stable queue), not a division by 0."""
    plan = required_agents(10, 60, 60, 0.0, 20, max_occupancy=1.0)
    assert int(plan.agents) == 11
    capped = required_agents(80, 3600, 360, 0.5, 20, max_occupancy=0.8)
    assert int(capped.agents) == 10 and float(capped.occupancy) == 0.8


def test_asa_target_and_shrinkage_seats() -> None:
    """An ASA target adds agents until ASA fits; seats round decimal shrinkage sanely."""
    plan = required_agents(100, 1800, 180, None, 20, target_asa=10.0)
    n = int(plan.agents)
    assert asa(10, n, 180) <= 10.0 < asa(10, n - 1, 180)
    seats = required_agents([100, 100], 1800, 180, 0.8, 20, shrinkage=[0.3, 0.25]).seats
    assert seats.tolist() == [20, 19]


def test_erlang_a_required_agents_is_minimal_and_may_staff_below_load() -> None:
    """Erlang A answers meet SL and abandonment caps, one fewer misses, some below A."""
    rng = np.random.default_rng(3)
    size = 300
    calls = rng.uniform(1, 2000, size)
    aht = rng.uniform(60, 600, size)
    patience = rng.uniform(10, 900, size)
    sl = rng.uniform(0.3, 0.95, size)
    cap = rng.uniform(0.01, 0.3, size)
    plan = erlang_a_required_agents(calls, 1800, aht, patience, sl, 20.0, max_abandon=cap)
    a, n = plan.traffic, plan.agents

    def meets(k: np.ndarray) -> np.ndarray:
        return ((erlang_a_service_level(a, k, aht, patience, 20.0) >= sl)
                & (erlang_a_abandon(a, k, aht, patience) <= cap))

    assert meets(n).all()
    assert not meets(n - 1).any()
    assert (n < a).any()


def test_erlang_a_required_agents_with_endless_patience_is_erlang_c() -> None:
    """patience = inf gives exactly the Erlang C answer."""
    a_plan = erlang_a_required_agents([100, 400], 1800, 180, math.inf, 0.8, 20)
    c_plan = required_agents([100, 400], 1800, 180, 0.8, 20)
    assert a_plan.agents.tolist() == c_plan.agents.tolist()


def test_public_names_are_locked() -> None:
    """The package re-exports the API the rest of the engine calls."""
    assert set(staffing.__all__) <= set(erlang.__all__)
    for name in ("erlang_b", "erlang_c", "service_level", "asa", "occupancy",
                 "required_agents", "erlang_a_wait", "erlang_a_abandon",
                 "erlang_a_service_level", "erlang_a_asa", "erlang_a_required_agents"):
        assert callable(getattr(staffing, name))


def test_required_agents_batch_with_idle_intervals_and_per_interval_targets() -> None:
    # One vectorised call mixing idle intervals, scalar and per-interval targets gives, for
    # every interval, exactly what a call for that interval alone gives.
    calls = np.array([[0.0, 3.0, 40.0, 0.0], [250.0, 1.0, 0.0, 900.0]])
    aht = np.array([[180.0, 240.0, 300.0, 200.0], [150.0, 600.0, 120.0, 210.0]])
    sl = np.array([0.8, 0.9, 0.5, 0.95])
    req = required_agents(calls, 900.0, aht, sl, 20.0, max_occupancy=0.9, shrinkage=0.25,
                          target_asa=30.0)
    for (q, i), n_calls in np.ndenumerate(calls):
        one = required_agents(n_calls, 900.0, aht[q, i], sl[i], 20.0, max_occupancy=0.9,
                              shrinkage=0.25, target_asa=30.0)
        for field in ("traffic", "agents", "seats", "service_level", "asa", "occupancy",
                      "wait_probability", "abandon"):
            assert getattr(req, field)[q, i] == getattr(one, field), (field, q, i)
    assert req.agents[0, 0] == 0 and req.seats[1, 2] == 0 and req.asa[0, 3] == 0.0
    assert req.service_level[0, 0] == 1.0 and req.wait_probability[1, 2] == 0.0


# ------------------------------------------- required agents: the guessed-window search

FIELDS = ("traffic", "agents", "seats", "service_level", "asa", "occupancy",
          "wait_probability", "abandon")


def linear_search(a: np.ndarray, aht: np.ndarray, sl: np.ndarray, secs: np.ndarray,
                  max_asa: np.ndarray, max_occ: np.ndarray) -> np.ndarray:
    """The first count meeting every target, trying one agent after another.

    Each count is judged with the public service_level, asa and occupancy. The walk starts
    at floor(A) + 1, or at the count the occupancy cap needs if that is higher (occupancy
    A/n only falls as n grows, so no count below it can meet the cap).
    """
    n = np.maximum(np.floor(a) + 1.0, np.ceil(a / max_occ) - 1.0)
    while True:
        todo = np.flatnonzero(~((service_level(a, n, aht, secs) >= sl)
                                & (asa(a, n, aht) <= max_asa)
                                & (occupancy(a, n) <= max_occ)) & (a > 0))
        if not todo.size:
            return np.where(a > 0, n, 0.0)
        n[todo] += 1.0


def random_intervals(rng: np.random.Generator, size: int, kind: int
                     ) -> tuple[np.ndarray, ...]:
    """Loads, AHT and targets for one batch; kind picks the load range."""
    low, high = [(1e-6, 3000.0), (1e-300, 1e-3), (55.0, 75.0), (0.2, 40.0)][kind]
    a = np.exp(rng.uniform(math.log(low), math.log(high), size))
    if kind == 3:
        a = np.floor(a) + (rng.random(size) < 0.5) * 0.5  # whole and half loads
    a[rng.random(size) < 0.05] = 0.0
    aht = rng.uniform(10.0, 900.0, size)
    sl = rng.choice([0.0, 0.01, 0.5, 0.8, 0.95, 0.999, 1 - 1e-9, 1 - 2**-52], size)
    secs = rng.choice([0.0, 1.0, 20.0, 60.0, 600.0, 1e5], size)
    max_asa = np.where(rng.random(size) < 0.3, rng.uniform(0.1, 300.0, size), 1e300)
    max_occ = np.where(rng.random(size) < 0.3, rng.uniform(0.5, 1.0, size), 1.0)
    return a, aht, sl, secs, max_asa, max_occ


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_required_agents_equals_a_linear_search(kind: int) -> None:
    """Tiny to large loads, targets near 0 and 1, ASA and occupancy caps: the answers are
    those of trying one agent after another, and every reported figure is the public
    function's value at the answer, bit for bit."""
    rng = np.random.default_rng(100 + kind)
    a, aht, sl, secs, max_asa, max_occ = random_intervals(rng, 250, kind)
    calls = a * 1800.0 / aht
    plan = required_agents(calls, 1800.0, aht, sl, secs, max_occ, target_asa=max_asa)
    load = plan.traffic
    np.testing.assert_array_equal(
        plan.agents, linear_search(load, aht, sl, secs, max_asa, max_occ))
    busy = load > 0
    n = plan.agents
    for got, ref in ((plan.service_level, service_level(load, n, aht, secs)),
                     (plan.asa, asa(load, n, aht)),
                     (plan.wait_probability, erlang_c(load, n)),
                     (plan.occupancy, occupancy(load, n))):
        np.testing.assert_array_equal(got[busy], ref[busy])


@pytest.mark.parametrize("target_sl", [0.0, 0.8, 0.999999, 1 - 2**-52])
def test_required_agents_with_one_target_equals_a_linear_search(target_sl: float) -> None:
    """Scalar targets (the common call) over loads from 1e-5 to 5,000 Erlangs."""
    rng = np.random.default_rng(7)
    a = np.exp(rng.uniform(math.log(1e-5), math.log(5000.0), 300))
    aht = rng.uniform(30.0, 600.0, 300)
    plan = required_agents(a * 900.0 / aht, 900.0, aht, target_sl, 20.0)
    ones = np.ones(300)
    expected = linear_search(plan.traffic, aht, target_sl * ones, 20.0 * ones, np.inf * ones,
                             ones)
    np.testing.assert_array_equal(plan.agents, expected)


@pytest.mark.parametrize("shift", [-60, -5, -2, -1, 1, 2, 4, 9, 80])
def test_a_wrong_first_guess_costs_time_not_the_answer(
        shift: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Halfin-Whitt guess only says where to look first: guesses shifted by a few or
    many agents (through the step-up, the look below and the bisection) give the same
    plan, bit for bit."""
    rng = np.random.default_rng(5)
    a, aht, sl, secs, max_asa, max_occ = random_intervals(rng, 200, 0)
    sl = np.minimum(sl, 0.999)  # monotone service levels: one right answer, not a first one
    calls = a * 1800.0 / aht
    expected = required_agents(calls, 1800.0, aht, sl, secs, max_occ, target_asa=max_asa)
    guess = erlang._first_guess

    def shifted(*args: object, **kwargs: object) -> np.ndarray:
        return np.maximum(guess(*args, **kwargs) + shift, 1.0)  # type: ignore[arg-type]

    monkeypatch.setattr(erlang, "_first_guess", shifted)
    got = required_agents(calls, 1800.0, aht, sl, secs, max_occ, target_asa=max_asa)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), field)


def test_erlang_b_on_both_paths_matches_mpmath() -> None:
    """Loads up to 64 Erlangs and up to 160 agents run the recursion with one shared count,
    the rest the damped recursion: both exact at and around the limits, tiny loads too."""
    worst = 0.0
    for traffic in (1e-12, 0.003, 0.0235, 0.5, 7.3, 40.0, 63.999, 64.0, 64.001, 80.0):
        for n in (1, 2, 3, 9, 40, 63, 64, 65, 100, 159, 160, 161):
            got = float(erlang_b(traffic, n))
            worst = max(worst, rel_err(got, ref_erlang_b(traffic, n)))
            late = ref_erlang_c(traffic, n) * mp.exp(-(n - mp.mpf(traffic)) * 20 / mp.mpf(180))
            if n > traffic:
                worst = max(worst, rel_err(float(wait_exceeds(traffic, n, 180, 20)), late))
                worst = max(worst, rel_err(float(service_level(traffic, n, 180, 20)), 1 - late))
    assert worst < TOL


def test_erlang_b_batches_across_both_paths_equal_single_calls() -> None:
    """Which path an element takes depends on its own load and count only; where both
    start at 0 agents they give the same bits."""
    traffic = np.array([1e-200, 0.01, 0.02, 3.0, 64.0, 64.5, 0.5, 120.0, 40.0, 1000.0])
    agents = np.array([1, 200, 159, 5, 160, 70, 161, 130, 30, 1100])
    batch = erlang_b(traffic, agents)
    single = [float(erlang_b(t, n)) for t, n in zip(traffic, agents, strict=True)]
    assert batch.tolist() == single
    shared = erlang_b(np.full(4, 50.0), np.array([100, 159, 160, 161]))
    damped = erlang._damped_recursion(np.full(4, 50.0), np.array([100.0, 159, 160, 161]),
                                      np.zeros(4))[0]
    assert shared.tolist() == damped.tolist()


@pytest.mark.parametrize("guess", [None, 159.0, 161.0, 162.0, 163.0, 240.0])
def test_answers_at_the_end_of_the_shared_count_path_do_not_depend_on_the_guess(
        guess: float | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """60 Erlangs and an ASA cap met first at 160 agents (the last count run with a shared
    count) or at 161 (the first past it): the plan is erlang_c's, wherever the search
    looks first."""
    if guess is not None:
        monkeypatch.setattr(erlang, "_first_guess",
                            lambda a, *_: np.full(np.shape(a), guess))
    plan = required_agents([60.0, 60.0], 180.0, 180.0, 0.0, 20.0, target_asa=[3e-26, 1e-26])
    assert plan.agents.tolist() == [160, 161]
    assert asa(60.0, 159, 180.0) > 3e-26 >= asa(60.0, 160, 180.0)
    np.testing.assert_array_equal(plan.asa, asa(60.0, plan.agents, 180.0))
    np.testing.assert_array_equal(plan.wait_probability, erlang_c(60.0, plan.agents))
    np.testing.assert_array_equal(plan.service_level,
                                  service_level(60.0, plan.agents, 180.0, 20.0))


def test_huge_loads_are_answered_near_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above 10^4 Erlangs the first guess is solved, not read from its grid (one grid step
    is worth many agents there): every answer is found by the window or a few steps up,
    never by the bisection, whose every probe reruns the whole Erlang B recursion."""
    def no_bisection(*_: object) -> None:
        raise AssertionError("bisection used")

    monkeypatch.setattr(erlang, "_settle_by_bisection", no_bisection)
    load = np.array([2e4, 3e5, 1e6, 4e6])
    for sl, secs, target_asa in ((0.8, 20.0, None), (0.95, 1.0, None), (0.5, 600.0, None),
                                 (0.8, 20.0, 2.0), (0.0, 20.0, 0.01)):
        n = required_agents(load, 1.0, 1.0, sl, secs / 180.0, target_asa=target_asa).agents
        met = [service_level(load, k, 1.0, secs / 180.0) >= sl for k in (n, n - 1)]
        if target_asa is not None:
            met = [ok & (asa(load, k, 1.0) <= target_asa) for ok, k in zip(met, (n, n - 1),
                                                                            strict=True)]
        assert met[0].all() and not met[1].any(), (sl, secs, target_asa)
