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
