"""The pacing contract and the four pacers of callcenter.dialer.pacing, without a clock."""

from __future__ import annotations

import dataclasses

import pytest

from callcenter.dialer.pacing import (
    OUTCOMES,
    FixedRatioPacer,
    Pacer,
    PacingSettings,
    PredictivePacer,
    ProgressivePacer,
    VicidialAdaptivePacer,
)


def all_pacers() -> list[Pacer]:
    return [ProgressivePacer(), FixedRatioPacer(1.5), VicidialAdaptivePacer(),
            PredictivePacer()]


def feed_predictive(pacer: PredictivePacer, human_share: float, attempts: int = 600,
                    abandoned_every: int = 0) -> None:
    """Teach a pacer an answer share (answers after 10 s, the rest busy or time out)."""
    humans = 0
    for i in range(attempts):
        if (i * human_share) % 1.0 + human_share >= 1.0:
            humans += 1
            outcome = "abandoned" if abandoned_every and humans % abandoned_every == 0 \
                else "human"
            pacer.record_attempt(10.0, outcome)
        elif i % 2:
            pacer.record_attempt(25.0, "noanswer")
        else:
            pacer.record_attempt(2.0, "busy")
    for _ in range(300):
        pacer.record_call(240.0, 15.0)


@pytest.mark.parametrize("field, value", [
    ("target_abandon", 0.0), ("target_abandon", 1.0), ("target_abandon", float("nan")),
    ("min_ratio", -0.1), ("min_ratio", 3.5), ("max_ratio", 0.5),
    ("max_ringing_per_agent", 0.0), ("ring_timeout", 14.9), ("ring_timeout", 500.0),
    ("max_ratio", "2"),
])
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    """A bad setting is rejected with the field named (the YAML loader reports it)."""
    with pytest.raises(ValueError, match=rf"PacingSettings\.{field}"):
        PacingSettings(**{field: value})  # type: ignore[arg-type]


def test_ring_timeout_below_safe_harbor_says_why() -> None:
    """A ring timeout under 15 s is refused with the safe-harbor reason."""
    with pytest.raises(ValueError, match="15 s"):
        PacingSettings(ring_timeout=10.0)


def test_default_settings_are_the_strictest_rules() -> None:
    """Defaults: 3% abandonment, ratio 1-3, 3 ringing per agent, 25 s ring."""
    s = PacingSettings()
    assert (s.target_abandon, s.min_ratio, s.max_ratio, s.max_ringing_per_agent,
            s.ring_timeout) == (0.03, 1.0, 3.0, 3.0, 25.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.target_abandon = 0.05  # type: ignore[misc]


@pytest.mark.parametrize("pacer", all_pacers(), ids=lambda p: type(p).__name__)
def test_unknown_outcome_rejected(pacer: Pacer) -> None:
    """Every pacer refuses an outcome outside OUTCOMES, naming the field."""
    with pytest.raises(ValueError, match="outcome"):
        pacer.record_attempt(5.0, "answered")
    with pytest.raises(ValueError, match="ring_seconds"):
        pacer.record_attempt(-1.0, "human")
    with pytest.raises(ValueError, match="talk_seconds"):
        pacer.record_call(float("inf"), 1.0)
    for outcome in OUTCOMES:
        pacer.record_attempt(5.0, outcome)


@pytest.mark.parametrize("pacer", all_pacers(), ids=lambda p: type(p).__name__)
def test_no_agents_logged_in_no_dials(pacer: Pacer) -> None:
    """With nobody logged in, no pacer dials."""
    for now in range(60):
        assert pacer.dials_to_place(float(now), 0, [], [], []) == 0


@pytest.mark.parametrize("ready, ringing", [(0, 0), (5, 0), (5, 3), (5, 5), (2, 7)])
def test_progressive_one_dial_per_uncovered_ready_agent(ready: int, ringing: int) -> None:
    """Progressive places ready - ringing dials, never negative."""
    pacer = ProgressivePacer()
    got = pacer.dials_to_place(0.0, ready, [30.0] * 4, [2.0], [1.0] * ringing)
    assert got == max(0, ready - ringing)


def test_fixed_ratio_places_ratio_times_agents_minus_in_flight() -> None:
    """Fixed ratio: floor(ratio x (ready + talking)) - (ringing + talking)."""
    pacer = FixedRatioPacer(2.0)
    assert pacer.dials_to_place(0.0, 4, [10.0] * 6, [3.0], [1.0] * 3) == 2 * 10 - 3 - 6
    assert pacer.dials_to_place(0.0, 0, [10.0] * 6, [], [1.0] * 6) == 0
    assert FixedRatioPacer(1.0).dials_to_place(0.0, 3, [5.0] * 5, [], [1.0]) == 2
    with pytest.raises(ValueError, match="ratio"):
        FixedRatioPacer(0.5)


def test_fixed_ratio_capped_by_settings() -> None:
    """The ringing cap of the settings bounds even a fixed ratio."""
    pacer = FixedRatioPacer(3.0, PacingSettings(max_ringing_per_agent=1.0))
    assert pacer.dials_to_place(0.0, 10, [], [], []) == 10


def vicidial_run(pacer: VicidialAdaptivePacer, seconds: int, start: float, ready: int,
                 talking: int) -> list[int]:
    placed = []
    for s in range(seconds):
        placed.append(pacer.dials_to_place(start + s, ready, [60.0] * talking, [], []))
    return placed


def test_vicidial_places_every_two_and_a_half_seconds() -> None:
    """VICIdial acts on its own 2.5 s schedule, whatever the tick; level 1 = 1 per agent."""
    pacer = VicidialAdaptivePacer()
    placed = vicidial_run(pacer, 10, 0.0, 10, 0)
    assert [i for i, n in enumerate(placed) if n] == [0, 3, 6, 9]
    assert placed[0] == 10
    pacer2 = VicidialAdaptivePacer()
    calls = [pacer2.dials_to_place(s * 0.5, 10, [], [], []) for s in range(11)]
    assert [i * 0.5 for i, n in enumerate(calls) if n] == [0.0, 2.5, 5.0]
    # lines already out count: 10 ready agents, 4 ringing, 6 talking -> level 1 places 10-4
    pacer3 = VicidialAdaptivePacer()
    assert pacer3.dials_to_place(0.0, 10, [30.0] * 6, [], [1.0] * 4) == 16 - 10


def test_vicidial_level_climbs_at_shift_start_to_maximum() -> None:
    """All agents idle at the start: the level climbs to the maximum within ~a minute."""
    pacer = VicidialAdaptivePacer(clock_offset=9 * 3600.0)
    levels = []
    for s in range(120):
        pacer.dials_to_place(float(s), 48, [], [], [])
        levels.append(pacer.level)
    assert levels[0] == 1.0
    assert max(levels[:16]) > 1.0
    assert levels[90] == 3.0
    assert levels == sorted(levels)


def test_vicidial_hard_limit_drops_to_one_when_today_over_target() -> None:
    """HARD_LIMIT: over 50 calls today and drops over target -> level 1.0 at next adapt."""
    pacer = VicidialAdaptivePacer(mode="HARD_LIMIT", clock_offset=9 * 3600.0)
    vicidial_run(pacer, 60, 0.0, 48, 0)
    assert pacer.level == 3.0
    for i in range(100):  # 10% of live answers dropped, spread so the 1-min rule stays off
        pacer.record_attempt(10.0, "abandoned" if i % 10 == 0 else "human")
        pacer.record_attempt(25.0, "noanswer")
    vicidial_run(pacer, 61, 60.0, 48, 0)  # recount (60 s) and adapt (15 s) happen
    assert pacer.level == 1.0


def test_vicidial_modes_average_halves_tapered_reads_clock() -> None:
    """AVERAGE halves the level; TAPERED scales by (2100 - HHMM) / 1000 late in the day."""
    results = {}
    for mode, offset in (("AVERAGE", 9 * 3600.0), ("TAPERED", 9 * 3600.0),
                         ("TAPERED", 16 * 3600.0), ("TAPERED", 21.5 * 3600.0)):
        pacer = VicidialAdaptivePacer(mode=mode, clock_offset=offset)  # type: ignore[arg-type]
        vicidial_run(pacer, 60, 0.0, 48, 0)
        for i in range(100):
            pacer.record_attempt(10.0, "abandoned" if i % 10 == 0 else "human")
            pacer.record_attempt(25.0, "noanswer")
        before = pacer.level
        # one sample window so the recount happens, then one adapt with agents all busy
        for s in range(60, 76):
            pacer.dials_to_place(float(s), 0, [60.0] * 48, [], [])
        results[(mode, offset)] = (before, pacer.level)
    before, after = results[("AVERAGE", 9 * 3600.0)]
    assert after < before
    assert results[("TAPERED", 9 * 3600.0)][1] == 3.0  # 09:01: 1200 > 1000, no cut
    assert results[("TAPERED", 16 * 3600.0)][1] < 2.0   # 16:01: x 0.499
    assert results[("TAPERED", 21.5 * 3600.0)][1] == 1.0  # after the latest time


def test_vicidial_drop_count_is_cumulative_for_the_day() -> None:
    """A morning burst of drops pins HARD_LIMIT at 1.0 for as long as today's % is high."""
    levels: dict[str, list[float]] = {}
    for name, drop_every in (("burst", 5), ("clean", 0)):
        pacer = VicidialAdaptivePacer(mode="HARD_LIMIT", clock_offset=9 * 3600.0)
        for i in range(200):
            pacer.record_attempt(10.0, "abandoned" if drop_every and i % drop_every == 0
                                 else "human")
        levels[name] = []
        for s in range(1200):  # agents idle all along: the differential pushes up
            pacer.dials_to_place(float(s), 48, [], [], [])
            if s % 3 == 0:
                pacer.record_attempt(10.0, "human")
            levels[name].append(pacer.level)
    # 40 drops / 600 answers = 6.7% at the end: still over 3%, still pinned
    assert max(levels["burst"][16:]) == 1.0
    assert levels["clean"][-1] == 3.0


def test_vicidial_configure_keeps_level_within_new_maximum() -> None:
    """A hot reload with a lower maximum caps the current level."""
    pacer = VicidialAdaptivePacer()
    vicidial_run(pacer, 120, 0.0, 48, 0)
    assert pacer.level == 3.0
    pacer.configure(PacingSettings(max_ratio=2.0))
    assert pacer.level == 2.0


def test_predictive_constructible_with_only_target() -> None:
    """PredictivePacer(target_abandon=0.03) works and rejects a bad target by name."""
    assert PredictivePacer(target_abandon=0.03).settings.target_abandon == 0.03
    with pytest.raises(ValueError, match="target_abandon"):
        PredictivePacer(target_abandon=1.5)


def busy_floor(pacer: Pacer, now: float = 100.0) -> int:
    """Dials asked for 20 agents: 2 ready, 16 talking (various ages), 2 wrapping."""
    talking = [30.0 + 20.0 * i for i in range(16)]
    return pacer.dials_to_place(now, 2, talking, [5.0, 10.0], [3.0, 8.0])


def test_predictive_dials_more_when_answer_rate_drops() -> None:
    """Half the answer rate -> more dials for the same agents."""
    high, low = PredictivePacer(), PredictivePacer()
    feed_predictive(high, 0.4)
    feed_predictive(low, 0.15)
    assert busy_floor(low) > busy_floor(high)


def test_predictive_tracks_a_mid_day_halving() -> None:
    """After 300 attempts at half the answer rate, dials rise toward the new level."""
    pacer, fresh = PredictivePacer(), PredictivePacer()
    feed_predictive(pacer, 0.4, attempts=2000)
    before = busy_floor(pacer)
    feed_predictive(pacer, 0.2, attempts=300)
    feed_predictive(fresh, 0.2, attempts=2000)
    after, settled = busy_floor(pacer), busy_floor(fresh)
    assert after > before
    assert after >= before + 0.6 * (settled - before)


def test_predictive_dials_fewer_when_abandonment_runs_high() -> None:
    """Live answers that keep being abandoned lower the dialing."""
    calm, hot = PredictivePacer(), PredictivePacer()
    for _ in range(3):
        for p, every in ((calm, 0), (hot, 5)):
            feed_predictive(p, 0.3, abandoned_every=every)
            busy_floor(p)
    assert hot.gain < calm.gain
    assert busy_floor(hot) < busy_floor(calm)


def test_predictive_never_exceeds_caps() -> None:
    """However optimistic the model, max ratio and max ringing per agent hold."""
    pacer = PredictivePacer()
    feed_predictive(pacer, 0.02)
    pacer.configure(PacingSettings(max_ratio=1.5, max_ringing_per_agent=0.5))
    for ready in range(11):
        talking = [100.0] * (10 - ready)
        n = pacer.dials_to_place(1.0, ready, talking, [], [])
        assert n + len(talking) <= 1.5 * 10
        assert n <= 0.5 * 10


def test_predictive_at_least_progressive_by_default() -> None:
    """min_ratio 1.0: every ready agent not covered gets a dial."""
    pacer = PredictivePacer()
    feed_predictive(pacer, 0.9, abandoned_every=2)
    assert pacer.dials_to_place(1.0, 6, [10.0] * 4, [], [1.0]) >= 5


def test_predictive_configure_changes_target_and_keeps_learning() -> None:
    """A lower target over hot reload cuts dials; the learned answer share is kept."""
    pacer = PredictivePacer()
    feed_predictive(pacer, 0.2)
    loose = busy_floor(pacer)
    share = pacer._answer_share
    pacer.configure(PacingSettings(target_abandon=0.001))
    assert pacer.settings.target_abandon == 0.001
    assert busy_floor(pacer) < loose
    assert pacer._answer_share == share


def test_predictive_small_team_gets_a_wider_margin() -> None:
    """Dials per available agent grow with team size (variance-aware margin)."""
    ratios = []
    for agents in (8, 20, 40):
        pacer = PredictivePacer()
        feed_predictive(pacer, 0.3)
        for i in range(300):
            pacer.record_call(240.0, 5.0 + 20.0 * (i % 7) / 6)
        half = agents // 2
        placed = pacer.dials_to_place(1.0, 0, [230.0] * half, [5.0] * half, [])
        ratios.append(placed / agents)
    assert ratios[0] < ratios[1] < ratios[2]


def test_predictive_set_point_margin_narrows_with_live_answers_seen() -> None:
    """Few live answers behind the ledger: a wide margin; more answers: closer to target.

    A short day or the start of a shift must not aim at the full target: its few live
    answers make the day's rate noisy.
    """
    pacer = PredictivePacer()
    points = []
    now = 0.0
    for _ in range(4):
        for _ in range(150):  # a live answer every 6 s (600 an hour)
            now += 6.0
            pacer.dials_to_place(now, 1, [60.0] * 7, [], [])
            pacer.record_attempt(10.0, "human")
        points.append(pacer.set_point())
    assert points == sorted(points)
    assert points[0] < points[-1] < pacer.settings.target_abandon
    assert points[0] <= 0.8 * pacer.settings.target_abandon


def test_predictive_holds_target_on_seeded_days() -> None:
    """On fixed seeded days of a small team (high variance), the day's abandonment <= 3%."""
    from callcenter.dialer.simulate import WORKLOADS, simulate_day

    two_hours = dataclasses.replace(WORKLOADS["team-of-8"], shift_hours=2.0)
    rates = [simulate_day(two_hours, PredictivePacer(), (5, day)).abandon_rate
             for day in range(4)]
    assert max(rates) <= 0.03
    assert sum(rates) / len(rates) > 0.005  # it uses the budget: not progressive in disguise


def test_predictive_answered_calls_count_as_demand() -> None:
    """Calls answered and awaiting the AMD verdict (``dials_answered``) hold back dials:
    most of them are people about to ask for an agent."""
    pacer = PredictivePacer()
    feed_predictive(pacer, 0.3)
    talking = [30.0 + 20.0 * i for i in range(16)]
    none = pacer.dials_to_place(100.0, 2, talking, [5.0], [], dials_answered=[])
    some = pacer.dials_to_place(100.0, 2, talking, [5.0], [], dials_answered=[1.0] * 3)
    assert some < none


def test_predictive_answered_share_learned_from_machine_verdicts() -> None:
    """The share of answered calls that are people is learned from the outcomes: after a
    run of machine verdicts the same answered calls hold back fewer dials."""
    people, machines = PredictivePacer(), PredictivePacer()
    for pacer, other in ((people, "noanswer"), (machines, "machine")):
        for i in range(600):
            pacer.record_attempt(10.0, "human" if i % 4 == 0 else other)
        for _ in range(300):
            pacer.record_call(240.0, 15.0)
    talking = [30.0 + 20.0 * i for i in range(16)]
    answered = [1.0] * 3
    assert (machines.dials_to_place(100.0, 2, talking, [5.0], [], dials_answered=answered)
            > people.dials_to_place(100.0, 2, talking, [5.0], [], dials_answered=answered))


def test_predictive_answered_calls_are_in_flight_for_the_caps() -> None:
    """Answered calls are not in ``dials_ringing`` but still count against the caps."""
    pacer = PredictivePacer()
    feed_predictive(pacer, 0.02)
    pacer.configure(PacingSettings(max_ratio=3.0, max_ringing_per_agent=0.5))
    assert pacer.dials_to_place(1.0, 10, [], [], [], dials_answered=[]) == 5
    assert pacer.dials_to_place(1.0, 10, [], [], [], dials_answered=[0.5] * 4) == 1


def test_predictive_bad_answered_age_names_the_field() -> None:
    """A negative or NaN answered age is refused with the parameter named."""
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="dials_answered"):
            PredictivePacer().dials_to_place(1.0, 1, [], [], [], dials_answered=[bad])
