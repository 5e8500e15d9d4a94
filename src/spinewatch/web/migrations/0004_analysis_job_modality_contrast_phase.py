"""Analysis jobs remember the modality and contrast phase chosen at upload (issue 7)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("web", "0003_sins_assessment"),
    ]

    operations = [
        migrations.AddField(
            model_name="analysisjob",
            name="modality",
            field=models.CharField(default="auto", max_length=8),
        ),
        migrations.AddField(
            model_name="analysisjob",
            name="contrast_phase",
            field=models.CharField(default="auto", max_length=16),
        ),
    ]
