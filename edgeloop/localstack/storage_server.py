"""The local storage emulator, which also publishes GCS notifications and serves Firebase Storage.

gcp-storage-emulator speaks the JSON API that google-cloud-storage and
firebase-admin use, but sends no notifications. Every finalized object passes
through ``Storage.create_file`` (simple, multipart and resumable uploads, copy,
rewrite, compose), so this process wraps that one method and publishes the
same Pub/Sub message GCS would before the upload call returns.

The same port serves the Firebase Storage REST protocol under ``/v0/``
(``firebase_storage.py``): what apps and the client SDK speak, with ID tokens
verified and ``infra/firebase/storage.rules`` deciding; its uploads go through
the same ``create_file`` and raise the same notifications.

Run as ``python -m edgeloop.localstack.storage_server --port P --bucket B --topic T``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from functools import partial
from http import server as http_server
from pathlib import Path

from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.handlers import buckets
from gcp_storage_emulator.storage import Storage
from google.cloud import pubsub_v1

from edgeloop.localstack import firebase_storage
from edgeloop.localstack.gcs_notification import notification_message

logger = logging.getLogger("edgeloop.storage")
FLUSH_INTERVAL_S = 0.5
STALLED_CLIENT_TIMEOUT_S = 5.0
STORAGE_RULES = Path(__file__).resolve().parents[2] / "infra" / "firebase" / "storage.rules"


class RequestHandler(emulator_server.RequestHandler):
    """The emulator's JSON API handler, with ``/v0/…`` (Firebase Storage) answered by the front."""

    # The emulator serves one request at a time: a client that stalls mid-request (a frozen or killed
    # process) would otherwise hold every other client off for good. Drop such a connection instead.
    timeout = STALLED_CLIENT_TIMEOUT_S

    def __init__(self, storage, front, *args, **kwargs):
        self.front = front
        super().__init__(storage, *args, **kwargs)

    def _dispatch(self, method: str) -> bool:
        if self.path.startswith(firebase_storage.PREFIX):
            self.front.handle(self, method)
            return True
        return False

    def do_GET(self):
        self._dispatch("GET") or super().do_GET()

    def do_POST(self):
        self._dispatch("POST") or super().do_POST()

    def do_PUT(self):
        self._dispatch("PUT") or super().do_PUT()

    def do_PATCH(self):
        self._dispatch("PATCH") or super().do_PATCH()

    def do_DELETE(self):
        self._dispatch("DELETE") or super().do_DELETE()

    def do_HEAD(self):
        if not self._dispatch("HEAD"):
            self.send_error(501)

    def do_OPTIONS(self):
        if not self._dispatch("OPTIONS"):
            self.send_error(501)

    def log_message(self, format, *args):
        # no query strings in the log: a download URL carries its token there
        logger.info(format, *[a.split("?", 1)[0] if isinstance(a, str) else a for a in args])


class _Server(http_server.HTTPServer):
    # One request at a time (the emulator's storage is not thread-safe), but room to queue what a browser or
    # an SDK opens at once: the default backlog of 5 made the 6th connection wait a second-long SYN retry.
    request_queue_size = 128


class APIThread(threading.Thread):
    def __init__(self, host: str, port: int, handler):
        super().__init__(daemon=True, name="storage-api")
        self.httpd = _Server((host, port), handler)

    def run(self):
        self.httpd.serve_forever()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class NotifyingStorage(Storage):
    """gcp-storage-emulator's Storage, publishing OBJECT_FINALIZE for every new generation."""

    def __init__(self, *args, publisher: pubsub_v1.PublisherClient, topic_path: str, **kwargs):
        self._dirty = threading.Event()
        super().__init__(*args, **kwargs)
        self._publisher = publisher
        self._topic_path = topic_path

    def _write_config_to_file(self):
        # The emulator rewrites its whole metadata file on every change, which is quadratic in the
        # number of objects (seeding 1,800 images took minutes). Changes are coalesced instead:
        # flush() writes at most every FLUSH_INTERVAL_S, and once more at shutdown.
        self._dirty.set()

    def flush(self) -> None:
        if not self._dirty.is_set():
            return
        self._dirty.clear()
        try:
            super()._write_config_to_file()
        except RuntimeError:  # a request changed the metadata while it was serialised: next tick
            self._dirty.set()

    def flush_periodically(self, stop: threading.Event) -> None:
        while not stop.wait(FLUSH_INTERVAL_S):
            self.flush()

    def create_file(self, bucket_name, file_name, content, file_obj, file_id=None):
        previous = self.objects.get(bucket_name, {}).get(file_name)
        super().create_file(bucket_name, file_name, content, file_obj, file_id)
        overwrote = int(previous["generation"]) if previous else None
        data, attributes = notification_message(file_obj, overwrote_generation=overwrote)
        # Publish before the upload returns: once a client sees success, the event exists.
        message_id = self._publisher.publish(self._topic_path, data, **attributes).result(timeout=30)
        logger.info("notified %s gs://%s/%s#%s", message_id, bucket_name, file_name, file_obj["generation"])


def serve(host: str, port: int, data_dir: str, bucket: str, project: str, topic: str) -> None:
    publisher = pubsub_v1.PublisherClient()
    storage = NotifyingStorage(
        use_memory_fs=False, data_dir=data_dir, publisher=publisher, topic_path=publisher.topic_path(project, topic)
    )
    if bucket not in storage.buckets:
        buckets.create_bucket(bucket, storage)
    if not os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
        # A local stack only ever sees emulator ID tokens (unsigned); firebase-admin accepts those only in
        # emulator mode, which a verification without check_revoked never contacts.
        logger.warning("FIREBASE_AUTH_EMULATOR_HOST is not set: verifying ID tokens in emulator mode anyway")
        os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    front = firebase_storage.FirebaseStorageFront(
        storage, STORAGE_RULES.read_text(), firebase_storage.firebase_admin_verifier(project))
    api = APIThread(host, port, partial(RequestHandler, storage, front))
    api.start()
    logger.info("storage emulator on http://%s:%d (JSON API, Firebase Storage under /v0/), bucket %s, notifications to %s",
                host, port, bucket, topic)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    flusher = threading.Thread(target=storage.flush_periodically, args=(stop,), name="flush-metadata", daemon=True)
    flusher.start()
    stop.wait()
    api.stop()
    flusher.join(timeout=2)
    storage.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.host, args.port, args.data_dir, args.bucket, args.project, args.topic)


if __name__ == "__main__":
    main()
