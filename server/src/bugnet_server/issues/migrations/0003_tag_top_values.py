from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("issues", "0002_partition_events")]

    operations = [
        migrations.AddIndex(
            model_name="tagvalue",
            index=models.Index(fields=["issue", "key", "-count"], name="tag_top_values"),
        ),
    ]
