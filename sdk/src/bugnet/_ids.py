"""Random identifiers without importing ``uuid`` at start-up (an import the app should not pay
for)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x2 << 62)  # version 4, RFC 4122 variant


def _random() -> Any:
    # The random module's generator: seeded from the OS, reseeded in a forked child (so two
    # processes never share ids), and without a system call per id (os.urandom is one, and it
    # lets other threads take the GIL in the middle of a capture). Imported on first use.
    import random

    return random


def new_event_id() -> str:
    """A random UUID4 as 32 lowercase hex characters."""
    bits = _random().getrandbits(128)
    return f"{(bits & _UUID4_CLEAR) | _UUID4_SET:032x}"


def new_span_id() -> str:
    return f"{_random().getrandbits(64):016x}"


def random_fraction() -> float:
    """A uniform float in [0, 1)."""
    return float(_random().random())
