# Firestore (shared/layout.py): models/{model} (the pointer clients poll) with
# versions/, images/, feedback/ below it, and runs/{run_id}.

resource "google_firestore_database" "default" {
  count       = var.create_firestore_database ? 1 : 0
  project     = var.project_id
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  point_in_time_recovery_enablement = var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # With protection on, terraform destroy leaves the database (and its data) in place.
  deletion_policy = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.enabled]
}

resource "google_firestore_index" "composite" {
  for_each = {
    for index in var.firestore_composite_indexes :
    "${index.collection}:${join(",", [for f in index.fields : "${f.field_path}:${f.order}"])}" => index
  }
  project     = var.project_id
  database    = "(default)"
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }

  depends_on = [google_firestore_database.default]
}

# --- Firebase security rules: the same files the local stack loads --------------

# What each rules file is released for: the database, the bucket.
locals {
  rules_releases = {
    firestore = "cloud.firestore"
    storage   = "firebase.storage/${google_storage_bucket.data.name}"
  }
}

# infra/firebase/firestore.rules and storage.rules.
resource "google_firebaserules_ruleset" "rules" {
  for_each = toset(["firestore", "storage"])
  project  = var.project_id

  source {
    files {
      name    = "${each.key}.rules"
      content = file("${path.module}/../firebase/${each.key}.rules")
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.enabled]
}

# A release needs what it protects: the database, the bucket linked to Firebase.
resource "google_firebaserules_release" "rules" {
  for_each     = local.rules_releases
  project      = var.project_id
  name         = each.value
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.rules[each.key].name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.rules[each.key]]
  }

  depends_on = [google_firestore_database.default, google_firebase_storage_bucket.data]
}
