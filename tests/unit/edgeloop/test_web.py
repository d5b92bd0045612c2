"""``edgeloop web``'s server: what it serves of the checkout, the config it gives the page, and the page's import map."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edgeloop import web
from shared import layout
from shared.config import Client, Settings, Web
from shared.model_settings import CLIENT_PER_MODEL
from shared.registry import SDK_CONTRACT_VERSION

REPO = Path(__file__).resolve().parents[3]
INDEX = REPO / "client_sdk" / "web" / "index.html"
STACK_ENV = {
    "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8081", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9199",
    "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "EDGELOOP_PROJECT_ID": "demo-p", "EDGELOOP_BUCKET": "demo-b",
}


def _import_map() -> dict[str, str]:
    block = re.search(r'<script type="importmap">(.*?)</script>', INDEX.read_text(), re.S)
    return json.loads(block.group(1))["imports"]


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.js", "/policy.js", "/vendor/firebase/firebase-auth.js",
                                  "/vendor/@litertjs/core/dist/index.js",
                                  "/vendor/@litertjs/core/wasm/litert_wasm_internal.wasm"])
def test_the_app_and_the_vendored_builds_it_imports_are_served(path):
    assert web.resolve(path) is not None, path


@pytest.mark.parametrize("path", ["/vendor/firebase/package.json", "/vendor/firebase-tools/lib/bin/firebase.js",
                                  "/vendor/@litertjs/core/package.json", "/../pyproject.toml", "/%2e%2e/README.md",
                                  "/vendor/firebase/../firebase-tools/package.json", "/missing.js"])
def test_nothing_else_of_the_checkout_or_node_modules_is(path):
    assert web.resolve(path) is None, path


def test_the_import_map_names_the_pinned_firebase_and_only_served_files():
    pinned = json.loads((REPO / "package.json").read_text())["dependencies"]["firebase"]
    imports = _import_map()
    cdn = [name for name in imports if name.startswith("https://")]
    # the SDK's bundles import firebase-app.js by its CDN address at their own version: the map must match it
    assert cdn == [f"https://www.gstatic.com/firebasejs/{pinned}/firebase-app.js"]
    bundle = (REPO / "node_modules" / "firebase" / "firebase-auth.js").read_text()
    assert cdn[0] in bundle
    for target in imports.values():
        assert web.resolve(target.removeprefix(".")) is not None, target


def test_the_config_carries_the_stack_the_model_and_the_python_sdks_own_defaults():
    settings = Settings(web=Web(poll_interval_s=5))
    config = web.app_config(settings, "digits", "PEM", STACK_ENV)
    assert config["client"] == Client().model_dump() == settings.client.model_dump()
    assert config["emulators"] == {"auth": "http://127.0.0.1:9099", "firestore": {"host": "127.0.0.1", "port": 8081},
                                   "storage": {"host": "127.0.0.1", "port": 9199}}
    assert config["firebase"]["projectId"] == "demo-p" and config["firebase"]["storageBucket"] == "demo-b"
    assert config["paths"]["pointer"] == layout.model_doc("digits")
    assert config["paths"]["feedback"] == layout.feedback_collection("digits")
    assert layout.upload_object("digits", "U", "I", "png") == f"{config['paths']['uploads']}/U/I.png"
    assert (config["poll_interval_s"], config["sdk_contract_version"]) == (5, SDK_CONTRACT_VERSION)


def test_a_models_pointer_may_change_its_capture_defaults_except_what_the_settings_set_themselves():
    """shared.model_settings.device_settings's rule: the served schema names what the page takes from the pointer."""
    assert set(web.app_config(Settings(), "digits", "PEM", STACK_ENV)["client_per_model"]) == set(CLIENT_PER_MODEL)
    pinned = web.app_config(Settings(client=Client(capture_sample_rate=0.5)), "digits", "PEM", STACK_ENV)
    assert set(pinned["client_per_model"]) == set(CLIENT_PER_MODEL) - {"capture_sample_rate"}
    assert pinned["client_per_model"]["daily_capture_count"]["type"] == "integer"


def test_a_stack_without_the_auth_emulator_is_refused_with_what_to_do():
    env = {k: v for k, v in STACK_ENV.items() if k != "FIREBASE_AUTH_EMULATOR_HOST"}
    with pytest.raises(web.WebAppError, match="edgeloop up"):
        web.app_config(Settings(), "digits", "PEM", env)


def test_the_server_answers_with_the_config_the_files_and_their_types():
    served = web.serve({"model": "digits"}, "127.0.0.1", 0)
    try:
        def get(path: str):
            with urllib.request.urlopen(served.url.rstrip("/") + path, timeout=10) as answer:
                return answer.headers["Content-Type"], answer.read()

        assert get("/config.json") == ("application/json", b'{"model": "digits"}')
        assert get("/")[0] == "text/html" and b"importmap" in get("/")[1]
        assert get("/app.js")[0] == "text/javascript"
        assert get("/vendor/@litertjs/core/wasm/litert_wasm_internal.wasm")[0] == "application/wasm"
        with pytest.raises(urllib.error.HTTPError) as refused:
            get("/vendor/firebase/package.json")
        assert refused.value.code == 404
    finally:
        served.stop()


def test_a_taken_port_is_said_plainly():
    served = web.serve({}, "127.0.0.1", 0)
    try:
        with pytest.raises(web.WebAppError, match="pass --port"):
            web.serve({}, "127.0.0.1", served.server.server_address[1])
    finally:
        served.stop()
