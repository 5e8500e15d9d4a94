"""spinewatch.web.worklists."""
