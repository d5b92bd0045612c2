# Edgeloop production stack: wiring shared by the files of this module.
#
#   storage.tf     the Firebase Storage bucket, its lifecycle and its notification
#   firestore.tf   the Firestore database, indexes, and both Firebase rules releases
#   pubsub.tf      topics with dead-letter topics (modules/pubsub_topic_with_dlq)
#   functions.tf   the source archive and the four functions (modules/event_function)
#   trainer.tf     Artifact Registry, the Cloud Run job, the signing-key secret
#   scheduler.tf   the drift-check and weekly-retrain schedules (modules/model_schedule)
#   iam.tf         one service account per component, each role on one resource
#   monitoring.tf  log-based metrics and alert policies
#   moved.tf       earlier addresses of resources, so a deployment's state follows them

locals {
  repo_root   = "${path.module}/../.."
  bucket_name = coalesce(var.bucket_name, "${var.project_id}-edgeloop")

  # The settings every component reads (shared/config.py, EDGELOOP_ prefix,
  # nested fields joined with __). Settings not listed keep the code's defaults:
  # tests/infra/test_terraform.py holds the list, with the reason for each.
  settings_env = {
    EDGELOOP_PROJECT_ID                 = var.project_id
    EDGELOOP_BUCKET                     = google_storage_bucket.data.name
    EDGELOOP_MODELS                     = jsonencode(var.models)
    EDGELOOP_TOPICS__STORAGE_EVENTS     = module.topic["storage_events"].topic_name
    EDGELOOP_TOPICS__RETRAIN_REQUESTS   = module.topic["retrain_requests"].topic_name
    EDGELOOP_TOPICS__DRIFT_CHECKS       = module.topic["drift_checks"].topic_name
    EDGELOOP_TOPICS__DEAD_LETTER_SUFFIX = var.topics.dead_letter_suffix
  }
  # Operator overrides first, so the wired values above always win.
  component_env = merge(var.settings_overrides, local.settings_env)
}

# --- APIs -----------------------------------------------------------------------

locals {
  services = concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firebase.googleapis.com",
    "firebaserules.googleapis.com",
    "firebasestorage.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ], var.trainer_backend == "vertex" ? ["aiplatform.googleapis.com"] : [])
}

resource "google_project_service" "enabled" {
  for_each = toset(local.services)
  project  = var.project_id
  service  = each.value
  # Other workloads of the project may use the same APIs: never switch them off.
  disable_on_destroy = false
}

# --- Google-managed service agents -----------------------------------------------

# Pub/Sub's service agent: mints push OIDC tokens and forwards dead letters.
resource "google_project_service_identity" "pubsub" {
  provider   = google-beta
  project    = var.project_id
  service    = "pubsub.googleapis.com"
  depends_on = [google_project_service.enabled]
}

# Cloud Storage's service agent: publishes the bucket notifications.
data "google_storage_project_service_account" "gcs" {
  project    = var.project_id
  depends_on = [google_project_service.enabled]
}
