"""`edgeloop bench quantisation`: how often the gate's quantisation-loss rule is wrong, beside the rule it replaced.

A Monte Carlo over the rule function itself (``shared.quantisation_loss.rejects``, which the gate runs), no
stack, no model: each simulated holdout of ``images`` images is a draw of how many images the int8 model
gets wrong where the float model is right (rate ``background + true loss``) and the other way round (rate
``background``); everything else is an image both models agree on. Both rules judge the same draws.

The replaced rule, kept here only to be measured: reject when the observed loss, float accuracy minus int8
accuracy, is above ``gate.max_quantisation_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from shared.config import Gate
from shared.quantisation_loss import CONFIDENCE, rejects

SIZES = (80, 360, 2000)  # holdout images: a 400-image seed set, the digits' 20%, a larger model's holdout
BACKGROUNDS = (0.005, 0.02)  # images int8 gets right where float is wrong (and as many the other way at no loss)
HARMFUL_LOSSES = (0.03, 0.05)

Rule = Callable[[np.ndarray, np.ndarray, int, float], np.ndarray]


def fixed_limit_rejects(int8_only, float_only, images, tolerance: float) -> np.ndarray:
    """The replaced rule: the observed loss above the tolerance (element-wise)."""
    return (np.asarray(int8_only) - np.asarray(float_only)) / images > tolerance


RULES: dict[str, Rule] = {f"paired {CONFIDENCE:.0%} bound (now)": rejects, "fixed limit (before)": fixed_limit_rejects}


@dataclass(frozen=True)
class Scenario:
    images: int
    background: float  # rate of float-only errors
    loss: float  # the conversion's true loss: int8-only minus float-only error rate

    def harmless(self, policy: Gate) -> bool:
        return self.loss <= policy.max_quantisation_loss


@dataclass(frozen=True)
class Outcome:
    rule: str
    scenario: Scenario
    rejected: float  # share of holdouts


def scenarios(policy: Gate) -> Iterator[Scenario]:
    for images in SIZES:
        for background in BACKGROUNDS:
            for loss in (0.0, policy.max_quantisation_loss, *HARMFUL_LOSSES):
                yield Scenario(images, background, loss)


def holdouts(scenario: Scenario, trials: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(int8-only errors, float-only errors) of ``trials`` simulated holdouts."""
    int8_only = scenario.background + scenario.loss
    counts = rng.multinomial(scenario.images, [int8_only, scenario.background, 1 - int8_only - scenario.background],
                             size=trials)
    return counts[:, 0], counts[:, 1]


def measure(policy: Gate, trials: int = 20_000, seed: int = 0) -> list[Outcome]:
    """Every scenario under every rule, both rules on the same simulated holdouts."""
    outcomes = []
    for number, scenario in enumerate(scenarios(policy)):
        int8_only, float_only = holdouts(scenario, trials, np.random.default_rng([seed, number]))
        for name, rule in RULES.items():
            verdicts = rule(int8_only, float_only, scenario.images, policy.max_quantisation_loss)
            outcomes.append(Outcome(name, scenario, float(np.mean(verdicts))))
    return outcomes


def first_rejected(rule: Rule, images: int, policy: Gate) -> int:
    """The fewest int8-only errors the rule rejects on ``images`` images with no float-only error."""
    counts = np.arange(images + 1)
    return int(np.argmax(rule(counts, np.zeros_like(counts), images, policy.max_quantisation_loss)))


def best_possible(images: int, loss: float, passed: int = 2) -> float:
    """How often a loss is rejected by the strictest rule that lets ``passed`` int8-only errors pass (no background)."""
    from scipy.stats import binom

    return float(binom.sf(passed, images, loss))


def targets_met(outcomes: list[Outcome], policy: Gate, rule: str = next(iter(RULES))) -> dict[str, bool]:
    mine = [o for o in outcomes if o.rule == rule]
    return {
        "no true loss: rejected ≤ 5% at every size": all(o.rejected <= 0.05 for o in mine if o.scenario.loss == 0),
        "true loss at the tolerance: rejected ≤ 10% at every size": all(
            o.rejected <= 0.10 for o in mine if o.scenario.loss == policy.max_quantisation_loss),
        "1 or 2 int8-only errors of 80 images pass": first_rejected(RULES[rule], 80, policy) > 2,
        "5-point loss: rejected ≥ 80% on 360 and 2,000 images": all(
            o.rejected >= 0.80 for o in mine if o.scenario.loss == 0.05 and o.scenario.images >= 360),
        "3-point loss: rejected ≥ 90% on 2,000 images": all(
            o.rejected >= 0.90 for o in mine if o.scenario.loss == 0.03 and o.scenario.images >= 2000),
    }


def markdown(outcomes: list[Outcome], policy: Gate, trials: int, seed: int) -> str:
    now, before = RULES
    lines = [
        f"{trials:,} simulated holdouts per row, both rules on the same draws (seed {seed}); gate setting "
        f"max_quantisation_loss {policy.max_quantisation_loss}. \"background\": the share of images int8 gets "
        "right where float is wrong (int8 gets as many wrong where float is right, plus the true loss). "
        f"\"now\": reject when the one-sided {CONFIDENCE:.0%} lower bound of the loss (Tango's paired score "
        "bound, `shared/quantisation_loss.py`) is above the tolerance; \"before\": reject when the observed loss "
        "is above it. A true loss at or below the tolerance should pass, 3 and 5 points should be rejected.",
        "",
        "| images | background | true loss | should | rejected now | rejected before |",
        "|---|---|---|---|---|---|",
    ]
    by_key = {(o.rule, o.scenario): o.rejected for o in outcomes}
    for scenario in dict.fromkeys(o.scenario for o in outcomes):
        should = "pass" if scenario.harmless(policy) else "reject"
        points = f"{scenario.loss * 100:g} point{'' if scenario.loss == 0.01 else 's'}"
        lines.append(f"| {scenario.images:,} | {scenario.background:.1%} | {points} | {should} "
                     f"| {by_key[(now, scenario)]:.1%} | {by_key[(before, scenario)]:.1%} |")
    firsts = ", ".join(f"{images:,} images: from {first_rejected(RULES[now], images, policy)} now, "
                       f"{first_rejected(RULES[before], images, policy)} before" for images in SIZES)
    lines += ["", f"Fewest int8-only errors rejected when no image goes the other way: {firsts}. On 80 images a "
              "5-point loss is 4 images: any rule that lets 2 int8-only errors pass rejects it at most "
              f"{best_possible(80, 0.05):.0%} of the time (at no background), so on so small a holdout the "
              "regression check against production and the canary remain the guards against a harmful conversion.",
              "", "Targets for the paired rule at default settings:", ""]
    lines += [f"- {name}: {'met' if met else 'NOT met'}" for name, met in targets_met(outcomes, policy).items()]
    return "\n".join(lines)
