"""Anytime-valid confidence sequences for a success rate.

A version's success rate is judged again after every feedback report, so a
fixed-level test looked at that often raises false alarms far above its level.
A confidence sequence instead covers the true rate at *every* report count at
once: with probability at least 1 - alpha, the rate lies inside the bounds
however often, and whenever, they are looked at.

Method: Robbins' beta-binomial mixture. For Bernoulli reports with true rate
p, S successes in t reports, and a Beta(a, b) mixing distribution,

    M_t(p) = B(a + S, b + t - S) / (B(a, b) * p^S * (1 - p)^(t - S))

is a nonnegative martingale with M_0 = 1, so by Ville's inequality
P(exists t: M_t(p) >= 1/alpha) <= alpha, and {p : M_t(p) < 1/alpha} is a
(1 - alpha) confidence sequence (Howard, Ramdas, McAuliffe & Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
Statistics 49(2), 2021, section 3; Robbins, "Statistical methods related to
the law of the iterated logarithm", 1970). log M_t is convex in p with its
minimum at S/t, so the set is an interval whose ends are found by bisection.

Every function takes numbers or numpy arrays (element-wise), so the Monte
Carlo benchmark runs exactly these functions over thousands of rollouts.
"""

from __future__ import annotations

import numpy as np

# Beta(1, 1): no prior opinion about the rate. The mixture only shapes the bounds' width over time;
# coverage holds for any choice.
PRIOR = (1.0, 1.0)
BISECTION_STEPS = 32  # the bounds to within 2^-32 of their exact value


def _log_mixture_penalty(successes: np.ndarray, failures: np.ndarray, prior: tuple[float, float]) -> np.ndarray:
    from scipy.special import betaln  # loaded where used: scipy is half a second of a function's start

    a, b = prior
    return betaln(a + successes, b + failures) - betaln(a, b)


def rate_bounds(successes, trials, alpha: float, prior: tuple[float, float] = PRIOR) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): a (1 - alpha) confidence sequence for the success rate after ``trials`` reports.

    With no reports the bounds are (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    s = np.asarray(successes, dtype=float)
    t = np.asarray(trials, dtype=float)
    if np.any(s < 0) or np.any(s > t):
        raise ValueError("need 0 <= successes <= trials")
    f = t - s
    # p is inside while -S log p - F log(1 - p) < log(1/alpha) - log B(a+S, b+F) + log B(a, b).
    budget = np.log(1.0 / alpha) - _log_mixture_penalty(s, f, prior)
    centre = np.divide(s, t, out=np.full_like(s, 0.5), where=t > 0)

    def excess(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = -np.where(s > 0, s * np.log(p), 0.0) - np.where(f > 0, f * np.log1p(-p), 0.0)
        return value - budget  # < 0: p is inside the sequence

    def edge(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
        for _ in range(BISECTION_STEPS):
            middle = (inside + outside) / 2
            keep = excess(middle) < 0
            inside, outside = np.where(keep, middle, inside), np.where(keep, outside, middle)
        return inside

    low = np.where(excess(np.zeros_like(s)) < 0, 0.0, edge(centre.copy(), np.zeros_like(s)))
    high = np.where(excess(np.ones_like(s)) < 0, 1.0, edge(centre.copy(), np.ones_like(s)))
    return low, high


def difference_bounds(successes_a, trials_a, successes_b, trials_b, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) for rate_a - rate_b, covering it at every report count with probability >= 1 - alpha.

    Each rate gets a (1 - alpha/2) sequence; both cover at once with probability >= 1 - alpha
    (a union bound), so the difference of their ends covers the difference of the rates.
    """
    low_a, high_a = rate_bounds(successes_a, trials_a, alpha / 2)
    low_b, high_b = rate_bounds(successes_b, trials_b, alpha / 2)
    return low_a - high_b, high_a - low_b
