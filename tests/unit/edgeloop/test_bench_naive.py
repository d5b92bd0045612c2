"""bench ingest's pure parts: the log poll that costs the emulators nothing, the stage timer, the section's text."""

from __future__ import annotations

import json
import types

from edgeloop import bench_naive


def _line(obj: str, generation: int, status: str = "accepted") -> str:
    return json.dumps({"event": "object_ingested", "object": obj, "generation": generation, "status": status}) + "\n"


def test_the_log_poll_counts_distinct_accepted_objects_under_the_prefix_and_reads_each_line_once(tmp_path):
    log = tmp_path / "on_upload.log"
    log.write_text("gunicorn booting\n" + _line("dataset/m/1/a.png", 1) + _line("dataset/m/1/a.png", 1, "duplicate")
                   + _line("dataset/m-counted/1/a.png", 1) + '{"event": "object_ingested", "object": "dataset/m/2/b.p')
    poll = bench_naive._AcceptedInLog(log, "dataset/m/")
    assert poll() == 1  # the duplicate, the other model and the half-written line do not count
    with open(log, "a") as more:
        more.write('ng", "generation": 2, "status": "accepted"}\n' + _line("dataset/m/1/a.png", 3))
    assert poll() == 3  # the line finished since, and a new generation of the same name
    assert poll() == 3


def test_timed_stages_time_each_function_and_put_it_back():
    module = types.ModuleType("probe")
    module.work = lambda x: x * 2
    original = module.work
    import sys

    sys.modules["probe"] = module
    try:
        with bench_naive._timed_stages({"work": ("probe", "work")}) as spent:
            assert module.work(21) == 42 and module.work is not original
        assert module.work is original and spent["work"] > 0
    finally:
        del sys.modules["probe"]


def test_the_section_says_whether_the_target_is_met_and_shows_both_handlers_costs():
    run = {"distinct": 10, "events": 11, "counted": 10, "exact": True, "seconds": 2.0, "per_s": 5.0, "events_per_s": 5.5}
    ops = {"reads": 1.3, "writes": 2.2, "transactions": 0.1, "count_queries": 0.67, "round_trips": 3.17,
           "storage_reads": 1.1, "published": 0.0, "handler_ms": 50, "total_ms": 60, "stages_ms": {"download": 17.0}}
    result = {"on_upload": run, "naive": {**run, "per_s": 10.0}, "on_upload_ops": ops, "naive_ops": ops, "ratio": 0.5,
              "counted_objects": 300, "threshold": 200, "load": [3.0, 4.0], "cores": 2,
              "count_interval_s": 2.0}
    notes = bench_naive.markdown_notes(result)
    assert "**0.50×**" in notes and "❌" in notes and "against 3.2 counted now" in notes and "download 17.0" in notes
    rows = bench_naive.markdown_rows(result).splitlines()
    assert len(rows) == 2 and "**5.0 images/s**" in rows[0] and "**10.0 images/s**" in rows[1] and "(exact)" in rows[0]


def test_the_section_explains_the_distance_with_the_downloading_naive_handler_and_each_paths_cpu():
    def run(per_s: float, cpu: dict[str, float]) -> dict:
        return {"distinct": 10, "events": 11, "counted": 10, "exact": True, "seconds": 2.0, "per_s": per_s,
                "events_per_s": per_s, "cpu_ms_per_image": cpu}

    ops = {"reads": 0.0, "writes": 2.0, "transactions": 0.0, "count_queries": 0.0, "round_trips": 1.0,
           "storage_reads": 1.0, "published": 0.0, "handler_ms": 4, "total_ms": 4, "stages_ms": {}}
    result = {"on_upload": run(160.0, {"firestore": 3.6, "handler": 4.6, "storage": 0.6}),
              "naive": run(240.0, {"firestore": 2.8, "handler": 2.5, "storage": 0.0}),
              "naive_downloading": run(200.0, {"firestore": 2.8, "handler": 3.4, "storage": 0.6}),
              "on_upload_ops": ops, "naive_ops": ops, "ratio": 160 / 240, "ratio_to_downloading": 0.8,
              "counted_objects": 300, "threshold": 200, "load": [1.0, 2.0], "cores": 2, "count_interval_s": 2.0}
    notes = bench_naive.markdown_notes(result)
    assert "**0.67×**" in notes and "**0.80×**" in notes
    assert "8.8 ms of CPU per image for on_upload and 5.3 ms for the naive handler" in notes
    assert "to 6.8 ms (+1.5 ms)" in notes and "differs from that by +2.0 ms" in notes
    assert "| handler's processes | 4.6 | 2.5 | 3.4 |" in notes.replace("the handler's", "handler's")
    assert len(bench_naive.markdown_rows(result).splitlines()) == 3


def test_a_handlers_timed_runs_combine_into_one_rate_over_their_summed_time_and_cpu_weighted_by_objects():
    first = {"distinct": 100, "events": 110, "counted": 100, "exact": True, "seconds": 1.0,
             "cpu_ms_per_image": {"handler": 4.0, "firestore": 2.0}}
    second = {"distinct": 300, "events": 330, "counted": 299, "exact": False, "seconds": 3.0,
              "cpu_ms_per_image": {"handler": 8.0, "firestore": 2.0, "storage": 1.0}}
    both = bench_naive.combined([first, second])
    assert (both["distinct"], both["events"], both["counted"], both["exact"]) == (400, 440, 399, False)
    assert both["per_s"] == 100.0 and both["events_per_s"] == 110.0 and both["runs"] == 2
    assert both["cpu_ms_per_image"] == {"firestore": 2.0, "handler": 7.0}  # only what every run measured


def test_cpu_spent_is_what_each_named_process_used_during_the_block_and_leaves_out_what_it_cannot_read():
    import os
    import time

    from edgeloop.localstack.processes import cpu_spent

    with cpu_spent({"this": os.getpid(), "gone": 2**22 + 12345}, ("this", "gone", "unnamed")) as spent:
        assert spent == {}  # filled in when the block ends
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:
            pass
    assert set(spent) == {"this"} and 0.15 < spent["this"] < 5
