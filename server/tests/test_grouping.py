"""Grouping keys (protocol notes §6): pure unit tests, no Django, no database."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import fixture_event

from bugnet_server.digest import grouping
from bugnet_server.digest.frames import trim_native_function
from bugnet_server.digest.grouping import GROUPING_VERSION, GroupingResult, grouping_key
from bugnet_server.digest.message_templates import normalize_message

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def frame(function: str, module: str = "app.orders", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "function": function,
        "module": module,
        "filename": module.replace(".", "/") + ".py",
        "abs_path": "/srv/app/" + module.replace(".", "/") + ".py",
        "lineno": 10,
        "context_line": f"    {function}_body()",
        "in_app": True,
    }
    data.update(fields)
    return data


def library_frame(function: str, module: str = "flask.app", **fields: Any) -> dict[str, Any]:
    path = "/venv/lib/python3.11/site-packages/" + module.replace(".", "/") + ".py"
    return frame(function, module, abs_path=path, in_app=False, **fields)


def error_event(
    frames: list[dict[str, Any]] | None = None,
    type_: str = "ValueError",
    value: str = "bad input",
    **fields: Any,
) -> dict[str, Any]:
    exception: dict[str, Any] = {"type": type_, "value": value}
    if frames is not None:
        exception["stacktrace"] = {"frames": frames}
    return {"platform": "python", "exception": {"values": [exception]}, **fields}


def message_event(template: str, formatted: str | None = None, **fields: Any) -> dict[str, Any]:
    logentry = {"message": template, "formatted": formatted or template}
    return {"platform": "python", "logentry": logentry, **fields}


def js_frame(function: str | None, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"filename": "/srv/web/app.js", "module": "app", "in_app": True}
    if function is not None:
        data["function"] = function
    data.update(fields)
    return data


def js_event(frames: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    exception = {"type": "TypeError", "value": "x is undefined", "stacktrace": {"frames": frames}}
    return {"platform": "javascript", "exception": [exception], **fields}


def values_of(event: dict[str, Any]) -> list[str]:
    return list(grouping_key(event).values)


# --- the captured fixtures ------------------------------------------------------------------


def test_flask_exception_groups_by_in_app_frames_and_type() -> None:
    """Flask's frames are in site-packages (not in-app); the value is left out because a stack
    trace contributes (§6.6)."""
    result = grouping_key(fixture_event("python/flask-exception"))
    assert result.variant == "app"
    assert list(result.values) == [
        "__main__",
        "ratio",
        'return {"ratio": compute_ratio(100, parts)}',
        "__main__",
        "compute_ratio",
        "return total / parts",
        "ZeroDivisionError",
    ]
    assert result.version == GROUPING_VERSION == "bugnet-2026-11"


def test_hash_is_md5_of_the_values_concatenated_without_separator() -> None:
    result = grouping_key(fixture_event("python/flask-exception"))
    assert result.hash == hashlib.md5("".join(result.values).encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{32}", result.hash)


def test_logging_error_groups_by_its_template_not_the_formatted_text() -> None:
    result = grouping_key(fixture_event("python/logging-error"))
    assert result.variant == "message"
    assert list(result.values) == ["Payment failed for order %s (amount %d)"]


def test_capture_message_groups_by_the_legacy_message() -> None:
    result = grouping_key(fixture_event("python/capture-message"))
    assert (result.variant, list(result.values)) == (
        "message",
        ["Disk quota exceeded on /var/data"],
    )


def test_chained_exceptions_are_concatenated_oldest_first() -> None:
    assert values_of(fixture_event("python/chained-exception")) == [
        "__main__",
        "load_config",
        'return cfg["database"]["url"]',
        "KeyError",
        "__main__",
        "<module>",
        'load_config({"database": {}})',
        "__main__",
        "load_config",
        'raise RuntimeError("invalid configuration") from e',
        "RuntimeError",
    ]


def test_exception_group_with_distinct_children_keeps_root_and_children() -> None:
    """Children sorted by type descending; children without a stack add their normalized value."""
    assert values_of(fixture_event("python/exception-group")) == [
        "__main__",
        "<module>",
        "many()",
        "__main__",
        "many",
        'raise ExceptionGroup("several failures", [ValueError("bad value 1"), TypeError("bad type")])',
        "ExceptionGroup",
        "ValueError",
        "bad value <int>",
        "TypeError",
        "bad type",
    ]


def test_node_exception_drops_unknown_function_and_library_frames() -> None:
    """`Socket.?` normalizes to `?` and is dropped; `node:` internals are not in-app."""
    result = grouping_key(fixture_event("javascript-node/capture-exception"))
    assert result.variant == "app"
    assert list(result.values) == [
        "app",
        'try { parseAmount(\'{"amount":"12"}\'); } catch (e) { Sentry.captureException(e); }',
        "app",
        "parseAmount",
        'if (typeof n !== "number") throw new TypeError("amount must be a number, got " + typeof n);',
        "TypeError",
    ]


def test_node_capture_message_groups_by_the_synthetic_exceptions_stack() -> None:
    event = fixture_event("javascript-node/capture-message")
    result = grouping_key(event)
    assert (result.variant, list(result.values)) == (
        "app",
        ["app", 'Sentry.captureMessage("Cache miss rate above 40%", "warning");'],
    )
    event["message"] = event["exception"]["values"][0]["value"] = "Cache miss rate above 90%"
    assert grouping_key(event).hash == result.hash


def test_each_fixture_event_gets_its_own_issue() -> None:
    names = [
        "python/flask-exception",
        "python/logging-error",
        "python/capture-message",
        "python/chained-exception",
        "python/exception-group",
        "javascript-node/capture-exception",
        "javascript-node/capture-message",
    ]
    hashes = {grouping_key(fixture_event(name)).hash for name in names}
    assert len(hashes) == len(names)


# --- the same bug is one issue --------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("user 1234 not found", "user 98 not found"),
        (
            "no order 3f2b8c1e-6a4d-4d8e-9b1a-2c3d4e5f6a7b",
            "no order 11111111-2222-3333-4444-555555555555",
        ),
        ("mail to jane@example.com bounced", "mail to bob.smith+x@corp.co.uk bounced"),
        ("timeout after 35ms talking to 10.0.0.1", "timeout after 120ms talking to 192.168.1.20"),
        ("stale since 2026-11-21T13:57:00Z", "stale since 2025-01-02T01:02:03.123+02:00"),
        ("balance -12.50 below limit", "balance 3.75 below limit"),
    ],
)
def test_same_error_with_different_data_in_its_value_and_no_stack_is_one_issue(
    first: str, second: str
) -> None:
    assert (
        grouping_key(error_event(value=first)).hash == grouping_key(error_event(value=second)).hash
    )


def test_same_log_template_with_different_params_is_one_issue() -> None:
    first = message_event("Payment failed for order %s", "Payment failed for order A-1")
    second = message_event("Payment failed for order %s", "Payment failed for order B-2")
    assert grouping_key(first).hash == grouping_key(second).hash


def test_same_formatted_message_with_different_numbers_is_one_issue() -> None:
    first = {"message": "Retry 3 of 5 failed for job 17"}
    second = {"message": "Retry 4 of 5 failed for job 210"}
    assert grouping_key(first).hash == grouping_key(second).hash


def test_same_code_path_with_different_locals_and_values_is_one_issue() -> None:
    def event(order_id: int) -> dict[str, Any]:
        frames = [
            frame("handle", vars={"order_id": str(order_id)}, pre_context=[f"# {order_id}"]),
            frame("split_order", vars={"parts": "0", "id": str(order_id)}),
        ]
        return error_event(frames, "ZeroDivisionError", f"order {order_id}: division by zero")

    assert grouping_key(event(1)).hash == grouping_key(event(2)).hash


def test_same_crash_on_another_line_of_the_same_function_is_one_issue() -> None:
    """The key has no line numbers: code added above the crash keeps the group."""
    before = error_event([frame("handle", lineno=10), frame("split_order", lineno=42)])
    after = error_event([frame("handle", lineno=12), frame("split_order", lineno=57)])
    assert grouping_key(before).hash == grouping_key(after).hash


def test_same_crash_from_another_install_path_is_one_issue() -> None:
    first = error_event([frame("split_order", abs_path="/srv/a/app/orders.py")])
    second = error_event([frame("split_order", abs_path="/home/b/app/orders.py")])
    assert grouping_key(first).hash == grouping_key(second).hash


def test_changes_in_library_frames_do_not_split_an_in_app_group() -> None:
    app = [frame("view"), frame("split_order")]
    first = error_event([library_frame("wsgi_app"), *app])
    second = error_event([library_frame("dispatch", "django.core.handlers"), *app])
    assert grouping_key(first).hash == grouping_key(second).hash


def test_exception_value_is_ignored_when_a_stack_trace_contributes() -> None:
    frames = [frame("split_order")]
    first = error_event(frames, value="cannot split order A")
    second = error_event(frames, value="totally different text")
    assert grouping_key(first).hash == grouping_key(second).hash
    assert "cannot split order A" not in grouping_key(first).values


# --- different bugs are different issues ----------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (error_event(type_="KeyError"), error_event(type_="ValueError")),
        (error_event([frame("split_order")]), error_event([frame("merge_orders")])),
        (error_event([frame("split_order")]), error_event([frame("split_order", "app.billing")])),
        (
            error_event([frame("f", context_line="return a / b")]),
            error_event([frame("f", context_line="return a // b")]),
        ),
        (error_event(value="disk full"), error_event(value="permission denied")),
        (message_event("cache miss for %s"), message_event("cache hit for %s")),
        (error_event(fingerprint=["payments"]), error_event(fingerprint=["shipping"])),
    ],
    ids=[
        "exception type",
        "crash function",
        "module",
        "context line",
        "value without stack",
        "message",
        "fingerprint",
    ],
)
def test_different_bugs_are_different_issues(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert grouping_key(first).hash != grouping_key(second).hash


# --- in-app and system variants -------------------------------------------------------------


def test_app_variant_uses_only_in_app_frames() -> None:
    event = error_event([library_frame("wsgi_app"), frame("split_order")], "KeyError")
    result = grouping_key(event)
    assert result.variant == "app"
    assert list(result.values) == ["app.orders", "split_order", "split_order_body()", "KeyError"]


def test_without_in_app_frames_the_system_variant_decides() -> None:
    event = error_event([library_frame("wsgi_app"), library_frame("dispatch")], "KeyError", "'x'")
    result = grouping_key(event)
    assert result.variant == "system"
    assert list(result.values) == [
        "flask.app",
        "wsgi_app",
        "wsgi_app_body()",
        "flask.app",
        "dispatch",
        "dispatch_body()",
        "KeyError",
    ]


def test_frames_without_in_app_flag_are_not_in_app() -> None:
    unflagged = frame("split_order")
    del unflagged["in_app"]
    assert grouping_key(error_event([unflagged])).variant == "system"


@pytest.mark.parametrize(
    "path",
    [
        "/venv/lib/python3.11/site-packages/requests/api.py",
        "/usr/lib/python3/dist-packages/yaml/main.py",
        "/srv/web/node_modules/express/lib/router.js",
        "/srv/php/vendor/laravel/framework/src/Router.php",
        "/root/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go",
        "C:\\Python311\\Lib\\site-packages\\requests\\api.py",
        "node_modules/express/lib/router.js",
    ],
)
def test_installed_and_vendored_code_is_never_in_app(path: str) -> None:
    """The default `-app` enhancement rules overrule an SDK that flagged the frame in-app."""
    event = error_event([frame("own_code"), frame("library_code", "lib.mod", abs_path=path)])
    result = grouping_key(event)
    assert "library_code" not in result.values
    assert "own_code" in result.values


@pytest.mark.parametrize(
    "module",
    [
        "java.util.ArrayList",
        "javax.servlet.Filter",
        "sun.misc.Unsafe",
        "org.springframework.web.Servlet",
        "org.apache.catalina.Valve",
    ],
)
def test_jdk_and_framework_java_modules_are_never_in_app(module: str) -> None:
    frames = [
        {"module": "com.shop.Orders", "function": "split", "in_app": True},
        {"module": module, "function": "invoke", "in_app": True},
    ]
    event = {"platform": "java", "exception": [{"type": "E", "stacktrace": {"frames": frames}}]}
    assert grouping_key(event).values == ("com.shop.Orders", "split", "E")


def test_java_module_rules_apply_only_to_java_frames() -> None:
    event = error_event([frame("invoke", "java.helpers")])
    assert grouping_key(event).variant == "app"


def test_stack_without_contributing_frames_falls_back_to_type_and_value() -> None:
    frames = [{"lineno": 3, "in_app": True}, {"colno": 7}]
    result = grouping_key(error_event(frames, "KeyError", "missing key 42"))
    assert (result.variant, list(result.values)) == ("app", ["KeyError", "missing key <int>"])


# --- frames ---------------------------------------------------------------------------------


def test_recursive_frames_count_once() -> None:
    recursive = error_event([frame("walk"), frame("walk"), frame("walk"), frame("leaf")])
    flat = error_event([frame("walk"), frame("leaf")])
    assert grouping_key(recursive).values == grouping_key(flat).values


def test_same_function_on_different_lines_is_not_recursion() -> None:
    event = error_event([frame("walk", lineno=3), frame("walk", lineno=9)])
    assert grouping_key(event).values.count("walk") == 2


def test_module_takes_precedence_over_filename() -> None:
    assert grouping_key(error_event([frame("f", "app.orders")])).values[0] == "app.orders"


def test_filename_is_the_lowercased_basename_when_there_is_no_module() -> None:
    frames = [
        {"filename": "C:\\Shop\\Orders\\Split.PY", "function": "f", "in_app": True},
        {"filename": "/srv/app/Billing.py", "function": "g", "in_app": True},
    ]
    values = grouping_key({"exception": [{"type": "E", "stacktrace": {"frames": frames}}]}).values
    assert values == ("split.py", "f", "billing.py", "g", "E")


def test_filename_falls_back_to_abs_path() -> None:
    frames = [{"abs_path": "/srv/app/jobs.rb", "function": "run", "in_app": True}]
    event = {"platform": "perl", "exception": [{"type": "E", "stacktrace": {"frames": frames}}]}
    assert grouping_key(event).values == ("jobs.rb", "run", "E")


@pytest.mark.parametrize(
    "fields",
    [
        {"filename": "app.js", "abs_path": "https://cdn.example.com/app.js?v=123"},
        {"filename": "app.js", "abs_path": "blob:https://example.com/7f7a"},
        {"filename": "<anonymous>"},
        {"filename": "[native code]"},
    ],
)
def test_url_and_placeholder_filenames_do_not_contribute(fields: dict[str, Any]) -> None:
    frames = [{"function": "render", "in_app": True, **fields}]
    event = {"platform": "other", "exception": [{"type": "E", "stacktrace": {"frames": frames}}]}
    assert grouping_key(event).values == ("render", "E")


def test_context_line_contributes_only_on_source_platforms() -> None:
    python_frame = frame("f", context_line="  x  =   1 ")
    assert grouping_key(error_event([python_frame])).values[2] == "x = 1"
    java_frames = [
        {"module": "com.shop.A", "function": "f", "context_line": "x = 1;", "in_app": True}
    ]
    java = {"platform": "java", "exception": [{"type": "E", "stacktrace": {"frames": java_frames}}]}
    assert grouping_key(java).values == ("com.shop.A", "f", "E")


def test_frame_platform_overrides_event_platform() -> None:
    frames = [frame("f", context_line="x = 1", platform="java")]
    assert grouping_key(error_event(frames)).values == ("app.orders", "f", "ValueError")


def test_context_lines_longer_than_120_characters_are_dropped() -> None:
    long_line = "x = " + "1" * 117
    assert len(long_line) == 121
    assert long_line not in grouping_key(error_event([frame("f", context_line=long_line)])).values
    ok_line = "x = " + "1" * 116
    assert ok_line in grouping_key(error_event([frame("f", context_line=ok_line)])).values


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("Object.handleClick", "handleClick"),
        ("Socket.?", None),
        ("?", None),
        ("<anonymous>", None),
        ("Foo.<anonymous>", None),
        ("<anonymous function>", None),
        ("Anonymous function", None),
        ("render/<", None),
        ("Klass.", None),
    ],
)
def test_javascript_function_names_are_normalized(function: str, expected: str | None) -> None:
    values = grouping_key(js_event([js_frame(function)])).values
    assert values == (("app", expected, "TypeError") if expected else ("app", "TypeError"))


@pytest.mark.parametrize(
    "fields",
    [
        {"function": "eval"},
        {"function": "window.eval"},
        {"function": "f", "abs_path": "[native code]"},
        {"function": "f", "abs_path": "native code"},
        {"function": "f", "abs_path": "eval code"},
        {"function": "f", "abs_path": "<anonymous>"},
    ],
)
def test_javascript_eval_and_native_frames_are_dropped(fields: dict[str, Any]) -> None:
    frames = [js_frame("main"), js_frame(**fields)]
    assert grouping_key(js_event(frames)).values == ("app", "main", "TypeError")


def test_javascript_module_that_is_a_path_suffix_is_dropped() -> None:
    frames = [
        {
            "module": "static/js/app",
            "abs_path": "/srv/static/js/app",
            "function": "f",
            "in_app": True,
        }
    ]
    assert grouping_key(js_event(frames)).values == ("app", "f", "TypeError")


def test_javascript_context_line_from_a_url_without_function_is_dropped() -> None:
    frames = [
        js_frame("main"),
        {"abs_path": "https://x.io/a.js", "context_line": "boom()", "module": "a", "in_app": True},
    ]
    assert grouping_key(js_event(frames)).values == ("app", "main", "a", "TypeError")


def test_javascript_function_from_a_source_map_gives_way_to_the_context_line() -> None:
    mapped = js_frame("minifiedName", context_line="pay(order)", data={"sourcemap": "app.js.map"})
    assert grouping_key(js_event([mapped])).values == ("app", "pay(order)", "TypeError")


def test_single_javascript_frame_without_function_and_local_path_is_ignored() -> None:
    """newstyle:2023-01-11 keeps the legacy inverted URL check (§6.2)."""
    local = js_event([{"abs_path": "/srv/app.js", "module": "app", "in_app": True}])
    assert grouping_key(local).values == ("TypeError", "x is undefined")
    remote = js_event([{"abs_path": "https://x.io/app.js", "module": "app", "in_app": True}])
    assert grouping_key(remote).values == ("app", "TypeError")


def java_values(frames: list[dict[str, Any]]) -> tuple[str, ...]:
    event = {"platform": "java", "exception": [{"type": "E", "stacktrace": {"frames": frames}}]}
    return grouping_key(event).values


def test_java_generated_class_names_are_normalized() -> None:
    frames = [
        {
            "module": "com.shop.Svc$$EnhancerBySpringCGLIB$$1a2b3c4d",
            "function": "a",
            "in_app": True,
        },
        {"module": "com.shop.Dao$$_javassist_42", "function": "b", "in_app": True},
        {"module": "shop.core$fn__1234", "function": "c", "in_app": True},
        {"module": "com.shop.User$HibernateProxy$AbC123", "function": "d", "in_app": True},
        {"module": "com.shop.GeneratedMethodAccessor217", "function": "e", "in_app": True},
        {"filename": "Svc$$EnhancerBySpringCGLIB$$9f8e.java", "function": "f", "in_app": True},
    ]
    assert java_values(frames) == (
        "com.shop.Svc$$EnhancerBySpringCGLIB$$<auto>", "a",
        "com.shop.Dao$$_javassist<auto>", "b",
        "shop.core$fn__<auto>", "c",
        "com.shop.User$HibernateProxy$<auto>", "d",
        "com.shop.GeneratedMethodAccessor", "e",
        "svc$$enhancerbyspringcglib$$<auto>.java", "f",
        "E",
    )  # fmt: skip


def test_java_lambdas_do_not_contribute() -> None:
    frames = [
        {"module": "com.shop.A", "function": "lambda$run$0", "in_app": True},
        {"module": "com.shop.B$$Lambda$14/0x1234", "function": "apply", "in_app": True},
    ]
    assert java_values(frames) == ("com.shop.A", "apply", "E")


def native_values(frames: list[dict[str, Any]], platform: str = "native") -> tuple[str, ...]:
    event = {"platform": platform, "exception": [{"type": "E", "stacktrace": {"frames": frames}}]}
    return grouping_key(event).values


def test_native_unknown_functions_do_not_contribute() -> None:
    frames = [
        {"function": "<unknown>", "filename": "a.c", "in_app": True},
        {"function": "<redacted>", "filename": "b.c", "in_app": True},
    ]
    assert native_values(frames) == ("a.c", "b.c", "E")


def test_native_filename_gives_way_to_the_function_name() -> None:
    frames = [{"function": "void ns::run(int)", "filename": "run.cpp", "in_app": True}]
    assert native_values(frames) == ("ns::run", "E")


def test_native_raw_function_is_used_untrimmed() -> None:
    frames = [{"raw_function": "ns::run(int)", "in_app": True}]
    assert native_values(frames) == ("ns::run(int)", "E")


def test_package_is_the_fallback_when_nothing_else_contributes() -> None:
    frames = [
        {"package": "/usr/lib/libShop.dylib", "instruction_addr": "0x1", "in_app": True},
        {"package": "C:\\app\\Other.dll", "function": "main", "in_app": True},
    ]
    assert native_values(frames) == ("libshop.dylib", "main", "E")


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        ("void ns::Foo<int>::bar(int) const", "ns::Foo<T>::bar"),
        ("std::vector<std::pair<int, int>>::push_back(int const&)", "std::vector<T>::push_back"),
        ("unsigned long long compute(char*, unsigned int)", "compute"),
        ("ns::Foo::operator()(int)", "ns::Foo::operator()"),
        ("bool operator<(A const&, A const&)", "operator<"),
        ("ns::cooperator<int>::run()", "ns::cooperator<T>::run"),
        ("ns::Foo::operator bool() const", "ns::Foo::operator bool"),
        ("(anonymous namespace)::helper(int)", "`anonymous namespace'::helper"),
        ("-[ShopViewController viewDidLoad]", "-[ShopViewController viewDidLoad]"),
        ("<unknown>", "<unknown>"),
        ("Shop.Orders.Split(System.String id)", "Shop.Orders.Split"),
        ("main", "main"),
    ],
)
def test_native_function_signatures_are_trimmed_to_qualified_names(
    signature: str, expected: str
) -> None:
    assert trim_native_function(signature) == expected


def test_csharp_function_names_are_trimmed() -> None:
    frames = [{"module": "Shop.Orders", "function": "Split(System.String id)", "in_app": True}]
    assert native_values(frames, "csharp") == ("Shop.Orders", "Split", "E")


def test_ruby_blocks_and_erb_suffixes_are_normalized() -> None:
    frames = [
        {"module": "Orders", "function": "block (2 levels) in split", "in_app": True},
        {
            "module": "View",
            "function": "_app_views_show_html_erb__3327151541_70361296",
            "in_app": True,
        },
    ]
    assert native_values(frames, "ruby") == (
        "Orders",
        "block",
        "View",
        "_app_views_show_html_erb",
        "E",
    )


def test_php_anonymous_functions_and_classes_do_not_contribute() -> None:
    frames = [
        {"filename": "a.php", "function": "App\\{closure}", "in_app": True},
        {"filename": "b.php", "function": "class@anonymous\x00/srv/b.php:3$0::run", "in_app": True},
        {"filename": "c.php", "function": "[Anonymous function]", "in_app": True},
        {"filename": "d.php", "function": "Orders::split", "in_app": True},
    ]
    assert native_values(frames, "php") == (
        "a.php",
        "b.php",
        "c.php",
        "d.php",
        "Orders::split",
        "E",
    )


def test_only_the_last_250_frames_count() -> None:
    frames = [frame(f"f{i}", lineno=i) for i in range(300)]
    values = grouping_key(error_event(frames)).values
    assert "f49" not in values
    assert "f50" in values


# --- exceptions -----------------------------------------------------------------------------


def test_synthetic_exception_type_does_not_contribute() -> None:
    def event(type_: str) -> dict[str, Any]:
        exception = {
            "type": type_,
            "value": "Fatal Error: EXC_BAD_ACCESS",
            "mechanism": {"type": "mach", "synthetic": True},
            "stacktrace": {"frames": [frame("crash_here")]},
        }
        return {"platform": "python", "exception": {"values": [exception]}}

    assert grouping_key(event("SIGSEGV")).hash == grouping_key(event("EXC_BAD_ACCESS")).hash
    assert "SIGSEGV" not in grouping_key(event("SIGSEGV")).values


def test_synthetic_exception_without_stack_groups_by_its_value() -> None:
    exception = {"type": "Error", "value": "code 42", "mechanism": {"synthetic": True}}
    assert grouping_key({"exception": [exception]}).values == ("code <int>",)


def test_ns_error_contributes_instead_of_the_value() -> None:
    mechanism = {
        "type": "nserror",
        "meta": {"ns_error": {"domain": "NSURLErrorDomain", "code": -1009}},
    }
    exception = {"type": "NSError", "value": "offline 3", "mechanism": mechanism}
    assert grouping_key({"exception": [exception]}).values == (
        "NSError",
        "NSURLErrorDomain",
        "-1009",
    )


def test_chain_mixes_stacked_and_stackless_exceptions_per_exception() -> None:
    cause = {"type": "KeyError", "value": "'user 7'"}
    raised = {"type": "RuntimeError", "value": "boom", "stacktrace": {"frames": [frame("load")]}}
    event = {"platform": "python", "exception": [cause, raised]}
    assert grouping_key(event).values == (
        "KeyError",
        "'user <int>'",
        "app.orders",
        "load",
        "load_body()",
        "RuntimeError",
    )


def group_member(
    type_: str, value: str, exception_id: int, parent_id: int | None
) -> dict[str, Any]:
    mechanism: dict[str, Any] = {"type": "chained", "exception_id": exception_id}
    if parent_id is not None:
        mechanism["parent_id"] = parent_id
    return {"type": type_, "value": value, "mechanism": mechanism}


def exception_group(*children: dict[str, Any], sdk_version: str = "2.75.0") -> dict[str, Any]:
    root = {
        "type": "ExceptionGroup",
        "value": "several failures",
        "mechanism": {"type": "generic", "exception_id": 0, "is_exception_group": True},
        "stacktrace": {"frames": [frame("many")]},
    }
    sdk = {"name": "sentry.python", "version": sdk_version}
    return {"platform": "python", "sdk": sdk, "exception": {"values": [*children, root]}}


def test_exception_group_of_one_distinct_error_groups_as_that_error() -> None:
    """The group and duplicate siblings are dropped: "ValueError x" alone and in a group of two
    identical ValueErrors are the same bug."""
    grouped = exception_group(
        group_member("ValueError", "bad value 2", 2, 0),
        group_member("ValueError", "bad value 1", 1, 0),
    )
    assert grouping_key(grouped).values == ("ValueError", "bad value <int>")


def test_exception_group_follows_the_first_child_path() -> None:
    """The SDK lists a group's members in reverse, so the root's first child is the KeyError
    listed last (id 1), whose own first child is the OSError."""
    grouped = exception_group(
        group_member("OSError", "disk", 2, 1),
        group_member("KeyError", "'a'", 3, 0),
        group_member("KeyError", "'a'", 1, 0),
    )
    assert grouping_key(grouped).values == ("KeyError", "'a'", "OSError", "disk")


def test_nested_exception_groups_are_looked_through() -> None:
    inner = group_member("ExceptionGroup", "inner", 1, 0)
    inner["mechanism"]["is_exception_group"] = True
    grouped = exception_group(
        group_member("TypeError", "t", 3, 1),
        group_member("ValueError", "v", 2, 1),
        inner,
    )
    values = grouping_key(grouped).values
    assert values[-4:] == ("ValueError", "v", "TypeError", "t")
    assert "inner" not in values


def test_exceptions_without_ids_are_not_filtered_as_a_group() -> None:
    grouped = exception_group(group_member("ValueError", "a", 1, 0), {"type": "TypeError"})
    assert grouping_key(grouped).values[:3] == ("ValueError", "a", "TypeError")


def test_exception_group_filter_is_skipped_for_python_sdk_3() -> None:
    children = (group_member("ValueError", "a", 2, 0), group_member("ValueError", "a", 1, 0))
    old, new = exception_group(*children), exception_group(*children, sdk_version="3.0.1")
    assert grouping_key(old).values == ("ValueError", "a")
    assert grouping_key(new).values[:4] == ("ValueError", "a", "ValueError", "a")


def test_cyclic_exception_tree_does_not_hang() -> None:
    grouped = exception_group(group_member("A", "a", 1, 2), group_member("B", "b", 2, 1))
    grouped["exception"]["values"][-1]["mechanism"]["parent_id"] = 1
    grouped["exception"]["values"][0]["mechanism"]["is_exception_group"] = True
    grouped["exception"]["values"][1]["mechanism"]["is_exception_group"] = True
    assert isinstance(grouping_key(grouped), GroupingResult)


# --- threads and top-level stack traces -----------------------------------------------------


def thread(stack_function: str, **fields: Any) -> dict[str, Any]:
    return {"id": stack_function, "stacktrace": {"frames": [frame(stack_function)]}, **fields}


@pytest.mark.parametrize(
    ("threads", "expected"),
    [
        ([thread("a"), thread("b", crashed=True)], "b"),
        ([thread("a", current=True), thread("b")], "a"),
        ([thread("only")], "only"),
    ],
)
def test_one_crashed_or_current_or_only_thread_groups_by_its_stack(
    threads: list[dict[str, Any]], expected: str
) -> None:
    result = grouping_key({"threads": {"values": threads}, "message": "hello"})
    assert (result.variant, result.values[1]) == ("app", expected)


def test_several_threads_and_none_chosen_fall_back_to_the_message() -> None:
    result = grouping_key({"threads": [thread("a"), thread("b")], "message": "hello"})
    assert (result.variant, result.values) == ("message", ("hello",))


def test_message_with_a_library_only_stack_groups_by_the_system_stack() -> None:
    """A contributing stack trace in any variant switches off the variants without one."""
    event = {"threads": [{"stacktrace": {"frames": [library_frame("run")]}}], "message": "hello"}
    assert grouping_key(event).variant == "system"


def test_top_level_stacktrace_groups_like_a_thread() -> None:
    event = {"platform": "python", "stacktrace": {"frames": [frame("tick")]}, "message": "hi"}
    assert grouping_key(event).values == ("app.orders", "tick", "tick_body()")


def test_an_exception_outranks_threads_and_messages() -> None:
    event = error_event(type_="KeyError", threads=[thread("a")], message="hello")
    assert grouping_key(event).values == ("KeyError", "bad input")


# --- messages and normalization -------------------------------------------------------------


def test_message_template_is_preferred_to_formatted_text() -> None:
    event = message_event("x %s", "x 1")
    assert grouping_key(event).values == ("x %s",)


def test_formatted_text_is_used_without_template() -> None:
    assert grouping_key({"logentry": {"formatted": "job 12 failed"}}).values == (
        "job <int> failed",
    )
    assert grouping_key({"logentry": "job 12 failed"}).values == ("job <int> failed",)


def test_logentry_wins_over_the_legacy_message() -> None:
    event = {"logentry": {"message": "new %s"}, "message": "old"}
    assert grouping_key(event).values == ("new %s",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from jane.doe+x@example.com", "from <email>"),
        ("GET https://api.example.com/v1/users?id=3 failed", "GET <url> failed"),
        ("ws://10.0.0.1:8080/socket", "<url>"),
        ("cannot resolve db-1.prod.example.org", "cannot resolve <hostname>"),
        ("connect to 192.168.10.254 refused", "connect to <ip> refused"),
        ("connect to 2001:db8:85a3::8a2e:370:7334 refused", "connect to <ip> refused"),
        ("connect to [::1] refused", "connect to [<ip>] refused"),
        ("order 123e4567-e89b-12d3-a456-426614174000", "order <uuid>"),
        ("commit da39a3ee5e6b4b0d3255bfef95601890afd80709", "commit <sha1>"),
        ("etag d41d8cd98f00b204e9800998ecf8427e", "etag <md5>"),
        ("at 2026-11-21T13:57:00.484639Z", "at <date>"),
        ("at 2026-11-21 13:57:00", "at <date>"),
        ("on 2026-11-21", "on <date>"),
        ("at 13:57:00", "at <date>"),
        ("Expires Mon, 02 Jan 2006 15:04:05 GMT", "Expires <date>"),
        ("Expires Monday, 02-Jan-06 15:04:05 MST", "Expires <date>"),
        ("due datetime.datetime(2026, 11, 21, 13, 57)", "due <date>"),
        ("took 350ms", "took <duration>"),
        ("took 1.5s", "took <duration>"),
        ("address 0x7ffee4c3a9f0", "address <hex>"),
        ("ratio 0.75 too high", "ratio <float> too high"),
        ("ratio -0.75 too low", "ratio <float> too low"),
        ("user 42 and -7", "user <int> and <int>"),
        ("WHERE name='bob' AND active=true", "WHERE name=<quoted_str> AND active=<bool>"),
        ('key="value" ok=False', "key=<quoted_str> ok=<bool>"),
    ],
)
def test_normalization_replaces_each_kind_of_volatile_value(text: str, expected: str) -> None:
    assert normalize_message(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "abc123 def",
        "module foo.bar not found",
        "'NoneType' object has no attribute 'id'",
        "user.id is None",
        "main.rs failed",
        "it is true that 'quoted' stays",
    ],
)
def test_normalization_leaves_ordinary_words_alone(text: str) -> None:
    assert normalize_message(text) == text


def test_normalization_keeps_the_first_two_non_empty_lines() -> None:
    assert normalize_message("first\n\n  \nsecond\nthird") == "first\nsecond..."
    assert normalize_message("first\nsecond") == "first\nsecond"
    assert normalize_message("only\n") == "only"


def test_normalization_applies_patterns_in_order() -> None:
    """An email contains a hostname, a URL an IP, a UUID and a date digits: the earlier wins."""
    assert normalize_message("jane@example.com") == "<email>"
    assert normalize_message("http://10.0.0.1/x") == "<url>"
    assert normalize_message("00000000-0000-0000-0000-000000000000") == "<uuid>"
    assert normalize_message("2026-11-21") == "<date>"


def test_normalization_handles_long_lines() -> None:
    assert normalize_message("a" * 20000 + "@") == "a" * 20000 + "@"
    assert normalize_message("a." * 5000) == "a." * 5000


# --- fingerprints and checksums -------------------------------------------------------------


def test_custom_fingerprint_replaces_the_default_grouping() -> None:
    result = grouping_key(error_event([frame("f")], fingerprint=["payments", "card-declined"]))
    assert (result.variant, result.values) == ("fingerprint", ("payments", "card-declined"))
    assert result.hash == hashlib.md5(b"paymentscard-declined").hexdigest()


@pytest.mark.parametrize("fingerprint", [["{{ default }}"], ["{{default}}"], [], None, "x", [None]])
def test_default_or_missing_fingerprint_gives_the_normal_key(fingerprint: Any) -> None:
    plain = grouping_key(error_event([frame("f")]))
    assert grouping_key(error_event([frame("f")], fingerprint=fingerprint)) == plain


def test_salted_fingerprint_adds_to_the_default_values() -> None:
    plain = grouping_key(error_event([frame("f")]))
    salted = grouping_key(error_event([frame("f")], fingerprint=["{{ default }}", "tenant-a"]))
    assert salted.values == (*plain.values, "tenant-a")
    assert salted.variant == plain.variant
    other = grouping_key(error_event([frame("f")], fingerprint=["{{ default }}", "tenant-b"]))
    assert len({plain.hash, salted.hash, other.hash}) == 3


def test_fingerprint_numbers_and_booleans_become_strings() -> None:
    result = grouping_key(error_event(fingerprint=[404, 1.0, 2.5, True, "x"]))
    assert result.values == ("404", "1", "2.5", "True", "x")


def crash_event() -> dict[str, Any]:
    frames = [
        frame("handle", "app.views", package="/srv/lib/app.egg"),
        frame("split_order", "app.orders", package="C:\\pkgs\\orders.whl"),
        library_frame("call", "lib.helpers"),
    ]
    return error_event(
        frames,
        "KeyError",
        "'sku'",
        transaction="/orders/{id}",
        level="warning",
        logger="shop.orders",
        tags={"region": "eu", "retries": 3},
    )


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("transaction", "/orders/{id}"),
        ("message", "'sku'"),
        ("type", "KeyError"),
        ("error.type", "KeyError"),
        ("value", "'sku'"),
        ("error.value", "'sku'"),
        ("function", "split_order"),
        ("stack.function", "split_order"),
        ("module", "app.orders"),
        ("stack.module", "app.orders"),
        ("path", "/srv/app/app/orders.py"),
        ("stack.abs_path", "/srv/app/app/orders.py"),
        ("stack.filename", "app/orders.py"),
        ("package", "orders.whl"),
        ("stack.package", "orders.whl"),
        ("level", "warning"),
        ("logger", "shop.orders"),
        ("tags.region", "eu"),
        ("tags.retries", "3"),
        ("tags.missing", "<no-value-for-tag-missing>"),
        ("unknown_thing", "{{ unknown_thing }}"),
    ],
)
def test_fingerprint_variables_resolve_from_the_event_and_crash_frame(
    variable: str, expected: str
) -> None:
    event = crash_event()
    event["fingerprint"] = ["{{ " + variable + " }}"]
    assert grouping_key(event).values == (expected,)


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("transaction", "<no-transaction>"),
        ("message", "<no-message>"),
        ("type", "<no-type>"),
        ("value", "<no-value>"),
        ("function", "<no-function>"),
        ("module", "<no-module>"),
        ("path", "<no-abs-path>"),
        ("stack.filename", "<no-filename>"),
        ("package", "<no-package>"),
        ("logger", "<no-logger>"),
        ("tags.region", "<no-value-for-tag-region>"),
        ("level", "error"),
    ],
)
def test_fingerprint_variables_fall_back_when_missing(variable: str, expected: str) -> None:
    """`level` always has a value: a missing level means `error`, as Relay normalizes it."""
    assert grouping_key({"fingerprint": ["{{" + variable + "}}"]}).values == (expected,)


def test_fingerprint_message_variable_prefers_formatted_text() -> None:
    event = message_event("x %s", "x 1", fingerprint=["{{ message }}"])
    assert grouping_key(event).values == ("x 1",)


def test_fingerprint_tags_accept_pair_lists() -> None:
    event = {"tags": [["region", "us"]], "fingerprint": ["{{ tags.region }}"]}
    assert grouping_key(event).values == ("us",)


def test_crash_frame_is_the_last_frame_when_none_is_in_app() -> None:
    event = error_event([library_frame("a"), library_frame("b")], fingerprint=["{{ function }}"])
    assert grouping_key(event).values == ("b",)


def test_fingerprint_variables_read_the_only_thread_without_exception() -> None:
    event = {"threads": [thread("tick")], "fingerprint": ["{{ function }}"]}
    assert grouping_key(event).values == ("tick",)


def test_fingerprint_can_mix_variables_default_and_literals() -> None:
    event = crash_event()
    event["fingerprint"] = ["{{ type }}", "{{ default }}", "{{ tags.region }}"]
    result = grouping_key(event)
    assert result.values[0] == "KeyError"
    assert result.values[-1] == "eu"
    assert result.values[1:-1] == grouping_key(crash_event()).values


def test_md5_checksum_is_the_key_itself() -> None:
    checksum = "D41D8CD98F00B204E9800998ECF8427E"
    result = grouping_key(error_event(checksum=checksum, fingerprint=["x"]))
    assert (result.variant, result.hash) == ("checksum", checksum.lower())


def test_other_checksums_are_hashed() -> None:
    result = grouping_key(error_event(checksum="release-1 crash"))
    assert result.hash == hashlib.md5(b"release-1 crash").hexdigest()


# --- fallbacks and malformed input ----------------------------------------------------------


def test_event_with_nothing_to_group_by_gets_the_empty_fallback() -> None:
    result = grouping_key({"platform": "python"})
    assert (result.variant, result.values, result.hash) == ("fallback", (), EMPTY_MD5)


def test_fallback_prefers_transaction_over_merging_everything() -> None:
    first = grouping_key({"transaction": "/checkout"})
    second = grouping_key({"transaction": "/login"})
    assert first.variant == "fallback"
    assert first.hash != second.hash


def test_fallback_uses_a_synthetic_exceptions_type() -> None:
    exception = {"type": "SIGABRT", "mechanism": {"synthetic": True}}
    result = grouping_key({"exception": [exception]})
    assert (result.variant, result.values) == ("fallback", ("SIGABRT",))


def test_lone_surrogates_hash_without_error() -> None:
    first = grouping_key(json.loads('{"message": "bad \\ud800 text"}'))
    second = grouping_key(json.loads('{"message": "bad \\ud801 text"}'))
    assert first.hash != second.hash


MALFORMED: list[Any] = [
    None,
    [],
    "event",
    42,
    {},
    {"exception": None},
    {"exception": []},
    {"exception": {"values": None}},
    {"exception": {"values": [None, 1, "x", []]}},
    {"exception": "boom"},
    {"exception": [{}]},
    {"exception": [{"type": None, "value": None, "stacktrace": None}]},
    {"exception": [{"type": 5, "value": {"a": [1]}, "mechanism": "generic"}]},
    {"exception": [{"type": "E", "stacktrace": {"frames": None}}]},
    {"exception": [{"type": "E", "stacktrace": {"frames": "abc"}}]},
    {"exception": [{"type": "E", "stacktrace": {"frames": [None, 3, "f", [], {}]}}]},
    {"exception": [{"type": "E", "stacktrace": [1, 2]}]},
    {
        "exception": [
            {
                "type": "E",
                "stacktrace": {
                    "frames": [
                        {
                            "function": 5,
                            "raw_function": [],
                            "module": {},
                            "filename": 3.5,
                            "abs_path": None,
                            "context_line": 12,
                            "in_app": "yes",
                            "platform": 7,
                            "lineno": "x",
                            "data": "sourcemap",
                            "package": 4,
                        }
                    ]
                },
            }
        ]
    },
    {"exception": [{"type": "E", "mechanism": {"exception_id": "0", "parent_id": [], "meta": 1}}]},
    {"exception": [{"type": "E", "mechanism": {"exception_id": True, "synthetic": "yes"}}]},
    {"exception": [{"value": "v", "mechanism": {"meta": {"ns_error": {"code": None}}}}]},
    {"threads": 5},
    {"threads": {"values": [None, {"crashed": True, "stacktrace": "x"}]}},
    {"stacktrace": {"frames": [{"function": None}]}},
    {"logentry": 5},
    {"logentry": {"message": {}, "formatted": []}},
    {"logentry": {"message": None}, "message": None},
    {"message": {"message": "template %s", "params": None}},
    {"message": "   \n  "},
    {"fingerprint": "x"},
    {"fingerprint": [None, {}, [], "{{ tags. }}", "{{ }}", "{{ tags.a }}"], "tags": 5},
    {"fingerprint": ["{{ function }}", "{{ package }}"], "exception": [{"stacktrace": 1}]},
    {"tags": [["a"], "b", None], "fingerprint": ["{{ tags.a }}"]},
    {"level": [], "platform": {}, "sdk": {"name": 5, "version": None}},
    {"sdk": "sentry.python", "exception": [{"type": "E", "mechanism": {"exception_id": 0}}]},
    {"checksum": {"a": 1}},
    {"checksum": 12345},
    {"platform": "javascript", "exception": [{"stacktrace": {"frames": [{"abs_path": 5}]}}]},
    {"platform": "native", "exception": [{"stacktrace": {"frames": [{"function": "(((<<"}]}}]},
    {"platform": "java", "exception": [{"stacktrace": {"frames": [{"module": "$$$$"}]}}]},
]


@pytest.mark.parametrize("event", MALFORMED)
def test_malformed_events_never_raise(event: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger=grouping.__name__):
        result = grouping_key(event)
    assert re.fullmatch(r"[0-9a-f]{32}", result.hash)
    assert all(isinstance(value, str) for value in result.values)
    assert not caplog.records, "the safety net caught an internal error"


JUNK: list[Any] = [None, "", "x", 0, -1, 2.5, True, [], [None], {}, {"values": None}, [[1]]]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replaced(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    node: Any = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


@pytest.mark.parametrize(
    "name",
    ["python/flask-exception", "python/exception-group", "javascript-node/capture-message"],
)
def test_any_field_of_a_real_event_may_hold_any_json_value(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every field of a real event, replaced in turn by each kind of junk value."""
    event = fixture_event(name)
    for key in ("request", "modules", "contexts", "breadcrumbs", "extra", "_meta"):
        event.pop(key, None)  # large and never read: they would only slow the test down
    with caplog.at_level(logging.ERROR, logger=grouping.__name__):
        for path in paths(event):
            for junk in JUNK:
                result = grouping_key(replaced(event, path, junk))
                assert re.fullmatch(r"[0-9a-f]{32}", result.hash), (path, junk)
    assert not caplog.records


def test_an_internal_error_gives_the_fallback_key_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(grouping, "_default_key", broken)
    with caplog.at_level(logging.ERROR, logger=grouping.__name__):
        result = grouping_key(error_event())
    assert (result.variant, result.hash) == ("fallback", EMPTY_MD5)
    assert "grouping failed" in caplog.text
