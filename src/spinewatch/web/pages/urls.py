"""Routes of the pages area: patient list, patient page, identity, procedures, findings."""

from django.urls import path

from spinewatch.web.pages import finding_views, procedure_views, views

app_name = "pages"

urlpatterns = [
    path("", views.home, name="home"),
    path("patients/new/", views.patient_new, name="patient_new"),
    path("patients/<str:study_id>/", views.patient_page, name="patient"),
    path("patients/<str:study_id>/edit/", views.patient_edit, name="patient_edit"),
    path(
        "patients/<str:study_id>/procedures/new/",
        procedure_views.procedure_new,
        name="procedure_new",
    ),
    path("procedures/<int:pk>/edit/", procedure_views.procedure_edit, name="procedure_edit"),
    path("findings/<int:pk>/decision/", finding_views.finding_decision, name="finding_decision"),
    path("findings/<int:pk>/sins/", finding_views.finding_sins, name="finding_sins"),
]
