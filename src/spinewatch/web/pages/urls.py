"""Routes of the pages area: patient list, patient page, identity, procedures, findings."""

from django.urls import path

from spinewatch.web.pages import finding_views, procedure_views, record_views, views
from spinewatch.web.reports import views as report_views

app_name = "pages"

urlpatterns = [
    path("", views.home, name="home"),
    path("start/", record_views.start, name="start"),
    path("patients/<str:study_id>/plan/", record_views.plan_edit, name="plan_edit"),
    path(
        "patients/<str:study_id>/diagnoses/new/", record_views.diagnosis_new, name="diagnosis_new"
    ),
    path("patients/<str:study_id>/merge/", record_views.patient_merge, name="patient_merge"),
    path(
        "patients/<str:study_id>/procedures/plan/",
        record_views.procedure_plan,
        name="procedure_plan",
    ),
    path("void/<slug:kind>/<int:pk>/", record_views.void_record_view, name="void"),
    path(
        "patients/<str:study_id>/summary.pdf", report_views.patient_pdf, name="patient_summary_pdf"
    ),
    path("scans/<int:pk>/report.pdf", report_views.scan_pdf, name="scan_report_pdf"),
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
