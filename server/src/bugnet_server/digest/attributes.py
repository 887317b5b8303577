"""Top-level event attributes: names validated like Relay's (release, environment, dist,
logger), tags, fingerprint, contexts, sdk and modules (protocol notes §5.2 and §5.7)."""

from __future__ import annotations

import re
from typing import Any, Final

from bugnet_server.digest.fields import (
    INVALID,
    ProcessingErrors,
    Reader,
    expect_dict,
    lenient_string,
    read_object,
    string_list_reader,
    string_reader,
)
from bugnet_server.digest.trimming import (
    ENUMLIKE,
    ENVIRONMENT,
    LARGE,
    LOGGER,
    RELEASE_MAX,
    SHORT,
    SUMMARY,
    SYMBOL,
    trim_databag,
    trim_string,
)

_TAG_KEY: Final = re.compile(r"[a-zA-Z0-9_.:\-]+")
_DIST: Final = re.compile(r"[a-zA-Z0-9_.\-]+")
_FORBIDDEN_IN_NAMES: Final = re.compile(r"[/\r\n\t\f]")
_RESERVED_RELEASES: Final = frozenset({".", "..", "latest"})
_RESERVED_ENVIRONMENTS: Final = frozenset({".", "..", "none"})
TRANSACTION_SOURCES: Final = frozenset({"custom", "url", "route", "view", "component", "task"})
INFER_IP_MODES: Final = frozenset({"auto", "never", "legacy"})


def read_release(value: Any) -> Any:
    """A release name, or INVALID: over 200 characters, ``/`` or control whitespace, or one of
    ``.``, ``..``, ``latest``. Never cut: a cut release would be a different release."""
    text = lenient_string(value)
    if text is None:
        return INVALID
    text = text.strip()
    if (
        not text
        or len(text) > RELEASE_MAX
        or _FORBIDDEN_IN_NAMES.search(text)
        or text.lower() in _RESERVED_RELEASES
    ):
        return INVALID
    return text


def read_environment(value: Any) -> Any:
    """A non-empty environment name without ``/`` or control whitespace, not ``.``, ``..`` or
    ``none``; cut to 64 characters."""
    if type(value) is not str:
        return INVALID
    text = value.strip()
    if not text or _FORBIDDEN_IN_NAMES.search(text) or text.lower() in _RESERVED_ENVIRONMENTS:
        return INVALID
    return trim_string(text, ENVIRONMENT)


def read_dist(value: Any) -> Any:
    """A distribution: ``[a-zA-Z0-9_.-]``, cut to 64 characters."""
    text = lenient_string(value)
    if text is None or not _DIST.fullmatch(text.strip()):
        return INVALID
    return trim_string(text.strip(), ENVIRONMENT)


def read_logger(value: Any) -> Any:
    if type(value) is not str or "\n" in value or "\r" in value:
        return INVALID
    return trim_string(value, LOGGER)


def normalize_tags(
    errors: ProcessingErrors, value: Any, server_name: str | None
) -> list[list[str]] | None:
    """Tags as ``[[key, value], ...]`` in the order sent, a repeated key keeping its last value.
    ``server_name`` is added as a tag, as Relay does. Invalid tags are left out with an error."""
    entries: list[tuple[str, Any, Any]] = []
    if type(value) is dict:
        entries = [(f"tags.{key}", key, item) for key, item in value.items()]
    elif type(value) is list:
        for index, entry in enumerate(value):
            if type(entry) is list and len(entry) == 2:
                entries.append((f"tags.{index}", entry[0], entry[1]))
            elif entry is not None:
                errors.invalid(f"tags.{index}", entry)
    elif value is not None:
        errors.invalid("tags", value)
    if server_name is not None:
        entries.append(("server_name", "server_name", server_name))
    tags: dict[str, str] = {}
    for path, raw_key, raw_value in entries:
        if raw_value is None:
            continue
        key, text = _tag_key(raw_key), _tag_value(raw_value)
        if key is None or text is None:
            errors.invalid(path, raw_value if key is not None else raw_key)
            continue
        tags[key] = text
    return [[key, text] for key, text in tags.items()] or None


def _tag_key(value: Any) -> str | None:
    text = lenient_string(value)
    if text is None:
        return None
    text = text.strip().replace(" ", "-")
    return trim_string(text, SHORT) if _TAG_KEY.fullmatch(text) else None


def _tag_value(value: Any) -> str | None:
    text = str(value) if type(value) is bool else lenient_string(value)
    if text is None:
        return None
    text = text.strip()
    return trim_string(text, SHORT) if text and "\n" not in text else None


def normalize_fingerprint(errors: ProcessingErrors, value: Any) -> list[str] | None:
    """A list of strings, numbers converted; other entries are left out with an error."""
    if value is None:
        return None
    if type(value) is not list:
        errors.invalid("fingerprint", value)
        return None
    fingerprint: list[str] = []
    for index, item in enumerate(value):
        text = lenient_string(item)
        if text is not None:
            fingerprint.append(trim_string(text, SUMMARY))
        elif item is not None:
            errors.invalid(f"fingerprint.{index}", item)
    return fingerprint or None


def normalize_contexts(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """Each context an object (a large databag) with a ``type``, which defaults to its key."""
    raw = expect_dict(errors, value, "contexts")
    if raw is None:
        return None
    contexts: dict[str, Any] = {}
    for key, item in raw.items():
        context = expect_dict(errors, item, f"contexts.{key}")
        if context is None:
            continue
        trimmed = trim_databag(context, LARGE)
        kind = trimmed.get("type")
        trimmed["type"] = trim_string(kind if type(kind) is str and kind else key, ENUMLIKE)
        contexts[key] = trimmed
    return contexts or None


_SDK_READERS: Final[dict[str, Reader]] = {
    "name": string_reader(ENUMLIKE),
    "version": string_reader(ENUMLIKE),
    "integrations": string_list_reader(ENUMLIKE),
    "features": string_list_reader(ENUMLIKE),
}
_PACKAGE_READERS: Final[dict[str, Reader]] = {
    "name": string_reader(SYMBOL),
    "version": string_reader(ENUMLIKE),
}


def normalize_sdk(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """The SDK description; it needs a ``name``."""
    raw = expect_dict(errors, value, "sdk")
    if raw is None:
        return None
    sdk = read_object(errors, raw, "sdk", _SDK_READERS)
    if "name" not in sdk:
        errors.add("missing_attribute", "sdk.name")
        return None
    packages = raw.get("packages")
    if type(packages) is list:
        sdk["packages"] = [
            package
            for index, item in enumerate(packages)
            if (package := _package(errors, item, f"sdk.packages.{index}"))
        ]
    elif packages is not None:
        errors.invalid("sdk.packages", packages)
    settings = expect_dict(errors, raw.get("settings"), "sdk.settings")
    if settings is not None and settings.get("infer_ip") is not None:
        infer_ip = settings["infer_ip"]
        if type(infer_ip) is str and infer_ip in INFER_IP_MODES:
            sdk["settings"] = {"infer_ip": infer_ip}
        else:
            errors.invalid("sdk.settings.infer_ip", infer_ip)
    return sdk


def _package(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    raw = expect_dict(errors, value, path)
    return None if raw is None else read_object(errors, raw, path, _PACKAGE_READERS) or None


def normalize_modules(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """``{"package": "version"}`` (numbers as text), within the large databag bounds."""
    raw = expect_dict(errors, value, "modules")
    if raw is None:
        return None
    modules: dict[str, str] = {}
    for name, version in raw.items():
        text = lenient_string(version)
        if text is not None:
            modules[name] = text
        elif version is not None:
            errors.invalid(f"modules.{name}", version)
    trimmed = trim_databag(modules, LARGE)
    return trimmed or None


def normalize_transaction_info(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """Only ``source`` is kept, and only when it is one of the known sources."""
    raw = expect_dict(errors, value, "transaction_info")
    source = None if raw is None else raw.get("source")
    if source is None:
        return None
    if type(source) is not str or source not in TRANSACTION_SOURCES:
        errors.invalid("transaction_info.source", source)
        return None
    return {"source": source}
