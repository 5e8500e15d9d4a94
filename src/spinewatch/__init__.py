"""SpineWatch: vertebroplasty programmes -- surveillance, treatment, follow-up and results."""

__version__ = "0.1.0"
__all__ = ["__version__"]
