"""spinewatch.web.scans."""
