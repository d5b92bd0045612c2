"""BENCHMARKS.md: one section per benchmark, rewritten in place, with the machine it ran on."""

from __future__ import annotations

import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown

BENCHMARKS_FILE = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nWritten by `edgeloop bench`; every number below was measured by the command named in its section.\n"


def machine() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_FILE) -> Path:
    """Replace (or append) the section ``name`` of BENCHMARKS.md, leaving the other benchmarks' sections alone."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = f"_Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}._\n\n"
    block = f"{begin}\n{stamp}{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text.rstrip()}\n\n{block}\n"
    path.write_text(text, encoding="utf-8")
    return path


def show_section(console: Console, name: str, markdown: str, path: Path = BENCHMARKS_FILE) -> Path:
    """Write the section ``name`` and show it on ``console`` rendered, its tables fitted to the terminal's width."""
    written = write_section(name, markdown, path)
    console.print(Markdown(markdown))
    console.print(f"wrote {written}")
    return written
