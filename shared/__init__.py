"""Edgeloop's domain core, shared by the Cloud Functions, the trainer, the CLI and the client SDK.

Two layers. The modules directly in ``shared/`` are the pure core: rules,
statistics, layout, registry schema, configuration, event decoding; they import
no Google Cloud client (a test proves it), so devices and unit tests use them
as they are. ``shared.gcp`` is the adapter layer: every module that talks to
Firestore, Storage, Pub/Sub, Cloud Run or Vertex AI.
"""
