"""Start, inspect and stop the embedded local stack: the names callers use.

Components, each its own process group:

* ``firestore``: the Cloud SDK Firestore emulator, enforcing infra/firebase/firestore.rules
  and delivering trigger events to the on_feedback function;
* ``pubsub``: the Cloud SDK Pub/Sub emulator (topics, push subscriptions, dead letters);
* ``storage``: gcp-storage-emulator plus the GCS notification publisher;
* ``auth``: the Firebase Auth emulator (``firebase emulators:start --only auth``, pinned
  firebase-tools); devices sign in to it through the Auth REST API, and the stack's
  processes verify its tokens (``FIREBASE_AUTH_EMULATOR_HOST``);
* one functions-framework server per function in functions/main.py.

State (ports, pids, logs, stored objects) lives under one directory, ``.edgeloop/``
by default. The work is split by job: ``state`` (the state file), ``processes``
(spawn, health, stop), ``wiring`` (which event reaches which function) and
``faults`` (kill and restart one component). ``up`` lives here because starting
interleaves supervision and wiring: routes are created once the emulator holding them answers.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

from edgeloop.localstack.faults import RESTARTABLE, kill_component, start_component
from edgeloop.localstack.processes import (
    AUTH_AUX_PORTS,
    FIRESTORE_RULES,
    FUNCTIONS_SOURCE,
    REPO_ROOT,
    STACK_ID_VARIABLE,
    ComponentStatus,
    StopReport,
    component_commands,
    component_environment,
    down,
    free_port,
    pid_alive,
    running_stack,
    spawn,
    stack_processes,
    status,
    wait_healthy,
)
from edgeloop.localstack.state import EMULATORS, FUNCTIONS, STATE_FILE, StackError, StackState, load_state
from edgeloop.localstack.wiring import (
    FIRESTORE_TRIGGERS,
    PUSH_ROUTES,
    create_topics_and_subscriptions,
    register_firestore_triggers,
)
from shared.config import Settings

__all__ = [
    "EMULATORS", "FIRESTORE_RULES", "FIRESTORE_TRIGGERS", "FUNCTIONS", "FUNCTIONS_SOURCE", "PUSH_ROUTES", "REPO_ROOT",
    "RESTARTABLE", "STACK_ID_VARIABLE", "STATE_FILE", "ComponentStatus", "StackError", "StackState", "StopReport",
    "down", "free_port", "kill_component", "load_state", "pid_alive", "running_stack", "stack_processes",
    "STARTUP_TIMEOUT_S", "start_component", "status", "up",
]


# The Auth emulator compiles its whole REST schema when it starts: ~15 s of CPU, far longer on a busy machine.
STARTUP_TIMEOUT_S = 150.0


def up(
    settings: Settings,
    directory: Path | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
    on_ready: Callable[[str], None] = lambda name: None,
) -> tuple[StackState, bool]:
    """Start the stack, or return the healthy one already running: (state, started_now)."""
    directory = Path(directory or settings.stack_dir).resolve()
    existing = running_stack(directory)
    if existing is not None:
        return existing, False
    if load_state(directory) is not None:
        down(directory)  # a half-dead earlier stack: clear it before starting anew

    directory.mkdir(parents=True, exist_ok=True)
    configured = {
        "firestore": settings.ports.firestore,
        "pubsub": settings.ports.pubsub,
        "storage": settings.ports.storage,
        "auth": getattr(settings.ports, "auth", 0),
        **{name: 0 for name in AUTH_AUX_PORTS},
        **{
            name: (settings.ports.functions_base + i if settings.ports.functions_base else 0)
            for i, name in enumerate(FUNCTIONS)
        },
    }
    ports: dict[str, int] = {}
    for name, port in configured.items():
        # The kernel may hand the same free port out twice before anything binds it: never give two components one.
        while not port or port in ports.values():
            port = free_port(settings.host)
        ports[name] = port
    state = StackState(
        stack_id=uuid.uuid4().hex,
        directory=str(directory),
        host=settings.host,
        project_id=settings.project_id,
        bucket=settings.bucket,
        ports=ports,
        started_at=time.time(),
    )
    commands = component_commands(state, settings)
    env = component_environment(state)
    try:
        # Pub/Sub first: the storage notifier publishes to it as soon as it starts. Auth too: it is the slowest to start.
        state.pids["auth"] = spawn(commands["auth"], env, state.log_file("auth"))
        state.pids["pubsub"] = spawn(commands["pubsub"], env, state.log_file("pubsub"))
        for name in ("firestore", *FUNCTIONS):
            state.pids[name] = spawn(commands[name], env, state.log_file(name))
        state.save()
        wait_healthy(state, ["pubsub"], timeout_s, on_ready)
        state.pids["storage"] = spawn(commands["storage"], env, state.log_file("storage"))
        state.save()
        create_topics_and_subscriptions(state, settings)
        remaining = timeout_s - (time.time() - state.started_at)
        wait_healthy(state, ["firestore", "storage", "auth", *FUNCTIONS], max(remaining, 1.0), on_ready)
        register_firestore_triggers(state)
    except BaseException:
        down(directory)
        raise
    return state, True
