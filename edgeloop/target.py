"""The local stack an operator command works on, and how a command stops when it cannot.

Every command module imports this (never ``edgeloop.cli``, the entry point), so
the CLI's pieces depend on it and not on each other.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, NoReturn, Optional

import typer
from rich.console import Console

from edgeloop.localstack import stack
from shared import logs
from shared.config import get_settings

console = Console()
COMMAND_LOG = "cli.log"  # under the stack directory's logs/, beside the components' logs


def stack_directory(directory: Optional[Path]) -> Path:
    """``directory``, or else the configured one (EDGELOOP_STACK_DIR, default .edgeloop), absolute."""
    return (directory or get_settings().stack_dir).resolve()


def fail(exc: Exception, stderr: bool = False) -> NoReturn:
    """Print the error (on stderr if ``stderr``: a command whose stdout is JSON) and end with exit code 1."""
    (Console(stderr=True) if stderr else console).print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


def connect(directory: Optional[Path]) -> stack.StackState:
    """The running local stack, with this process's clients pointed at it (or exit with how to start one)."""
    directory = stack_directory(directory)
    state = stack.running_stack(directory)
    if state is None:
        fail(stack.StackError(f"no healthy local stack in {directory}: start one with `edgeloop up`"))
    os.environ.update({**state.client_env(), "EDGELOOP_STACK_DIR": str(directory)})
    if _command is not None:  # a command: what the product code it runs logs goes to the stack's logs until it ends
        _command.with_resource(command_logs(directory))
    return state


_command: Optional[typer.Context] = None  # the edgeloop command running in this process, if any


def command_started(context: typer.Context) -> None:
    """Called by the app's callback: ``connect`` ties what it opens to the end of this command."""
    global _command

    def ended() -> None:
        global _command
        _command = None

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
