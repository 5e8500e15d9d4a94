"""spinewatch.registry."""
