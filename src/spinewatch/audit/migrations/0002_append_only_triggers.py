"""Make ``audit_auditevent`` append-only in the database itself (see spinewatch.audit.triggers).

PostgreSQL: a plpgsql function, a BEFORE UPDATE OR DELETE row trigger and a BEFORE TRUNCATE trigger;
SQLite: BEFORE UPDATE / BEFORE DELETE triggers with RAISE(ABORT, ...). Chosen per vendor from
``schema_editor.connection.vendor``; the SQL is version 1 of spinewatch.audit.triggers.
"""

from django.db import migrations

from spinewatch.audit import triggers


def install(apps, schema_editor):
    for sql in triggers.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


def remove(apps, schema_editor):
    for sql in triggers.remove_sql(schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(install, remove, elidable=False),
    ]
