"""The operator commands through the code path they take against a deployed project.

Each command runs in its own process, given only ``--project`` and ``--bucket`` and the emulators'
variables (what the standard clients read instead of Google Cloud's endpoints and credentials), from a
directory where no local stack's state is reachable: no state file, no --dir. What the local stack
supplies is its data, exactly as a deployed project would.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys

from shared.launch_rules import RunStatus
from tests.integration.helpers import eventually
from tests.integration.test_release import canary, pointer, record, settings  # noqa: F401 (fixtures)
from tests.model_fixtures import digits, signing_key, trained_models  # noqa: F401 (fixtures)


def remote_cli(local_stack, home, *args: str) -> subprocess.CompletedProcess:
    """``edgeloop --project P --bucket B ARGS`` in an 80-column terminal, with no stack state in reach;
    no line of a table output is wider than 80 columns or a log line of the code the command ran."""
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "COLUMNS": "80",
        "CLOUDSDK_CONFIG": str(home / "gcloud"), "NO_GCE_CHECK": "true",
        "EDGELOOP_STACK_DIR": str(home / "no-stack"),  # empty: no state file to take a shortcut through
        **{k: v for k, v in local_stack.client_env().items() if k.endswith("_EMULATOR_HOST")},
    }
    done = subprocess.run(
        [sys.executable, "-m", "edgeloop.cli", "--project", local_stack.project_id, "--bucket", local_stack.bucket,
         *args], cwd=home, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    lines = done.stdout.splitlines()
    if "--json" not in args:
        assert max(map(len, lines), default=0) <= 80, done.stdout
        assert not [line for line in lines if line.lstrip().startswith('{"') or "XNNPACK" in line], done.stdout
    return done


def test_status_runs_retrain_promote_rollback_report_and_dead_letters_through_the_remote_code_path(local_stack, canary, tmp_path):
    model, home = canary, tmp_path
    status = remote_cli(local_stack, home, "status", model)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"project {local_stack.project_id}, bucket {local_stack.bucket}" in " ".join(status.stdout.split())
    assert "local stack (" not in status.stdout  # no component table: nothing but the data was reached
    assert "production" in status.stdout and "canary" in status.stdout

    assert remote_cli(local_stack, home, "promote", model, "v2", "--percent", "30").returncode == 0
    assert pointer(local_stack, model).rollout.percent == 30
    promoted = remote_cli(local_stack, home, "promote", model, "v2", "--reason", "remote")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert pointer(local_stack, model).production.version == "v2"
    rolled = remote_cli(local_stack, home, "rollback", model, "--reason", "from afar")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert pointer(local_stack, model).production.version == "v1"
    v2 = record(local_stack, model, "v2")
    assert [(t["source"], t["target"], t["actor"]) for t in v2["history"][-2:]] == [
        ("canary", "production", f"operator:{getpass.getuser()}"),
        ("production", "rolled_back", f"operator:{getpass.getuser()}")]
    assert v2["history"][-1]["reason"] == "from afar"

    retrained = remote_cli(local_stack, home, "retrain", model, "--note", "remote operator")
    assert retrained.returncode == 0, retrained.stdout + retrained.stderr
    run_id = retrained.stdout.split("run ", 1)[1].split()[0]
    assert "retrain requested for" in retrained.stdout and run_id.startswith(model)

    def ended() -> dict | None:  # the run ends on its own: this model has no images to train on
        listed = remote_cli(local_stack, home, "runs", model, "--json")
        assert listed.returncode == 0, listed.stderr
        runs = json.loads(listed.stdout)["runs"]
        assert {run["model"] for run in runs} == {model}
        return next((run for run in runs if run["run_id"] == run_id and run["status"] in RunStatus.FINAL), None)

    assert eventually(ended, 150, "the requested run to end")["status"] == RunStatus.FAILED
    table = remote_cli(local_stack, home, "runs", model)
    assert table.returncode == 0 and "manual" in table.stdout

    document = json.loads(remote_cli(local_stack, home, "status", model, "--json").stdout)
    assert document["target"] == {"project": local_stack.project_id, "bucket": local_stack.bucket,
                                  "google_cloud": False, "emulators": document["target"]["emulators"]}
    assert document["stack"] is None
    [view] = document["models"]
    assert view["production"] == "v1" and view["canary"] is None
    assert run_id in [run["run_id"] for run in view["runs"]]

    drawn = remote_cli(local_stack, home, "report", model, "--output", "report.png")
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    assert (home / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    letters = remote_cli(local_stack, home, "dead-letters")  # Pub/Sub's subscriber side (kept: nothing replayed)
    assert letters.returncode == 0 and "dead letters (" in letters.stdout, letters.stdout + letters.stderr

    # The commands' log lines went to the configured stack directory's logs, which holds nothing else.
    assert sorted(p.name for p in (home / "no-stack").iterdir()) == ["logs"]
    logged = (home / "no-stack" / "logs" / "cli.log").read_text()
    assert '"event": "model_promoted"' in logged and '"event": "retrain_requested"' in logged
