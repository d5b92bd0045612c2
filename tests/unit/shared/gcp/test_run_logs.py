"""A run's end in the log: a failed run is an ERROR ``run_failed`` line naming its model, which Cloud Monitoring
alerts on (infra/terraform/monitoring.tf); other outcomes are INFO."""

from __future__ import annotations

import json

from shared.gcp.runs import log_completion, new_run_id, run_model


def test_a_run_id_names_its_model_even_with_hyphens_in_it():
    assert run_model(new_run_id("digits", 1_790_000_000)) == "digits"
    assert run_model(new_run_id("web-rules-1a2b", 1_790_000_000)) == "web-rules-1a2b"


def test_a_failed_run_logs_run_failed_at_error_with_its_model_stage_and_error(capsys):
    run_id = new_run_id("digits", 1_790_000_000)
    log_completion(run_id, "failed", "train", "the trainer exited with code 1")
    log_completion(run_id, "published")
    failed, published = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert failed["severity"] == "ERROR" and failed["event"] == "run_failed" and failed["model"] == "digits"
    assert failed["run_id"] == run_id and failed["failed_stage"] == "train"
    assert "the trainer exited with code 1" in failed["message"]
    assert published["severity"] == "INFO" and published["event"] == "run_published" and published["model"] == "digits"
