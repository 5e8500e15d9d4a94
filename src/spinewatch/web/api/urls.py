"""URL patterns of the JSON API (included at ``/api/`` by :mod:`spinewatch.web.urls`)."""

from django.urls import path

from spinewatch.web.api.api import api

__all__ = ["urlpatterns"]

urlpatterns = [path("", api.urls)]
