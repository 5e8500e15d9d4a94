"""spinewatch.web.portal."""
