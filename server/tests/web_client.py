"""A signed-in browser-less client for the web UI's tests over real HTTP: a cookie jar, the
login form, and POSTs that carry the CSRF token the way a browser's form does."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message


@dataclass
class Page:
    status: int
    url: str
    headers: Message  # case-insensitive, as HTTP headers are
    text: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class WebClient:
    def __init__(self, base_url: str, follow_redirects: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPCookieProcessor(self.cookies)
        ]
        if not follow_redirects:
            handlers.append(_NoRedirect())
        self._opener = urllib.request.build_opener(*handlers)

    def request(self, method: str, path: str, data: dict[str, object] | None = None) -> Page:
        body = None
        headers = {}
        if data is not None:
            pairs = []
            for key, value in data.items():
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    pairs.append((key, str(item)))
            body = urllib.parse.urlencode(pairs).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.base_url + "/"
        request = urllib.request.Request(self.base_url + path, body, headers, method=method)
        try:
            with self._opener.open(request, timeout=30) as response:
                return Page(response.status, response.url, response.headers,
                            response.read().decode())  # fmt: skip
        except urllib.error.HTTPError as exc:
            return Page(exc.code, exc.url, exc.headers, exc.read().decode())

    def get(self, path: str) -> Page:
        return self.request("GET", path)

    def csrf_token(self) -> str:
        for cookie in self.cookies:
            if cookie.name == "csrftoken":
                return cookie.value or ""
        self.get("/login/")  # sets the cookie
        return next(c.value or "" for c in self.cookies if c.name == "csrftoken")

    def post(self, path: str, data: dict[str, object] | None = None) -> Page:
        return self.request(
            "POST", path, {"csrfmiddlewaretoken": self.csrf_token(), **(data or {})}
        )

    def login(self, username: str, password: str) -> Page:
        page = self.post("/login/", {"username": username, "password": password})
        assert "Sign in to Bugnet" not in page.text, "the login failed"
        return page


def hidden_inputs(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
