"""Threads: each new thread starts with a copy of its parent's scopes (so it sees the tags set
before it started, and its own changes stay its own), and an exception escaping ``run()`` is
reported as a crash. A task submitted to a ``ThreadPoolExecutor`` likewise runs with a copy of
its submitter's scopes, not those of whoever happened to start the pool's worker thread."""

from __future__ import annotations

import contextvars
import threading

from bugnet import _api, _import_hooks, _patching, _scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

# The wrapper around Thread.run is not the app's code: keep its frame out of reported stacks.
__traceback_hide__ = True


class ThreadingIntegration(Integration):
    identifier = "threading"

    def __init__(self, propagate_scope: bool = True) -> None:
        self.propagate_scope = propagate_scope

    @classmethod
    def setup_once(cls) -> None:
        original_start = threading.Thread.start

        def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
            if not getattr(self, "_bugnet_internal", False):
                with capture_internal_exceptions():
                    scopes = _scopes_to_carry()
                    if scopes is not None:
                        self.run = _wrap_run(self, scopes)  # type: ignore[method-assign]
            return original_start(self, *args, **kwargs)

        _patching.patch(threading.Thread, "start", start)
        # Patched when the app first uses the executor, so init() does not import it.
        _import_hooks.when_imported("concurrent.futures.thread", _patch_executor)


def _scopes_to_carry() -> Optional[tuple[_scope.Scope, _scope.Scope]]:
    """What a new thread or pool task runs with; None when the integration is off."""
    client = _api.get_client()
    integration = client.integrations.get(ThreadingIntegration.identifier)
    if integration is None:
        return None
    if getattr(integration, "propagate_scope", True):
        return _scope.fork_scopes()
    limit = client.options.max_breadcrumbs  # a clean slate, bounded like every other scope
    return _scope.Scope(limit), _scope.Scope(limit)


def _wrap_run(thread: threading.Thread, scopes: tuple[_scope.Scope, _scope.Scope]) -> Any:
    run = _unbound_run(thread)

    def run_with_scopes() -> Any:
        _scope.use_scopes(scopes)
        try:
            return run()
        except Exception as exc:
            with capture_internal_exceptions():
                _api.get_client().capture_exception(
                    exc, mechanism={"type": "threading", "handled": False}
                )
            raise

    return run_with_scopes


def _unbound_run(thread: threading.Thread) -> Callable[[], Any]:
    """``thread.run`` without a reference to ``thread``: thread -> wrapper -> thread would be a
    cycle keeping every finished thread alive until the garbage collector runs."""
    run = thread.run
    function = getattr(run, "__func__", None)
    if function is None or getattr(run, "__self__", None) is not thread:
        return run  # a callable assigned to the instance: not bound to it
    return lambda: function(threading.current_thread())


def _patch_executor(module: Any) -> None:
    executor = module.ThreadPoolExecutor
    original_submit = executor.submit

    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        scopes = None
        with capture_internal_exceptions():
            scopes = _scopes_to_carry()
        if scopes is None:
            return original_submit(self, fn, *args, **kwargs)

        def run_with_scopes(*args: Any, **kwargs: Any) -> Any:
            # In a copy of the worker's context, so the next task starts clean again.
            return contextvars.copy_context().run(_call_with_scopes, scopes, fn, args, kwargs)

        return original_submit(self, run_with_scopes, *args, **kwargs)

    _patching.patch(executor, "submit", submit)


def _call_with_scopes(scopes: Any, fn: Any, args: Any, kwargs: Any) -> Any:
    _scope.use_scopes(scopes)
    return fn(*args, **kwargs)
