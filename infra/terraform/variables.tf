# Inputs of the Edgeloop production stack. Defaults that mirror shared/config.py
# (topic names, delivery settings) are checked against it by
# tests/infra/test_terraform.py, so the local stack and production agree.

# --- project ------------------------------------------------------------------

variable "project_id" {
  type        = string
  description = "The Google Cloud project (with Firebase enabled) to deploy into."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the trainer job, Artifact Registry and Cloud Scheduler."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels put on every resource that supports them (provider default_labels)."
  default     = { app = "edgeloop" }

  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "Label keys must start with a lowercase letter; keys and values may hold lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the data (bucket, Firestore database, trainer job) from terraform destroy. Set false before a deliberate teardown."
  default     = true
}

# --- data ---------------------------------------------------------------------

variable "models" {
  type        = list(string)
  description = "Model ids the stack serves (EDGELOOP_MODELS); one drift-check and one weekly-retrain schedule each."
  default     = ["digits"]

  validation {
    condition     = length(var.models) > 0 && alltrue([for m in var.models : can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", m))])
    error_message = "models must be a non-empty list of ids of lowercase letters, digits, '_' and '-' (they appear in object names, document ids and job names)."
  }
}

variable "bucket_name" {
  type        = string
  description = "Name of the Firebase Storage bucket to create (EDGELOOP_BUCKET). Null means \"<project_id>-edgeloop\"."
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid bucket name: 3-63 lowercase letters, digits, '-', '_' or '.'."
  }
}

variable "bucket_location" {
  type        = string
  description = "Location of the Storage bucket: a multi-region (US, EU, ASIA) or a region. Keep it close to var.region to avoid egress."
  default     = "US"
}

variable "storage_retention" {
  type = object({
    quarantine_days            = optional(number, 30)
    uploads_days               = optional(number, 365)
    noncurrent_version_days    = optional(number, 30)
    soft_delete_retention_days = optional(number, 7)
  })
  description = <<-EOT
    Lifecycle of the bucket: quarantine_days deletes rejected uploads (quarantine/),
    uploads_days deletes app captures (uploads/) after that many days (0 keeps them),
    noncurrent_version_days deletes overwritten object versions, and
    soft_delete_retention_days keeps deleted objects restorable (0 disables, else 7-90).
  EOT
  default     = {}

  validation {
    condition     = var.storage_retention.quarantine_days >= 1 && var.storage_retention.uploads_days >= 0 && var.storage_retention.noncurrent_version_days >= 1
    error_message = "quarantine_days and noncurrent_version_days must be at least 1; uploads_days at least 0 (0 keeps uploads)."
  }
  validation {
    condition     = var.storage_retention.soft_delete_retention_days == 0 || (var.storage_retention.soft_delete_retention_days >= 7 && var.storage_retention.soft_delete_retention_days <= 90)
    error_message = "soft_delete_retention_days must be 0 (disabled) or between 7 and 90, as Cloud Storage allows."
  }
}

variable "link_firebase_storage" {
  type        = bool
  description = "Link the bucket to Firebase (google_firebase_storage_bucket) so the Firebase SDKs and storage.rules apply to it."
  default     = true
}

variable "storage_data_access_logs" {
  type        = bool
  description = "Turn on Cloud Audit Logs Data Access logs (DATA_READ, DATA_WRITE) for Cloud Storage in the project: who read or wrote which object. Billed as log ingestion."
  default     = false
}

variable "create_firestore_database" {
  type        = bool
  description = "Create the (default) Firestore database. Set false when the project already has one (or import it: see README.md)."
  default     = true
}

variable "firestore_location" {
  type        = string
  description = "Location of the (default) Firestore database (e.g. nam5, eur3, us-central1); also the Eventarc region of the Firestore trigger."
  default     = "nam5"
}

variable "firestore_point_in_time_recovery" {
  type        = bool
  description = "Keep 7 days of Firestore versions for point-in-time recovery (billed as storage)."
  default     = true
}

variable "firestore_composite_indexes" {
  type = list(object({
    collection = string
    fields = list(object({
      field_path = string
      order      = optional(string, "ASCENDING")
    }))
  }))
  description = "Composite indexes (collection-group scope: COLLECTION). Single-field and equality-only queries need none."
  default = [
    # check_drift: the most recent random-sample captures of the production version (shared/gcp/drift.recent_inputs).
    {
      collection = "images"
      fields = [
        { field_path = "model_version", order = "ASCENDING" },
        { field_path = "capture_reason", order = "ASCENDING" },
        { field_path = "created", order = "DESCENDING" },
      ]
    },
    # edgeloop runs / status: a model's newest runs (edgeloop/registry_views.recent_runs).
    {
      collection = "runs"
      fields = [
        { field_path = "model", order = "ASCENDING" },
        { field_path = "created", order = "DESCENDING" },
      ]
    },
    # on_feedback's success rate sums a version's tally buckets (shared/gcp/tallies.version_tally): one range on
    # `end` within one version's collection, served by the automatic single-field index; no composite index.
    # on_feedback: distinct users with a counted report on a version since a time (shared/gcp/tallies.distinct_users).
    {
      collection = "feedback_users"
      fields = [
        { field_path = "model_version", order = "ASCENDING" },
        { field_path = "last_counted_at", order = "ASCENDING" },
      ]
    },
    # edgeloop status: devices whose last report on a version is within 24 h, counted and summed (shared/gcp/tallies.fleet_version).
    {
      collection = "devices"
      fields = [
        { field_path = "model_version", order = "ASCENDING" },
        { field_path = "last_seen", order = "ASCENDING" },
      ]
    },
    # The registry: the newest version in a stage (e.g. the latest candidate).
    {
      collection = "versions"
      fields = [
        { field_path = "stage", order = "ASCENDING" },
        { field_path = "created", order = "DESCENDING" },
      ]
    },
  ]

  validation {
    condition = alltrue([for index in var.firestore_composite_indexes :
      length(index.fields) >= 2 && alltrue([for f in index.fields : contains(["ASCENDING", "DESCENDING"], f.order)])
    ])
    error_message = "A composite index needs at least two fields, each ordered ASCENDING or DESCENDING."
  }
}

# --- events -------------------------------------------------------------------

variable "topics" {
  type = object({
    storage_events     = optional(string, "storage-events")
    retrain_requests   = optional(string, "retrain-requests")
    drift_checks       = optional(string, "drift-checks")
    dead_letter_suffix = optional(string, "-dead-letter")
  })
  description = "Pub/Sub topic ids (the Topics of shared/config.py); each topic gets a dead-letter topic named <topic><dead_letter_suffix>."
  default     = {}

  validation {
    condition = alltrue([for t in [var.topics.storage_events, var.topics.retrain_requests, var.topics.drift_checks] :
      can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,200}$", t)) && !startswith(lower(t), "goog")
    ])
    error_message = "Topic ids must be 3-200 characters, start with a letter, hold letters, digits or ._~%+- and not start with \"goog\"."
  }
  validation {
    condition     = can(regex("^[a-zA-Z0-9._~%+-]{1,50}$", var.topics.dead_letter_suffix))
    error_message = "dead_letter_suffix must be 1-50 characters valid in a topic id."
  }
}

variable "delivery" {
  type = object({
    max_delivery_attempts = optional(number, 5)
    ack_deadline_s        = optional(number, 60)
    min_backoff_s         = optional(number, 1)
    max_backoff_s         = optional(number, 30)
  })
  description = "At-least-once delivery of every push subscription (the Delivery of shared/config.py): after max_delivery_attempts a message goes to the dead-letter topic."
  default     = {}

  validation {
    condition     = var.delivery.max_delivery_attempts >= 5 && var.delivery.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
  validation {
    condition     = var.delivery.ack_deadline_s >= 10 && var.delivery.ack_deadline_s <= 600
    error_message = "ack_deadline_s must be between 10 and 600 seconds."
  }
  validation {
    condition     = var.delivery.min_backoff_s >= 0 && var.delivery.max_backoff_s <= 600 && var.delivery.min_backoff_s <= var.delivery.max_backoff_s
    error_message = "Backoffs must satisfy 0 <= min_backoff_s <= max_backoff_s <= 600."
  }
}

variable "dead_letter_retention_days" {
  type        = number
  description = "How long the dead-letter subscriptions keep undelivered messages for inspection and replay."
  default     = 7

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 7
    error_message = "dead_letter_retention_days must be between 1 and 7 (Pub/Sub subscription retention limit)."
  }
}

variable "schedules" {
  type = object({
    drift_check    = optional(string, "0 * * * *")
    weekly_retrain = optional(string, "0 3 * * 1")
    time_zone      = optional(string, "Etc/UTC")
    enable_retrain = optional(bool, true)
    enable_drift   = optional(bool, true)
  })
  description = "Cloud Scheduler cron expressions: the drift check (hourly) and the scheduled retrain (weekly, Monday 03:00), per model."
  default     = {}

  validation {
    condition     = alltrue([for s in [var.schedules.drift_check, var.schedules.weekly_retrain] : length(split(" ", trimspace(s))) == 5])
    error_message = "Schedules must be five-field cron expressions, e.g. \"0 * * * *\"."
  }
}

# --- functions ----------------------------------------------------------------

variable "function_runtime" {
  type        = string
  description = "Cloud Functions runtime; must match the Python the code is pinned for (pyproject.toml: 3.11)."
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]{2}$", var.function_runtime))
    error_message = "function_runtime must be a Python runtime id such as python311."
  }
}

variable "function_limits" {
  type = map(object({
    max_instances = optional(number, 10)
    min_instances = optional(number, 0)
    memory        = optional(string, "256Mi")
    cpu           = optional(string, "1")
    timeout_s     = optional(number, 60)
    concurrency   = optional(number, 1)
  }))
  description = <<-EOT
    Per-function scaling and size, keyed by entry point; concurrency is max_instance_request_concurrency, the
    requests one instance serves at once (above 1 only with cpu >= 1, as Cloud Run requires). A function
    process takes about 130 MiB once it has served its events (edgeloop bench footprint); on_upload decodes
    images of up to 4096x4096 pixels, about 225 MiB each at its peak, so it serves 3 at once in 1 GiB;
    on_feedback's reports are small documents, 8 at once in 256 MiB.
  EOT
  default = {
    on_upload       = { max_instances = 20, memory = "1Gi", concurrency = 3 }
    on_feedback     = { max_instances = 10, concurrency = 8 }
    check_drift     = { max_instances = 2, memory = "1Gi", timeout_s = 300 }
    launch_training = { max_instances = 5, timeout_s = 120 }
  }

  validation {
    condition     = length(setsubtract(keys(var.function_limits), ["on_upload", "on_feedback", "check_drift", "launch_training"])) == 0
    error_message = "function_limits keys must be entry points: on_upload, on_feedback, check_drift, launch_training."
  }
  validation {
    condition = alltrue([for f in values(var.function_limits) :
      f.max_instances >= 1 && f.max_instances <= 1000 && f.min_instances >= 0 && f.min_instances <= f.max_instances && f.timeout_s >= 1 && f.timeout_s <= 540
    ])
    error_message = "Each function needs 1 <= max_instances <= 1000, 0 <= min_instances <= max_instances and a timeout of 1-540 s (event-driven limit)."
  }
  validation {
    condition = alltrue([for f in values(var.function_limits) :
      f.concurrency >= 1 && f.concurrency <= 1000 && (f.concurrency == 1 || try(tonumber(f.cpu) >= 1, false))
    ])
    error_message = "Each function's concurrency must be 1-1000, and above 1 only with cpu >= 1 (Cloud Run serves one request at a time below one CPU)."
  }
}

variable "settings_overrides" {
  type        = map(string)
  description = <<-EOT
    Extra EDGELOOP_* settings (see shared/config.py) given to the functions and the trainer,
    e.g. { EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES = "500" }. Values this module wires itself
    (project, bucket, models, topics) win over these.
  EOT
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.settings_overrides) : can(regex("^EDGELOOP_[A-Z0-9_]+$", k))])
    error_message = "settings_overrides keys must be EDGELOOP_ environment variables (upper case, nested fields joined with __)."
  }

  validation {
    condition     = !contains(keys(var.settings_overrides), "EDGELOOP_SIGNING_KEY")
    error_message = "The signing key never goes into settings_overrides (it would sit in every function's and job's spec): put it in the Secret Manager secret (output signing_key_secret); the trainer reads it from there."
  }
}

# --- trainer ------------------------------------------------------------------

variable "trainer_backend" {
  type        = string
  description = "Where launch_training runs the trainer container: a Cloud Run job (cloud_run_job) or a Vertex AI CustomJob (vertex)."
  default     = "cloud_run_job"

  validation {
    condition     = contains(["cloud_run_job", "vertex"], var.trainer_backend)
    error_message = "trainer_backend must be cloud_run_job or vertex."
  }
}

variable "trainer_image_tag" {
  type        = string
  description = "Tag of the trainer image in the stack's Artifact Registry repository (push it before the full apply: see README.md)."
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.trainer_image_tag))
    error_message = "trainer_image_tag must be a valid Docker tag."
  }
}

variable "trainer" {
  type = object({
    cpu                 = optional(string, "2")
    memory              = optional(string, "4Gi")
    timeout_s           = optional(number, 3600)
    vertex_machine_type = optional(string, "n1-standard-4")
    # GPU off unless set: the Cloud Run job's GPU ("nvidia-l4"), or Vertex AI
    # accelerators per CustomJob (an AcceleratorType name such as NVIDIA_L4).
    gpu                      = optional(string)
    vertex_accelerator_type  = optional(string, "")
    vertex_accelerator_count = optional(number, 1)
  })
  description = "Trainer resources: Cloud Run job CPU/memory/timeout and optional GPU (gpu = \"nvidia-l4\": at least 4 CPU and 16Gi), or the Vertex AI machine type and optional accelerators (vertex_accelerator_type, vertex_accelerator_count)."
  default     = {}

  validation {
    condition     = contains(["1", "2", "4", "8"], var.trainer.cpu) && can(regex("^[0-9]+(Mi|Gi)$", var.trainer.memory))
    error_message = "trainer.cpu must be 1, 2, 4 or 8 and trainer.memory a quantity like 4Gi."
  }
  validation {
    condition     = var.trainer.timeout_s >= 60 && var.trainer.timeout_s <= 86400
    error_message = "trainer.timeout_s must be between 60 and 86400 seconds."
  }
  validation {
    condition = var.trainer.gpu == null || (
      var.trainer.gpu == "nvidia-l4" && contains(["4", "8"], var.trainer.cpu)
      && can(regex("^[0-9]+(Mi|Gi)$", var.trainer.memory))
      && try(tonumber(regex("^[0-9]+", var.trainer.memory)) * (endswith(var.trainer.memory, "Gi") ? 1024 : 1) >= 16384, false)
    )
    error_message = "trainer.gpu must be null (no GPU) or \"nvidia-l4\", which Cloud Run runs with at least 4 CPU and 16Gi of memory."
  }
  validation {
    condition = (can(regex("^[A-Z0-9_]*$", var.trainer.vertex_accelerator_type))
    && var.trainer.vertex_accelerator_count >= 1 && var.trainer.vertex_accelerator_count <= 8)
    error_message = "trainer.vertex_accelerator_type must be a Vertex AI accelerator type name (e.g. NVIDIA_L4) or empty, and vertex_accelerator_count between 1 and 8."
  }
}

# --- alerting -----------------------------------------------------------------

variable "alert_email" {
  type        = string
  description = "E-mail address that receives the alerts (a notification channel is created). Null: no e-mail channel."
  default     = null

  validation {
    condition     = var.alert_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "notification_channels" {
  type        = list(string)
  description = "Existing Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) that also receive the alerts."
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels entries must be full channel names: projects/PROJECT/notificationChannels/ID."
  }
}
