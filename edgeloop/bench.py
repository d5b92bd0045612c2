"""``edgeloop bench``: measure, compare side by side in one run, and rewrite BENCHMARKS.md."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

from edgeloop.benchmarks import BENCHMARKS_FILE, show_section
from edgeloop.target import command_logs

bench_app = typer.Typer(help="Run benchmarks and rewrite their sections of BENCHMARKS.md.", no_args_is_help=True)
console = Console(stderr=True)
STACK_ATTEMPTS = 3


def _check(passed: bool) -> str:
    return "✅" if passed else "❌"


@contextmanager
def fresh_stack(prefix: str = "edgeloop-bench-", env: dict[str, str] | None = None) -> Iterator[tuple[Any, Any]]:
    """A throwaway local stack with this process's clients pointed at it: (state, settings).

    ``env``: settings overrides (EDGELOOP_*) for this process and every component of the stack.
    """
    from edgeloop.localstack import stack
    from shared.config import Settings
    from shared.gcp.clients import reset_clients

    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        saved = dict(os.environ)
        os.environ.update(env or {})
        settings = Settings(stack_dir=Path(directory))
        try:
            state, _ = stack.up(settings, Path(directory))
        except BaseException:
            os.environ.clear()
            os.environ.update(saved)
            raise
        os.environ.update({**state.client_env(), "EDGELOOP_STACK_DIR": directory})
        reset_clients()
        try:
            with command_logs(Path(directory)):  # what the product code logs here stays out of the bench's lines
                yield state, settings
        finally:
            os.environ.clear()
            os.environ.update(saved)
            reset_clients()
            stack.down(Path(directory))


def _full_run_on_a_fresh_stack() -> dict:
    """Seed the digits into a throwaway local stack, then time one real trainer run, snapshot → publish."""
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from shared.gcp import launch
    from shared.retrain import manual_request

    with fresh_stack() as (_, settings):
        seeded = seed_dataset("digits", settings, console, train=False)
        outcome = launch.launch(manual_request("digits", who="edgeloop bench"), settings)
        run = wait_for_outcome(outcome.run_id, settings, console)
    from datetime import datetime

    from trainer_job import RUN_STAGES

    recorded = run.get("stages") or {}
    stages = {name: recorded[name].get("seconds", 0.0) for name in RUN_STAGES if name in recorded}
    wall = datetime.fromisoformat(run["ended"]) - datetime.fromisoformat(run["created"])
    return {"status": run["status"], "stages": stages, "seconds": round(sum(stages.values()), 1),
            "wall_seconds": round(wall.total_seconds(), 1), "seed_seconds": round(seeded.seconds, 1),
            "images": seeded.images}


@bench_app.command("train")
def bench_train(seed: int = typer.Option(0, help="split and training seed"),
                scale: bool = typer.Option(False, "--scale", help="instead: peak memory and images/s at 2k, 20k and "
                                           "100k generated images, streamed vs decoded into memory (trainer_job.bench_scale)")) -> None:
    """The trainer's int8 model vs scikit-learn SVC on one split, and a full run on the local stack (--scale: at scale)."""
    if scale:
        from trainer_job import bench_scale

        show_section(console, "train-scale", bench_scale.markdown(bench_scale.run(console), "edgeloop bench train --scale"))
        return
    from trainer_job import bench_train as measure

    r = measure.run(seed)
    full = _full_run_on_a_fresh_stack()
    under = full["wall_seconds"] < measure.MAX_WALL_SECONDS
    stage_list = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in full["stages"].items())
    markdown = f"""## Trainer (`edgeloop bench train`)

Embedded digits, stratified split (seed {seed}): {r['holdout_images']} holdout images; the drifted holdout is the
same images dimmed and noisy. SVC and the CNN are measured side by side in this run.

| model | holdout accuracy | drifted holdout accuracy | size |
|---|---|---|---|
| scikit-learn SVC (RBF) | {r['svc_accuracy']:.4f} | {r['svc_drifted_accuracy']:.4f} | – |
| Keras CNN, float TFLite | {r['float_accuracy']:.4f} | {r['float_drifted_accuracy']:.4f} | {r['float_bytes'] / 1024:.0f} KiB |
| Keras CNN, int8 TFLite (published) | {r['int8_accuracy']:.4f} | {r['int8_drifted_accuracy']:.4f} | {r['int8_bytes'] / 1024:.0f} KiB |

| target (issue 5) | measured | |
|---|---|---|
| int8 within {measure.MAX_POINTS_BELOW_SVC} points of SVC | {r['int8_minus_svc_points']:+.2f} points | {_check(r['int8_minus_svc_points'] >= -measure.MAX_POINTS_BELOW_SVC)} |
| int8 at most {measure.MAX_POINTS_BELOW_FLOAT} point below float | {r['int8_minus_float_points']:+.2f} points | {_check(r['int8_minus_float_points'] >= -measure.MAX_POINTS_BELOW_FLOAT)} |
| int8 file ≥ {measure.MIN_SIZE_RATIO}× smaller than float | {r['size_ratio']:.2f}× | {_check(r['size_ratio'] >= measure.MIN_SIZE_RATIO)} |
| whole run, snapshot → publish, under {measure.MAX_WALL_SECONDS:.0f} s | {full['seconds']:.1f} s of stages, {full['wall_seconds']:.1f} s wall ({full['status']}) | {_check(under and full['status'] == 'published')} |

Full run on the local stack ({full['images']} images seeded through on_upload in {full['seed_seconds']:.1f} s first):
{stage_list}; {full['wall_seconds']:.1f} s from the run's creation by launch_training to its end, including
starting the trainer process and loading TensorFlow. LiteRT latency of the int8 model: {r['latency_us']:.0f} µs per image on one core.
Best hyperparameters: {r['hyperparameters']}.
"""
    show_section(console, "train", markdown)


@bench_app.command("backbone")
def bench_backbone(seed: int = typer.Option(0, help="dataset, split and training seed"),
                   per_class: Optional[int] = typer.Option(None, min=20, help="generated images per class "
                                                           "(default 300, trainer_job.bench_backbone.PER_CLASS)"),
                   weights: str = typer.Option("none", help="MobileNetV3-Small's starting weights: none or imagenet "
                                               "(imagenet needs the weights in Keras' cache or a download)")) -> None:
    """MobileNetV3-Small vs the small CNN on the generated 96×96 shapes: accuracy, int8 size, LiteRT latency, train time."""
    from trainer_job import bench_backbone as measure

    if weights not in measure.WEIGHTS:
        raise typer.BadParameter(f"one of {', '.join(measure.WEIGHTS)}, not {weights!r}", param_hint="--weights")
    r = measure.run(seed, per_class or measure.PER_CLASS, weights, console)
    options = "".join(f" --{name} {value}" for name, value, default in
                      (("seed", seed, 0), ("per-class", per_class, None), ("weights", weights, "none")) if value != default)
    show_section(console, "backbone", measure.markdown(r, f"edgeloop bench backbone{options}"))


@bench_app.command("ingest")
def bench_ingest() -> None:
    """Images through on_upload, and feedback reports through on_feedback at 35/s and in a burst, on a fresh stack."""
    from edgeloop import bench_naive, bench_stack, bench_trigger_floor

    with fresh_stack() as (state, settings):
        r = bench_stack.ingest("digits", state, settings, console)
    up = r["uploads"]
    fb = r["feedback"]
    with console.status("the Firestore emulator's trigger delivery alone: an instant receiver, one taking "
                        "on_feedback's handler time, one slower than the reports…"), tempfile.TemporaryDirectory(prefix="edgeloop-floor-") as logs:
        floor = bench_trigger_floor.measure((0.0, fb["operations"]["handler_ms"] / 1000,
                                             bench_trigger_floor.SATURATING_DELAY_S), bench_stack.FEEDBACK_PACED,
                                            fb["rate"], bench_stack.WRITERS, Path(logs))
    from edgeloop.capacity import DEPLOYED
    paced, burst, ops = fb["paced"], fb["burst"], fb["operations"]
    markdown = f"""## Ingest (`edgeloop bench ingest`)

A fresh local stack on this machine (emulators, storage notifications, functions-framework; every event handled by the
real function).

| path | volume | time | throughput | latency |
|---|---|---|---|---|
{bench_naive.markdown_rows(up)}
| feedback reports at {fb['rate']:g}/s, each written on its own ({bench_stack.REPORTS_PER_USER} per user) → Firestore trigger → on_feedback (admission, counts, release rules) | {paced['handled']} of {paced['written']} reports handled (written at {paced['write_rate']:.1f}/s) | {paced['seconds']:.1f} s | {paced['per_s']:.1f} reports/s | p50 {paced['p50_s']:.2f} s, p95 {paced['p95_s']:.2f} s from write to handled |
| the same, a burst: {burst['written']} reports in batches of 100 | {burst['handled']} of {burst['written']} reports handled | {burst['seconds']:.1f} s | {burst['per_s']:.1f} reports/s | p50 {burst['p50_s']:.2f} s, p95 {burst['p95_s']:.2f} s from write to handled (queueing included) |

{bench_naive.markdown_notes(up)}
on_feedback at {fb['rate']:g} reports/s: p95 from write to handled **{paced['p95_s']:.2f} s** (target < 1 s: {_check(paced['p95_s'] < 1.0)}).
What one report costs on_feedback (v1 in production; {ops['reports']} reports from distinct users through its handler
in this process, its clients counted by edgeloop/opcount.py; means per report, handler time the median):

| Firestore reads | writes | aggregation queries | transactions | round trips (every Firestore call) | Pub/Sub messages published | handler time |
|---|---|---|---|---|---|---|
| {ops['reads']:.1f} | {ops['writes']:.1f} | {ops['aggregations']:.1f} | {ops['transactions']:.1f} | {ops['round_trips']:.1f} | {ops['published']:.2f} | {ops['handler_ms']:.0f} ms |

In this run on_feedback handled one report every {1000 / paced['per_s']:.0f} ms while reports came every
{1000 / paced['write_rate']:.0f} ms{", so the reports queued in the emulator" if paced['per_s'] < paced['write_rate'] else ""}. The handler alone took {ops['handler_ms']:.0f} ms (median, in process) for
its {ops['round_trips']:.1f} Firestore round trips, on a machine whose load average was {fb['load'][0]:.1f} as the paced reports
started and {fb['load'][1]:.1f} as they ended, on 2 cores. Deployed, Eventarc delivers events concurrently, up to
{DEPLOYED['on_feedback'].concurrency} requests per on_feedback instance.{_stack_cpu(fb)}

A report is admitted in one commit conditional on the report and its user's document being as read with the
model's state (a transaction when they changed since). Its version's windowed success rate is one sum over the
version's tally buckets (shared/tally_buckets.py), whatever the reports in the window; on_feedback runs it beside
its first read, and only when the reports it counted since its last sum, every one wrong, could make a
success-rate retrain due, or when that sum is `caching.success_rate_sum_interval_s` old (shared/count_pacing.py),
so most reports of a healthy version skip it; the release rules judge every counted report.

Each upload costs on_upload a download, a decode and one document write; both functions share the two cores with
the emulators. Latency: a report's commit time to on_feedback's log line saying it was handled.

{bench_trigger_floor.markdown(floor, fb['rate'])}
"""
    show_section(console, "ingest", markdown)


def _stack_cpu(fb: dict) -> str:
    """What handling one report cost the stack's processes in CPU, from the paced run (empty if not measured)."""
    names = {"firestore": "the Firestore emulator", "on_feedback": "on_feedback's processes"}
    cpu = fb.get("cpu_ms_per_report") or {}
    if not cpu:
        return ""
    parts = " and ".join(f"{names.get(name, name)} {ms:.1f} ms" for name, ms in cpu.items())
    return f" While the paced reports were handled, each took {parts} of CPU."


@bench_app.command("client")
def bench_client() -> None:
    """The client SDK's update check vs downloading the model on every poll, side by side on one stack."""
    from edgeloop import bench_stack
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from shared.gcp import launch
    from shared.retrain import manual_request

    with fresh_stack() as (state, settings), tempfile.TemporaryDirectory(prefix="edgeloop-device-") as device_dir:
        seed_dataset("digits", settings, console, train=False, limit=400)
        run = wait_for_outcome(launch.launch(manual_request("digits", who="edgeloop bench"), settings).run_id,
                               settings, console)
        if run["status"] != "published":
            console.print(f"[red]no model to poll[/]: run {run['status']} {run.get('error') or ''}")
            raise typer.Exit(1)
        r = bench_stack.client_poll("digits", state, settings, Path(device_dir))
    ratio_time = r["naive_p50_ms"] / r["unchanged_p50_ms"]
    markdown = f"""## Client update check (`edgeloop bench client`)

One device polling a published {r['model_bytes'] / 1024:.0f} KiB model, {r['polls']} polls each way, measured side by side.

| strategy | document reads / poll | model bytes / poll | latency p50 | latency p95 |
|---|---|---|---|---|
| client_sdk: read the pointer, download only on change | {r['unchanged_reads_per_poll']:.1f} | {r['unchanged_bytes_per_poll']:.0f} | {r['unchanged_p50_ms']:.1f} ms | {r['unchanged_p95_ms']:.1f} ms |
| naive: download the model every poll | 0 | {r['naive_bytes_per_poll']} | {r['naive_p50_ms']:.1f} ms | {r['naive_p95_ms']:.1f} ms |

An unchanged check costs one small document read and no model bytes: {r['naive_bytes_per_poll']:,} bytes less
per poll than the naive client. On loopback, where bandwidth is free, the naive download is the faster one
(the check takes {1 / ratio_time:.1f}× its time: a Firestore REST read through the emulator); on a 10 Mbit/s
phone link the download alone would take about {r['naive_bytes_per_poll'] * 8 / 10e6 * 1000:.0f} ms (computed from its size, not measured).
The first install (download, sha256, Ed25519 signature, contract check, atomic swap) took
{r['first_install_s'] * 1000:.0f} ms for {r['install_bytes']:,} bytes.
"""
    show_section(console, "client", markdown)


@bench_app.command("loop")
def bench_loop(devices: int = typer.Option(16, "--devices", "-n", help="simulated devices"),
               launches: int = typer.Option(20, help="retrain requests timed to their trainer's start")) -> None:
    """The whole loop (edgeloop demo) step by step, and retrain request → trainer started over many requests."""
    import numpy as np

    from edgeloop import bench_launch
    from edgeloop.demo import DEMO_ENV, run_demo
    from edgeloop.loop_timing import run_work

    figure = BENCHMARKS_FILE.parent / "docs" / "loop-report.png"
    result = run_demo(console, devices=devices, report_path=figure, timeout_s=1500)
    if not result.closed:
        console.print("[red]the loop did not close[/]; nothing written")
        raise typer.Exit(1)
    with fresh_stack() as (_, settings):
        starts = bench_launch.request_to_start(settings, console, launches)
    p50, p95 = np.percentile(starts, [50, 95])
    versions = result.versions
    rows = "\n".join(
        f"| {v} | {versions[v]['stage']} | {versions[v].get('manifest', {}).get('objects', '?')} | "
        f"{versions[v]['metrics'].get('int8_accuracy', 0):.1%} | {versions[v]['metrics'].get('int8_drifted_accuracy', 0):.1%} |"
        for v in sorted(versions, key=lambda v: int(v[1:])))
    dark_v1 = [r for r in result.rounds if r.phase == "drift" and set(r.versions) == {"v1"}]
    dark_rate = sum(sum(r.correct.values()) for r in dark_v1) / max(1, sum(sum(r.predictions.values()) for r in dark_v1))
    last = result.rounds[-1]
    promoted = next(record for record in versions.values() if record["stage"] == "production")
    timeline_rows = "\n".join(f"| {step.name} | {since:.0f} s | {wait:.1f} s | {step.kind} | {step.why} |"
                              for step, since, wait in result.timeline.rows()) if result.timeline else ""
    total = result.timeline.total_s if result.timeline else None
    kinds = (" / ".join(f"{result.timeline.seconds(kind):.1f} s" for kind in ("policy", "work", "latency"))
             if result.timeline else "-")
    held = promoted["metrics"]
    work_lines = "\n".join(f"- {run.get('version')}: {run_work(run)}" for run in result.runs
                           if run.get("status") == "published" and run.get("version") in ("v1", result.fixed_by))
    field = (f"{promoted['version']}'s gate compared it with v1 on {int(held['field_holdout_images'])} held-out confirmed "
             f"captures: {held['int8_field_accuracy']:.1%} vs {held['production_int8_field_accuracy']:.1%}"
             if held.get("field_holdout_images") and "production_int8_field_accuracy" in held else "no field holdout")
    markdown = f"""## Closed loop (`edgeloop bench loop`, the same run as `edgeloop demo`)

{devices} simulated devices; the room goes dark (12% brightness) after two rounds, once the cooldown after v1's run
is over. A retrain for it waits until {DEMO_ENV['EDGELOOP_GATE__MIN_FIELD_HOLDOUT']} confirmed captures on v1 are held
out to judge it on (the demo's `training.field_holdout_wait_s`); {field}.

| version | final stage | trained on (images) | int8 accuracy, clean holdout | int8 accuracy, dark holdout |
|---|---|---|---|---|
{rows}

| measure | value | target (issue 9) | |
|---|---|---|---|
| whole demo, stack start → every device on the new model | {result.seconds:.0f} s | < 300 s | {_check(result.seconds < 300)} |
| loop close: the run that trained the new version launched → every device on it | {result.loop_close_s:.0f} s | reported | |
| field success in the dark room on v1 → on the new version (last round) | {dark_rate:.1%} → {last.success():.1%} | recovers | {_check(last.success() > dark_rate)} |
| v1 dark-holdout accuracy | {versions['v1']['metrics']['int8_drifted_accuracy']:.1%} | < 75% | {_check(versions['v1']['metrics']['int8_drifted_accuracy'] < 0.75)} |
| new production version's dark-holdout accuracy | {promoted['metrics']['int8_drifted_accuracy']:.1%} | ≥ 95% | {_check(promoted['metrics']['int8_drifted_accuracy'] >= 0.95)} |

The loop step by step, from the room going dark (`at`: since then; `wait`: since the step before; `kind`: what
the wait was — the product's latency, training work, or a policy the settings ask for):

| step | at | wait | kind | why it waited |
|---|---|---|---|---|
{timeline_rows}

The training work stage by stage, from each run's document: v1's run trained before the fleet started, the run of the
version that fixed the room while {devices} simulated devices, the functions and the emulators shared the same two cores.
{work_lines}

The launch latency is timed apart from the demo (whose few runs mostly wait for a policy): operator requests
(`edgeloop retrain`'s path) for a model with no images, one at a time, each from the request's `requested_at`
to the run's `started` (the launcher started the trainer), both on the run document.

| measure | value | target (issue 21) | |
|---|---|---|---|
| room dark → every device on the new version | {f"{total:.0f} s" if total is not None else "-"} | < 90 s | {_check(total is not None and total < 90)} |
| of which policy / training work / latency | {kinds} | reported | |
| retrain request → trainer started: p50 / p95 of {len(starts)} operator requests, one at a time, on a fresh stack | {p50:.2f} s / {p95:.2f} s | p95 < 2 s | {_check(p95 < 2)} |

Stages: {' · '.join(f"{name} {seconds:.0f} s" for name, seconds in result.stage_seconds.items())}.
Report: [docs/loop-report.png](docs/loop-report.png).
"""
    show_section(console, "loop", markdown)


@bench_app.command("soak")
def bench_soak(duration: float = typer.Option(180.0, min=20, help="seconds of mixed traffic")) -> None:
    """A few minutes of mixed uploads, overwrites, redeliveries, feedback and retrain triggers; then the invariants."""
    from edgeloop.soak import SEED_IMAGES, SOAK_ENV, run_soak

    with fresh_stack(env=SOAK_ENV) as (state, settings):
        r = run_soak(state, settings, console, duration_s=duration)
    up, fb = r["upload_latency"], r["feedback_latency"]
    runs = ", ".join(f"{n} {status}" for status, n in sorted(r["runs"].items()))
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(r["run_reasons"].items()))
    memory = "\n".join(f"| {name} | {mib:.0f} MiB |" for name, mib in r["rss_mib"].items())
    checks = "\n".join(f"| {name} | {_check(not problems)} | {'; '.join(problems[:3]) or '–'} |"
                       for name, problems in r["invariants"].items())
    settings_used = ", ".join(f"`{k.removeprefix('EDGELOOP_')}={v}`" for k, v in SOAK_ENV.items())
    markdown = f"""## Soak (`edgeloop bench soak --duration {duration:.0f}`)

A fresh local stack, {SEED_IMAGES} digits seeded and v1 trained, then {r['duration_s']:.0f} s of mixed traffic at once:
dataset uploads (10% overwrite an earlier object, 10% of notifications published twice), device reports
(20% confirm a capture they upload, which becomes training data), a scheduler tick every 20 s (drift check,
reconciliation, sweep) and a manual retrain every 75 s sent twice. Settings: {settings_used}.
Then {r['drain_s']:.0f} s of draining until every event was handled and no run was left.

| traffic | count | rate | handled: p50 / p95 / p99 from write |
|---|---|---|---|
| uploads (incl. {r['overwrites']} overwrites, plus {r['redeliveries']} redelivered notifications) | {r['uploads']} | {r['upload_rate']:.1f}/s | {up['p50']:.2f} / {up['p95']:.2f} / {up['p99']:.2f} s |
| feedback reports | {r['reports']} | {r['report_rate']:.1f}/s | {fb['p50']:.2f} / {fb['p95']:.2f} / {fb['p99']:.2f} s |
| scheduler ticks / manual requests | {r['ticks']} / {r['manual_requests']} | – | – |

Training runs: {runs} (reasons: {reasons}); at most one run was unfinished in each of {r['samples']} samples.

| process (with its children: a function's trainer runs) | peak resident memory |
|---|---|
{memory}

| invariant at the end | holds | problems |
|---|---|---|
{checks}
"""
    show_section(console, "soak", markdown)
    if not all(not problems for problems in r["invariants"].values()):
        raise typer.Exit(1)


@bench_app.command("decisions")
def bench_decisions(rollouts: int = typer.Option(200, min=10, help="simulated rollouts per scenario and rule"),
                    horizon: int = typer.Option(20_000, min=100, help="reports after which a rollout stays undecided"),
                    seed: int = typer.Option(0, help="random seed")) -> None:
    """The canary rule against the fixed-level rule it replaced: a Monte Carlo of rollouts, no stack."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgeloop import bench_decisions as decisions
    from shared.config import get_settings

    policy = get_settings().release
    total = len(list(decisions.scenarios(policy))) * len(decisions.RULES)
    with Progress(TextColumn("scenarios"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("scenarios", total=total)
        outcomes = decisions.measure(policy, rollouts, horizon, seed, lambda: progress.advance(task))
    decisions.draw(outcomes, BENCHMARKS_FILE.parent / "docs" / "decisions.png")
    markdown = f"""## Release decisions (`edgeloop bench decisions`)

{decisions.markdown(outcomes, policy, rollouts, horizon, seed)}

Plot: [docs/decisions.png](docs/decisions.png).
"""
    show_section(console, "decisions", markdown)
    if not all(decisions.targets_met(outcomes).values()):
        raise typer.Exit(1)


@bench_app.command("quantisation")
def bench_quantisation(trials: int = typer.Option(20_000, min=100, help="simulated holdouts per scenario"),
                       seed: int = typer.Option(0, help="random seed")) -> None:
    """The gate's quantisation-loss rule against the fixed limit it replaced: a Monte Carlo of holdouts, no stack."""
    from edgeloop import bench_quantisation as quantisation
    from shared.config import get_settings

    policy = get_settings().gate
    outcomes = quantisation.measure(policy, trials, seed)
    markdown = f"""## Quantisation-loss gate (`edgeloop bench quantisation`)

{quantisation.markdown(outcomes, policy, trials, seed)}
"""
    show_section(console, "quantisation", markdown)
    if not all(quantisation.targets_met(outcomes, policy).values()):
        raise typer.Exit(1)


def drift_bench(bench_settings, figure: Path | None, model: str = "digits",
                env: dict[str, str] | None = None) -> tuple[list, dict]:
    """``edgeloop bench drift``'s measurement on a fresh stack: (results, meta); draws ``figure`` if given.

    ``env``: settings overrides for the stack (a smoke test shrinks ``thresholds.drift_min_samples``).
    """
    from contextlib import ExitStack

    from edgeloop import bench_drift

    with ExitStack() as cleanup:
        for attempt in range(1, STACK_ATTEMPTS + 1):  # a busy machine can time a starting emulator out
            try:
                state, settings = cleanup.enter_context(fresh_stack(env=env))
                break
            except Exception as exc:  # noqa: BLE001 - reported, retried, re-raised on the last attempt
                if attempt == STACK_ATTEMPTS:
                    raise
                console.print(f"[yellow]the stack did not start[/] ({type(exc).__name__}: {exc}); trying again")
        devices = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="edgeloop-devices-"))
        results, meta = bench_drift.run(bench_settings, state, settings, console, Path(devices), model)
    if figure is not None:
        bench_drift.draw(results, figure)
    return results, meta


@bench_app.command("drift")
def bench_drift(devices: int = typer.Option(12, "--devices", "-n", min=1, max=30, help="simulated devices"),
                healthy_windows: int = typer.Option(100, min=1, help="random-sample windows wanted on the healthy fleet"),
                drift_windows: int = typer.Option(10, min=1, help="random-sample windows of the largest size per drift"),
                seed: int = typer.Option(0, help="random seed")) -> None:
    """False alarms of the drift check on a healthy fleet and detection of four drifts, on a fresh stack."""
    from edgeloop import bench_drift as drift

    chosen = drift.DriftBenchSettings(devices=devices, healthy_windows=healthy_windows, drift_windows=drift_windows,
                                      seed=seed)
    results, meta = drift_bench(chosen, BENCHMARKS_FILE.parent / "docs" / "drift.png")
    markdown = f"""## Drift detection (`edgeloop bench drift`)

{drift.markdown(results, chosen, meta)}
"""
    show_section(console, "drift", markdown)
    if not all(met for met in drift.targets(results, meta["min_samples"]).values()):
        raise typer.Exit(1)


@bench_app.command("footprint")
def bench_footprint(events: int = typer.Option(1_000, min=1, help="events driven at on_upload and at on_feedback")) -> None:
    """Import time and memory of each function process, at start and after EVENTS real events on a fresh stack."""
    from edgeloop import footprint

    found = footprint.probes()
    with fresh_stack() as (state, settings):
        loaded = footprint.under_load(state, settings, console, events=events)
    show_section(console, "footprint", footprint.markdown(found, loaded, events))


@bench_app.command("capacity")
def bench_capacity(events: int = typer.Option(50, min=1, help="events counted per function")) -> None:
    """Operations per upload, report and update check counted on a fresh stack; the capacity table they give."""
    from edgeloop import bench_capacity as measured

    with fresh_stack() as (state, settings), tempfile.TemporaryDirectory(prefix="edgeloop-device-") as device_dir:
        counted = measured.measure(state, settings, console, Path(device_dir), events=events)
    show_section(console, "capacity", measured.markdown(counted))


@bench_app.command("all")
def bench_all(seed: int = typer.Option(0, help="split and training seed")) -> None:
    """Every benchmark, one after the other: train, backbone, ingest, client, loop, soak, decisions, quantisation, drift,
    footprint, capacity."""
    bench_train(seed=seed, scale=False)  # called as functions: every option passed explicitly
    bench_backbone(seed=seed, per_class=None, weights="none")
    bench_ingest()
    bench_client()
    bench_loop(devices=16)
    bench_soak(duration=180.0)
    bench_decisions(rollouts=200, horizon=20_000, seed=0)
    bench_quantisation(trials=20_000, seed=0)
    bench_drift(devices=12, healthy_windows=100, drift_windows=10, seed=0)
    bench_footprint(events=1_000)
    bench_capacity(events=50)
