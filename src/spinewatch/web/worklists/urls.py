"""Routes of the worklists area."""

from django.urls import path

from spinewatch.web.worklists import views

app_name = "worklists"

urlpatterns = [
    path("", views.index, name="index"),
    path("follow-ups/<int:pk>/record/", views.record_follow_up_view, name="record_follow_up"),
]
