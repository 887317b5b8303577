"""What an event carries: exception chains and groups, frames, safe locals, defaults, size."""

from __future__ import annotations

import builtins
import importlib.util
import itertools
import json
import os
import platform
import re
import sys
import threading
from pathlib import Path

import packaging
import pytest
from packaging.version import Version

import bugnet
from bugnet import _stacktrace
from bugnet.testing import capture_envelopes, capture_events

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
THIS_FILE = os.path.abspath(__file__)
SOURCE = Path(__file__).read_text().splitlines()
# Named here so the module imports (and ruff passes) on Python < 3.11 too.
ExceptionGroup = getattr(builtins, "ExceptionGroup", None)
needs_exception_groups = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="ExceptionGroup is new in Python 3.11"
)


def capture_error(function, *args, **options):
    """Call ``function``, report what it raises, return the event exactly as it would be sent."""
    with capture_events(**options) as events:
        try:
            function(*args)
        except Exception:
            bugnet.capture_exception()
    assert len(events) == 1
    return events[0]


def values(event):
    return event["exception"]["values"]


def frames(event, index=-1):
    return values(event)[index]["stacktrace"]["frames"]


def import_file(path: Path, name: str):
    """Run ``path`` as module ``name`` without touching ``sys.path`` or ``sys.modules``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the code whose errors the tests report ---------------------------------------------------


def load_config(cfg):
    try:
        return cfg["database"]["url"]
    except KeyError as e:
        raise RuntimeError("invalid configuration") from e


def outer_call():
    inner_call()


def inner_call():
    raise ValueError("deep")


def fail_with(value):
    raise ValueError("boom")


def recurse(depth):
    if depth == 0:
        raise ValueError("bottom")
    recurse(depth - 1)


class Outer:
    class Inner(Exception):
        pass


# -- exception chains -------------------------------------------------------------------------


def test_raise_from_lists_the_cause_first():
    event = capture_error(load_config, {"database": {}})
    assert [(v["type"], v["value"]) for v in values(event)] == [
        ("KeyError", "'url'"),
        ("RuntimeError", "invalid configuration"),
    ]
    for value in values(event):
        assert value["mechanism"] == {"type": "generic", "handled": True}  # no ids for a chain
    assert [f["function"] for f in frames(event, 0)] == ["load_config"]
    assert [f["function"] for f in frames(event, 1)] == ["capture_error", "load_config"]


def test_implicit_context_is_chained_oldest_first():
    def handle():
        try:
            try:
                raise KeyError("first")
            except KeyError:
                raise ValueError("second")
        except ValueError:
            raise TypeError("third")

    event = capture_error(handle)
    assert [v["type"] for v in values(event)] == ["KeyError", "ValueError", "TypeError"]


def test_from_none_cuts_the_chain_where_it_is_used():
    def handle():
        try:
            try:
                raise KeyError("hidden")
            except KeyError:
                raise ValueError("shown") from None
        except ValueError:
            raise TypeError("last")

    event = capture_error(handle)
    assert [v["type"] for v in values(event)] == ["ValueError", "TypeError"]


def test_explicit_cause_replaces_the_context():
    def handle():
        try:
            raise KeyError("while handling this")
        except KeyError:
            raise RuntimeError("failed") from OSError("because of this")

    event = capture_error(handle)
    assert [v["type"] for v in values(event)] == ["OSError", "RuntimeError"]


def test_chain_length_is_bounded_and_keeps_the_newest():
    def raise_long_chain():
        errors = [ValueError(str(i)) for i in range(100)]
        for older, newer in zip(errors, errors[1:]):
            newer.__cause__ = older
        raise errors[-1]

    event = capture_error(raise_long_chain)
    assert len(values(event)) == _stacktrace.MAX_EXCEPTIONS
    assert values(event)[-1]["value"] == "99"
    assert [v["value"] for v in values(event)][:2] == ["75", "76"]


def test_cyclic_chain_lists_each_exception_once():
    def raise_cycle():
        first, second = ValueError("first"), TypeError("second")
        first.__cause__, second.__cause__ = second, first
        raise first

    event = capture_error(raise_cycle)
    assert [v["type"] for v in values(event)] == ["TypeError", "ValueError"]


def test_exception_type_is_the_qualname_and_module_is_none_for_builtins():
    def raise_both():
        try:
            raise ValueError("builtin")
        except ValueError:
            raise Outer.Inner("nested class")

    event = capture_error(raise_both)
    assert [(v["type"], v["module"]) for v in values(event)] == [
        ("ValueError", None),
        ("Outer.Inner", __name__),
    ]


def test_exception_value_is_the_message_followed_by_notes():
    def raise_with_notes():
        error = ValueError("bad input")
        error.__notes__ = ["while parsing line 3", "in file settings.toml"]
        raise error

    event = capture_error(raise_with_notes)
    assert values(event)[-1]["value"] == "bad input\nwhile parsing line 3\nin file settings.toml"


def test_exception_whose_str_raises_is_still_reported():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")

    def raise_unprintable():
        raise Unprintable()

    event = capture_error(raise_unprintable)
    value = values(event)[-1]
    assert value["type"] == "test_exception_whose_str_raises_is_still_reported.<locals>.Unprintable"
    assert value["value"] == "Unprintable()"  # its repr stands in for the str


# -- exception groups -------------------------------------------------------------------------


def many():
    raise ExceptionGroup("several failures", [ValueError("bad value 1"), TypeError("bad type")])


@needs_exception_groups
def test_exception_group_lists_children_first_with_ids_like_sentry_sdk():
    """The same values, mechanisms and order as sentry-sdk 2.75's exception-group fixture."""
    event = capture_error(many)
    assert [{k: v for k, v in value.items() if k != "stacktrace"} for value in values(event)] == [
        {
            "type": "TypeError",
            "value": "bad type",
            "module": None,
            "mechanism": {
                "type": "chained",
                "handled": True,
                "exception_id": 2,
                "source": "exceptions[1]",
                "parent_id": 0,
            },
        },
        {
            "type": "ValueError",
            "value": "bad value 1",
            "module": None,
            "mechanism": {
                "type": "chained",
                "handled": True,
                "exception_id": 1,
                "source": "exceptions[0]",
                "parent_id": 0,
            },
        },
        {
            "type": "ExceptionGroup",
            "value": "several failures",
            "module": None,
            "mechanism": {
                "type": "generic",
                "handled": True,
                "exception_id": 0,
                "is_exception_group": True,
            },
        },
    ]
    # The children were never raised on their own: only the group has a stack trace.
    assert ["stacktrace" in value for value in values(event)] == [False, False, True]
    assert frames(event)[-1]["function"] == "many"


@needs_exception_groups
def test_nested_exception_groups_form_a_tree():
    def raise_nested():
        inner = ExceptionGroup("inner", [TypeError("b"), KeyError("c")])
        raise ExceptionGroup("outer", [ValueError("a"), inner])

    event = capture_error(raise_nested)
    tree = [
        (
            v["type"],
            v["mechanism"].get("exception_id"),
            v["mechanism"].get("parent_id"),
            v["mechanism"].get("source"),
            v["mechanism"].get("is_exception_group", False),
        )
        for v in values(event)
    ]
    assert tree == [
        ("KeyError", 4, 2, "exceptions[1]", False),
        ("TypeError", 3, 2, "exceptions[0]", False),
        ("ExceptionGroup", 2, 0, "exceptions[1]", True),
        ("ValueError", 1, 0, "exceptions[0]", False),
        ("ExceptionGroup", 0, None, None, True),
    ]


@needs_exception_groups
def test_exception_group_cause_is_part_of_the_tree():
    def raise_group_from_cause():
        raise ExceptionGroup("grouped", [ValueError("child")]) from KeyError("cause")

    event = capture_error(raise_group_from_cause)
    tree = [
        (v["type"], v["mechanism"].get("exception_id"), v["mechanism"].get("source"))
        for v in values(event)
    ]
    assert tree == [
        ("ValueError", 2, "exceptions[0]"),
        ("KeyError", 1, "__cause__"),
        ("ExceptionGroup", 0, None),
    ]
    assert values(event)[1]["mechanism"]["parent_id"] == 0


@needs_exception_groups
def test_raised_children_keep_their_own_stack_traces():
    def check(number):
        raise ValueError(f"check {number} failed")

    def gather():
        errors = []
        for number in (1, 2):
            try:
                check(number)
            except ValueError as error:
                errors.append(error)
        raise ExceptionGroup("checks failed", errors)

    event = capture_error(gather)
    children = values(event)[:2]
    for child in children:
        assert [f["function"] for f in child["stacktrace"]["frames"]] == ["gather", "check"]
        assert child["stacktrace"]["frames"][-1]["vars"]["number"] in ("1", "2")


@needs_exception_groups
def test_exception_group_size_is_bounded_and_keeps_the_group():
    def raise_big_group():
        raise ExceptionGroup("many", [ValueError(str(i)) for i in range(100)])

    event = capture_error(raise_big_group)
    assert len(values(event)) == _stacktrace.MAX_EXCEPTIONS
    assert values(event)[-1]["type"] == "ExceptionGroup"
    assert values(event)[-1]["mechanism"]["exception_id"] == 0


# -- frames -----------------------------------------------------------------------------------


def test_frames_go_oldest_first_with_their_location():
    event = capture_error(outer_call)
    stack = frames(event)
    assert [f["function"] for f in stack] == ["capture_error", "outer_call", "inner_call"]
    raise_line = inner_call.__code__.co_firstlineno + 1
    assert stack[-1]["lineno"] == raise_line
    for frame in stack:
        assert frame["filename"] == "test_events.py"
        assert frame["abs_path"] == THIS_FILE
        assert frame["module"] == __name__
        assert frame["in_app"] is True


def test_source_context_is_five_lines_either_side():
    event = capture_error(outer_call)
    frame = frames(event)[-1]
    line = frame["lineno"]
    assert frame["context_line"] == SOURCE[line - 1] == '    raise ValueError("deep")'
    assert frame["pre_context"] == SOURCE[line - 6 : line - 1]
    assert frame["post_context"] == SOURCE[line : line + 5]
    assert len(frame["pre_context"]) == len(frame["post_context"]) == 5


def test_source_context_stops_at_the_edges_of_the_file(tmp_path):
    path = tmp_path / "edgy.py"
    path.write_text("def boom():\n    raise KeyError('edge')\n")
    module = import_file(path, "edgy")
    event = capture_error(module.boom)
    frame = frames(event)[-1]
    assert frame["pre_context"] == ["def boom():"]
    assert frame["context_line"] == "    raise KeyError('edge')"
    assert frame["post_context"] == []


def test_filename_is_relative_to_the_import_root(tmp_path):
    package_dir = tmp_path / "shop" / "billing"
    package_dir.mkdir(parents=True)
    path = package_dir / "charges.py"
    path.write_text("def charge():\n    raise ValueError('declined')\n")
    module = import_file(path, "shop.billing.charges")
    frame = frames(capture_error(module.charge))[-1]
    assert frame["filename"] == "shop/billing/charges.py"
    assert frame["abs_path"] == str(path)
    assert frame["module"] == "shop.billing.charges"
    assert frame["in_app"] is True


def test_stdlib_frames_are_not_in_app():
    event = capture_error(json.loads, "{not json")
    value = values(event)[-1]
    assert (value["type"], value["module"]) == ("JSONDecodeError", "json.decoder")
    stack = value["stacktrace"]["frames"]
    assert stack[0]["function"] == "capture_error"
    assert stack[0]["in_app"] is True
    library = stack[1:]
    assert library
    assert {f["module"] for f in library} <= {"json", "json.decoder"}
    assert {f["filename"] for f in library} <= {"json/__init__.py", "json/decoder.py"}
    assert all(f["in_app"] is False for f in library)


def test_installed_package_frames_are_not_in_app():
    assert "site-packages" in packaging.__file__  # what makes it an installed package here
    event = capture_error(Version, "not a version!")
    stack = frames(event)
    assert stack[0]["in_app"] is True
    library = stack[1:]
    assert library
    for frame in library:
        assert frame["module"].startswith("packaging.")
        assert frame["filename"].startswith("packaging/")
        assert "site-packages" in frame["abs_path"]
        assert frame["in_app"] is False


def test_in_app_include_claims_a_package():
    event = capture_error(Version, "not a version!", in_app_include=["packaging"])
    assert all(f["in_app"] is True for f in frames(event))


def test_in_app_exclude_disowns_app_modules_by_whole_name_prefix():
    event = capture_error(outer_call, in_app_exclude=[__name__])
    assert all(f["in_app"] is False for f in frames(event))
    partial = __name__[:-1]  # a string prefix that is not a module prefix
    event = capture_error(outer_call, in_app_exclude=[partial])
    assert all(f["in_app"] is True for f in frames(event))


def test_include_local_variables_false_sends_no_vars():
    event = capture_error(fail_with, "secret-ish", include_local_variables=False)
    assert all("vars" not in f for f in frames(event))
    assert frames(event)[-1]["context_line"] == '    raise ValueError("boom")'


def test_include_source_context_false_sends_no_source_lines():
    event = capture_error(fail_with, 1, include_source_context=False)
    for frame in frames(event):
        assert not {"pre_context", "context_line", "post_context"} & set(frame)
        assert {"filename", "abs_path", "function", "module", "lineno", "in_app"} <= set(frame)
    assert frames(event)[-1]["vars"] == {"value": "1"}


def test_locals_are_reprs_and_containers_keep_their_shape():
    event = capture_error(fail_with, {"name": "ada", "ids": (1, 2), "ok": True, "none": None})
    assert frames(event)[-1]["vars"] == {
        "value": {"name": "'ada'", "ids": ["1", "2"], "ok": "True", "none": "None"}
    }


def test_frames_beyond_the_limit_are_cut_from_the_middle():
    event = capture_error(recurse, 400)
    stack = frames(event)
    assert len(stack) == _stacktrace.MAX_FRAMES
    assert stack[0]["function"] == "capture_error"
    assert stack[-1]["function"] == "recurse"
    assert stack[-1]["vars"] == {"depth": "0"}


def test_frames_asking_to_be_hidden_are_left_out():
    def helper():
        __tracebackhide__ = True
        inner_call()

    event = capture_error(helper)
    assert [f["function"] for f in frames(event)] == ["capture_error", "inner_call"]


def test_editing_a_sent_frame_does_not_change_later_events():
    def before_send(event, hint):
        frames(event)[-1]["pre_context"].append("edited")
        return event

    first = capture_error(outer_call, before_send=before_send)
    assert frames(first)[-1]["pre_context"][-1] == "edited"
    second = capture_error(outer_call, before_send=None)
    assert "edited" not in frames(second)[-1]["pre_context"]


# -- locals that try to break the capture -----------------------------------------------------


class ReprRaises:
    def __repr__(self):
        raise RuntimeError("no repr")


class ReprRecurses:
    def __repr__(self):
        return repr(self)


class BrokenDict(dict):
    def items(self):
        raise RuntimeError("no items")


def cyclic_dict():
    data = {}
    for key in range(10):
        data[key] = data
    return data


def cyclic_list():
    data = []
    data.extend([data] * 10)
    return data


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def shared_everywhere():
    big = list(range(1_000_000))
    return [[[[big] * 10] * 10] * 10]


def container_depth(value):
    if isinstance(value, dict):
        return 1 + max(map(container_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(container_depth, value), default=0)
    return 0


def leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


HOSTILE_LOCALS = {
    "repr raises": (ReprRaises, lambda v: v == "<ReprRaises object; repr failed: RuntimeError>"),
    "repr recurses": (ReprRecurses, lambda v: v == "<recursion in __repr__>"),
    "10 MB string": (
        lambda: "x" * 10_000_000,
        lambda v: len(v) == 1024 and v.startswith("'xxx") and v.endswith("..."),
    ),
    "10 MB bytes": (
        lambda: b"y" * 10_000_000,
        lambda v: len(v) == 1024 and v.startswith("b'yyy"),
    ),
    "cyclic dict": (cyclic_dict, lambda v: set(v.values()) == {"<cyclic>"}),
    "cyclic list": (cyclic_list, lambda v: v == ["<cyclic>"] * 10),
    "100-deep nesting": (
        lambda: nested(100),
        lambda v: container_depth(v) == 4 and all(isinstance(x, str) for x in leaves(v)),
    ),
    "huge list": (lambda: list(range(1_000_000)), lambda v: v[:2] == ["0", "1"] and len(v) == 11),
    "huge dict": (
        lambda: {str(i): i for i in range(100_000)},
        lambda v: len(v) == 11 and v["..."] == "<99990 more>",
    ),
    "huge int": (lambda: 10**5000, lambda v: "repr failed" in v),
    "dict view": (lambda: {i: i for i in range(1_000_000)}.values(), lambda v: len(v) == 11),
    "items raise": (lambda: BrokenDict(a=1), lambda v: v == "{'a': 1}"),
    "one big list shared at every level": (
        shared_everywhere,
        lambda v: all(isinstance(x, str) and len(x) < 100 for x in leaves(v)),
    ),
    "infinite iterator": (lambda: itertools.count(), lambda v: v == "count(0)"),
}


@pytest.mark.parametrize("name", list(HOSTILE_LOCALS))
def test_hostile_locals_never_break_the_capture_and_stay_small(name):
    make, check = HOSTILE_LOCALS[name]
    event = capture_error(fail_with, make())
    variables = frames(event)[-1]["vars"]
    assert check(variables["value"]), variables["value"]
    assert len(json.dumps(variables)) < 70_000
    assert values(event)[-1]["value"] == "boom"


def test_lazy_locals_are_not_consumed():
    squares = (n * n for n in range(5))
    event = capture_error(fail_with, squares)
    assert frames(event)[-1]["vars"]["value"].startswith("<generator object")
    assert list(squares) == [0, 1, 4, 9, 16]


def test_a_frame_with_many_locals_keeps_the_first_fifty():
    source = "def crowded():\n"
    source += "".join(f"    v{i} = {i}\n" for i in range(60))
    source += "    raise ValueError('crowded')\n"
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    variables = frames(capture_error(namespace["crowded"]))[-1]["vars"]
    assert len(variables) == 51
    assert variables["v49"] == "49"
    assert variables["..."] == "<10 more>"


def test_many_large_locals_are_capped_per_frame():
    def bulky():
        blobs = [["z" * 5000] * 10 for _ in range(10)]  # 100 values, each cut to 1024
        more = list(blobs)
        raise ValueError(len(blobs) + len(more))

    variables = frames(capture_error(bulky))[-1]["vars"]
    size = len(json.dumps(variables))
    assert 60_000 < size < 80_000  # the per-frame budget (64 values' worth), not 200 values
    assert "<truncated>" in json.dumps(variables)


def test_max_value_length_bounds_each_value():
    event = capture_error(fail_with, "w" * 5000, max_value_length=100)
    assert len(frames(event)[-1]["vars"]["value"]) == 100


# -- defaults every event carries -------------------------------------------------------------


def test_event_has_id_timestamp_level_and_platform():
    event = capture_error(outer_call)
    assert HEX32.match(event["event_id"])
    assert RFC3339_UTC.match(event["timestamp"])
    assert event["level"] == "error"
    assert event["platform"] == "python"


def test_sdk_names_bugnet_and_its_integrations():
    event = capture_error(outer_call)
    sdk = event["sdk"]
    assert sdk["name"] == "bugnet.python"
    assert sdk["version"] == bugnet.__version__
    assert sdk["packages"] == [{"name": "pypi:bugnet", "version": bugnet.__version__}]
    assert sdk["integrations"] == sorted(sdk["integrations"])
    assert {
        "argv", "atexit", "dedupe", "excepthook", "logging", "modules", "stdlib", "threading",
    } <= set(sdk["integrations"])  # fmt: skip


def test_runtime_os_and_trace_contexts():
    with capture_events() as events:
        bugnet.capture_message("one")
        bugnet.capture_message("two")
    first, second = events
    contexts = first["contexts"]
    assert contexts["runtime"] == {
        "name": platform.python_implementation(),
        "version": platform.python_version(),
        "build": sys.version,
    }
    assert contexts["os"]["name"] == platform.system()
    assert contexts["os"]["version"] == platform.release()
    trace = contexts["trace"]
    assert HEX32.match(trace["trace_id"])
    assert HEX16.match(trace["span_id"])
    assert second["contexts"]["trace"]["trace_id"] == trace["trace_id"]  # same unit of work


def test_release_environment_and_server_name_come_from_init():
    with capture_events(release="shop@2.0", environment="staging", server_name="web-1") as events:
        bugnet.capture_message("hello")
    assert (events[0]["release"], events[0]["environment"], events[0]["server_name"]) == (
        "shop@2.0",
        "staging",
        "web-1",
    )


def test_environment_defaults_to_production_and_server_name_to_the_host():
    with capture_events() as events:
        bugnet.capture_message("hello")
    assert events[0]["environment"] == "production"
    assert events[0]["server_name"] == platform.node()
    assert "release" not in events[0]


def test_installed_modules_and_argv_are_attached():
    with capture_events() as events:
        bugnet.capture_message("hello")
    assert events[0]["modules"]["pytest"] == pytest.__version__
    assert events[0]["modules"]["bugnet"] == bugnet.__version__
    assert events[0]["extra"]["sys.argv"] == sys.argv


def test_capture_message_sends_a_top_level_message_and_level():
    with capture_events() as events:
        bugnet.capture_message("Disk quota exceeded on /var/data", level="warning")
        bugnet.capture_message("Nightly job done")
    warning, info = events
    assert (warning["message"], warning["level"]) == ("Disk quota exceeded on /var/data", "warning")
    assert info["level"] == "info"
    for event in events:
        assert not {"exception", "logentry", "threads"} & set(event)


def test_attach_stacktrace_adds_the_current_thread_to_messages():
    with capture_events(attach_stacktrace=True) as events:
        bugnet.capture_message("look here")
    (thread,) = events[0]["threads"]["values"]
    assert thread["id"] == threading.get_ident()
    assert thread["current"] is True
    stack = thread["stacktrace"]["frames"]
    assert stack[-1]["function"] == "test_attach_stacktrace_adds_the_current_thread_to_messages"
    assert stack[-1]["context_line"] == '        bugnet.capture_message("look here")'
    assert not [f for f in stack if (f["module"] or "").split(".")[0] == "bugnet"]


def test_attach_stacktrace_leaves_exceptions_alone():
    event = capture_error(outer_call, attach_stacktrace=True)
    assert "threads" not in event


# -- staying under the size limit -------------------------------------------------------------

LIMIT = 1_000_000


def sent_payload(envelopes):
    (envelope,) = envelopes
    (item,) = envelope.items
    return item.payload


def recurse_with_bulky_locals(depth):
    blob = [["b" * 2000] * 10] * 10  # about one frame budget of locals
    if depth == 0:
        raise ValueError(f"bulky {len(blob)}")
    recurse_with_bulky_locals(depth - 1)


def test_enormous_locals_are_shed_first():
    with capture_envelopes() as envelopes:
        for index in range(3):
            bugnet.add_breadcrumb(message=f"step {index}")
        try:
            recurse_with_bulky_locals(40)
        except ValueError:
            bugnet.capture_exception()
    payload = sent_payload(envelopes)
    assert len(payload) <= LIMIT
    event = json.loads(payload)
    assert len(frames(event)) == 42
    assert all("vars" not in f for f in frames(event))
    assert all("context_line" in f for f in frames(event))
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["step 0", "step 1", "step 2"]
    assert event["modules"]["pytest"] == pytest.__version__


def test_enormous_breadcrumbs_are_shed_next_keeping_the_last_ten():
    with capture_envelopes() as envelopes:
        for index in range(90):
            bugnet.add_breadcrumb(
                message=f"big {index}", data={f"k{i}": "d" * 1000 for i in range(20)}
            )
        for index in range(10):
            bugnet.add_breadcrumb(message=f"small {index}")
        bugnet.get_isolation_scope().add_event_processor(with_request({"query": "kept"}))
        try:
            fail_with("local")
        except ValueError:
            bugnet.capture_exception()
    payload = sent_payload(envelopes)
    assert len(payload) <= LIMIT
    event = json.loads(payload)
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == [
        f"small {i}" for i in range(10)
    ]
    assert all("vars" not in f for f in frames(event))
    assert event["request"]["data"] == {"query": "kept"}


def test_enormous_request_body_is_shed_after_breadcrumbs():
    """App data is bounded when captured; a body added later (by before_send) can still be huge."""

    def attach_upload(event, hint):
        return with_request("u" * 2_000_000)(event, hint)

    with capture_envelopes(before_send=attach_upload) as envelopes:
        bugnet.add_breadcrumb(message="before the upload")
        try:
            fail_with("local")
        except ValueError:
            bugnet.capture_exception()
    payload = sent_payload(envelopes)
    assert len(payload) <= LIMIT
    event = json.loads(payload)
    assert "data" not in event["request"]
    assert event["request"]["url"] == "https://shop.example/upload"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["before the upload"]
    assert values(event)[-1]["value"] == "boom"


def test_an_event_too_big_after_all_shedding_is_cut_to_fit():
    def attach_contexts(event, hint):
        for index in range(40):
            event["contexts"][f"ctx{index}"] = {f"k{i}": {"v": "c" * 1024} for i in range(300)}
        return event

    with capture_envelopes(before_send=attach_contexts) as envelopes:
        try:
            fail_with("local")
        except ValueError:
            bugnet.capture_exception()
    payload = sent_payload(envelopes)
    assert len(payload) <= LIMIT
    event = json.loads(payload)
    assert values(event)[-1]["type"] == "ValueError"
    assert HEX32.match(event["event_id"])


def with_request(data):
    def processor(event, hint):
        event["request"] = {"url": "https://shop.example/upload", "method": "POST", "data": data}
        return event

    return processor
