"""Issue 10 (the unit's day): voided records, merged patients, normalised unique hospital numbers,
contact preference, planned procedures with cement type / fluoroscopy time / dose-area product,
pedicle access and biopsy per treated level, the finding a treated level closed, visit outcomes,
and where a surveillance plan's interval comes from.

Hospital numbers already stored get their key (letters and digits, upper case). Two stored numbers
that are one number spelt twice ("demo 00002", "DEMO-00002") cannot both keep the plain key: the
later record's key gets ``~<patient id>`` appended (logged), so the migration never stops a
server; the patient page then shows both records as possible duplicates, to be merged.
"""

import logging
import re

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

_SEPARATORS = re.compile(r"[\s\-./_]+")


def _fill_hospital_number_keys(apps, schema_editor):
    identity_model = apps.get_model("registry", "PatientIdentity")
    used = set()
    for row in identity_model.objects.order_by("patient_id"):
        key = _SEPARATORS.sub("", row.hospital_number.upper()) or f"EMPTY~{row.patient_id}"
        if key in used:
            logging.getLogger("spinewatch.registry").warning(
                "hospital number %r of patient %s repeats an earlier one: stored key %s~%s",
                row.hospital_number,
                row.patient_id,
                key,
                row.patient_id,
            )
            key = f"{key}~{row.patient_id}"
        used.add(key)
        identity_model.objects.filter(pk=row.pk).update(hospital_number_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0003_pacs_reconciliation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="imagingstudy",
            name="imaging_series_unique",
        ),
        migrations.AddField(
            model_name="followup",
            name="outcome",
            field=models.CharField(
                blank=True,
                choices=[
                    ("died", "Died"),
                    ("lost_to_follow_up", "Lost to follow-up"),
                    ("withdrew", "Withdrew from follow-up"),
                    ("declined", "Declined this visit"),
                ],
                max_length=32,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="followup",
            name="outcome_on",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="followup",
            name="void_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="followup",
            name="voided_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="followup",
            name="voided_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="imagingstudy",
            name="void_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="imagingstudy",
            name="voided_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="imagingstudy",
            name="voided_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="patient",
            name="merged_into",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="merged_records",
                to="registry.patient",
            ),
        ),
        migrations.AddField(
            model_name="patient",
            name="void_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="patient",
            name="voided_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="patient",
            name="voided_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="patientidentity",
            name="contact_by",
            field=models.CharField(
                choices=[
                    ("none", "Not contacted"),
                    ("email", "E-mail"),
                    ("sms", "Text message (SMS)"),
                ],
                default="none",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="patientidentity",
            name="hospital_number_key",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="procedure",
            name="cement_type",
            field=models.CharField(
                blank=True,
                choices=[
                    ("pmma", "PMMA (standard viscosity)"),
                    ("pmma_high_viscosity", "PMMA, high viscosity"),
                    ("calcium_phosphate", "Calcium phosphate"),
                    ("other", "Other"),
                ],
                max_length=32,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="procedure",
            name="dose_area_product_gycm2",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="procedure",
            name="fluoroscopy_time_s",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="procedure",
            name="planned_levels",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="procedure",
            name="status",
            field=models.CharField(
                choices=[("planned", "Planned"), ("performed", "Performed")],
                default="performed",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="procedure",
            name="void_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="procedure",
            name="voided_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="procedure",
            name="voided_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="surveillanceplan",
            name="interval_source",
            field=models.CharField(
                choices=[("rule", "Programme rule"), ("clinician", "Set by a clinician")],
                default="rule",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="surveillanceplan",
            name="risk_state",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="treatedlevel",
            name="access",
            field=models.CharField(
                blank=True,
                choices=[("unipedicular", "Unipedicular"), ("bipedicular", "Bipedicular")],
                max_length=32,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="treatedlevel",
            name="biopsy",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="treatedlevel",
            name="biopsy_result",
            field=models.CharField(
                blank=True,
                choices=[
                    ("pending", "Pending"),
                    ("myeloma", "Myeloma / plasmacytoma"),
                    ("metastasis", "Metastasis"),
                    ("other_malignancy", "Other malignancy"),
                    ("benign", "Benign (e.g. osteoporotic fracture)"),
                    ("non_diagnostic", "Non-diagnostic"),
                ],
                max_length=32,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="vertebrafinding",
            name="treated_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="findings",
                to="registry.treatedlevel",
            ),
        ),
        migrations.AlterField(
            model_name="patientidentity",
            name="hospital_number",
            field=models.CharField(max_length=64),
        ),
        migrations.RunPython(_fill_hospital_number_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="patientidentity",
            name="hospital_number_key",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AddConstraint(
            model_name="followup",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("outcome__in", ["died", "lost_to_follow_up", "withdrew", "declined"]),
                    ("outcome__isnull", True),
                    _connector="OR",
                ),
                name="follow_up_outcome_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="followup",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("outcome__isnull", True), ("outcome_on__isnull", True)),
                    models.Q(
                        ("completed_on__isnull", True),
                        ("outcome__isnull", False),
                        ("outcome_on__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="follow_up_outcome_dated_and_not_completed",
            ),
        ),
        migrations.AddConstraint(
            model_name="followup",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("void_reason", ""), ("voided_at__isnull", True)),
                    models.Q(
                        ("voided_at__isnull", False), models.Q(("void_reason", ""), _negated=True)
                    ),
                    _connector="OR",
                ),
                name="follow_up_void_reason_iff_voided",
            ),
        ),
        migrations.AddConstraint(
            model_name="imagingstudy",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    models.Q(("study_instance_uid", ""), _negated=True), ("voided_at__isnull", True)
                ),
                fields=("study_instance_uid", "series_instance_uid"),
                name="imaging_series_unique_unless_voided",
            ),
        ),
        migrations.AddConstraint(
            model_name="imagingstudy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("void_reason", ""), ("voided_at__isnull", True)),
                    models.Q(
                        ("voided_at__isnull", False), models.Q(("void_reason", ""), _negated=True)
                    ),
                    _connector="OR",
                ),
                name="imaging_void_reason_iff_voided",
            ),
        ),
        migrations.AddConstraint(
            model_name="patient",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("void_reason", ""), ("voided_at__isnull", True)),
                    models.Q(
                        ("voided_at__isnull", False), models.Q(("void_reason", ""), _negated=True)
                    ),
                    _connector="OR",
                ),
                name="patient_void_reason_iff_voided",
            ),
        ),
        migrations.AddConstraint(
            model_name="patient",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("merged_into__isnull", True), ("voided_at__isnull", False), _connector="OR"
                ),
                name="patient_merged_is_voided",
            ),
        ),
        migrations.AddConstraint(
            model_name="patientidentity",
            constraint=models.CheckConstraint(
                condition=models.Q(("hospital_number_key", ""), _negated=True),
                name="identity_hospital_key_not_empty",
            ),
        ),
        migrations.AddConstraint(
            model_name="patientidentity",
            constraint=models.CheckConstraint(
                condition=models.Q(("contact_by__in", ["none", "email", "sms"])),
                name="identity_contact_by_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="procedure",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["planned", "performed"])),
                name="procedure_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="procedure",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "cement_type__in",
                        ["pmma", "pmma_high_viscosity", "calcium_phosphate", "other"],
                    ),
                    ("cement_type__isnull", True),
                    _connector="OR",
                ),
                name="procedure_cement_type_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="procedure",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("fluoroscopy_time_s__isnull", True),
                    ("fluoroscopy_time_s__gte", 0),
                    _connector="OR",
                ),
                name="procedure_fluoroscopy_time_nonnegative",
            ),
        ),
        migrations.AddConstraint(
            model_name="procedure",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("dose_area_product_gycm2__isnull", True),
                    ("dose_area_product_gycm2__gte", 0),
                    _connector="OR",
                ),
                name="procedure_dap_nonnegative",
            ),
        ),
        migrations.AddConstraint(
            model_name="procedure",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("void_reason", ""), ("voided_at__isnull", True)),
                    models.Q(
                        ("voided_at__isnull", False), models.Q(("void_reason", ""), _negated=True)
                    ),
                    _connector="OR",
                ),
                name="procedure_void_reason_iff_voided",
            ),
        ),
        migrations.AddConstraint(
            model_name="surveillanceplan",
            constraint=models.CheckConstraint(
                condition=models.Q(("interval_source__in", ["rule", "clinician"])),
                name="surveillance_source_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="treatedlevel",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("access__in", ["unipedicular", "bipedicular"]),
                    ("access__isnull", True),
                    _connector="OR",
                ),
                name="treated_access_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="treatedlevel",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "biopsy_result__in",
                        [
                            "pending",
                            "myeloma",
                            "metastasis",
                            "other_malignancy",
                            "benign",
                            "non_diagnostic",
                        ],
                    ),
                    ("biopsy_result__isnull", True),
                    _connector="OR",
                ),
                name="treated_biopsy_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="treatedlevel",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("biopsy", True), ("biopsy_result__isnull", True), _connector="OR"
                ),
                name="treated_biopsy_result_needs_biopsy",
            ),
        ),
    ]
