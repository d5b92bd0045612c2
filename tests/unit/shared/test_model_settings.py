"""shared.model_settings: which names and labels a model may have, and its effective settings."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import layout
from shared.config import Client, Settings
from shared.errors import InvalidObjectNameError
from shared.model_settings import (
    CLIENT_PER_MODEL, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, ModelDefinitionError, check_image_size, check_labels,
    check_model_name, check_overrides, device_settings, effective_settings, labels_from_text, merge_overrides,
    parse_assignments, settings_rows,
)
from shared.retrain import RetrainRequest
from shared.validation import Rejected, check_name

SETTINGS = Settings(thresholds={"new_data_images": 200}, gate={"min_accuracy": 0.9})


# --- names and labels: accepted exactly when every other part of the product accepts them ------------------

@given(st.text(max_size=80))
def test_a_model_name_is_accepted_exactly_when_object_names_retrain_requests_and_firestore_take_it(name):
    try:
        check_model_name(name)
    except ModelDefinitionError as exc:
        assert repr(name) in str(exc)
        accepted = False
    else:
        accepted = True
    try:
        check_name(layout.dataset_object(name, "a", "x.png"))
        in_object_names = True
    except (Rejected, InvalidObjectNameError):
        in_object_names = False
    in_requests = bool(re.fullmatch(RetrainRequest.model_fields["model"].metadata[0].pattern, name))
    assert accepted == in_object_names == in_requests
    if accepted:  # one path segment, and a Firestore id that is not reserved (__.*__) nor '.' or '..'
        assert "/" not in name and not name.startswith(("_", ".")) and len(name.encode()) <= 63


@given(st.lists(st.text(max_size=70), max_size=6))
def test_labels_are_accepted_only_when_each_is_a_valid_dataset_folder_and_they_are_distinct(labels):
    try:
        checked = check_labels(labels)
    except ModelDefinitionError as exc:
        assert str(exc)
        return
    assert checked == tuple(labels)
    assert 2 <= len(labels) and len({label.lower() for label in labels}) == len(labels)
    for label in labels:  # every label is a folder on_upload accepts
        assert check_name(layout.dataset_object("m", label, "x.png")).label == label


@pytest.mark.parametrize("labels, reason", [
    (["cat"], "at least 2 labels"),
    (["cat", "cat"], "'cat' is given more than once"),
    (["cat", "Cat"], "differ only in case"),
    (["cat", "dog/x"], "invalid label 'dog/x'"),
    (["cat", ".."], "invalid label '..'"),
    (["cat", "_x"], "invalid label '_x'"),
    (["cat", "a" * 64], "1-63 characters"),
    ([str(i) for i in range(1001)], "at most 1000 labels"),
])
def test_refused_labels_say_why(labels, reason):
    with pytest.raises(ModelDefinitionError, match=re.escape(reason)):
        check_labels(labels)


@pytest.mark.parametrize("name", ["", "Digits", "a b", "-x", "a/b", "__x__", "é", "a" * 64])
def test_refused_model_names_say_what_is_allowed(name):
    with pytest.raises(ModelDefinitionError, match="lowercase letters, digits"):
        check_model_name(name)


def test_labels_from_text_keep_their_order_and_ignore_spaces():
    assert labels_from_text("cat, dog ,bird") == ("cat", "dog", "bird")
    with pytest.raises(ModelDefinitionError, match="invalid label ''"):
        labels_from_text("cat,,dog")


@pytest.mark.parametrize("size", [MIN_IMAGE_SIZE - 1, MAX_IMAGE_SIZE + 1, 0, True, 32.0])
def test_an_image_size_outside_the_trainers_range_is_refused(size):
    with pytest.raises(ModelDefinitionError, match="square of"):
        check_image_size(size)
    assert check_image_size(MIN_IMAGE_SIZE) == MIN_IMAGE_SIZE


def test_the_image_size_bounds_are_the_trainers():
    pytest.importorskip("tensorflow")
    from trainer_job.pipeline import TrainConfig

    field = TrainConfig.model_fields["image_size"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert (field.default, bounds["Ge"].ge, bounds["Le"].le) == (32, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)


# --- overrides ---------------------------------------------------------------------------------------------

def test_assignments_parse_json_values_or_keep_text():
    assert parse_assignments(["thresholds.new_data_images=50", 'gate.gated_stresses=["dark"]',
                              "client.capture_format=jpeg", "release.max_drop=0.05"]) == {
        "thresholds": {"new_data_images": 50}, "gate": {"gated_stresses": ["dark"]},
        "client": {"capture_format": "jpeg"}, "release": {"max_drop": 0.05}}


@pytest.mark.parametrize("assignment", ["thresholds.new_data_images", "new_data_images=5", ".x=1", "thresholds.=1"])
def test_a_malformed_assignment_names_the_expected_shape(assignment):
    with pytest.raises(ModelDefinitionError, match="expected GROUP.FIELD=VALUE"):
        parse_assignments([assignment])


@pytest.mark.parametrize("overrides, reason", [
    ({"thresholds": {"new_data_images": 0}}, "new_data_images: Input should be greater than or equal to 1"),
    ({"thresholds": {"new_data_image": 5}}, "did you mean thresholds.new_data_images?"),
    ({"gate": {"gated_stresses": ["fog"]}}, "unknown stress ['fog']"),
    ({"release": {"rollout_steps": [50, 10]}}, "rollout_steps must rise strictly"),
    ({"client": {"request_timeout_s": 3}}, "is not a capture default of client"),
    ({"training": {"launcher": "vertex"}}, "'training' cannot be set per model"),
    ({"ports": {"firestore": 1}}, "'ports' cannot be set per model"),
    ({"thresholds": {"drift_retrain": "sometimes"}}, "drift_retrain: String should match pattern"),
])
def test_an_invalid_override_is_refused_with_pydantics_reason(overrides, reason):
    with pytest.raises(ModelDefinitionError, match=re.escape(reason)):
        check_overrides(overrides, SETTINGS)


def test_overrides_are_stored_in_their_validated_form_and_apply_only_to_their_fields():
    checked = check_overrides({"thresholds": {"new_data_images": "5"}, "gate": {"gated_stresses": ["dark", "dark"]},
                               "client": {"capture_sample_rate": 0.5}}, SETTINGS)
    assert checked == {"thresholds": {"new_data_images": 5}, "gate": {"gated_stresses": ["dark"]},
                       "client": {"capture_sample_rate": 0.5}}
    effective = effective_settings(SETTINGS, checked)
    assert effective.thresholds.new_data_images == 5 and effective.gate.gated_stresses == ("dark",)
    assert effective.thresholds.min_success_rate == SETTINGS.thresholds.min_success_rate
    assert effective.gate.min_accuracy == 0.9 and effective.client.capture_sample_rate == 0.5
    assert (effective.project_id, effective.training, effective.ports) == (SETTINGS.project_id, SETTINGS.training, SETTINGS.ports)
    assert effective_settings(effective, checked) == effective  # applying them again changes nothing
    assert effective_settings(SETTINGS, {}) is SETTINGS
    assert SETTINGS.thresholds.new_data_images == 200  # the global settings are untouched


def test_stored_overrides_that_no_longer_validate_are_refused_when_applied():
    with pytest.raises(ModelDefinitionError, match="new_data_images"):
        effective_settings(SETTINGS, {"thresholds": {"new_data_images": -1}})


def test_merging_overrides_replaces_field_by_field():
    stored = {"thresholds": {"new_data_images": 5, "min_success_rate": 0.7}, "gate": {"min_accuracy": 0.5}}
    assert merge_overrides(stored, {"thresholds": {"new_data_images": 9}, "release": {"max_drop": 0.1}}) == {
        "thresholds": {"new_data_images": 9, "min_success_rate": 0.7}, "gate": {"min_accuracy": 0.5},
        "release": {"max_drop": 0.1}}


def test_settings_rows_show_every_per_model_setting_and_mark_overrides():
    rows = {row["setting"]: row for row in settings_rows(SETTINGS, {"thresholds": {"new_data_images": 5}})}
    assert rows["thresholds.new_data_images"] == {"setting": "thresholds.new_data_images", "value": 5,
                                                  "override": True, "global": 200}
    assert rows["gate.min_accuracy"]["override"] is False and rows["gate.min_accuracy"]["value"] == 0.9
    assert {name for name in rows if name.startswith("client.")} == {f"client.{f}" for f in CLIENT_PER_MODEL}


# --- the device side ---------------------------------------------------------------------------------------

def test_a_device_takes_the_models_capture_defaults_over_its_built_in_ones_but_never_over_the_apps():
    published = {"capture_sample_rate": 0.3, "daily_capture_count": 7}
    assert device_settings(Client(), published).capture_sample_rate == 0.3
    assert device_settings(Client(), published).daily_capture_count == 7
    app = Client(capture_sample_rate=0.01)
    assert device_settings(app, published).capture_sample_rate == 0.01
    assert device_settings(app, published).daily_capture_count == 7
    assert device_settings(app, {}) is app


@pytest.mark.parametrize("published", [{"capture_sample_rate": 7}, {"request_timeout_s": 0.001}, {"unknown": 1}, None])
def test_a_device_ignores_capture_defaults_it_cannot_use(published):
    assert device_settings(Client(), published) == Client()
