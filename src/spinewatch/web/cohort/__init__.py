"""spinewatch.web.cohort."""
