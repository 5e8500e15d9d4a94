"""The identity's normalised search text, filled in for the stored identities; on PostgreSQL a
pg_trgm GIN index on it (and on the study id, upper case, as ``icontains`` compares it) so that
searching names, numbers and study ids does not scan every row. On SQLite the index operations
do nothing (the test suite runs on both)."""

import unicodedata

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

_INDEXES = (
    (
        "registry_identity_search_trgm",
        "registry_patientidentity",
        "search_text gin_trgm_ops",
    ),
    ("registry_patient_study_id_trgm", "registry_patient", "UPPER(study_id::text) gin_trgm_ops"),
)


def _key(text):
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _fill(apps, schema_editor):
    identity = apps.get_model("registry", "PatientIdentity")
    rows = list(identity.objects.all())
    for row in rows:
        number = row.hospital_number or ""
        row.search_text = _key(
            f"{row.family_name} {row.given_name} {number} {row.hospital_number_key}"
        )[:600]
    identity.objects.bulk_update(rows, ["search_text"], batch_size=1000)


def _create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, expression in _INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})"
        )


def _drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _expression in _INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0006_study_id_counter"),
    ]

    operations = [
        TrigramExtension(),  # CREATE EXTENSION pg_trgm on PostgreSQL; nothing on SQLite
        migrations.AddField(
            model_name="patientidentity",
            name="search_text",
            field=models.CharField(blank=True, editable=False, max_length=600),
        ),
        migrations.RunPython(_fill, migrations.RunPython.noop),
        migrations.RunPython(_create_indexes, _drop_indexes),
    ]
