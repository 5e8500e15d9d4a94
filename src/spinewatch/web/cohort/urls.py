"""Routes of the cohort area."""

from django.urls import path  # noqa: F401

app_name = "cohort"

urlpatterns: list = []
