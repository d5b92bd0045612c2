"""`edgeloop bench decisions`: how often the canary rule is wrong, measured beside the rule it replaced.

A Monte Carlo over the rule functions themselves (``shared.lifecycle.canary_verdicts``), no stack:
feedback reports arrive one at a time, each from the canary's share of devices with that share's
probability, and the rule judges after every report, as on_feedback does. A rollout ends at its
first verdict (rolled back, or advanced/promoted) or stays undecided after ``horizon`` reports.

The replaced rule, kept here only to be measured: roll back when a one-sided Fisher exact test
gives p < ``release.significance``; advance once both versions have ``canary_min_samples``
reports and the canary's observed rate is at most ``release.max_drop`` below production's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from scipy.stats import hypergeom

from shared.config import Release
from shared.lifecycle import canary_verdicts

SHARES = (0.10, 0.50)
BASE_RATES = (0.70, 0.90, 0.98)
WORSE_MULTIPLES = (1, 2, 3)  # canaries this many times release.max_drop worse than production
CHUNK = 1000  # reports simulated per vectorised block

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Release], tuple[np.ndarray, np.ndarray]]


def fisher_less_p_values(correct, total, reference_correct, reference_total) -> np.ndarray:
    """One-sided Fisher exact p-values that ``correct/total`` is lower than the reference (element-wise).

    The same number scipy.stats.fisher_exact(alternative="less") gives: the hypergeometric probability
    of the canary having at most its successes, given both margins.
    """
    successes = reference_correct + correct
    p = hypergeom.cdf(correct, reference_total + total, successes, total)
    return np.where((total > 0) & (reference_total > 0), p, 1.0)


def fixed_level_verdicts(correct, total, reference_correct, reference_total, policy: Release):
    """The replaced rule: (rolled back, advanced) element-wise."""
    worse = fisher_less_p_values(correct, total, reference_correct, reference_total) < policy.significance
    enough = np.minimum(total, reference_total) >= policy.canary_min_samples
    with np.errstate(invalid="ignore", divide="ignore"):
        drop = reference_correct / np.maximum(reference_total, 1) - correct / np.maximum(total, 1)
    return worse, ~worse & enough & (drop <= policy.max_drop)


RULES: dict[str, Rule] = {"anytime-valid (now)": canary_verdicts, "fixed-level Fisher (before)": fixed_level_verdicts}


@dataclass(frozen=True)
class Scenario:
    share: float  # of devices (so of reports) on the canary
    base: float  # production's true success rate
    canary: float  # the canary's true success rate
    kind: str  # equal | worse 1x | worse 2x | worse 3x | better


@dataclass(frozen=True)
class Outcome:
    rule: str
    scenario: Scenario
    rolled_back: float  # share of rollouts
    promoted: float  # share of rollouts advanced or promoted at this step
    median_reports: float | None  # to the first verdict, over decided rollouts


def scenarios(policy: Release) -> Iterator[Scenario]:
    for share in SHARES:
        for base in BASE_RATES:
            yield Scenario(share, base, base, "equal")
            for multiple in WORSE_MULTIPLES:
                yield Scenario(share, base, base - multiple * policy.max_drop, f"worse {multiple}x")
            yield Scenario(share, base, min(base + policy.max_drop, (1 + base) / 2), "better")


def simulate(rule: Rule, scenario: Scenario, policy: Release, rollouts: int, horizon: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(verdict per rollout: -1 rolled back, +1 advanced, 0 undecided; reports to the verdict)."""
    verdict = np.zeros(rollouts, dtype=int)
    at = np.full(rollouts, horizon)
    counts = np.zeros((4, rollouts))  # canary correct, canary total, production correct, production total
    for start in range(0, horizon, CHUNK):
        open_ = verdict == 0
        if not open_.any():
            break
        size = min(CHUNK, horizon - start)
        on_canary = rng.random((size, rollouts)) < scenario.share
        success = rng.random((size, rollouts)) < np.where(on_canary, scenario.canary, scenario.base)
        canary_correct = counts[0] + np.cumsum(on_canary & success, axis=0)
        canary_total = counts[1] + np.cumsum(on_canary, axis=0)
        production_correct = counts[2] + np.cumsum(~on_canary & success, axis=0)
        production_total = counts[3] + np.cumsum(~on_canary, axis=0)
        worse, not_worse = rule(canary_correct[:, open_], canary_total[:, open_], production_correct[:, open_],
                                production_total[:, open_], policy)
        decided = worse | not_worse
        first = np.where(decided.any(axis=0), decided.argmax(axis=0), -1)
        for position, (column, row) in enumerate(zip(np.flatnonzero(open_), first)):
            if row >= 0:
                verdict[column] = -1 if worse[row, position] else 1
                at[column] = start + row + 1
        counts = np.stack([canary_correct[-1], canary_total[-1], production_correct[-1], production_total[-1]])
    return verdict, at


def measure(policy: Release, rollouts: int = 200, horizon: int = 20_000, seed: int = 0,
            advance: Callable[[], None] | None = None) -> list[Outcome]:
    """Every scenario under every rule, each rule on the same random streams."""
    outcomes = []
    for number, scenario in enumerate(scenarios(policy)):
        for rule_name, rule in RULES.items():
            verdict, at = simulate(rule, scenario, policy, rollouts, horizon, np.random.default_rng([seed, number]))
            decided = at[verdict != 0]
            outcomes.append(Outcome(rule_name, scenario, float((verdict == -1).mean()), float((verdict == 1).mean()),
                                    float(np.median(decided)) if decided.size else None))
            if advance:
                advance()
    return outcomes


def targets_met(outcomes: list[Outcome], rule: str = "anytime-valid (now)") -> dict[str, bool]:
    mine = [o for o in outcomes if o.rule == rule]
    return {
        "equal canary rolled back ≤ 5%": all(o.rolled_back <= 0.05 for o in mine if o.scenario.kind == "equal"),
        "canary 2× max_drop worse promoted ≤ 5%": all(o.promoted <= 0.05 for o in mine
                                                       if o.scenario.kind == "worse 2x"),
    }


def markdown(outcomes: list[Outcome], policy: Release, rollouts: int, horizon: int, seed: int) -> str:
    lines = [
        f"{rollouts} simulated rollouts per row, reports one at a time (judged after each, as on_feedback does), "
        f"at most {horizon:,} reports per rollout; release settings: significance {policy.significance}, "
        f"promotion_risk {policy.promotion_risk}, max_drop {policy.max_drop}, canary_min_samples "
        f"{policy.canary_min_samples}, steps {list(policy.rollout_steps)}. Both rules see the same random "
        f"streams (seed {seed}). \"promoted\" = advanced to the next step (or promoted) at this step.",
        "",
        "| canary share | production rate | canary | rule | rolled back | promoted | median reports to verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        s = o.scenario
        median = f"{o.median_reports:,.0f}" if o.median_reports is not None else "—"
        lines.append(f"| {s.share:.0%} | {s.base:.0%} | {s.kind} ({s.canary:.1%}) | {o.rule} | {o.rolled_back:.1%} "
                     f"| {o.promoted:.1%} | {median} |")
    lines += ["", "Targets for the anytime-valid rule at default settings:", ""]
    lines += [f"- {name}: {'met' if met else 'NOT met'}" for name, met in targets_met(outcomes).items()]
    return "\n".join(lines)


def draw(outcomes: list[Outcome], path: Path) -> Path:
    """One panel per share: for each production rate and canary, how often each rule rolled back or promoted."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

    kinds = list(dict.fromkeys(o.scenario.kind for o in outcomes))
    rules = list(RULES)
    figure = Figure(figsize=(13, 3.6 * len(SHARES)), layout="constrained")
    axes = figure.subplots(len(SHARES), len(BASE_RATES), sharey=True, squeeze=False)
    width = 0.2
    for row, share in enumerate(SHARES):
        for column, base in enumerate(BASE_RATES):
            ax = axes[row][column]
            for index, rule in enumerate(rules):
                chosen = {o.scenario.kind: o for o in outcomes
                          if o.rule == rule and o.scenario.share == share and o.scenario.base == base}
                offset = (index - 0.5) * 2 * width
                xs = [k + offset for k in range(len(kinds))]
                ax.bar([x - width / 2 for x in xs], [chosen[k].rolled_back * 100 for k in kinds], width,
                       color="tab:red", alpha=0.9 if index == 0 else 0.4,
                       label=f"rolled back, {rule}" if row == column == 0 else None)
                ax.bar([x + width / 2 for x in xs], [chosen[k].promoted * 100 for k in kinds], width,
                       color="tab:green", alpha=0.9 if index == 0 else 0.4,
                       label=f"promoted, {rule}" if row == column == 0 else None)
            ax.axhline(5, color="black", linewidth=0.8, linestyle="--")
            ax.set_xticks(range(len(kinds)), kinds, rotation=20)
            ax.set_title(f"canary share {share:.0%}, production {base:.0%}", fontsize=10)
            if column == 0:
                ax.set_ylabel("% of rollouts")
    figure.legend(loc="outside lower center", ncols=4, fontsize=9)
    figure.suptitle("Canary verdicts: anytime-valid rule (solid) vs the fixed-level Fisher rule it replaced (faded); "
                    "dashed line: 5%")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    return path
