"""What an operator reads: a command's own lines, never the log lines of the product code it runs or of the
libraries under it, and tables that fit an 80-column terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_command_logs_keeps_structured_library_and_native_lines_out_of_the_commands_output(tmp_path):
    probe = textwrap.dedent(f"""
        import logging, os, sys, warnings
        from pathlib import Path
        from edgeloop.target import command_logs
        from shared.logs import log

        with command_logs(Path({str(tmp_path)!r})) as path:
            print("own line")
            log("INFO", "training_launched", "run r1 started via local", model="digits")
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")  # what LiteRT's C++ does
            logging.getLogger("google.api_core").warning("retrying")
            warnings.warn("a library's warning")
            print("python stderr", file=sys.stderr)
        log("INFO", "after", "back on stdout")
        print(path)
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "own line" and json.loads(out[1])["event"] == "after" and len(out) == 3
    assert done.stderr == "python stderr\n"  # the command's own stderr still reaches the terminal
    written = Path(out[2]).read_text()
    assert Path(out[2]) == tmp_path / "logs" / "cli.log"
    assert '"event": "training_launched"' in written and "XNNPACK" in written
    assert "google.api_core: retrying" in written and "a library's warning" in written


# --- tables in an 80-column terminal -------------------------------------------------------------------------

def rendered(renderable) -> str:
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    console.print(renderable)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "…" not in text, text  # nothing cut
    return text


def test_the_device_summary_shows_every_device_version_and_count_whole():
    from edgeloop.device import DeviceTally, _summary

    tallies = [DeviceTally(f"sim-device-{i:03d}", "v12", 4000, 3900, 1230, 4000, 550, 5780, 30, 12, 123_456, "installed")
               for i in range(3)]
    tallies[1].version, tallies[2].update = "v11", "unchanged"
    text = rendered(_summary(tallies))
    assert all(f"sim-device-{i:03d}" in text for i in range(3))
    assert "all 3" in text and "v11" in text and "20000" not in text and "12000" in text and "17340" in text
    assert "update check: 2 installed, 1 unchanged" in text
    assert "fb: feedback reports" in " ".join(text.split())  # the short headers are explained


def test_dead_letters_show_each_message_whole_and_each_refusal_in_full_below():
    from edgeloop.cli import dead_letters_view
    from shared.events import MALFORMED_ATTRIBUTE
    from shared.gcp.dead_letters import DeadLetter

    reason = "feedback document has no model_version; expected a string like v3 (the SDK writes it on every report)"
    letters = [DeadLetter("retrain-requests", "12345678901234567", {MALFORMED_ATTRIBUTE: reason}, b""),
               DeadLetter("storage-events", "98765432109876543", {}, b"")]
    text = rendered(dead_letters_view(letters, replay=True))
    assert "12345678901234567" in text and "98765432109876543" in text and "retrain-requests" in text
    assert "malformed" in text and "ran out" in text and "replayed" in text and "kept" in text
    assert reason in " ".join(text.split())


def test_the_smoke_run_shows_each_function_and_its_event():
    from edgeloop.cli import smoke_view
    from edgeloop.smoke import SmokeStep

    name = "gs://demo-edgeloop.appspot.com/dataset/smoke/3/smoke-0123abcd.png (ingested)"
    text = rendered(smoke_view([SmokeStep(f"upload {name}", "on_upload", 0.42, "1234567890123456"),
                                SmokeStep("write models/smoke/feedback/smoke-1 (counted)", "on_feedback", 1.5, "9" * 40)]))
    assert "on_upload" in text and "on_feedback" in text and "0.42" in text and "1.50" in text
    assert "1234567890123456" in text and "smoke-0123abcd.png" in "".join(line.strip("│ ") for line in text.splitlines())
