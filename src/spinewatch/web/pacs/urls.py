"""Routes of the received studies (mounted at ``/pacs/``)."""

from django.urls import path

from spinewatch.web.pacs import views

app_name = "pacs"

urlpatterns = [
    path("", views.received_list, name="received"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/dismiss/", views.dismiss, name="dismiss"),
]
