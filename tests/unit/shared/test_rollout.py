"""A canary at p% reaches p% of the fleet, always the same devices, and raising p only adds devices."""

import uuid

import pytest
from hypothesis import given, strategies as st
from scipy.stats import binomtest

from shared.registry import ModelInput, ModelPointer, ModelRef, Rollout
from shared.rollout import model_for_device, rollout_bucket, takes_candidate

FLEET = [f"device-{uuid.UUID(int=i)}" for i in range(20_000)]


@pytest.mark.parametrize("percent", [1, 5, 10, 25, 50, 90])
def test_the_share_of_a_fleet_taking_the_canary_matches_the_percentage(percent):
    taking = sum(takes_candidate(device, "digits", percent) for device in FLEET)
    # Two-sided exact binomial test: a fair split fails it with probability 1e-4.
    assert binomtest(taking, len(FLEET), percent / 100).pvalue > 1e-4, f"{taking}/{len(FLEET)} at {percent}%"


def test_zero_percent_reaches_nobody_and_hundred_percent_everybody():
    assert not any(takes_candidate(device, "digits", 0) for device in FLEET[:2000])
    assert all(takes_candidate(device, "digits", 100) for device in FLEET[:2000])


def test_buckets_of_two_models_are_independent():
    # Otherwise the same 5% of devices would test every model's canary.
    first = {d for d in FLEET if takes_candidate(d, "digits", 10)}
    second = {d for d in FLEET if takes_candidate(d, "letters", 10)}
    both = len(first & second)
    assert binomtest(both, len(FLEET), 0.01).pvalue > 1e-4


@given(st.text(min_size=1, max_size=64), st.text(max_size=64), st.floats(0, 100), st.floats(0, 100))
def test_a_device_is_stable_and_raising_the_percentage_never_drops_it(device, model, low, high):
    low, high = sorted((low, high))
    assert rollout_bucket(device, model) == rollout_bucket(device, model)
    assert 0 <= rollout_bucket(device, model) < 100
    if takes_candidate(device, model, low):
        assert takes_candidate(device, model, high)


def test_a_device_needs_an_id():
    with pytest.raises(ValueError, match="device id"):
        rollout_bucket("", "digits")


def _ref(version):
    return ModelRef(version=version, path=f"models/digits/{version}/model.tflite", sha256="a" * 64, size=1,
                    signature="s", labels=("0", "1"), input=ModelInput(height=32, width=32))


def test_a_device_runs_the_canary_only_inside_its_bucket():
    pointer = ModelPointer(model="digits", labels=("0", "1"), production=_ref("v1"), rollout=Rollout(candidate=_ref("v2"), percent=30))
    chosen = [model_for_device(pointer, device).version for device in FLEET[:5000]]
    assert {"v1", "v2"} == set(chosen)
    for device, version in zip(FLEET[:5000], chosen):
        assert (version == "v2") == (rollout_bucket(device, "digits") < 30)
    assert model_for_device(ModelPointer(model="digits", labels=("0",)), "d") is None
