"""The device's telemetry (client_sdk/telemetry.py): one report per period through the outbox, within a daily
byte budget, merged while queued, kept across restarts. (Delivery and the rules: tests/integration.)"""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk.outbox import Outbox
from client_sdk.telemetry import SDK_VERSION, Telemetry
from shared.config import Client
from shared.registry import SDK_CONTRACT_VERSION

SETTINGS = Client(telemetry_period_s=3600, daily_telemetry_bytes=4096, send_attempts=1, backoff_initial_s=0.01)


class Clock:
    def __init__(self):
        self.now, self.day = 1_790_000_000.0, date(2026, 9, 21)

    def __call__(self) -> float:
        return self.now

    def today(self) -> date:
        return self.day


class RecordingTransport:
    def __init__(self):
        self.sets: list[tuple] = []

    def set_document(self, collection, document_id, values, server_time=()):
        self.sets.append((collection, document_id, values, server_time))


def telemetry(tmp_path, clock: Clock, settings: Client = SETTINGS) -> tuple[Telemetry, Outbox]:
    outbox = Outbox(tmp_path / "outbox", settings, clock=clock)
    return Telemetry("digits", "device-a", tmp_path / "telemetry.json", settings, "pixel 7 <arm64>", clock, clock.today), outbox


def test_a_period_is_reported_once_it_has_lasted_through_the_outbox_as_the_devices_own_record(tmp_path):
    clock = Clock()
    recorder, outbox = telemetry(tmp_path, clock)
    for ms in (0.1, 0.2, 0.2, 0.4, 3.0):
        recorder.record("v1", ms)
    clock.now += 3599
    assert not recorder.queue(outbox) and outbox.pending() == []  # not over yet
    clock.now += 1
    assert recorder.queue(outbox) and recorder.period is None
    [item] = outbox.pending()
    assert (item.kind, item.target, item.document_id) == ("telemetry", "models/digits/devices", "device-a")
    values = item.values
    assert values["model_version"] == "v1" and values["predictions"] == 5 and values["period_s"] == 3600
    assert values["device_class"] == "pixel 7 arm64" and values["sdk_version"] == SDK_VERSION
    assert SDK_VERSION.endswith(f"+c{SDK_CONTRACT_VERSION}")
    assert 0.1 <= values["latency_p50_ms"] <= 0.5 and values["latency_p95_ms"] >= 2

    transport = RecordingTransport()
    assert outbox.flush(transport).delivered == 1
    assert transport.sets == [("models/digits/devices", "device-a", values, ("last_seen",))]


def test_reports_queued_while_offline_merge_into_one_item(tmp_path):
    clock = Clock()
    recorder, outbox = telemetry(tmp_path, clock)
    for hour in range(3):
        recorder.record("v1", 0.3)
        recorder.record("v1", 0.3)
        clock.now += 3600
        assert recorder.queue(outbox)
    [item] = outbox.pending()
    assert item.values["predictions"] == 6 and item.values["period_s"] == 3 * 3600
    recorder.record("v2", 0.3)  # updated meanwhile: the record says what the device runs now
    assert recorder.queue(outbox, force=True)
    [item] = outbox.pending()
    assert item.values["model_version"] == "v2" and item.values["predictions"] == 1


def test_a_new_model_version_starts_a_new_period(tmp_path):
    clock = Clock()
    recorder, _ = telemetry(tmp_path, clock)
    recorder.record("v1", 0.3)
    clock.now += 10
    recorder.record("v2", 0.3)
    assert recorder.period.model_version == "v2" and recorder.period.predictions == 1
    assert recorder.period.start == clock.now


def test_over_the_daily_budget_a_period_stays_open_and_reaches_the_next_days_report(tmp_path):
    clock = Clock()
    small = Client(telemetry_period_s=3600, daily_telemetry_bytes=600)  # one report (~370 bytes) a day
    recorder, outbox = telemetry(tmp_path, clock, small)
    recorder.record("v1", 0.3)
    clock.now += 3600
    assert recorder.queue(outbox)
    assert 300 < 600 - recorder.budget_left() < 450
    recorder.record("v1", 0.3)
    clock.now += 3600
    assert not recorder.queue(outbox)  # the second report of the day does not fit
    assert recorder.period.predictions == 1
    recorder.record("v1", 0.3)
    clock.day, clock.now = date(2026, 9, 22), clock.now + 3600
    assert recorder.queue(outbox)
    [item] = outbox.pending()  # merged with the one still queued: nothing was lost
    assert item.values["predictions"] == 3


def test_the_open_period_and_the_budget_survive_a_restart(tmp_path):
    clock = Clock()
    recorder, outbox = telemetry(tmp_path, clock)
    recorder.record("v1", 0.3)
    recorder.queue(outbox)  # not due: saved all the same
    restarted, _ = telemetry(tmp_path, clock)
    assert restarted.period.predictions == 1 and restarted.period.model_version == "v1"
    clock.now += 3600
    assert restarted.queue(outbox)
    assert telemetry(tmp_path, clock)[0].budget_left() == restarted.budget_left() < SETTINGS.daily_telemetry_bytes


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=100), st.text(max_size=300))
def test_any_latencies_and_device_class_make_a_report_within_the_budget(tmp_path_factory, values, device_class):
    directory = tmp_path_factory.mktemp("telemetry")
    clock = Clock()
    outbox = Outbox(directory / "outbox", SETTINGS, clock=clock)
    recorder = Telemetry("digits", "device-a", directory / "telemetry.json", SETTINGS, device_class, clock, clock.today)
    for value in values:
        recorder.record("v1", value)
    recorder.record("v1", 0.5)
    assert recorder.queue(outbox, force=True)
    [item] = outbox.pending()
    assert item.values["predictions"] == len(values) + 1
    assert SETTINGS.daily_telemetry_bytes - recorder.budget_left() < 800
