# Time-based triggers, one job per model. Both publish the same JSON message as
# `edgeloop retrain MODEL`: {"model": ..., "reason": "schedule"}. Cloud
# Scheduler publishes as its own service agent (roles/cloudscheduler.serviceAgent).

resource "google_cloud_scheduler_job" "drift_check" {
  for_each    = var.schedules.enable_drift ? toset(var.models) : toset([])
  project     = var.project_id
  region      = var.region
  name        = "edgeloop-drift-check-${each.key}"
  description = "Asks check_drift to compare recent inputs of ${each.key} with its baseline."
  schedule    = var.schedules.drift_check
  time_zone   = var.schedules.time_zone

  pubsub_target {
    topic_name = module.topic_drift_checks.topic_id
    data       = base64encode(jsonencode({ model = each.key, reason = "schedule" }))
    attributes = { origin = "cloud-scheduler" }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_scheduler_job" "weekly_retrain" {
  for_each    = var.schedules.enable_retrain ? toset(var.models) : toset([])
  project     = var.project_id
  region      = var.region
  name        = "edgeloop-weekly-retrain-${each.key}"
  description = "Requests the scheduled retrain of ${each.key} (launch_training applies lock, debounce and cooldown)."
  schedule    = var.schedules.weekly_retrain
  time_zone   = var.schedules.time_zone

  pubsub_target {
    topic_name = module.topic_retrain_requests.topic_id
    data       = base64encode(jsonencode({ model = each.key, reason = "schedule" }))
    attributes = { origin = "cloud-scheduler" }
  }

  depends_on = [google_project_service.enabled]
}
