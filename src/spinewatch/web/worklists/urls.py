"""Routes of the worklists area."""

from django.urls import path

from spinewatch.web.worklists import views

app_name = "worklists"

urlpatterns = [
    path("", views.index, name="index"),
    path("follow-ups/<int:pk>/record/", views.record_follow_up_view, name="record_follow_up"),
    path("follow-ups/<int:pk>/outcome/", views.visit_outcome_view, name="visit_outcome"),
    path("<slug:name>/", views.one_list, name="list"),
    path("<slug:name>.csv", views.one_list, {"export": "csv"}, name="list_csv"),
]
