"""The study id counter (registry.IdCounter), started at the highest generated study id in use."""

import re

from django.db import migrations, models


def _seed(apps, schema_editor):
    patient = apps.get_model("registry", "Patient")
    counter = apps.get_model("registry", "IdCounter")
    pattern = re.compile(r"SW-(\d+)")
    highest = 0
    for study_id in patient.objects.filter(study_id__startswith="SW-").values_list(
        "study_id", flat=True
    ):
        match = pattern.fullmatch(study_id)
        if match:
            highest = max(highest, int(match.group(1)))
    counter.objects.update_or_create(name="study_id", defaults={"value": highest})


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0005_finding_diffuse_infiltration"),
    ]

    operations = [
        migrations.CreateModel(
            name="IdCounter",
            fields=[
                ("name", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("value", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(_seed, migrations.RunPython.noop),
    ]
