"""Count the billable operations this process's Google Cloud clients make: Firestore reads, writes and deletes,
Pub/Sub messages published, Cloud Storage class A and B requests.

``counting(project)`` instruments the product's own cached clients (shared.gcp.clients) where their requests
leave the process: a gRPC interceptor on the Firestore channel, the Storage client's HTTP session, the
publisher's ``publish``. Whatever runs in this process meanwhile (a handler of functions/main.py called as a
plain function, a benchmark's traffic) is counted, per operation as Google bills it:

* Firestore (https://cloud.google.com/firestore/pricing): a read per document a lookup or query returns, a
  lookup of a missing document and an empty query one read each; an aggregation one read per 1,000 index
  entries it scans, at least one (counted here as calls: the entries it scanned are not reported; the capacity
  model scales them with the data); a write per document written by a commit or batch write, a delete per
  document deleted; transactions themselves are free.
* Cloud Storage: class A for writes and listings, class B for reads of an object or its metadata.
* Pub/Sub: billed by volume (at least 1 KB a message), counted here as messages.
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import grpc

FIRESTORE_SERVICE = "google.firestore.v1.Firestore"


def _pb(message: Any) -> Any:
    """The protobuf of a proto-plus message (what the GAPIC stubs hand the channel), or the protobuf itself."""
    return getattr(message, "_pb", message)


class OperationCounter:
    """Operations counted so far; thread-safe (handlers may run concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self.counts[key] += n

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    # --- Firestore ------------------------------------------------------------------------------------------

    def firestore_request(self, method: str, request: Any) -> None:
        self.add(f"firestore.rpc.{method}")
        if method in ("Commit", "BatchWrite"):
            deletes = sum(1 for write in request.writes if _pb(write).WhichOneof("operation") == "delete")
            self.add("firestore.deletes", deletes)
            self.add("firestore.writes", len(request.writes) - deletes)
        elif method == "RunAggregationQuery":
            self.add("firestore.aggregations")

    def firestore_response(self, method: str, response: Any) -> int:
        """One response of a streaming call, as it arrives (a caller may stop reading before the stream ends):
        the documents it read."""
        pb = _pb(response)
        read = int(method == "BatchGetDocuments" and pb.WhichOneof("result") in ("found", "missing")
                   or method == "RunQuery" and pb.HasField("document"))
        self.add("firestore.reads", read)
        return read

    def firestore_stream_ended(self, method: str, documents: int) -> None:
        """A query that returned no document is billed one read."""
        if method == "RunQuery" and not documents:
            self.add("firestore.reads")

    # --- Storage, Pub/Sub -----------------------------------------------------------------------------------

    def storage_request(self, method: str, url: str) -> None:
        path = url.split("?", 1)[0]
        listing = method == "GET" and path.rstrip("/").endswith("/o")
        self.add("storage.class_a" if method in ("POST", "PUT", "PATCH") or listing else
                 "storage.free" if method == "DELETE" else "storage.class_b")

    def published(self) -> None:
        self.add("pubsub.messages")


class _CountingStream:
    """A server-streaming call whose responses are counted as they arrive, and its end once."""

    def __init__(self, call: Any, method: str, counter: OperationCounter) -> None:
        self._call, self._method, self._counter, self._documents, self._ended = call, method, counter, 0, False

    def __iter__(self) -> "_CountingStream":
        return self

    def __next__(self) -> Any:
        try:
            response = next(self._call)
        except StopIteration:
            self._end()
            raise
        self._documents += self._counter.firestore_response(self._method, response)
        return response

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._counter.firestore_stream_ended(self._method, self._documents)

    def __del__(self) -> None:  # a caller that stopped reading early
        self._end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _FirestoreInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, counter: OperationCounter) -> None:
        self.counter = counter

    @staticmethod
    def _method(details) -> str:
        return details.method.rsplit("/", 1)[-1]

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.counter.firestore_request(self._method(client_call_details), request)
        return continuation(client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        method = self._method(client_call_details)
        self.counter.firestore_request(method, request)
        return _CountingStream(continuation(client_call_details, request), method, self.counter)


def _instrument_firestore(client: Any, counter: OperationCounter) -> Callable[[], None]:
    """Rebuild the client's API stub over a counting channel (the next request creates it); returns what
    undoes that."""
    make_channel = client._emulator_channel

    def counting_channel(transport):
        return grpc.intercept_channel(make_channel(transport), _FirestoreInterceptor(counter))

    def restore() -> None:
        client._emulator_channel = make_channel
        client._firestore_api_internal = None

    if client._emulator_host is None:
        raise RuntimeError("operations are counted against the local stack's emulators only")
    client._emulator_channel = counting_channel
    client._firestore_api_internal = None
    return restore


def _instrument_storage(client: Any, counter: OperationCounter) -> None:
    session = client._http
    request = session.request

    def counting_request(method, url, *args, **kwargs):
        counter.storage_request(method.upper(), url)
        return request(method, url, *args, **kwargs)

    session.request = counting_request


def _instrument_publisher(client: Any, counter: OperationCounter) -> None:
    publish = client.publish

    def counting_publish(*args, **kwargs):
        counter.published()
        return publish(*args, **kwargs)

    client.publish = counting_publish


@contextmanager
def counting(project: str, firestore_clients: Iterable[Any] = ()) -> Iterator[OperationCounter]:
    """Count every operation of this process's product clients until the block ends (fresh clients then), and of
    ``firestore_clients``, Firestore clients of code outside the product (given back uncounted at the end)."""
    from shared.gcp import clients

    counter = OperationCounter()
    clients.reset_clients()
    restores = []
    try:
        # The factories are cached per call signature: code asks with the project and with no argument at all.
        for firestore, storage in ((clients.firestore_client(), clients.storage_client()),
                                   (clients.firestore_client(project), clients.storage_client(project))):
            _instrument_firestore(firestore, counter)
            _instrument_storage(storage, counter)
        _instrument_publisher(clients.publisher_client(), counter)
        restores = [_instrument_firestore(client, counter) for client in firestore_clients]
        yield counter
    finally:
        for restore in restores:
            restore()
        clients.reset_clients()
