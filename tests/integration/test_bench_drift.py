"""``edgeloop bench drift`` on a fresh stack at toy sizes: v1 trained, every scenario's fleet through the real
client SDK and on_upload, both selections judged by the real drift rule, the section and the plot written."""

from __future__ import annotations

from edgeloop.bench import drift_bench
from edgeloop.bench_drift import SELECTIONS, DriftBenchSettings, markdown, scenarios


def test_the_drift_benchmark_runs_end_to_end_at_toy_sizes(tmp_path):
    settings = DriftBenchSettings(seed_images=400, devices=2, images_per_day=100, healthy_windows=2, drift_windows=1,
                                  window_sizes=(5, 10), max_uploads=300)
    env = {"EDGELOOP_THRESHOLDS__DRIFT_MIN_SAMPLES": "10"}
    results, meta = drift_bench(settings, tmp_path / "drift.png", env=env)

    assert [(r.scenario.name, r.selection) for r in results] == [
        (s.name, selection) for s in scenarios(settings) for selection in SELECTIONS]
    assert all(not r.error for r in results), [r.error for r in results if r.error]
    healthy = {r.selection: r for r in results if r.scenario.name == "healthy"}
    assert healthy["random sample (now)"].rates[10].windows >= 2  # the random sample was collected and judged
    assert healthy["all captures (before)"].pool >= healthy["random sample (now)"].pool
    dark = next(r for r in results if r.scenario.name == "low light" and r.selection == "random sample (now)")
    assert dark.rates[10].rate == 1.0  # 35% brightness cannot pass unseen
    assert meta["min_samples"] == 10 and meta["fleets"]["healthy"]["random"] >= 20
    assert "| low light" in markdown(results, settings, meta)
    assert (tmp_path / "drift.png").stat().st_size > 0
