"""With the network down, captures and feedback wait on disk with backoff, and survive a restart.
(Delivery to the real backend once it is reachable: tests/integration/test_client_sdk.py.)"""

import socket

from client_sdk.outbox import Outbox
from client_sdk.transport import Endpoints, Transport
from shared.config import Client

SETTINGS = Client(send_attempts=2, backoff_initial_s=0.01, backoff_max_s=60, request_timeout_s=2)


def unreachable_transport() -> Transport:
    with socket.socket() as sock:  # a port nobody listens on: connections are refused, as offline
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    return Transport(Endpoints("p", "b", storage_url=url, firestore_url=url), lambda: "token", timeout_s=2)


def test_offline_items_stay_queued_with_a_growing_backoff_and_survive_a_restart(tmp_path):
    now = [1000.0]
    outbox = Outbox(tmp_path, SETTINGS, clock=lambda: now[0])
    outbox.add_upload("uploads/digits/u1/a.png", b"\x89PNG...", "image/png", {"predicted_label": "3"})
    outbox.add_feedback("models/digits/feedback", "f1", {"uid": "u1", "correct": True})
    transport = unreachable_transport()

    report = outbox.flush(transport)
    assert (report.delivered, report.rejected, report.waiting) == (0, 0, 2)
    assert "upload uploads/digits/u1/a.png" in report.last_error
    first = outbox.pending()[0]
    assert first.attempts == 1 and first.next_attempt_at == 1000.0 + 0.02

    assert outbox.flush(transport).last_error == "backing off"  # before its next attempt time: no request at all
    assert transport.stats.uploads == 0

    now[0] += 1
    outbox.flush(transport)
    restarted = Outbox(tmp_path, SETTINGS, clock=lambda: now[0])
    items = restarted.pending()
    assert [(i.kind, i.attempts) for i in items] == [("upload", 2), ("feedback", 0)]
    assert (tmp_path / f"{items[0].key}.bin").read_bytes() == b"\x89PNG..."


def test_bytes_whose_item_was_never_committed_are_cleaned_up(tmp_path):
    (tmp_path / "0001-crashed.bin").write_bytes(b"half")
    Outbox(tmp_path, SETTINGS)
    assert not (tmp_path / "0001-crashed.bin").exists()
