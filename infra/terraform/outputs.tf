output "bucket" {
  description = "The Firebase Storage bucket (EDGELOOP_BUCKET); apps upload to gs://BUCKET/uploads/MODEL/UID/."
  value       = google_storage_bucket.data.name
}

output "topics" {
  description = "Topic ids, their dead-letter topics and the subscriptions that keep dead letters."
  value = {
    for key, topic in module.topic : key => {
      topic                    = topic.topic_name
      dead_letter_topic        = topic.dead_letter_topic_name
      dead_letter_subscription = topic.dead_letter_subscription_name
    }
  }
}

output "functions" {
  description = "Deployed functions by entry point: name, run.app URI and trigger (push subscription or Eventarc trigger)."
  value = {
    for entry_point, function in module.event_function : entry_point => {
      name              = function.name
      uri               = function.uri
      push_subscription = function.push_subscription
      eventarc_trigger  = function.eventarc_trigger
    }
  }
}

output "trainer_image" {
  description = "Image the trainer runs; build and push trainer_job/ to this name (see README.md)."
  value       = local.trainer_image
}

output "trainer_repository" {
  description = "Artifact Registry Docker repository host/path for docker push."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.trainer.repository_id}"
}

output "trainer_job" {
  description = "Full name of the Cloud Run job that runs the trainer (null with the vertex backend)."
  value       = var.trainer_backend == "cloud_run_job" ? google_cloud_run_v2_job.trainer[0].id : null
}

output "signing_key_secret" {
  description = "Secret Manager secret that must hold the Ed25519 model-signing private key (PEM)."
  value       = google_secret_manager_secret.signing_key.id
}

output "service_accounts" {
  description = "E-mail of every service account, by component and by trigger."
  value = {
    components = { for key, account in google_service_account.component : key => account.email }
    triggers   = { for key, account in google_service_account.trigger : key => account.email }
  }
}

output "settings_env" {
  description = "The EDGELOOP_ settings the components run with (e.g. to point the edgeloop CLI at this project)."
  value       = local.component_env
}
