"""Routes of the scans area (mounted at ``/scans/``)."""

from django.urls import path

from spinewatch.web.scans import views

app_name = "scans"

urlpatterns = [
    path("", views.scan_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/status/", views.status, name="status"),
    path("<int:pk>/picture.png", views.picture, name="picture"),
    path("<int:pk>/report.json", views.report_json, name="report_json"),
    path("<int:pk>/rerun/", views.rerun, name="rerun"),
]
