"""BENCHMARKS.md sections: written in place, and shown on an 80-column terminal without overflowing."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from edgeloop.benchmarks import BENCHMARKS_FILE, show_section, write_section

SECTIONS = dict(re.findall(r"<!-- bench:(\w+) -->\n_Measured [^\n]*\n\n(.*?)\n<!-- /bench:\1 -->",
                           BENCHMARKS_FILE.read_text(encoding="utf-8"), re.DOTALL))


def test_every_benchmark_has_a_section_to_show():
    assert {"train", "client", "ingest", "loop", "soak", "decisions", "drift"} <= set(SECTIONS)


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_a_section_is_shown_within_80_columns_with_its_numbers_whole(name, tmp_path):
    console = Console(width=80, record=True, color_system=None)
    written = show_section(console, name, SECTIONS[name], tmp_path / "BENCHMARKS.md")
    shown = console.export_text()
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert f"<!-- bench:{name} -->" in written.read_text(encoding="utf-8")
    # Numbers with their units survive the wrapping (a table cell wraps between words, never inside one).
    for figure in re.findall(r"\b\d+(?:\.\d+)? ?(?:s|%|images/s|MiB|KiB)\b", SECTIONS[name])[:20]:
        assert figure.replace(" ", "") in shown.replace(" ", "").replace("\n", ""), figure


def test_writing_a_section_replaces_it_and_leaves_the_others_alone(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_section("a", "first a", path)
    write_section("b", "only b", path)
    write_section("a", "second a", path)
    text = path.read_text(encoding="utf-8")
    assert "second a" in text and "first a" not in text and "only b" in text
    assert text.count("<!-- bench:a -->") == 1
