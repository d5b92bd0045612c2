"""Each function process loads only what its handler needs (structural: which libraries, never how long).

Each function is started as functions-framework starts it, in a fresh interpreter (edgeloop.footprint.probe):
ready to serve, it has loaded none of the heavy libraries; its handler's own imports (its first event) add only
the Firestore client; numpy, PIL and scipy load where the work that uses them first runs (the probe's "work"
stage). Import time and memory are measured by ``edgeloop bench footprint``.
"""

import pytest

from edgeloop.footprint import WATCHED, handler_modules, probe, watched

CLIENTS = {"grpc", "requests", "cryptography", "google.cloud.firestore"}  # every handler reads and writes Firestore
# function → the watched libraries its handler's modules may load: the Firestore client, nothing heavy. Storage and
# Pub/Sub clients load when first made (shared.gcp.clients); numpy, PIL and scipy where the work that needs them
# runs (the tests below): an image measured, a release judged, a drift test.
MAY_LOAD = {
    "on_upload": CLIENTS,  # numpy and PIL with its first image
    "on_feedback": CLIENTS,  # numpy and scipy.special when it first judges a canary
    "check_drift": CLIENTS,  # numpy and scipy.stats when it first runs a drift test
    "launch_training": CLIENTS,  # the registry's lifecycle rules, which compute no bounds there
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
    # The checks above could pass by never seeing anything: each handler must be caught loading its client.
    for function in MAY_LOAD:
        assert "google.cloud.firestore" in watched(probes[function]["handler"]["modules"]), function


def _loaded_by(stage: dict) -> set[str]:
    return set(watched(stage["modules"]))


def test_numpy_and_pil_load_in_on_upload_with_its_first_image(probes):
    on_upload = probes["on_upload"]
    assert not {"numpy", "PIL"} & _loaded_by(on_upload["handler"])
    assert {"numpy", "PIL"} <= _loaded_by(on_upload["work"])


def test_numpy_loads_in_on_feedback_only_once_a_canary_is_judged(probes):
    # Most reports judge nothing (no canary in rollout, no production under watch): the release rule's bounds,
    # numpy and scipy.special, wait for the first judgement.
    on_feedback = probes["on_feedback"]
    assert not {"numpy", "scipy"} & _loaded_by(on_feedback["handler"])
    assert {"numpy", "scipy"} <= _loaded_by(on_feedback["work"])
    assert "scipy.special" in on_feedback["work"]["modules"]
    assert "PIL" not in _loaded_by(on_feedback["work"])


def test_numpy_and_scipy_load_in_check_drift_only_once_a_drift_test_runs(probes):
    # Most ticks find too few inputs to test: numpy and scipy.stats (about a second and 50 MiB) wait for the first
    # test; a drift test reads stored statistics and measures no image, so PIL never loads.
    check_drift = probes["check_drift"]
    assert not {"numpy", "scipy", "PIL"} & _loaded_by(check_drift["handler"])
    assert {"numpy", "scipy"} <= _loaded_by(check_drift["work"])
    assert "PIL" not in _loaded_by(check_drift["work"])
    assert {"numpy", "scipy", "PIL"} <= set(WATCHED)


def test_the_section_names_the_firestore_clients_own_import_as_the_floor_under_every_handler():
    from edgeloop.footprint import _client_floor

    text = _client_floor({"cpu_seconds": 0.62, "seconds": 0.7, "max_rss": 60 * 2**20})
    assert "takes 0.62 s of CPU (0.70 s) and 60 MiB" in text and "no handler can shed" in text
    assert _client_floor(None) == ""
