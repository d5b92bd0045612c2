"""What an operator command works on (a target), and how a command stops when it cannot.

A target is a project and its bucket, reached with the standard Google Cloud clients: on Google Cloud with
Application Default Credentials, or on emulators when their variables are set. ``--project``/``--bucket``
(or EDGELOOP_PROJECT_ID / GOOGLE_CLOUD_PROJECT and EDGELOOP_BUCKET) name one; without them the local
stack's state file supplies its project, bucket and emulator variables. Either way the command then runs
the same code. Commands that need the stack's processes (up, down, demo, smoke, seed, device, bench) use
``connect``, the local stack only.

Every command module imports this (never ``edgeloop.cli``, the entry point), so
the CLI's pieces depend on it and not on each other.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from edgeloop import access
from edgeloop.localstack import stack
from shared import logs
from shared.config import get_settings

console = Console()
COMMAND_LOG = "cli.log"  # under the stack directory's logs/, beside the components' logs
# The emulators a target's data lives on; all three or none (Google Cloud).
EMULATOR_VARIABLES = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
AUTH_EMULATOR_VARIABLE = "FIREBASE_AUTH_EMULATOR_HOST"
PROJECT_VARIABLES = ("EDGELOOP_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")  # in this order, when --project is not given
# Commands that run or start the local stack's own processes: --project does not apply to them.
LOCAL_ONLY = ("up", "down", "demo", "smoke", "seed", "device", "bench", "web")


class TargetError(stack.StackError):
    """No target, or one that cannot be right (e.g. only some emulator variables set)."""


def default_bucket(project: str) -> str:
    """The bucket Terraform creates when its bucket_name is not set (infra/terraform/main.tf)."""
    return f"{project}-edgeloop"


@dataclass(frozen=True)
class Target:
    project_id: str
    bucket: str
    emulators: Mapping[str, str] = field(default_factory=dict)  # empty: Google Cloud
    stack: Optional[stack.StackState] = None  # the local stack that supplied it, if any

    @property
    def google_cloud(self) -> bool:
        return not self.emulators

    def env(self) -> dict[str, str]:
        """The variables that point this process's clients (and settings) at the target."""
        return {**self.emulators, "GOOGLE_CLOUD_PROJECT": self.project_id, "EDGELOOP_PROJECT_ID": self.project_id,
                "EDGELOOP_BUCKET": self.bucket}

    def describe(self) -> str:
        if self.google_cloud:
            where = "Google Cloud, Application Default Credentials"
        elif self.stack is not None:
            where = f"the local stack in {self.stack.directory}"
        else:
            where = f"emulators, Firestore at {self.emulators.get('FIRESTORE_EMULATOR_HOST')}"
        return f"project {self.project_id}, bucket {self.bucket} ({where})"

    def json(self) -> dict:
        return {"project": self.project_id, "bucket": self.bucket, "google_cloud": self.google_cloud,
                "emulators": dict(self.emulators)}


@dataclass
class _Options:
    project: Optional[str] = None
    bucket: Optional[str] = None


_options = _Options()  # the app's --project and --bucket, for the command running in this process
_target: Optional[Target] = None  # what the running command works on, once it opened it


def set_target_options(project: Optional[str], bucket: Optional[str]) -> None:
    _options.project, _options.bucket = project, bucket


def stack_directory(directory: Optional[Path]) -> Path:
    """``directory``, or else the configured one (EDGELOOP_STACK_DIR, default .edgeloop), absolute."""
    return (directory or get_settings().stack_dir).resolve()


def fail(exc: Exception | str, stderr: bool = False) -> NoReturn:
    """Print the error (on stderr if ``stderr``: a command whose stdout is JSON) and end with exit code 1."""
    (Console(stderr=True) if stderr else console).print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


def _emulators(env: Mapping[str, str]) -> dict[str, str]:
    found = {k: env[k] for k in (*EMULATOR_VARIABLES, AUTH_EMULATOR_VARIABLE) if env.get(k)}
    missing = [k for k in EMULATOR_VARIABLES if k not in found]
    if found and missing:
        raise TargetError(f"{', '.join(sorted(set(found) & set(EMULATOR_VARIABLES)))} set but {', '.join(missing)} "
                          "not: point all three at emulators, or unset them all for Google Cloud")
    return found


def resolve_target(directory: Optional[Path], env: Optional[Mapping[str, str]] = None,
                   healthy: bool = True) -> Target:
    """What a command works on: the project named by --project (else EDGELOOP_PROJECT_ID, GOOGLE_CLOUD_PROJECT,
    unless --dir names a stack), on the emulators its variables name or else on Google Cloud; without a
    project, the local stack recorded in ``directory`` (running and ``healthy``, if asked). The variables
    `edgeloop up` printed, exported, are its stack's (its components shown by status)."""
    env = os.environ if env is None else env
    if _options.project and directory is not None:
        raise TargetError("--project names a deployed project and --dir a local stack: give one of them")
    project = _options.project or (None if directory is not None else
                                   next((env[k] for k in PROJECT_VARIABLES if env.get(k)), None))
    if project:
        emulators = _emulators(env)
        recorded = None if _options.project or not emulators else stack.load_state(stack_directory(None))
        if recorded is not None and recorded.project_id == project and _emulators(recorded.client_env()).get(
                "FIRESTORE_EMULATOR_HOST") == emulators["FIRESTORE_EMULATOR_HOST"]:  # the variables `up` printed
            return Target(project, _options.bucket or recorded.bucket, emulators, recorded)
        bucket = _options.bucket or env.get("EDGELOOP_BUCKET") or default_bucket(project)
        return Target(project, bucket, emulators)
    directory = stack_directory(directory)
    state = stack.running_stack(directory) if healthy else stack.load_state(directory)
    if state is None:
        raise TargetError(f"no healthy local stack in {directory}: start one with `edgeloop up`, or name a "
                          "deployed project with `edgeloop --project P`")
    return Target(state.project_id, _options.bucket or state.bucket, _emulators(state.client_env()), state)


def use_target(target: Target, directory: Optional[Path] = None) -> Target:
    """Point this process's clients and settings at ``target``; what the product code logs goes to the
    stack directory's logs/cli.log until the command ends."""
    global _target
    env = target.env()
    if target.stack is not None:
        env["EDGELOOP_STACK_DIR"] = target.stack.directory
    if any(os.environ.get(k) != v for k, v in env.items()):
        os.environ.update(env)
        from shared.gcp.clients import reset_clients

        get_settings.cache_clear()
        reset_clients()
    _target = target
    if _command is not None:  # a command: what the product code it runs logs goes to the stack's logs until it ends
        _command.with_resource(command_logs(target.stack.path if target.stack else stack_directory(directory)))
    return target


def open_target(directory: Optional[Path]) -> Target:
    """The command's target (see ``resolve_target``), in use (or exit with what is missing)."""
    try:
        return use_target(resolve_target(directory), directory)
    except stack.StackError as exc:
        fail(exc)


def connect(directory: Optional[Path]) -> stack.StackState:
    """The running local stack, with this process's clients pointed at it (or exit with how to start one):
    for commands that need the stack's processes, not only its data."""
    directory = stack_directory(directory)
    state = stack.running_stack(directory)
    if state is None:
        fail(stack.StackError(f"no healthy local stack in {directory}: start one with `edgeloop up`"))
    use_target(Target(state.project_id, state.bucket, _emulators(state.client_env()), state))
    return state


Command = TypeVar("Command", bound=Callable)


def cloud_errors(command: str) -> Callable[[Command], Command]:
    """Decorate an operator command: a call the cloud refuses ends it with one sentence on stderr (which role
    is missing, no credentials, no such project, database, topic or bucket) instead of a traceback."""
    def decorate(function: Command) -> Command:
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except access.CLOUD_ERRORS as exc:
                target = _target or Target(_options.project or "?", _options.bucket or "")
                message = access.explain(exc, command, target.project_id, target.bucket)
                if message is None:
                    raise
                fail(escape(message), stderr=True)
        return run  # type: ignore[return-value]
    return decorate


_command: Optional[typer.Context] = None  # the edgeloop command running in this process, if any


def command_started(context: typer.Context) -> None:
    """Called by the app's callback: ``connect`` ties what it opens to the end of this command."""
    global _command

    def ended() -> None:
        global _command, _target
        _command = _target = None
        set_target_options(None, None)

    _command = context
    context.call_on_close(ended)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def command_logs(directory: Path) -> Iterator[Path]:
    """Within the block, what the product code and its libraries log goes to ``directory``/logs/cli.log, never
    between the command's own lines: shared.logs' JSON entries, Python logging and warnings, and native chatter
    written straight to file descriptor 2 (LiteRT's "Created TensorFlow Lite XNNPACK delegate", TensorFlow's
    C++ logs). Python's own stderr (tracebacks, stderr consoles) still reaches the terminal."""
    path = Path(directory) / "logs" / COMMAND_LOG
    with ExitStack() as stack_:
        stack_.enter_context(logs.to_file(path))
        native = stack_.enter_context(path.open("ab", buffering=0))
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        terminal = os.dup(2)
        stack_.callback(os.close, terminal)
        os.dup2(native.fileno(), 2)
        stack_.callback(os.dup2, terminal, 2)
        if _writes_to_fd2(sys.stderr):  # the real stderr: keep it on the terminal
            saved = sys.stderr
            sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding=saved.encoding, errors=saved.errors)

            def restore() -> None:
                sys.stderr.close()
                sys.stderr = saved

            stack_.callback(restore)
        handler = logging.StreamHandler(path.open("a", encoding="utf-8"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        stack_.callback(handler.stream.close)
        stack_.callback(root.removeHandler, handler)
        stack_.enter_context(warnings.catch_warnings())
        logging.captureWarnings(True)
        stack_.callback(logging.captureWarnings, False)
        yield path
