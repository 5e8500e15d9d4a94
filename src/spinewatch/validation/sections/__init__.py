"""The sections of the validation document, in the order they appear."""
