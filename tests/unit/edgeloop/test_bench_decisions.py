"""The decision benchmark measures the real rules, and the replaced rule exactly as it was."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import fisher_exact

from edgeloop.bench_decisions import RULES, Scenario, draw, fisher_less_p_values, markdown, measure, simulate, targets_met
from shared.config import Release
from shared.lifecycle import Tally, Verdict, canary_verdicts, judge_canary

tallies = st.integers(0, 300).flatmap(lambda total: st.tuples(st.integers(0, total), st.just(total)))


@given(tallies, tallies)
def test_the_replaced_rules_p_value_is_scipys_fisher_exact(canary, production):
    expected = 1.0
    if canary[1] and production[1]:
        table = [[canary[0], canary[1] - canary[0]], [production[0], production[1] - production[0]]]
        expected = fisher_exact(table, alternative="less").pvalue
    assert np.isclose(fisher_less_p_values(canary[0], canary[1], production[0], production[1]), expected)


@given(tallies, tallies)
def test_the_vectorised_verdicts_are_judge_canarys(canary, production):
    policy = Release()
    worse, not_worse = canary_verdicts(*canary, *production, policy)
    verdict = judge_canary(Tally(*canary), Tally(*production), 10, policy).verdict
    assert bool(worse) == (verdict is Verdict.ROLL_BACK)
    assert bool(not_worse) == (verdict in (Verdict.ADVANCE, Verdict.PROMOTE))


def test_a_much_worse_canary_is_rolled_back_and_a_much_better_one_advances_under_both_rules():
    policy = Release()
    for rule in RULES.values():
        verdict, at = simulate(rule, Scenario(0.5, 0.9, 0.5, "worse"), policy, 50, 3000, np.random.default_rng(0))
        assert (verdict == -1).all() and (at < 3000).all()
        verdict, _ = simulate(rule, Scenario(0.5, 0.7, 0.99, "better"), policy, 50, 3000, np.random.default_rng(0))
        assert (verdict == 1).all()


def test_the_report_names_every_scenario_and_states_the_targets():
    policy = Release(rollout_steps=(50.0, 100.0))
    outcomes = measure(policy, rollouts=10, horizon=200)
    text = markdown(outcomes, policy, 10, 200, 0)
    assert text.count("| anytime-valid (now) |") == text.count("| fixed-level Fisher (before) |") == 30
    assert set(targets_met(outcomes)) <= set(line[2:].rsplit(":", 1)[0] for line in text.splitlines() if line.startswith("- "))


def test_the_plot_is_a_png_of_every_scenario(tmp_path):
    policy = Release(rollout_steps=(50.0, 100.0))
    path = draw(measure(policy, rollouts=5, horizon=100), tmp_path / "decisions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
