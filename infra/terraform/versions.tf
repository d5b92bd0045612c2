terraform {
  # optional() attribute defaults (1.3), cross-object preconditions and
  # replace_triggered_by (1.2); tested against the 1.x language only.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    # 6.47: google_cloud_run_v2_job's node_selector and
    # gpu_zonal_redundancy_disabled (a GPU on the trainer job) are GA.
    google = {
      source  = "hashicorp/google"
      version = ">= 6.47.0, < 8.0.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.47.0, < 8.0.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4.0, < 3.0.0"
    }
  }
}
