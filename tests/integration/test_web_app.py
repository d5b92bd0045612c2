"""The browser app (client_sdk/web: the Firebase Web SDK and LiteRT.js, no build step) in headless Chromium
against the local stack, served by ``edgeloop web``'s server.

One page through one user's session: it signs in with the Auth emulator, installs the published model after
checking it, classifies a digit exactly as the Python SDK does on the same bytes, runs the capture policy and
budgets exactly as the Python SDK's rules (one table of cases through both), uploads a capture that on_upload
registers and sends feedback on_feedback counts, refuses a tampered model (bytes, then signature) and keeps
the one it has, updates at its next poll when a good version is published, and after a reload runs the kept
model without downloading it. Nothing is fetched from anywhere but 127.0.0.1.

Debian's chromium (scripts/bootstrap.sh installs it) is driven through Python playwright's
``executable_path``; ``playwright install`` (which downloads browsers) is never needed.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from client_sdk import EdgeloopClient, Endpoints
from client_sdk.capture import BudgetDay, capture_reason
from edgeloop import web
from shared import integrity, layout, shapes
from shared.config import Client, Settings, Web
from shared.digits import LABELS
from shared.layout import CaptureReason
from shared.model_settings import device_settings
from shared.registry import ModelInput, ModelPointer
from shared.rollout import rollout_bucket
from tests.integration.helpers import bucket, db, eventually, signed_in
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)

CHROMIUM = "/usr/bin/chromium"  # Debian's package; scripts/bootstrap.sh installs it
POLL_S = 1.0  # the page reads the pointer every second here (60 s by default)
WAIT_MS = 60_000
LOCAL_HOST = "127.0.0.1"
SHAPES_PER_CLASS = 40  # a quick 4-class model: the test compares runtimes, not accuracy
CLI_START_S = 60  # the command imports the CLI and checks the stack's health before it prints
REPO = Path(__file__).resolve().parents[2]


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _publish(stack, model: str, ref, data: bytes, client: dict | None = None) -> None:
    """As the trainer's publisher: the bytes at the ref's path, then the pointer naming it as production (with the
    model's own capture defaults, ``client``, as ``edgeloop model create`` writes them)."""
    bucket(stack).blob(ref.path).upload_from_string(data, content_type="application/octet-stream")
    pointer = ModelPointer(model=model, labels=ref.labels, production=ref, client=client or {})
    db(stack).document(layout.model_doc(model)).set(pointer.model_dump(mode="json"))


def _python_prediction(stack, model: str, key, directory: Path, image: bytes):
    """What the Python SDK predicts for ``image`` with the model ``model`` publishes (nothing captured)."""
    uid = f"web-python-{uuid.uuid4().hex[:6]}"
    client = EdgeloopClient(
        model, uid=uid, device_id=f"{uid}-phone", directory=directory, public_key_pem=key.public_pem,
        id_token=signed_in(uid, stack.project_id).id_token,
        endpoints=Endpoints(stack.project_id, stack.bucket, stack.url("storage"), stack.url("firestore")),
        settings=Client(capture_sample_rate=0, capture_below_confidence=0))
    try:
        client.ensure_model()
        return client.classify(image)
    finally:
        client.close()


def _chromium() -> str:
    try:
        import playwright  # noqa: F401 (only its presence)
    except ImportError:
        pytest.fail("playwright is not installed: run ./scripts/bootstrap.sh (requirements-dev.txt pins it)", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/bootstrap.sh as root, or apt-get install -y chromium", pytrace=False)
    return CHROMIUM


def _policy_cases(settings: Client, budget_settings: Client) -> dict:
    """A table of inputs for the capture rule, the budget and the rollout bucket, with the Python SDK's answers."""
    rng = random.Random(0)
    reasons = [CaptureReason.LOW_CONFIDENCE.value, CaptureReason.RANDOM_SAMPLE.value, CaptureReason.USER_REPORT.value]
    capture = [(c, d) for c in (0.0, 0.2, 0.4999, 0.5, 0.93, 1.0) for d in (0.0, 0.0199, 0.02, 0.5, 0.999)]
    today = date(2026, 12, 2)
    spends, day, expected_days = [], BudgetDay(today.isoformat()), []
    for step in range(40):
        when = today + timedelta(days=step // 25)  # a new UTC day resets the budget
        size, reason = rng.choice([10, 90, 150, 400]), rng.choice(reasons)
        spends.append({"today": when.isoformat(), "size": size, "reason": reason})
        after = day.spend(when, size, budget_settings, reason)
        expected_days.append(None if after is None else after.__dict__)
        day = after or day
    devices = [f"device-{i}" for i in range(12)] + ["ü-ñ", "a" * 64]
    published = [None, {}, {"capture_sample_rate": 1.0}, {"capture_sample_rate": 1.0, "daily_capture_count": 7,
                                                          "capture_format": "jpeg"},
                 {"capture_sample_rate": 1.5}, {"capture_format": "gif"}, {"daily_capture_count": 2.5},
                 {"daily_capture_count": -1}, {"capture_max_side": 4097}, {"unknown_field": 3},
                 {"request_timeout_s": 1.0}, {"capture_below_confidence": 0.9, "capture_sample_rate": "often"},
                 {"capture_below_confidence": 0.9, "random_sample_reserve": 0, "daily_capture_bytes": 0}]
    return {
        "published": published,
        "published_expected": [device_settings(settings, p).model_dump() for p in published],
        "settings": settings.model_dump(), "budget_settings": budget_settings.model_dump(),
        "capture": [{"confidence": c, "draw": d} for c, d in capture],
        "capture_expected": [capture_reason(c, d, settings) for c, d in capture],
        "spends": spends, "spends_expected": expected_days,
        "devices": devices, "buckets_expected": [rollout_bucket(d, "digits") for d in devices],
    }


# A browser without Ed25519 in WebCrypto: importing such a key fails as the WebCrypto spec says it does.
NO_WEBCRYPTO_ED25519 = """(() => {
  const importKey = crypto.subtle.importKey.bind(crypto.subtle);
  crypto.subtle.importKey = (format, keyData, algorithm, ...rest) => ((algorithm?.name ?? algorithm) === "Ed25519"
    ? Promise.reject(new DOMException("Unrecognized algorithm name", "NotSupportedError"))
    : importKey(format, keyData, algorithm, ...rest));
})();"""

SIGNATURE_JS = """async ({ data, signatures }) => {
  const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const answers = {};
  for (const [name, signature] of Object.entries(signatures)) {
    answers[name] = await window.edgeloop.signatureValid(bytes(signature), bytes(data));
  }
  return answers;
}"""

POLICY_JS = """async (cases) => {
  const policy = await import("./policy.js");
  const capture = cases.capture.map((c) => policy.captureReason(c.confidence, c.draw, cases.settings));
  let day = null;
  const spends = cases.spends.map((s) => {
    const after = policy.spend(day, s.today, s.size, cases.budget_settings, s.reason);
    if (after) day = after;
    return after;
  });
  const buckets = [];
  for (const device of cases.devices) buckets.push(await policy.rolloutBucket(device, "digits"));
  const config = window.edgeloop.config;
  const settings = cases.published.map((p) => policy.deviceSettings(config.client, p, config.client_per_model));
  return { capture, spends, buckets, settings };
}"""


@pytest.mark.timeout(420)  # the session's stack may start within it (about 2 minutes on a busy machine)
def test_the_browser_app_classifies_captures_reports_refuses_tampering_and_updates(
        local_stack, tmp_path, trained_models, signing_key, digits):  # noqa: F811 (fixtures)
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    model = f"web-app-{uuid.uuid4().hex[:8]}"
    v1_data, v2_data = trained_models["v1"].data, trained_models["v2"].data
    v1 = make_ref(model, "v1", v1_data, signing_key)
    _publish(local_stack, model, v1, v1_data)

    settings = Settings(web=Web(poll_interval_s=POLL_S))
    served = web.serve(web.app_config(settings, model, signing_key.public_pem, local_stack.client_env()), LOCAL_HOST, 0)
    outside, model_downloads, page_errors = [], [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                def route(route):  # nothing from the internet: every request must stay on this machine
                    if urlsplit(route.request.url).hostname != LOCAL_HOST:
                        outside.append(route.request.url)
                        return route.abort()
                    if "alt=media" in route.request.url and "/o/models%2F" in route.request.url:
                        model_downloads.append(route.request.url)
                    return route.continue_()

                def open_page(context):
                    opened = context.new_page()
                    opened.route("**/*", route)
                    opened.on("pageerror", lambda error: page_errors.append(str(error)))
                    opened.goto(served.url)
                    return opened

                page = open_page(browser.new_context())
                page.wait_for_function("document.getElementById('installed-version').textContent === 'v1'", timeout=WAIT_MS)
                assert page.get_attribute("body", "data-state") == "ready"

                # One policy: the page's capture rule, budget and rollout bucket answer as the Python SDK's.
                cases = _policy_cases(settings.client, Client(daily_capture_count=6, random_sample_reserve=2,
                                                              daily_capture_bytes=1000))
                answers = page.evaluate(POLICY_JS, cases)
                assert answers["capture"] == cases["capture_expected"]
                assert answers["spends"] == cases["spends_expected"]
                assert answers["buckets"] == pytest.approx(cases["buckets_expected"], rel=0, abs=0)
                assert answers["settings"] == cases["published_expected"]  # a model's own capture defaults
                # ...and the page runs on the Python SDK's defaults, served from the same settings.
                assert page.evaluate("window.edgeloop.settings") == Client().model_dump()

                # The page's prediction for a digit equals the Python SDK's on the same bytes.
                digit = digits[7]
                image = tmp_path / "digit.png"
                image.write_bytes(_png(digit.rgb))
                page.set_input_files("#picker", str(image))
                page.wait_for_function("document.body.dataset.predictions === '1'", timeout=WAIT_MS)
                shown = {"label": page.inner_text("#label"), "version": page.inner_text("#prediction-version"),
                         "confidence": float(page.get_attribute("#confidence", "data-value"))}
                expected = _python_prediction(local_stack, model, signing_key, tmp_path / "python", image.read_bytes())
                assert (shown["label"], shown["version"]) == (expected.label, expected.model_version)
                assert shown["version"] == "v1"
                assert shown["confidence"] == pytest.approx(expected.confidence, abs=1e-6)

                # The user corrects it: a user_report capture on_upload registers, and feedback on_feedback counts.
                true_label = next(label for label in LABELS if label != shown["label"])
                page.select_option("#true-label", true_label)
                page.click("#correct")
                page.wait_for_function("document.body.dataset.reported", timeout=WAIT_MS)
                capture = page.get_attribute("body", "data-capture")
                prediction_id = page.get_attribute("body", "data-reported")
                page_uid = page.inner_text("#uid")
                assert capture == layout.upload_object(model, page_uid, prediction_id, "png")
                firestore = db(local_stack)
                registered = eventually(lambda: [s.to_dict() for s in firestore.collection(layout.images_collection(model))
                                                 .where("object", "==", capture).stream()],
                                        timeout_s=60, what=f"on_upload registering {capture}")
                assert registered[0]["uid"] == page_uid
                assert registered[0]["capture_reason"] == CaptureReason.USER_REPORT.value
                feedback = firestore.document(layout.feedback_doc(model, prediction_id))
                stored = eventually(lambda: (feedback.get().to_dict() or {}).get("counted") is not None and feedback.get().to_dict(),
                                    timeout_s=60, what="on_feedback deciding on the page's report")
                assert stored["counted"] is True
                assert (stored["true_label"], stored["correct"], stored["capture"]) == (true_label, False, capture)

                # A tampered model is refused and v1 stays: changed bytes, then a signature by another key.
                tampered = bytearray(v2_data)
                tampered[len(tampered) // 2] ^= 0xFF
                _publish(local_stack, model, make_ref(model, "v2", v2_data, signing_key), bytes(tampered))
                page.wait_for_selector("#events li[data-kind=refused]:has-text('v2: sha256')", timeout=WAIT_MS)
                other_key = integrity.generate_private_key_pem()
                _publish(local_stack, model, make_ref(model, "v3", v2_data, signing_key,
                                                     signature=integrity.sign(other_key, v2_data)), v2_data)
                page.wait_for_selector("#events li[data-kind=refused]:has-text('v3: signature does not verify')",
                                       timeout=WAIT_MS)
                assert page.inner_text("#installed-version") == "v1"

                # A good new version: the page takes it at its next poll.
                v4 = make_ref(model, "v4", v2_data, signing_key)
                _publish(local_stack, model, v4, v2_data)
                page.wait_for_function("document.getElementById('installed-version').textContent === 'v4'", timeout=WAIT_MS)
                # v1, v2 (tampered), v3 (bad signature), v4: each once, a refused one never again at later polls
                assert [urlsplit(url).path.rsplit("%2F", 2)[1] for url in model_downloads] == ["v1", "v2", "v3", "v4"]

                page.set_input_files("#picker", [])
                page.set_input_files("#picker", str(image))
                page.wait_for_function("document.body.dataset.predictions === '2'", timeout=WAIT_MS)
                assert page.inner_text("#prediction-version") == "v4"
                page.set_viewport_size({"width": 900, "height": 820})
                page.screenshot(path=str(tmp_path / "web-app.png"), full_page=True)

                # A reload runs the kept model: pointer reads only, no download.
                page.reload()
                page.wait_for_function("document.getElementById('installed-version').textContent === 'v4'"
                                       " && Number(document.body.dataset.polls) >= 1", timeout=WAIT_MS)
                assert page.locator("#events li[data-kind=installed]").first.inner_text().endswith("(kept from last time)")
                assert len(model_downloads) == 4
                page.set_input_files("#picker", str(image))
                page.wait_for_function("document.body.dataset.predictions === '1'", timeout=WAIT_MS)
                assert page.inner_text("#prediction-version") == "v4"
                assert page.evaluate("window.edgeloop.signatureVerifier") == "WebCrypto"

                # A browser whose WebCrypto has no Ed25519 checks signatures with @noble/ed25519 instead.
                without = browser.new_context()
                without.add_init_script(script=NO_WEBCRYPTO_ED25519)
                other = open_page(without)
                other.wait_for_function("document.getElementById('installed-version').textContent === 'v4'", timeout=WAIT_MS)
                assert other.evaluate("window.edgeloop.signatureVerifier") == "@noble/ed25519"
                assert len(model_downloads) == 5  # its own install: a fresh browser profile
                checks = {"good": v4.signature, "other key": integrity.sign(other_key, v2_data),
                          "another model's": v1.signature}
                answers = other.evaluate(SIGNATURE_JS, {"data": base64.b64encode(v2_data).decode(), "signatures": checks})
                assert answers == {"good": True, "other key": False, "another model's": False}
            finally:
                browser.close()
    finally:
        served.stop()
    assert outside == [], f"the page reached beyond this machine: {outside}"
    assert page_errors == [], page_errors
    assert (tmp_path / "web-app.png").stat().st_size > 0


def test_edgeloop_web_serves_the_app_against_the_running_stack_and_prints_its_url(local_stack):
    """The command a newcomer runs after `edgeloop up`: it prints the URL, whose config.json names this stack."""
    env = {**os.environ, **local_stack.client_env(), "COLUMNS": "200"}
    command = [sys.executable, "-m", "edgeloop.cli", "web", "--port", "0", "--dir", str(local_stack.path), "--model", "digits"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        deadline = time.monotonic() + CLI_START_S
        url = None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            line = process.stdout.readline()
            printed.append(line)
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            url = found.group(0) if found else None
        assert url, f"edgeloop web printed no URL:\n{''.join(printed)}"
        with urllib.request.urlopen(url + "config.json", timeout=10) as answer:
            config = json.loads(answer.read())
        assert config["model"] == "digits"
        assert config["firebase"]["projectId"] == local_stack.project_id
        assert config["emulators"]["auth"] == f"http://{local_stack.client_env()['FIREBASE_AUTH_EMULATOR_HOST']}"
        assert "PUBLIC KEY" in config["public_key_pem"]
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert b"importmap" in answer.read()
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the command stops its server and exits
        try:
            assert process.wait(timeout=CLI_START_S) == 0
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.timeout(420)  # the session's stack may start within it
def test_the_browser_app_takes_its_labels_and_input_size_from_the_model(local_stack, tmp_path, signing_key):  # noqa: F811
    """Nothing in the app assumes digits or 32×32: a 4-class model of 96×96 shapes runs as the Python SDK runs it."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    from trainer_job.augment import AugmentConfig
    from trainer_job.model import Hyperparameters
    from trainer_job.pipeline import TrainConfig, train_candidate

    images, labels = shapes.as_arrays(shapes.generate_shapes(SHAPES_PER_CLASS, seed=0))
    config = TrainConfig(augment=AugmentConfig.off(), grid=(Hyperparameters(filters=8, dense_units=32, epochs=2),),
                         latency_repeats=1, representative_samples=50)
    candidate = train_candidate(images, labels, shapes.LABELS, config, seed=0, model_name="shapes", version="v1",
                                console=Console(quiet=True))
    model = f"web-shapes-{uuid.uuid4().hex[:8]}"
    size = images.shape[1]
    ref = make_ref(model, "v1", candidate.model_bytes, signing_key, labels=shapes.LABELS,
                   input=ModelInput(height=size, width=size))
    own = {"capture_sample_rate": 1.0}  # this model samples every prediction (edgeloop model create --set client.…)
    _publish(local_stack, model, ref, candidate.model_bytes, client=own)
    image = tmp_path / "shape.png"
    image.write_bytes(shapes.generate_shapes(SHAPES_PER_CLASS + 1, seed=1)[-1].png())  # one it never saw

    served = web.serve(web.app_config(Settings(), model, signing_key.public_pem, local_stack.client_env()), LOCAL_HOST, 0)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(served.url)
                page.wait_for_function("document.getElementById('installed-version').textContent === 'v1'", timeout=WAIT_MS)
                page.set_input_files("#picker", str(image))
                page.wait_for_function("document.body.dataset.predictions === '1'", timeout=WAIT_MS)
                shown = (page.inner_text("#label"), float(page.get_attribute("#confidence", "data-value")))
                options = page.eval_on_selector_all("#true-label option", "options => options.map((o) => o.value)")
                assert page.evaluate("window.edgeloop.settings") == device_settings(Client(), own).model_dump()
                assert page.inner_text("#captured") == "Captured as a random sample case."
            finally:
                browser.close()
    finally:
        served.stop()
    expected = _python_prediction(local_stack, model, signing_key, tmp_path / "python", image.read_bytes())
    assert shown[0] == expected.label and shown[0] in shapes.LABELS
    assert shown[1] == pytest.approx(expected.confidence, abs=1e-6)
    assert options == list(shapes.LABELS)
