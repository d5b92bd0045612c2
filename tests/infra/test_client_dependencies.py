"""DESIGN "Dependency rules": client_sdk runs on a device, without TensorFlow, the trainer, the
functions or the server-side Google Cloud clients."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("tensorflow", "tflite_support", "tensorflow_lite_support", "trainer_job", "functions", "firebase_admin",
             "google.cloud.firestore", "google.cloud.storage", "google.cloud.pubsub", "google.api_core", "keras", "edgeloop")


def test_importing_and_using_the_client_sdk_loads_none_of_the_server_side_packages():
    code = (
        "import sys, client_sdk, client_sdk.contract, client_sdk.runtime, client_sdk.auth\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        f"bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r}))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
