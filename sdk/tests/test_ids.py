"""Event ids: UUID4, unique, and never repeated by a forked child."""

from __future__ import annotations

import os
import uuid

import pytest

from bugnet._ids import new_event_id, new_span_id, random_fraction


def test_event_ids_are_uuid4_hex_and_unique():
    ids = {new_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for value in list(ids)[:100]:
        assert len(value) == 32
        parsed = uuid.UUID(value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(new_span_id()) == 16
    assert 0.0 <= random_fraction() < 1.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_the_parents_ids():
    read, write = os.pipe()
    new_event_id()  # the generator exists before the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child_id != new_event_id()
