"""Process supervision for the local stack: spawn its components, check their health, find and stop its processes.

Each component is its own process group, so a stop leaves nothing behind; every
process gets ``EDGELOOP_STACK_ID`` in its environment, which is how a stop (and
the tests) prove no process of the stack is left, children of children included.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import requests

from edgeloop.localstack.state import EMULATORS, FUNCTIONS, STATE_FILE, StackError, StackState, load_state
from edgeloop.localstack.tools import find_tools
from edgeloop.localstack.wiring import firestore_trigger_address, storage_notification_topic
from shared.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRESTORE_RULES = REPO_ROOT / "infra/firebase/firestore.rules"
FUNCTIONS_SOURCE = REPO_ROOT / "functions/main.py"
STACK_ID_VARIABLE = "EDGELOOP_STACK_ID"
# The Firebase Auth emulator's helper servers (its hub and reserved logging port): ports of their own per stack.
AUTH_AUX_PORTS = ("auth_hub", "auth_logging")


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    url: str


@dataclass(frozen=True)
class StopReport:
    stopped: list[str]
    leftover_pids: list[int]


# --- start ---------------------------------------------------------------------

def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stack_processes(stack_id: str) -> list[int]:
    """Pids of live processes carrying this stack's marker (children of children included)."""
    marker = f"{STACK_ID_VARIABLE}={stack_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


def spawn(argv: list[str], env: dict[str, str], log_file: Path) -> int:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            start_new_session=True,  # own process group: stop kills it whole
        )
    return process.pid


def component_commands(state: StackState, settings: Settings) -> dict[str, list[str]]:
    """The command line of every component of ``state``."""
    tools = find_tools()
    host, ports = state.host, state.ports
    commands = {
        "firestore": [
            str(tools.java), "-Duser.language=en", "-cp", str(tools.firestore_jar),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
            f"--host={host}", f"--port={ports['firestore']}",
            f"--rules={FIRESTORE_RULES}",
            f"--functions_emulator={firestore_trigger_address(state)}",
        ],
        "pubsub": [str(tools.pubsub_launcher), f"--host={host}", f"--port={ports['pubsub']}"],
        "storage": [
            str(tools.python), "-m", "edgeloop.localstack.storage_server",
            "--host", host, "--port", str(ports["storage"]),
            "--data-dir", str(state.path / "storage"), "--bucket", state.bucket,
            "--project", state.project_id, "--topic", storage_notification_topic(settings),
        ],
    }
    if "auth" in ports:
        commands["auth"] = auth_emulator_command(state, tools.node, tools.firebase_cli)
    for name in FUNCTIONS:
        commands[name] = [
            str(tools.functions_framework), "--source", str(FUNCTIONS_SOURCE), "--target", name,
            "--signature-type", "cloudevent", "--host", host, "--port", str(ports[name]),
        ]
    return commands


def auth_emulator_command(state: StackState, node: Path, firebase_cli: Path) -> list[str]:
    """``firebase emulators:start --only auth`` (the pinned firebase-tools), configured by a firebase.json of the stack.

    It runs offline: no Java, nothing downloaded (the CLI's message-of-the-day fetch fails and is ignored).
    Its hub locator (TMPDIR) and debug log stay in the stack's directory, so two stacks never share them.
    """
    host, ports = state.host, state.ports
    config = {"emulators": {
        "auth": {"host": host, "port": ports["auth"]},
        "hub": {"host": host, "port": ports["auth_hub"]},
        "logging": {"host": host, "port": ports["auth_logging"]},
        "ui": {"enabled": False},
        "singleProjectMode": True,
    }}
    config_file = state.path / "firebase.json"
    config_file.write_text(json.dumps(config, indent=2))
    scratch = state.path / "auth-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    return [
        shutil.which("env") or "/usr/bin/env", f"TMPDIR={scratch}", f"FIREBASE_DEBUG_PATH={state.log_file('auth-debug')}",
        # A larger young generation: the emulator compiles its OpenAPI schema at start, a quarter less CPU this way.
        str(node), "--max-semi-space-size=64", str(firebase_cli), "emulators:start", "--only", "auth",
        "--project", state.project_id, "--config", str(config_file),
    ]


def component_environment(state: StackState) -> dict[str, str]:
    """What every component runs with: the emulators' addresses and the stack's id and directory."""
    return {
        **os.environ,
        **state.client_env(),
        STACK_ID_VARIABLE: state.stack_id,
        "EDGELOOP_STACK_DIR": state.directory,  # trainers launched by the functions log and keep keys here
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }


# --- health ---------------------------------------------------------------------

def is_healthy(state: StackState, component: str) -> bool:
    if component not in state.ports:  # a stack started before the component existed
        return False
    url = state.url(component)
    try:
        if component in ("firestore", "pubsub"):
            response = requests.get(url + "/", timeout=1)
            return response.ok and response.text.strip() == "Ok"
        if component == "auth":
            response = requests.get(url + "/", timeout=1)
            return response.ok and response.json().get("authEmulator", {}).get("ready") is True
        if component == "storage":
            return requests.get(f"{url}/storage/v1/b/{state.bucket}", timeout=1).ok
        # functions-framework has no health route; any HTTP answer means it is serving.
        requests.get(url + "/robots.txt", timeout=1)
        return True
    except requests.RequestException:
        return False


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_healthy(state: StackState, components: list[str], timeout_s: float, on_ready: Callable[[str], None]) -> None:
    """Return once every one of ``components`` is healthy; StackError if one exits or the time runs out."""
    pending = list(components)
    deadline = time.monotonic() + timeout_s
    while pending:
        for name in list(pending):
            if is_healthy(state, name):
                pending.remove(name)
                on_ready(name)
            elif not pid_alive(state.pids[name]):
                raise StackError(f"{name} exited during start; last log lines:\n{_log_tail(state.log_file(name))}")
        if pending and time.monotonic() > deadline:
            raise StackError(f"not healthy after {timeout_s:.0f}s: {', '.join(pending)} (logs in {state.path / 'logs'})")
        if pending:
            time.sleep(0.2)


def status(directory: Path) -> list[ComponentStatus]:
    state = load_state(directory)
    if state is None:
        return []
    return [
        ComponentStatus(
            name=name,
            pid=state.pids.get(name),
            running=bool(state.pids.get(name)) and pid_alive(state.pids[name]),
            healthy=is_healthy(state, name),
            url=state.url(name) if name in state.ports else "-",
        )
        for name in (*EMULATORS, *FUNCTIONS)
    ]


def running_stack(directory: Path) -> StackState | None:
    """The stack in ``directory`` if every component of it is healthy."""
    components = status(directory)
    if components and all(c.running and c.healthy for c in components):
        return load_state(directory)
    return None


# --- stop -----------------------------------------------------------------------

def down(directory: Path, grace_s: float = 10.0) -> StopReport:
    """Stop every process of the stack in ``directory``; report any that survived."""
    directory = Path(directory).resolve()
    state = load_state(directory)
    if state is None:
        return StopReport([], [])
    stopped = []
    for name, pid in state.pids.items():
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
        except ProcessLookupError:
            pass
    for pid in stack_processes(state.stack_id):  # processes the stack started itself, e.g. local trainer runs
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while stack_processes(state.stack_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in stack_processes(state.stack_id):  # whatever ignored SIGTERM
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in state.pids.values():  # reap our own children so they do not linger as zombies
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    time.sleep(0.1)
    leftover = stack_processes(state.stack_id)
    if not leftover:
        (directory / STATE_FILE).unlink(missing_ok=True)
    return StopReport(stopped, leftover)


@contextmanager
def cpu_spent(pids: Mapping[str, int], names: Iterable[str]) -> Iterator[dict[str, float]]:
    """CPU seconds each named process (and its descendants) used while the block ran, filled in when it ends; a
    process that could not be read before and after is left out."""
    names = tuple(names)
    spent: dict[str, float] = {}
    before = cpu_seconds(pids, names)
    yield spent
    after = cpu_seconds(pids, names)
    spent.update({name: after[name] - before[name] for name in names if name in before and name in after})


def cpu_seconds(pids: Mapping[str, int], names: Iterable[str]) -> dict[str, float]:
    """CPU seconds (user + system) each named process (a stack's ``pids``) used so far, with its descendants."""
    import psutil

    used = {}
    for name in names:
        try:
            root = psutil.Process(pids[name])
            used[name] = sum(sum(p.cpu_times()[:2]) for p in (root, *root.children(recursive=True)) if p.is_running())
        except (KeyError, psutil.Error):
            continue
    return used
