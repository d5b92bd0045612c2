"""The report PNG is drawn from plain data; its success curve is a moving window over reports in time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from edgeloop.report import Event, ReportData, draw, success_curve, summary

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def series(outcomes: list[bool]) -> list[tuple[datetime, bool]]:
    return [(START + timedelta(seconds=i), ok) for i, ok in enumerate(outcomes)]


def test_the_success_curve_is_the_rate_over_the_last_window_of_reports():
    times, rates = success_curve(series([True, True, False, False, True]), window=2)
    assert rates == [1.0, 0.5, 0.0, 0.5] and times[0] == START + timedelta(seconds=1)


def test_fewer_reports_than_the_window_give_one_point_over_all_of_them():
    assert success_curve(series([True, False, True]), window=40)[1] == [2 / 3]
    assert success_curve([], window=5) == ([], [])


def test_a_report_is_drawn_with_versions_drift_and_events(tmp_path):
    data = ReportData(
        "digits",
        feedback={"v1": series([True] * 50 + [False] * 30), "v2": series([True] * 60)},
        drift=[(START, 0.1, False), (START + timedelta(seconds=40), 0.6, True)],
        accuracy={"v1": {"int8_accuracy": 0.98, "int8_drifted_accuracy": 0.6},  # v1 had no field holdout yet
                  "v2": {"int8_accuracy": 0.97, "int8_drifted_accuracy": 0.95, "int8_field_accuracy": 0.96}},
        events=[Event(START + timedelta(seconds=40), "drift (v1)", "drift"), Event(START + timedelta(seconds=70), "v2 → canary", "transition")],
    )
    path = draw(data, tmp_path / "out" / "report.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000
    numbers = summary(data)
    assert numbers["versions"]["v1"] == {"reports": 80, "success": 50 / 80}
    assert (numbers["drift_checks"], numbers["drift_detected"], numbers["events"]) == (2, 1, 2)
