"""The copy-paste snippets of a project's setup page: each framework, with our SDK and with
sentry-sdk (for apps that keep it; it speaks the same protocol to the same DSN).

Plain text: the template shows them escaped in ``<pre><code>``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    id: str  # unique on the page, for the Copy button
    sdk: str  # "Bugnet SDK" | "sentry-sdk"
    install: str
    code: str


@dataclass(frozen=True)
class Framework:
    slug: str
    name: str
    note: str
    snippets: tuple[Snippet, ...]


# (slug, name, note, code with {module} {init} {app}): {module} is bugnet or sentry_sdk.
_FRAMEWORKS = [
    (
        "flask",
        "Flask",
        "Errors in views, their request and the log lines before them are reported.",
        "{imports}from flask import Flask\n\n{init}\n\napp = Flask(__name__)\n",
    ),
    (
        "django",
        "Django",
        "In settings.py. Errors in views, their request, user and SQL queries are reported.",
        "# settings.py\n{imports}\n{init}\n",
    ),
    (
        "celery",
        "Celery",
        "In the module that defines the Celery app, so every worker process runs it. Failed "
        "tasks are reported once, after their last retry.",
        '{imports}from celery import Celery\n\n{init}\n\napp = Celery("tasks")\n',
    ),
    (
        "fastapi",
        "FastAPI",
        "Errors in endpoints and background tasks, with their request, are reported.",
        "{imports}from fastapi import FastAPI\n\n{init}\n\napp = FastAPI()\n",
    ),
    (
        "python",
        "Plain Python",
        "Uncaught exceptions (also in threads) and logged errors are reported; report caught "
        "ones yourself.",
        "{imports}\n{init}\n\ntry:\n    do_something()\nexcept Exception:\n"
        "    {module}.capture_exception()\n",
    ),
]

_SDKS = [
    ("bugnet", "Bugnet SDK", "pip install bugnet", "bugnet"),
    ("sentry", "sentry-sdk", "pip install sentry-sdk", "sentry_sdk"),
]


def frameworks(dsn: str) -> list[Framework]:
    """The setup snippets for ``dsn``, one :class:`Framework` each, both SDKs in each."""
    result = []
    for slug, name, note, template in _FRAMEWORKS:
        snippets = []
        for sdk_slug, sdk_name, install, module in _SDKS:
            code = template.format(
                imports=f"import {module}\n",
                init=f"{module}.init(dsn={_python_string(dsn)})",
                module=module,
            )
            snippets.append(Snippet(f"snippet-{slug}-{sdk_slug}", sdk_name, install, code))
        result.append(Framework(slug, name, note, tuple(snippets)))
    return result


def _python_string(text: str) -> str:
    """``text`` as a Python string literal with double quotes (a DSN never needs escaping,
    but a literal must stay a literal whatever the base URL holds)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
