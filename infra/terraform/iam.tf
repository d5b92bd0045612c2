# One service account per component and per trigger; every role is bound on the
# single resource it is needed for. Firestore and Cloud Build roles exist only
# at project level: the Firestore one is narrowed to the (default) database by
# an IAM condition. README.md lists every binding.

locals {
  components = {
    on_upload       = { id = "edgeloop-fn-upload", what = "on_upload function runtime" }
    on_feedback     = { id = "edgeloop-fn-feedback", what = "on_feedback function runtime" }
    check_drift     = { id = "edgeloop-fn-drift", what = "check_drift function runtime" }
    launch_training = { id = "edgeloop-fn-launch", what = "launch_training function runtime" }
    trainer         = { id = "edgeloop-trainer", what = "trainer job (Cloud Run job or Vertex AI CustomJob)" }
    function_build  = { id = "edgeloop-fn-build", what = "Cloud Build of the function sources" }
  }
  triggers = {
    on_upload       = "edgeloop-trg-upload"
    on_feedback     = "edgeloop-trg-feedback"
    check_drift     = "edgeloop-trg-drift"
    launch_training = "edgeloop-trg-launch"
  }

  firestore_users     = ["on_upload", "on_feedback", "check_drift", "launch_training", "trainer"]
  retrain_publishers  = ["on_upload", "on_feedback", "check_drift"]
  firestore_database  = "projects/${var.project_id}/databases/(default)"
  bucket_object_names = "projects/_/buckets/${google_storage_bucket.data.name}/objects"
}

resource "google_service_account" "component" {
  for_each     = local.components
  project      = var.project_id
  account_id   = each.value.id
  display_name = "Edgeloop ${each.value.what}"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "trigger" {
  for_each     = local.triggers
  project      = var.project_id
  account_id   = each.value
  display_name = "Edgeloop ${each.key} trigger (invokes that function only)"
  depends_on   = [google_project_service.enabled]
}

# --- Firestore: read/write documents of the (default) database only -------------

resource "google_project_iam_member" "firestore_user" {
  for_each = toset(local.firestore_users)
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = google_service_account.component[each.key].member

  condition {
    title       = "edgeloop-default-database"
    description = "Only the (default) Firestore database."
    expression  = "resource.name == \"${local.firestore_database}\""
  }
}

# --- Storage: the data bucket ---------------------------------------------------

# on_upload reads each new object; the trainer its snapshot and the production
# model; check_drift's tick lists the objects of each model to ingest those no
# event was handled for (shared/gcp/reconcile.py), with on_upload's own code.
resource "google_storage_bucket_iam_member" "data_reader" {
  for_each = toset(["on_upload", "check_drift", "trainer"])
  bucket   = google_storage_bucket.data.name
  role     = "roles/storage.objectViewer"
  member   = google_service_account.component[each.key].member
}

# on_upload (and check_drift's reconciliation, which runs the same ingest)
# copies rejected objects to quarantine/ and deletes rejected app uploads:
# write and delete there and under uploads/, nowhere else (dataset/ and
# models/ stay untouchable; a rejected dataset/ object stays in place,
# shared/gcp/ingest.py knows not to delete it).
resource "google_storage_bucket_iam_member" "on_upload_quarantines" {
  for_each = toset(["on_upload", "check_drift"])
  bucket   = google_storage_bucket.data.name
  role     = "roles/storage.objectUser"
  member   = google_service_account.component[each.key].member

  condition {
    title       = "edgeloop-uploads-and-quarantine"
    description = "Objects under uploads/ and quarantine/ only."
    expression  = "resource.name.startsWith(\"${local.bucket_object_names}/uploads/\") || resource.name.startsWith(\"${local.bucket_object_names}/quarantine/\")"
  }
}

# The trainer publishes models/{model}/{version}/...: create only, so a
# published model can never be overwritten in place.
resource "google_storage_bucket_iam_member" "trainer_publishes_models" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectCreator"
  member = google_service_account.component["trainer"].member

  condition {
    title       = "edgeloop-models-prefix"
    description = "Objects under models/ only."
    expression  = "resource.name.startsWith(\"${local.bucket_object_names}/models/\")"
  }
}

# --- Pub/Sub --------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "retrain_publisher" {
  for_each = toset(local.retrain_publishers)
  project  = var.project_id
  topic    = module.topic["retrain_requests"].topic_name
  role     = "roles/pubsub.publisher"
  member   = google_service_account.component[each.key].member
}

# A function that receives a message it can never decode forwards it, with the
# reason, to the dead-letter topic of the topic it came from
# (shared/dead_letter.py): each may publish to that one dead-letter topic only.
locals {
  dead_letter_publishers = {
    on_upload       = module.topic["storage_events"].dead_letter_topic_name
    check_drift     = module.topic["drift_checks"].dead_letter_topic_name
    launch_training = module.topic["retrain_requests"].dead_letter_topic_name
  }
}

resource "google_pubsub_topic_iam_member" "malformed_to_dead_letter" {
  for_each = local.dead_letter_publishers
  project  = var.project_id
  topic    = each.value
  role     = "roles/pubsub.publisher"
  member   = google_service_account.component[each.key].member
}

resource "google_pubsub_topic_iam_member" "gcs_publishes_storage_events" {
  project = var.project_id
  topic   = module.topic["storage_events"].topic_name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# --- launch_training starts the trainer ----------------------------------------

resource "google_cloud_run_v2_job_iam_member" "launcher_runs_trainer" {
  count    = var.trainer_backend == "cloud_run_job" ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.trainer[0].name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = google_service_account.component["launch_training"].member
}

# Vertex AI CustomJobs have no per-resource IAM before they exist: the role is
# project-level, and the launcher may only run them as the trainer account.
resource "google_project_iam_member" "launcher_creates_vertex_jobs" {
  count   = var.trainer_backend == "vertex" ? 1 : 0
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = google_service_account.component["launch_training"].member
}

resource "google_service_account_iam_member" "launcher_acts_as_trainer" {
  count              = var.trainer_backend == "vertex" ? 1 : 0
  service_account_id = google_service_account.component["trainer"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.component["launch_training"].member
}

# --- check_drift's tick watches the running trainer --------------------------------
# It asks the backend about each running run's execution and ends a run whose
# execution failed or was cancelled (shared/gcp/watch.py): read access only.

resource "google_cloud_run_v2_job_iam_member" "tick_watches_trainer" {
  count    = var.trainer_backend == "cloud_run_job" ? 1 : 0
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.trainer[0].name
  role     = "roles/run.viewer"
  member   = google_service_account.component["check_drift"].member
}

resource "google_project_iam_member" "tick_watches_vertex_jobs" {
  count   = var.trainer_backend == "vertex" ? 1 : 0
  project = var.project_id
  role    = "roles/aiplatform.viewer"
  member  = google_service_account.component["check_drift"].member
}

# --- the trainer ------------------------------------------------------------------

resource "google_secret_manager_secret_iam_member" "trainer_reads_signing_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.signing_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.component["trainer"].member
}

# --- building the functions -------------------------------------------------------

# A build writes its logs and pushes the function image to the gcf-artifacts
# repository, which Cloud Functions creates on first deploy: both roles exist
# only at project level. (roles/cloudbuild.builds.builder would also do, but it
# carries service-account impersonation rights the build never needs.)
resource "google_project_iam_member" "function_builder" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = google_service_account.component["function_build"].member
}

resource "google_storage_bucket_iam_member" "function_build_reads_source" {
  bucket = google_storage_bucket.function_source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.component["function_build"].member
}
