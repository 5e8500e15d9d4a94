"""spinewatch.web."""
