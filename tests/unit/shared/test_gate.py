"""The quality gate: what keeps a worse model away from every device."""

from __future__ import annotations

import pytest

from shared.config import Gate
from shared.gate import evaluate_gate

POLICY = Gate(min_accuracy=0.9, min_drifted_accuracy=0.5, max_quantisation_loss=0.01, max_regression=0.02,
              max_size_bytes=500_000, max_latency_us=1000)
GOOD = {"int8_accuracy": 0.97, "float_accuracy": 0.975, "int8_drifted_accuracy": 0.9, "size_bytes": 230_000,
        "latency_us": 40.0}


def test_a_good_first_candidate_passes_every_check():
    result = evaluate_gate(GOOD, POLICY)
    assert result.passed and result.reasons() == []
    assert {c.name for c in result.checks} == {"int8_accuracy", "int8_drifted_accuracy", "quantisation_loss",
                                              "size_bytes", "latency_us"}


@pytest.mark.parametrize("change, failing", [
    ({"int8_accuracy": 0.85, "float_accuracy": 0.855}, "int8_accuracy"),
    ({"int8_drifted_accuracy": 0.4}, "int8_drifted_accuracy"),
    ({"float_accuracy": 0.99}, "quantisation_loss"),
    ({"size_bytes": 600_000}, "size_bytes"),
    ({"latency_us": 1500.0}, "latency_us"),
])
def test_each_absolute_limit_rejects_with_its_reason(change, failing):
    result = evaluate_gate({**GOOD, **change}, POLICY)
    assert not result.passed
    assert [c.name for c in result.failures] == [failing]
    assert result.reasons()[0].startswith(failing)


def test_a_candidate_worse_than_production_on_the_same_holdout_is_rejected():
    result = evaluate_gate({**GOOD, "production_int8_accuracy": 0.995, "production_int8_drifted_accuracy": 0.9}, POLICY)
    assert not result.passed
    assert [c.name for c in result.failures] == ["int8_accuracy_regression"]


def test_a_small_drop_within_the_allowed_regression_passes():
    result = evaluate_gate({**GOOD, "production_int8_accuracy": 0.98, "production_int8_drifted_accuracy": 0.6}, POLICY)
    assert result.passed
    assert {c.name for c in result.checks} >= {"int8_accuracy_regression", "int8_drifted_accuracy_regression"}


def test_the_result_serialises_with_every_check_and_reason():
    document = evaluate_gate({**GOOD, "latency_us": 2000.0}, POLICY).to_dict()
    assert document["passed"] is False
    assert document["reasons"] == ["latency_us 2000 > 1000"]
    assert len(document["checks"]) == 5 and all({"name", "value", "limit", "passed", "rule"} <= set(c) for c in document["checks"])
