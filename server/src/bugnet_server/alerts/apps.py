from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "bugnet_server.alerts"
    label = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bugnet_server.alerts import defaults

        defaults.connect()
