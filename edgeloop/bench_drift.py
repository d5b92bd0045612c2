"""`edgeloop bench drift`: how often the drift check cries wolf on a healthy fleet, and whether it sees real drift.

On a fresh local stack: the first ``seed_images`` digits are seeded through on_upload and v1 is trained (the
trainer stores the version's drift baseline). Simulated devices then run the real ``client_sdk`` with the default
capture policy (``shared.config.Client``: every prediction below the confidence threshold plus a random sample of
the rest, within the daily budgets) on digits the model never saw (the rest of the dataset), one scenario at a
time: a healthy fleet, and four drifts (low light, blur, sensor noise, a label-mix shift). Their captures travel
the real path (outbox → storage → on_upload, which computes each image's statistics on its document).

Drift windows: running the scheduler once per window of 50 fresh captures would cost a stack run per window, so each
scenario's pool of uploaded captures is collected once and cut, in the order on_upload registered them, into
disjoint windows; the real ``shared.drift.detect_drift`` runs on each against the version's real baseline. Two input
selections side by side: "all captures" (what the drift check read before capture reasons existed: low-confidence
and random-sample captures alike) and "random sample" (only documents whose ``capture_reason`` is
``random_sample``). Windows smaller than ``thresholds.drift_min_samples`` are judged with ``min_samples`` lowered to
their size (the other thresholds unchanged), to see how many samples a drift needs.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from edgeloop.identities import device_uid
from shared.drift import DriftThresholds, detect_drift

RANDOM_SAMPLE = "random_sample"
DEVICE_RANDOM_REASONS = ("sample", RANDOM_SAMPLE)  # what the SDK's Prediction.capture_reason calls a random capture
SELECTIONS = {
    "all captures (before)": lambda doc: True,
    "random sample (now)": lambda doc: doc.get("capture_reason") == RANDOM_SAMPLE,
}
DETECTED = 0.95  # a drift "needs" the smallest window size at which at least this share of windows detect it …
FALSE_ALARMS = 0.01  # … and the healthy fleet raises at most this share of false alarms (the target)


@dataclass(frozen=True)
class DriftBenchSettings:
    """Sizes of one run; a smoke test shrinks them."""

    seed_images: int = 1197  # the first digits, seeded and trained on; the fleet sees only the rest (600)
    devices: int = 12
    images_per_day: int = 200  # each device's classifications per simulated day (the capture budget is daily)
    healthy_windows: int = 100  # random-sample windows of drift_min_samples wanted on the healthy fleet
    drift_windows: int = 10  # random-sample windows of drift_min_samples wanted per drift (fewer of larger sizes)
    window_sizes: tuple[int, ...] = (10, 20, 30, 50, 100)
    max_uploads: int = 9000  # per scenario: a drift that makes most predictions unsure is capped here
    brightness_kept: float = 0.35
    blur_sigma: float = 1.0
    noise_std: float = 20.0
    label_mix: tuple[str, ...] = ("1", "7")
    label_mix_share: float = 0.9  # of the fleet's images show one of label_mix
    seed: int = 0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    drift: bool


def scenarios(s: DriftBenchSettings) -> list[Scenario]:
    return [
        Scenario("healthy", "clean digits", False),
        Scenario("low light", f"every pixel at {s.brightness_kept:.0%} brightness", True),
        Scenario("blur", f"Gaussian blur, sigma {s.blur_sigma:g} px", True),
        Scenario("noise", f"Gaussian sensor noise, std {s.noise_std:g} of 255", True),
        Scenario("label mix", f"{s.label_mix_share:.0%} of images are a {' or '.join(s.label_mix)}", True),
    ]


# --- pure parts: the scenario's images, windows, rates, the section -----------------------------------------------

def _uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def transform(scenario: str, rgb: np.ndarray, s: DriftBenchSettings, rng: np.random.Generator) -> np.ndarray:
    """The image a device's camera delivers in ``scenario`` (uint8 H×W×3 in and out)."""
    if scenario == "low light":
        return _uint8(rgb.astype(np.float32) * s.brightness_kept)
    if scenario == "blur":
        return _uint8(gaussian_filter(rgb.astype(np.float32), sigma=(s.blur_sigma, s.blur_sigma, 0)))
    if scenario == "noise":
        return _uint8(rgb.astype(np.float32) + rng.normal(0.0, s.noise_std, rgb.shape))
    return rgb


def pick(scenario: str, digits: Sequence[Any], s: DriftBenchSettings, rng: np.random.Generator) -> Any:
    """The next digit a device sees: uniform over ``digits``, or mostly ``label_mix`` in the label-mix scenario."""
    if scenario == "label mix" and rng.random() < s.label_mix_share:
        chosen = [d for d in digits if d.label in s.label_mix]
        return chosen[int(rng.integers(len(chosen)))]
    return digits[int(rng.integers(len(digits)))]


def windows(pool: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Disjoint consecutive windows of ``size`` (a short tail is dropped)."""
    return [pool[start:start + size] for start in range(0, len(pool) - size + 1, size)]


def thresholds_for(size: int, thresholds: DriftThresholds) -> DriftThresholds:
    """``thresholds`` with min_samples lowered to ``size`` when a window is smaller (nothing else changes)."""
    return DriftThresholds(min(size, thresholds.min_samples), thresholds.p_value, thresholds.min_effect,
                           thresholds.max_label_distance)


@dataclass
class Rate:
    detected: int = 0
    windows: int = 0
    tests: Counter = field(default_factory=Counter)  # which tests flagged, over the detecting windows

    @property
    def rate(self) -> float | None:
        return self.detected / self.windows if self.windows else None


@dataclass
class Result:
    scenario: Scenario
    selection: str
    pool: int  # image documents selected
    rates: dict[int, Rate]  # per window size
    error: str = ""  # why this selection could not be measured


def measure(baseline: Mapping[str, Any], pool: Sequence[Mapping[str, Any]], sizes: Sequence[int],
            thresholds: DriftThresholds) -> dict[int, Rate]:
    """detect_drift on every disjoint window of each size."""
    rates = {}
    for size in sizes:
        rate = Rate()
        for window in windows(pool, size):
            report = detect_drift(baseline, window, thresholds_for(size, thresholds))
            rate.windows += 1
            if report.drifted:
                rate.detected += 1
                rate.tests.update(t.name for t in report.tests if t.drifted)
        rates[size] = rate
    return rates


def samples_needed(rates: Mapping[int, Rate], healthy: Mapping[int, Rate] | None = None, share: float = DETECTED,
                   false_alarms: float = FALSE_ALARMS) -> int | None:
    """The smallest window size at which at least ``share`` of the windows detected drift (None: none did).

    With ``healthy`` (the healthy fleet's rates for the same selection), only sizes at which the healthy fleet
    raised at most ``false_alarms`` count: a size at which every window alarms detects nothing.
    """
    def quiet(size: int) -> bool:
        rate = (healthy or {}).get(size)
        return healthy is None or (rate is not None and rate.rate is not None and rate.rate <= false_alarms)

    return next((size for size in sorted(rates)
                 if rates[size].rate is not None and rates[size].rate >= share and quiet(size)), None)


def _percent(rate: Rate | None) -> str:
    if rate is None or rate.rate is None:
        return "—"
    return f"{rate.rate:.1%} ({rate.detected}/{rate.windows})"


def _tests(rate: Rate | None) -> str:
    if rate is None or not rate.tests:
        return "–"
    return ", ".join(f"{name} {n}" for name, n in rate.tests.most_common())


def targets(results: Sequence[Result], standard: int, selection: str = "random sample (now)") -> dict[str, bool | None]:
    """The issue's targets for one selection (None: not measured)."""
    mine = {r.scenario.name: r for r in results if r.selection == selection}
    healthy = mine.get("healthy")
    false_alarms = healthy.rates.get(standard) if healthy and not healthy.error else None
    met: dict[str, bool | None] = {
        f"≤ 1% false alarms on the healthy fleet (≥ 100 windows of {standard})":
            None if false_alarms is None or false_alarms.rate is None
            else false_alarms.rate <= 0.01 and false_alarms.windows >= 100,
    }
    for name, r in mine.items():
        if r.scenario.drift:
            rate = r.rates.get(standard)
            met[f"{name} detected (windows of {standard})"] = (None if r.error or rate is None or rate.rate is None
                                                              else rate.rate >= DETECTED)
    return met


def markdown(results: Sequence[Result], s: DriftBenchSettings, meta: Mapping[str, Any]) -> str:
    standard = meta["min_samples"]
    sizes = sorted(set(s.window_sizes) | {standard})
    lines = [
        f"A fresh local stack: the first {s.seed_images} digits seeded through on_upload, "
        f"{meta['version']} trained on them (its trainer stored the drift baseline). Then, one scenario at a time, "
        f"{s.devices} simulated devices run the real client SDK with the default capture policy (capture below "
        f"confidence {meta['capture_below']}, a {meta['sample_rate']:.0%} random sample of the rest, "
        f"{meta['daily_count']} captures a day per device; {s.images_per_day} classifications per device per simulated "
        f"day) on the {meta['field_images']} digits the model never saw; captures go through the real "
        "outbox → storage → on_upload path, which computes the image statistics on each image document.",
        "",
        "Each scenario's pool of uploaded captures was collected once and cut, in registration order, into disjoint "
        f"windows; the real `shared.drift.detect_drift` judged each window against {meta['version']}'s baseline "
        f"(thresholds: p {meta['p_value']} family-wise, KS effect ≥ {meta['min_effect']}, label-mix JS distance "
        f"> {meta['max_label_distance']}). Windows smaller than `drift_min_samples` ({standard}) are judged with "
        "`min_samples` lowered to their size. \"all captures\" is what the drift check read before capture reasons "
        "existed (low-confidence and random-sample captures alike); \"random sample\" reads only documents whose "
        "`capture_reason` is `random_sample`. Samples needed: the smallest window size at which at least "
        f"{DETECTED:.0%} of the drift's windows were flagged and at most {FALSE_ALARMS:.0%} of the healthy fleet's "
        "(same selection, same size); \"none\": no size measured was both.",
        "",
        "| scenario | selection | captures in pool | " + " | ".join(f"detected, windows of {n}" for n in sizes)
        + f" | samples needed | tests that fired (windows of {standard}) |",
        "|---|---|---|" + "---|" * len(sizes) + "---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.scenario.name} | {r.selection} | {r.pool} | " + " | ".join("—" for _ in sizes)
                         + f" | not measured: {r.error} | – |")
            continue
        healthy = next((h.rates for h in results if h.selection == r.selection and not h.scenario.drift
                        and not h.error), None)
        needed = samples_needed(r.rates, healthy) if r.scenario.drift else None
        needed_text = (f"{needed}" if needed else "none") if r.scenario.drift else "(false alarms)"
        lines.append(f"| {r.scenario.name} ({r.scenario.description}) | {r.selection} | {r.pool} | "
                     + " | ".join(_percent(r.rates.get(n)) for n in sizes)
                     + f" | {needed_text} | {_tests(r.rates.get(standard))} |")
    lines += ["", "Per scenario (the fleet's own view): " + "; ".join(
        f"{name}: {m['predictions']:,} predictions, {m['accuracy']:.1%} correct, {m['captures']:,} captures "
        f"({m['random']:,} random sample)" for name, m in meta["fleets"].items()) + "."]
    for selection in SELECTIONS:
        lines += ["", f"Targets, {selection}:", ""]
        lines += [f"- {name}: {'not measured' if met is None else 'met' if met else 'NOT met'}"
                  for name, met in targets(results, standard, selection).items()]
    lines += ["", "Plot: [docs/drift.png](docs/drift.png)."]
    return "\n".join(lines)


def draw(results: Sequence[Result], path: Path) -> Path:
    """One panel per scenario: share of windows flagged as drift against the window size, one line per selection."""
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(r.scenario.name for r in results))
    figure = Figure(figsize=(3.2 * len(names), 3.6), layout="constrained")
    axes = figure.subplots(1, len(names), sharey=True, squeeze=False)[0]
    styles = {selection: style for selection, style in zip(SELECTIONS, (
        {"color": "tab:gray", "marker": "s", "linestyle": "--", "markersize": 9, "markerfacecolor": "none"},
        {"color": "tab:blue", "marker": "o", "linestyle": "-", "markersize": 5}))}
    for ax, name in zip(axes, names):
        drift = False
        for r in (r for r in results if r.scenario.name == name):
            drift = r.scenario.drift
            points = sorted((size, rate.rate * 100) for size, rate in r.rates.items() if rate.rate is not None)
            if r.error or not points:
                continue
            ax.plot(*zip(*points), label=r.selection, **styles.get(r.selection, {"marker": "x"}))
        ax.axhline(DETECTED * 100 if drift else 1, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(f"{name}: {'detected' if drift else 'false alarms'}", fontsize=10)
        ax.set_xlabel("captures per window")
        ax.set_xscale("log")
        sizes = sorted({size for r in results for size in r.rates})
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.set_ylim(-3, 103)
    axes[0].set_ylabel("% of windows flagged as drift")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    figure.suptitle("Drift check per window of field captures (dashed: 1% false-alarm target on the healthy fleet, "
                    f"{DETECTED:.0%} detection elsewhere)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    return path


# --- on the stack -------------------------------------------------------------------------------------------------

@dataclass
class Fleet:
    """What one scenario's devices did, counted as they go (shared by the device threads)."""

    predictions: int = 0
    correct: int = 0
    captures: int = 0
    random: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _device(index: int, scenario: str, args: dict, fleet: Fleet, enough: Callable[[], bool],
            advance: Callable[[int], None]) -> None:
    from client_sdk import ClientError, DownloadPolicy, EdgeloopClient
    from client_sdk.auth import AuthEndpoints
    from edgeloop.identities import signed_in_device

    s: DriftBenchSettings = args["bench"]
    device_id = f"{args['uid_prefix']}{index:03d}"
    rng = np.random.default_rng([s.seed, index, len(scenario)])
    day = [date(2026, 1, 1)]
    try:
        session = signed_in_device(device_id, args["model"], args["project_id"],
                                   AuthEndpoints.from_client_env(args["client_env"]))
        client = EdgeloopClient(args["model"], uid=session.uid, device_id=device_id,
                                directory=args["directory"] / device_id,
                                public_key_pem=args["public_key"], endpoints=args["endpoints"],
                                id_token=session.id_token, settings=args["client"],
                                policy=DownloadPolicy.LATEST, seed=int(rng.integers(2**31)), today=lambda: day[0])
        client.check_for_update()
        if client.active is None:
            raise ClientError("no verified model installed")
        while not enough():
            tally = Counter()
            for _ in range(s.images_per_day):
                digit = pick(scenario, args["digits"], s, rng)
                prediction = client.classify(transform(scenario, digit.rgb, s, rng))
                tally["predictions"] += 1
                tally["correct"] += prediction.label == digit.label
                if prediction.capture is not None:
                    tally["captures"] += 1
                    tally["random"] += prediction.capture_reason in DEVICE_RANDOM_REASONS
            report = client.flush()
            with fleet.lock:
                for name, n in tally.items():
                    setattr(fleet, name, getattr(fleet, name) + n)
                fleet.delivered += report.delivered
            advance(tally["random"])
            day[0] += timedelta(days=1)
    except ClientError as exc:
        with fleet.lock:
            fleet.errors.append(f"{device_id}: {exc}")


def run_fleet(scenario: str, args: dict, wanted_random: int, max_uploads: int, progress, task) -> Fleet:
    fleet = Fleet()

    def enough() -> bool:
        return bool(fleet.errors) or fleet.random >= wanted_random or fleet.captures >= max_uploads

    def advance(random: int) -> None:
        progress.update(task, completed=min(fleet.random, wanted_random))

    threads = [threading.Thread(target=_device, args=(i, scenario, args, fleet, enough, advance), daemon=True)
               for i in range(args["bench"].devices)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return fleet


def captures_of(db, model: str, version: str, uid_prefix: str) -> list[dict[str, Any]]:
    """The image documents of one scenario's devices, in the order on_upload registered them."""
    from google.cloud import firestore

    from shared import layout

    query = (db.collection(layout.images_collection(model))
             .where(filter=firestore.FieldFilter("uid", ">=", uid_prefix))
             .where(filter=firestore.FieldFilter("uid", "<", uid_prefix + "~")))
    docs = [d.to_dict() for d in query.stream()]
    docs = [d for d in docs if d.get("model_version") == version]
    return sorted(docs, key=lambda d: d["created"])


def run(s: DriftBenchSettings, state, settings, console, directory: Path,
        model: str = "digits") -> tuple[list[Result], dict[str, Any]]:
    """On a fresh stack (``state``, ``settings``): seed, train v1, then every scenario's fleet and its windows."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from client_sdk import Endpoints
    from edgeloop.device import load_public_key
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from shared import layout
    from shared.digits import load_digits_rgb
    from shared.gcp import launch
    from shared.gcp.clients import firestore_client
    from shared.retrain import manual_request

    console.print(f"[bold]seed[/] the first {s.seed_images} digits and train v1")
    seed_dataset(model, settings, console, train=False, limit=s.seed_images)
    run_record = wait_for_outcome(launch.launch(manual_request(model, who="edgeloop bench drift"), settings).run_id,
                                  settings, console)
    if run_record["status"] != "published":
        raise RuntimeError(f"v1 was not published: {run_record['status']} {run_record.get('error') or ''}")
    db = firestore_client(settings.project_id)
    version = db.document(layout.model_doc(model)).get().to_dict()["production"]["version"]
    baseline = (db.document(layout.version_doc(model, version)).get().to_dict() or {}).get("baseline") or {}
    if not baseline:
        raise RuntimeError(f"{version} has no drift baseline")
    t = settings.thresholds
    thresholds = DriftThresholds(t.drift_min_samples, t.drift_p_value, t.drift_min_effect, t.drift_max_label_distance)
    sizes = sorted(set(s.window_sizes) | {t.drift_min_samples})
    field_digits = load_digits_rgb()[s.seed_images:]
    args = {"bench": s, "model": model, "project_id": state.project_id, "client": settings.client,
            "public_key": load_public_key(state.path / "signing-key.pem"),
            "endpoints": Endpoints.from_client_env(state.client_env()), "client_env": state.client_env(),
            "directory": directory, "digits": field_digits}
    meta: dict[str, Any] = {
        "version": version, "min_samples": t.drift_min_samples, "p_value": t.drift_p_value,
        "min_effect": t.drift_min_effect, "max_label_distance": t.drift_max_label_distance,
        "capture_below": settings.client.capture_below_confidence, "sample_rate": settings.client.capture_sample_rate,
        "daily_count": settings.client.daily_capture_count, "field_images": len(field_digits), "fleets": {},
    }
    results: list[Result] = []
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    for scenario in scenarios(s):
        wanted = (s.healthy_windows if not scenario.drift else s.drift_windows) * t.drift_min_samples
        prefix = f"bench-{scenario.name.replace(' ', '-')}-"
        with Progress(*columns, console=console) as progress:
            classify = progress.add_task(f"{scenario.name}: random samples", total=wanted)
            fleet = run_fleet(scenario.name, {**args, "uid_prefix": prefix}, wanted, s.max_uploads, progress, classify)
            if fleet.errors:
                raise RuntimeError(f"{scenario.name}: {fleet.errors[0]}")
            registering = progress.add_task(f"{scenario.name}: on_upload", total=fleet.delivered)
            deadline = time.monotonic() + 120 + fleet.delivered / 10
            while len(docs := captures_of(db, model, version, device_uid(prefix))) < fleet.delivered:
                progress.update(registering, completed=len(docs))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{scenario.name}: {len(docs)} of {fleet.delivered} captures registered")
                time.sleep(1.0)
            progress.update(registering, completed=len(docs))
        meta["fleets"][scenario.name] = {"predictions": fleet.predictions, "accuracy": fleet.correct / max(1, fleet.predictions),
                                         "captures": fleet.captures, "random": fleet.random}
        for selection, chosen in SELECTIONS.items():
            pool = [d for d in docs if chosen(d)]
            if not pool:
                results.append(Result(scenario, selection, 0, {}, "no image document has capture_reason "
                                                                  f"{RANDOM_SAMPLE!r} (the client does not record it yet)"))
                continue
            results.append(Result(scenario, selection, len(pool), measure(baseline, pool, sizes, thresholds)))
        console.print(f"{scenario.name}: " + "; ".join(
            f"{r.selection} {_percent(r.rates.get(t.drift_min_samples))}" if not r.error else f"{r.selection} not measured"
            for r in results if r.scenario is scenario))
    return results, meta
