# The four Cloud Functions of functions/main.py, one per concern, built from one
# source archive: main.py at the root, the pinned requirements.txt, and the
# shared/ package (functions never import trainer_job/ or TensorFlow).

data "archive_file" "functions_source" {
  type        = "zip"
  output_path = "${path.module}/.build/functions-source.zip"

  source {
    filename = "main.py"
    content  = file("${local.repo_root}/functions/main.py")
  }

  source {
    filename = "requirements.txt"
    content  = file("${local.repo_root}/functions/requirements.txt")
  }

  dynamic "source" {
    for_each = fileset("${local.repo_root}/shared", "**/*.py")
    content {
      filename = "shared/${source.value}"
      content  = file("${local.repo_root}/shared/${source.value}")
    }
  }
}

# Named by content hash: any change to the code or its pins is a new object,
# which makes every function rebuild and redeploy.
resource "google_storage_bucket_object" "functions_source" {
  bucket = google_storage_bucket.function_source.name
  name   = "functions/source-${data.archive_file.functions_source.output_sha256}.zip"
  source = data.archive_file.functions_source.output_path
}

locals {
  functions_source = {
    bucket = google_storage_bucket.function_source.name
    object = google_storage_bucket_object.functions_source.name
  }

  push_delivery = {
    max_delivery_attempts = var.delivery.max_delivery_attempts
    ack_deadline_s        = var.delivery.ack_deadline_s
    min_backoff_s         = var.delivery.min_backoff_s
    max_backoff_s         = var.delivery.max_backoff_s
  }

  # What launch_training needs to start the trainer (shared/config.py Training).
  launcher_env = {
    EDGELOOP_TRAINING__LAUNCHER               = var.trainer_backend
    EDGELOOP_TRAINING__REGION                 = var.region
    EDGELOOP_TRAINING__CLOUD_RUN_JOB          = var.trainer_backend == "cloud_run_job" ? google_cloud_run_v2_job.trainer[0].name : ""
    EDGELOOP_TRAINING__TRAINER_IMAGE          = local.trainer_image
    EDGELOOP_TRAINING__VERTEX_MACHINE_TYPE    = var.trainer.vertex_machine_type
    EDGELOOP_TRAINING__VERTEX_SERVICE_ACCOUNT = google_service_account.component["trainer"].email
  }
}

# Object finalize notifications (storage-events) -> validate, register, count.
module "on_upload" {
  source = "./modules/event_function"

  project_id  = var.project_id
  region      = var.region
  name        = "edgeloop-on-upload"
  entry_point = "on_upload"
  description = "Validates and registers each finalized object once; new-data threshold -> retrain request."
  runtime     = var.function_runtime
  limits      = try(var.function_limits["on_upload"], {})

  source_archive                = local.functions_source
  build_service_account_id      = google_service_account.component["function_build"].id
  service_account_email         = google_service_account.component["on_upload"].email
  trigger_service_account_email = google_service_account.trigger["on_upload"].email
  pubsub_service_agent          = google_project_service_identity.pubsub.email
  environment_variables         = local.component_env

  pubsub_trigger = merge(local.push_delivery, {
    topic_id             = module.topic_storage_events.topic_id
    dead_letter_topic_id = module.topic_storage_events.dead_letter_topic_id
  })

  depends_on = [google_project_service.enabled, google_project_iam_member.function_builder]
}

# Document created under models/{model}/feedback/ -> success rate, rollout.
module "on_feedback" {
  source = "./modules/event_function"

  project_id  = var.project_id
  region      = var.region
  name        = "edgeloop-on-feedback"
  entry_point = "on_feedback"
  description = "Aggregates feedback per model version; low success rate -> retrain request; canary -> advance or roll back."
  runtime     = var.function_runtime
  limits      = try(var.function_limits["on_feedback"], {})

  source_archive                = local.functions_source
  build_service_account_id      = google_service_account.component["function_build"].id
  service_account_email         = google_service_account.component["on_feedback"].email
  trigger_service_account_email = google_service_account.trigger["on_feedback"].email
  pubsub_service_agent          = google_project_service_identity.pubsub.email
  environment_variables         = local.component_env

  firestore_trigger = {
    event_type = "google.cloud.firestore.document.v1.created"
    database   = "(default)"
    document   = "models/{model}/feedback/{feedbackId}"
    region     = var.firestore_location
  }

  depends_on = [google_project_service.enabled, google_project_iam_member.function_builder, google_firestore_database.default]
}

# Cloud Scheduler -> drift-checks -> compare recent inputs with the baseline.
module "check_drift" {
  source = "./modules/event_function"

  project_id  = var.project_id
  region      = var.region
  name        = "edgeloop-check-drift"
  entry_point = "check_drift"
  description = "Compares recent inputs with the production version's baseline statistics; drift -> retrain request."
  runtime     = var.function_runtime
  limits      = try(var.function_limits["check_drift"], {})

  source_archive                = local.functions_source
  build_service_account_id      = google_service_account.component["function_build"].id
  service_account_email         = google_service_account.component["check_drift"].email
  trigger_service_account_email = google_service_account.trigger["check_drift"].email
  pubsub_service_agent          = google_project_service_identity.pubsub.email
  environment_variables         = local.component_env

  pubsub_trigger = merge(local.push_delivery, {
    topic_id             = module.topic_drift_checks.topic_id
    dead_letter_topic_id = module.topic_drift_checks.dead_letter_topic_id
  })

  depends_on = [google_project_service.enabled, google_project_iam_member.function_builder]
}

# retrain-requests -> lock, debounce, cooldown, create the run, start the trainer.
module "launch_training" {
  source = "./modules/event_function"

  project_id  = var.project_id
  region      = var.region
  name        = "edgeloop-launch-training"
  entry_point = "launch_training"
  description = "Turns retrain requests into at most one run per model and starts the trainer job."
  runtime     = var.function_runtime
  limits      = try(var.function_limits["launch_training"], {})

  source_archive                = local.functions_source
  build_service_account_id      = google_service_account.component["function_build"].id
  service_account_email         = google_service_account.component["launch_training"].email
  trigger_service_account_email = google_service_account.trigger["launch_training"].email
  pubsub_service_agent          = google_project_service_identity.pubsub.email
  environment_variables         = merge(local.component_env, local.launcher_env)

  pubsub_trigger = merge(local.push_delivery, {
    topic_id             = module.topic_retrain_requests.topic_id
    dead_letter_topic_id = module.topic_retrain_requests.dead_letter_topic_id
  })

  depends_on = [google_project_service.enabled, google_project_iam_member.function_builder]
}
