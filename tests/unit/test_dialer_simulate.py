"""The campaign-day simulator of callcenter.dialer.simulate and its CLI."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence

import pytest

from callcenter.dialer.pacing import FixedRatioPacer, PacingSettings, ProgressivePacer
from callcenter.dialer.simulate import (
    WORKLOADS,
    AgentOraclePacer,
    DayResult,
    DialOraclePacer,
    OracleDialer,
    Workload,
    _Uniforms,
    add_arguments,
    baseline_notes,
    check_goals,
    compare,
    format_table,
    make_pacer,
    run,
    simulate_day,
)

SMALL = Workload("small", "6 agents, 30 minutes", agents=6, shift_hours=0.5)
PERFECT_AMD = dataclasses.replace(SMALL, name="perfect-amd", amd_machine_as_human=0.0,
                                  amd_human_as_machine=0.0)


def test_deterministic_for_a_seed() -> None:
    """The same seed gives the same day; another seed another day."""
    a = simulate_day(SMALL, make_pacer("predictive"), 7)
    b = simulate_day(SMALL, make_pacer("predictive"), 7)
    c = simulate_day(SMALL, make_pacer("predictive"), 8)
    assert a == b
    assert a != c


def test_progressive_never_abandons_with_perfect_amd() -> None:
    """One dial per ready agent: every human finds the agent it was dialed for."""
    for seed in range(3):
        r = simulate_day(PERFECT_AMD, ProgressivePacer(), seed)
        assert r.humans_connected > 20
        assert r.abandoned == 0
        assert r.outcomes["abandoned"] == 0


def test_amd_false_positives_count_as_abandoned_when_configured() -> None:
    """Humans hung up as machines are in the ledger (Ofcom), or not, per the workload."""
    lossy = dataclasses.replace(PERFECT_AMD, amd_human_as_machine=0.2)
    counted = simulate_day(lossy, ProgressivePacer(), 3)
    assert counted.amd_false_positives > 0
    assert counted.abandoned == counted.amd_false_positives  # progressive drops nobody else
    not_counted = simulate_day(dataclasses.replace(lossy, count_amd_false_positives=False),
                               ProgressivePacer(), 3)
    assert not_counted.abandoned == 0


@pytest.mark.parametrize("pacer", ["progressive", "fixed:2.5", "vicidial-tapered",
                                   "predictive"])
def test_utilization_within_the_days_realised_limit(pacer: str) -> None:
    """No agent is in two places: utilization <= the day's human talk / (talk + wrap)."""
    r = simulate_day(SMALL, make_pacer(pacer), 11)
    assert 0.0 < r.utilization <= r.realised_limit + 1e-12
    assert r.busy_seconds <= r.agents * r.shift_seconds + 1e-6


@pytest.mark.parametrize("pacer", ["progressive", "fixed:3", "vicidial", "predictive"])
def test_conservation_of_dials(pacer: str) -> None:
    """Every dial ends in exactly one outcome or is still in flight at the end."""
    r = simulate_day(SMALL, make_pacer(pacer), 5)
    assert sum(r.outcomes.values()) + r.in_flight_at_end == r.dials
    assert r.humans_connected <= r.live_answers
    assert r.humans_connected <= r.outcomes["human"]  # machines sent to agents are extra
    assert r.abandoned <= r.outcomes["abandoned"] + r.amd_false_positives


def test_fixed_ratio_over_dials_and_abandons() -> None:
    """A fixed 3:1 ratio on a small team abandons far more than 3%: the sim can show it."""
    r = simulate_day(SMALL, FixedRatioPacer(3.0), 2)
    assert r.abandon_rate > 0.1


def test_answer_schedule_changes_the_answer_rate() -> None:
    """Halving the answer rate halves the share of dials answered by humans."""
    base = dataclasses.replace(SMALL, shift_hours=2.0)
    halved = dataclasses.replace(base, answer_schedule=((0.0, 0.5),))
    a = simulate_day(base, ProgressivePacer(), 1)
    b = simulate_day(halved, ProgressivePacer(), 1)
    share_a = a.live_answers / a.dials
    share_b = b.live_answers / b.dials
    assert 0.35 < share_b / share_a < 0.65


def test_ring_timeout_comes_from_the_settings() -> None:
    """Unanswered dials ring exactly the configured timeout (seen by the pacer)."""
    seen: list[float] = []

    class Spy(ProgressivePacer):
        def record_attempt(self, ring_seconds: float, outcome: str) -> None:
            if outcome == "noanswer":
                seen.append(ring_seconds)

    w = dataclasses.replace(SMALL, settings=PacingSettings(ring_timeout=30.0))
    simulate_day(w, Spy(), 4)
    assert seen and all(abs(s - 30.0) < 1e-9 for s in seen)


def test_bad_workload_names_the_field() -> None:
    """Invalid workloads are refused with the workload and field named."""
    with pytest.raises(ValueError, match="'x': agents"):
        Workload("x", "", agents=0)
    with pytest.raises(ValueError, match="answer_schedule"):
        Workload("x", "", answer_schedule=((0.0, 3.0),))
    with pytest.raises(ValueError, match="pacer"):
        make_pacer("magic")
    with pytest.raises(ValueError, match="workload"):
        compare(["nope"], ["progressive"], 1, 1, processes=1)


def test_compare_same_with_one_or_two_processes() -> None:
    """Results do not depend on the number of worker processes."""
    one = compare(["smoke"], ["progressive", "predictive"], 2, 3, processes=1)
    two = compare(["smoke"], ["progressive", "predictive"], 2, 3, processes=2)
    assert one == two
    assert [s.pacer for s in one] == ["progressive", "predictive"]


def test_goals_judge_the_rows() -> None:
    """check_goals fails a predictive row that abandons more than VICIdial."""
    rows = compare(["smoke"], ["vicidial", "predictive"], 1, 1, processes=1)
    pred, vici = rows[1], rows[0]
    worse = dataclasses.replace(pred, abandon_mean=vici.abandon_mean + 0.01,
                                utilization=vici.utilization + 0.01)
    goals = dict(check_goals([vici, worse]))
    assert any("vicidial" in text and not ok for text, ok in goals.items())


def test_cli_prints_a_table_fast(capsys: pytest.CaptureFixture[str]) -> None:
    """`callcenter dialer simulate --workload smoke` prints one row per pacer quickly."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    t0 = time.perf_counter()
    code = run(parser.parse_args(["--workload", "smoke", "--days", "2", "--processes", "1",
                                  "--pacer", "progressive", "--pacer", "predictive"]))
    elapsed = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert code == 0
    assert "| smoke | progressive |" in out and "| smoke | predictive |" in out
    assert "utilization" in out and "dials / agent-h" in out
    assert elapsed < 30


def test_cli_rejects_unknown_pacer(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --pacer exits 2 with the name in the message."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["--pacer", "magic"])) == 2
    assert "magic" in capsys.readouterr().err


def test_reference_workload_is_the_issues() -> None:
    """The reference workload is the one issue 5 describes."""
    w = WORKLOADS["reference"]
    assert (w.agents, w.human, w.machine, w.busy, w.talk_mean, w.talk_sd, w.wrap_mean,
            w.shift_hours) == (48, 0.3, 0.1, 0.1, 240.0, 120.0, 15.0, 8.0)
    assert abs(w.physical_limit - 240 / 255) < 1e-12
    assert isinstance(simulate_day(WORKLOADS["smoke"], ProgressivePacer(), 1), DayResult)


@pytest.mark.parametrize("pacer", ["progressive", "vicidial", "predictive"])
def test_agent_time_accounted_once(pacer: str) -> None:
    """Each agent-second is ready, talking or wrapping: idle + busy = agents x shift.

    The idle split is a part of the idle time: agents beyond the live answers on their way.
    """
    r = simulate_day(SMALL, make_pacer(pacer), 4)
    total = r.agents * r.shift_seconds
    assert abs(r.idle_agent_seconds + r.busy_seconds - total) < 1e-6 * total
    assert 0.0 <= r.idle_uncovered_seconds <= r.idle_agent_seconds
    assert r.idle_uncovered_share <= r.idle_share


def test_goals_show_literal_and_legal_baselines() -> None:
    """Both comparisons are printed: [literal] against every VICIdial mode, [legal] only
    against modes at or under 3%; a workload without a legal mode gets a note."""
    rows = compare(["smoke"], ["vicidial", "predictive"], 1, 1, processes=1)
    vici, pred = rows
    legal_vici = dataclasses.replace(vici, abandon_mean=0.02, utilization=0.5)
    better = dataclasses.replace(pred, abandon_mean=0.01, utilization=0.6)
    texts = dict(check_goals([legal_vici, better]))
    assert any("[literal]" in t and ok for t, ok in texts.items())
    assert any("[legal]" in t and ok for t, ok in texts.items())
    illegal_vici = dataclasses.replace(vici, abandon_mean=0.2, utilization=0.9)
    texts = dict(check_goals([illegal_vici, better]))
    assert any("[literal]" in t and not ok for t, ok in texts.items())
    assert not any("[legal]" in t for t in texts)
    notes = baseline_notes([illegal_vici, better])
    assert len(notes) == 1 and "no VICIdial mode" in notes[0]


def test_peeking_ahead_leaves_the_dial_stream_unchanged() -> None:
    """The oracle reads future draws without drawing them: the same values come out, in
    the same order, as for a pacer that never peeks (every pacer meets the same days)."""
    import numpy as np

    plain = _Uniforms(np.random.default_rng(9))
    peeked = _Uniforms(np.random.default_rng(9))
    ahead = [peeked.peek(k) for k in range(5000)]
    out = [peeked.next() for _ in range(9000)]
    assert out[:5000] == ahead
    assert out == [plain.next() for _ in range(9000)]


def test_oracle_never_abandons_and_beats_every_pacer() -> None:
    """The bound that knows the future drops nobody (perfect AMD) and keeps agents busier
    than the pacers on the same day."""
    for seed in range(2):
        bound = simulate_day(PERFECT_AMD, make_pacer("oracle"), seed)
        assert bound.abandoned == 0 and bound.outcomes["abandoned"] == 0
        assert sum(bound.outcomes.values()) + bound.in_flight_at_end == bound.dials
        for pacer in ("progressive", "predictive"):
            assert bound.utilization > simulate_day(PERFECT_AMD, make_pacer(pacer),
                                                    seed).utilization


def test_oracle_is_not_a_pacer_outside_the_simulator() -> None:
    """OracleDialer refuses to pace: it needs the future, which only the simulator has."""
    with pytest.raises(RuntimeError, match="not a pacer"):
        OracleDialer().dials_to_place(0.0, 1, [], [], [])


def test_bounds_labelled_in_the_table() -> None:
    """Rows of the bounds say they are not pacers; the goals never judge them."""
    rows = compare(["smoke"], ["predictive", "oracle", "oracle-agents", "oracle-dials"], 1,
                   1, processes=1)
    table = format_table(rows)
    for name in ("oracle", "oracle-agents", "oracle-dials"):
        assert f"| smoke | {name} (bound, not a pacer) |" in table
    assert all("oracle" not in text for text, _ in check_goals(rows))


def test_partial_oracles_see_what_they_are_given() -> None:
    """oracle-agents counts exactly the agents freed by each horizon; oracle-dials exactly
    the calls in flight that will ask for an agent by then."""
    import numpy as np

    agents = AgentOraclePacer()
    agents.now, agents.free_at = 100.0, [101.0, 105.0, 130.0]
    mean, var = agents._supply(2, [50.0, 60.0], [3.0], np.array([2.0, 10.0, 40.0]))
    assert mean.tolist() == [3.0, 4.0, 5.0] and var.tolist() == [0.0, 0.0, 0.0]
    dials = DialOraclePacer()
    dials.now, dials.live_at = 100.0, [99.0, 108.0]
    mean, var = dials._demand([1.0, 2.0, 3.0], None, np.array([2.0, 10.0]))
    assert mean.tolist() == [1.0, 2.0] and var.tolist() == [0.0, 0.0]


def test_simulator_reports_answered_calls_to_pacers_that_take_them() -> None:
    """A pacer whose dials_to_place takes ``dials_answered`` gets the calls answered and
    awaiting AMD or an agent apart from the ringing ones; together they are every dial in
    flight. Pacers without the parameter get them inside ``dials_ringing`` as before."""
    seen: list[tuple[int, int, int]] = []
    in_flight_plain: list[int] = []

    class Spy(ProgressivePacer):
        def dials_to_place(self, now: float, agents_ready: int,
                           agents_talking: Sequence[float],
                           agents_wrapping: Sequence[float],
                           dials_ringing: Sequence[float], *,
                           dials_answered: Sequence[float] | None = None) -> int:
            assert dials_answered is not None
            assert all(a >= 0.0 for a in dials_answered)
            n = super().dials_to_place(now, agents_ready, agents_talking, agents_wrapping,
                                       [*dials_ringing, *dials_answered])
            seen.append((len(dials_ringing), len(dials_answered), n))
            return n

    class Plain(ProgressivePacer):
        def dials_to_place(self, now: float, agents_ready: int,
                           agents_talking: Sequence[float],
                           agents_wrapping: Sequence[float],
                           dials_ringing: Sequence[float]) -> int:
            in_flight_plain.append(len(dials_ringing))
            return super().dials_to_place(now, agents_ready, agents_talking,
                                          agents_wrapping, dials_ringing)

    spied = simulate_day(SMALL, Spy(), 6)
    plain = simulate_day(SMALL, Plain(), 6)
    assert any(answered for _, answered, _ in seen)
    # the same decisions, so the same day: the split loses no call in flight
    assert spied == plain
    assert [r + a for r, a, _ in seen] == in_flight_plain
