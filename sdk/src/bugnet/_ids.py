"""Random identifiers without importing ``uuid`` (an import the app should not pay for)."""

from __future__ import annotations

import os


def new_event_id() -> str:
    """A random UUID4 as 32 lowercase hex characters."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def random_fraction() -> float:
    """A uniform float in [0, 1)."""
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)
