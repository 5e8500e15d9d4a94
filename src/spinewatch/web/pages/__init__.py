"""spinewatch.web.pages."""
