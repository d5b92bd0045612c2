"""The floor under on_feedback's latency on the local stack: the Firestore emulator's own trigger delivery."""

from __future__ import annotations

from edgeloop import bench_trigger_floor


def test_the_emulator_sends_the_next_trigger_event_only_once_the_previous_one_is_answered(tmp_path):
    instant, slow = bench_trigger_floor.measure((0.0, 0.05), count=20, rate=35.0, writers=4, log_dir=tmp_path)
    assert instant["arrived"] == instant["written"] == 20 and slow["arrived"] == slow["written"] == 20
    assert slow["most_in_flight"] == 1  # 8 writers, reports every 29 ms, yet never two events at once
    assert slow["spacing_ms"] >= 50  # each waited for the 50 ms answer before it
    assert slow["p95_s"] > instant["p95_s"]
    section = bench_trigger_floor.markdown([instant, slow], 35.0)
    assert "answers after 50 ms" in section and "never has more than one event in flight" in section
