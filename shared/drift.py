"""Input drift: recent field inputs of a version against the baseline its trainer stored.

Plain functions of plain data. Each per-image statistic and the prediction
confidence get a two-sample Kolmogorov–Smirnov test; a shift counts as drift
only when it is both significant (Bonferroni-corrected over the tests) and
large (KS statistic at least ``min_effect``), so a huge sample cannot flag a
negligible change. The predicted-label mix is compared with the training
label mix by Jensen–Shannon distance.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from shared.image_stats import STATISTICS

BASELINE_SAMPLE = 500  # values kept per statistic in a baseline


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
    rng = np.random.default_rng(seed)

    def sample(values: Sequence[float]) -> list[float]:
        values = np.asarray(values, dtype=float)
        if len(values) > BASELINE_SAMPLE:
            values = rng.choice(values, BASELINE_SAMPLE, replace=False)
        return [round(float(v), 5) for v in values]

    return {
        "image_stats": {name: sample([s[name] for s in image_stats]) for name in STATISTICS},
        "confidences": sample(confidences),
        "label_counts": dict(Counter(labels)),
    }


def _ks(name: str, baseline: Sequence[float], recent: Sequence[float], alpha: float, min_effect: float) -> Test:
    result = ks_2samp(baseline, recent)
    return Test(
        name=name, kind="ks", statistic=round(float(result.statistic), 4), p_value=float(result.pvalue),
        drifted=bool(result.pvalue < alpha and result.statistic >= min_effect),
        baseline_n=len(baseline), recent_n=len(recent),
        baseline_median=round(float(np.median(baseline)), 5), recent_median=round(float(np.median(recent)), 5),
    )


def _label_mix(baseline_counts: Mapping[str, int], predicted: Sequence[str], max_distance: float) -> Test:
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
        values = [float(r["stats"][name]) for r in recent if isinstance(r.get("stats"), Mapping) and name in r["stats"]]
        if reference and len(values) >= thresholds.min_samples:
            planned.append((name, reference, values))
    confidences = [float(r["confidence"]) for r in recent if isinstance(r.get("confidence"), (int, float))]
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
