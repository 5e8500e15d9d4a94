"""Routes of the viewer and the level check (mounted at ``/scans/`` beside the scans area)."""

from django.urls import path

from spinewatch.web.viewer import views

app_name = "viewer"

urlpatterns = [
    path("<int:pk>/viewer/", views.viewer, name="viewer"),
    path(
        "<int:pk>/viewer/<str:kind>.nii.gz",
        views.volume,
        name="volume",
    ),
    path("<int:pk>/levels/", views.level_check, name="level_check"),
]
