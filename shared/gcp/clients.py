"""Adapter: Google Cloud clients, pointed at the emulators when their env vars are set.

The standard clients honour FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and
STORAGE_EMULATOR_HOST; against an emulator they need anonymous credentials,
because a developer machine has no Application Default Credentials.

Storage and Pub/Sub load where a client is first made: each function process
imports only the client libraries its handler uses (``edgeloop bench footprint``).
Every client here is thread-safe and made once per process (``lru_cache``
serialises nothing, so two threads racing on the first call may each build one
and one is kept; either works), so a process may serve concurrent requests.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

if TYPE_CHECKING:
    from google.cloud import pubsub_v1, storage

from shared.config import get_settings


def _credentials(emulator_variable: str) -> AnonymousCredentials | None:
    """Anonymous against an emulator; None (Application Default Credentials) against Google Cloud."""
    return AnonymousCredentials() if os.environ.get(emulator_variable) else None


@lru_cache(maxsize=None)
def firestore_client(project: str | None = None) -> firestore.Client:
    return firestore.Client(project=project or get_settings().project_id,
                            credentials=_credentials("FIRESTORE_EMULATOR_HOST"))


@lru_cache(maxsize=None)
def storage_client(project: str | None = None) -> storage.Client:
    from google.cloud import storage

    client = storage.Client(project=project or get_settings().project_id,
                            credentials=_credentials("STORAGE_EMULATOR_HOST"))
    _read_http_environment_once(client._http)
    return client


def _read_http_environment_once(session) -> None:
    """requests reads every environment variable for proxies and a CA bundle (and ~/.netrc) on each request: a
    fifth of on_upload's CPU per image. The environment of a process does not change, so read it here, as requests
    would: a CA bundle becomes the session's, and only a proxy or a netrc leaves requests reading it every time."""
    import urllib.request
    from pathlib import Path

    if urllib.request.getproxies() or os.environ.get("NETRC") or any(
            (Path.home() / name).exists() for name in (".netrc", "_netrc")):
        return  # proxies depend on each request's host (no_proxy): requests decides per request, as before
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


@lru_cache(maxsize=None)
def publisher_client() -> pubsub_v1.PublisherClient:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


@lru_cache(maxsize=None)
def subscriber_client() -> pubsub_v1.SubscriberClient:
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()


def reset_clients() -> None:
    """Forget the cached clients: for a process that moves to another (emulator) stack, e.g. a benchmark."""
    for factory in (firestore_client, storage_client, publisher_client, subscriber_client):
        factory.cache_clear()


def topic_path(topic: str, project: str | None = None) -> str:
    return f"projects/{project or get_settings().project_id}/topics/{topic}"


def subscription_path(subscription: str, project: str | None = None) -> str:
    return f"projects/{project or get_settings().project_id}/subscriptions/{subscription}"
