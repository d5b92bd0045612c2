# One topic per event stream of shared/config.py Topics, each with a dead-letter
# topic (<topic><dead_letter_suffix>) and a subscription that keeps dead letters.
# The push subscriptions (retry policy, dead-letter policy) belong to the
# consuming functions: see functions.tf.

module "topic_storage_events" {
  source = "./modules/pubsub_topic_with_dlq"

  project_id              = var.project_id
  name                    = var.topics.storage_events
  dead_letter_suffix      = var.topics.dead_letter_suffix
  dead_letter_retention_s = var.dead_letter_retention_days * 86400
  pubsub_service_agent    = google_project_service_identity.pubsub.email

  depends_on = [google_project_service.enabled]
}

module "topic_retrain_requests" {
  source = "./modules/pubsub_topic_with_dlq"

  project_id              = var.project_id
  name                    = var.topics.retrain_requests
  dead_letter_suffix      = var.topics.dead_letter_suffix
  dead_letter_retention_s = var.dead_letter_retention_days * 86400
  pubsub_service_agent    = google_project_service_identity.pubsub.email

  depends_on = [google_project_service.enabled]
}

module "topic_drift_checks" {
  source = "./modules/pubsub_topic_with_dlq"

  project_id              = var.project_id
  name                    = var.topics.drift_checks
  dead_letter_suffix      = var.topics.dead_letter_suffix
  dead_letter_retention_s = var.dead_letter_retention_days * 86400
  pubsub_service_agent    = google_project_service_identity.pubsub.email

  depends_on = [google_project_service.enabled]
}
