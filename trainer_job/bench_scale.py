"""Benchmark: the trainer's memory and speed as the dataset grows, streamed vs decoded into memory.

Generates labelled images as PNG files in a local directory (variants of the embedded digits: each a digit
tinted, dimmed, shifted and noisy, so no two files are the same), lists them in a real ``Manifest`` and, for
each dataset size, runs the trainer's data path and a bounded training in a fresh child process:

* ``stream``: ``snapshot.split_to_cache`` (split first, every file read and decoded once into sharded
  TFRecords) → ``pipeline.train_candidate_streamed`` (tf.data training, int8 calibration, evaluation and
  load check, all streamed);
* ``memory`` (the baseline, the old path): ``snapshot.decode_all`` (every file decoded into one array) →
  ``pipeline.train_candidate``.

Both read the same files through the same decoder and train the same network for the same number of steps
(``--steps`` per run, one epoch at most); each child reports its own peak resident memory
(``getrusage``), its memory once TensorFlow is loaded, and its times.

    python -m trainer_job.bench_scale [--sizes 2000,20000,100000]   # JSON on stdout, progress on stderr
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

SIZES = (2_000, 20_000, 100_000)
IMAGE_SIZE = 32
STEPS = 100  # training steps per run (batch 32): the same work at every size, minutes in all on two cores
MODES = ("stream", "memory")
MODEL = "scale"
GENERATE_BATCH = 2_000
CHILD_TIMEOUT_S = 3_600


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _variants(start: int, count: int, seed: int) -> list[tuple[str, bytes]]:
    """Images ``start`` … ``start + count - 1``: (label, PNG). Image ``i`` depends only on ``seed`` and ``i``."""
    from PIL import Image

    from shared.digits import load_digits_rgb

    digits = load_digits_rgb(IMAGE_SIZE)
    out = []
    for index in range(start, start + count):
        rng = np.random.default_rng([seed, index])
        digit = digits[index % len(digits)]
        pixels = np.roll(digit.rgb.astype(np.float32), tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        pixels = pixels * rng.uniform(0.35, 1.0, size=3) + rng.normal(0.0, 8.0, size=pixels.shape)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB").save(buffer, format="PNG", compress_level=1)
        out.append((digit.label, buffer.getvalue()))
    return out


def object_name(index: int, label: str) -> str:
    return f"dataset/{MODEL}/{label}/{index:06d}.png"


def images_directory(seed: int = 0) -> Path:
    """Where the generated images are kept between runs (they take minutes to write on busy cores)."""
    return Path(tempfile.gettempdir()) / f"edgeloop-scale-images-{IMAGE_SIZE}px-seed{seed}"


def generate(directory: Path, count: int, seed: int = 0, advance: Callable[[int], None] | None = None) -> None:
    """Write ``count`` images under ``directory``, batch by batch; a batch already written (its marker file is
    there) is kept, so an interrupted or smaller earlier run is extended, not redone."""
    directory.mkdir(parents=True, exist_ok=True)

    def marker(start: int) -> Path:
        return directory / f".batch-{start}-{GENERATE_BATCH}-{seed}"

    starts = [start for start in range(0, count, GENERATE_BATCH) if not marker(start).exists()]
    if advance is not None:
        advance(count - sum(min(GENERATE_BATCH, count - s) for s in starts))
    with ProcessPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool:
        for start, images in zip(starts, pool.map(_variants, starts, [min(GENERATE_BATCH, count - s) for s in starts],
                                                  [seed] * len(starts))):
            for offset, (label, content) in enumerate(images):
                path = directory / object_name(start + offset, label)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            if len(images) == GENERATE_BATCH:
                marker(start).touch()
            if advance is not None:
                advance(len(images))


def manifest_of(directory: Path, count: int):
    """The first ``count`` images as the trainer's ``Manifest`` (``snapshot.build_manifest``: sorted by object)."""
    from shared.digits import LABELS
    from trainer_job.snapshot import build_manifest

    documents = []
    for label in LABELS:
        for path in sorted((directory / "dataset" / MODEL / label).glob("*.png")):
            index = int(path.stem)
            if index < count:
                name = object_name(index, label)
                documents.append((f"img{index:06d}", {"object": name, "generation": 1, "label": label,
                                                      "status": "new", "labelled": True}))
    return build_manifest(MODEL, documents, LABELS)


def child(mode: str, directory: Path, count: int, steps: int, seed: int) -> dict[str, Any]:
    """One measured run in this (fresh) process: the data path ``mode`` and a bounded training on ``count`` images."""
    from rich.console import Console

    from shared.digits import LABELS
    from trainer_job.model import Hyperparameters
    from trainer_job.pipeline import TrainConfig, train_candidate, train_candidate_streamed
    from trainer_job.snapshot import decode_all, split_to_cache

    import tensorflow  # noqa: F401 - loaded before the floor is read, as both paths load it

    console = Console(stderr=True)
    config = TrainConfig(grid=(Hyperparameters(epochs=1),), latency_repeats=20, stream_above_mib=0)
    floor = _rss_mib()
    manifest = manifest_of(directory, count)

    def read(entry) -> bytes:
        return (directory / entry["object"]).read_bytes()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeloop-scale-") as scratch:
        if mode == "stream":
            cache = split_to_cache(manifest, LABELS, config, seed, 0.2, Path(scratch), read)
            prepared = time.perf_counter()
            candidate = train_candidate_streamed(cache, LABELS, config, seed, console=console, max_steps=steps)
        else:
            images, labels = decode_all(manifest, LABELS, IMAGE_SIZE, read)
            prepared = time.perf_counter()
            candidate = train_candidate(images, labels, LABELS, config, seed, console=console, max_steps=steps,
                                        field_captures=manifest.field_mask(),
                                        field_holdout=manifest.field_holdout_mask(0.2))
        shards = sum(path.stat().st_size for path in Path(scratch).glob("*.tfrecord"))
    ended = time.perf_counter()
    train_seconds = candidate.trials[0]["seconds"]
    examples = min(steps, -(-candidate.counts["train_augmented"] // 32)) * 32
    return {
        "mode": mode, "images": count, "steps": steps, "cpu_count": os.cpu_count(),
        "floor_mib": round(floor, 1), "peak_mib": round(_peak_mib(), 1),
        "prepare_s": round(prepared - started, 2), "total_s": round(ended - started, 2),
        "train_s": train_seconds, "trained_examples": examples,
        "train_images_per_s": round(examples / train_seconds, 1),
        "read_images_per_s": round(count / (prepared - started), 1),
        "stage_seconds": candidate.stage_seconds, "shard_bytes": shards,
        "int8_accuracy": round(candidate.metrics["int8_accuracy"], 4), "counts": candidate.counts,
    }


def run_child(mode: str, directory: Path, count: int, steps: int, seed: int = 0) -> dict[str, Any]:
    """``child`` in a fresh interpreter (so its peak memory is its own); its progress goes to our stderr."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "trainer_job.bench_scale", "--child", mode, "--dir", str(directory),
               "--images", str(count), "--steps", str(steps), "--seed", str(seed)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, timeout=CHILD_TIMEOUT_S,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} run on {count} images failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(console, sizes=SIZES, steps: int = STEPS, seed: int = 0, baseline_max: int = max(SIZES)) -> dict[str, Any]:
    """Generate the images once, then measure every size, streamed and (up to ``baseline_max``) in memory."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    directory = images_directory(seed)  # the images stay for the next run
    with Progress(TextColumn("  generate PNGs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("generate", total=max(sizes))
        generate(directory, max(sizes), seed, lambda n: progress.advance(task, n))
    generated = time.perf_counter() - started
    console.print(f"[bold green]✓[/] [bold]generate[/]  {generated:6.1f} s  {max(sizes):,} PNGs of "
                  f"{IMAGE_SIZE}×{IMAGE_SIZE} in {directory}", highlight=False)
    for count in sizes:
        for mode in MODES:
            if mode == "memory" and count > baseline_max:
                console.print(f"[yellow]–[/] [bold]{count:>7,} {mode:<6}[/] skipped (above --baseline-max)")
                continue
            console.rule(f"{count:,} images · {mode}")
            r = run_child(mode, directory, count, steps, seed)
            results.append(r)
            with open(directory / "results.jsonl", "a", encoding="utf-8") as log:  # each run as it ends
                log.write(json.dumps(r) + "\n")
            console.print(f"[bold green]✓[/] [bold]{count:>7,} {mode:<6}[/] peak {r['peak_mib']:,.0f} MiB "
                          f"(+{r['peak_mib'] - r['floor_mib']:,.0f} over TensorFlow loaded) · read+decode "
                          f"{r['read_images_per_s']:,.0f} images/s · training {r['train_images_per_s']:,.0f} "
                          f"images/s · {r['total_s']:.0f} s", highlight=False)
    return {"sizes": list(sizes), "steps": steps, "seed": seed, "image_size": IMAGE_SIZE,
            "generate_s": round(generated, 1), "wall_s": round(time.perf_counter() - started, 1),
            "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "results": results}


def _mib_per_image(results: list[dict[str, Any]], mode: str) -> float | None:
    """The slope of peak memory over dataset size (least squares over the sizes measured)."""
    points = [(r["images"], r["peak_mib"]) for r in results if r["mode"] == mode]
    if len(points) < 2:
        return None
    return float(np.polyfit(*zip(*points), 1)[0])


def markdown(r: dict[str, Any], command: str) -> str:
    from trainer_job import stream

    rows = "\n".join(
        f"| {x['images']:,} | {'streamed (tf.data over TFRecord shards)' if x['mode'] == 'stream' else 'in memory (the old path)'} "
        f"| {x['peak_mib']:,.0f} MiB | +{x['peak_mib'] - x['floor_mib']:,.0f} MiB | {x['read_images_per_s']:,.0f} "
        f"| {x['train_images_per_s']:,.0f} | {x['trained_examples']:,} in {x['train_s']:.0f} s | {x['total_s']:.0f} s "
        f"| {x['shard_bytes'] / 2**20:,.0f} MiB | {x['int8_accuracy']:.3f} |"
        for x in r["results"])
    streamed = [x for x in r["results"] if x["mode"] == "stream"]
    memory = [x for x in r["results"] if x["mode"] == "memory"]
    growth = {mode: (max(xs, key=lambda x: x["images"])["peak_mib"] - min(xs, key=lambda x: x["images"])["peak_mib"])
              for mode, xs in (("stream", streamed), ("memory", memory)) if len(xs) > 1}
    slope = _mib_per_image(r["results"], "memory")
    stream_slope = _mib_per_image(r["results"], "stream") or 0.0
    pixels_224 = (224 / r["image_size"]) ** 2
    estimate = (f"The in-memory path's peak grows by {slope * 1024:.1f} KiB per {r['image_size']}×{r['image_size']} "
                f"image here (least squares over the sizes above); at 224×224 ({pixels_224:.0f}× the pixels) a million "
                f"photos would need about {slope * pixels_224 * 1e6 / 1024:,.0f} GiB, the issue's ~150 GB of pixels "
                f"plus their augmented copies and float32 batch for Keras." if slope else "")
    buffer_224 = stream.SHUFFLE_RECORDS * 224 * 224 * 3 / 2**30
    sizes = " / ".join(f"{n:,}" for n in r["sizes"])
    load = ", ".join(f"{v:.1f}" for v in r["load_average"])
    return f"""## Training at scale (`{command}`)

{sizes} generated {r['image_size']}×{r['image_size']} PNGs (variants of the digits: tinted, dimmed, shifted, noisy;
{r['generate_s']:.0f} s to write what was not there yet: they are kept between runs) in a local directory, listed in a real manifest. For each size a fresh process runs
the trainer's data path and a bounded training, then int8 calibration, conversion, evaluation on the holdout and its
stresses, and the load check: **streamed** (split first, every file read and decoded once into TFRecord shards on
local disk, trained from a `tf.data` pipeline with parallel reads, a {stream.SHUFFLE_RECORDS:,}-record shuffle
buffer and prefetch; evaluation and calibration batch by batch) and, side by side, **in memory** (every image
decoded into one array first: the old path, still what a run below `TrainConfig.stream_above_mib` uses). Both train
the same CNN for {r['steps']} steps of 32 (one epoch at most), with the default augmentation.

| images | data path | peak RSS | over TensorFlow loaded | read + decode, images/s | training, images/s | trained | whole run | shards on disk | int8 holdout |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Peak memory from {min(r['sizes']):,} to {max(r['sizes']):,} images: streamed
{'+' if growth.get('stream', 0) >= 0 else ''}{growth.get('stream', 0):,.0f} MiB, in memory
{'+' if growth.get('memory', 0) >= 0 else ''}{growth.get('memory', 0):,.0f} MiB. {estimate} The streamed path
holds the shuffle buffer ({stream.SHUFFLE_RECORDS:,} records: {buffer_224:.1f} GiB at 224×224, a constant), a
{stream.AUGMENT_BATCH}-image augmentation batch, {stream.CHUNK_IMAGES} decoded images in flight while the shards are
written and one {stream.EVAL_BATCH}-image evaluation batch. What still grows with the dataset is the manifest: its
entries held as Python dicts, plus a label and a position per image ({stream_slope * 1024:.1f} KiB per image here, the
same at any image size; holding the manifest as arrays would remove most of it). On disk the shards take
{r['image_size']}×{r['image_size']}×3 bytes per image, uncompressed.

Measured on {r['cpu_count']} cores shared with three other engineers' work (load average {load} at the end, so
every time here is several times what a quiet machine gives; the memory figures are not affected).
{r['wall_s'] / 60:.0f} min in all. "Training, images/s" counts the trial's whole time (building the model, the
`tf.data` start-up, {r['steps']} steps, the validation pass); "read + decode" is the data path before training
(split + shards, or the array). The accuracy after {r['steps']} steps is only a sanity check.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--images", type=int)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.images, args.steps, args.seed)))
        return
    from rich.console import Console

    print(json.dumps(run(Console(stderr=True), steps=args.steps, seed=args.seed), indent=2))


if __name__ == "__main__":
    main()
