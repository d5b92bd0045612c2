"""The local stack an operator command works on, and how a command stops when it cannot.

Every command module imports this (never ``edgeloop.cli``, the entry point), so
the CLI's pieces depend on it and not on each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console

from edgeloop.localstack import stack
from shared.config import get_settings

console = Console()


def stack_directory(directory: Optional[Path]) -> Path:
    """``directory``, or else the configured one (EDGELOOP_STACK_DIR, default .edgeloop), absolute."""
    return (directory or get_settings().stack_dir).resolve()


def fail(exc: Exception) -> NoReturn:
    """Print the error and end the command with exit code 1."""
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(1)


def connect(directory: Optional[Path]) -> stack.StackState:
    """The running local stack, with this process's clients pointed at it (or exit with how to start one)."""
    directory = stack_directory(directory)
    state = stack.running_stack(directory)
    if state is None:
        fail(stack.StackError(f"no healthy local stack in {directory}: start one with `edgeloop up`"))
    os.environ.update({**state.client_env(), "EDGELOOP_STACK_DIR": str(directory)})
    return state
