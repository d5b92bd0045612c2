variable "project_id" {
  type        = string
  description = "Project of the topics."
}

variable "name" {
  type        = string
  description = "Topic id. Ids need at least 3 characters and must not start with \"goog\"."

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,200}$", var.name)) && !startswith(lower(var.name), "goog")
    error_message = "name must be a valid Pub/Sub topic id of at least 3 characters."
  }
}

variable "dead_letter_suffix" {
  type        = string
  description = "The dead-letter topic (and its keeper subscription) is named <name><dead_letter_suffix>."
  default     = "-dead-letter"

  validation {
    condition     = length(var.dead_letter_suffix) > 0
    error_message = "dead_letter_suffix must not be empty: the dead-letter topic needs its own name."
  }
}

variable "message_retention_s" {
  type        = number
  description = "How long the topic itself retains published messages (allows seeking a subscription back after an outage)."
  default     = 86400

  validation {
    condition     = var.message_retention_s >= 600 && var.message_retention_s <= 2678400
    error_message = "message_retention_s must be between 600 s and 31 days."
  }
}

variable "dead_letter_retention_s" {
  type        = number
  description = "How long the dead-letter subscription keeps messages nobody acknowledged."
  default     = 604800

  validation {
    condition     = var.dead_letter_retention_s >= 600 && var.dead_letter_retention_s <= 604800
    error_message = "dead_letter_retention_s must be between 600 s and 7 days."
  }
}

variable "pubsub_service_agent" {
  type        = string
  description = "E-mail of the project's Pub/Sub service agent, which forwards undeliverable messages to the dead-letter topic."
}
