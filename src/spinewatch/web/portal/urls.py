"""Routes of the patient portal (anonymous: the token is the key) and of making links (staff)."""

from django.urls import path

from spinewatch.web.portal import views

app_name = "portal"

urlpatterns = [
    path("links/new/", views.new_link, name="new_link"),
    path("thanks/", views.thanks, name="thanks"),
    path("<str:token>/", views.answer, name="answer"),
]
