"""Routes of the audit-trail viewer; the project includes them as ``path("audit/", ...)``."""

from django.urls import path

from spinewatch.audit import views

app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("verify/", views.verify_chain, name="verify"),
]
