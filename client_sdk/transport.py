"""Adapter: the HTTP a device speaks — Firestore REST and Firebase Storage's REST protocol.

Every request carries the user's Firebase ID token (``Bearer`` to Firestore,
``Firebase`` to Firebase Storage), so the security rules apply exactly as they
do to an app. Responses are mapped to the SDK's errors:
unreachable, 5xx, 408 and 429 are ``Offline`` (retry later), 401/403
``PermissionDenied``, 404 ``NotFound``, any other 4xx ``RequestRejected``.

``stats`` counts what a device pays for (document reads, model bytes, upload
bytes), which is how the tests prove an unchanged model costs one read and no
model bytes.

Storage is spoken as the Firebase SDKs speak it (``/v0/b/{bucket}/o…`` on
``firebasestorage.googleapis.com``, or the local stack's front on its storage
port): uploads up to 256 KiB in one multipart request, larger ones as a
resumable session (``X-Goog-Upload-Command: start``, chunks, ``upload,
finalize``), metadata with ``GET …/o/{name}``, bytes with ``?alt=media`` and a
``Range`` header to resume. Never the Cloud Storage JSON API: it does not take
Firebase ID tokens and never applies storage.rules.
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
MULTIPART_MAX_BYTES = 256 * 1024  # the Firebase SDKs' threshold: larger uploads are resumable
RESUMABLE_CHUNK_BYTES = 4 * 256 * 1024  # a multiple of the protocol's 256 KiB granularity
RESUMABLE_ATTEMPTS = 3  # per chunk, asking the session how much arrived in between
FIREBASE_STORAGE_URL = "https://firebasestorage.googleapis.com"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class Endpoints:
    project_id: str
    bucket: str
    storage_url: str = FIREBASE_STORAGE_URL  # Firebase Storage; the local stack's storage port serves it too
    firestore_url: str = "https://firestore.googleapis.com"

    @classmethod
    def from_client_env(cls, env: dict[str, str]) -> "Endpoints":
        """The local stack's endpoints from the variables ``edgeloop up`` prints."""
        firebase_storage = env.get("FIREBASE_STORAGE_EMULATOR_HOST")  # host:port, as the Firebase SDKs take it
        return cls(
            project_id=env["EDGELOOP_PROJECT_ID"],
            bucket=env["EDGELOOP_BUCKET"],
            storage_url=f"http://{firebase_storage}" if firebase_storage else env["STORAGE_EMULATOR_HOST"],
            firestore_url=f"http://{env['FIRESTORE_EMULATOR_HOST']}",
        )

    def document_name(self, path: str) -> str:
        return f"projects/{self.project_id}/databases/(default)/documents/{path}"

    def document_url(self, path: str) -> str:
        return f"{self.firestore_url}/v1/{self.document_name(path)}"

    def commit_url(self) -> str:
        return f"{self.firestore_url}/v1/projects/{self.project_id}/databases/(default)/documents:commit"

    def object_url(self, object_name: str) -> str:
        """Firebase Storage's URL of one object (metadata; ``?alt=media`` for its bytes)."""
        return f"{self.storage_url}/v0/b/{self.bucket}/o/{quote(object_name, safe='')}"

    def upload_url(self) -> str:
        return f"{self.storage_url}/v0/b/{self.bucket}/o"


@dataclass
class TransportStats:
    document_reads: int = 0
    documents_created: int = 0
    documents_set: int = 0  # device records (telemetry)
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

    def _request(self, method: str, url: str, what: str, scheme: str = "Bearer", **kwargs) -> requests.Response:
        # Firestore takes the ID token as a Bearer token; Firebase Storage as "Firebase <token>".
        headers = {"Authorization": f"{scheme} {self._id_token()}", **kwargs.pop("headers", {})}
        try:
            return self._session.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise Offline(f"{what}: {type(exc).__name__}: {exc}") from None

    # --- Firestore ----------------------------------------------------------------------

    def get_document(self, path: str) -> dict:
        response = self._request("GET", self.endpoints.document_url(path), f"read {path}")
        self.stats.add(document_reads=1)
        _check(response, f"read {path}")
        return response.json()

    def create_document(self, collection: str, document_id: str, values: dict, server_time: tuple[str, ...] = ()) -> bool:
        """Create ``collection/document_id``, its ``server_time`` fields set to the server's time of the write
        (the SDKs' server timestamp); False if it already exists (an earlier try got through)."""
        path = f"{collection}/{document_id}"
        write = {
            "update": {"name": self.endpoints.document_name(path), "fields": encode_fields(values)},
            "currentDocument": {"exists": False},
            "updateTransforms": [{"fieldPath": field, "setToServerValue": "REQUEST_TIME"} for field in server_time],
        }
        response = self._request("POST", self.endpoints.commit_url(), f"create {path}", json={"writes": [write]})
        if response.status_code == 409:
            return False
        _check(response, f"create {collection}/{document_id}")
        self.stats.add(documents_created=1)
        return True

    def set_document(self, collection: str, document_id: str, values: dict, server_time: tuple[str, ...] = ()) -> None:
        """Create or replace ``collection/document_id`` with ``values``, its ``server_time`` fields set to the
        server's time of the write (``setDoc`` with server timestamps, as the SDKs write)."""
        path = f"{collection}/{document_id}"
        write = {
            "update": {"name": self.endpoints.document_name(path), "fields": encode_fields(values)},
            "updateTransforms": [{"fieldPath": field, "setToServerValue": "REQUEST_TIME"} for field in server_time],
        }
        response = self._request("POST", self.endpoints.commit_url(), f"set {path}", json={"writes": [write]})
        _check(response, f"set {path}")
        self.stats.add(documents_set=1)

    # --- Storage (Firebase Storage's protocol) ------------------------------------------------

    def _storage(self, method: str, url: str, what: str, **kwargs) -> requests.Response:
        return self._request(method, url, what, scheme="Firebase", **kwargs)

    def metadata(self, object_name: str) -> dict:
        """The object's Firebase Storage metadata (``size``, ``contentType``, custom ``metadata``…)."""
        response = self._storage("GET", self.endpoints.object_url(object_name), f"metadata of {object_name}")
        _check(response, f"metadata of {object_name}")
        return response.json()

    @contextmanager
    def download(self, object_name: str, start: int = 0) -> Iterator[Download]:
        """Stream ``object_name`` from byte ``start``; the server may ignore the range (start 0)."""
        # identity: byte ranges must count bytes of the file itself, not of a compressed stream
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={start}-"} if start else {})}
        response = self._storage("GET", self.endpoints.object_url(object_name), f"download {object_name}",
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

    def upload(self, object_name: str, data: bytes, content_type: str, metadata: dict[str, str]) -> dict:
        """Create ``object_name`` with custom ``metadata``; its Firebase Storage metadata.

        storage.rules let a user create an upload once and never overwrite or read it, so a retry
        whose earlier try got through is refused (``PermissionDenied``) like any other write.
        """
        resource = {"name": object_name, "contentType": content_type, "metadata": metadata}
        if len(data) <= MULTIPART_MAX_BYTES:
            response = self._multipart(object_name, data, content_type, resource)
        else:
            response = self._resumable(object_name, data, content_type, resource)
        _check(response, f"upload {object_name}")
        self.stats.add(uploads=1, upload_bytes=len(data))
        return response.json()

    def _multipart(self, object_name: str, data: bytes, content_type: str, resource: dict) -> requests.Response:
        boundary = f"edgeloop-{uuid.uuid4().hex}"
        body = b"".join([
            f"--{boundary}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n".encode(),
            json.dumps(resource).encode(),
            f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(), data,
            f"\r\n--{boundary}--".encode(),
        ])
        return self._storage(
            "POST", self.endpoints.upload_url(), f"upload {object_name}", params={"name": object_name},
            headers={"X-Goog-Upload-Protocol": "multipart", "Content-Type": f"multipart/related; boundary={boundary}"},
            data=body,
        )

    def _resumable(self, object_name: str, data: bytes, content_type: str, resource: dict) -> requests.Response:
        what = f"upload {object_name}"
        started = self._storage(
            "POST", self.endpoints.upload_url(), what, params={"name": object_name}, json=resource,
            headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                     "X-Goog-Upload-Header-Content-Length": str(len(data)),
                     "X-Goog-Upload-Header-Content-Type": content_type},
        )
        _check(started, what)
        session = started.headers.get("X-Goog-Upload-URL")
        if not session:
            raise RequestRejected(f"{what}: the resumable upload started without an X-Goog-Upload-URL")
        offset, failures = 0, 0
        while True:
            last = offset + RESUMABLE_CHUNK_BYTES >= len(data)
            chunk = data[offset:offset + RESUMABLE_CHUNK_BYTES]
            try:
                response = self._storage(
                    "POST", session, what, data=chunk,
                    headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Offset": str(offset),
                             "X-Goog-Upload-Command": "upload, finalize" if last else "upload"},
                )
                if response.status_code >= 500:
                    raise Offline(f"{what}: HTTP {response.status_code}")
            except Offline:
                failures += 1
                if failures >= RESUMABLE_ATTEMPTS:
                    raise
                offset = self._received(session, what)  # ask the session what arrived, resume from there
                if offset is None:  # the finalize got through, its answer did not: ask for it again
                    return self._storage("POST", session, what, headers={
                        "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "finalize"})
                continue
            if last or response.status_code >= 400:
                return response
            offset += len(chunk)

    def _received(self, session: str, what: str) -> int | None:
        """Bytes the session holds; None once it is final."""
        response = self._storage("POST", session, what, headers={"X-Goog-Upload-Protocol": "resumable",
                                                                 "X-Goog-Upload-Command": "query"})
        _check(response, what)
        status = response.headers.get("X-Goog-Upload-Status")
        if status == "final":
            return None
        if status != "active":
            raise RequestRejected(f"{what}: the upload session is {response.headers.get('X-Goog-Upload-Status')}")
        return int(response.headers.get("X-Goog-Upload-Size-Received", "0"))
