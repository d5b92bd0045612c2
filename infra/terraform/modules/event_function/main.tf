# One 2nd-gen Cloud Function with exactly one trigger and its own identities:
# a runtime service account (given) and a trigger service account that may
# invoke this function and nothing else.

locals {
  pubsub = var.pubsub_trigger != null
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account_id

    source {
      storage_source {
        bucket = var.source_archive.bucket
        object = var.source_archive.object
      }
    }
  }

  service_config {
    service_account_email            = var.service_account_email
    environment_variables            = var.environment_variables
    max_instance_count               = var.limits.max_instances
    min_instance_count               = var.limits.min_instances
    available_memory                 = var.limits.memory
    available_cpu                    = var.limits.cpu
    timeout_seconds                  = var.limits.timeout_s
    max_instance_request_concurrency = var.limits.concurrency
    # Pub/Sub push and Eventarc in the same project count as internal traffic.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
  }

  dynamic "event_trigger" {
    for_each = var.firestore_trigger == null ? [] : [var.firestore_trigger]
    content {
      trigger_region        = event_trigger.value.region
      event_type            = event_trigger.value.event_type
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = var.trigger_service_account_email

      event_filters {
        attribute = "database"
        value     = event_trigger.value.database
      }
      event_filters {
        attribute = "document"
        value     = event_trigger.value.document
        operator  = "match-path-pattern"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = (var.pubsub_trigger == null) != (var.firestore_trigger == null)
      error_message = "Give the function exactly one trigger: pubsub_trigger or firestore_trigger."
    }
  }
}

# The trigger identity may invoke this function's Cloud Run service only.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.trigger_service_account_email}"
}

# Pub/Sub mints the OIDC tokens of push requests (and Eventarc's Pub/Sub
# transport) as the trigger identity.
resource "google_service_account_iam_member" "token_creator" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.trigger_service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

# Eventarc requires its trigger identity to hold eventReceiver; the role only
# exists at project level.
resource "google_project_iam_member" "event_receiver" {
  count   = var.firestore_trigger == null ? 0 : 1
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${var.trigger_service_account_email}"
}

resource "google_pubsub_subscription" "push" {
  count                = local.pubsub ? 1 : 0
  project              = var.project_id
  name                 = "${var.name}-push"
  topic                = var.pubsub_trigger.topic_id
  ack_deadline_seconds = var.pubsub_trigger.ack_deadline_s

  push_config {
    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri
    oidc_token {
      service_account_email = var.trigger_service_account_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  dead_letter_policy {
    dead_letter_topic     = var.pubsub_trigger.dead_letter_topic_id
    max_delivery_attempts = var.pubsub_trigger.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "${var.pubsub_trigger.min_backoff_s}s"
    maximum_backoff = "${var.pubsub_trigger.max_backoff_s}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}

# Forwarding to the dead-letter topic needs the service agent to be a
# subscriber of the source subscription.
resource "google_pubsub_subscription_iam_member" "dead_letter_source" {
  count        = local.pubsub ? 1 : 0
  project      = var.project_id
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}
