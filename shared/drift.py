"""Input drift: recent field inputs of a version against the baseline its trainer stored.

Plain functions of plain data. Each per-image statistic and the prediction
confidence get a two-sample Kolmogorov–Smirnov test; a shift counts as drift
only when it is both significant (Bonferroni-corrected over the tests) and
large (KS statistic at least ``min_effect``), so a huge sample cannot flag a
negligible change. The predicted-label mix is compared with the training
label mix by Jensen–Shannon distance. The recent inputs must be an unbiased
sample of field traffic (the devices' ``random_sample`` captures): hard cases
captured for their low confidence differ from the training data by design.

``assess_harm`` then says whether a detected drift hurts: only a drift under
which the version's field success is confidently below what its gate measured
(minus the release's tolerated drop) is retrained on; another is reported.

scipy's tests, and numpy, are imported where a check runs them: scipy.stats
costs a process about a second and 50 MiB, numpy a fifth of a second, and most
of check_drift's ticks find too few recent inputs to test (``edgeloop bench
footprint`` measures both).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from shared.image_stats import STATISTICS
from shared.success_rate import success_rate

BASELINE_SAMPLE = 500  # values kept per statistic in a baseline
# A baseline stores values to this many decimals; recent values are compared at the same precision, since
# int8 confidences are steps of 1/256 and a baseline's 0.99609 must tie with a capture's 0.996094, not
# sort below every one of them (which made a healthy fleet look drifted in confidence).
STORED_DECIMALS = 5


@dataclass(frozen=True)
class DriftThresholds:
    min_samples: int
    p_value: float
    min_effect: float
    max_label_distance: float


@dataclass(frozen=True)
class Test:
    name: str
    kind: str  # ks | jensen_shannon
    statistic: float
    p_value: float | None
    drifted: bool
    baseline_n: int
    recent_n: int
    baseline_median: float | None = None
    recent_median: float | None = None


@dataclass(frozen=True)
class DriftReport:
    status: str  # drift | no_drift | insufficient_data | no_baseline
    samples: int
    tests: list[Test] = field(default_factory=list)
    detail: str = ""

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def baseline_statistics(
    image_stats: Sequence[Mapping[str, float]], confidences: Sequence[float], labels: Sequence[str], seed: int = 0
) -> dict[str, Any]:
    """What the trainer stores for drift checks: a bounded sample of each statistic, confidences, label mix."""
    import numpy as np  # loaded where used: see the module's docstring

    rng = np.random.default_rng(seed)

    def sample(values: Sequence[float]) -> list[float]:
        values = np.asarray(values, dtype=float)
        if len(values) > BASELINE_SAMPLE:
            values = rng.choice(values, BASELINE_SAMPLE, replace=False)
        return [round(float(v), STORED_DECIMALS) for v in values]

    return {
        "image_stats": {name: sample([s[name] for s in image_stats]) for name in STATISTICS},
        "confidences": sample(confidences),
        "label_counts": dict(Counter(labels)),
    }


def _ks(name: str, baseline: Sequence[float], recent: Sequence[float], alpha: float, min_effect: float) -> Test:
    import numpy as np
    from scipy.stats import ks_2samp

    result = ks_2samp(baseline, recent)
    return Test(
        name=name, kind="ks", statistic=round(float(result.statistic), 4), p_value=float(result.pvalue),
        drifted=bool(result.pvalue < alpha and result.statistic >= min_effect),
        baseline_n=len(baseline), recent_n=len(recent),
        baseline_median=round(float(np.median(baseline)), 5), recent_median=round(float(np.median(recent)), 5),
    )


def _label_mix(baseline_counts: Mapping[str, int], predicted: Sequence[str], max_distance: float) -> Test:
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    labels = sorted(set(baseline_counts) | set(predicted))
    recent_counts = Counter(predicted)
    p = np.array([baseline_counts.get(label, 0) for label in labels], dtype=float)
    q = np.array([recent_counts.get(label, 0) for label in labels], dtype=float)
    distance = float(jensenshannon(p, q, base=2))
    return Test(
        name="predicted_label_mix", kind="jensen_shannon", statistic=round(distance, 4), p_value=None,
        drifted=distance > max_distance, baseline_n=int(p.sum()), recent_n=int(q.sum()),
    )


def detect_drift(baseline: Mapping[str, Any], recent: Sequence[Mapping[str, Any]], thresholds: DriftThresholds) -> DriftReport:
    """Compare ``recent`` inputs ({stats, confidence, predicted_label}) with ``baseline``."""
    if not baseline or not (baseline.get("image_stats") or baseline.get("confidences")):
        return DriftReport("no_baseline", len(recent), detail="the version has no baseline statistics")
    if len(recent) < thresholds.min_samples:
        return DriftReport("insufficient_data", len(recent),
                           detail=f"{len(recent)} recent inputs, {thresholds.min_samples} needed")

    planned: list[tuple[str, list[float], list[float]]] = []
    for name in STATISTICS:
        reference = (baseline.get("image_stats") or {}).get(name) or []
        values = [round(float(r["stats"][name]), STORED_DECIMALS)
                  for r in recent if isinstance(r.get("stats"), Mapping) and name in r["stats"]]
        if reference and len(values) >= thresholds.min_samples:
            planned.append((name, reference, values))
    confidences = [round(float(r["confidence"]), STORED_DECIMALS)
                   for r in recent if isinstance(r.get("confidence"), (int, float))]
    if baseline.get("confidences") and len(confidences) >= thresholds.min_samples:
        planned.append(("confidence", baseline["confidences"], confidences))

    alpha = thresholds.p_value / max(len(planned), 1)
    tests = [_ks(name, reference, values, alpha, thresholds.min_effect) for name, reference, values in planned]
    predicted = [str(r["predicted_label"]) for r in recent if r.get("predicted_label") is not None]
    if baseline.get("label_counts") and len(predicted) >= thresholds.min_samples:
        tests.append(_label_mix(baseline["label_counts"], predicted, thresholds.max_label_distance))

    drifted = [t.name for t in tests if t.drifted]
    detail = f"drift in {', '.join(drifted)}" if drifted else "no test shows drift"
    return DriftReport("drift" if drifted else "no_drift", len(recent), tests, detail)


@dataclass(frozen=True)
class Harm:
    """Whether a drift hurts field success, with the numbers that decided it."""

    verdict: str  # harmful | harmless | unknown (too few reports, or reporters, to tell)
    correct: int
    total: int
    upper_bound: float  # of the field success rate's confidence interval
    bar: float  # gate accuracy minus the release's max_drop
    gate_accuracy: float
    min_reports: int
    users: int | None = None  # distinct users among the reporters, when known
    min_users: int = 1
    detail: str = ""

    @property
    def harmful(self) -> bool:
        return self.verdict == "harmful"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess_harm(correct: int, total: int, gate_accuracy: float, max_drop: float, min_reports: int,
                users: int | None = None, min_users: int = 1) -> Harm:
    """Does the drift hurt? From the version's field reports over the drift window and its gate accuracy.

    Harmful when the upper end of the field success rate's 95% Wilson interval is below
    ``gate_accuracy - max_drop`` (we are confident the version does worse in the field than its gate
    measured, beyond the drop the release rules tolerate) and, when ``users`` is given, at least
    ``min_users`` distinct users reported (a few accounts cannot make a drift harmful). Harmless when
    at least ``min_reports`` reports do not show that; unknown otherwise (too little evidence either way).
    """
    rate = success_rate(correct, total)
    bar = gate_accuracy - max_drop
    numbers = (f"field success {correct}/{total} (upper bound {rate.high:.3f}) vs gate accuracy "
               f"{gate_accuracy:.3f} - max_drop {max_drop:g} = {bar:.3f}")
    if rate.high < bar and (users is None or users >= min_users):
        verdict, detail = "harmful", f"{numbers}: confidently below"
    elif rate.high < bar:
        verdict, detail = "unknown", f"{numbers}: below, but from {users} distinct users, {min_users} needed"
    elif total >= min_reports:
        verdict, detail = "harmless", f"{numbers}: not below"
    else:
        verdict, detail = "unknown", f"{numbers}: {total} reports, {min_reports} needed to call it harmless"
    return Harm(verdict, correct, total, round(rate.high, 4), round(bar, 4), gate_accuracy, min_reports,
                users, min_users, detail)


def retrain_on_drift(report: DriftReport, harm: Harm | None, policy: str) -> bool:
    """``policy`` ``always``: every drift is retrained on; ``when_harmful``: only a harmful one."""
    if not report.drifted:
        return False
    return policy == "always" or (harm is not None and harm.harmful)
