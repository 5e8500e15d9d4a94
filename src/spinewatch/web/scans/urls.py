"""Routes of the scans area."""

from django.urls import path  # noqa: F401

app_name = "scans"

urlpatterns: list = []
