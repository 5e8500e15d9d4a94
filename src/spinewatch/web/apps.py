from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "spinewatch.web"
    label = "web"
    verbose_name = "SpineWatch web application"
