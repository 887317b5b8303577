from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "bugnet_server.runtime"
    label = "runtime"

    def ready(self) -> None:
        from bugnet_server import checks  # noqa: F401 - registers the configuration check
