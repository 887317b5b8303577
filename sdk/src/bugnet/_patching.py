"""Reversible monkey-patches: each integration patches through :func:`patch`, and
:func:`undo_all` restores every original (the test suite does that between tests)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


_originals: list[tuple[Any, str, Any, bool]] = []
_undo_callbacks: list[Callable[[], None]] = []


def patch(owner: Any, name: str, replacement: Any) -> Any:
    """Set ``owner.name = replacement``; returns the original attribute."""
    had_own = name in vars(owner) if hasattr(owner, "__dict__") else True
    original = getattr(owner, name)
    _originals.append((owner, name, vars(owner).get(name, original) if had_own else None, had_own))
    setattr(owner, name, replacement)
    replacement.__bugnet_original__ = original
    return original


def on_undo(callback: Callable[[], None]) -> None:
    """Run ``callback`` at :func:`undo_all` (to disconnect a signal receiver, say)."""
    _undo_callbacks.append(callback)


def undo_all() -> None:
    while _undo_callbacks:
        _undo_callbacks.pop()()
    while _originals:
        owner, name, original, had_own = _originals.pop()
        if had_own:
            setattr(owner, name, original)
        else:
            try:
                delattr(owner, name)
            except AttributeError:
                pass
