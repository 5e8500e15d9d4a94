"""SpineWatch: software for vertebroplasty programmes -- surveillance, treatment, follow-up, results."""

__version__ = "0.1.0"
__all__ = ["__version__"]
