"""The default integrations (excepthook, threading, asyncio, atexit, dedupe, modules, argv,
stdlib), switching them on and off, and the import hooks and patches they are built on."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import http.client
import http.server
import importlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import types
import urllib.request
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bugnet
from bugnet import _import_hooks
from bugnet.integrations import reset_for_tests
from bugnet.integrations.excepthook import ExcepthookIntegration
from bugnet.integrations.logging import LoggingIntegration
from bugnet.integrations.stdlib import _full_url
from bugnet.integrations.threading import ThreadingIntegration
from bugnet.testing import capture_events

SRC = Path(__file__).resolve().parents[1] / "src"
DEFAULTS = ["argv", "atexit", "dedupe", "excepthook", "logging", "modules", "stdlib", "threading"]


def run_script(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports bugnet from this checkout."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    full_env = {"PYTHONPATH": str(SRC), "BUGNET_SPOOL_DIR": str(tmp_path / "spool"), **env}
    if "SYSTEMROOT" in os.environ:  # pragma: no cover - Windows needs it to start Python
        full_env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    return subprocess.run(
        [sys.executable, str(script)], env=full_env, capture_output=True, text=True, timeout=60
    )


def frames_of(event):
    return event["exception"]["values"][-1]["stacktrace"]["frames"]


# -- excepthook -------------------------------------------------------------------------------


def test_uncaught_exception_in_a_script_is_sent_as_unhandled_and_still_printed(tmp_path, collector):
    proc = run_script(
        tmp_path,
        """
        import bugnet

        bugnet.init()

        def checkout():
            raise ValueError("card declined")

        checkout()
        """,
        BUGNET_DSN=collector.dsn,
    )
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ValueError: card declined" in proc.stderr
    (event,) = collector.events()  # delivered before the process exited
    error = event["exception"]["values"][-1]
    assert (error["type"], error["value"]) == ("ValueError", "card declined")
    assert error["mechanism"] == {"type": "excepthook", "handled": False}
    assert frames_of(event)[-1]["function"] == "checkout"
    assert "excepthook" in event["sdk"]["integrations"]


def test_keyboard_interrupt_is_not_reported(tmp_path, collector):
    proc = run_script(
        tmp_path,
        """
        import bugnet

        bugnet.init()
        bugnet.capture_message("before the interrupt")
        raise KeyboardInterrupt
        """,
        BUGNET_DSN=collector.dsn,
    )
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in proc.stderr
    assert [e.get("message") for e in collector.events()] == ["before the interrupt"]


def test_excepthook_reports_then_prints_the_traceback(capsys):
    with capture_events() as events:
        try:
            raise LookupError("missing sku")
        except LookupError:
            info = sys.exc_info()
        sys.excepthook(*info)
    assert events[0]["exception"]["values"][-1]["mechanism"]["handled"] is False
    assert "LookupError: missing sku" in capsys.readouterr().err


def test_excepthook_stays_quiet_in_an_interactive_session_unless_always_run(monkeypatch, capsys):
    """In a REPL a traceback is the user's typo, not a crash."""
    monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    error = ValueError("typo at the prompt")
    with capture_events() as events:
        sys.excepthook(ValueError, error, None)
    assert events == []
    with capture_events(integrations=[ExcepthookIntegration(always_run=True)]) as events:
        sys.excepthook(ValueError, ValueError("reported anyway"), None)
    assert [e["exception"]["values"][-1]["value"] for e in events] == ["reported anyway"]
    capsys.readouterr()


# -- threading --------------------------------------------------------------------------------


@pytest.fixture
def thread_excepthook(monkeypatch):
    """What reaches threading's own excepthook (instead of pytest's, which would warn)."""
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


def test_exception_escaping_a_thread_is_reported_and_still_reaches_threading_excepthook(
    thread_excepthook,
):
    def work():
        raise ValueError("in a thread")

    with capture_events() as events:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert [str(e) for e in thread_excepthook] == ["in a thread"]
    (event,) = events
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "threading", "handled": False}
    frames = frames_of(event)
    assert frames[-1]["function"] == "work"
    assert not any(str(f["module"]).startswith("bugnet") for f in frames)


def test_thread_subclass_overriding_run_is_covered(thread_excepthook):
    class Worker(threading.Thread):
        def run(self) -> None:
            bugnet.set_tag("job", "reindex")
            raise RuntimeError("worker crashed")

    with capture_events() as events:
        worker = Worker()
        worker.start()
        worker.join()
    assert len(thread_excepthook) == 1
    (event,) = events
    assert event["exception"]["values"][-1]["value"] == "worker crashed"
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "threading"
    assert event["tags"] == {"job": "reindex"}


def test_thread_sees_its_parents_scope_and_keeps_its_own_changes():
    """Tags and user set before start() are inherited; a thread's set_tag reaches neither its
    parent nor a sibling, even while both run at once."""
    barrier = threading.Barrier(2, timeout=10)

    def work(name):
        bugnet.set_tag("worker", name)
        bugnet.add_breadcrumb(message=f"{name} step")
        barrier.wait()  # both threads have set their data before either captures
        bugnet.capture_message(name)

    with capture_events() as events:
        bugnet.set_tag("request", "r-1")
        bugnet.set_user({"id": "42"})
        threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bugnet.capture_message("parent")
    by_message = {e["message"]: e for e in events}
    for name in ("a", "b"):
        assert by_message[name]["tags"] == {"request": "r-1", "worker": name}
        assert by_message[name]["user"] == {"id": "42"}
        assert [c["message"] for c in by_message[name]["breadcrumbs"]["values"]] == [f"{name} step"]
    assert by_message["parent"]["tags"] == {"request": "r-1"}
    assert by_message["parent"]["breadcrumbs"]["values"] == []


def test_thread_started_after_a_sibling_finished_does_not_see_its_tags():
    def first():
        bugnet.set_tag("first", "yes")

    def second():
        bugnet.capture_message("second")

    with capture_events() as events:
        for target in (first, second):
            thread = threading.Thread(target=target)
            thread.start()
            thread.join()
    assert "tags" not in events[0]


def test_propagate_scope_false_gives_threads_a_clean_scope():
    def work():
        bugnet.capture_message("from the thread")

    integration = ThreadingIntegration(propagate_scope=False)
    with capture_events(integrations=[integration]) as events:
        bugnet.set_tag("request", "r-1")
        bugnet.add_breadcrumb(message="parent step")
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert "tags" not in events[0]
    assert events[0]["breadcrumbs"]["values"] == []


def test_propagate_scope_false_threads_keep_max_breadcrumbs():
    def work():
        for n in range(4):
            bugnet.add_breadcrumb(message=f"step {n}")
        bugnet.capture_message("from the thread")

    integration = ThreadingIntegration(propagate_scope=False)
    with capture_events(integrations=[integration], max_breadcrumbs=2) as events:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert [c["message"] for c in events[0]["breadcrumbs"]["values"]] == ["step 2", "step 3"]


def test_pool_task_runs_with_its_submitters_scope_not_the_one_that_started_the_worker():
    """A pool's worker thread outlives the request that started it: each task carries its own
    submitter's data, and leaves none behind for the next task."""

    def work(name):
        bugnet.add_breadcrumb(message=f"{name} step")
        bugnet.capture_message(name)

    with capture_events() as events, ThreadPoolExecutor(max_workers=1) as pool:
        for name in ("a", "b"):
            with bugnet.isolation_scope():
                bugnet.set_tag("request", name)
                pool.submit(work, name).result()
    assert [(e["message"], e["tags"]) for e in events] == [
        ("a", {"request": "a"}),
        ("b", {"request": "b"}),
    ]
    assert [c["message"] for c in events[1]["breadcrumbs"]["values"]] == ["b step"]


def test_finished_threads_are_freed_without_the_garbage_collector():
    """The run() wrapper must not tie a thread to itself in a reference cycle."""

    def work():
        pass

    with capture_events():
        gc.disable()
        try:
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            ref = weakref.ref(thread)
            del thread
            assert ref() is None
        finally:
            gc.enable()


# -- asyncio ----------------------------------------------------------------------------------


def test_concurrent_tasks_each_report_only_their_own_scope_data():
    async def handle(name, mine: asyncio.Event, theirs: asyncio.Event):
        bugnet.set_tag("task", name)
        bugnet.set_user({"id": name})
        bugnet.add_breadcrumb(message=f"{name} step")
        mine.set()
        await theirs.wait()  # the other task has set its data too
        bugnet.capture_message(name)

    async def main():
        bugnet.set_tag("request", "r-1")
        bugnet.add_breadcrumb(message="parent step")
        a_ready, b_ready = asyncio.Event(), asyncio.Event()
        tasks = [
            asyncio.create_task(handle("a", a_ready, b_ready)),
            asyncio.create_task(handle("b", b_ready, a_ready)),
        ]
        bugnet.set_tag("late", "after create_task")
        await asyncio.gather(*tasks)

    with capture_events() as events:
        asyncio.run(main())
    assert sorted(e["message"] for e in events) == ["a", "b"]
    for event in events:
        name = event["message"]
        assert event["tags"] == {"request": "r-1", "task": name}
        assert event["user"] == {"id": name}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [
            "parent step",
            f"{name} step",
        ]
        assert "asyncio" in event["sdk"]["integrations"]


def test_task_runs_the_very_coroutine_it_was_given():
    """No wrapper coroutine: get_coro() is the app's, and a task cancelled before it started
    leaves no "never awaited" warning behind."""

    async def work():
        bugnet.capture_message("never")

    async def main():
        coro = work()
        task = asyncio.create_task(coro)
        assert task.get_coro() is coro
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with capture_events() as events:
        asyncio.run(main())
    assert events == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="create_task(context=) is new in 3.11")
def test_task_given_an_explicit_context_keeps_it():
    async def work():
        bugnet.capture_message("in the given context")

    async def main():
        bugnet.set_tag("request", "r-1")
        context = contextvars.copy_context()  # shares the creator's scopes, by the app's choice
        await asyncio.get_running_loop().create_task(work(), context=context)

    with capture_events() as events:
        asyncio.run(main())
    assert events[0]["tags"] == {"request": "r-1"}


def test_asyncio_imported_after_init_switches_the_integration_on(tmp_path):
    proc = run_script(
        tmp_path,
        """
        import json, sys
        import bugnet
        from bugnet.testing import capture_events

        with capture_events() as events:
            assert "asyncio" not in sys.modules, "init() must not import asyncio"
            import asyncio

            async def handle(name):
                bugnet.set_tag("task", name)
                await asyncio.sleep(0)
                bugnet.capture_message(name)

            async def main():
                await asyncio.gather(handle("a"), handle("b"))

            asyncio.run(main())
        print(json.dumps(events))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    events = json.loads(proc.stdout.splitlines()[-1])
    assert sorted((e["message"], e["tags"]["task"]) for e in events) == [("a", "a"), ("b", "b")]
    assert "asyncio" in events[0]["sdk"]["integrations"]


# -- atexit -----------------------------------------------------------------------------------


def test_script_that_exits_without_flushing_still_delivers(tmp_path, collector):
    proc = run_script(
        tmp_path,
        """
        import bugnet

        bugnet.init(shutdown_timeout=10)
        bugnet.capture_message("last words")
        """,
        BUGNET_DSN=collector.dsn,
    )
    assert proc.returncode == 0, proc.stderr
    assert [e["message"] for e in collector.events()] == ["last words"]


# -- dedupe -----------------------------------------------------------------------------------


def test_same_exception_captured_twice_is_sent_once_and_the_drop_counted():
    logger = logging.getLogger("app.dedupe")
    with capture_events() as events:
        try:
            raise ValueError("once")
        except ValueError as error:
            bugnet.capture_exception(error)
            logger.exception("and logged")
            bugnet.capture_exception(error)
    assert len(events) == 1
    assert "logentry" not in events[0]  # the first capture won
    assert bugnet.get_client().discards.totals[("event_processor", "error")] == 2


def test_different_exceptions_of_the_same_type_are_all_sent():
    with capture_events() as events:
        for n in range(2):
            bugnet.capture_exception(ValueError(n))
    assert [e["exception"]["values"][-1]["value"] for e in events] == ["0", "1"]


# -- modules and argv -------------------------------------------------------------------------


def test_events_list_installed_packages_and_the_command_line():
    with capture_events() as events:
        bugnet.capture_message("hi")
    assert events[0]["modules"]["pytest"] == pytest.__version__
    assert events[0]["extra"]["sys.argv"] == sys.argv


# -- stdlib (http.client) ---------------------------------------------------------------------


@pytest.fixture
def web_server():
    """A tiny HTTP server: 200 on every path except /missing (404)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            body = b"ok"
            self.send_response(404 if self.path.startswith("/missing") else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def http_crumbs(event):
    return [c for c in event["breadcrumbs"]["values"] if c["type"] == "http"]


def test_urllib_request_leaves_an_http_breadcrumb(web_server):
    with capture_events() as events:
        with urllib.request.urlopen(f"{web_server}/items?page=2") as response:
            response.read()
        bugnet.capture_message("after")
    (crumb,) = http_crumbs(events[0])
    assert crumb["category"] == "httplib"
    assert crumb["level"] == "info"
    data = crumb["data"]
    assert data["url"] == f"{web_server}/items"
    assert data["http.query"] == "page=2"
    assert (data["method"], data["status_code"], data["reason"]) == ("GET", 200, "OK")


def test_http_client_error_status_gives_a_warning_breadcrumb(web_server):
    host, port = web_server.removeprefix("http://").split(":")
    with capture_events() as events:
        conn = http.client.HTTPConnection(host, int(port))
        try:
            conn.request("POST", "/missing", body=b"{}")
            conn.getresponse().read()
        finally:
            conn.close()
        bugnet.capture_message("after")
    (crumb,) = http_crumbs(events[0])
    assert crumb["level"] == "warning"
    assert (crumb["data"]["method"], crumb["data"]["status_code"]) == ("POST", 404)
    assert crumb["data"]["url"] == f"{web_server}/missing"


def test_https_urls_are_recognised_by_port_also_for_subclasses():
    """urllib3 and others subclass HTTPSConnection under other names."""

    class VerifiedHTTPSConnection(http.client.HTTPSConnection):
        pass

    assert _full_url(VerifiedHTTPSConnection("shop.example"), "/pay") == (
        "https://shop.example/pay"
    )
    assert _full_url(http.client.HTTPSConnection("shop.example", 8443), "/pay") == (
        "https://shop.example:8443/pay"
    )
    assert _full_url(http.client.HTTPConnection("shop.example"), "/pay") == (
        "http://shop.example/pay"
    )


def test_credentials_in_a_proxied_url_are_filtered():
    conn = http.client.HTTPConnection("proxy.example", 3128)
    assert _full_url(conn, "http://alice:s3cret@shop.example/pay?x=1") == (
        "http://[Filtered]:[Filtered]@shop.example/pay?x=1"
    )
    assert _full_url(conn, "http://shop.example/pay") == "http://shop.example/pay"


def test_the_sdks_own_requests_leave_no_breadcrumbs(collector):
    bugnet.init(collector.dsn)
    bugnet.capture_message("first")
    assert bugnet.flush(10)
    bugnet.capture_message("second")
    assert bugnet.flush(10)
    second = [e for e in collector.events() if e["message"] == "second"]
    assert http_crumbs(second[0]) == []


def test_http_client_imported_after_init_is_seen(tmp_path, web_server):
    proc = run_script(
        tmp_path,
        """
        import json, sys
        import bugnet
        from bugnet.testing import capture_events

        with capture_events() as events:
            assert "http.client" not in sys.modules, "init() must not import http.client"
            import urllib.request

            urllib.request.urlopen(URL).read()
            bugnet.capture_message("after")
        print(json.dumps(events))
        """.replace("URL", repr(f"{web_server}/late")),
    )
    assert proc.returncode == 0, proc.stderr
    (event,) = json.loads(proc.stdout.splitlines()[-1])
    (crumb,) = http_crumbs(event)
    assert crumb["data"]["url"] == f"{web_server}/late"
    assert crumb["data"]["status_code"] == 200


# -- switching integrations on and off --------------------------------------------------------


def test_enabled_integrations_are_listed_in_the_event():
    with capture_events() as events:
        bugnet.capture_message("hi")
    assert events[0]["sdk"]["integrations"] == sorted([*DEFAULTS, *imported_frameworks()])


def test_default_integrations_false_disables_all_of_them(thread_excepthook):
    patched = (
        sys.excepthook,
        threading.Thread.start,
        logging.Logger.callHandlers,
        http.client.HTTPConnection.getresponse,
        asyncio.base_events.BaseEventLoop.create_task,
    )

    def work():
        raise ValueError("in a thread")

    with capture_events(default_integrations=False) as events:
        logging.getLogger("app.disabled").error("not an event")
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        bugnet.capture_message("only")
    assert [e["message"] for e in events] == ["only"]
    assert events[0]["sdk"]["integrations"] == []
    assert "modules" not in events[0]
    assert "sys.argv" not in events[0].get("extra", {})
    assert events[0]["breadcrumbs"]["values"] == []
    assert (
        sys.excepthook,
        threading.Thread.start,
        logging.Logger.callHandlers,
        http.client.HTTPConnection.getresponse,
        asyncio.base_events.BaseEventLoop.create_task,
    ) == patched


@pytest.mark.parametrize("disabled", ["logging", LoggingIntegration], ids=["name", "class"])
def test_disabled_integrations_turns_one_off(disabled):
    with capture_events(disabled_integrations=[disabled]) as events:
        logging.getLogger("app.disabled_one").error("not an event")
        bugnet.capture_message("only")
    assert [e["message"] for e in events] == ["only"]
    assert events[0]["sdk"]["integrations"] == sorted(
        [*(i for i in DEFAULTS if i != "logging"), *imported_frameworks()]
    )


def imported_frameworks() -> list[str]:
    """The auto-enabling integrations whose framework this test process has imported (pytest
    imports asyncio; test_flask.py imports Flask, and so on)."""
    from bugnet.integrations import AUTO_INTEGRATIONS, _load

    return [_load(m, n).identifier for watched, m, n in AUTO_INTEGRATIONS if watched in sys.modules]


def test_reset_restores_every_patched_original():
    """Tests rely on it: each starts from an unpatched interpreter."""
    originals = (
        sys.excepthook,
        threading.Thread.start,
        logging.Logger.callHandlers,
        http.client.HTTPConnection.putrequest,
        asyncio.base_events.BaseEventLoop.create_task,
        ThreadPoolExecutor.submit,
    )
    with capture_events():
        assert threading.Thread.start is not originals[1]
        assert logging.Logger.callHandlers is not originals[2]
        assert ThreadPoolExecutor.submit is not originals[5]
    reset_for_tests()
    assert (
        sys.excepthook,
        threading.Thread.start,
        logging.Logger.callHandlers,
        http.client.HTTPConnection.putrequest,
        asyncio.base_events.BaseEventLoop.create_task,
        ThreadPoolExecutor.submit,
    ) == originals
    assert "callHandlers" not in vars(logging.RootLogger)


# -- import hooks -----------------------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    """A directory on sys.path for throwaway modules, forgotten again after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_when_imported_runs_right_after_a_later_import(module_dir):
    (module_dir / "bugnet_later_mod.py").write_text("VALUE = 1\n")
    importlib.invalidate_caches()
    called = []
    _import_hooks.when_imported("bugnet_later_mod", called.append)
    assert called == []
    import bugnet_later_mod  # type: ignore[import-not-found]

    assert called == [bugnet_later_mod]
    # The module looks as it would without the hook: its own loader, not a wrapper.
    assert type(bugnet_later_mod.__loader__).__name__ == "SourceFileLoader"
    assert bugnet_later_mod.__spec__.loader is bugnet_later_mod.__loader__


def test_when_imported_runs_at_once_for_an_imported_module():
    called = []
    _import_hooks.when_imported("json", called.append)
    assert called == [json]


def test_when_imported_waits_for_an_import_another_thread_is_running(module_dir, monkeypatch):
    (module_dir / "bugnet_slow_mod.py").write_text(
        "import bugnet_test_gate as gate\ngate.entered.set()\ngate.release.wait(10)\n"
    )
    importlib.invalidate_caches()
    gate = types.ModuleType("bugnet_test_gate")
    gate.entered, gate.release = threading.Event(), threading.Event()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bugnet_test_gate", gate)
    importer = threading.Thread(target=importlib.import_module, args=("bugnet_slow_mod",))
    importer.start()
    assert gate.entered.wait(10)  # the import is under way in the other thread
    wait_for_import = _import_hooks._wait_for_import

    def release_then_wait(name: str) -> None:
        gate.release.set()
        wait_for_import(name)

    monkeypatch.setattr(_import_hooks, "_wait_for_import", release_then_wait)
    called = []
    _import_hooks.when_imported("bugnet_slow_mod", called.append)
    importer.join(10)
    assert called == [sys.modules["bugnet_slow_mod"]]


def test_a_failing_callback_is_reported_not_raised_into_the_import(module_dir, swallowed_errors):
    (module_dir / "bugnet_cb_mod.py").write_text("VALUE = 1\n")
    importlib.invalidate_caches()

    def broken(module: types.ModuleType) -> None:
        raise RuntimeError("callback bug")

    _import_hooks.when_imported("bugnet_cb_mod", broken)
    import bugnet_cb_mod  # type: ignore[import-not-found]

    assert bugnet_cb_mod.VALUE == 1
    assert [str(e) for e in swallowed_errors] == ["callback bug"]
    swallowed_errors.clear()


@pytest.mark.parametrize("framework", ["flask", "django", "celery", "starlette", "fastapi"])
def test_importing_an_integration_module_before_its_framework_still_switches_it_on(
    framework: str,
) -> None:
    """``init()``, then ``from bugnet.integrations.flask import ...`` before the app imports
    Flask: that import imports Flask while the integration module is still loading."""
    code = textwrap.dedent(
        f"""
        import bugnet
        from bugnet import _guard
        from bugnet.testing import MemoryTransport
        errors = []
        _guard.internal_error_listeners.append(errors.append)
        bugnet.init(transport=MemoryTransport(), spool_dir=None)
        import bugnet.integrations.{framework}
        print("{framework}" in bugnet.get_client().integrations, errors)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "[]"], out.stderr
