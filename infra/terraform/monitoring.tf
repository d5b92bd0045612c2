# Alerts on the structured log lines the code writes (shared/logs.py): one JSON
# object per line with "severity" and "event", which Cloud Logging stores as
# jsonPayload.event. One log-based metric and one alert policy per event (per
# model and model version), plus an alert on messages waiting in any
# dead-letter subscription and one on each function's error rate.

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
    success_rate_dropped = {
      title    = "Field success rate below the floor"
      severity = "ERROR"
      runbook  = "on_feedback found the production version's success rate over the window below THRESHOLDS__MIN_SUCCESS_RATE (the interval's upper end, from enough reports and users) and asked for a success_rate retrain; the alert names the model and version. Watch the run it launched (`edgeloop runs MODEL`), and roll back (`edgeloop rollback MODEL`) if the previous version did better. A canary's drop is rolled back on its own (model_rolled_back)."
    }
    run_failed = {
      title    = "Training run failed"
      severity = "ERROR"
      runbook  = "A training run ended failed (the trainer crashed or exited non-zero, its backend execution failed or was cancelled, or its launch died): the lock is released and its causes are pending again. Read the run's error and failed stage (`edgeloop runs MODEL`, runs/RUN in Firestore) and the trainer's logs; repeated failures block every retrain of the model."
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

  # A function's error rate: the share of its requests (each a delivered event) answered 5xx, i.e. the
  # handler raised and the event will be retried or dead-lettered, over 10 minutes.
  function_error_rate = {
    threshold = 0.05
    window    = "600s"
  }
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

    labels {
      key         = "model_version"
      value_type  = "STRING"
      description = "Model version, when the log line names one."
    }
  }

  label_extractors = {
    model         = "EXTRACT(jsonPayload.model)"
    model_version = "EXTRACT(jsonPayload.model_version)"
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
        group_by_fields      = ["metric.label.model", "metric.label.model_version"]
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

# Each function's error rate, from Cloud Run's built-in request count (a 2nd gen
# function is a Cloud Run service named like the function): 5xx answers over all
# requests, per function, above local.function_error_rate.threshold.
resource "google_monitoring_alert_policy" "function_errors" {
  project      = var.project_id
  display_name = "Edgeloop: function error rate"
  combiner     = "OR"
  severity     = "ERROR"

  dynamic "conditions" {
    for_each = module.event_function
    content {
      display_name = "${conditions.value.name} answers more than ${local.function_error_rate.threshold * 100}% of its events with an error"
      condition_threshold {
        filter             = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${conditions.value.name}\" AND metric.label.response_code_class=\"5xx\""
        denominator_filter = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"${conditions.value.name}\""
        comparison         = "COMPARISON_GT"
        threshold_value    = local.function_error_rate.threshold
        duration           = "0s"

        aggregations {
          alignment_period     = local.function_error_rate.window
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = ["resource.label.service_name"]
        }

        denominator_aggregations {
          alignment_period     = local.function_error_rate.window
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = ["resource.label.service_name"]
        }

        trigger {
          count = 1
        }
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    content   = "A function answered more than 5% of its deliveries with an error (HTTP 5xx: the handler raised) over 10 minutes; those events are retried and end in the dead-letter topic if it persists. Read the function's ERROR log entries (`gcloud logging read 'resource.labels.service_name=FUNCTION AND severity>=ERROR'`), fix the cause, then replay what was dead-lettered (`edgeloop dead-letters --replay`)."
    mime_type = "text/markdown"
  }

  notification_channels = local.notification_channels
}
