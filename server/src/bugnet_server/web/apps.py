from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "bugnet_server.web"
    label = "web"
    verbose_name = "Web UI"
