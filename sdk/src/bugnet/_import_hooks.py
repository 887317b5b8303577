"""Run code right after a module is imported (or now, if it already was).

Framework integrations switch on this way: ``init()`` costs nothing for frameworks the app never
imports, and works whether the app imports Flask before or after ``init()``.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:
    import importlib.machinery
    from collections.abc import Sequence
    from typing import Any, Callable, Optional

if TYPE_CHECKING:
    Callback = Callable[[ModuleType], None]


_callbacks: dict[str, list[Callback]] = {}
_lock = threading.RLock()


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported; at once if it already is.

    A module that another thread is importing right now is waited for, then called back.
    """
    module = sys.modules.get(name)
    if module is not None and _initializing(module):
        # Its finders already ran, so our loader would never see this import end.
        _wait_for_import(name)
        module = sys.modules.get(name)
    if module is not None and not _initializing(module):
        callback(module)
        return
    with _lock:
        _callbacks.setdefault(name, []).append(callback)
        if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _PostImportFinder())


def _initializing(module: ModuleType) -> bool:
    return getattr(getattr(module, "__spec__", None), "_initializing", False) is not False


def _wait_for_import(name: str) -> None:
    """Block until another thread's import of ``name`` ends (import takes the module's lock).

    In the importing thread itself (init() called during a circular import) it returns at once.
    """
    try:
        __import__(name)
    except Exception:  # that import failed or deadlocked: the app will see it, not us
        pass


def clear() -> None:
    with _lock:
        _callbacks.clear()
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PostImportFinder)]


def _fire(module: ModuleType) -> None:
    with _lock:
        callbacks = _callbacks.pop(module.__name__, [])
    for callback in callbacks:
        try:
            callback(module)
        except Exception as exc:
            from bugnet._guard import report_internal_error

            report_internal_error(exc)


class _PostImportFinder:
    """A meta path finder (duck-typed: importing importlib.abc would cost the app ~10 ms)."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in _callbacks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.name = None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _NotifyingLoader(spec.loader)  # type: ignore[assignment]
        return spec


class _NotifyingLoader:
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        # Put the real loader back so the module looks exactly as it would without us.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _fire(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
