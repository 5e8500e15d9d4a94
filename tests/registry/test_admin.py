"""The admin lists render for clinic browsing and refuse writes (writes go through the services)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from spinewatch.accounts.testing import signed_in
from spinewatch.registry import models as m
from spinewatch.registry.services import IdentityData, create_patient

pytestmark = pytest.mark.django_db


def test_changelists_render_and_search(client, django_user_model, procedure):
    create_patient(identity=IdentityData("Fictional", "Ada", "H-77"))
    user = django_user_model.objects.create_superuser("admin", "a@example.org", "x" * 16)
    signed_in(client, user)  # admins must have passed two-factor
    for model in (m.Patient, m.Procedure, m.FollowUp, m.VertebraFinding, m.SurveillancePlan):
        assert model in admin.site._registry
        url = reverse(f"admin:registry_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
    found = client.get(reverse("admin:registry_patient_changelist"), {"q": "H-77"})
    assert b"Fictional" in found.content
    detail = reverse("admin:registry_procedure_change", args=[procedure.pk])
    assert client.get(detail).status_code == 200
    assert client.get(reverse("admin:registry_patient_add")).status_code == 403


def test_admin_views_are_audited(client, django_user_model, procedure):
    from spinewatch.audit.models import AuditEvent

    user = django_user_model.objects.create_superuser("root", "r@example.org", "x" * 16)
    signed_in(client, user)
    before = AuditEvent.objects.filter(action="view").count()
    assert client.get(reverse("admin:registry_patient_changelist")).status_code == 200
    detail = reverse("admin:registry_procedure_change", args=[procedure.pk])
    assert client.get(detail).status_code == 200
    views = AuditEvent.objects.filter(action="view").order_by("seq")[before:]
    assert [(e.object_type, e.actor_username) for e in views] == [
        ("registry.patient", "root"),
        ("registry.procedure", "root"),
    ]
    assert views[1].object_id == str(procedure.pk)
