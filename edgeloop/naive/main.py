"""The naive ingest handler ``edgeloop bench ingest`` measures on_upload against, on the same stack.

What any first version of an upload counter does: take the storage notification from a Pub/Sub push, create
one document named after the object's generation (a redelivered notification finds it and counts nothing),
and increment one of several counter shards. No download, no validation, no statistics, no label rules.
It is served by functions-framework exactly as the product's functions are; it is never deployed.
"""

from __future__ import annotations

import hashlib
import os
import random

import functions_framework
from cloudevents.http import CloudEvent
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

COLLECTION = "naive_ingest"
COUNTER = "naive_counter"
SHARDS = 16  # one hot document would serialize every increment; shards spread them

_client: firestore.Client | None = None


def client() -> firestore.Client:
    global _client
    if _client is None:
        _client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    return _client


@functions_framework.cloud_event
def naive_ingest(cloud_event: CloudEvent) -> None:
    attributes = (cloud_event.data or {}).get("message", {}).get("attributes", {})
    key = f"{attributes['objectId']}#{attributes['objectGeneration']}"
    db = client()
    try:
        db.collection(COLLECTION).document(hashlib.sha256(key.encode()).hexdigest()[:32]).create({"object": key})
    except AlreadyExists:
        return  # a redelivery: counted once already
    shard = db.collection(COUNTER).document(str(random.randrange(SHARDS)))
    shard.set({"count": firestore.Increment(1)}, merge=True)
