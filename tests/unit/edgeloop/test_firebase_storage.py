"""The client SDK's transport against the Firebase Storage front, in process (an in-memory emulator, no stack).

What travels: Firebase Storage's protocol only (``/v0/``, ``Authorization: Firebase``), multipart
up to 256 KiB and a resumable session above (resumed after a dropped chunk), ranges on download.
"""

from __future__ import annotations

import base64
import json
import threading
from functools import partial
from http import server as http_server
from pathlib import Path

import pytest
from gcp_storage_emulator.handlers import buckets
from gcp_storage_emulator.storage import Storage

from tests.forged_tokens import forged_id_token
from client_sdk.errors import PermissionDenied
from client_sdk.transport import MULTIPART_MAX_BYTES, RESUMABLE_CHUNK_BYTES, Endpoints, Transport
from edgeloop.localstack import firebase_storage, storage_server

BUCKET = "bkt"
RULES = (Path(storage_server.__file__).resolve().parents[2] / "infra" / "firebase" / "storage.rules").read_text()


def _claims(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise firebase_storage.InvalidToken("malformed") from None
    if claims.get("aud") != "p":
        raise firebase_storage.InvalidToken("aud")
    return {**claims, "uid": claims["sub"]}


class Recorder(storage_server.RequestHandler):
    seen: list = []
    drop_next_chunk = False

    def do_POST(self):
        Recorder.seen.append(("POST", self.path, self.headers.get("Authorization", ""), self.headers.get("X-Goog-Upload-Command")))
        if Recorder.drop_next_chunk and self.headers.get("X-Goog-Upload-Command") == "upload":
            Recorder.drop_next_chunk = False
            self.rfile.read(int(self.headers["Content-Length"]))
            self.close_connection = True  # no answer: the client sees the connection drop
            return
        super().do_POST()

    def do_GET(self):
        Recorder.seen.append(("GET", self.path, self.headers.get("Authorization", ""), self.headers.get("Range")))
        super().do_GET()


@pytest.fixture()
def front():
    storage = Storage(use_memory_fs=True)
    buckets.create_bucket(BUCKET, storage)
    front = firebase_storage.FirebaseStorageFront(storage, RULES, _claims)
    httpd = http_server.HTTPServer(("127.0.0.1", 0), partial(Recorder, storage, front))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    yield storage, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def transport(url: str, uid: str = "alice") -> Transport:
    return Transport(Endpoints("p", BUCKET, storage_url=url, firestore_url=url), lambda: forged_id_token(uid, "p"), timeout_s=5)


def png(size: int) -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (size // 256 + 1))[:size]


def test_production_endpoints_are_firebase_storage():
    assert Endpoints("p", "b").storage_url == "https://firebasestorage.googleapis.com"
    assert Endpoints("p", "b").object_url("a/b c.png") == "https://firebasestorage.googleapis.com/v0/b/b/o/a%2Fb%20c.png"


def test_a_small_upload_is_one_multipart_request_with_a_firebase_token(front):
    storage, url = front
    metadata = transport(url).upload("uploads/m/alice/a.png", png(1000), "image/png", {"label": "3"})
    assert metadata["name"] == "uploads/m/alice/a.png" and metadata["size"] == "1000" and metadata["downloadTokens"]
    assert metadata["metadata"] == {"label": "3"} and metadata["contentType"] == "image/png"
    assert storage.get_file(BUCKET, "uploads/m/alice/a.png") == png(1000)
    assert storage.get_file_obj(BUCKET, "uploads/m/alice/a.png")["metadata"]["label"] == "3"
    (request,) = Recorder.seen
    assert request[1].startswith(f"/v0/b/{BUCKET}/o?") and request[2].startswith("Firebase ")


def test_a_large_upload_is_a_resumable_session_that_survives_a_dropped_chunk(front):
    storage, url = front
    data = png(MULTIPART_MAX_BYTES + 2 * RESUMABLE_CHUNK_BYTES + 17)
    Recorder.drop_next_chunk = True
    metadata = transport(url).upload("uploads/m/alice/big.png", data, "image/png", {})
    assert metadata["size"] == str(len(data))
    assert storage.get_file(BUCKET, "uploads/m/alice/big.png") == data
    commands = [r[3] for r in Recorder.seen]
    assert commands[0] == "start" and "query" in commands and commands[-1] == "upload, finalize"
    assert all(r[1].startswith("/v0/") and r[2].startswith("Firebase ") for r in Recorder.seen)


def test_what_the_rules_forbid_is_permission_denied_and_not_stored(front):
    storage, url = front
    with pytest.raises(PermissionDenied):
        transport(url).upload("uploads/m/bob/a.png", png(100), "image/png", {})
    with pytest.raises(PermissionDenied):
        transport(url).upload("uploads/m/alice/big.gif", png(MULTIPART_MAX_BYTES + 1), "image/gif", {})
    assert storage.get_file_list(BUCKET)[0] == []


def test_a_download_resumes_with_a_range(front):
    storage, url = front
    data = bytes(range(256)) * 100
    storage.create_file(BUCKET, "models/m/v1/model.tflite", data, {
        "name": "models/m/v1/model.tflite", "bucket": BUCKET, "generation": "1", "size": str(len(data)),
        "contentType": "application/octet-stream"})
    with transport(url).download("models/m/v1/model.tflite", 1000) as download:
        assert (download.start, download.total) == (1000, len(data))
        assert b"".join(download.chunks) == data[1000:]
    assert Recorder.seen[-1][3] == "bytes=1000-"
    assert transport(url).metadata("models/m/v1/model.tflite")["size"] == str(len(data))


def test_the_transport_never_speaks_the_cloud_storage_json_api():
    source = Path(firebase_storage.__file__).resolve().parents[2].joinpath("client_sdk", "transport.py").read_text()
    assert "/storage/v1" not in source and "/upload/storage" not in source
