"""``request`` and ``user`` (protocol notes §5.7), including where the user's IP comes from.

Headers, cookies and the query string are stored in one form whatever the SDK sent: a list of
``[name, value]`` string pairs in the order sent. Pairs, unlike an object, keep a repeated header
or query parameter, and they are what Relay stores too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import parse_qsl

from bugnet_server.digest.fields import (
    INVALID,
    ProcessingErrors,
    Reader,
    bag_reader,
    expect_dict,
    lenient_string,
    lenient_string_reader,
    read_int,
    read_object,
    string_reader,
)
from bugnet_server.digest.trimming import (
    EMAIL,
    ENUMLIKE,
    LARGE,
    PATH,
    SMALL,
    SUMMARY,
    SYMBOL,
    trim_databag,
    trim_string,
)

AUTO_IP: Final = "{{auto}}"
_METHOD: Final = re.compile(r"[A-Z_\-]{3,32}")


def _read_method(value: Any) -> Any:
    if type(value) is not str:
        return INVALID
    method = value.strip().upper()
    return method if _METHOD.fullmatch(method) else INVALID


_REQUEST_READERS: Final[dict[str, Reader]] = {
    "method": _read_method,
    "data": bag_reader(LARGE, objects_only=False),
    "env": bag_reader(LARGE),
    "fragment": string_reader(SUMMARY),
    "body_size": read_int,
    "protocol": string_reader(ENUMLIKE),
    "inferred_content_type": string_reader(ENUMLIKE),
    "api_target": string_reader(ENUMLIKE),
}

_USER_READERS: Final[dict[str, Reader]] = {
    "id": lenient_string_reader(ENUMLIKE),
    "username": lenient_string_reader(ENUMLIKE),
    "name": lenient_string_reader(ENUMLIKE),
    "email": string_reader(EMAIL),
    "segment": string_reader(ENUMLIKE),
    "geo": bag_reader(SMALL),
}
_USER_FIELDS: Final = frozenset({*_USER_READERS, "ip_address", "data"})


def normalize_request(errors: ProcessingErrors, value: Any) -> dict[str, Any] | None:
    """The request; a query string or fragment inside ``url`` moves to its own field."""
    raw = expect_dict(errors, value, "request")
    if raw is None:
        return None
    request = read_object(errors, raw, "request", _REQUEST_READERS)
    query: str | None = None
    url = raw.get("url")
    if type(url) is str:
        url, query, fragment = _split_url(url)
        request["url"] = trim_string(url, PATH)
        if fragment and "fragment" not in request:
            request["fragment"] = trim_string(fragment, SUMMARY)
    elif url is not None:
        errors.invalid("request.url", url)
    query_string = raw.get("query_string")
    for field, given, parse in (
        ("query_string", query if query_string is None else query_string, _parse_query),
        ("cookies", raw.get("cookies"), _parse_cookies),
        ("headers", raw.get("headers"), None),
    ):
        pairs = _pairs(errors, given, f"request.{field}", parse)
        if pairs:
            request[field] = pairs
    return request or None


def _split_url(url: str) -> tuple[str, str | None, str | None]:
    base, _, fragment = url.partition("#")
    base, mark, query = base.partition("?")
    return base, query if mark else None, fragment or None


def _parse_query(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text.removeprefix("?"), keep_blank_values=True)


def _parse_cookies(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals and name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def _pairs(errors: ProcessingErrors, value: Any, path: str, parse: Any) -> list[list[str]]:
    """``[[name, value], ...]`` from an object, a list of pairs, or (with ``parse``) text."""
    if value is None:
        return []
    entries: Iterable[tuple[Any, Any]]
    if type(value) is dict:
        entries = ((key, [key, item]) for key, item in value.items())
    elif type(value) is list:
        entries = enumerate(value)
    elif type(value) is str and parse is not None:
        entries = enumerate(parse(value))
    else:
        errors.invalid(path, value)
        return []
    pairs: list[list[str]] = []
    for label, entry in entries:
        if entry is None:
            continue
        is_pair = (type(entry) is list and len(entry) == 2) or type(entry) is tuple
        if not is_pair or not _add_pair(pairs, entry[0], entry[1]):
            errors.invalid(f"{path}.{label}", entry)
    return pairs


def _add_pair(pairs: list[list[str]], name: Any, value: Any) -> bool:
    """Append ``[name, value]`` (one pair per item when ``value`` is a list of repeated
    values); False when the name or a value is unusable."""
    key = lenient_string(name)
    if key is None:
        return False
    key = trim_string(key, SYMBOL)
    usable = True
    for item in value if type(value) is list else (value,):
        text = lenient_string(item)
        if text is not None:
            pairs.append([key, trim_string(text, SUMMARY)])
        elif item is not None:
            usable = False
    return usable


def normalize_user(
    errors: ProcessingErrors,
    value: Any,
    *,
    remote_addr: Any,
    infer_ip: str | None,
    client_ip: str | None,
) -> dict[str, Any] | None:
    """The user, with unknown keys moved into ``data`` and ``ip_address`` resolved: an explicit
    address wins; ``{{auto}}`` means the connection's address; then ``request.env.REMOTE_ADDR``;
    then, with ``sdk.settings.infer_ip == "auto"``, the connection's address. ``infer_ip ==
    "never"`` turns every inference off. No other address is ever made up."""
    raw = expect_dict(errors, value, "user") or {}
    user = read_object(errors, raw, "user", _USER_READERS)
    data = _user_data(errors, raw)
    if data:
        user["data"] = data
    ip = _user_ip(errors, raw.get("ip_address"), remote_addr, infer_ip, client_ip)
    if ip is not None:
        user["ip_address"] = ip
    return user or None


def _user_data(errors: ProcessingErrors, raw: dict[str, Any]) -> dict[str, Any]:
    data = raw.get("data")
    if data is not None and type(data) is not dict:
        errors.invalid("user.data", data)
        data = None
    extra = {key: item for key, item in raw.items() if key not in _USER_FIELDS}
    merged = {**(data or {}), **extra}
    trimmed = trim_databag(merged, LARGE) if merged else None
    return trimmed if type(trimmed) is dict else {}


def _user_ip(
    errors: ProcessingErrors,
    given: Any,
    remote_addr: Any,
    infer_ip: str | None,
    client_ip: str | None,
) -> str | None:
    inferring = infer_ip != "never"
    if given is not None and given != AUTO_IP:
        ip = _valid_ip(given)
        if ip is not None:
            return ip
        errors.invalid("user.ip_address", given)
    if not inferring:
        return None
    if given == AUTO_IP and client_ip is not None:
        return _valid_ip(client_ip)
    if remote_addr is not None:
        ip = _valid_ip(client_ip) if remote_addr == AUTO_IP else _valid_ip(remote_addr)
        if ip is not None:
            return ip
    if infer_ip == "auto" and client_ip is not None:
        return _valid_ip(client_ip)
    return None


def _valid_ip(value: Any) -> str | None:
    if type(value) is not str:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
