"""The local storage emulator, which also publishes GCS notifications.

gcp-storage-emulator speaks the JSON API that google-cloud-storage and
firebase-admin use, but sends no notifications. Every finalized object passes
through ``Storage.create_file`` (simple, multipart and resumable uploads, copy,
rewrite, compose), so this process wraps that one method and publishes the
same Pub/Sub message GCS would before the upload call returns.

Run as ``python -m edgeloop.localstack.storage_server --port P --bucket B --topic T``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.handlers import buckets
from gcp_storage_emulator.storage import Storage
from google.cloud import pubsub_v1

from edgeloop.localstack.gcs_notification import notification_message

logger = logging.getLogger("edgeloop.storage")
FLUSH_INTERVAL_S = 0.5
STALLED_CLIENT_TIMEOUT_S = 5.0


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
    # The emulator serves one request at a time: a client that stalls mid-request (a frozen or killed
    # process) would otherwise hold every other client off for good. Drop such a connection instead.
    emulator_server.RequestHandler.timeout = STALLED_CLIENT_TIMEOUT_S
    api = emulator_server.APIThread(host, port, storage, daemon=True)
    api.start()
    api.is_running.wait()
    logger.info("storage emulator on http://%s:%d, bucket %s, notifications to %s", host, port, bucket, topic)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    flusher = threading.Thread(target=storage.flush_periodically, args=(stop,), name="flush-metadata", daemon=True)
    flusher.start()
    stop.wait()
    api.join(timeout=1)
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
