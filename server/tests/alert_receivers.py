"""Real receivers for alert tests: an SMTP server (aiosmtpd) and an HTTP server, each on a
fixed port so it can go down and come back; and what each channel's message says, read back
into one shape (``Message``) so one contract suite checks every channel."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import html
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

# How a receiver of the generic webhook would word each action.
HEADLINES = {"new": "New issue", "regression": "Regression", "spike": "Spike",
             "unignored": "Ignored issue is back", "test": "Test alert"}  # fmt: skip


@dataclass
class Message:
    """One alert as a person would read it (``text``), plus what a program would check."""

    kind: str
    text: str  # everything shown, markup removed, entities decoded
    link: str  # the issue link
    raw: Any  # the JSON body, or the email.message.EmailMessage
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    recipients: list[str] = field(default_factory=list)


class SmtpSink:
    """aiosmtpd on ``port``: every message it accepted, with its recipients."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[list[str], bytes]] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[Message]:
        return [read_email(rcpt, content) for rcpt, content in list(self.messages)]


class HttpSink:
    """A threaded HTTP server on ``port`` that answers ``status`` and keeps every request;
    ``url`` points at ``path``."""

    def __init__(self, port: int, status: int = 200, path: str = "/hook") -> None:
        self.port = port
        self.status = status
        self.path = path
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                sink.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self, kind: str) -> list[Message]:
        return [read_json(kind, headers, body) for _path, headers, body in list(self.requests)]


def read_email(recipients: list[str], content: bytes) -> Message:
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    plain = parsed.get_body(preferencelist=("plain",))
    rich = parsed.get_body(preferencelist=("html",))
    text = plain.get_content() if plain is not None else ""  # type: ignore[attr-defined]
    markup = rich.get_content() if rich is not None else ""  # type: ignore[attr-defined]
    link = next((w for w in text.split() if w.startswith("http")), "")
    return Message("email", f"{parsed['Subject']}\n{text}", link, parsed,
                   dict(parsed.items()), markup.encode(), recipients)  # fmt: skip


def read_json(kind: str, headers: dict[str, str], body: bytes) -> Message:
    data = json.loads(body)
    if kind == "slack":
        parts = [data.get("text", "")]
        for block in data.get("blocks", []):
            if "text" in block:
                parts.append(block["text"]["text"])
            parts.extend(f["text"] for f in block.get("fields", []))
            parts.extend(e["text"] for e in block.get("elements", []))
        joined = "\n".join(parts)
        link = joined.split("<", 1)[1].split("|", 1)[0] if "<http" in joined else ""
        # Slack shows <url|label> as the label, and decodes its three entities.
        shown = joined.replace(f"<{link}|", "").replace(">", "") if link else joined
        return Message(kind, html.unescape(shown), link, data, headers, body)
    if kind == "discord":
        embed = data["embeds"][0]
        parts = [data.get("content", ""), embed.get("title", ""), embed.get("description", "")]
        parts.extend(f"{f['name']}: {f['value']}" for f in embed.get("fields", []))
        return Message(kind, "\n".join(parts), embed.get("url", ""), data, headers, body)
    issue, event = data.get("issue", {}), data.get("event", {})
    headline = HEADLINES.get(data.get("action"), "")
    if data.get("spike"):
        headline += f": {data['spike']['count']} events in {data['spike']['minutes']} minutes"
    parts = [headline, issue.get("shortId", ""), issue.get("title", ""),
             issue.get("culprit", ""), str(issue.get("count")), issue.get("level", ""),
             str(event.get("environment")), str(event.get("release"))]  # fmt: skip
    frame = event.get("frame") or {}
    parts.append(f"{frame.get('filename')}:{frame.get('lineno')} in {frame.get('function')}")
    return Message(kind, "\n".join(parts), issue.get("permalink", ""), data, headers, body)


def hmac_ok(secret: str, message: Message) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), message.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, message.headers.get("X-Bugnet-Signature", ""))


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")
        time.sleep(0.1)
