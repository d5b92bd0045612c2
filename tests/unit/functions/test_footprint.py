"""Each function process loads only what its handler needs (structural: which libraries, never how long).

Each function is started as functions-framework starts it, in a fresh interpreter (edgeloop.footprint.probe):
ready to serve, it has loaded none of the heavy libraries; its handler's own imports (its first event) add only
those that handler uses. Import time and memory are measured by ``edgeloop bench footprint``.
"""

import pytest

from edgeloop.footprint import WATCHED, handler_modules, probe, watched

CLIENTS = {"grpc", "requests", "cryptography", "google.cloud.firestore"}  # every handler reads and writes Firestore
# function → the watched libraries its handler's modules may load. Storage and Pub/Sub clients load when first
# made (shared.gcp.clients), scipy.special when the release rule first computes its bounds.
MAY_LOAD = {
    "on_upload": CLIENTS | {"numpy", "PIL"},  # decode, validate and measure the image
    "on_feedback": CLIENTS | {"numpy"},  # the release rule's arrays
    "check_drift": CLIENTS | {"numpy", "PIL"},  # drift statistics; reconciliation re-runs ingest (scipy: see below)
    "launch_training": CLIENTS | {"numpy"},  # the registry's lifecycle rules
}


@pytest.fixture(scope="module")
def probes():
    return {function: probe(function) for function in MAY_LOAD}


def test_every_function_is_covered():
    assert set(handler_modules()) == set(MAY_LOAD)
    assert all(modules for modules in handler_modules().values()), "a handler that imports nothing when it runs"


@pytest.mark.parametrize("function", sorted(MAY_LOAD))
def test_a_function_ready_to_serve_has_loaded_no_heavy_library(probes, function):
    assert watched(probes[function]["served"]["modules"]) == []


@pytest.mark.parametrize("function", sorted(MAY_LOAD))
def test_a_handler_loads_only_the_libraries_it_uses(probes, function):
    loaded = set(watched(probes[function]["handler"]["modules"]))
    assert loaded <= MAY_LOAD[function], f"{function} loads {sorted(loaded - MAY_LOAD[function])} it does not use"
    assert not {"tensorflow", "sklearn", "pandas", "matplotlib"} & loaded


def test_the_probe_sees_a_handler_load_its_libraries(probes):
    # The checks above could pass by never seeing anything: check_drift's handler must be caught loading its clients.
    assert {"numpy", "google.cloud.firestore"} <= set(watched(probes["check_drift"]["handler"]["modules"]))


def test_scipy_loads_only_when_a_drift_check_runs_its_tests(probes):
    # Most ticks find too few inputs to test: scipy.stats (about a second and 50 MiB) waits for the first test.
    check_drift = probes["check_drift"]
    assert "scipy" not in watched(check_drift["handler"]["modules"])
    assert "scipy" in watched(check_drift["work"]["modules"])
    assert "scipy" in WATCHED


def test_the_section_names_the_firestore_clients_own_import_as_the_floor_under_every_handler():
    from edgeloop.footprint import _client_floor

    text = _client_floor({"cpu_seconds": 0.62, "seconds": 0.7, "max_rss": 60 * 2**20})
    assert "takes 0.62 s of CPU (0.70 s) and 60 MiB" in text and "no handler can shed" in text
    assert _client_floor(None) == ""
