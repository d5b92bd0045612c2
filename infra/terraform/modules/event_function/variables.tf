variable "project_id" {
  type        = string
  description = "Project of the function."
}

variable "region" {
  type        = string
  description = "Region of the function (its Cloud Run service)."
}

variable "name" {
  type        = string
  description = "Function name (lowercase letters, digits, hyphens); also the Cloud Run service name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.name))
    error_message = "name must be 2-63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "entry_point" {
  type        = string
  description = "Python function in main.py that functions-framework serves."

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.entry_point))
    error_message = "entry_point must be a Python identifier."
  }
}

variable "description" {
  type        = string
  description = "What the function does."
  default     = ""
}

variable "runtime" {
  type        = string
  description = "Cloud Functions runtime id, e.g. python311."
}

variable "source_archive" {
  type = object({
    bucket = string
    object = string
  })
  description = "The zipped source (main.py at the root, requirements.txt, packages) in Cloud Storage; name it by content hash so a change redeploys."
}

variable "build_service_account_id" {
  type        = string
  description = "Full id (projects/P/serviceAccounts/EMAIL) of the service account Cloud Build uses to build the function."
}

variable "service_account_email" {
  type        = string
  description = "Runtime identity of the function."
}

variable "trigger_service_account_email" {
  type        = string
  description = "Identity that invokes the function (Pub/Sub push OIDC token, or Eventarc); gets roles/run.invoker on this function only."
}

variable "environment_variables" {
  type        = map(string)
  description = "Runtime environment (the EDGELOOP_ settings)."
  default     = {}
}

variable "limits" {
  type = object({
    max_instances = optional(number, 10)
    min_instances = optional(number, 0)
    memory        = optional(string, "256Mi")
    cpu           = optional(string, "1")
    timeout_s     = optional(number, 60)
    concurrency   = optional(number, 1)
  })
  description = "Scaling and size of the function; concurrency is the requests one instance serves at once."
  default     = {}

  validation {
    condition     = var.limits.concurrency >= 1 && var.limits.concurrency <= 1000 && (var.limits.concurrency == 1 || try(tonumber(var.limits.cpu) >= 1, false))
    error_message = "concurrency must be 1-1000, and above 1 only with cpu >= 1 (Cloud Run serves one request at a time below one CPU)."
  }
}

variable "pubsub_trigger" {
  type = object({
    topic_id              = string
    dead_letter_topic_id  = string
    max_delivery_attempts = optional(number, 5)
    ack_deadline_s        = optional(number, 60)
    min_backoff_s         = optional(number, 1)
    max_backoff_s         = optional(number, 30)
  })
  description = <<-EOT
    Deliver a topic to the function through a push subscription this module owns
    (Pub/Sub "direct" trigger), with a dead-letter policy and a bounded retry policy:
    a raising handler is retried with backoff, then its message lands in the
    dead-letter topic. functions-framework turns the push into a
    google.cloud.pubsub.topic.v1.messagePublished CloudEvent, as in the local stack.
  EOT
  default     = null
}

variable "firestore_trigger" {
  type = object({
    event_type = string
    database   = optional(string, "(default)")
    document   = string
    region     = string
  })
  description = "Eventarc Firestore trigger: event type (google.cloud.firestore.document.v1.*), database, document path pattern and the database's location."
  default     = null

  validation {
    condition     = var.firestore_trigger == null || can(regex("^google\\.cloud\\.firestore\\.document\\.v1\\.(created|updated|deleted|written)$", var.firestore_trigger.event_type))
    error_message = "firestore_trigger.event_type must be google.cloud.firestore.document.v1.created, updated, deleted or written."
  }
}

variable "pubsub_service_agent" {
  type        = string
  description = "E-mail of the project's Pub/Sub service agent (mints the push OIDC tokens and forwards dead letters)."
}
