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
    if not _environment_configures_http():
        # requests otherwise reads every environment variable for proxies (and ~/.netrc) on each request: a fifth
        # of on_upload's CPU per image, spent finding nothing. Its client session is made once, here.
        client._http.trust_env = False
    return client


_HTTP_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC")


def _environment_configures_http() -> bool:
    """Whether requests would find anything in this process's environment: a proxy, a CA bundle or a netrc."""
    import urllib.request
    from pathlib import Path

    return (bool(urllib.request.getproxies()) or any(os.environ.get(name) for name in _HTTP_ENVIRONMENT)
            or any((Path.home() / name).exists() for name in (".netrc", "_netrc")))


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
