"""spinewatch.validation -- how well the imaging methods do on real scans and phantoms.

``python -m spinewatch.validation`` (``make validate``) writes ``docs/validation.md``; the
pieces (datasets, lesion insertion into real backgrounds, sections) are also used by the tests.
No Django here.
"""

__all__: list[str] = []
