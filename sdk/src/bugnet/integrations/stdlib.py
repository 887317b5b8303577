"""Stdlib: a breadcrumb for every request made with ``http.client`` (and so ``urllib``,
``requests`` and ``urllib3``, which sit on it): method, URL, status."""

from __future__ import annotations

from bugnet import _api, _import_hooks, _patching
from bugnet._api import add_breadcrumb_to_scope
from bugnet._guard import capture_internal_exceptions
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class StdlibIntegration(Integration):
    identifier = "stdlib"

    @classmethod
    def setup_once(cls) -> None:
        # Patched when the app first imports http.client, so init() does not import it.
        _import_hooks.when_imported("http.client", _patch_http_client)


def _patch_http_client(module: Any) -> None:
    HTTPConnection = module.HTTPConnection
    original_putrequest = HTTPConnection.putrequest
    original_getresponse = HTTPConnection.getresponse

    def putrequest(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not getattr(self, "_bugnet_internal", False):
            with capture_internal_exceptions():
                self._bugnet_request = (method, _full_url(self, url))
        return original_putrequest(self, method, url, *args, **kwargs)

    def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = getattr(self, "_bugnet_request", None)
        status = reason = None
        try:
            response = original_getresponse(self, *args, **kwargs)
            status, reason = response.status, response.reason
            return response
        finally:
            if request is not None:
                self._bugnet_request = None
                _record(request[0], request[1], status, reason)

    _patching.patch(HTTPConnection, "putrequest", putrequest)
    _patching.patch(HTTPConnection, "getresponse", getresponse)


def _full_url(conn: Any, url: str) -> str:
    if "://" in url:  # an absolute URL, as sent to a proxy: it may carry credentials
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        if "@" in netloc:
            netloc = "[Filtered]:[Filtered]@" + netloc.rpartition("@")[2]
        return f"{scheme}://{netloc}{slash}{path}"
    # default_port, not the class name: subclasses (urllib3's) keep HTTPSConnection's 443.
    default = getattr(conn, "default_port", 80)
    scheme = "https" if default == 443 else "http"
    host = conn.host if conn.port in (None, default) else f"{conn.host}:{conn.port}"
    return f"{scheme}://{host}{url}"


def _record(method: str, url: str, status: Any, reason: Any) -> None:
    client = _api.get_client()
    if client.transport is None or StdlibIntegration.identifier not in client.integrations:
        return
    with capture_internal_exceptions():
        query = ""
        if "?" in url:
            url, _, query = url.partition("?")
        data: dict[str, Any] = {"url": url, "http.method": method, "method": method}
        if query:
            data["http.query"] = client.options.event_scrubber.scrub_query_string(query)
        if status is not None:
            data["status_code"] = status
            data["reason"] = reason
        level = (
            "error" if status is None or status >= 500 else "warning" if status >= 400 else "info"
        )
        add_breadcrumb_to_scope(
            client,
            {
                "type": "http",
                "category": "httplib",
                "level": level,
                "data": data,
            },
            {},
        )
