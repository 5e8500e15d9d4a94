from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "spinewatch.registry"
    label = "registry"
    verbose_name = "SpineWatch registry"
    default_auto_field = "django.db.models.BigAutoField"
