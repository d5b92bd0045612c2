"""The closed loop's timeline: from the onset of a drift to every device on the version that fixed it.

Each step is read from what the product records (drift reports, the run document, the version's stage
history) and says what the wait before it was: the product's own ``latency``, training ``work``, or
``policy`` — a wait the configuration asks for (evidence to collect, a cooldown, a poll period) — so a
patient policy is not read as a slow product, nor a slow product hidden behind one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from shared.field_evidence import WAITED_KEY
from shared.registry import Stage, VersionRecord

LATENCY, WORK, POLICY = "latency", "work", "policy"
SWEEP_CAUSE_PREFIX = "pending:"  # shared.launch_rules.sweep_request: a run launched for requests that waited

# Why evidence-collecting triggers wait, by the retrain reason that launched the run.
EVIDENCE = {
    "drift": "the drift check asked once the field success confirmed the harm (setting drift_retrain)",
    "new_data": "new_data_images labelled images since the last run",
    "success_rate": "min_feedback_samples reports below min_success_rate",
    "schedule": "the scheduled period",
}


@dataclass(frozen=True)
class Step:
    name: str  # the milestone reached
    at: datetime
    kind: str  # what the wait before it was: latency | work | policy
    why: str


@dataclass(frozen=True)
class Timeline:
    onset: datetime
    steps: tuple[Step, ...]

    def rows(self) -> list[tuple[Step, float, float]]:
        """Each step with its time since the onset and since the step before (the onset for the first)."""
        rows, previous = [], self.onset
        for step in self.steps:
            rows.append((step, (step.at - self.onset).total_seconds(), (step.at - previous).total_seconds()))
            previous = step.at
        return rows

    def seconds(self, kind: str) -> float:
        """How much of the whole was waits of one kind."""
        return sum(wait for step, _, wait in self.rows() if step.kind == kind)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def total_s(self) -> float | None:
        """Onset → every device on the fixing version, when the fleet got there."""
        last = self.step(FLEET)
        return (last.at - self.onset).total_seconds() if last else None


DRIFT, REQUESTED, LAUNCHED, STARTED, PUBLISHED, PRODUCTION, FLEET = (
    "first drift detected", "retrain requested", "run launched", "trainer started", "published as canary",
    "promoted to production", "every device on it")


def _stamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def asked_at(run: Mapping[str, Any]) -> datetime | None:
    """The earliest ask a run serves: its own request, the requests folded into it, or those a sweep carried."""
    entries = [run, *(run.get("folded") or []), *((run.get("evidence") or {}).get("pending") or [])]
    stamps = [stamp for stamp in (_stamp(e.get("requested_at")) for e in entries if isinstance(e, Mapping))
              if stamp is not None]
    return min(stamps) if stamps else None


def launch_wait(run: Mapping[str, Any], asked: datetime, earlier_runs: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Why a run launched when it did: at once (latency), or after a request waited (policy), and for what."""
    if not str(run.get("cause", "")).startswith(SWEEP_CAUSE_PREFIX) and not run.get("folded"):
        return LATENCY, "Pub/Sub push → launch_training → the training lock"
    entries = [*(run.get("folded") or []), *((run.get("evidence") or {}).get("pending") or [])]
    if any(isinstance(e, Mapping) and e.get(WAITED_KEY) for e in entries):
        return POLICY, ("field evidence: min_field_holdout confirmed captures on production held out to judge "
                        "the candidate on (at most field_holdout_wait_s), then the scheduler's tick")
    for earlier in reversed(earlier_runs):
        created, ended = _stamp(earlier.get("created")), _stamp(earlier.get("ended"))
        if created is None or created > asked:
            continue
        if ended is None or ended > asked:
            return POLICY, f"one run at a time: waited for {earlier['run_id']} to finish, then its cooldown"
        return POLICY, f"cooldown_s after {earlier['run_id']}"
    return POLICY, "the request waited (paused training or a cooldown), then the scheduler's sweep launched it"


def loop_timeline(onset: datetime, drift_reports: Iterable[Mapping[str, Any]], run: Mapping[str, Any],
                  record: VersionRecord, earlier_runs: Sequence[Mapping[str, Any]],
                  fleet_at: datetime | None) -> Timeline:
    """The steps from ``onset`` to ``fleet_at`` (every device on ``record``'s version), in the order they happen.

    ``run`` is the run that trained ``record``; ``earlier_runs`` the model's runs created before it,
    oldest first; ``drift_reports`` the model's drift reports (``created``, ``status``).
    """
    steps: list[Step] = []
    detected = sorted(at for at in (_stamp(r.get("created")) for r in drift_reports if r.get("status") == "drift")
                      if at is not None and at >= onset)
    if detected:
        steps.append(Step(DRIFT, detected[0], POLICY,
                          "drift_min_samples random-sample captures, checked on the scheduler's tick"))
    asked = asked_at(run)
    if asked is not None:
        reason = str(run.get("reason"))
        steps.append(Step(REQUESTED, asked, LATENCY if reason == "manual" else POLICY,
                          "an operator asked" if reason == "manual" else EVIDENCE.get(reason, reason)))
        kind, why = launch_wait(run, asked, earlier_runs)
        steps.append(Step(LAUNCHED, _stamp(run["created"]), kind, why))
    if run.get("started"):
        steps.append(Step(STARTED, _stamp(run["started"]), LATENCY, f"the {run.get('launcher', '')} launcher started it"))
    canary = next((t.at for t in record.history if t.target == Stage.CANARY), None)
    if canary is not None:
        steps.append(Step(PUBLISHED, canary, WORK, "snapshot, training, int8 conversion, gate, upload"))
    production = next((t.at for t in record.history if t.target == Stage.PRODUCTION), None)
    if production is not None:
        steps.append(Step(PRODUCTION, production, POLICY,
                          "rollout_steps, each after canary_min_samples reports per arm"))
    if fleet_at is not None:
        steps.append(Step(FLEET, fleet_at, POLICY, "devices poll the model pointer (in the demo: once a round)"))
    return Timeline(onset, tuple(sorted(steps, key=lambda s: s.at)))


def request_to_start_s(runs: Iterable[Mapping[str, Any]]) -> list[float]:
    """Seconds from the ask to the trainer's start, for each run launched at once (none of its requests waited)."""
    waits = []
    for run in runs:
        asked, started = asked_at(run), _stamp(run.get("started"))
        if asked is None or started is None or str(run.get("cause", "")).startswith(SWEEP_CAUSE_PREFIX) or run.get("folded"):
            continue
        waits.append((started - asked).total_seconds())
    return waits


def run_work(run: Mapping[str, Any]) -> str:
    """Where a run's training work went: its recorded stages in order, the train stage's own steps in brackets."""
    stages = sorted(((name, stage) for name, stage in (run.get("stages") or {}).items() if "seconds" in stage),
                    key=lambda item: str(item[1].get("started_at", "")))
    inner = (run.get("result") or {}).get("train_stage_seconds") or {}

    def stage(name: str, seconds: float) -> str:
        steps = f" ({', '.join(f'{step} {s:.1f} s' for step, s in inner.items())})" if name == "train" and inner else ""
        return f"{name} {seconds:.1f} s{steps}"

    return " · ".join(stage(name, float(s["seconds"])) for name, s in stages) or "no stages recorded"
