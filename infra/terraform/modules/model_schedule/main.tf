# One Cloud Scheduler job per model, each publishing the message
# `edgeloop retrain MODEL` sends, {"model": MODEL, "reason": "schedule"}, to a
# topic on a cron schedule. Cloud Scheduler publishes as its own service agent
# (roles/cloudscheduler.serviceAgent).

resource "google_cloud_scheduler_job" "this" {
  for_each    = toset(var.models)
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-${each.key}"
  description = format(var.description, each.key)
  schedule    = var.schedule
  time_zone   = var.time_zone

  pubsub_target {
    topic_name = var.topic_id
    data       = base64encode(jsonencode({ model = each.key, reason = "schedule" }))
    attributes = { origin = "cloud-scheduler" }
  }
}
