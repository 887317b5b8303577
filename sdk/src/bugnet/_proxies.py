"""Which HTTP proxy to use: the ``http_proxy``/``https_proxy`` options, else the usual
environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``)."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from bugnet._dsn import Dsn
    from bugnet._options import Options


class Proxy:
    __slots__ = ("headers", "hostname", "port")

    def __init__(self, hostname: str, port: int, headers: dict[str, str]) -> None:
        self.hostname = hostname
        self.port = port
        self.headers = headers


def proxy_for(dsn: Dsn, options: Options) -> Optional[Proxy]:
    url = options.https_proxy if dsn.scheme == "https" else options.http_proxy
    if dsn.scheme == "https" and url is None:
        url = options.http_proxy
    if url is None:
        import urllib.request

        if urllib.request.proxy_bypass(dsn.host):
            return None
        proxies = urllib.request.getproxies()
        url = proxies.get(dsn.scheme) or (proxies.get("http") if dsn.scheme == "https" else None)
    if not url:
        return None
    parts = urlsplit(url if "://" in url else "http://" + url)
    if not parts.hostname:
        return None
    headers = {}
    if parts.username:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return Proxy(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), headers)
