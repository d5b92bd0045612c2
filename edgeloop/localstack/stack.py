"""Start, inspect and stop the embedded local stack.

Components, each its own process group (so a stop leaves nothing behind):

* ``firestore``: the Cloud SDK Firestore emulator, enforcing infra/firebase/firestore.rules
  and delivering trigger events to the on_feedback function;
* ``pubsub``: the Cloud SDK Pub/Sub emulator (topics, push subscriptions, dead letters);
* ``storage``: gcp-storage-emulator plus the GCS notification publisher;
* one functions-framework server per function in functions/main.py.

State (ports, pids, logs, stored objects) lives under one directory, ``.edgeloop/``
by default. Every process gets ``EDGELOOP_STACK_ID`` in its environment, which is
how a stop (and the tests) prove no process of the stack is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import requests

from edgeloop.localstack.tools import find_tools
from shared.config import Settings
from shared.errors import EdgeloopError

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRESTORE_RULES = REPO_ROOT / "infra/firebase/firestore.rules"
FUNCTIONS_SOURCE = REPO_ROOT / "functions/main.py"

FUNCTIONS = ("on_upload", "on_feedback", "check_drift", "launch_training")
EMULATORS = ("firestore", "pubsub", "storage")
# Which topic (a Topics field) pushes to which function.
PUSH_ROUTES = {"storage_events": "on_upload", "retrain_requests": "launch_training", "drift_checks": "check_drift"}
# Firestore triggers: function -> (event type, document pattern below /documents).
FIRESTORE_TRIGGERS = {
    "on_feedback": ("providers/cloud.firestore/eventTypes/document.create", "models/{model}/feedback/{feedbackId}"),
}
STACK_ID_VARIABLE = "EDGELOOP_STACK_ID"
STATE_FILE = "stack.json"


class StackError(EdgeloopError):
    """The local stack could not be started or is not running."""


@dataclass
class StackState:
    stack_id: str
    directory: str
    host: str
    project_id: str
    bucket: str
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def path(self) -> Path:
        return Path(self.directory)

    def log_file(self, component: str) -> Path:
        return self.path / "logs" / f"{component}.log"

    def url(self, component: str) -> str:
        return f"http://{self.host}:{self.ports[component]}"

    def client_env(self) -> dict[str, str]:
        """What a process needs to talk to this stack with the standard clients."""
        return {
            "FIRESTORE_EMULATOR_HOST": f"{self.host}:{self.ports['firestore']}",
            "PUBSUB_EMULATOR_HOST": f"{self.host}:{self.ports['pubsub']}",
            "STORAGE_EMULATOR_HOST": self.url("storage"),
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "EDGELOOP_PROJECT_ID": self.project_id,
            "EDGELOOP_BUCKET": self.bucket,
        }

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    url: str


# --- processes ------------------------------------------------------------------

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


def _spawn(argv: list[str], env: dict[str, str], log_file: Path) -> int:
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


def _commands(state: StackState, settings: Settings) -> dict[str, list[str]]:
    tools = find_tools()
    host, ports = state.host, state.ports
    commands = {
        "firestore": [
            str(tools.java), "-Duser.language=en", "-cp", str(tools.firestore_jar),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
            f"--host={host}", f"--port={ports['firestore']}",
            f"--rules={FIRESTORE_RULES}",
            f"--functions_emulator={host}:{ports['on_feedback']}",
        ],
        "pubsub": [str(tools.pubsub_launcher), f"--host={host}", f"--port={ports['pubsub']}"],
        "storage": [
            str(tools.python), "-m", "edgeloop.localstack.storage_server",
            "--host", host, "--port", str(ports["storage"]),
            "--data-dir", str(state.path / "storage"), "--bucket", state.bucket,
            "--project", state.project_id, "--topic", settings.topics.storage_events,
        ],
    }
    for name in FUNCTIONS:
        commands[name] = [
            str(tools.functions_framework), "--source", str(FUNCTIONS_SOURCE), "--target", name,
            "--signature-type", "cloudevent", "--host", host, "--port", str(ports[name]),
        ]
    return commands


# --- health ---------------------------------------------------------------------

def _healthy(state: StackState, component: str) -> bool:
    url = state.url(component)
    try:
        if component in ("firestore", "pubsub"):
            response = requests.get(url + "/", timeout=1)
            return response.ok and response.text.strip() == "Ok"
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


def _wait_healthy(state: StackState, components: list[str], timeout_s: float, on_ready: Callable[[str], None]) -> None:
    pending = list(components)
    deadline = time.monotonic() + timeout_s
    while pending:
        for name in list(pending):
            if _healthy(state, name):
                pending.remove(name)
                on_ready(name)
            elif not pid_alive(state.pids[name]):
                raise StackError(f"{name} exited during start; last log lines:\n{_log_tail(state.log_file(name))}")
        if pending and time.monotonic() > deadline:
            raise StackError(f"not healthy after {timeout_s:.0f}s: {', '.join(pending)} (logs in {state.path / 'logs'})")
        if pending:
            time.sleep(0.2)


# --- provisioning ---------------------------------------------------------------

def _provision_pubsub(state: StackState, settings: Settings) -> None:
    """Topics, dead-letter topics (each with a pull subscription so nothing is dropped) and push subscriptions."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1
    from google.protobuf.duration_pb2 import Duration

    os.environ["PUBSUB_EMULATOR_HOST"] = state.client_env()["PUBSUB_EMULATOR_HOST"]
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    delivery = settings.delivery

    def ensure(call, **request):
        try:
            call(request=request)
        except AlreadyExists:
            pass

    for topic_field, function in PUSH_ROUTES.items():
        topic = getattr(settings.topics, topic_field)
        dead_letter = settings.topics.dead_letter(topic)
        for name in (topic, dead_letter):
            ensure(publisher.create_topic, name=publisher.topic_path(state.project_id, name))
        ensure(
            subscriber.create_subscription,
            name=subscriber.subscription_path(state.project_id, dead_letter),
            topic=publisher.topic_path(state.project_id, dead_letter),
        )
        ensure(
            subscriber.create_subscription,
            name=subscriber.subscription_path(state.project_id, f"{topic}-to-{function}"),
            topic=publisher.topic_path(state.project_id, topic),
            push_config={"push_endpoint": state.url(function) + "/"},
            ack_deadline_seconds=delivery.ack_deadline_s,
            dead_letter_policy={
                "dead_letter_topic": publisher.topic_path(state.project_id, dead_letter),
                "max_delivery_attempts": delivery.max_delivery_attempts,
            },
            retry_policy={
                "minimum_backoff": Duration(seconds=delivery.min_backoff_s),
                "maximum_backoff": Duration(seconds=delivery.max_backoff_s),
            },
        )


def _provision_firestore_triggers(state: StackState) -> None:
    for function, (event_type, pattern) in FIRESTORE_TRIGGERS.items():
        resource = f"projects/{state.project_id}/databases/(default)/documents/{pattern}"
        response = requests.put(
            f"{state.url('firestore')}/emulator/v1/projects/{state.project_id}/triggers/{function}",
            json={"eventTrigger": {"resource": resource, "eventType": event_type, "service": "firestore.googleapis.com"}},
            timeout=10,
        )
        if not response.ok:
            raise StackError(f"registering Firestore trigger {function} failed: {response.status_code} {response.text}")


# --- public API ---------------------------------------------------------------------

def load_state(directory: Path) -> StackState | None:
    try:
        return StackState(**json.loads((Path(directory) / STATE_FILE).read_text()))
    except FileNotFoundError:
        return None


def status(directory: Path) -> list[ComponentStatus]:
    state = load_state(directory)
    if state is None:
        return []
    return [
        ComponentStatus(
            name=name,
            pid=state.pids.get(name),
            running=bool(state.pids.get(name)) and pid_alive(state.pids[name]),
            healthy=_healthy(state, name),
            url=state.url(name),
        )
        for name in (*EMULATORS, *FUNCTIONS)
    ]


def running_stack(directory: Path) -> StackState | None:
    """The stack in ``directory`` if every component of it is healthy."""
    components = status(directory)
    if components and all(c.running and c.healthy for c in components):
        return load_state(directory)
    return None


def _environment(state: StackState) -> dict[str, str]:
    """What every component runs with: the emulators' addresses and the stack's id and directory."""
    return {
        **os.environ,
        **state.client_env(),
        STACK_ID_VARIABLE: state.stack_id,
        "EDGELOOP_STACK_DIR": state.directory,  # trainers launched by the functions log and keep keys here
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }


def up(
    settings: Settings,
    directory: Path | None = None,
    timeout_s: float = 60.0,
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
    commands = _commands(state, settings)
    env = _environment(state)
    try:
        # Pub/Sub first: the storage notifier publishes to it as soon as it starts.
        state.pids["pubsub"] = _spawn(commands["pubsub"], env, state.log_file("pubsub"))
        for name in ("firestore", *FUNCTIONS):
            state.pids[name] = _spawn(commands[name], env, state.log_file(name))
        state.save()
        _wait_healthy(state, ["pubsub"], timeout_s, on_ready)
        state.pids["storage"] = _spawn(commands["storage"], env, state.log_file("storage"))
        state.save()
        _provision_pubsub(state, settings)
        remaining = timeout_s - (time.time() - state.started_at)
        _wait_healthy(state, ["firestore", "storage", *FUNCTIONS], max(remaining, 1.0), on_ready)
        _provision_firestore_triggers(state)
    except BaseException:
        down(directory)
        raise
    return state, True


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
    state.pids[name] = _spawn(_commands(state, settings)[name], _environment(state), state.log_file(name))
    state.save()
    _wait_healthy(state, [name], timeout_s, lambda _: None)
    return state


@dataclass(frozen=True)
class StopReport:
    stopped: list[str]
    leftover_pids: list[int]


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
