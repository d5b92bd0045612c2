"""edgeloop.opcount counts what the product's clients really send to the local stack, as Google bills it."""

from __future__ import annotations

import uuid

from google.cloud import firestore

from edgeloop.opcount import counting
from shared import layout
from shared.gcp.clients import firestore_client, publisher_client, storage_client, topic_path


def test_each_operation_is_counted_as_it_is_billed(local_stack):
    model = f"opcount-{uuid.uuid4().hex[:6]}"
    with counting(local_stack.project_id) as counter:
        db = firestore_client(local_stack.project_id)
        batch = db.batch()
        for i in range(3):
            batch.set(db.document(layout.feedback_doc(model, f"r{i}")), {"model_version": "v1", "correct": True})
        batch.commit()  # one commit, three documents written
        after_writes = counter.snapshot()
        db.document(layout.feedback_doc(model, "r0")).get()  # a document
        firestore_client().document(layout.feedback_doc(model, "missing")).get()  # a missing one: billed as a read too
        after_lookups = counter.snapshot()
        feedback = db.collection(layout.feedback_collection(model))
        assert len(list(feedback.stream())) == 3  # a query returning three documents
        list(feedback.where(filter=firestore.FieldFilter("correct", "==", False)).stream())  # none: one read
        after_queries = counter.snapshot()
        feedback.count().get()
        db.document(layout.feedback_doc(model, "r2")).delete()
        after_count = counter.snapshot()
        blob = storage_client(local_stack.project_id).bucket(local_stack.bucket).blob(f"opcount/{model}.txt")
        blob.upload_from_string(b"x")  # class A
        storage_client().bucket(local_stack.bucket).blob(blob.name).download_as_bytes()  # class B, the other cached client
        after_storage = counter.snapshot()
        topic = publisher_client().create_topic(name=topic_path(model, local_stack.project_id)).name  # nobody's topic
        publisher_client().publish(topic, b"{}").result(30)
        final = counter.snapshot()

    assert after_writes["firestore.writes"] == 3 and after_writes["firestore.rpc.Commit"] == 1
    assert (after_lookups - after_writes)["firestore.reads"] == 2
    assert (after_queries - after_lookups)["firestore.reads"] == 3 + 1
    assert (after_count - after_queries)["firestore.aggregations"] == 1
    assert (after_count - after_queries)["firestore.deletes"] == 1 and (after_count - after_queries)["firestore.writes"] == 0
    assert (after_storage - after_count)["storage.class_a"] == 1 and (after_storage - after_count)["storage.class_b"] >= 1
    assert (final - after_storage)["pubsub.messages"] == 1
