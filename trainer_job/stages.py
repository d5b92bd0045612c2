"""Named, timed stages with one progress line each: the shape of every long trainer step."""

from __future__ import annotations

import time
from typing import Any, Callable

from rich.console import Console


class Stages:
    """Times each stage, tells the caller it started, and prints one progress line when it ends."""

    def __init__(self, console: Console, on_stage: Callable[[str], None] | None = None):
        self.console, self.on_stage, self.seconds = console, on_stage, {}

    def run(self, name: str, work: Callable[[], Any], summary: Callable[[Any], str]) -> Any:
        if self.on_stage is not None:
            self.on_stage(name)
        started = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - started, 3)
        self.console.print(f"[bold green]✓[/] [bold]{name:<10}[/] {self.seconds[name]:6.1f} s  {summary(result)}", highlight=False, soft_wrap=True)
        return result
