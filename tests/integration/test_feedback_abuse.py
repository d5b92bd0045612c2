"""Robust feedback on the stack: a flood of "incorrect" reports from one user, or from five, decides nothing.

What runs: the real stack and the real on_feedback function, which handles every report from its
Firestore trigger (admission, counts, release judging, success-rate check). The reports are written
with the emulator's admin credentials in batches, stamped with ``sent_at`` as clients stamp them (what a
user may write is tested against the rules in test_security_rules.py: one report per prediction id,
bounded fields, never ``counted``), paced so that at most ``IN_FLIGHT`` reports wait for their trigger.
The emulator drops a trigger delivery that waits too long on a busy machine and never retries it; as in
production, the scheduler's tick then admits such a report (shared/gcp/reconcile.py), so when handling
stalls the test ticks, as the scheduler would.

Two models, attacked at once: P has only an honest fleet on v1 (its production-to-be: a success-rate
retrain is possible), C has v1 in production and a good v2 canary at its first step, with the honest
fleet's production reports in that step. Then one user writes 5,000 "incorrect" reports and five users
1,000 each, half about P's v1 and half about C's canary. Every report is handled; each attacker has
``feedback_per_user_cap`` reports counted per version, so the attack adds 60 wrong reports per version
from 6 users: not enough users to judge the canary (``release.canary_min_users``), and too few against
the honest fleet's 400 to ask for a retrain. Without the cap and the user guard the same reports roll the
canary back and ask for a retrain (checked with the same rule functions).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.gcp.bus import request_drift_check
from shared.gcp.tallies import distinct_users, version_tally
from shared.lifecycle import Tally, Verdict, judge_canary
from shared.retrain import success_rate_request
from shared.success_rate import success_rate
from tests.integration.helpers import control, db, fresh_model
from tests.integration.test_release import canary, pointer, record, settings  # noqa: F401 (fixtures)
from tests.model_fixtures import digits, signing_key, trained_models  # noqa: F401 (fixtures)

SETTINGS = Settings()
ATTACKERS = {"mallory": 5000, **{f"sybil-{i}": 1000 for i in range(5)}}
HONEST_USERS, HONEST_REPORTS = 40, 10  # P's honest fleet: 400 reports, 98% correct
IN_FLIGHT = 200
STALL_S = 20  # no report decided for this long: the rest lost their triggers, the tick admits them
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def decided(client: firestore.Client, model: str) -> int:
    """Reports on_feedback has admitted or refused."""
    query = client.collection(layout.feedback_collection(model)).where(
        filter=firestore.FieldFilter("counted", "in", [True, False]))
    return int(query.count().get()[0][0].value)


def wait_until_decided(client: firestore.Client, models: tuple[str, ...], at_least: int, timeout_s: float = 900) -> None:
    """Until ``at_least`` reports of ``models`` are decided; when none is decided for STALL_S, a scheduler tick."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while (done := sum(decided(client, m) for m in models)) < at_least:
        now = time.monotonic()
        assert now < deadline, f"{done} of {at_least} reports decided after {timeout_s:.0f} s"
        if done != last:
            last, since = done, now
        elif now - since > max(STALL_S, SETTINGS.thresholds.reconcile_after_s):
            for model in models:
                request_drift_check(model, SETTINGS)
            since = now
        time.sleep(0.5)


def write(client: firestore.Client, reports: list[tuple[str, dict]], models: tuple[str, ...], already: int) -> None:
    """Write ``reports`` (model, fields) in batches, keeping at most IN_FLIGHT undecided; wait for all."""
    written = already
    for start in range(0, len(reports), 100):
        wait_until_decided(client, models, written - IN_FLIGHT)
        batch = client.batch()
        for model, fields in reports[start:start + 100]:
            batch.create(client.document(layout.feedback_doc(model, uuid.uuid4().hex)),
                         {**fields, layout.FEEDBACK_SENT_AT: firestore.SERVER_TIMESTAMP})
        batch.commit()
        written += len(reports[start:start + 100])
    wait_until_decided(client, models, written)


def report(uid: str, version: str, correct: bool) -> dict:
    return {"uid": uid, "model_version": version, "predicted_label": "1", "confidence": 0.9, "correct": correct}


def success_requests(stack, model: str) -> list[str]:
    state = control(stack, model)
    return [c for c in [*(state.get("causes") or {}), *(p["cause"] for p in state.get("pending") or [])]
            if c.startswith("success_rate")]


@pytest.mark.fills_the_emulator  # 10,430 reports stay in the session's emulator
@pytest.mark.timeout(1200)  # 10,430 reports through on_feedback: about 4 minutes alone on 2 cores
def test_a_flood_from_one_user_or_five_neither_rolls_back_a_good_canary_nor_asks_for_a_retrain(local_stack, canary):  # noqa: F811 (fixture)
    db_client = db(local_stack)
    cap = SETTINGS.thresholds.feedback_per_user_cap
    p_model, c_model = fresh_model(local_stack, "flood-p"), canary
    assert pointer(local_stack, c_model).rollout.candidate.version == "v2"

    # The honest fleet first: P's v1 at 98% (no retrain), C's production reports in the canary's step.
    honest = [(p_model, report(f"honest-{u}", "v1", correct=(u * HONEST_REPORTS + r) % 50 != 0))
              for u in range(HONEST_USERS) for r in range(HONEST_REPORTS)]
    honest += [(c_model, report(f"phone-{u}", "v1", correct=True)) for u in range(15) for _ in range(2)]
    write(db_client, honest, (p_model, c_model), 0)
    assert version_tally(db_client, p_model, "v1") == Tally(392, 400) and not success_requests(local_stack, p_model)
    before = record(local_stack, c_model, "v2")

    # The flood: each attacker's reports, half about P's v1, half about C's canary.
    flood = [(model, report(uid, version, correct=False))
             for uid, count in ATTACKERS.items() for i in range(count)
             for model, version in [((p_model, "v1"), (c_model, "v2"))[i % 2]]]
    write(db_client, flood, (p_model, c_model), len(honest))

    # Each attacker counted cap times per version: 60 wrong reports from 6 users on each.
    attack = cap * len(ATTACKERS)
    assert version_tally(db_client, c_model, "v2") == Tally(0, attack)
    assert distinct_users(db_client, c_model, "v2", EPOCH) == len(ATTACKERS)
    assert version_tally(db_client, p_model, "v1") == Tally(392, 400 + attack)
    assert version_tally(db_client, p_model, "v1", counted_only=False).total == 400 + len(flood) // 2

    # The canary is where it was: not rolled back, not moved; production unchanged.
    after = pointer(local_stack, c_model)
    assert after.rollout.candidate.version == "v2" and after.rollout.percent == SETTINGS.release.canary_percent
    assert after.production.version == "v1"
    assert record(local_stack, c_model, "v2")["history"] == before["history"]
    # No success-rate retrain: the honest fleet's decision (none) stands.
    assert not success_requests(local_stack, p_model)

    # The same reports without the cap and the user guard would have decided both.
    assert judge_canary(Tally(0, len(flood) // 2), Tally(30, 30), 10, SETTINGS.release).verdict is Verdict.ROLL_BACK
    raw = success_rate(392, 400 + len(flood) // 2)
    assert success_rate_request(p_model, "v1", raw, SETTINGS.thresholds.min_feedback_samples,
                                SETTINGS.thresholds.min_success_rate, None) is not None
