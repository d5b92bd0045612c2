# Earlier addresses of resources that moved: Terraform moves their state instead
# of destroying and recreating them. Keep these blocks while any deployment may
# still hold a state written before the move.

# The binding was one resource before check_drift shared it.
moved {
  from = google_storage_bucket_iam_member.on_upload_quarantines
  to   = google_storage_bucket_iam_member.on_upload_quarantines["on_upload"]
}

# --- one module call per function, topic and schedule became one for_each -------

moved {
  from = module.on_upload
  to   = module.event_function["on_upload"]
}

moved {
  from = module.on_feedback
  to   = module.event_function["on_feedback"]
}

moved {
  from = module.check_drift
  to   = module.event_function["check_drift"]
}

moved {
  from = module.launch_training
  to   = module.event_function["launch_training"]
}

moved {
  from = module.topic_storage_events
  to   = module.topic["storage_events"]
}

moved {
  from = module.topic_retrain_requests
  to   = module.topic["retrain_requests"]
}

moved {
  from = module.topic_drift_checks
  to   = module.topic["drift_checks"]
}

# Each schedule's jobs keep their keys (the model ids) inside the module.
moved {
  from = google_cloud_scheduler_job.drift_check
  to   = module.schedule["drift_check"].google_cloud_scheduler_job.this
}

moved {
  from = google_cloud_scheduler_job.weekly_retrain
  to   = module.schedule["weekly_retrain"].google_cloud_scheduler_job.this
}

# --- the Firestore and Storage rules became one for_each -------------------------

moved {
  from = google_firebaserules_ruleset.firestore
  to   = google_firebaserules_ruleset.rules["firestore"]
}

moved {
  from = google_firebaserules_ruleset.storage
  to   = google_firebaserules_ruleset.rules["storage"]
}

moved {
  from = google_firebaserules_release.firestore
  to   = google_firebaserules_release.rules["firestore"]
}

moved {
  from = google_firebaserules_release.storage
  to   = google_firebaserules_release.rules["storage"]
}
