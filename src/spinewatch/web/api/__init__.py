"""spinewatch.web.api: the JSON API (django-ninja), OpenAPI at /api/openapi.json.

``spinewatch.web.api.api.api`` is the :class:`ninja.NinjaAPI`; :mod:`.schemas` holds the input,
update and output schemas; one router module per resource (:mod:`.patients`, :mod:`.imaging`,
:mod:`.procedures`, :mod:`.follow_ups`, :mod:`.outcomes`, :mod:`.research`).
"""

__all__: list[str] = []
