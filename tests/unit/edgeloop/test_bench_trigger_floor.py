"""What bench ingest says of the emulator's trigger delivery, from the measured spacing of a delayed receiver."""

from __future__ import annotations

from edgeloop.bench_trigger_floor import markdown


def _result(delay_ms: float, spacing_ms: float, p95_s: float) -> dict:
    return {"delay_ms": delay_ms, "written": 350, "arrived": 350, "spacing_ms": spacing_ms, "p50_s": p95_s / 2,
            "p95_s": p95_s, "most_in_flight": 1}


def test_the_section_derives_the_emulators_own_time_per_event_and_the_handlers_budget():
    section = markdown([_result(0, 24.0, 0.42), _result(27, 39.3, 5.12), _result(40, 52.4, 7.0)], rate=35.0)
    assert "| answers at once | 350 of 350 | 24.0 ms | 1 | p50 0.21 s, p95 0.42 s |" in section
    assert "adds about 12 ms of its own" in section  # 52.4 ms apart for a 40 ms answer: the saturated receiver
    assert "answers within about 16 ms" in section  # a report every 28.6 ms, less the emulator's 12
    assert "(27 ms) and doing nothing else shows a p95 of 5.12 s: the handler alone is over that budget" in section


def test_a_handler_within_the_budget_is_not_said_to_be_over_it():
    section = markdown([_result(0, 28.6, 0.02), _result(6, 28.6, 0.01), _result(40, 46.0, 6.0)], rate=35.0)
    assert "adds about 6 ms of its own" in section and "answers within about 23 ms" in section
    assert "shows a p95 of 0.01 s. Deployed" in section
