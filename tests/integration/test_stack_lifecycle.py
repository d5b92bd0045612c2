"""`edgeloop up` / `status` / `down` as a user runs them: healthy within the start timeout, nothing left behind."""

import os
import subprocess
import sys
import time
from pathlib import Path

from edgeloop.localstack import stack
from shared.config import Settings

EDGELOOP = [sys.executable, "-m", "edgeloop.cli"]


def _run(*args, directory):
    return subprocess.run([*EDGELOOP, *args, "--dir", str(directory)], capture_output=True, text=True, timeout=stack.STARTUP_TIMEOUT_S + 60,
                          env={**os.environ, "COLUMNS": "200"})


def test_up_status_down_from_the_command_line_leaves_no_process_behind(tmp_path):
    up = _run("up", directory=tmp_path)  # `up` itself fails unless every component is healthy within stack.STARTUP_TIMEOUT_S
    assert up.returncode == 0, up.stdout + up.stderr
    status = _run("status", directory=tmp_path)
    assert status.returncode == 0, status.stdout
    for component in (*stack.EMULATORS, *stack.FUNCTIONS):
        assert component in status.stdout
    assert status.stdout.count("healthy") == len(stack.EMULATORS) + len(stack.FUNCTIONS)

    state = stack.load_state(tmp_path)
    assert len(stack.stack_processes(state.stack_id)) >= len(state.pids)

    again = _run("up", directory=tmp_path)
    assert again.returncode == 0 and "already running" in again.stdout
    assert stack.load_state(tmp_path).stack_id == state.stack_id

    down = _run("down", directory=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert stack.stack_processes(state.stack_id) == []
    assert _run("status", directory=tmp_path).returncode == 1


def test_a_second_up_in_process_returns_the_running_stack(local_stack):
    state, started_now = stack.up(Settings(), Path(local_stack.directory))
    assert not started_now
    assert state.stack_id == local_stack.stack_id


def test_logs_and_state_live_under_the_stack_directory(local_stack):
    directory = Path(local_stack.directory)
    assert (directory / stack.STATE_FILE).exists()
    for component in (*stack.EMULATORS, *stack.FUNCTIONS):
        assert local_stack.log_file(component).is_relative_to(directory)
        assert local_stack.log_file(component).exists()


def test_a_crashed_component_makes_status_unhealthy_and_up_restarts_the_stack(tmp_path):
    state, _ = stack.up(Settings(), tmp_path)
    try:
        os.killpg(state.pids["check_drift"], 9)
        deadline = time.monotonic() + 10
        while stack.pid_alive(state.pids["check_drift"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        by_name = {c.name: c for c in stack.status(tmp_path)}
        assert not by_name["check_drift"].running
        assert by_name["firestore"].healthy
        restarted, started_now = stack.up(Settings(), tmp_path)
        assert started_now and restarted.stack_id != state.stack_id
        assert stack.stack_processes(state.stack_id) == []
    finally:
        report = stack.down(tmp_path)
    assert report.leftover_pids == []
