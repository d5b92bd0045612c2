# The trainer container: built from trainer_job/Dockerfile, pushed to this
# repository, run by launch_training as a Cloud Run job execution (per-run
# arguments as overrides) or as a Vertex AI CustomJob with the same image.

resource "google_artifact_registry_repository" "trainer" {
  #checkov:skip=CKV_GCP_84:Holds only the trainer image built from this repository's code (no data or secrets baked in); Google-managed encryption at rest is sufficient.
  project       = var.project_id
  location      = var.region
  repository_id = "edgeloop"
  description   = "Edgeloop trainer images."
  format        = "DOCKER"

  # Keep the ten newest images and anything tagged; drop untagged layers after a week.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "604800s"
    }
  }

  depends_on = [google_project_service.enabled]
}

locals {
  trainer_image = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.trainer.repository_id}/trainer:${var.trainer_image_tag}"
}

# The Ed25519 model-signing key. Terraform creates the secret but never holds
# the key material (it would land in the state): add a version with gcloud,
# see README.md "Deploying to Google Cloud".
resource "google_secret_manager_secret" "signing_key" {
  project   = var.project_id
  secret_id = "edgeloop-model-signing-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

locals {
  # What a trainer gets instead of the key, on either backend: the name of the
  # secret's newest version. The trainer reads it with Secret Manager's client
  # as its own service account (roles/secretmanager.secretAccessor on this
  # secret only, iam.tf); no job spec, environment or state holds the key.
  signing_key_version = "${google_secret_manager_secret.signing_key.id}/versions/latest"

  # The Cloud Run job's own settings besides component_env (launch_training
  # overrides them per execution with the same values, shared/gcp/launchers.py;
  # an execution started by hand still signs with the secret's key).
  trainer_job_env = {
    EDGELOOP_TRAINING__LAUNCHER = "cloud_run_job"
    EDGELOOP_SIGNING_KEY_SECRET = local.signing_key_version
  }
}

resource "google_cloud_run_v2_job" "trainer" {
  count               = var.trainer_backend == "cloud_run_job" ? 1 : 0
  project             = var.project_id
  location            = var.region
  name                = "edgeloop-trainer"
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.component["trainer"].email
      timeout         = "${var.trainer.timeout_s}s"
      # A failed run is recorded as failed (lock released); launch_training or
      # the operator decides about another run, never a blind retry.
      max_retries = 0

      # GPU off by default. With var.trainer.gpu ("nvidia-l4") every execution
      # gets one GPU (and the image should be the GPU variant, trainer_job/Dockerfile
      # TRAINER_VARIANT=gpu); Cloud Run jobs run GPUs without zonal redundancy.
      dynamic "node_selector" {
        for_each = var.trainer.gpu == null ? [] : [var.trainer.gpu]
        content {
          accelerator = node_selector.value
        }
      }
      gpu_zonal_redundancy_disabled = var.trainer.gpu == null ? null : true

      containers {
        image = local.trainer_image

        resources {
          limits = merge(
            {
              cpu    = var.trainer.cpu
              memory = var.trainer.memory
            },
            var.trainer.gpu == null ? {} : { "nvidia.com/gpu" = "1" },
          )
        }

        # Plain settings only: the signing key is read by the trainer itself
        # (EDGELOOP_SIGNING_KEY_SECRET), never injected from Secret Manager.
        dynamic "env" {
          for_each = merge(local.component_env, local.trainer_job_env)
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  # The first execution must be able to read the key.
  depends_on = [google_secret_manager_secret_iam_member.trainer_reads_signing_key]
}
