"""Routes of the worklists area."""

from django.urls import path  # noqa: F401

app_name = "worklists"

urlpatterns: list = []
