"""spinewatch.imaging."""
