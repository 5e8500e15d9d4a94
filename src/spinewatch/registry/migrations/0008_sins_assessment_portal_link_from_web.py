# The SINS assessment and the portal link move from the web app to the registry (they are clinical
# records written through the registry services). State only: the tables keep their names
# (web_portallink, web_sinsassessment) and their rows; nothing is copied or altered.
# The web app's 0006 removes the two models from its state once this one has added them here.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0007_identity_search_text"),
        ("web", "0005_outbox_messages"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="PortalLink",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("token_hash", models.CharField(max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField()),
                        ("used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="portal_links_created",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "follow_up",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="portal_links",
                                to="registry.followup",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "web_portallink",
                        "ordering": ("-created_at", "pk"),
                    },
                ),
                migrations.CreateModel(
                    name="SinsAssessment",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "pain",
                            models.CharField(
                                choices=[
                                    ("mechanical", "Mechanical pain (3)"),
                                    (
                                        "occasional_non_mechanical",
                                        "Occasional pain but not mechanical (1)",
                                    ),
                                    ("none", "Pain-free lesion (0)"),
                                ],
                                max_length=32,
                            ),
                        ),
                        (
                            "alignment",
                            models.CharField(
                                choices=[
                                    (
                                        "subluxation_translation",
                                        "Subluxation/translation present (4)",
                                    ),
                                    (
                                        "de_novo_deformity",
                                        "De novo deformity (kyphosis/scoliosis) (2)",
                                    ),
                                    ("normal", "Normal alignment (0)"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("imaging_points", models.PositiveSmallIntegerField()),
                        ("total", models.PositiveSmallIntegerField()),
                        (
                            "category",
                            models.CharField(
                                choices=[
                                    ("stable", "Stable"),
                                    ("potentially_unstable", "Potentially unstable"),
                                    ("unstable", "Unstable"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("assessed_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "assessed_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="sins_assessments",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "finding",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="sins_assessments",
                                to="registry.vertebrafinding",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "web_sinsassessment",
                        "ordering": ("finding_id", "-assessed_at", "-pk"),
                        "get_latest_by": ("assessed_at", "pk"),
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    (
                                        "pain__in",
                                        ["mechanical", "occasional_non_mechanical", "none"],
                                    )
                                ),
                                name="sins_pain_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    (
                                        "alignment__in",
                                        ["subluxation_translation", "de_novo_deformity", "normal"],
                                    )
                                ),
                                name="sins_alignment_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("category__in", ["stable", "potentially_unstable", "unstable"])
                                ),
                                name="sins_category_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("total__lte", 18)), name="sins_total_0_18"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("imaging_points__lte", 11)),
                                name="sins_imaging_0_11",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("total__gte", models.F("imaging_points"))),
                                name="sins_total_at_least_imaging",
                            ),
                        ],
                    },
                ),
            ],
        ),
    ]
