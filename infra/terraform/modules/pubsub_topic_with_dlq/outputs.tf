output "topic_id" {
  description = "Full id of the topic (projects/P/topics/NAME)."
  value       = google_pubsub_topic.topic.id
}

output "topic_name" {
  description = "Topic id (short name)."
  value       = google_pubsub_topic.topic.name
}

output "dead_letter_topic_id" {
  description = "Full id of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
  # A push subscription may only dead-letter here once Pub/Sub can publish to it.
  depends_on = [google_pubsub_topic_iam_member.dead_letter_forwarding]
}

output "dead_letter_topic_name" {
  description = "Dead-letter topic id (short name)."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription_name" {
  description = "The pull subscription that keeps dead letters (inspect with gcloud pubsub subscriptions pull)."
  value       = google_pubsub_subscription.dead_letter.name
}
