"""spinewatch.core."""
