variable "project_id" {
  type        = string
  description = "Project of the jobs."
}

variable "region" {
  type        = string
  description = "Cloud Scheduler region of the jobs."
}

variable "name_prefix" {
  type        = string
  description = "Each job is named <name_prefix>-<model>."
}

variable "description" {
  type        = string
  description = "Description of each job: a format() string whose %s is the model id."
}

variable "schedule" {
  type        = string
  description = "Five-field cron expression, the same for every model."
}

variable "time_zone" {
  type        = string
  description = "Time zone of the cron expression (tz database name)."
  default     = "Etc/UTC"
}

variable "topic_id" {
  type        = string
  description = "Full id (projects/P/topics/NAME) of the topic the jobs publish to."
}

variable "models" {
  type        = list(string)
  description = "Model ids, one job each; empty means no job."
}
