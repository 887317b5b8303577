"""The logging integration: records at INFO and up are breadcrumbs, at ERROR and up events, for
every logger; the public EventHandler and BreadcrumbHandler for dictConfig users."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import bugnet
from bugnet._envelope import parse_envelope
from bugnet.integrations import _logging_hook
from bugnet.integrations.logging import (
    BreadcrumbHandler,
    EventHandler,
    LoggingIntegration,
    ignore_logger,
)
from bugnet.testing import capture_events

SRC = Path(__file__).resolve().parents[1] / "src"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def make_logger(request):
    """Loggers are process-wide: each test gets its own names, and levels, propagation and
    handlers are put back afterwards."""
    made = []
    base = "app." + re.sub(r"\W", "_", request.node.name)

    def make(suffix: str = "", *, propagate: bool = True) -> logging.Logger:
        logger = logging.getLogger(base + suffix)
        made.append((logger, logger.level, logger.propagate, list(logger.handlers)))
        logger.setLevel(logging.DEBUG)
        logger.propagate = propagate
        return logger

    yield make
    for logger, level, propagate, handlers in made:
        logger.setLevel(level)
        logger.propagate = propagate
        logger.handlers[:] = handlers


@pytest.fixture
def logger(make_logger):
    return make_logger()


@pytest.fixture
def isolated_ignore_list(monkeypatch):
    """ignore_logger() changes a process-wide list: give the test its own copy."""
    monkeypatch.setattr(_logging_hook, "_ignored_prefixes", set(_logging_hook._ignored_prefixes))
    monkeypatch.setattr(_logging_hook, "_ignored_patterns", list(_logging_hook._ignored_patterns))
    monkeypatch.setattr(_logging_hook, "_ignore_cache", {})


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def crumbs(event):
    return event.get("breadcrumbs", {}).get("values", [])


def log_crumbs(event):
    return [c for c in crumbs(event) if c["type"] == "log"]


def run_script(tmp_path: Path, code: str) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Run ``code`` in a fresh interpreter; it prints its captured events as JSON, last line."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {"PYTHONPATH": str(SRC), "BUGNET_SPOOL_DIR": str(tmp_path / "spool")}
    if "SYSTEMROOT" in os.environ:  # pragma: no cover - Windows needs it to start Python
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc


# -- breadcrumbs and events -------------------------------------------------------------------


def test_logs_before_an_error_are_its_breadcrumbs_in_order(logger):
    other = logging.getLogger(logger.name + ".db")
    with capture_events() as events:
        logger.info("charging order %s", "A-1001", extra={"order": "A-1001", "attempt": 2})
        other.warning("slow query")
        logger.info("retrying")
        logger.error("Payment failed for order %s (amount %d)", "A-1001", 42)
    assert len(events) == 1
    got = log_crumbs(events[0])
    assert [(c["level"], c["category"], c["message"]) for c in got] == [
        ("info", logger.name, "charging order A-1001"),
        ("warning", other.name, "slow query"),
        ("info", logger.name, "retrying"),
    ]
    assert got[0]["data"] == {"order": "A-1001", "attempt": 2}
    assert got[1]["data"] == {}
    assert all(TIMESTAMP.match(c["timestamp"]) for c in got)
    assert [c["timestamp"] for c in got] == sorted(c["timestamp"] for c in got)


def test_error_record_is_an_event_with_logger_and_logentry(logger):
    with capture_events() as events:
        logger.error("Payment failed for order %s (amount %d)", "A-1001", 42)
    (event,) = events
    assert event["level"] == "error"
    assert event["logger"] == logger.name
    assert event["logentry"] == {
        "message": "Payment failed for order %s (amount %d)",
        "params": ["A-1001", 42],
        "formatted": "Payment failed for order A-1001 (amount 42)",
    }
    assert "exception" not in event
    assert "threads" not in event


def test_event_and_breadcrumbs_have_the_shape_sentry_sdk_sends(logger, fixtures_dir):
    """Same keys and value types as sentry-sdk 2.75's logging-error.envelope."""
    envelope = parse_envelope((fixtures_dir / "python" / "logging-error.envelope").read_bytes())
    (reference,) = [item.json() for item in envelope.items if item.type == "event"]
    with capture_events() as events:
        logger.info("charging order A-1001")
        logger.error("Payment failed for order %s (amount %d)", "A-1001", 42)
    (ours,) = log_crumbs(events[0])
    (theirs,) = reference["breadcrumbs"]["values"]
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert type(ours[key]) is type(value), key
    assert {k: ours[k] for k in ("type", "level", "message", "data")} == {
        k: theirs[k] for k in ("type", "level", "message", "data")
    }
    assert TIMESTAMP.match(theirs["timestamp"])
    assert TIMESTAMP.match(ours["timestamp"])
    assert events[0]["logentry"] == reference["logentry"]
    assert events[0]["level"] == reference["level"]


def test_log_breadcrumbs_keep_their_place_among_other_scopes_breadcrumbs(logger):
    """Breadcrumbs from the global and the isolation scope are merged in time order."""
    with capture_events() as events:
        bugnet.get_global_scope().add_breadcrumb({"message": "global", "timestamp": time.time()})
        logger.info("logged")
        bugnet.add_breadcrumb(message="manual")
        bugnet.capture_message("now")
    assert [c["message"] for c in crumbs(events[0])] == ["global", "logged", "manual"]
    assert all(TIMESTAMP.match(c["timestamp"]) for c in crumbs(events[0]))


def test_error_record_is_a_breadcrumb_of_later_events_not_of_its_own(logger):
    with capture_events() as events:
        logger.error("first failure")
        bugnet.capture_message("later")
    assert [c["message"] for c in log_crumbs(events[0])] == []
    assert [c["message"] for c in log_crumbs(events[1])] == ["first failure"]


def test_debug_is_not_a_breadcrumb_by_default(logger):
    with capture_events() as events:
        logger.debug("noise")
        logger.info("signal")
        bugnet.capture_message("now")
    assert [c["message"] for c in log_crumbs(events[0])] == ["signal"]


def test_warning_is_a_breadcrumb_not_an_event_by_default(logger):
    with capture_events() as events:
        logger.warning("disk at 91%")
    assert events == []


@pytest.mark.parametrize(
    ("levelno", "expected"),
    [(logging.CRITICAL, "fatal"), (logging.ERROR, "error"), (45, "error"), (60, "fatal")],
)
def test_event_level_follows_the_record_level(logger, levelno, expected):
    """A custom level counts as the standard level below it (Relay knows only five)."""
    with capture_events() as events:
        logger.log(levelno, "failed")
    assert events[0]["level"] == expected


def test_custom_level_breadcrumb_uses_the_standard_level_below(logger):
    with capture_events() as events:
        logger.log(25, "notice")
        logger.log(15, "verbose")
        bugnet.capture_message("now")
    assert [(c["level"], c["message"]) for c in log_crumbs(events[0])] == [("info", "notice")]


# -- which loggers are seen -------------------------------------------------------------------


def test_non_propagating_logger_is_seen(make_logger):
    quiet = make_logger(".quiet", propagate=False)
    quiet.addHandler(logging.NullHandler())
    with capture_events() as events:
        quiet.info("step")
        quiet.error("failed")
    assert events[0]["logger"] == quiet.name
    assert [c["message"] for c in log_crumbs(events[0])] == ["step"]


def test_logger_with_its_own_handlers_is_seen_and_the_handlers_still_run(logger):
    handler = ListHandler()
    logger.addHandler(handler)
    with capture_events() as events:
        logger.info("step")
        logger.error("failed")
    assert [r.getMessage() for r in handler.records] == ["step", "failed"]
    assert events[0]["logger"] == logger.name
    assert [c["message"] for c in log_crumbs(events[0])] == ["step"]


def test_root_logger_is_seen():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        with capture_events() as events:
            logging.info("root step")
            logging.error("root failed")
    finally:
        root.setLevel(level)
    assert events[0]["logger"] == "root"
    assert [(c["category"], c["message"]) for c in log_crumbs(events[0])] == [("root", "root step")]


def test_sdk_own_loggers_are_ignored(logger):
    with capture_events() as events:
        logging.getLogger("bugnet").error("internal")
        logging.getLogger("bugnet.transport").error("internal too")
        bugnet.capture_message("now")
    assert [e.get("logger") for e in events] == [None]
    assert log_crumbs(events[0]) == []


def test_a_logger_merely_starting_with_bugnet_is_not_ignored():
    lookalike = logging.getLogger("bugnetwork")
    with capture_events() as events:
        lookalike.error("not ours")
    assert events[0]["logger"] == "bugnetwork"


def test_ignore_logger_silences_the_logger_and_its_children_only(logger, isolated_ignore_list):
    ignore_logger(logger.name)
    sibling = logging.getLogger(logger.name + "_sibling")
    with capture_events() as events:
        logger.info("hidden")
        logging.getLogger(logger.name + ".child").error("hidden too")
        logger.error("hidden as well")
        sibling.error("seen")
    assert [e["logger"] for e in events] == [sibling.name]
    assert log_crumbs(events[0]) == []


def test_ignore_logger_takes_sentry_sdk_style_patterns(logger, isolated_ignore_list):
    ignore_logger(logger.name + ".security.*")
    with capture_events() as events:
        logging.getLogger(logger.name + ".security.csrf").error("hidden")
        logging.getLogger(logger.name + ".security").error("seen: the pattern wants a child")
    assert [e["logger"] for e in events] == [logger.name + ".security"]


# -- the integration's options ----------------------------------------------------------------


def test_levels_are_configurable(logger):
    integration = LoggingIntegration(level=logging.DEBUG, event_level=logging.WARNING)
    with capture_events(integrations=[integration]) as events:
        logger.debug("details")
        logger.warning("careful")
    assert [e["level"] for e in events] == ["warning"]
    assert [c["message"] for c in log_crumbs(events[0])] == ["details"]


def test_level_none_keeps_no_breadcrumbs_but_still_sends_events(logger):
    with capture_events(integrations=[LoggingIntegration(level=None)]) as events:
        logger.info("step")
        logger.error("failed")
    assert [e["logger"] for e in events] == [logger.name]
    assert log_crumbs(events[0]) == []


def test_event_level_none_sends_no_events_but_keeps_breadcrumbs(logger):
    with capture_events(integrations=[LoggingIntegration(event_level=None)]) as events:
        logger.error("failed")
        bugnet.capture_message("now")
    assert [e["message"] for e in events] == ["now"]
    assert [(c["level"], c["message"]) for c in log_crumbs(events[0])] == [("error", "failed")]


def test_explicit_integration_replaces_the_default_one(logger):
    with capture_events(integrations=[LoggingIntegration(level=None, event_level=None)]) as events:
        logger.critical("ignored")
        bugnet.capture_message("now")
    assert [e["message"] for e in events] == ["now"]
    assert "logging" in events[0]["sdk"]["integrations"]


def test_max_breadcrumbs_keeps_the_newest(logger):
    with capture_events(max_breadcrumbs=3) as events:
        for n in range(5):
            logger.info("step %d", n)
        logger.error("failed")
    assert [c["message"] for c in log_crumbs(events[0])] == ["step 2", "step 3", "step 4"]


def test_before_breadcrumb_sees_log_breadcrumbs_with_the_record_and_can_drop_them(logger):
    hints = []

    def before_breadcrumb(crumb, hint):
        hints.append(hint)
        return None if crumb["message"] == "drop me" else crumb

    with capture_events(before_breadcrumb=before_breadcrumb) as events:
        logger.info("keep me")
        logger.info("drop me")
        logger.error("failed")
    assert [c["message"] for c in log_crumbs(events[0])] == ["keep me"]
    records = [h["log_record"] for h in hints]
    assert all(isinstance(r, logging.LogRecord) for r in records)
    assert [r.getMessage() for r in records][:2] == ["keep me", "drop me"]


def test_before_send_that_logs_an_error_does_not_loop(logger):
    """Records logged while the SDK is at work (here in before_send) are not captured."""
    calls = []

    def before_send(event, hint):
        calls.append(event)
        logger.error("logged from before_send")
        return event

    with capture_events(before_send=before_send) as events:
        logger.error("the real error")
    assert len(calls) == 1
    assert [e["logentry"]["formatted"] for e in events] == ["the real error"]


# -- exceptions, stacks, odd records ----------------------------------------------------------


def test_logger_exception_attaches_the_exception_as_handled_logging(logger):
    with capture_events() as events:
        try:
            raise ValueError("card declined")
        except ValueError:
            logger.exception("charge failed for %s", "A-1001")
    (event,) = events
    error = event["exception"]["values"][-1]
    assert (error["type"], error["value"]) == ("ValueError", "card declined")
    assert error["mechanism"] == {"type": "logging", "handled": True}
    assert event["logentry"]["formatted"] == "charge failed for A-1001"
    assert event["logger"] == logger.name


def test_exc_info_given_as_an_exception_instance_is_attached(logger):
    error = KeyError("sku")
    with capture_events() as events:
        logger.error("lookup failed", exc_info=error)
    assert events[0]["exception"]["values"][-1]["type"] == "KeyError"


def test_stack_info_gives_the_stack_of_the_logging_call(logger):
    def charge():
        logger.error("no exception here", stack_info=True)

    with capture_events() as events:
        charge()
    (event,) = events
    assert "exception" not in event
    (thread,) = event["threads"]["values"]
    assert thread["current"] is True
    frames = thread["stacktrace"]["frames"]
    assert frames[-1]["function"] == "charge"  # not logging's or the SDK's frames
    assert not any(str(f.get("module")).startswith(("logging", "bugnet")) for f in frames)


def test_logger_exception_with_nothing_being_handled_gives_a_stack_not_an_exception(logger):
    with capture_events() as events:
        logger.exception("called outside an except block")
    assert "exception" not in events[0]
    assert events[0]["threads"]["values"][0]["stacktrace"]["frames"]


def test_record_whose_args_do_not_match_its_format_still_becomes_an_event(make_logger):
    """Formatting falls back to the template; nothing is raised into the app or swallowed."""
    quiet = make_logger(".quiet", propagate=False)
    quiet.addHandler(logging.NullHandler())  # a formatting handler would report the bad record
    with capture_events() as events:
        quiet.info("%d items", "not-a-number")
        quiet.error("%s and %s", "only one")
    (event,) = events
    assert event["logentry"] == {
        "message": "%s and %s",
        "params": ["only one"],
        "formatted": "%s and %s",
    }
    assert [c["message"] for c in log_crumbs(event)] == ["%d items"]


def test_extra_values_that_are_not_json_become_strings(logger):
    class Order:
        def __repr__(self) -> str:
            return "<Order A-1001>"

    with capture_events() as events:
        logger.error("failed", extra={"order": Order(), "amount": 42})
    assert events[0]["extra"]["order"] == "<Order A-1001>"
    assert events[0]["extra"]["amount"] == 42


def test_dict_args_are_sent_as_params(logger):
    with capture_events() as events:
        logger.error("order %(id)s failed", {"id": "A-1001"})
    assert events[0]["logentry"]["params"] == {"id": "A-1001"}
    assert events[0]["logentry"]["formatted"] == "order A-1001 failed"


# -- the public handlers ----------------------------------------------------------------------


def test_event_and_breadcrumb_handlers_work_without_the_integration(make_logger):
    explicit = make_logger(".explicit", propagate=False)
    explicit.addHandler(EventHandler(level=logging.ERROR))
    explicit.addHandler(BreadcrumbHandler(level=logging.INFO))  # after: not its own breadcrumb
    with capture_events(default_integrations=False) as events:
        explicit.info("step", extra={"order": 7})
        explicit.error("failed %s", "A-1001")
    (event,) = events
    assert event["logentry"]["formatted"] == "failed A-1001"
    assert [(c["message"], c["data"]) for c in log_crumbs(event)] == [("step", {"order": 7})]
    assert event["sdk"]["integrations"] == []


def test_handlers_configured_by_dictconfig_without_the_integration(tmp_path):
    """Extra data is only what the app passed, even though the logging hook never ran."""
    events, _ = run_script(
        tmp_path,
        """
        import json, logging.config
        from bugnet.testing import capture_events

        with capture_events(default_integrations=False) as events:
            logging.config.dictConfig({
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {
                    "events": {"class": "bugnet.integrations.logging.EventHandler",
                               "level": "ERROR"},
                    "crumbs": {"class": "bugnet.integrations.logging.BreadcrumbHandler",
                               "level": "INFO"},
                },
                "loggers": {"shop": {"handlers": ["events", "crumbs"], "level": "DEBUG"}},
            })
            log = logging.getLogger("shop")
            log.debug("not kept")
            log.info("charging %s", "A-1001", extra={"order": "A-1001"})
            log.error("failed %s", "A-1001", extra={"order": "A-1001"})
        print(json.dumps(events))
        """,
    )
    (event,) = events
    assert event["logger"] == "shop"
    assert event["logentry"]["formatted"] == "failed A-1001"
    assert event["extra"] == {"order": "A-1001"}
    assert [(c["message"], c["data"]) for c in log_crumbs(event)] == [
        ("charging A-1001", {"order": "A-1001"})
    ]


def test_dictconfig_handlers_together_with_the_integration_send_and_keep_once(tmp_path):
    """The hook and the handlers see the same records: one event, one breadcrumb each; a
    handler at a lower level than the integration's still sends what it gets."""
    events, _ = run_script(
        tmp_path,
        """
        import json, logging.config
        from bugnet.testing import capture_events

        with capture_events(max_breadcrumbs=50) as events:
            logging.config.dictConfig({
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {
                    "events": {"class": "bugnet.integrations.logging.EventHandler",
                               "level": "WARNING"},
                    "crumbs": {"class": "bugnet.integrations.logging.BreadcrumbHandler",
                               "level": "INFO"},
                },
                "loggers": {
                    "shop": {"handlers": ["events", "crumbs"], "level": "INFO"},
                    "shop.db": {"handlers": ["events", "crumbs"], "level": "INFO"},
                },
            })
            logging.getLogger("shop").info("charging")
            logging.getLogger("shop.db").warning("slow")
            logging.getLogger("shop").error("failed")
        print(json.dumps(events))
        """,
    )
    assert [e["logentry"]["formatted"] for e in events] == ["slow", "failed"]
    assert [c["message"] for c in log_crumbs(events[0])] == ["charging"]
    assert [c["message"] for c in log_crumbs(events[1])] == ["charging", "slow"]


def test_logging_imported_after_init_is_seen(tmp_path):
    events, _ = run_script(
        tmp_path,
        """
        import json, sys
        import bugnet
        from bugnet.testing import capture_events

        with capture_events() as events:
            assert "logging" not in sys.modules, "init() must not import logging"
            import logging

            log = logging.getLogger("late")
            log.setLevel(logging.INFO)
            log.info("step")
            log.error("failed")
        print(json.dumps(events))
        """,
    )
    (event,) = events
    assert event["logger"] == "late"
    assert [c["message"] for c in log_crumbs(event)] == ["step"]
