"""Fault injection on a running local stack: crash or stop one component, then start it again.

The outage tests use it to interrupt a function or the storage emulator the way
a real outage would, and to bring it back on the same port and state directory.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from edgeloop.localstack.processes import component_commands, component_environment, pid_alive, spawn, wait_healthy
from edgeloop.localstack.state import FUNCTIONS, StackError, StackState, load_state
from shared.config import Settings

# Components that keep their state on disk (or none): restarting one is an outage, not a reset.
RESTARTABLE = ("storage", *FUNCTIONS)


def kill_component(directory: Path, name: str, crash: bool = True) -> None:
    """Stop one component's process group: SIGKILL as a crash would (in-flight work lost), or SIGTERM."""
    state = load_state(Path(directory).resolve())
    if state is None or name not in state.pids:
        raise StackError(f"no running stack component {name!r} in {directory}")
    pid = state.pids[name]
    try:
        os.killpg(pid, signal.SIGKILL if crash else signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)  # our child: reap it
    except ChildProcessError:
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:  # another process's child: wait until it is gone
            time.sleep(0.05)


def start_component(directory: Path, name: str, settings: Settings, timeout_s: float = 60.0) -> StackState:
    """Start a stopped component again on its port, with the same state directory."""
    if name not in RESTARTABLE:
        raise StackError(f"{name} keeps its data in memory: restarting it would reset the stack, not interrupt it "
                         f"(restartable: {', '.join(RESTARTABLE)})")
    directory = Path(directory).resolve()
    state = load_state(directory)
    state.pids[name] = spawn(component_commands(state, settings)[name], component_environment(state), state.log_file(name))
    state.save()
    wait_healthy(state, [name], timeout_s, lambda _: None)
    return state
