"""spinewatch.web.api: the JSON API (django-ninja), OpenAPI at /api/openapi.json."""
