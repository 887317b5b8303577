"""The asyncio integration's report of what reaches the event loop's exception handler: a failed
task nobody awaited ("Task exception was never retrieved") and a failed callback. The loop's
handler, the app's own or asyncio's default, still runs as before, and each exception is
reported once. (Scopes carried into tasks are tested in test_integrations.py.)"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import gc
import logging
import sys
from typing import Any

import pytest

import bugnet
from bugnet.integrations import reset_for_tests
from bugnet.testing import capture_events

ASYNCIO_MECHANISM = {"type": "asyncio", "handled": False}


async def fail() -> None:
    raise ValueError("nobody awaited me")


async def lose_a_failed_task() -> None:
    """Start a task that fails, and drop it without ever asking for its result."""
    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.sleep(0)
    assert task.done()
    del task  # finalized here: its exception goes to the loop's exception handler
    gc.collect()


def exception_of(event: dict[str, Any]) -> dict[str, Any]:
    return event["exception"]["values"][-1]


def test_a_failed_task_nobody_awaited_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    with capture_events() as events:
        asyncio.run(lose_a_failed_task())
    assert len(events) == 1, [e.get("logentry") for e in events]  # the log line's copy deduped
    exception = exception_of(events[0])
    assert exception["type"] == "ValueError"
    assert exception["value"] == "nobody awaited me"
    assert exception["mechanism"] == ASYNCIO_MECHANISM
    assert exception["stacktrace"]["frames"][-1]["function"] == "fail"
    assert events[0]["level"] == "error"
    # asyncio's default handler still logged it, as it does without the SDK
    logged = [r for r in caplog.records if r.name == "asyncio"]
    assert len(logged) == 1
    assert logged[0].getMessage().startswith("Task exception was never retrieved")
    assert logged[0].levelno == logging.ERROR


def test_init_inside_the_running_loop_covers_that_loop() -> None:
    async def main() -> list[dict[str, Any]]:
        with capture_events() as events:
            await lose_a_failed_task()
        return events

    events = asyncio.run(main())
    assert [exception_of(e)["mechanism"] for e in events] == [ASYNCIO_MECHANISM]


def test_the_apps_own_exception_handler_still_runs() -> None:
    handled: list[BaseException] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        handled.append(context["exception"])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(handler)
        assert loop.get_exception_handler() is handler
        await lose_a_failed_task()

    with capture_events() as events:
        asyncio.run(main())
    assert [type(e).__name__ for e in handled] == ["ValueError"]
    assert len(events) == 1  # the app's handler logs nothing; the event is the SDK's
    assert exception_of(events[0])["mechanism"] == ASYNCIO_MECHANISM


def test_a_handler_set_before_init_still_runs() -> None:
    handled: list[str] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: handled.append(context["message"])
        )
        with capture_events() as events:
            await lose_a_failed_task()
        assert len(events) == 1

    asyncio.run(main())
    assert handled == ["Task exception was never retrieved"]


def test_a_failed_callback_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    def callback() -> None:
        bugnet.set_tag("callback", "yes")
        raise ZeroDivisionError("in a callback")

    async def main() -> None:
        asyncio.get_running_loop().call_soon(callback)
        await asyncio.sleep(0.01)

    with capture_events() as events:
        asyncio.run(main())
    assert len(events) == 1
    exception = exception_of(events[0])
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == ASYNCIO_MECHANISM
    assert events[0]["tags"] == {"callback": "yes"}  # reported in the callback's context
    assert any(r.getMessage().startswith("Exception in callback") for r in caplog.records)


def test_an_awaited_task_exception_is_the_apps_to_handle() -> None:
    async def main() -> None:
        task = asyncio.get_running_loop().create_task(fail())
        with pytest.raises(ValueError):
            await task
        del task
        gc.collect()

    with capture_events() as events:
        asyncio.run(main())
    assert events == []


def test_a_loop_message_without_an_exception_is_not_an_exception_event() -> None:
    async def main() -> None:
        asyncio.get_running_loop().call_exception_handler({"message": "something odd"})

    with capture_events() as events:
        asyncio.run(main())
    # asyncio's default handler logs it at ERROR: an event of the logging integration
    assert [(e.get("logentry", {}).get("formatted"), "exception" in e) for e in events] == [
        ("something odd", False)
    ]


def test_the_report_carries_the_tasks_scope_never_a_bystanders() -> None:
    """A task is finalized wherever its last reference goes, here inside another unit of work:
    the event must not carry that one's tags. Python 3.12+ exposes the task's own context."""

    async def fail_tagged() -> None:
        bugnet.set_tag("task", "mine")
        raise ValueError("tagged")

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(fail_tagged())
        await asyncio.sleep(0)
        with bugnet.isolation_scope():
            bugnet.set_tag("bystander", "yes")
            del task
            gc.collect()

    with capture_events() as events:
        asyncio.run(main())
    assert len(events) == 1
    tags = events[0].get("tags", {})
    assert "bystander" not in tags
    if sys.version_info >= (3, 12):
        assert tags == {"task": "mine"}


def test_with_the_integration_off_only_asyncios_log_line_is_reported() -> None:
    with capture_events(disabled_integrations=["asyncio"]) as events:
        asyncio.run(lose_a_failed_task())
    assert [exception_of(e)["mechanism"]["type"] for e in events] == ["logging"]


def test_the_patch_is_undone() -> None:
    original = asyncio.base_events.BaseEventLoop.call_exception_handler
    with capture_events():
        assert asyncio.base_events.BaseEventLoop.call_exception_handler is not original
    reset_for_tests()
    assert asyncio.base_events.BaseEventLoop.call_exception_handler is original
