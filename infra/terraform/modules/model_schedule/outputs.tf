output "jobs" {
  description = "Full job names (projects/P/locations/R/jobs/NAME) by model."
  value       = { for model, job in google_cloud_scheduler_job.this : model => job.id }
}
