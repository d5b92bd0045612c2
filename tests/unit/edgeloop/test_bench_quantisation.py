"""The quantisation benchmark measures the gate's own rule, and the replaced fixed limit exactly as it was."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edgeloop.bench_quantisation import (RULES, SIZES, Scenario, best_possible, first_rejected, fixed_limit_rejects,
                                         holdouts, markdown, measure, scenarios, targets_met)
from shared.config import Gate
from shared.gate import FLOAT_ONLY_ERRORS, HOLDOUT_IMAGES, INT8_ONLY_ERRORS, evaluate_gate
from shared.quantisation_loss import rejects

POLICY = Gate()


def test_the_benchmark_measures_the_gates_rule_beside_the_fixed_limit():
    assert set(RULES.values()) == {rejects, fixed_limit_rejects}


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_the_replaced_rule_is_the_gates_old_check_on_the_observed_loss(counts):
    images, lost = counts
    old_style = {"int8_accuracy": 0.97, "float_accuracy": 0.97 + lost / images, "size_bytes": 1, "latency_us": 1.0}
    check = next(c for c in evaluate_gate(old_style, POLICY).checks if c.name == "quantisation_loss")
    if abs(lost / images - POLICY.max_quantisation_loss) > 1e-9:  # away from the float rounding at the limit itself
        assert check.passed == (not fixed_limit_rejects(lost, 0, images, POLICY.max_quantisation_loss))


def test_a_simulated_holdout_has_the_scenarios_rates():
    int8_only, float_only = holdouts(Scenario(2000, 0.02, 0.03), 4000, np.random.default_rng(0))
    assert abs(int8_only.mean() / 2000 - 0.05) < 0.001 and abs(float_only.mean() / 2000 - 0.02) < 0.001


def test_the_gate_and_the_benchmark_agree_on_a_simulated_holdout():
    int8_only, float_only = holdouts(Scenario(80, 0.02, 0.05), 50, np.random.default_rng(1))
    for b, c in zip(int8_only, float_only):
        metrics = {"int8_accuracy": (76 - b + c) / 80, "float_accuracy": 76 / 80, "size_bytes": 1, "latency_us": 1.0,
                   HOLDOUT_IMAGES: 80, INT8_ONLY_ERRORS: int(b), FLOAT_ONLY_ERRORS: int(c)}
        check = next(c for c in evaluate_gate(metrics, POLICY).checks if c.name == "quantisation_loss_lower_bound")
        assert check.passed == (not rejects(b, c, 80, POLICY.max_quantisation_loss))


def test_the_paired_rule_lets_small_holdouts_pass_harmless_conversions_and_large_ones_catch_harmful_ones():
    outcomes = measure(POLICY, trials=2000)
    assert all(targets_met(outcomes, POLICY).values()), targets_met(outcomes, POLICY)
    now, before = RULES
    rate = {(o.rule, o.scenario.images, o.scenario.background, o.scenario.loss): o.rejected for o in outcomes}
    assert rate[(before, 80, 0.02, 0.0)] > 0.25 > rate[(now, 80, 0.02, 0.0)]  # the flaky rejections, gone
    assert first_rejected(RULES[now], 80, POLICY) == 4 and first_rejected(RULES[before], 80, POLICY) == 1


def test_the_report_names_every_scenario_and_states_the_targets():
    outcomes = measure(POLICY, trials=200)
    text = markdown(outcomes, POLICY, 200, 0)
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == len(list(scenarios(POLICY))) == len(SIZES) * 2 * 4
    assert set(targets_met(outcomes, POLICY)) <= {line[2:].rsplit(":", 1)[0] for line in text.splitlines()
                                                  if line.startswith("- ")}
    assert 0.7 < best_possible(80, 0.05) < 0.8
