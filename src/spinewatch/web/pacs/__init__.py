"""Studies received from the PACS and the reconciliation list (``/pacs/``)."""
