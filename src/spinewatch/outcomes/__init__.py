"""spinewatch.outcomes."""
