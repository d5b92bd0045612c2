"""Edgeloop's domain core, shared by the Cloud Functions, the trainer and the CLI.

Pure modules (config, layout, events, errors) import no cloud client; the
modules that talk to Firestore, Storage and Pub/Sub are named ``gcp_*``.
"""
