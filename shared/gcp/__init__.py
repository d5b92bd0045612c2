"""The adapter layer: every module of ``shared`` that talks to a Google service.

Three levels; a module imports only from its own level or below
(``tests/unit/shared/test_layers.py`` checks it):

* ``clients``: the Google Cloud clients, pointed at the emulators when their variables are set;
* stores, one per kind of data: ``images`` (image, confirmation and quarantine documents),
  ``model_registry`` (model and version documents, artifacts), ``tallies`` (feedback counts),
  ``runs`` (run documents), ``training_lock`` (the training-control document), ``bus`` (Pub/Sub
  messages other than retrain requests), ``launchers`` (Cloud Run Jobs, Vertex AI, a local
  subprocess). A store may build on another (publishing a version ends its run under the lock);
* use cases, composing stores and the pure rules: one per entry point, ``ingest`` (on_upload),
  ``feedback`` (on_feedback), ``tick`` (check_drift), ``launch`` (launch_training), ``dead_letters``
  (the CLI), and the parts they share: ``release`` (the canary judge, also the operator's promote and
  rollback), ``drift``, ``reconcile`` (re-runs ``ingest`` for lost events) and ``retrain_requests``
  (every retrain request is published there, each cause once) and ``watch`` (the tick's look at each
  running cloud execution).
"""
