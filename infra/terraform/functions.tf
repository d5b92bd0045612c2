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

  # What launch_training needs to start the trainer (shared/config.py Training),
  # and the signing key's Secret Manager name, which it passes on to every
  # trainer it starts (Cloud Run or Vertex AI). The function cannot read the key.
  launcher_env = {
    EDGELOOP_SIGNING_KEY_SECRET               = local.signing_key_version
    EDGELOOP_TRAINING__LAUNCHER               = var.trainer_backend
    EDGELOOP_TRAINING__REGION                 = var.region
    EDGELOOP_TRAINING__CLOUD_RUN_JOB          = var.trainer_backend == "cloud_run_job" ? google_cloud_run_v2_job.trainer[0].name : ""
    EDGELOOP_TRAINING__TRAINER_IMAGE          = local.trainer_image
    EDGELOOP_TRAINING__VERTEX_MACHINE_TYPE    = var.trainer.vertex_machine_type
    EDGELOOP_TRAINING__VERTEX_SERVICE_ACCOUNT = google_service_account.component["trainer"].email
    # Vertex AI accelerators for every CustomJob ("": CPU only); a Cloud Run job's GPU is in the job (trainer.tf).
    EDGELOOP_TRAINING__VERTEX_ACCELERATOR_TYPE  = var.trainer.vertex_accelerator_type
    EDGELOOP_TRAINING__VERTEX_ACCELERATOR_COUNT = tostring(var.trainer.vertex_accelerator_count)
  }
}

# The functions of functions/main.py by entry point. Every entry has the same
# attributes, null where unused; event_function's typed variables check them:
#   description        string: what the function does
#   topic              string: key of local.topic_names whose topic pushes to it
#   firestore_trigger  object: the Eventarc Firestore trigger (variable firestore_trigger)
#   environment        map(string): its EDGELOOP_* settings
# Exactly one of topic and firestore_trigger is set (the module checks it).
locals {
  functions = {
    # Object finalize notifications (storage-events) -> validate, register, count.
    on_upload = {
      description       = "Validates and registers each finalized object once; new-data threshold -> retrain request."
      topic             = "storage_events"
      firestore_trigger = null
      environment       = local.component_env
    }
    # Document created under models/{model}/feedback/ -> success rate, rollout.
    on_feedback = {
      description = "Aggregates feedback per model version; low success rate -> retrain request; canary -> advance or roll back."
      topic       = null
      firestore_trigger = {
        event_type = "google.cloud.firestore.document.v1.created"
        database   = "(default)"
        document   = "models/{model}/feedback/{feedbackId}"
        region     = var.firestore_location
      }
      environment = local.component_env
    }
    # Cloud Scheduler -> drift-checks -> compare recent inputs with the baseline.
    check_drift = {
      description       = "Compares recent inputs with the production version's baseline statistics; drift -> retrain request."
      topic             = "drift_checks"
      firestore_trigger = null
      environment       = local.component_env
    }
    # retrain-requests -> lock, debounce, cooldown, create the run, start the trainer.
    # Only it starts trainers, so only it gets the launcher settings.
    launch_training = {
      description       = "Turns retrain requests into at most one run per model and starts the trainer job."
      topic             = "retrain_requests"
      firestore_trigger = null
      environment       = merge(local.component_env, local.launcher_env)
    }
  }
}

# One function per entry, named edgeloop-<entry point with hyphens>, running and
# triggered as its own service accounts (iam.tf).
module "event_function" {
  source   = "./modules/event_function"
  for_each = local.functions

  project_id  = var.project_id
  region      = var.region
  name        = "edgeloop-${replace(each.key, "_", "-")}"
  entry_point = each.key
  description = each.value.description
  runtime     = var.function_runtime
  limits      = try(var.function_limits[each.key], {})

  source_archive                = local.functions_source
  build_service_account_id      = google_service_account.component["function_build"].id
  service_account_email         = google_service_account.component[each.key].email
  trigger_service_account_email = google_service_account.trigger[each.key].email
  pubsub_service_agent          = google_project_service_identity.pubsub.email
  environment_variables         = each.value.environment

  pubsub_trigger = each.value.topic == null ? null : merge(local.push_delivery, {
    topic_id             = module.topic[each.value.topic].topic_id
    dead_letter_topic_id = module.topic[each.value.topic].dead_letter_topic_id
  })
  firestore_trigger = each.value.firestore_trigger

  # on_feedback's Eventarc trigger needs the database; every function uses it.
  depends_on = [google_project_service.enabled, google_project_iam_member.function_builder, google_firestore_database.default]
}
