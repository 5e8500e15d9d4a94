"""URL routes: one include per area of the application."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/", include("spinewatch.web.api.urls")),
    path("", include("spinewatch.web.pages.urls")),
    path("scans/", include("spinewatch.web.scans.urls")),
    path("worklists/", include("spinewatch.web.worklists.urls")),
    path("cohort/", include("spinewatch.web.cohort.urls")),
    path("portal/", include("spinewatch.web.portal.urls")),
    path("accounts/", include("spinewatch.accounts.urls")),
    path("admin/", admin.site.urls),
]
