"""The device's model store: atomic swap, the previous model kept for rollback, and a file that
rotted on disk never stays active."""

import pytest

from client_sdk.store import ModelStore
from tests.model_fixtures import make_ref, signing_key  # noqa: F401 (fixture)

A, B, C = b"model A" * 50, b"model B" * 50, b"model C" * 50


@pytest.fixture
def refs(signing_key):
    return {name: make_ref("digits", f"v{i + 1}", data, signing_key) for i, (name, data) in enumerate({"A": A, "B": B, "C": C}.items())}


def test_installing_keeps_the_previous_model_and_only_two_files(tmp_path, refs):
    store = ModelStore(tmp_path)
    store.install(refs["A"], A)
    store.install(refs["B"], B)
    assert store.active() == refs["B"] and store.previous() == refs["A"]
    store.install(refs["C"], C)
    assert store.previous() == refs["B"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(f"{refs[n].sha256}.tflite" for n in "BC")


def test_rollback_swaps_the_previous_model_back_and_survives_a_restart(tmp_path, refs):
    store = ModelStore(tmp_path)
    store.install(refs["A"], A)
    store.install(refs["B"], B)
    assert store.rollback() == refs["A"]
    restarted = ModelStore(tmp_path)
    assert restarted.active() == refs["A"] and restarted.read_model(refs["A"]) == A


def test_reinstalling_the_active_model_does_not_lose_the_previous_one(tmp_path, refs):
    store = ModelStore(tmp_path)
    store.install(refs["A"], A)
    store.install(refs["B"], B)
    store.install(refs["B"], B)
    assert store.previous() == refs["A"]


def test_an_active_file_that_rotted_on_disk_falls_back_to_the_previous_model(tmp_path, refs):
    store = ModelStore(tmp_path)
    store.install(refs["A"], A)
    store.install(refs["B"], B)
    store.model_path(refs["B"]).write_bytes(B[:-1] + b"!")
    restarted = ModelStore(tmp_path)
    assert restarted.active() == refs["A"] and restarted.previous() is None


def test_with_no_intact_file_there_is_no_active_model(tmp_path, refs):
    store = ModelStore(tmp_path)
    store.install(refs["A"], A)
    store.model_path(refs["A"]).unlink()
    assert ModelStore(tmp_path).active() is None


def test_a_refusal_is_remembered_across_restarts(tmp_path, refs):
    ModelStore(tmp_path).remember_refusal(refs["C"], "bad_signature: …")
    assert ModelStore(tmp_path).refusal(refs["C"]) == "bad_signature: …"
    assert ModelStore(tmp_path).refusal(refs["A"]) is None


def test_a_refusal_is_of_the_offer_so_the_same_bytes_correctly_signed_are_not_refused(tmp_path, refs):
    forged = refs["C"].model_copy(update={"signature": "AAAA"})
    ModelStore(tmp_path).remember_refusal(forged, "bad_signature: …")
    assert ModelStore(tmp_path).refusal(forged) == "bad_signature: …"
    assert ModelStore(tmp_path).refusal(refs["C"]) is None  # re-published with a good signature: try it
