"""The int8 quantisation loss, judged with the holdout's size: a paired one-sided score bound.

The gate sees the float and the int8 model's predictions on the same ``n`` holdout images. Only the
images on which the two disagree say anything about the conversion: ``int8_only`` images the int8 model
gets wrong where the float model is right, ``float_only`` the other way round. The observed loss, float
accuracy minus int8 accuracy, is ``(int8_only - float_only) / n``; its true value is the difference of
the two discordance rates.

A fixed limit on the observed loss judges noise on a small holdout: on 80 images the loss moves in
steps of 1/80 = 0.0125, so one image that int8 rounds the other way is already above a 0.01 tolerance.
The rule here rejects only when the holdout shows, with one-sided confidence ``CONFIDENCE``, that the
true loss is above the tolerance: when the loss's lower confidence bound is above it. The bound is at
most the observed loss (the rule never rejects what the fixed limit accepts) and approaches it as the
holdout grows (by about z·sqrt(discordance rate / n)), so on a large holdout the tolerance means what
it always meant.

Method: Tango's score test for a difference of paired proportions, the non-inferiority form of
McNemar's test (Tango, "Equivalence test and confidence interval for the difference in proportions
for the paired-sample design", Statistics in Medicine 17(8), 1998). For a hypothesised true loss d,
with b = int8_only and c = float_only,

    Z(d) = (b - c - n d) / sqrt(n (2 q + d (1 - d)))

where q is the maximum-likelihood float-only rate given a loss of d, the root of
2n q^2 + (d (2n - b + c) - (b + c)) q - c d (1 - d) = 0. Z falls as d rises; the lower bound is the
d at which Z(d) equals the normal quantile of ``CONFIDENCE``, found by bisection. It is a large-sample
test: ``edgeloop bench quantisation`` measures how often it is wrong on holdouts of 80 to 2,000 images.

Every function takes numbers or numpy arrays (element-wise), so the Monte Carlo benchmark runs exactly
the function the gate runs. The standard library's normal quantile, as ``shared.success_rate``: no
scipy import for a gate check.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95  # one-sided: a harmless conversion is rejected about 5% of the time at most, at the tolerance itself
BISECTION_STEPS = 50  # the bound to within 2^-49 of its exact value


def score(int8_only, float_only, images, loss):
    """Tango's score statistic for "the true loss is ``loss``": large when the holdout shows a larger loss."""
    b, c, n, d = (np.asarray(x, dtype=float) for x in (int8_only, float_only, images, loss))
    linear = d * (2 * n - b + c) - (b + c)
    q = (np.sqrt(linear**2 + 8 * n * c * d * (1 - d)) - linear) / (4 * n)
    variance = np.maximum(n * (2 * q + d * (1 - d)), 1e-300)
    return (b - c - n * d) / np.sqrt(variance)


def loss_lower_bound(int8_only, float_only, images, confidence: float = CONFIDENCE):
    """The true loss is at least this, with one-sided ``confidence`` (element-wise; ``images`` > 0)."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    b, c, n = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (int8_only, float_only, images)))
    if np.any(n <= 0) or np.any(b < 0) or np.any(c < 0) or np.any(b + c > n):
        raise ValueError("need 0 <= int8_only, float_only and int8_only + float_only <= images > 0")
    z = NormalDist().inv_cdf(confidence)
    low, high = np.full(b.shape, -1.0), (b - c) / n  # Z(high) = 0 <= z: the bound is at most the observed loss
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        above = score(b, c, n, middle) > z  # the holdout rules a loss this small out
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    return low if b.ndim else float(low)


def rejects(int8_only, float_only, images, tolerance: float, confidence: float = CONFIDENCE):
    """The gate's rule: is the true loss above ``tolerance`` with ``confidence``? (element-wise)"""
    return np.asarray(loss_lower_bound(int8_only, float_only, images, confidence)) > tolerance


def counts_from_accuracies(float_accuracy: float, int8_accuracy: float, images: int) -> tuple[int, int]:
    """(int8_only, float_only) for a record that has the holdout's size but not its discordant counts.

    The fewest disagreements the two accuracies allow: every lost image an int8-only error, none the other
    way. Of all the holdouts consistent with the record, this one gives the highest bound (the strictest).
    """
    net = round((float_accuracy - int8_accuracy) * images)
    return max(net, 0), max(-net, 0)
