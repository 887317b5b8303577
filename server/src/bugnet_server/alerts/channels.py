"""Sending one alert to one channel. These functions touch no database (the worker calls them
from its sending threads) and never raise: they return what happened."""

from __future__ import annotations

import smtplib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from bugnet_server import __version__
from bugnet_server.alerts import formats

TIMEOUT = 10.0  # seconds for a receiver to answer
USER_AGENT = f"Bugnet/{__version__} (+alerts)"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str  # "HTTP 200", "connection refused", "sent to 3 recipients"...


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: the channel's kind and its URL, secret or recipients."""

    kind: str
    url: str = ""
    secret: str = ""
    recipients: tuple[str, ...] = ()
    delivery_id: int = 0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST would arrive as a GET without its body: report it instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def send(target: Target, context: dict[str, Any]) -> Outcome:
    try:
        if target.kind == "email":
            return send_email(target.recipients, context)
        body = {
            "webhook": formats.generic_body,
            "slack": formats.slack_body,
            "discord": formats.discord_body,
        }[target.kind](context)
        headers = {"X-Bugnet-Delivery": str(target.delivery_id),
                   "X-Bugnet-Action": str(context.get("action", ""))}  # fmt: skip
        if target.kind == "webhook":
            headers[formats.SIGNATURE_HEADER] = formats.signature(target.secret, body)
        return post_json(target.url, body, headers)
    except Exception as exc:  # a bug of ours must not stop the worker: record it, retry
        return Outcome(False, f"{type(exc).__name__}: {exc}"[:500])


def post_json(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            return Outcome(True, f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        reason = _snippet(exc)
        if 300 <= exc.code < 400:
            where = exc.headers.get("Location", "elsewhere")
            return Outcome(False, f"HTTP {exc.code}: redirected to {where}; use that URL")
        return Outcome(False, f"HTTP {exc.code}{': ' + reason if reason else ''}")
    except urllib.error.URLError as exc:
        return Outcome(False, _network_reason(exc.reason))
    except (TimeoutError, socket.timeout):
        return Outcome(False, f"no answer within {TIMEOUT:.0f} s")
    except OSError as exc:
        return Outcome(False, _network_reason(exc))


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace")
    except OSError:
        return ""
    return " ".join(text.split())[:200]


def _network_reason(reason: Any) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {TIMEOUT:.0f} s"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    return str(getattr(reason, "strerror", None) or reason)[:300]


def render_email(context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, plain text, HTML)."""
    page = {
        "alert": context,
        "headline": formats.headline(context),
        "facts": formats.facts(context),
        "where": formats.frame_line(context),
        "frame": (context.get("event") or {}).get("frame") or {},
    }
    return (
        formats.email_subject(context),
        render_to_string("alerts/email.txt", page),
        render_to_string("alerts/email.html", page),
    )


def send_email(recipients: tuple[str, ...], context: dict[str, Any]) -> Outcome:
    from django.conf import settings

    if not settings.BUGNET.email:
        return Outcome(False, "email is not set up (set BUGNET_EMAIL_URL)")
    if not recipients:
        return Outcome(True, "no recipients: every member opted out or has no email address")
    subject, text, html = render_email(context)
    messages = []
    for address in recipients:  # one message each: recipients do not see each other
        message = EmailMultiAlternatives(subject, text, to=[address],
                                         headers={"Auto-Submitted": "auto-generated"})  # fmt: skip
        message.attach_alternative(html, "text/html")
        messages.append(message)
    try:
        connection = get_connection(fail_silently=False, timeout=TIMEOUT)
        sent = connection.send_messages(messages)
    except smtplib.SMTPResponseException as exc:
        message_text = exc.smtp_error.decode("utf-8", "replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)  # fmt: skip
        return Outcome(False, f"SMTP {exc.smtp_code}: {message_text}"[:500])
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, f"SMTP refused {', '.join(sorted(exc.recipients))}"[:500])
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(False, f"SMTP: {_network_reason(exc)}")
    return Outcome(True, f"sent to {sent} recipient{'s' if sent != 1 else ''}")
