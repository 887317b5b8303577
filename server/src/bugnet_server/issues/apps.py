from django.apps import AppConfig


class IssuesConfig(AppConfig):
    name = "bugnet_server.issues"
    label = "issues"
    default_auto_field = "django.db.models.BigAutoField"
