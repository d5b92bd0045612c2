# Time-based triggers, one job per model (modules/model_schedule). Both publish
# the same JSON message as `edgeloop retrain MODEL`: {"model": ..., "reason":
# "schedule"}, to the topic named by its key in local.topic_names.

locals {
  schedules = {
    drift_check = {
      enabled     = var.schedules.enable_drift
      schedule    = var.schedules.drift_check
      topic       = "drift_checks"
      description = "Asks check_drift to compare recent inputs of %s with its baseline."
    }
    weekly_retrain = {
      enabled     = var.schedules.enable_retrain
      schedule    = var.schedules.weekly_retrain
      topic       = "retrain_requests"
      description = "Requests the scheduled retrain of %s (launch_training applies lock, debounce and cooldown)."
    }
  }
}

# Jobs named edgeloop-<key with hyphens>-<model>.
module "schedule" {
  source   = "./modules/model_schedule"
  for_each = local.schedules

  project_id  = var.project_id
  region      = var.region
  name_prefix = "edgeloop-${replace(each.key, "_", "-")}"
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = var.schedules.time_zone
  topic_id    = module.topic[each.value.topic].topic_id
  models      = each.value.enabled ? var.models : []

  depends_on = [google_project_service.enabled]
}
