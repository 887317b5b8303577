"""Views that fail in the ways the Django integration must report (or must not)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

import bugnet

logger = logging.getLogger("shop.views")
logger.setLevel(logging.INFO)

# Set by a test that runs concurrent requests: each view waits until all are inside.
barrier: threading.Barrier | None = None


def boom(request: HttpRequest, order: int) -> HttpResponse:
    logger.info("looking up order %s", order)
    total = order * 2
    raise ZeroDivisionError(f"order {order} total {total}")


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("fine")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such order")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not yours")


def echo(request: HttpRequest) -> HttpResponse:
    payload = json.loads(request.body)
    if payload.get("fail"):
        raise ValueError("bad payload")
    return HttpResponse(json.dumps(payload), content_type="application/json")


def form(request: HttpRequest) -> HttpResponse:
    raise KeyError(request.POST["item"])


def unread(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("did not read the body")


def logged(request: HttpRequest) -> HttpResponse:
    logger.error("payment declined for %s", "cart-7")
    return HttpResponse("logged")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def generate() -> Iterator[str]:
        yield "first,"
        raise OSError("the stream broke")

    return StreamingHttpResponse(generate())


def query(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s + %s", [20, 22])
        (answer,) = cursor.fetchone()
    raise LookupError(f"answer {answer}")


class Handled(Exception):
    """Answered by HandledErrorsMiddleware with a page of the app's own."""


def handled(request: HttpRequest) -> HttpResponse:
    raise Handled("the app renders its own error page")


class HandledErrorsMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)  # type: ignore[no-any-return]

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if isinstance(exception, Handled):
            return HttpResponse("<h1>Sorry</h1>", status=500)
        return None


def template_syntax(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render_to_string("broken.html", {"title": "t", "items": [1]}))


class Order:
    number = 7

    @property
    def total(self) -> int:
        raise ArithmeticError("the total does not add up")


def template_render(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render_to_string("renders_badly.html", {"order": Order()}))


def tagged(request: HttpRequest, n: int) -> HttpResponse:
    bugnet.set_tag("request_number", n)
    logger.warning("request %d inside", n)
    if barrier is not None:
        barrier.wait(timeout=10)
    raise RuntimeError(f"request {n}")


async def async_boom(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    raise ConnectionError("the async view failed")


async def async_tagged(request: HttpRequest, n: int) -> HttpResponse:
    bugnet.set_tag("request_number", n)
    logger.warning("request %d inside", n)
    for _ in range(5):
        await asyncio.sleep(0.01)  # let the other requests interleave
    raise RuntimeError(f"request {n}")


class ApiBoom(APIView):
    def get(self, request: Any) -> Response:
        raise ValueError("the API view failed")


class Unavailable(APIException):
    status_code = 503
    default_detail = "the warehouse is not answering"


class ApiUnavailable(APIView):
    def get(self, request: Any) -> Response:
        raise Unavailable()


class ApiMissing(APIView):
    def get(self, request: Any) -> Response:
        raise NotFound("no such item")
