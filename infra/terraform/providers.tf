provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}

# Firebase resources (the Storage bucket link, the Pub/Sub service identity)
# are beta-only. user_project_override bills Firebase API calls made with user
# credentials to this project, as the Firebase Management API requires.
provider "google-beta" {
  project               = var.project_id
  region                = var.region
  default_labels        = var.labels
  user_project_override = true
  billing_project       = var.project_id
}
