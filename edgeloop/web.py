"""``edgeloop web``: the browser app (client_sdk/web) served against the local stack.

One http origin on the stack's host (browsers refuse module imports and fetch from ``file://``) serves:

- the app's own files, ``client_sdk/web/``, as they are (no build step);
- ``vendor/``: the browser builds the app imports from the pinned Node packages (package.json), and nothing
  else of node_modules: the Firebase Web SDK's ESM bundles, LiteRT.js and its WASM, @noble/ed25519;
- ``config.json``: what the app needs, built from ``Settings`` and the stack: the Firebase config, the
  emulators' addresses, the model and its paths (``shared.layout``), the pinned public key, the SDK contract
  version, the capture policy and budgets (``Settings.client``, the Python SDK's own defaults, and the fields a
  model's pointer may change, with their schema) and the poll interval.

A production deployment serves the same files with its own config.json (the project's Firebase web config,
no ``emulators``, the publisher's public key).
"""

from __future__ import annotations

import json
import mimetypes
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping, Optional
from urllib.parse import unquote, urlsplit

import typer

from client_sdk.auth import EMULATOR_API_KEY
from shared import integrity, layout
from shared.config import Client, Settings, get_settings
from shared.model_settings import CLIENT_PER_MODEL
from shared.registry import SDK_CONTRACT_VERSION

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "client_sdk" / "web"
NODE_MODULES = REPO / "node_modules"
CONFIG_PATH = "/config.json"
VENDOR_PREFIX = "/vendor/"
LITERT_WASM = "./vendor/@litertjs/core/wasm/"
# What the page may load from node_modules: (package directory, files or folders in it).
VENDORED = {
    "firebase": ("firebase-app.js", "firebase-auth.js", "firebase-firestore.js", "firebase-storage.js"),
    "@litertjs/core": ("dist/", "wasm/"),
    "@litertjs/wasm-utils": ("dist/",),
    "@noble/ed25519": ("index.js",),  # Ed25519 where a browser's WebCrypto lacks it
}
CONTENT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
                 ".json": "application/json", ".map": "application/json", ".css": "text/css", ".html": "text/html"}


class WebAppError(RuntimeError):
    """The app cannot be served: a missing package or file, said with what to run."""


def app_config(settings: Settings, model: str, public_key_pem: str, client_env: Mapping[str, str]) -> dict[str, Any]:
    """config.json for the local stack whose client environment (``StackState.client_env()``) is ``client_env``."""
    if "FIREBASE_AUTH_EMULATOR_HOST" not in client_env:
        raise WebAppError("the local stack runs no Auth emulator, which the web app signs in to: restart it with `edgeloop up`")
    firestore_host, firestore_port = client_env["FIRESTORE_EMULATOR_HOST"].rsplit(":", 1)
    storage = urlsplit(client_env["STORAGE_EMULATOR_HOST"])
    return {
        "firebase": {"apiKey": EMULATOR_API_KEY, "projectId": client_env["EDGELOOP_PROJECT_ID"],
                     "storageBucket": client_env["EDGELOOP_BUCKET"]},
        "emulators": {
            "auth": f"http://{client_env['FIREBASE_AUTH_EMULATOR_HOST']}",
            "firestore": {"host": firestore_host, "port": int(firestore_port)},
            "storage": {"host": storage.hostname, "port": storage.port},
        },
        "model": model,
        "paths": {"pointer": layout.model_doc(model), "feedback": layout.feedback_collection(model),
                  "uploads": f"{layout.UPLOADS_PREFIX}/{model}"},
        "public_key_pem": public_key_pem,
        "sdk_contract_version": SDK_CONTRACT_VERSION,
        "poll_interval_s": settings.web.poll_interval_s,
        "client": settings.client.model_dump(mode="json"),
        # what a model's pointer may change (shared.model_settings.device_settings): not what these settings set
        "client_per_model": {name: schema for name, schema in Client.model_json_schema()["properties"].items()
                             if name in CLIENT_PER_MODEL and name not in settings.client.model_fields_set},
        "litert_wasm": LITERT_WASM,
    }


def check_installed() -> None:
    """The pinned packages the page imports are in node_modules, or WebAppError saying what to run."""
    for package, entries in VENDORED.items():
        for entry in entries:
            if not (NODE_MODULES / package / entry).exists():
                raise WebAppError(f"node_modules/{package}/{entry} is missing: run ./scripts/bootstrap.sh "
                                  "(or npm ci), which installs the pinned Node packages")


def resolve(path: str) -> Path | None:
    """The file a request path names: the app's files, or an allowed vendored file; None for anything else."""
    path = unquote(urlsplit(path).path)
    if path.startswith(VENDOR_PREFIX):
        rest = path[len(VENDOR_PREFIX):]
        for package, entries in VENDORED.items():
            if rest.startswith(package + "/"):
                inner = rest[len(package) + 1:]
                if any(inner == entry or (entry.endswith("/") and inner.startswith(entry)) for entry in entries):
                    return _inside(NODE_MODULES / package, inner)
        return None
    return _inside(APP_DIR, path.lstrip("/") or "index.html")


def _inside(root: Path, relative: str) -> Path | None:
    candidate = (root / relative).resolve()
    return candidate if candidate.is_file() and candidate.is_relative_to(root.resolve()) else None


@dataclass
class WebApp:
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve(config: Mapping[str, Any], host: str, port: int) -> WebApp:
    """Serve the app with ``config`` on ``host:port`` (0: a free port) in a background thread."""
    check_installed()
    body = json.dumps(config).encode()

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if urlsplit(self.path).path == CONFIG_PATH:
                return self._send(body, "application/json")
            target = resolve(self.path)
            if target is None:
                return self.send_error(HTTPStatus.NOT_FOUND, "not part of the web app")
            content_type = CONTENT_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return self._send(target.read_bytes(), content_type)

        def do_HEAD(self) -> None:  # noqa: N802
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

        def _send(self, data: bytes, content_type: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")  # a new checkout's files, not yesterday's
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass  # one line per file would bury the URL

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise WebAppError(f"cannot listen on {host}:{port} ({exc.strerror}): pass --port, or 0 for any free port") from None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="edgeloop-web", daemon=True)
    thread.start()
    return WebApp(server, thread)


def command(
    model: str = typer.Option("digits", help="the model the app classifies with"),
    port: Optional[int] = typer.Option(None, min=0, max=65535, help="port on the stack's host (default: EDGELOOP_WEB__PORT, 8765; 0: any free one)"),
    public_key: Optional[Path] = typer.Option(None, help="the signing key the app pins (public PEM, or the dev private key); default: the stack's"),
    directory: Optional[Path] = typer.Option(None, "--dir", help="State directory of the local stack"),
) -> None:
    """Serve the browser app (Firebase Web SDK + LiteRT.js) against the local stack and print its URL."""
    from rich.console import Console

    from edgeloop.device import load_public_key
    from edgeloop.target import connect

    console = Console()
    state = connect(directory)
    settings = get_settings()
    if public_key is not None:
        pem = load_public_key(public_key)
    else:  # the key the stack's trainer signs with (created now if nothing was trained yet, and used by it then)
        configured = settings.signing_key.get_secret_value() if settings.signing_key else None
        pem = integrity.public_key_pem(integrity.signing_key(configured, state.path / "signing-key.pem"))
    try:
        app = serve(app_config(settings, model, pem, state.client_env()), state.host,
                    settings.web.port if port is None else port)
    except WebAppError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"[bold]Edgeloop web app[/] for model [bold]{model}[/] on the local stack: [link={app.url}]{app.url}[/]")
    console.print("Open it in a browser; Ctrl-C stops it.")
    try:
        app.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
