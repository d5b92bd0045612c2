"""What each function process loads: its modules, import time and resident memory, as functions-framework serves it.

functions-framework loads the whole of functions/main.py for every ``--target``; each handler imports its
use case where it runs (the ``import`` statements in its body). A probe runs in a fresh interpreter, as a
function process starts: ``create_app`` (the framework and functions/main.py), then the handler's own imports
(what its first event loads). Used by ``edgeloop bench footprint`` and by the structural test that holds each
handler to the libraries it needs (tests/unit/functions/test_footprint.py).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_SOURCE = REPO_ROOT / "functions" / "main.py"
# Libraries worth naming when a process loads them: the heavy ones, and the client of each Google service.
WATCHED = ("scipy", "numpy", "PIL", "tensorflow", "sklearn", "pandas", "matplotlib", "grpc", "requests", "cryptography",
           "firebase_admin", "google.cloud.firestore", "google.cloud.storage", "google.cloud.pubsub_v1",
           "google.cloud.run_v2", "google.cloud.aiplatform_v1", "google.cloud.secretmanager")
MIB = 2**20

_PROBE = """
import importlib, json, resource, sys, time
start = time.perf_counter()
from functions_framework import create_app
create_app(target=sys.argv[1], source=sys.argv[2], signature_type="cloudevent")
def snapshot():
    return {"seconds": time.perf_counter() - start, "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "modules": sorted(sys.modules)}
served = snapshot()
for name in json.loads(sys.argv[3]):
    importlib.import_module(name)
print(json.dumps({"served": served, "handler": snapshot()}))
"""


def handler_modules(source: Path = FUNCTIONS_SOURCE) -> dict[str, tuple[str, ...]]:
    """function name → the modules its handler imports when it runs, for each ``@functions_framework.cloud_event``."""
    found = {}
    for node in ast.parse(source.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if not any(ast.unparse(d).endswith("cloud_event") for d in node.decorator_list):
            continue
        imported = []
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.module:
                imported.append(inner.module)
            elif isinstance(inner, ast.Import):
                imported += [alias.name for alias in inner.names]
        found[node.name] = tuple(imported)
    return found


def watched(modules: list[str] | set[str]) -> list[str]:
    """The WATCHED libraries among loaded ``modules``."""
    loaded = set(modules)
    return [name for name in WATCHED if name in loaded]


def probe(function: str, source: Path = FUNCTIONS_SOURCE) -> dict:
    """A fresh interpreter starts ``function`` as functions-framework does, then loads its handler's imports.

    ``{"served": {seconds, max_rss, modules}, "handler": {...}}``: once the app is ready to serve, and once the
    handler's own modules are loaded too (its first event); seconds from the interpreter's first import.
    """
    modules = handler_modules(source)[function]
    done = subprocess.run([sys.executable, "-c", _PROBE, function, str(source), json.dumps(modules)],
                          capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def process_memory(pid: int) -> dict[str, float]:
    """A function's processes (functions-framework's gunicorn arbiter and its worker): the worker's RSS (the
    process that handles events), and the proportional set size summed over all (what they take together:
    the worker is forked from the arbiter and shares its pages), both in MiB."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    worker = processes[-1]
    return {"worker_rss_mib": worker.memory_info().rss / MIB,
            "total_pss_mib": sum(p.memory_full_info().pss for p in processes) / MIB}


# --- under load, on the local stack --------------------------------------------------------------------------

EVENTS = 1_000
LOADED_FUNCTIONS = ("on_upload", "on_feedback")  # the busiest: one event per upload, one per report


def under_load(state, settings, console, model: str = "digits", events: int = EVENTS) -> dict:
    """Memory of each function process of a fresh local stack when it is ready, then of on_upload and
    on_feedback after ``events`` real events each: dataset uploads through storage → notification → Pub/Sub
    push, feedback reports through the Firestore trigger. Returns {function: {phase: process_memory}, ...}."""
    from edgeloop.bench_stack import feedback_burst
    from edgeloop.localstack.state import FUNCTIONS
    from edgeloop.seed import seed_dataset

    memory = {name: {"ready": process_memory(state.pids[name])} for name in FUNCTIONS}
    seeded = seed_dataset(model, settings, console, train=False, limit=events)
    _, written, handled = feedback_burst(model, events, state, settings, console, timeout_s=600.0)
    for name in LOADED_FUNCTIONS:
        memory[name]["loaded"] = process_memory(state.pids[name])
    return {"memory": memory, "uploads": seeded.images, "reports": len(handled), "written": len(written)}
