"""The adapter layer: every module of ``shared`` that talks to a Google service.

Three levels, each importing only the ones below it:

* ``clients``: the Google Cloud clients, pointed at the emulators when their variables are set;
* stores, one per kind of data: ``images`` (image, confirmation and quarantine documents),
  ``model_registry`` (model and version documents, artifacts), ``tallies`` (feedback counts),
  ``runs`` (run documents), ``training_lock`` (the training-control document), ``bus`` (Pub/Sub
  messages), ``launchers`` (Cloud Run Jobs, Vertex AI, a local subprocess);
* use cases, one per entry point, composing stores and the pure rules: ``ingest`` (on_upload),
  ``feedback`` (on_feedback) with ``release`` (the canary judge, also the operator's promote and
  rollback), ``tick`` (check_drift: ``drift``, ``reconcile``), ``launch`` (launch_training),
  ``retrain_requests`` (the rules that ask for a retrain, once per cause), ``dead_letters``.
"""
