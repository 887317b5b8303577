"""The Celery integration against real Celery: tasks run eagerly in this process, and a real
prefork worker (a subprocess) takes tasks from a real Redis broker and reports to a real HTTP
collector. Events are checked field by field."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import redis
from celery import Celery, Task, signals
from celery.exceptions import Ignore, Reject, Retry

import bugnet
from bugnet.integrations import reset_for_tests
from bugnet.integrations.celery import CeleryIntegration
from bugnet.testing import capture_events
from collector import Collector, Reply

# Read at import: the autouse fixture of conftest.py clears BUGNET_* variables for each test.
REDIS_URL = os.environ.get("BUGNET_TEST_REDIS_URL")
TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"

logger = logging.getLogger("shop.tasks")
logger.setLevel(logging.INFO)  # what an app that logs at INFO configures

app = Celery("shop", set_as_current=False)
app.conf.update(task_always_eager=True, broker_url="memory://")


class PaymentError(Exception):
    """Does not survive pickling (its __init__ wants two arguments): Celery signals a stand-in."""

    def __init__(self, order: int, reason: str) -> None:
        super().__init__(f"order {order}: {reason}")
        self.order = order


@app.task(name="shop.charge")
def charge(order: int, currency: str, password: str = "") -> None:
    logger.info("charging order %s", order)
    total = order * 3
    raise ValueError(f"card declined for order {order} ({total} {currency})")


@app.task(name="shop.flaky", bind=True, max_retries=3)
def flaky(self: Task, succeed_on: int) -> str:
    if self.request.retries < succeed_on:
        raise self.retry(exc=ConnectionError(f"attempt {self.request.retries}"), countdown=0)
    return "charged"


@app.task(name="shop.doomed", bind=True, max_retries=2)
def doomed(self: Task) -> None:
    logger.info("attempt %s", self.request.retries)
    try:
        raise ConnectionError("gateway down")
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=0) from exc


@app.task(name="shop.skip")
def skip() -> None:
    raise Ignore()


@app.task(name="shop.refuse")
def refuse() -> None:
    raise Reject("malformed order", requeue=False)


@app.task(name="shop.lookup", throws=(KeyError,))
def lookup(sku: str) -> None:
    raise KeyError(sku)


@app.task(name="shop.for_customer")
def for_customer(customer: str) -> None:
    bugnet.set_tag("customer", customer)
    logger.info("working for %s", customer)
    raise RuntimeError(f"failed for {customer}")


@app.task(name="shop.restock")
def restock(sku: str) -> str:
    logger.error("stock low for %s", sku)
    return "ok"


@app.task(name="shop.pay")
def pay(order: int) -> None:
    raise PaymentError(order, "declined")


def exception_of(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["exception"]["values"][-1]
    return value


def crumb_messages(event: dict[str, Any]) -> list[str]:
    return [c.get("message") for c in event["breadcrumbs"]["values"]]


@pytest.fixture
def propagating() -> Iterator[None]:
    app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        app.conf.task_eager_propagates = False


# -- eager: tasks run in this process -------------------------------------------------------------


def test_a_failing_task_is_one_event_with_the_task() -> None:
    with capture_events() as events:
        result = charge.delay(7, "EUR", password="hunter2")
    assert result.state == "FAILURE"
    assert len(events) == 1, [exception_of(e)["type"] for e in events]
    event = events[0]
    exception = exception_of(event)
    assert exception["type"] == "ValueError"
    assert exception["value"] == "card declined for order 7 (21 EUR)"
    assert exception["mechanism"] == {"type": "celery", "handled": False}
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "charge"
    assert frame["in_app"] is True
    assert frame["vars"]["total"] == "21"
    assert frame["vars"]["password"] == "[Filtered]"
    assert event["level"] == "error"
    assert event["transaction"] == "shop.charge"
    assert event["tags"]["celery.task_name"] == "shop.charge"
    assert event["tags"]["celery.task_id"] == result.id
    assert event["contexts"]["celery"] == {
        "task_name": "shop.charge",
        "task_id": result.id,
        "args": [7, "EUR"],
        "kwargs": {"password": "[Filtered]"},
        "retries": 0,
        "eager": True,
    }
    assert "charging order 7" in crumb_messages(event)
    assert "celery" in event["sdk"]["integrations"]


def test_an_exception_that_does_not_pickle_is_reported_as_raised() -> None:
    # Celery signals a picklable stand-in (an UnpickleableExceptionWrapper) for it.
    with capture_events() as events:
        pay.delay(12)
    assert len(events) == 1
    exception = exception_of(events[0])
    assert exception["type"] == "PaymentError"
    assert exception["value"] == "order 12: declined"
    assert exception["stacktrace"]["frames"][-1]["function"] == "pay"


def test_a_retry_is_a_breadcrumb_not_an_error() -> None:
    with capture_events() as events:
        result = flaky.delay(2)
        assert result.get() == "charged"
        assert events == []
        bugnet.capture_message("checkout done")  # the caller's own event tells of the retries
    (event,) = events
    retries = [c for c in event["breadcrumbs"]["values"] if c.get("category") == "celery"]
    assert [c["message"] for c in retries] == [
        "shop.flaky retry 1: Retry in 0s: ConnectionError('attempt 0')",
        "shop.flaky retry 2: Retry in 0s: ConnectionError('attempt 1')",
    ]
    assert retries[0]["level"] == "warning"
    assert retries[0]["data"] == {
        "task_name": "shop.flaky",
        "task_id": result.id,
        "retry": 1,
        "exception": "ConnectionError: attempt 0",
    }
    assert "celery.task_name" not in event.get("tags", {})  # the task's scope stayed its own


def test_a_task_whose_retries_run_out_is_reported_once() -> None:
    with capture_events() as events:
        result = doomed.delay()
    assert result.state == "FAILURE"
    assert len(events) == 1
    event = events[0]
    assert exception_of(event)["type"] == "ConnectionError"
    assert exception_of(event)["mechanism"] == {"type": "celery", "handled": False}
    assert event["contexts"]["celery"]["retries"] == 2
    messages = crumb_messages(event)
    assert [m for m in messages if m.startswith("attempt")] == ["attempt 2"]  # this run's log
    assert [m.split(":")[0] for m in messages if "retry" in m] == [
        "shop.doomed retry 1",
        "shop.doomed retry 2",
    ]


def test_ignore_reject_and_expected_errors_are_not_reported() -> None:
    with capture_events() as events:
        assert skip.delay().state == "IGNORED"
        assert refuse.delay().state == "REJECTED"
        assert lookup.delay("sku-9").state == "FAILURE"  # listed in throws=
        assert flaky.delay(0).get() == "charged"
    assert events == []


def test_each_task_runs_in_its_own_scope() -> None:
    with capture_events() as events:
        bugnet.set_tag("caller", "checkout")
        first = for_customer.delay("ann")
        second = for_customer.delay("bob")
        bugnet.capture_message("after the tasks")
    ann, bob, after = events
    assert ann["tags"]["customer"] == "ann"
    assert bob["tags"]["customer"] == "bob"
    assert ann["tags"]["celery.task_id"] == first.id
    assert bob["tags"]["celery.task_id"] == second.id
    assert ann["tags"]["caller"] == bob["tags"]["caller"] == "checkout"  # the caller's, run eagerly
    assert "working for ann" in crumb_messages(ann)
    assert "working for bob" in crumb_messages(bob)
    assert "working for ann" not in crumb_messages(bob)
    assert ann["contexts"]["trace"]["trace_id"] != bob["contexts"]["trace"]["trace_id"]
    assert after["tags"] == {"caller": "checkout"}
    assert "celery" not in after["contexts"]
    assert "transaction" not in after
    assert not any(m.startswith("working for") for m in crumb_messages(after))


def test_an_error_logged_inside_a_task_carries_the_task() -> None:
    with capture_events() as events:
        result = restock.delay("sku-1")
    assert result.get() == "ok"
    (event,) = events
    assert event["logentry"]["formatted"] == "stock low for sku-1"
    assert event["transaction"] == "shop.restock"
    assert event["contexts"]["celery"]["task_id"] == result.id
    assert event["contexts"]["celery"]["args"] == ["sku-1"]


def test_with_eager_propagation_the_failure_is_reported_once(propagating: None) -> None:
    with capture_events() as events:
        with pytest.raises(ValueError, match="card declined for order 5") as raised:
            charge.delay(5, "USD", password="hunter2")
        bugnet.capture_exception(raised.value)  # the caller reports it too: the same exception
    assert len(events) == 1
    event = events[0]
    assert exception_of(event)["mechanism"] == {"type": "celery", "handled": False}
    assert event["transaction"] == "shop.charge"
    assert event["contexts"]["celery"]["args"] == [5, "USD"]
    assert event["contexts"]["celery"]["kwargs"] == {"password": "[Filtered]"}
    assert "charging order 5" in crumb_messages(event)  # the task's scope, although it had ended


def test_with_eager_propagation_retries_and_expected_errors_are_not_reported(
    propagating: None,
) -> None:
    with capture_events() as events:
        with pytest.raises(Retry):  # Celery raises the retry to the caller
            flaky.delay(1)
        with pytest.raises(KeyError):
            lookup.delay("sku-3")
        assert skip.delay().state == "IGNORED"
    assert events == []


def test_a_failure_signalled_outside_a_task_run_carries_the_task() -> None:
    # What the worker's main process does for a hard time limit or a lost child process.
    with capture_events() as events:
        bugnet.add_breadcrumb(message="worker started")
        try:
            raise TimeoutError("hard time limit")
        except TimeoutError as exc:
            error = exc
        signals.task_failure.send(
            sender=charge, task_id="t-1", exception=error, args=(3, "EUR"), kwargs={},
            traceback=None, einfo=None,
        )  # fmt: skip
    (event,) = events
    assert exception_of(event)["type"] == "TimeoutError"
    assert event["transaction"] == "shop.charge"
    assert event["contexts"]["celery"] == {
        "task_name": "shop.charge",
        "task_id": "t-1",
        "args": [3, "EUR"],
        "kwargs": {},
    }
    assert "worker started" not in crumb_messages(event)  # the worker's history is not the task's


def test_the_worker_exit_hooks_deliver_what_is_queued(collector: Collector, tmp_path: Path) -> None:
    collector.reply = lambda received: Reply(delay=0.3)  # a slow server
    bugnet.init(dsn=collector.dsn, spool_dir=str(tmp_path / "spool"), shutdown_timeout=5)
    bugnet.capture_message("from the main process")
    signals.worker_shutdown.send(sender=None)
    assert [e["message"] for e in collector.events()] == ["from the main process"]
    assert bugnet.is_initialized()  # flushed; atexit closes it later
    bugnet.capture_message("from a pool child")
    signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    assert len(collector.events()) == 2  # the child ends with os._exit: closed, all delivered
    assert not bugnet.is_initialized()


def test_the_integration_switches_on_when_the_app_imports_celery(tmp_path: Path) -> None:
    with capture_events():
        assert "celery" in bugnet.get_client().integrations  # celery was imported before
    script = textwrap.dedent(
        """
        import sys
        import bugnet
        assert "celery" not in sys.modules
        bugnet.init(transport=lambda envelope: None)
        assert "celery" not in bugnet.get_client().integrations
        import celery
        print(sorted(bugnet.get_client().integrations))
        """
    )
    out = run_python(tmp_path, script)
    assert out.returncode == 0, out.stderr
    assert "'celery'" in out.stdout


def test_without_celery_the_import_error_names_the_extra(tmp_path: Path) -> None:
    script = "import sys; sys.modules['celery'] = None; import bugnet.integrations.celery"
    out = run_python(tmp_path, script)
    assert out.returncode == 1
    assert "pip install 'bugnet[celery]'" in out.stderr


def test_sentry_sdk_keywords_are_accepted_and_unknown_ones_refused() -> None:
    CeleryIntegration(propagate_traces=False, monitor_beat_tasks=True, exclude_beat_tasks=["x"])
    with pytest.raises(TypeError):
        CeleryIntegration(transaction_style="url")  # type: ignore[call-arg]


def test_switched_off_celery_failures_are_left_to_the_logging_integration() -> None:
    with capture_events(disabled_integrations=["celery"]) as events:
        charge.delay(1, "EUR")
    (event,) = events  # from Celery's own log line of the failure
    assert exception_of(event)["mechanism"] == {"type": "logging", "handled": True}
    assert event["logger"] == "celery.app.trace"
    assert "celery" not in event.get("contexts", {})


def test_a_reset_disconnects_the_signal_receivers() -> None:
    with capture_events():
        assert "bugnet.integrations.celery" in repr(signals.task_failure.receivers)
    reset_for_tests()
    for name in ("task_prerun", "task_postrun", "task_failure", "worker_process_shutdown"):
        assert "bugnet.integrations.celery" not in repr(getattr(signals, name).receivers)


def run_python(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "SENTRY_"))}
    env["PYTHONPATH"] = str(SRC)
    env["BUGNET_SPOOL_DIR"] = str(tmp_path / "spool")
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


# -- a real worker on a real Redis broker ---------------------------------------------------------


class Worker:
    """``celery worker`` in a subprocess, with the app of celery_app/tasks.py, its own queue and
    Redis key prefix, reporting to ``collector``. ``send`` queues a task from this process;
    ``state`` reads the state the worker stored for it (straight from Redis: Celery's result
    backend client would leave connections and subscriptions behind in this process)."""

    def __init__(
        self, tmp_path: Path, collector: Collector, broker: str, options: list[str]
    ) -> None:
        tag = uuid.uuid4().hex[:12]
        self.queue = f"bugnet-test-{tag}"
        self.prefix = f"bugnet-test-{tag}:"
        self.spool = tmp_path / "spool"
        self.log = tmp_path / "worker.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "SENTRY_"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(TESTS), str(SRC)]),
            BUGNET_DSN=collector.dsn,
            BUGNET_SPOOL_DIR=str(self.spool),
            CELERY_APP_BROKER=broker,
            CELERY_APP_QUEUE=self.queue,
            CELERY_APP_PREFIX=self.prefix,
        )
        command = [
            sys.executable, "-m", "celery", "-A", "celery_app.tasks", "worker",
            "--pool=prefork", "--concurrency=1", *options, "-Q", self.queue,
            "-n", f"{self.queue}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=INFO",
        ]  # fmt: skip
        self.redis = redis.Redis.from_url(broker)
        self.producer = Celery("producer", set_as_current=False)
        self.producer.conf.update(
            broker_url=broker,
            broker_transport_options={"global_keyprefix": self.prefix},
            broker_connection_retry_on_startup=True,
        )
        self.connection = self.producer.connection_for_write()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=TESTS, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its pool children are in its process group
            )  # fmt: skip

    def send(self, name: str, *args: Any, **kwargs: Any) -> str:
        """Queue task ``name``; its id."""
        result = self.producer.send_task(
            name, args=args, kwargs=kwargs, queue=self.queue, connection=self.connection
        )
        return str(result.id)

    def state(self, task_id: str, *wanted: str, timeout: float = 30.0) -> str:
        """Poll the state of task ``task_id`` until it is one of ``wanted`` (or the time is up,
        or the worker is gone); its last state."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.redis.get(f"{self.prefix}celery-task-meta-{task_id}")
            state = str(json.loads(raw)["status"]) if raw else "PENDING"
            if state in wanted or time.monotonic() > deadline or self.process.poll() is not None:
                return state
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """A warm shutdown (SIGTERM), as a process manager does; killed if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its pool children too
                self.process.wait()
        return self.process.returncode

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.connection.close()
            self.producer.close()
            keys = list(self.redis.scan_iter(match=f"{self.prefix}*", count=500))
            if keys:
                self.redis.delete(*keys)
            self.redis.close()


@pytest.fixture
def start_worker(tmp_path: Path, collector: Collector) -> Iterator[Callable[..., Worker]]:
    if not REDIS_URL:
        pytest.skip(
            "BUGNET_TEST_REDIS_URL is not set: the real-worker Celery tests need a Redis broker"
        )
    workers: list[Worker] = []

    def start(*options: str) -> Worker:
        worker = Worker(tmp_path, collector, str(REDIS_URL), list(options))
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.close()


def events_by_task(collector: Collector) -> dict[str, list[dict[str, Any]]]:
    """The events received, by the id of the task they come from (None: from no task)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in collector.events():
        if event.get("logger") == "multiprocessing":
            # billiard may log the SIGKILL of a child (as after a hard time limit) at ERROR: a
            # line about the process, which the logging integration sends as a message.
            continue
        task_id = event.get("contexts", {}).get("celery", {}).get("task_id")
        found.setdefault(task_id, []).append(event)
    return found


def summaries(events: Any) -> list[tuple[Any, ...]]:
    """What each event is, in short: for assertion messages."""
    return [
        (
            e.get("logger"),
            e.get("logentry"),
            [x["type"] for x in e.get("exception", {}).get("values", [])],
        )
        for e in events or ()
    ]


def wait_for_tasks(
    collector: Collector, task_ids: set[str], count: int = 1, timeout: float = 30.0
) -> None:
    """Wait until ``count`` events of each task in ``task_ids`` have arrived."""

    def arrived(c: Collector) -> bool:
        found = events_by_task(c)
        return all(len(found.get(task_id, ())) >= count for task_id in task_ids)

    collector.wait_for(arrived, timeout)


def test_a_prefork_worker_with_one_task_per_child_delivers_every_event(
    start_worker: Callable[..., Worker], collector: Collector
) -> None:
    # Each task logs an error (one event), then fails (a second one), in a pool child that ends
    # with os._exit after that one task. The server takes 1 s to answer each envelope, so the
    # second is still queued when Celery ends the child (a second after the task): only the
    # flush at worker_process_shutdown gets it out.
    collector.reply = lambda received: Reply(delay=1.0)
    worker = start_worker("--max-tasks-per-child=1")
    orders = {worker.send("shop.fail_loudly", n, password="hunter2"): n for n in (1, 2, 3)}
    wait_for_tasks(collector, set(orders), count=2)
    found = events_by_task(collector)
    assert set(found) == set(orders), (sorted(found, key=str), worker.output())
    for task_id, order in orders.items():
        logged, failed = sorted(found[task_id], key=lambda e: "exception" in e)
        assert logged["logentry"]["formatted"] == f"declining order {order}"
        assert logged["transaction"] == "shop.fail_loudly"
        exception = exception_of(failed)
        assert exception["type"] == "ValueError"
        assert exception["value"] == f"card declined for order {order}"
        assert exception["mechanism"] == {"type": "celery", "handled": False}
        assert exception["stacktrace"]["frames"][-1]["function"] == "fail_loudly"
        assert failed["transaction"] == "shop.fail_loudly"
        assert failed["tags"]["celery.task_name"] == "shop.fail_loudly"
        assert failed["tags"]["celery.task_id"] == task_id
        assert failed["contexts"]["celery"] == {
            "task_name": "shop.fail_loudly",
            "task_id": task_id,
            "args": [order],
            "kwargs": {"password": "[Filtered]"},
            "retries": 0,
            "queue": worker.queue,
            "eager": False,
        }
        crumbs = [m for m in crumb_messages(failed) if m and "order" in m]
        assert crumbs == [f"charging order {order}", f"declining order {order}"]
    assert list(worker.spool.rglob("*.bnq")) == []  # delivered, not left in the spool
    assert worker.stop() == 0, worker.output()
    assert "internal error in the bugnet SDK" not in worker.output()


def test_one_child_running_many_tasks_keeps_each_in_its_own_scope(
    start_worker: Callable[..., Worker], collector: Collector
) -> None:
    worker = start_worker()  # one pool child runs the tasks one after another
    first = worker.send("shop.fail", 10)
    second = worker.send("shop.fail", 20, password="x")
    flaky = worker.send("shop.flaky")
    skipped = worker.send("shop.skip")
    refused = worker.send("shop.refuse")
    expected = worker.send("shop.lookup", "sku-9")
    assert worker.state(first, "FAILURE") == "FAILURE", worker.output()
    assert worker.state(second, "FAILURE") == "FAILURE", worker.output()
    assert worker.state(flaky, "SUCCESS") == "SUCCESS", worker.output()  # after one Retry
    assert worker.state(skipped, "SKIPPING") == "SKIPPING", worker.output()  # then Ignore
    assert worker.state(refused, "REFUSING", "FAILURE") != "PENDING", worker.output()  # Reject
    assert worker.state(expected, "FAILURE") == "FAILURE", worker.output()  # throws=
    # A hard time limit: the main process kills the child and reports the failure.
    stalled = worker.send("shop.stall")
    assert worker.state(stalled, "FAILURE") == "FAILURE", worker.output()
    wait_for_tasks(collector, {first, second, stalled})
    assert worker.stop() == 0, worker.output()  # a warm shutdown: children exit, all flushed
    found = events_by_task(collector)
    assert set(found) == {first, second, stalled}, (summaries(found.get(None)), worker.output())
    assert [len(events) for events in found.values()] == [1, 1, 1]
    earlier, later = found[first][0], found[second][0]
    assert earlier["tags"]["order"] == "10"
    assert later["tags"]["order"] == "20"
    assert later["contexts"]["celery"]["kwargs"] == {"password": "[Filtered]"}
    assert "charging order 10" in crumb_messages(earlier)
    assert "charging order 20" in crumb_messages(later)
    assert "charging order 10" not in crumb_messages(later)  # the earlier task's log stayed
    assert earlier["contexts"]["trace"]["trace_id"] != later["contexts"]["trace"]["trace_id"]
    (timeout,) = found[stalled]  # no second event for Celery's log lines of it
    exception = exception_of(timeout)
    assert exception["type"] == "TimeLimitExceeded"
    assert exception["mechanism"] == {"type": "celery", "handled": False}
    assert timeout["transaction"] == "shop.stall"
    assert timeout["tags"]["celery.task_id"] == stalled
    assert not any("received" in str(m) for m in crumb_messages(timeout))  # the worker's own log
    assert "internal error in the bugnet SDK" not in worker.output()
