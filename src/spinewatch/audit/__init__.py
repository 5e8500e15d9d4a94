"""spinewatch.audit: the append-only, hash-chained audit trail.

Public entry points (import them from their modules once Django is set up):

- :func:`spinewatch.audit.trail.record` appends one event; :func:`spinewatch.audit.trail.verify`
  re-checks the whole chain.
- :func:`spinewatch.audit.context.acting_as` and
  :class:`spinewatch.audit.middleware.AuditContextMiddleware` say who is acting, so service
  functions need no extra parameter.
- :mod:`spinewatch.audit.canonical` documents (and implements) the canonical serialisation that
  each event's SHA-256 hash covers, for re-verification by an external tool.
"""

__all__: list[str] = []
