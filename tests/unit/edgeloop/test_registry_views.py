"""`edgeloop status` shows each version's field holdout beside production's score on the same captures."""

from edgeloop.registry_views import _field_holdout


def test_the_field_holdout_column_shows_both_scores_and_the_size_or_nothing():
    assert _field_holdout({"int8_accuracy": 0.98}) == "-"
    assert _field_holdout({"field_holdout_images": 0}) == "-"
    assert _field_holdout({"field_holdout_images": 40, "int8_field_accuracy": 0.95,
                           "production_int8_field_accuracy": 0.425}) == "0.950 vs 0.425 (40)"
    assert _field_holdout({"field_holdout_images": 12, "int8_field_accuracy": 0.9}) == "0.900 (12)"


# --- what `edgeloop status` and `edgeloop runs` print fits an 80-column terminal ----------------------------

from datetime import datetime, timezone  # noqa: E402

from rich.console import Console  # noqa: E402

from edgeloop import registry_views  # noqa: E402
from edgeloop.registry_views import ModelView  # noqa: E402
from shared.lifecycle import Tally  # noqa: E402
from shared.registry import ModelInput, ModelPointer, ModelRef, Rollout, Transition, VersionRecord  # noqa: E402
from shared.telemetry import BUCKETS, FleetVersion  # noqa: E402

AT = datetime(2025, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
LONG_REASON = ("canary judged better than production: 96.0% of 1250 reports correct against 81.3% of 9875, "
               "with 95% confidence, after the rollout step at 50% of devices")


def ref(version: str) -> ModelRef:
    return ModelRef(version=version, path=f"models/digits/{version}/model.tflite", sha256="0" * 64, size=123_456,
                    signature="c2ln", labels=("0", "1"), input=ModelInput(height=32, width=32))


def record(version: str, stage: str, history: list[tuple[str | None, str, str, str]], published: bool = True) -> VersionRecord:
    return VersionRecord(
        model="digits", version=version, run_id=f"digits-20250314T150926-{version}aaaa", created=AT, stage=stage,
        ref=ref(version) if published else None,
        history=[Transition(source=s, target=t, at=AT, actor=a, reason=r) for s, t, a, r in history],
        metrics={"int8_accuracy": 0.975, "int8_drifted_accuracy": 0.412, "field_holdout_images": 1234,
                 "int8_field_accuracy": 0.951, "production_int8_field_accuracy": 0.425})


def view() -> ModelView:
    candidate = [(None, "candidate", "trainer:digits-20250314T150926-abcdef", "new version")]
    versions = [
        record("v1", "archived", candidate + [("candidate", "production", "trainer:digits-20250314T150926-abcdef", "first"),
                                              ("production", "archived", "on_feedback", "replaced by v2")]),
        record("v2", "production", candidate + [("candidate", "canary", "trainer:x", "passed its gate"),
                                                ("canary", "production", "on_feedback", LONG_REASON)]),
        record("v10", "rolled_back", candidate + [("canary", "rolled_back", "operator:alice", "bad reviews")]),
        record("v11", "rejected", candidate + [("candidate", "rejected", "trainer:y", "failed the quality gate")], published=False),
        record("v12", "canary", candidate + [("candidate", "canary", "trainer:z", "passed its gate")]),
    ]
    pointer = ModelPointer(model="digits", labels=("0", "1"), production=ref("v2"),
                           rollout=Rollout(candidate=ref("v12"), percent=12.5))
    runs = [{"run_id": "digits-20250314T150926-9f8e7d", "model": "digits", "reason": "success_rate", "status": "published",
             "result": {"version": "v12", "stage": "production"}, "created": "2025-03-14T15:09:26.123456+00:00",
             "stages": {"train": {"seconds": 1234.5}}},
            {"run_id": "digits-20250314T140000-000000", "model": "digits", "reason": "new_data", "status": "failed",
             "version": "v11", "error": "the trainer exited with code 1", "created": "2025-03-14T14:00:00+00:00"}]
    drift = {"status": "drift", "version": "v2", "samples": 480, "created": AT,
             "tests": [{"name": "brightness", "drifted": True}, {"name": "contrast", "drifted": True}]}
    tallies = {"v1": Tally(9_875, 12_146), "v2": Tally(12_345, 13_210), "v10": Tally(3, 40), "v12": Tally(1200, 1250)}
    def histogram(counts: dict[int, int]) -> tuple[int, ...]:
        return tuple(counts.get(i, 0) for i in range(BUCKETS))

    fleet = {"v1": FleetVersion(0, 0, histogram({})), "v2": FleetVersion(123_456, 98_765_432, histogram({7: 900, 9: 100})),
             "v10": FleetVersion(3, 40, histogram({19: 40})), "v12": FleetVersion(1_234, 56_789, histogram({5: 10}))}
    return ModelView(pointer, versions, tallies, runs, drift, fleet)


def rendered(*renderables) -> list[str]:
    console = Console(width=80, record=True, color_system=None)
    for renderable in renderables:
        console.print(renderable)
    return console.export_text().splitlines()


def test_status_fits_80_columns_with_stages_versions_and_rates_whole_and_each_change_in_full():
    lines = rendered(*registry_views.model_renderables(view()))
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text, text
    for stage in ("production", "canary", "rolled_back", "rejected", "archived"):
        assert stage in text
    row = next(line for line in lines if line.strip("│ ").startswith("v2 "))
    assert "production" in row and "87.5%" in row and "93.5% (12345/13210)" in row
    assert any("v12" in line and "canary" in line and "12.5%" in line for line in lines)
    assert any("0.975" in line and "0.412" in line and "0.951 vs 0.425 (1234)" in line for line in lines)
    change = next(i for i, line in enumerate(lines) if line.startswith("v2 ") and "on_feedback" in line)
    assert "canary → production by on_feedback" in lines[change]
    wrapped = " ".join(line.strip() for line in lines[change:change + 5])  # wraps under itself, whole words
    assert "after the rollout step at 50% of devices" in " ".join(wrapped.split()), text
    assert "20250314T150926-9f8e7d" in text and "success_rate" in text and "published" in text and "21m" in text
    assert "drift: drift for v2 on 480 inputs (brightness, contrast)" in text
    # Devices seen per version, with their predictions and latency (bucket 7 is 2-4 ms, 9 is 8-16 ms).
    assert "devices seen in 24 h" in text
    row = next(line for line in lines if line.strip("│ ").startswith("v2 ") and "123456" in line)
    assert "98765432" in row and "2.94" in row and row.rstrip(" │").endswith("11"), row
    assert any(line.strip("│ ").startswith("v10 ") and "8192" in line for line in lines), text


def test_runs_fit_80_columns_with_every_reason_and_status_whole():
    runs = [{"run_id": f"digits-20250314T15092{i}-abcdef", "model": "digits", "reason": reason, "status": status,
             "result": {"version": "v123", "stage": "production"}, "stages": {"train": {"seconds": 12345}, "gate": {"seconds": 0}}}
            for i, (reason, status) in enumerate([("success_rate", "published"), ("new_data", "rejected"),
                                                  ("schedule", "running"), ("manual", "failed"), ("drift", "queued")])]
    lines = rendered(registry_views.runs_table(runs, title="digits: runs", model="digits"))
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "…" not in text
    for run in runs:
        assert run["run_id"].removeprefix("digits-") in text and run["reason"] in text and run["status"] in text
    assert "v123" in text and "206m" in text and "run ids are digits-<run>" in text


def test_status_json_has_the_documented_keys_and_plain_values():
    import json

    document = json.loads(json.dumps(registry_views.view_json(view())))
    assert document["model"] == "digits" and document["production"] == "v2"
    assert document["canary"] == {"version": "v12", "percent": 12.5}
    v2 = next(v for v in document["versions"] if v["version"] == "v2")
    assert set(v2) == {"version", "stage", "devices_percent", "fleet", "field", "int8_accuracy", "int8_dark_accuracy",
                       "field_holdout", "size_bytes", "last_change"}
    assert v2["fleet"]["devices"] == 123_456 and v2["fleet"]["predictions"] == 98_765_432
    assert 2 <= v2["fleet"]["latency_p50_ms"] <= 4 and 8 <= v2["fleet"]["latency_p95_ms"] <= 16
    assert v2["stage"] == "production" and v2["devices_percent"] == 87.5 and v2["field"] == {"correct": 12345, "total": 13210}
    assert v2["field_holdout"] == {"accuracy": 0.951, "production_accuracy": 0.425, "images": 1234}
    assert v2["last_change"]["reason"] == LONG_REASON and v2["last_change"]["target"] == "production"
    v11 = next(v for v in document["versions"] if v["version"] == "v11")
    assert v11["devices_percent"] is None and v11["size_bytes"] is None and v11["field"] is None and v11["fleet"] is None
    assert next(v for v in document["versions"] if v["version"] == "v1")["fleet"] == {
        "devices": 0, "predictions": 0, "latency_p50_ms": None, "latency_p95_ms": None}
    assert [r["run_id"] for r in document["runs"]] == ["digits-20250314T150926-9f8e7d", "digits-20250314T140000-000000"]
    assert set(document["runs"][0]) == {"run_id", "model", "reason", "status", "version", "stage", "created", "seconds", "error"}
    assert document["runs"][0]["seconds"] == 1234.5 and document["runs"][1]["error"].startswith("the trainer exited")
    assert document["runs"][1]["version"] == "v11" and document["runs"][1]["stage"] is None
    assert document["drift"] == {"status": "drift", "version": "v2", "samples": 480, "drifted": ["brightness", "contrast"],
                                 "checked": AT.isoformat()}
