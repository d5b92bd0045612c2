"""Adapter: the HTTP a device speaks — Firestore REST and the Storage JSON API.

Every request carries the user's Firebase ID token, so the security rules
apply exactly as they do to an app. Responses are mapped to the SDK's errors:
unreachable, 5xx, 408 and 429 are ``Offline`` (retry later), 401/403
``PermissionDenied``, 404 ``NotFound``, any other 4xx ``RequestRejected``.

``stats`` counts what a device pays for (document reads, model bytes, upload
bytes), which is how the tests prove an unchanged model costs one read and no
model bytes.

Storage is spoken in the GCS JSON API dialect (``/storage/v1/b/…``,
``/upload/storage/v1/b/…``), which the local emulator serves.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import quote

import requests
import urllib3

from client_sdk.errors import NotFound, Offline, PermissionDenied, RequestRejected
from shared.firestore_values import encode_fields

CHUNK_BYTES = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class Endpoints:
    project_id: str
    bucket: str
    storage_url: str  # e.g. http://127.0.0.1:9199 for the local stack
    firestore_url: str = "https://firestore.googleapis.com"

    @classmethod
    def from_client_env(cls, env: dict[str, str]) -> "Endpoints":
        """The local stack's endpoints from the variables ``edgeloop up`` prints."""
        return cls(
            project_id=env["EDGELOOP_PROJECT_ID"],
            bucket=env["EDGELOOP_BUCKET"],
            storage_url=env["STORAGE_EMULATOR_HOST"],
            firestore_url=f"http://{env['FIRESTORE_EMULATOR_HOST']}",
        )

    def document_url(self, path: str) -> str:
        return f"{self.firestore_url}/v1/projects/{self.project_id}/databases/(default)/documents/{path}"

    def download_url(self, object_name: str) -> str:
        return f"{self.storage_url}/storage/v1/b/{self.bucket}/o/{quote(object_name, safe='')}"

    def upload_url(self) -> str:
        return f"{self.storage_url}/upload/storage/v1/b/{self.bucket}/o"


@dataclass
class TransportStats:
    document_reads: int = 0
    documents_created: int = 0
    model_bytes: int = 0  # bytes of model files received
    uploads: int = 0
    upload_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


@dataclass(frozen=True)
class Download:
    """An open download: where it starts, the whole object's size, and its bytes."""

    start: int
    total: int | None
    chunks: Iterator[bytes]


def _check(response: requests.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = f"{what}: HTTP {status} {response.text[:200]}"
    if status in (408, 429) or status >= 500:
        raise Offline(detail)
    if status in (401, 403):
        raise PermissionDenied(detail)
    if status == 404:
        raise NotFound(detail)
    raise RequestRejected(detail)


class Transport:
    def __init__(self, endpoints: Endpoints, id_token: Callable[[], str], timeout_s: float = 20.0):
        self.endpoints = endpoints
        self._id_token = id_token
        self._timeout = timeout_s
        self._session = requests.Session()
        self.stats = TransportStats()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._id_token()}"}

    def _request(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(method, url, headers={**self._headers(), **kwargs.pop("headers", {})},
                                         timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise Offline(f"{what}: {type(exc).__name__}: {exc}") from None

    # --- Firestore ----------------------------------------------------------------------

    def get_document(self, path: str) -> dict:
        response = self._request("GET", self.endpoints.document_url(path), f"read {path}")
        self.stats.add(document_reads=1)
        _check(response, f"read {path}")
        return response.json()

    def create_document(self, collection: str, document_id: str, values: dict) -> bool:
        """Create ``collection/document_id``; False if it already exists (an earlier try got through)."""
        response = self._request(
            "POST", self.endpoints.document_url(collection), f"create in {collection}",
            params={"documentId": document_id}, json={"fields": encode_fields(values)},
        )
        if response.status_code == 409:
            return False
        _check(response, f"create {collection}/{document_id}")
        self.stats.add(documents_created=1)
        return True

    # --- Storage ------------------------------------------------------------------------

    @contextmanager
    def download(self, object_name: str, start: int = 0) -> Iterator[Download]:
        """Stream ``object_name`` from byte ``start``; the server may ignore the range (start 0)."""
        # identity: byte ranges must count bytes of the file itself, not of a compressed stream
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={start}-"} if start else {})}
        response = self._request("GET", self.endpoints.download_url(object_name), f"download {object_name}",
                                 params={"alt": "media"}, headers=headers, stream=True)
        try:
            _check(response, f"download {object_name}")
            begins, total = 0, None
            if response.status_code == 206:
                match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
                if match:
                    begins, total = int(match.group(1)), int(match.group(3))
                else:
                    begins = start
            elif response.headers.get("Content-Length", "").isdigit():
                total = int(response.headers["Content-Length"])
            yield Download(begins, total, self._counted(response, object_name))
        finally:
            response.close()

    def _counted(self, response: requests.Response, object_name: str) -> Iterator[bytes]:
        # read1 hands over whatever has arrived, so bytes received before a dropped connection
        # reach the partial file (iter_content would discard a whole short chunk).
        try:
            while chunk := response.raw.read1(CHUNK_BYTES):
                self.stats.add(model_bytes=len(chunk))
                yield chunk
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise Offline(f"download {object_name} interrupted: {type(exc).__name__}: {exc}") from None

    def upload(self, object_name: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        """Create ``object_name``; an object already there (an earlier try got through) counts as done."""
        boundary = f"edgeloop-{uuid.uuid4().hex}"
        resource = {"name": object_name, "contentType": content_type, "metadata": metadata}
        body = b"".join([
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            json.dumps(resource).encode(), b"\r\n",
            f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(), data, b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ])
        response = self._request(
            "POST", self.endpoints.upload_url(), f"upload {object_name}",
            # ifGenerationMatch=0: create only, so a retried upload never overwrites (GCS answers 412).
            params={"uploadType": "multipart", "name": object_name, "ifGenerationMatch": "0"},
            headers={"Content-Type": f"multipart/related; boundary={boundary}"}, data=body,
        )
        if response.status_code == 412:
            return
        _check(response, f"upload {object_name}")
        self.stats.add(uploads=1, upload_bytes=len(data))
