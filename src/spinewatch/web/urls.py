"""URL routes: one include per area of the application."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("api/", include("spinewatch.web.api.urls")),
    path("", include("spinewatch.web.pages.urls")),
    path("scans/", include("spinewatch.web.scans.urls")),
    path("scans/", include("spinewatch.web.viewer.urls")),
    path("worklists/", include("spinewatch.web.worklists.urls")),
    path("pacs/", include("spinewatch.web.pacs.urls")),
    path("cohort/", include("spinewatch.web.cohort.urls")),
    path("portal/", include("spinewatch.web.portal.urls")),
    path("accounts/", include("spinewatch.accounts.urls")),
    path("audit/", include("spinewatch.audit.urls")),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without <link rel="icon"> (the admin, raw files).
    path("favicon.ico", RedirectView.as_view(url=static("web/favicon.svg"), permanent=True)),
]
