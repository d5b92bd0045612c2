# One topic per event stream of shared/config.py Topics, each with a dead-letter
# topic (<topic><dead_letter_suffix>) and a subscription that keeps dead letters.
# The push subscriptions (retry policy, dead-letter policy) belong to the
# consuming functions: see functions.tf.

locals {
  # Topic ids by their field in shared/config.py Topics (and in var.topics).
  topic_names = {
    storage_events   = var.topics.storage_events
    retrain_requests = var.topics.retrain_requests
    drift_checks     = var.topics.drift_checks
  }
}

module "topic" {
  source   = "./modules/pubsub_topic_with_dlq"
  for_each = local.topic_names

  project_id              = var.project_id
  name                    = each.value
  dead_letter_suffix      = var.topics.dead_letter_suffix
  dead_letter_retention_s = var.dead_letter_retention_days * 86400
  pubsub_service_agent    = google_project_service_identity.pubsub.email

  depends_on = [google_project_service.enabled]
}
