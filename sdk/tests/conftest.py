from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bugnet
from bugnet import _api, _guard, _scope
from bugnet.integrations import reset_for_tests

sys.path.insert(0, str(Path(__file__).parent))

from collector import Collector

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "envelopes"


@pytest.fixture(autouse=True)
def swallowed_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[BaseException]]:
    """Every test starts with no client, empty scopes and no patches, and fails if the SDK
    swallowed an internal error (the SDK hides them from the app, never from its tests).

    A test that provokes internal errors on purpose requests this fixture and clears the list.
    Without an explicit ``spool_dir``, a test's spool is a fresh temporary directory.
    """
    for name in list(os.environ):
        if name.startswith(("BUGNET_", "SENTRY_")) and not name.startswith("BUGNET_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BUGNET_SPOOL_DIR", str(tmp_path_factory.mktemp("default-spool")))
    swallowed: list[BaseException] = []
    _guard.internal_error_listeners.append(swallowed.append)
    yield swallowed
    _guard.internal_error_listeners.remove(swallowed.append)
    client = _api.get_client()
    if client.is_active():
        client.close(timeout=1)
    _api._client = bugnet.Client(_api.Options())
    reset_for_tests()
    _scope.reset_scopes()
    if swallowed:
        raise AssertionError(f"the SDK swallowed internal errors: {swallowed!r}")


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector().start()
    yield server
    server.stop()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"the shared envelope fixtures are not at {FIXTURES}")
    return FIXTURES
