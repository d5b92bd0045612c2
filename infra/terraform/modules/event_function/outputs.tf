output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "entry_point" {
  description = "Python entry point served."
  value       = google_cloudfunctions2_function.this.build_config[0].entry_point
}

output "uri" {
  description = "run.app URI of the function's Cloud Run service (internal ingress only)."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service" {
  description = "Name of the function's Cloud Run service."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "push_subscription" {
  description = "The push subscription feeding the function (null for a Firestore trigger)."
  value       = local.pubsub ? google_pubsub_subscription.push[0].name : null
}

output "eventarc_trigger" {
  description = "The Eventarc trigger created for a Firestore trigger (null for Pub/Sub)."
  value       = local.pubsub ? null : google_cloudfunctions2_function.this.event_trigger[0].trigger
}
