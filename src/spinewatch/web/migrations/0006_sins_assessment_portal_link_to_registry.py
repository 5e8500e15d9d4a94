# The SINS assessment and the portal link now belong to the registry app (its 0008 adds them to
# its state with the same tables). State only: dropping them here must not drop the tables.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("web", "0005_outbox_messages"),
        ("registry", "0008_sins_assessment_portal_link_from_web"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="SinsAssessment"),
                migrations.DeleteModel(name="PortalLink"),
            ],
        ),
    ]
