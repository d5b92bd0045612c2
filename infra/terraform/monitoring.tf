# Alerts on the structured log lines the code writes (shared/logs.py): one JSON
# object per line with "severity" and "event", which Cloud Logging stores as
# jsonPayload.event. One log-based metric and one alert policy per event, plus
# an alert on messages waiting in any dead-letter subscription.

locals {
  alerted_events = {
    model_rolled_back = {
      title    = "Model rolled back"
      severity = "CRITICAL"
      runbook  = "A canary or production version was rolled back: clients are back on the previous version. Check the version's gate results and feedback in Firestore (models/MODEL/versions) and the run in runs/."
    }
    candidate_rejected = {
      title    = "Candidate model rejected by the quality gate"
      severity = "WARNING"
      runbook  = "A trained candidate failed the gate and was stored as rejected; clients are unaffected. Repeated rejections mean the data or the thresholds need attention: see the version's gate results."
    }
    drift_detected = {
      title    = "Input drift detected"
      severity = "WARNING"
      runbook  = "check_drift found recent inputs differing from the production baseline and requested a retrain. Read the drift report and watch the resulting run."
    }
    malformed_event = {
      title    = "Malformed event acknowledged"
      severity = "WARNING"
      runbook  = "A function received an event it cannot decode and dropped it (logged with the reason, never retried). A burst means a misconfigured trigger or a client writing bad data."
    }
  }

  # Functions log as cloud_run_revision, the trainer as cloud_run_job (or ml_job on Vertex AI).
  log_resource_types = "resource.type=(\"cloud_run_revision\" OR \"cloud_run_job\" OR \"ml_job\")"

  notification_channels = concat(
    var.notification_channels,
    [for channel in google_monitoring_notification_channel.email : channel.id],
  )

  dead_letter_subscriptions = { for field, topic in module.topic : field => topic.dead_letter_subscription_name }
}

resource "google_monitoring_notification_channel" "email" {
  count        = var.alert_email == null ? 0 : 1
  project      = var.project_id
  display_name = "Edgeloop operators"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "event" {
  for_each    = local.alerted_events
  project     = var.project_id
  name        = "edgeloop-${each.key}"
  description = "Log entries with jsonPayload.event = ${each.key} (${each.value.title})."
  filter      = "jsonPayload.event=\"${each.key}\" AND ${local.log_resource_types}"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Edgeloop ${each.value.title}"

    labels {
      key         = "model"
      value_type  = "STRING"
      description = "Model id, when the log line names one."
    }
  }

  label_extractors = {
    model = "EXTRACT(jsonPayload.model)"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "event" {
  for_each     = local.alerted_events
  project      = var.project_id
  display_name = "Edgeloop: ${each.value.title}"
  combiner     = "OR"
  severity     = each.value.severity

  conditions {
    display_name = "${each.key} logged"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.event[each.key].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.model"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    content   = each.value.runbook
    mime_type = "text/markdown"
  }

  notification_channels = local.notification_channels
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project      = var.project_id
  display_name = "Edgeloop: messages in a dead-letter subscription"
  combiner     = "OR"
  severity     = "ERROR"

  dynamic "conditions" {
    for_each = local.dead_letter_subscriptions
    content {
      display_name = "${conditions.value} holds messages"
      condition_threshold {
        filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.label.subscription_id=\"${conditions.value}\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0
        duration        = "0s"

        aggregations {
          alignment_period   = "300s"
          per_series_aligner = "ALIGN_MAX"
        }

        trigger {
          count = 1
        }
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    content   = "A message failed every delivery attempt and was dead-lettered. Inspect it with `gcloud pubsub subscriptions pull SUBSCRIPTION --limit=10` (without --auto-ack), fix the cause, then republish or acknowledge it. The alert clears when the subscription is empty."
    mime_type = "text/markdown"
  }

  notification_channels = local.notification_channels
}
