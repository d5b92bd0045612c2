"""The naive ingest handlers ``edgeloop bench ingest`` measures on_upload against, on the same stack.

``naive_ingest`` is what any first version of an upload counter does: take the storage notification from a
Pub/Sub push, create one document named after the object's generation (a redelivered notification finds it
and counts nothing), and increment one of several counter shards. No download, no validation, no statistics,
no label rules. ``naive_ingest_downloading`` does the same after the one thing validating cannot skip: reading
the bytes of exactly that generation, through the storage client on_upload uses. Both are served by
functions-framework exactly as the product's functions are; they are never deployed.
"""

from __future__ import annotations

import hashlib
import os
import random

import functions_framework
from cloudevents.http import CloudEvent
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

SHARDS = 16  # one hot document would serialize every increment; shards spread them
# target → (its documents, one per object generation; its counter shards): each counts the same objects once
COLLECTIONS = {"naive_ingest": ("naive_ingest", "naive_counter"),
               "naive_ingest_downloading": ("naive_downloaded", "naive_downloaded_counter")}
COUNTERS = {target: counter for target, (_, counter) in COLLECTIONS.items()}

_client: firestore.Client | None = None


def client() -> firestore.Client:
    global _client
    if _client is None:
        _client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    return _client


def _attributes(cloud_event: CloudEvent) -> dict[str, str]:
    return (cloud_event.data or {}).get("message", {}).get("attributes", {})


def _count_once(attributes: dict[str, str], target: str) -> None:
    collection, counter = COLLECTIONS[target]
    key = f"{attributes['objectId']}#{attributes['objectGeneration']}"
    db = client()
    try:
        db.collection(collection).document(hashlib.sha256(key.encode()).hexdigest()[:32]).create({"object": key})
    except AlreadyExists:
        return  # a redelivery: counted once already
    shard = db.collection(counter).document(str(random.randrange(SHARDS)))
    shard.set({"count": firestore.Increment(1)}, merge=True)


@functions_framework.cloud_event
def naive_ingest(cloud_event: CloudEvent) -> None:
    _count_once(_attributes(cloud_event), "naive_ingest")


@functions_framework.cloud_event
def naive_ingest_downloading(cloud_event: CloudEvent) -> None:
    from shared.gcp.clients import storage_client

    attributes = _attributes(cloud_event)
    storage_client().bucket(attributes["bucketId"]).blob(
        attributes["objectId"], generation=int(attributes["objectGeneration"])).download_as_bytes(raw_download=True)
    _count_once(attributes, "naive_ingest_downloading")
