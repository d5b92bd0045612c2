"""A local HTTP server speaking a Google API's REST transport, for testing the real client libraries.

A generated client (``google-cloud-*``) built with ``transport="rest"``, anonymous credentials and
``client_options={"api_endpoint": server.endpoint}`` (an ``http://`` endpoint keeps its scheme) sends its
real requests here: its request building, JSON (de)serialisation, retries and HTTP error mapping run for
real. The server answers each ``(method, path)`` with the responses queued for it (the last one repeats)
and records every request with its JSON body, so a test asserts exactly what was sent.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

from google.auth.credentials import AnonymousCredentials

Answer = tuple[int, dict]  # HTTP status, JSON body


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: str
    body: dict | None


def error(code: int, status: str, message: str) -> dict:
    """A Google API error body (https://cloud.google.com/apis/design/errors#http_mapping)."""
    return {"error": {"code": code, "message": message, "status": status}}


@dataclass
class GoogleRestServer:
    """Answers queued JSON responses per (method, path); ``fallback`` answers anything else (default: a 404)."""

    fallback: Callable[[str, str], Answer] = lambda method, path: (404, error(404, "NOT_FOUND", f"{path} not found"))
    requests: list[Request] = field(default_factory=list)
    _answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)

    def answer(self, method: str, path: str, *answers: Answer) -> None:
        """Answer ``method path`` with ``answers`` in turn; the last one repeats."""
        self._answers[(method, path)] = list(answers)

    def sent(self, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if method in (None, r.method) and path in (None, r.path)]

    def client_kwargs(self, **client_options: Any) -> dict[str, Any]:
        """What a generated client takes to talk to this server over its REST transport."""
        return {"credentials": AnonymousCredentials(), "transport": "rest",
                "client_options": {"api_endpoint": self.endpoint, **client_options}}

    def _respond(self, method: str, raw_path: str, body: bytes) -> Answer:
        path, _, query = raw_path.partition("?")
        self.requests.append(Request(method, path, query, json.loads(body) if body else None))
        queued = self._answers.get((method, path))
        if not queued:
            return self.fallback(method, path)
        return queued.pop(0) if len(queued) > 1 else queued[0]

    def start(self) -> "GoogleRestServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = server._respond(self.command, self.path, self.rfile.read(length))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815 - http.server's naming

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_port}"
        threading.Thread(target=self._httpd.serve_forever, name="google-rest-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serving(**kwargs: Any) -> Iterator[GoogleRestServer]:
    server = GoogleRestServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
