# The Firebase Storage bucket (shared/layout.py):
#   dataset/{model}/{label}/{file}       curated training images (service accounts only)
#   uploads/{model}/{uid}/{uuid}.{ext}   app captures (storage.rules: own uid only)
#   models/{model}/{version}/...         published models (signed-in users read)
#   quarantine/{original name}           rejected uploads, kept for inspection

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Legacy usage/storage logs are superseded by Cloud Audit Logs: admin activity is always logged, object-level Data Access logs are switched on with var.storage_data_access_logs (google_project_iam_audit_config.storage), no second bucket needed.
  project  = var.project_id
  name     = local.bucket_name
  location = var.bucket_location

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  # Overwrites keep the previous generation (the trainer's snapshot manifests
  # pin generations) until the noncurrent-version rule below removes it.
  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.storage_retention.soft_delete_retention_days * 86400
  }

  lifecycle_rule {
    condition {
      matches_prefix = ["quarantine/"]
      age            = var.storage_retention.quarantine_days
    }
    action {
      type = "Delete"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.storage_retention.uploads_days > 0 ? [var.storage_retention.uploads_days] : []
    content {
      condition {
        matches_prefix = ["uploads/"]
        age            = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  lifecycle_rule {
    condition {
      with_state                 = "ARCHIVED"
      days_since_noncurrent_time = var.storage_retention.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Object-level audit trail (who read or wrote which object), off by default: it
# logs every client upload and model download.
resource "google_project_iam_audit_config" "storage" {
  count   = var.storage_data_access_logs ? 1 : 0
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# Firebase SDKs (and storage.rules) apply only to buckets linked to Firebase.
resource "google_firebase_storage_bucket" "data" {
  provider  = google-beta
  count     = var.link_firebase_storage ? 1 : 0
  project   = var.project_id
  bucket_id = google_storage_bucket.data.name
}

# Object finalize -> Pub/Sub storage-events (JSON_API_V1: the data is the object
# resource), which pushes to on_upload. The local stack publishes the same message.
resource "google_storage_notification" "object_finalize" {
  bucket         = google_storage_bucket.data.name
  payload_format = "JSON_API_V1"
  topic          = module.topic["storage_events"].topic_id
  event_types    = ["OBJECT_FINALIZE"]

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_storage_events]
}

# Build artifacts of the functions (the zipped source), kept apart from user data.
resource "google_storage_bucket" "function_source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs generated from this repository; audit logs cover access, no access-log bucket needed.
  project  = var.project_id
  name     = "${var.project_id}-edgeloop-function-source"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  # Archives are named by content hash: Terraform deletes the old one when the
  # name changes; this rule clears versions left behind by soft overwrites.
  lifecycle_rule {
    condition {
      with_state                 = "ARCHIVED"
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}
