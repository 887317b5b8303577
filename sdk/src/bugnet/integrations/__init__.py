"""Integrations: how Bugnet hooks into logging, threads, scripts and frameworks.

Each integration is one module with one class. ``setup_once()`` installs process-wide hooks (at
most once per process, through :mod:`bugnet._patching`, so tests can undo them); ``setup(client)``
attaches per-``init()`` behaviour to the client. Hooks look up the active client when they run,
so a second ``init()`` takes effect without patching twice.
"""

from __future__ import annotations

import sys

from bugnet import _import_hooks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, ClassVar

    from bugnet._client import Client


class Integration:
    """Base class: subclasses set ``identifier`` and override the two hooks they need."""

    identifier: ClassVar[str] = ""
    _installed: ClassVar[bool] = False

    @classmethod
    def setup_once(cls) -> None:
        """Install process-wide hooks. Called at most once per process (until tests reset)."""

    def setup(self, client: Client) -> None:
        """Attach this integration's behaviour to ``client``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# Default integrations: (module, class name), on unless default_integrations=False.
DEFAULT_INTEGRATIONS = [
    ("bugnet.integrations._logging_hook", "LoggingIntegration"),
    ("bugnet.integrations.excepthook", "ExcepthookIntegration"),
    ("bugnet.integrations.threading", "ThreadingIntegration"),
    ("bugnet.integrations.atexit", "AtexitIntegration"),
    ("bugnet.integrations.dedupe", "DedupeIntegration"),
    ("bugnet.integrations.modules", "ModulesIntegration"),
    ("bugnet.integrations.argv", "ArgvIntegration"),
    ("bugnet.integrations.stdlib", "StdlibIntegration"),
]

# Switched on when the app imports the watched module (before or after init()):
# (watched module, integration module, class name).
AUTO_INTEGRATIONS = [
    ("asyncio", "bugnet.integrations.asyncio", "AsyncioIntegration"),
    ("flask", "bugnet.integrations.flask", "FlaskIntegration"),
    ("django", "bugnet.integrations.django", "DjangoIntegration"),
    ("celery", "bugnet.integrations.celery", "CeleryIntegration"),
    ("starlette", "bugnet.integrations.starlette", "StarletteIntegration"),
    ("fastapi", "bugnet.integrations.fastapi", "FastApiIntegration"),
]


def _load(module: str, name: str) -> type[Integration]:
    __import__(module)
    cls: type[Integration] = getattr(sys.modules[module], name)
    return cls


def _disabled(client: Client, identifier: str) -> bool:
    for item in client.options.disabled_integrations:
        other = item if isinstance(item, str) else getattr(item, "identifier", None)
        if other == identifier:
            return True
    return False


def install(integration: Integration, client: Client) -> None:
    """Set up ``integration`` for ``client`` (and its process-wide hooks, once)."""
    cls = type(integration)
    if _disabled(client, cls.identifier) or cls.identifier in client.integrations:
        return
    if not cls._installed:
        cls.setup_once()
        cls._installed = True
    integration.setup(client)
    client.integrations[cls.identifier] = integration


def setup_integrations(client: Client) -> None:
    """Install the explicit integrations, then the defaults and the auto-enabling ones."""
    options = client.options
    for integration in options.integrations:
        install(integration, client)
    explicit = {type(i).identifier for i in options.integrations}
    if options.default_integrations:
        for module, name in DEFAULT_INTEGRATIONS:
            cls = _load(module, name)
            if cls.identifier not in explicit:
                install(cls(), client)
    if options.default_integrations and options.auto_enabling_integrations:
        for watched, module, name in AUTO_INTEGRATIONS:
            _import_hooks.when_imported(watched, _auto_installer(client, module, name, explicit))


def _auto_installer(client: Client, module: str, name: str, explicit: set[str]):  # type: ignore[no-untyped-def]
    def install_now() -> None:
        from bugnet import _api

        if _api.get_client() is not client:
            return  # a later init() replaced this client
        cls = _load(module, name)
        if cls.identifier not in explicit:
            install(cls(), client)

    def on_import(_module: object) -> None:
        loading = sys.modules.get(module)
        if loading is not None and _import_hooks._initializing(loading):
            # The app is importing the integration module itself (for its class, say), and
            # that import is what imported the framework: install when the module is whole.
            _deferred.setdefault(module, []).append(install_now)
            return
        install_now()

    return on_import


_deferred: dict[str, list[Callable[[], None]]] = {}


def module_ready(name: str) -> None:
    """The last line of each framework integration module: installs what the framework's import
    set off while that module was still loading."""
    for install_now in _deferred.pop(name, []):
        install_now()


def reset_for_tests() -> None:
    """Undo every patch and forget which integrations were installed."""
    from bugnet import _patching

    _patching.undo_all()
    _import_hooks.clear()
    _deferred.clear()
    for cls in _all_subclasses(Integration):
        cls._installed = False


def _all_subclasses(cls: type[Integration]) -> list[type[Integration]]:
    out: list[type[Integration]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out
