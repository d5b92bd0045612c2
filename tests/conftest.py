"""Shared fixtures: golden events, and the real local stack for integration tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent
from hypothesis import settings as hypothesis_settings

# Properties are checked on as many examples as ever, but a slow example on a busy two-core machine is not
# a failure: timing belongs in benchmarks, never in tests.
hypothesis_settings.register_profile("edgeloop", deadline=None)
hypothesis_settings.load_profile("edgeloop")

GOLDEN = Path(__file__).parent / "golden"

# Thresholds small enough that integration tests cross them with tens of events, not hundreds.
# Set before any Settings() is built, so the test process and the stack it starts agree.
TEST_SETTINGS_ENV = {
    "EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES": "30",
    "EDGELOOP_THRESHOLDS__MIN_FEEDBACK_SAMPLES": "20",
    "EDGELOOP_THRESHOLDS__DRIFT_MIN_SAMPLES": "30",
    # Test models train for seconds on a few hundred images; the gate's other checks still apply.
    "EDGELOOP_GATE__MIN_ACCURACY": "0.6",
    # A canary is judged on 20 reports per version per step, production watched for 60 after a promotion.
    "EDGELOOP_RELEASE__CANARY_MIN_SAMPLES": "20",
    "EDGELOOP_RELEASE__WATCH_SAMPLES": "60",
    # Work with no handled event is taken as lost (and reconciled by the tick) after 8 s, not 10 minutes.
    "EDGELOOP_THRESHOLDS__RECONCILE_AFTER_S": "8",
}
for _key, _value in TEST_SETTINGS_ENV.items():
    os.environ.setdefault(_key, _value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``fills_the_emulator`` run after every other test (their order otherwise kept): the
    Firestore emulator's queries slow down with everything it holds, which would put the release tests'
    waits, sized for a normal session, at the mercy of where a flood test happens to sort."""
    items.sort(key=lambda item: item.get_closest_marker("fills_the_emulator") is not None)


def golden_event(name: str) -> CloudEvent:
    """A CloudEvent as functions-framework hands it to a handler, from tests/golden/<name>.json."""
    raw = json.loads((GOLDEN / f"{name}.json").read_text())
    return CloudEvent(raw["attributes"], raw["data"])


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """The embedded stack, started once per test session in its own directory, on free ports."""
    from edgeloop.localstack import stack
    from shared.config import Settings
    from shared.errors import ConfigurationError

    directory = tmp_path_factory.mktemp("stack")
    try:
        state, _ = stack.up(Settings(), directory)
    except ConfigurationError as exc:  # say what to install instead of a traceback
        pytest.fail(str(exc), pytrace=False)
    saved = {key: os.environ.get(key) for key in state.client_env()}
    os.environ.update(state.client_env())
    yield state
    report = stack.down(directory)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    assert report.leftover_pids == [], f"stack left processes behind: {report.leftover_pids}"
