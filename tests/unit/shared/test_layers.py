"""shared/ has two layers: a pure core that loads no Google Cloud client, and the adapters in shared/gcp.

Devices and unit tests use the pure modules as they are, so importing one must not drag in a cloud
client. Each module is imported in a fresh interpreter: an import made by any module it imports counts.
"""

import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared"
PURE_MODULES = sorted(f"shared.{path.stem}" for path in SHARED.glob("*.py") if path.stem != "__init__")
ADAPTER_MODULES = sorted(f"shared.gcp.{path.stem}" for path in (SHARED / "gcp").glob("*.py") if path.stem != "__init__")
CLOUD_PREFIXES = ("google.cloud", "google.api_core", "firebase_admin", "grpc")

# Some installed packages pre-load the empty ``google.cloud`` namespace at start-up (a .pth file):
# only what the import itself adds counts.
PROBE = """
import importlib, sys
before = set(sys.modules)
importlib.import_module(sys.argv[1])
loaded = sorted(name for name in set(sys.modules) - before if name.split(".")[0] in ("firebase_admin", "grpc")
                or name == "google.cloud" or name.startswith(("google.cloud.", "google.api_core")))
print("\\n".join(loaded))
"""


def _cloud_modules_loaded_by(module: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True, text=True,
                            cwd=SHARED.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_layers_are_where_the_package_docs_say():
    assert "shared.config" in PURE_MODULES and "shared.events" in PURE_MODULES
    assert "shared.gcp.clients" in ADAPTER_MODULES and len(ADAPTER_MODULES) >= 10


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_no_cloud_client(module):
    assert _cloud_modules_loaded_by(module) == []


def test_the_probe_sees_an_adapter_load_its_client():
    # The check above could pass by never seeing anything: an adapter must be caught loading one.
    assert any(name.startswith("google.cloud.firestore") for name in _cloud_modules_loaded_by("shared.gcp.clients"))


def test_only_the_adapter_layer_names_a_cloud_client_in_its_source():
    for path in SHARED.glob("*.py"):
        source = path.read_text()
        for prefix in CLOUD_PREFIXES:
            assert f"import {prefix}" not in source and f"from {prefix}" not in source, (path.name, prefix)


CLIENTS = {"clients"}
STORES = {"images", "model_registry", "model_settings", "tallies", "runs", "training_lock", "bus", "launchers", "secrets",
          "field_evidence"}
USE_CASES = {"ingest", "feedback", "tick", "launch", "dead_letters", "release", "drift", "reconcile", "retrain_requests",
             "watch"}


def _adapter_imports(module: str) -> set[str]:
    import ast

    tree = ast.parse((SHARED / "gcp" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "shared.gcp":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shared.gcp."):
            found.add(node.module.split(".")[2])
    return found


def test_every_adapter_has_a_level():
    assert {name.split(".")[-1] for name in ADAPTER_MODULES} == CLIENTS | STORES | USE_CASES


@pytest.mark.parametrize("module", sorted(CLIENTS | STORES))
def test_clients_and_stores_never_import_a_use_case(module):
    allowed = set() if module in CLIENTS else CLIENTS | STORES
    assert _adapter_imports(module) <= allowed
