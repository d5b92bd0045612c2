# A topic, its dead-letter topic, and a pull subscription on the dead-letter
# topic so that dead letters are kept (a topic without subscriptions drops
# what is published to it). Push subscriptions that dead-letter into this topic
# are created by their consumers (modules/event_function).

resource "google_pubsub_topic" "topic" {
  #checkov:skip=CKV_GCP_83:Payloads are object metadata, ids and counts (pseudonymous uids at most, never image bytes); Google-managed encryption at rest is sufficient, and CMEK would add a KMS key and its rotation to operate.
  project                    = var.project_id
  name                       = var.name
  message_retention_duration = "${var.message_retention_s}s"
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Same payloads as the source topic; Google-managed encryption at rest is sufficient.
  project = var.project_id
  name    = "${var.name}${var.dead_letter_suffix}"
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}${var.dead_letter_suffix}"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "${var.dead_letter_retention_s}s"
  retain_acked_messages      = true
  ack_deadline_seconds       = 60

  # Dead letters wait for an operator; the subscription must not expire while idle.
  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub forwards a message to the dead-letter topic as its own service agent.
resource "google_pubsub_topic_iam_member" "dead_letter_forwarding" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}
