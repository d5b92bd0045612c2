"""Models an operator defines (``edgeloop model create|list|show``), and their settings honoured by the functions.

The commands run in-process on the local stack (``--dir``) and once as a subprocess through the deployed-project
code path (``--project``); the decisions are the stack's real functions reacting to real uploads.
"""

from __future__ import annotations

import json
import uuid

from typer.testing import CliRunner

from edgeloop.cli import app
from shared import layout
from tests.integration.helpers import db
from tests.integration.test_remote_cli import remote_cli
from tests.model_fixtures import signing_key  # noqa: F401 (fixture)


def cli(local_stack, *args: str):
    """The command in an 80-column terminal; none of its lines is wider (README: every table fits)."""
    result = CliRunner().invoke(app, [*args, "--dir", str(local_stack.path)], env={"COLUMNS": "80"})
    assert max(map(len, result.stdout.splitlines()), default=0) <= 80, result.stdout
    return result


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def document(local_stack, path: str) -> dict:
    return db(local_stack).document(path).get().to_dict() or {}


def test_create_stores_labels_image_size_and_overrides_and_list_and_show_read_them_back(local_stack):
    model = name("pets")
    created = cli(local_stack, "model", "create", model, "--labels", "cat,dog,bird", "--image-size", "48",
                  "--set", "thresholds.new_data_images=5", "--set", "client.capture_sample_rate=0.25",
                  "--set", 'gate.gated_stresses=["dark"]', "--json")
    assert created.exit_code == 0, created.output
    outcome = json.loads(created.stdout)
    assert (outcome["created"], outcome["labels"], outcome["image_size"]) == (True, ["cat", "dog", "bird"], 48)

    assert document(local_stack, layout.model_doc(model)) | {"updated": None} == {
        "model": model, "labels": ["cat", "dog", "bird"], "client": {"capture_sample_rate": 0.25}, "updated": None}
    assert document(local_stack, layout.model_settings_doc(model))["overrides"] == {
        "thresholds": {"new_data_images": 5}, "client": {"capture_sample_rate": 0.25}, "gate": {"gated_stresses": ["dark"]}}
    assert document(local_stack, layout.trainer_config_doc(model)) == {"config": {"image_size": 48}}

    listed = json.loads(cli(local_stack, "model", "list", "--json").stdout)["models"]
    (mine,) = [m for m in listed if m["model"] == model]
    assert mine["overrides"]["thresholds"] == {"new_data_images": 5} and mine["production"] is None
    table = cli(local_stack, "model", "list")
    overrides = "".join(line.split("│")[-2].strip() for line in table.stdout.splitlines() if line.count("│") == 6)
    assert table.exit_code == 0 and model in table.stdout and "thresholds.new_data_images=5" in overrides, table.stdout

    shown = json.loads(cli(local_stack, "model", "show", model, "--json").stdout)
    rows = {row["setting"]: row for row in shown["settings"]}
    assert rows["thresholds.new_data_images"]["value"] == 5 and rows["thresholds.new_data_images"]["override"]
    assert not rows["thresholds.min_success_rate"]["override"]
    assert rows["gate.gated_stresses"]["value"] == ["dark"]
    text = cli(local_stack, "model", "show", model)
    assert text.exit_code == 0 and "thresholds.new_data_images" in text.stdout and "model (global" in text.stdout, text.stdout

    # The same labels again: idempotent; a new override is merged with the stored ones.
    again = cli(local_stack, "model", "create", model, "--labels", "cat,dog,bird", "--set", "release.max_drop=0.05")
    assert again.exit_code == 0 and "updated" in again.stdout and "release.max_drop" in again.stdout, again.output
    assert document(local_stack, layout.model_settings_doc(model))["overrides"]["thresholds"] == {"new_data_images": 5}
    assert document(local_stack, layout.trainer_config_doc(model)) == {"config": {"image_size": 48}}
    same = cli(local_stack, "model", "create", model, "--labels", "cat,dog,bird")
    assert same.exit_code == 0 and "unchanged" in same.stdout


def test_refusals_name_the_reason_and_write_nothing(local_stack, tmp_path):
    model = name("refused")
    assert cli(local_stack, "model", "create", model, "--labels", "a,b").exit_code == 0
    cases = {
        ("model", "create", model, "--labels", "a,c"): "exists with labels ['a', 'b'], not ['a', 'c']",
        ("model", "create", model, "--labels", "b,a"): "in another order",
        ("model", "create", "Bad Name", "--labels", "a,b"): "invalid model name 'Bad Name'",
        ("model", "create", name("x"), "--labels", "a"): "at least 2 labels",
        ("model", "create", name("x"), "--labels", "a,a/b"): "invalid label 'a/b'",
        ("model", "create", name("x"), "--labels", "a,b", "--image-size", "4"): "square of 8 to 512",
        ("model", "create", name("x"), "--labels", "a,b", "--set", "thresholds.new_data_images=0"):
            "greater than or equal to 1",
        ("model", "create", name("x"), "--labels", "a,b", "--set", "training.launcher=vertex"): "cannot be set per model",
        ("model", "create", name("x")): "--labels a,b,c or --from-folder DIR",
        ("model", "create", name("x"), "--from-folder", str(tmp_path / "none")): "not a directory",
        ("model", "show", name("ghost")): "no model",
        ("model", "create", name("x"), "--labels", "a,b", "--backbone", "resnet"): "mobilenet_v3_small",
        ("model", "create", name("x"), "--labels", "a,b", "--backbone", "mobilenet_v3_small", "--image-size", "16"):
            "32",
        ("model", "create", name("x"), "--labels", "a,b", "--backbone", "cnn", "--weights", "imagenet"): "has no ImageNet weights",
        ("model", "create", name("x"), "--labels", "a,b", "--weights", "none"): "--weights goes with --backbone",
    }
    for args, reason in cases.items():
        result = cli(local_stack, *args)
        assert result.exit_code == 1, (args, result.output)
        assert reason in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
    assert document(local_stack, layout.model_doc(model))["labels"] == ["a", "b"]
    assert not [m for m in json.loads(cli(local_stack, "model", "list", "--json").stdout)["models"]
                if m["model"].startswith("x-")]


def test_labels_from_a_folder_of_images(local_stack, tmp_path):
    model = name("folder")
    for label in ("ripe", "raw", "rotten"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.png").write_bytes(b"not read")
    (tmp_path / ".cache").mkdir()
    result = cli(local_stack, "model", "create", model, "--from-folder", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == ["raw", "ripe", "rotten"]  # sorted: a folder has no order
    assert document(local_stack, layout.model_doc(model))["labels"] == ["raw", "ripe", "rotten"]
    (tmp_path / "empty").mkdir()
    refused = cli(local_stack, "model", "create", name("folder"), "--from-folder", str(tmp_path))
    assert refused.exit_code == 1 and "no .png or .jpg image in empty" in " ".join(refused.output.split())


def test_create_list_and_show_through_the_deployed_project_code_path(local_stack, tmp_path):
    model = name("remote")
    created = remote_cli(local_stack, tmp_path, "model", "create", model, "--labels", "x,y", "--set",
                         "thresholds.min_success_rate=0.7", "--json")
    assert created.returncode == 0, created.stdout + created.stderr
    assert json.loads(created.stdout)["overrides"] == {"thresholds": {"min_success_rate": 0.7}}
    shown = remote_cli(local_stack, tmp_path, "model", "show", model, "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {row["setting"]: row for row in json.loads(shown.stdout)["settings"]}
    assert rows["thresholds.min_success_rate"] == {"setting": "thresholds.min_success_rate", "value": 0.7,
                                                   "override": True, "global": 0.85}
    refused = remote_cli(local_stack, tmp_path, "model", "create", model, "--labels", "y,x")
    assert refused.returncode == 1 and "in another order" in refused.stderr


# --- the functions honour each model's settings -------------------------------------------------------------

def test_a_per_model_new_data_threshold_asks_for_a_run_where_the_global_one_does_not(local_stack):
    """Model A lowers thresholds.new_data_images to 5; model B keeps the global 30 (tests/conftest.py). Five
    labelled images each: on_upload asks for A's run (queued: training is paused), never for B's."""
    from edgeloop.localstack.function_logs import log_entries
    from shared.digits import load_digits_rgb
    from tests.integration.helpers import bucket, control, eventually, image_docs

    a, b = name("own-threshold"), name("global-threshold")
    assert cli(local_stack, "model", "create", a, "--labels", "0,1,2", "--set", "thresholds.new_data_images=5").exit_code == 0
    assert cli(local_stack, "model", "create", b, "--labels", "0,1,2").exit_code == 0
    for model in (a, b):
        db(local_stack).document(layout.training_control_doc(model)).set({"paused": True}, merge=True)
    digits = [d for d in load_digits_rgb()[:40] if d.label in ("0", "1", "2")][:5]
    for model in (a, b):
        for i, digit in enumerate(digits):
            bucket(local_stack).blob(layout.dataset_object(model, digit.label, f"{i}.png")).upload_from_string(
                digit.png(), content_type="image/png")
    for model in (a, b):
        eventually(lambda: len(image_docs(local_stack, model)) == 5, what=f"{model}'s five images registered")
    cause = f"new_data:{a}:after-start"
    eventually(lambda: any(p["cause"] == cause for p in control(local_stack, a).get("pending") or []),
               what="A's new-data request queued by launch_training")
    requested = [e for e in log_entries(local_stack, "on_upload") if e.get("event") == "retrain_requested"]
    # (two uploads handled at once may both see the fifth image and ask: launch_training serves one cause once)
    assert {e["model"] for e in requested if e["model"] in (a, b)} == {a}
    assert not control(local_stack, b).get("pending") and not control(local_stack, b).get("causes")


def test_a_device_takes_the_capture_defaults_its_model_publishes(local_stack, tmp_path, signing_key):
    from shared.config import Client
    from tests.integration.test_client_sdk import FAST, device

    model = name("capture")
    assert cli(local_stack, "model", "create", model, "--labels", "a,b", "--set", "client.capture_sample_rate=0.5",
               "--set", "client.daily_capture_count=3").exit_code == 0
    phone = device(local_stack, tmp_path, model, signing_key)
    assert phone.settings.capture_sample_rate == FAST.capture_sample_rate == Client().capture_sample_rate
    assert phone.check_for_update().status.value == "nothing_published"  # one pointer read
    assert (phone.settings.capture_sample_rate, phone.settings.daily_capture_count) == (0.5, 3)
    assert phone.budget.settings.daily_capture_count == 3
    assert phone.settings.request_timeout_s == FAST.request_timeout_s  # what the app set is its own
    app_chosen = device(local_stack, tmp_path, model, signing_key, device_id="kiosk",
                        settings=FAST.model_copy(update={"capture_sample_rate": 0.01}))
    app_chosen.check_for_update()
    assert (app_chosen.settings.capture_sample_rate, app_chosen.settings.daily_capture_count) == (0.01, 3)


def test_the_scheduler_tick_covers_created_models_each_with_its_own_settings(local_stack):
    """An empty tick checks every registered model besides the configured ones; each check records the policy
    of its own model (thresholds.drift_retrain), not the global one."""
    from shared.config import Settings
    from shared.gcp import tick

    own, plain = name("tick-own"), name("tick-plain")
    assert cli(local_stack, "model", "create", own, "--labels", "a,b", "--set", "thresholds.drift_retrain=always").exit_code == 0
    assert cli(local_stack, "model", "create", plain, "--labels", "a,b").exit_code == 0
    settings = Settings(project_id=local_stack.project_id, bucket=local_stack.bucket)
    assert {own, plain, *settings.models} <= set(tick.models_to_check(None, settings))
    check_id = uuid.uuid4().hex
    for model in (own, plain):
        tick.handle_tick({"model": model}, check_id, settings)
    policies = {model: document(local_stack, f"{layout.drift_reports_collection(model)}/{check_id}")["retrain_policy"]
                for model in (own, plain)}
    assert policies == {own: "always", plain: settings.thresholds.drift_retrain} and settings.thresholds.drift_retrain != "always"


def test_a_model_chooses_its_backbone_as_the_trainer_validates_it(local_stack):
    model = name("photos")
    created = cli(local_stack, "model", "create", model, "--labels", "a,b", "--image-size", "96",
                  "--backbone", "mobilenet_v3_small", "--weights", "none")
    assert created.exit_code == 0, created.output
    assert document(local_stack, layout.trainer_config_doc(model)) == {
        "config": {"image_size": 96, "backbone": "mobilenet_v3_small", "weights": "none"}}
    from trainer_job import load_train_config
    from shared.config import Settings

    config = load_train_config(model, Settings())
    assert (config.backbone, config.weights, config.image_size) == ("mobilenet_v3_small", "none", 96)
    # Without --weights the backbone's default (pretrained where it has them) is stored, so the run says which.
    again = cli(local_stack, "model", "create", model, "--labels", "a,b", "--backbone", "mobilenet_v3_small")
    assert again.exit_code == 0 and "weights" in again.stdout, again.output
    assert document(local_stack, layout.trainer_config_doc(model))["config"]["weights"] == "imagenet"


def test_a_model_whose_pointer_clients_would_refuse_is_listed_with_the_problem_beside_the_others(local_stack):
    broken, fine = name("broken"), name("fine")
    assert cli(local_stack, "model", "create", fine, "--labels", "a,b").exit_code == 0
    db(local_stack).document(layout.model_doc(broken)).set(
        {"model": broken, "labels": ["a", "b"], "production": {"version": "v1", "sha256": "not-a-digest"}})

    listed = cli(local_stack, "model", "list", "--json")
    assert listed.exit_code == 0, listed.output
    models = {m["model"]: m for m in json.loads(listed.stdout)["models"]}
    assert models[fine]["problem"] is None
    assert models[broken]["labels"] == ["a", "b"] and models[broken]["problem"].startswith("invalid pointer")
    table = cli(local_stack, "model", "list")
    assert table.exit_code == 0 and "invalid pointer" in table.stdout, table.stdout
