"""The Firebase Storage REST protocol (``/v0/b/{bucket}/o…``), served in front of the storage emulator.

Apps (the Firebase SDKs, ``client_sdk``) speak this protocol to Firebase
Storage, where ``storage.rules`` decide every request; the Cloud Storage JSON
API the services use never sees an end user's token. The official Storage
emulator cannot start offline, so the local stack serves the protocol itself,
on the storage component's port, beside the JSON API:

* every request's ``Authorization: Firebase <ID token>`` is verified with
  ``firebase_admin.auth.verify_id_token`` (the Auth emulator's unsigned tokens
  when ``FIREBASE_AUTH_EMULATOR_HOST`` is set); a bad token is 401;
* ``storage_rules.StorageRules`` decides with ``infra/firebase/storage.rules``:
  denied is 403 (401 without a token), ``{"error": {"code", "message"}}``;
* objects are written through the emulator's ``create_file``, so every upload
  raises the same GCS notification as a JSON API upload.

Requests, as the Web SDK 12 sends them: ``POST /v0/b/B/o?name=N`` with
``X-Goog-Upload-Protocol: multipart`` (a JSON part with ``contentType`` and
custom ``metadata``, then the bytes) or ``resumable`` (``X-Goog-Upload-Command:
start``, then ``upload`` / ``upload, finalize`` / ``query`` / ``cancel`` on the
``X-Goog-Upload-URL`` it answered); ``GET /v0/b/B/o/{url-encoded N}`` (metadata
with ``downloadTokens``) and ``?alt=media`` (bytes, ``Range`` honoured, or a
``token=`` download token instead of rules); ``PATCH`` (metadata, or ``PUT``
with ``X-HTTP-Method-Override: PATCH``); ``DELETE``; ``GET /v0/b/B/o?prefix=P/
&delimiter=/`` (list).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Callable
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers.objects import _checksums, _make_object_resource

from edgeloop.localstack.storage_rules import Request, RulesSyntaxError, StorageRules

logger = logging.getLogger("edgeloop.firebase_storage")

PREFIX = "/v0/"
MAX_BODY_BYTES = 130 * 1024 * 1024  # the Storage emulator's limit
UPLOAD_SESSION_TTL_S = 24 * 3600
TOKEN_KEY = "firebaseStorageDownloadTokens"
EXPOSED_HEADERS = ", ".join([
    "X-Goog-Upload-URL", "X-Goog-Upload-Status", "X-Goog-Upload-Size-Received", "X-Goog-Upload-Chunk-Granularity",
    "X-Goog-Upload-Control-URL", "Content-Range", "Content-Length", "Content-Type", "ETag", "Accept-Ranges",
])
_OBJECT = re.compile(r"/v0/b/(?P<bucket>[^/]+)/o(?:/(?P<name>[^/]+))?/?")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_WRITABLE = ("contentType", "cacheControl", "contentDisposition", "contentEncoding", "contentLanguage")


class InvalidToken(Exception):
    """The ID token did not verify."""


TokenVerifier = Callable[[str], dict]  # ID token -> its claims (uid included), or InvalidToken


def firebase_admin_verifier(project_id: str) -> TokenVerifier:
    """``firebase_admin.auth.verify_id_token`` for ``project_id`` (its own app, no credentials needed)."""
    import firebase_admin
    from firebase_admin import auth

    try:
        app = firebase_admin.get_app("edgeloop-storage")
    except ValueError:
        app = firebase_admin.initialize_app(options={"projectId": project_id}, name="edgeloop-storage")

    def verify(token: str) -> dict:
        try:
            return auth.verify_id_token(token, app=app)
        except (ValueError, auth.InvalidIdTokenError, auth.ExpiredIdTokenError, auth.RevokedIdTokenError,
                auth.CertificateFetchError, auth.UserDisabledError) as exc:
            raise InvalidToken(type(exc).__name__) from None

    return verify


class _Reply(Exception):
    """Answer the request with this status, headers and body (JSON for dicts)."""

    def __init__(self, status: int, body: dict | bytes | None = None, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _error(status: int, message: str) -> _Reply:
    return _Reply(status, {"error": {"code": status, "message": message}})


@dataclass
class _Upload:
    bucket: str
    name: str
    resource: dict  # the JSON metadata the start request sent
    auth: dict | None
    declared_size: int | None
    declared_type: str | None
    data: bytearray = field(default_factory=bytearray)
    status: str = "active"  # active | final | cancelled
    final_reply: _Reply | None = None
    started: float = field(default_factory=time.monotonic)


class FirebaseStorageFront:
    """Serves ``/v0/…`` requests of a ``BaseHTTPRequestHandler`` against the emulator's ``storage``."""

    def __init__(self, storage, rules_text: str, verify: TokenVerifier):
        self.storage = storage
        self.verify = verify
        try:
            self.rules: StorageRules | None = StorageRules.parse(rules_text)
        except RulesSyntaxError as exc:  # fail closed: every request is denied
            logger.error("storage.rules not loaded, every request will be denied: %s", exc)
            self.rules = None
        self.uploads: dict[str, _Upload] = {}

    # --- the HTTP surface -----------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        body_sent = method != "HEAD"
        try:
            reply = self._route(handler, method)
        except _Reply as answer:
            reply = answer
        except Exception:  # noqa: BLE001 - a bug answers 500, never a hung connection
            logger.exception("firebase storage request failed: %s %s", method, urlsplit(handler.path).path)
            reply = _error(500, "Internal error.")
        body = reply.body
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            reply.headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        body = body or b""
        handler.send_response(reply.status, HTTPStatus(reply.status).phrase)
        for name, value in {**self._cors(handler), **reply.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if body_sent:
            handler.wfile.write(body)

    @staticmethod
    def _cors(handler: BaseHTTPRequestHandler) -> dict:
        return {
            "Access-Control-Allow-Origin": handler.headers.get("Origin") or "*",
            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": handler.headers.get("Access-Control-Request-Headers")
            or "Authorization, Content-Type, Range, X-Goog-Upload-Protocol, X-Goog-Upload-Command, X-Goog-Upload-Offset, "
               "X-Goog-Upload-Header-Content-Length, X-Goog-Upload-Header-Content-Type, X-Firebase-Storage-Version, "
               "X-Firebase-GMPID, X-Firebase-AppCheck, X-HTTP-Method-Override",
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            "Access-Control-Max-Age": "3600",
        }

    def _route(self, handler: BaseHTTPRequestHandler, method: str) -> _Reply:
        parts = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        if method == "OPTIONS":
            return _Reply(204)
        found = _OBJECT.fullmatch(parts.path)
        if not found:
            raise _error(404, "Not Found.")
        bucket, encoded = found.group("bucket"), found.group("name")
        if bucket not in self.storage.buckets:
            raise _error(404, f"Bucket {bucket} does not exist.")
        name = unquote(encoded) if encoded else None
        override = (handler.headers.get("X-HTTP-Method-Override") or "").upper()
        if method == "PUT" and override == "PATCH":
            method = "PATCH"
        if name is None:
            if method == "GET":
                return self._list(handler, bucket, query)
            if method in ("POST", "PUT"):
                return self._upload(handler, bucket, query.get("name"), query)
        else:
            if method in ("GET", "HEAD"):
                return self._get(handler, bucket, name, query)
            if method in ("POST", "PUT"):
                return self._upload(handler, bucket, name, query)
            if method == "PATCH":
                return self._patch(handler, bucket, name)
            if method == "DELETE":
                return self._delete(handler, bucket, name)
        raise _error(405, f"{method} is not supported here.")

    # --- identity and rules ---------------------------------------------------------------

    def _auth(self, handler: BaseHTTPRequestHandler) -> dict | None:
        header = handler.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "firebase" or not token.strip():
            raise _error(401, "Invalid authorization: expected 'Firebase <ID token>'.")
        try:
            claims = self.verify(token.strip())
        except InvalidToken as exc:
            raise _error(401, f"Invalid Firebase ID token ({exc}).") from None
        return {"uid": claims.get("uid") or claims.get("sub"), "token": dict(claims)}

    def _authorize(self, operation: str, bucket: str, name: str, auth: dict | None,
                   resource: dict | None = None, stored: dict | None = None) -> None:
        request = Request(operation, bucket, name, auth=auth, resource=resource, stored=stored)
        if self.rules is not None and self.rules.allows(request):
            return
        verb = {"get": "READ", "list": "LIST"}.get(operation, "WRITE")
        if auth is None:
            raise _error(401, f"Unauthenticated. No {verb} permission without a Firebase ID token.")
        raise _error(403, f"Permission denied. No {verb} permission.")

    # --- objects ----------------------------------------------------------------------------

    def _stored(self, bucket: str, name: str) -> dict | None:
        try:
            return self.storage.get_file_obj(bucket, name)
        except NotFound:
            return None

    def _get(self, handler, bucket: str, name: str, query: dict) -> _Reply:
        stored = self._stored(bucket, name)
        token = query.get("token")
        media = query.get("alt") == "media"
        if not (media and token and stored and token in _tokens(stored)):  # a download token skips the rules
            self._authorize("get", bucket, name, self._auth(handler), stored=_rules_resource(stored))
        if stored is None:
            raise _error(404, "Not Found.")
        if not media:
            if not _tokens(stored):  # as Firebase Storage: every object read has a download token
                stored = self._patched(bucket, name, stored, {"metadata": {TOKEN_KEY: str(uuid.uuid4())}}, count=False)
            return _Reply(200, firebase_metadata(stored))
        data = self.storage.get_file(bucket, name)
        headers = {
            "Content-Type": stored.get("contentType") or "application/octet-stream", "Accept-Ranges": "bytes",
            "ETag": stored.get("etag") or "", "x-goog-generation": str(stored["generation"]),
            "Content-Disposition": f"inline; filename*=utf-8''{quote(name.rsplit('/', 1)[-1])}",
        }
        wanted = _RANGE.fullmatch((handler.headers.get("Range") or "").strip())
        if wanted and (wanted.group(1) or wanted.group(2)):
            total = len(data)
            if wanted.group(1):
                start = int(wanted.group(1))
                end = min(int(wanted.group(2)), total - 1) if wanted.group(2) else total - 1
            else:  # a suffix: the last N bytes
                start, end = max(total - int(wanted.group(2)), 0), total - 1
            if start >= total or start > end:
                raise _Reply(416, None, {"Content-Range": f"bytes */{total}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            return _Reply(206, data[start:end + 1], headers)
        return _Reply(200, data, headers)

    def _list(self, handler, bucket: str, query: dict) -> _Reply:
        prefix = query.get("prefix", "")
        if prefix and not prefix.endswith("/"):
            raise _error(400, "The prefix parameter is required to be empty or ends with a single / character.")
        # The rules decide on the listed folder's path, without its trailing slash (as Firebase Storage does).
        self._authorize("list", bucket, prefix.rstrip("/") or "/", self._auth(handler))
        delimiter = query.get("delimiter") or None
        objects, prefixes = self.storage.get_file_list(bucket, prefix or None, delimiter)
        limit = int(query["maxResults"]) if query.get("maxResults", "").isdigit() else 1000
        after = query.get("pageToken", "")
        names = sorted([("item", o["name"]) for o in objects if o["name"] > after] +
                       [("prefix", p) for p in prefixes if p > after], key=lambda item: item[1])
        page = names[:limit]
        reply = {"prefixes": [p.rstrip("/") for kind, p in page if kind == "prefix"],
                 "items": [{"name": n, "bucket": bucket} for kind, n in page if kind == "item"]}
        if len(names) > limit:
            reply["nextPageToken"] = page[-1][1]
        return _Reply(200, reply)

    def _patch(self, handler, bucket: str, name: str) -> _Reply:
        auth = self._auth(handler)
        stored = self._stored(bucket, name)
        changes = _json_body(handler)
        after = _changed(stored, changes) if stored else None
        self._authorize("update", bucket, name, auth, resource=_rules_resource(after), stored=_rules_resource(stored))
        if stored is None:
            raise _error(404, "Not Found.")
        return _Reply(200, firebase_metadata(self._patched(bucket, name, stored, changes)))

    def _patched(self, bucket: str, name: str, stored: dict, changes: dict, count: bool = True) -> dict:
        updated = _changed(stored, changes, count)
        self.storage.patch_object(bucket, name, updated)
        return updated

    def _delete(self, handler, bucket: str, name: str) -> _Reply:
        stored = self._stored(bucket, name)
        self._authorize("delete", bucket, name, self._auth(handler), stored=_rules_resource(stored))
        if stored is None:
            raise _error(404, "Not Found.")
        self.storage.delete_file(bucket, name)
        return _Reply(204)

    # --- uploads ----------------------------------------------------------------------------

    def _upload(self, handler, bucket: str, name: str | None, query: dict) -> _Reply:
        protocol = (handler.headers.get("X-Goog-Upload-Protocol") or "").lower()
        command = (handler.headers.get("X-Goog-Upload-Command") or "").lower()
        if protocol == "resumable" or command:
            return self._resumable(handler, bucket, name, query, command)
        if not name:
            raise _error(400, "An upload needs an object name (?name=).")
        auth = self._auth(handler)
        body = _body(handler)
        if protocol == "multipart":
            resource, data, part_type = _multipart(handler.headers.get("Content-Type") or "", body)
            resource.setdefault("contentType", part_type)
        else:  # a media upload: the bytes alone
            resource, data = {"contentType": handler.headers.get("Content-Type")}, body
        return self._finish(bucket, name, resource, data, auth)

    def _resumable(self, handler, bucket: str, name: str | None, query: dict, command: str) -> _Reply:
        if command == "start":
            if not name:
                raise _error(400, "An upload needs an object name (?name=).")
            auth = self._auth(handler)
            resource = _json_body(handler) or {}
            if not resource.get("contentType") and handler.headers.get("X-Goog-Upload-Header-Content-Type"):
                resource["contentType"] = handler.headers["X-Goog-Upload-Header-Content-Type"]
            declared = handler.headers.get("X-Goog-Upload-Header-Content-Length")
            upload = _Upload(bucket, name, resource, auth, int(declared) if (declared or "").isdigit() else None,
                             handler.headers.get("X-Goog-Upload-Header-Content-Type"))
            # Refuse early what the rules would refuse at the end (the final check decides on the real bytes).
            stored = self._stored(bucket, name)
            if upload.declared_size is not None:
                self._authorize("update" if stored else "create", bucket, name, auth,
                                resource=_rules_resource(self._new_object(upload, b"", upload.declared_size)),
                                stored=_rules_resource(stored))
            self._expire_sessions()
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = upload
            host = handler.headers.get("Host") or "%s:%s" % handler.server.server_address[:2]
            url = f"http://{host}/v0/b/{bucket}/o?" + urlencode(
                {"name": name, "upload_id": upload_id, "upload_protocol": "resumable"})
            return _Reply(200, None, {"X-Goog-Upload-Status": "active", "X-Goog-Upload-URL": url,
                                      "X-Goog-Upload-Chunk-Granularity": str(256 * 1024),
                                      "X-Goog-Upload-Control-URL": "", "X-GUploader-UploadID": upload_id})
        upload = self.uploads.get(query.get("upload_id", ""))
        if upload is None or upload.bucket != bucket:
            raise _error(404, "No such upload session.")
        if command == "query":
            return _Reply(200, None, {"X-Goog-Upload-Status": upload.status,
                                      "X-Goog-Upload-Size-Received": str(len(upload.data))})
        if command == "cancel":
            if upload.status == "final":
                raise _error(400, "The upload is already finalized.")
            upload.status = "cancelled"
            return _Reply(200)
        steps = {step.strip() for step in command.split(",")}
        if not steps or not steps <= {"upload", "finalize"}:
            raise _error(400, f"Unknown X-Goog-Upload-Command {command!r}.")
        if upload.status == "final" and upload.final_reply is not None:
            return upload.final_reply  # a retried finalize: the same answer
        if upload.status != "active":
            raise _Reply(400, None, {"X-Goog-Upload-Status": upload.status})
        chunk = _body(handler)
        if "upload" in steps:
            offset = handler.headers.get("X-Goog-Upload-Offset")
            at = int(offset) if (offset or "").isdigit() else len(upload.data)
            if at > len(upload.data):
                raise _error(400, f"Offset {at} is past the {len(upload.data)} bytes received.")
            upload.data[at:] = chunk  # a re-sent chunk replaces what it overlaps
        if "finalize" not in steps:
            return _Reply(200, None, {"X-Goog-Upload-Status": "active",
                                      "X-Goog-Upload-Size-Received": str(len(upload.data))})
        upload.status = "final"
        try:
            reply = self._finish(upload.bucket, upload.name, upload.resource, bytes(upload.data), upload.auth, upload)
        except _Reply as refused:
            reply = refused
        reply.headers["X-Goog-Upload-Status"] = "final"
        upload.final_reply = reply
        upload.data = bytearray()
        return reply

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for upload_id in [k for k, u in self.uploads.items() if now - u.started > UPLOAD_SESSION_TTL_S]:
            del self.uploads[upload_id]

    def _new_object(self, upload: _Upload | None, data: bytes, size: int | None, bucket: str = "", name: str = "",
                    resource: dict | None = None) -> dict:
        if upload is not None:
            bucket, name, resource = upload.bucket, upload.name, upload.resource
        resource = dict(resource or {})
        content_type = resource.get("contentType") or (upload.declared_type if upload else None) or "application/octet-stream"
        metadata = {str(k): str(v) for k, v in (resource.get("metadata") or {}).items() if v is not None}
        if not metadata.get(TOKEN_KEY):  # as Firebase Storage: a new object gets a download token
            metadata[TOKEN_KEY] = str(uuid.uuid4())
        fields = {k: resource[k] for k in _WRITABLE if resource.get(k)}
        fields.update(contentType=content_type, metadata=metadata)
        obj = _make_object_resource("", bucket, name, content_type, str(len(data) if size is None else size), fields)
        obj.pop("mediaLink", None)
        return obj

    def _finish(self, bucket: str, name: str, resource: dict, data: bytes, auth: dict | None,
                upload: _Upload | None = None) -> _Reply:
        obj = self._new_object(None, data, None, bucket, name, resource)
        _checksums(data, obj)
        stored = self._stored(bucket, name)
        self._authorize("update" if stored else "create", bucket, name, auth, resource=_rules_resource(obj),
                        stored=_rules_resource(stored))
        self.storage.create_file(bucket, name, data, obj)  # publishes OBJECT_FINALIZE like every upload
        return _Reply(200, firebase_metadata(obj))


# --- shapes -----------------------------------------------------------------------------------

def _changed(stored: dict, changes: dict, count: bool = True) -> dict:
    """``stored`` with a PATCH's writable fields and custom metadata (null removes a key) applied."""
    updated = dict(stored)
    for key in _WRITABLE:
        if key in changes:
            updated[key] = changes[key]
    if isinstance(changes.get("metadata"), dict):
        merged = dict(stored.get("metadata") or {})
        for key, value in changes["metadata"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[str(key)] = str(value)
        updated["metadata"] = merged
    if count:
        updated["metageneration"] = str(int(stored.get("metageneration", "1")) + 1)
        updated["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return updated


def _tokens(obj: dict) -> list[str]:
    value = (obj.get("metadata") or {}).get(TOKEN_KEY) or ""
    return [token for token in value.split(",") if token]


def firebase_metadata(obj: dict) -> dict:
    """An object as Firebase Storage describes it (the Web SDK's ``FullMetadata`` source)."""
    custom = {k: v for k, v in (obj.get("metadata") or {}).items() if k != TOKEN_KEY}
    out = {
        "name": obj["name"], "bucket": obj["bucket"], "generation": str(obj["generation"]),
        "metageneration": str(obj.get("metageneration", "1")), "contentType": obj.get("contentType"),
        "timeCreated": obj.get("timeCreated"), "updated": obj.get("updated"),
        "storageClass": obj.get("storageClass", "STANDARD"), "size": str(obj.get("size", "0")),
        "md5Hash": obj.get("md5Hash"), "crc32c": obj.get("crc32c"), "etag": obj.get("etag"),
        "contentEncoding": obj.get("contentEncoding") or "identity",
        "contentDisposition": obj.get("contentDisposition") or "inline",
        "downloadTokens": ",".join(_tokens(obj)), "metadata": custom,
    }
    for key in ("cacheControl", "contentLanguage"):
        if obj.get(key):
            out[key] = obj[key]
    return out


def _rules_resource(obj: dict | None) -> dict | None:
    """An object as the rules see it (``resource`` / ``request.resource``)."""
    if obj is None:
        return None
    out = {
        "name": obj["name"], "bucket": obj["bucket"], "generation": int(obj["generation"]),
        "metageneration": int(obj.get("metageneration", 1)), "size": int(obj.get("size") or 0),
        "contentType": obj.get("contentType"), "metadata": dict(obj.get("metadata") or {}),
        "md5Hash": obj.get("md5Hash"), "crc32c": obj.get("crc32c"), "etag": obj.get("etag"),
    }
    for key in ("cacheControl", "contentDisposition", "contentEncoding", "contentLanguage"):
        out[key] = obj.get(key)
    return out


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    length = handler.headers.get("Content-Length")
    if length is None:
        if (handler.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(handler.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    handler.rfile.readline()
                    return bytes(out)
                out += handler.rfile.read(size)
                handler.rfile.readline()
                if len(out) > MAX_BODY_BYTES:
                    raise _error(413, "Request body too large.")
        return b""
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise _error(413, "Request body too large.")
    return handler.rfile.read(int(length))


def _json_body(handler: BaseHTTPRequestHandler) -> dict:
    raw = _body(handler)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise _error(400, "The request body is not JSON.") from None
    if not isinstance(value, dict):
        raise _error(400, "The request body is not a JSON object.")
    return value


def _multipart(content_type: str, body: bytes) -> tuple[dict, bytes, str]:
    """(JSON metadata, bytes, the bytes' content type) of a multipart/related upload body."""
    found = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/") or not found:
        raise _error(400, "A multipart upload needs a multipart Content-Type with a boundary.")
    delimiter = b"--" + found.group(1).encode()
    pieces = body.split(delimiter)
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        piece = piece[2:] if piece.startswith(b"\r\n") else piece
        piece = piece[:-2] if piece.endswith(b"\r\n") else piece
        head, separator, content = piece.partition(b"\r\n\r\n")
        if not separator:
            raise _error(400, "A multipart part without headers.")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        parts.append((headers, content))
    if len(parts) != 2:
        raise _error(400, f"A multipart upload has 2 parts, not {len(parts)}.")
    try:
        resource = json.loads(parts[0][1] or b"{}")
    except ValueError:
        raise _error(400, "The multipart upload's first part is not JSON.") from None
    if not isinstance(resource, dict):
        raise _error(400, "The multipart upload's first part is not a JSON object.")
    part_type = parts[1][0].get("content-type") or "application/octet-stream"
    return resource, parts[1][1], part_type
