"""Backup and restore of a SpineWatch installation: database, uploads, secret key, anchors.

- :mod:`~spinewatch.backup.snapshot`: :func:`create_backup` -- one consistent archive;
- :mod:`~spinewatch.backup.restore`: :func:`restore_backup` -- checked, into an empty target,
  the audit chain verified afterwards.

Import the sub-modules: this package stays free of Django imports.
"""

__all__: list[str] = []
