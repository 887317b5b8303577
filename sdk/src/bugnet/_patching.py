"""Reversible monkey-patches: each integration patches through :func:`patch`, and
:func:`undo_all` restores every original (the test suite does that between tests)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_originals: list[tuple[Any, str, Any, bool]] = []


def patch(owner: Any, name: str, replacement: Any) -> Any:
    """Set ``owner.name = replacement``; returns the original attribute."""
    had_own = name in vars(owner) if hasattr(owner, "__dict__") else True
    original = getattr(owner, name)
    _originals.append((owner, name, vars(owner).get(name, original) if had_own else None, had_own))
    setattr(owner, name, replacement)
    replacement.__bugnet_original__ = original
    return original


def undo_all() -> None:
    while _originals:
        owner, name, original, had_own = _originals.pop()
        if had_own:
            setattr(owner, name, original)
        else:
            try:
                delattr(owner, name)
            except AttributeError:
                pass
