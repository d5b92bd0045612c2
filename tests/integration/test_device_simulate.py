"""``edgeloop device simulate`` runs a small fleet against the local stack: each device signs in through the
Auth emulator as a registered device, installs the published model, classifies dimmed digits, and its captures,
feedback and telemetry arrive: ``edgeloop status`` then shows the devices that reported, per version, and their
latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from google.cloud.firestore import FieldFilter
from typer.testing import CliRunner

from edgeloop.cli import app
from shared import layout
from shared.registry import VersionRecord
from tests.integration.helpers import bucket, db
from tests.integration.test_client_sdk import fresh_model, publish
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)


def test_a_simulated_fleet_runs_the_published_model_and_reports_back(local_stack, trained_models, signing_key, tmp_path, monkeypatch):
    model = fresh_model()
    data = trained_models["v1"].data
    ref = make_ref(model, "v1", data, signing_key)
    publish(local_stack, model, production=ref, stored={"v1": data})
    record = VersionRecord(model=model, version="v1", run_id=f"{model}-20261201T000000-abcdef",
                           created=datetime.now(timezone.utc), stage="production", ref=ref)
    db(local_stack).document(layout.version_doc(model, "v1")).set(record.model_dump(mode="json"))
    key_file = tmp_path / "public.pem"
    key_file.write_text(signing_key.public_pem)
    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(local_stack.path))  # connect() sets it; restored afterwards

    # In its own process, as an operator runs it: LiteRT's native "XNNPACK delegate" line is printed once per process.
    log = local_stack.path / "logs" / "cli.log"
    logged_before = log.read_text() if log.exists() else ""
    result = subprocess.run([
        sys.executable, "-m", "edgeloop.cli",
        "device", "simulate", "--dir", str(local_stack.path), "--model", model, "-n", "3", "--images", "15",
        "--low-light", "0.35", "--feedback-rate", "1", "--confirm-rate", "1", "--public-key", str(key_file),
    ], env={**os.environ, "COLUMNS": "80"}, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sim-device-002" in result.stdout and "all 3" in result.stdout
    # An 80-column terminal: no line wider, nothing cut, no log line of the code it ran (they are in logs/cli.log).
    assert max(len(line) for line in result.stdout.splitlines()) <= 80 and "…" not in result.stdout, result.stdout
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    assert not [line for line in lines if line.lstrip().startswith('{"') or "XNNPACK" in line], result.stdout + result.stderr
    assert "XNNPACK" in log.read_text()[len(logged_before):]

    uploads = list(bucket(local_stack).list_blobs(prefix=f"uploads/{model}/"))
    # Each device signed in as the registered device it is (custom token, uid device-<device id>).
    assert {blob.name.split("/")[2] for blob in uploads} <= {f"device-sim-device-{i:03d}" for i in range(3)}
    feedback = db(local_stack).collection(layout.feedback_collection(model))
    assert feedback.count().get()[0][0].value == 45  # every prediction reported (feedback rate 1)
    confirmed = feedback.where(filter=FieldFilter("correct", "==", False)).stream()
    assert all(doc.to_dict().get("true_label") for doc in confirmed)  # and every wrong one corrected

    # Telemetry: each device set its own record once; status counts them per version and shows their latency.
    records = {doc.id: doc.to_dict() for doc in db(local_stack).collection(layout.devices_collection(model)).stream()}
    assert set(records) == {f"device-sim-device-{i:03d}" for i in range(3)}
    assert all(r["model_version"] == "v1" and r["predictions"] == 15 and r["device_class"] == "edgeloop-simulator"
               and r["last_seen"] is not None for r in records.values())
    # A device last seen 25 h ago is not counted.
    stale = {**records["device-sim-device-000"], "last_seen": datetime.now(timezone.utc) - timedelta(hours=25)}
    db(local_stack).document(layout.device_doc(model, "device-gone")).set(stale)
    fleet = _status_json(local_stack, model)["v1"]["fleet"]
    assert fleet["devices"] == 3 and fleet["predictions"] == 45, fleet
    assert 0 < fleet["latency_p50_ms"] <= fleet["latency_p95_ms"] < 1000, fleet  # LiteRT on a 32x32 int8 model
    table = _status_text(local_stack, model)
    assert "devices seen in 24 h" in table, table
    row = next(line for line in table.splitlines() if line.strip("│ ").startswith("v1 ") and " 45 " in line)
    assert row.split("│")[2].strip() == "3", row

    again = CliRunner().invoke(app, [
        "device", "simulate", "--dir", str(local_stack.path), "--model", model, "-n", "3", "--images", "1",
        "--public-key", str(key_file),
    ], env={"COLUMNS": "80"})
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.output  # the devices kept their verified model between runs
    # The same three devices reported again: still three devices, each with its latest period only.
    fleet = _status_json(local_stack, model)["v1"]["fleet"]
    assert fleet["devices"] == 3 and fleet["predictions"] == 3, fleet


def _status(local_stack, model: str, *options: str) -> str:
    result = subprocess.run([sys.executable, "-m", "edgeloop.cli", "status", model, "--dir", str(local_stack.path),
                             *options], env={**os.environ, "COLUMNS": "80"}, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _status_json(local_stack, model: str) -> dict[str, dict]:
    """``status --json``: the model's versions by name."""
    [view] = json.loads(_status(local_stack, model, "--json"))["models"]
    return {version["version"]: version for version in view["versions"]}


def _status_text(local_stack, model: str) -> str:
    text = _status(local_stack, model)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    return text
