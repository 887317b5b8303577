"""The events the ingest benchmark sends: Python-shaped errors of about 12 KiB, as sentry-sdk
sends them (one event per envelope, gzip level 9, ``X-Sentry-Auth``).

They are built from the Flask fixture's event (shared/fixtures/envelopes/python/
flask-exception.envelope): every event gets its own ``event_id``, one of eight exception
kinds (type, message, in-app function, transaction; a few kinds are much more frequent than
others, so grouping makes a handful of issues of very different sizes), its own request path,
client address, locals and breadcrumbs, and enough in-app frames and breadcrumbs to reach
``EVENT_BYTES``. The bodies do not depend on the target (authentication travels in the
header), so one set is built per run and sent to every target.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
import random
import struct
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "envelopes" / "python" / "flask-exception.envelope"
EVENT_BYTES = 12 * 1024
SDK_NAME = "sentry.python/2.75.0"

# (type, message, module, function, transaction, weight)
# fmt: off
KINDS = [
    ("ZeroDivisionError", "division by zero", "shop.pricing", "compute_ratio", "ratio", 30),
    ("KeyError", "'customer_id'", "shop.orders", "load_customer", "orders.detail", 20),
    ("ValueError", "invalid literal for int() with base 10: 'abc'", "shop.forms", "parse_quantity",
     "cart.update", 15),
    ("TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType'", "shop.totals",
     "add_shipping", "checkout", 12),
    ("AttributeError", "'NoneType' object has no attribute 'items'", "shop.inventory",
     "reserve_stock", "inventory.reserve", 10),
    ("IndexError", "list index out of range", "shop.search", "first_hit", "search", 7),
    ("RuntimeError", "payment gateway timed out after 30 s", "shop.payments", "charge_card",
     "payments.charge", 4),
    ("ConnectionError", "upstream refused the connection", "shop.clients", "fetch_rates",
     "rates.refresh", 2),
]
# fmt: on


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def fixture_event() -> dict[str, Any]:
    """The error event inside the Flask fixture envelope."""
    lines = FIXTURE.read_bytes().split(b"\n")
    for header, payload in zip(lines[1::2], lines[2::2]):
        if json.loads(header).get("type") == "event":
            event: dict[str, Any] = json.loads(payload)
            return event
    raise RuntimeError(f"{FIXTURE} holds no event item")


def _in_app_frame(module: str, function: str, depth: int, rng: random.Random) -> dict[str, Any]:
    path = module.replace(".", "/") + ".py"
    order = f"A-{rng.randrange(10**6):06d}"
    sku, quantity = rng.randrange(10**5), rng.randrange(1, 9)
    line = f"{{'sku': 'SKU-{sku:05d}', 'qty': {quantity}, 'price': '19.99'}}"
    return {
        "filename": path,
        "abs_path": f"/srv/shop/{path}",
        "function": f"{function}_step{depth}",
        "module": module,
        "lineno": 40 + 7 * depth,
        "pre_context": [
            f"def {function}_step{depth}(order, session):",
            '    """Look the order up and apply the customer\'s rules."""',
            "    rules = session.rules_for(order.customer)",
            "    total = 0",
            "    for line in order.lines:",
        ],
        "context_line": "        total += line.price * rules.factor(line)",
        "post_context": [
            "    session.audit('priced', order.id, total)",
            "    return total",
            "",
            "",
            f"def {function}_fallback(order):",
        ],
        "vars": {
            "order": f"<Order id={order!r} lines=3 status='open'>",
            "session": "<Session user=42 tenant='eu-west' readonly=False>",
            "rules": "<PricingRules version=7 currency='EUR'>",
            "total": str(rng.randrange(10_000)),
            "line": line,
        },
        "in_app": True,
    }


def _breadcrumb(rng: random.Random, when: dt.datetime) -> dict[str, Any]:
    stamp = when.isoformat().replace("+00:00", "Z")
    if rng.random() < 0.5:
        url = f"https://rates.example.com/v2/rates?ccy=EUR&req={rng.randrange(10**9)}"
        return {
            "type": "http",
            "category": "httplib",
            "timestamp": stamp,
            "data": {"http.method": "GET", "url": url, "status_code": 200, "reason": "OK"},
        }
    return {
        "type": "default",
        "category": "shop.orders",
        "level": "info",
        "timestamp": stamp,
        "message": f"order A-{rng.randrange(10**6):06d} priced for customer {rng.randrange(10**5)}",
    }


def build_event(base: dict[str, Any], index: int, rng: random.Random) -> dict[str, Any]:
    """One event of about ``EVENT_BYTES`` bytes of JSON, unique id, one of ``KINDS``."""
    exc_type, message, module, function, transaction, _weight = rng.choices(
        KINDS, weights=[k[5] for k in KINDS]
    )[0]
    now = dt.datetime.now(dt.timezone.utc)
    event = copy.deepcopy(base)
    event["event_id"] = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    event["timestamp"] = now.isoformat().replace("+00:00", "Z")
    event["transaction"] = transaction
    event["tags"] = {"feature": transaction.split(".")[0], "worker": f"web-{index % 4}"}
    event["request"]["url"] = f"http://shop.example.com/{transaction.replace('.', '/')}/{index}"
    event["user"] = {"ip_address": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{index % 250}"}
    value = event["exception"]["values"][0]
    value.update(type=exc_type, value=message, module=None)
    frames = value["stacktrace"]["frames"]
    frames[-1].update(function=function, module=module, filename=module.replace(".", "/") + ".py")
    for depth in range(1, 5):
        frames.insert(len(frames) - 1, _in_app_frame(module, function, depth, rng))
    crumbs: list[dict[str, Any]] = []
    event["breadcrumbs"] = {"values": crumbs}
    size = len(_dumps(event))
    while size < EVENT_BYTES:
        crumb = _breadcrumb(rng, now - dt.timedelta(seconds=60 - len(crumbs)))
        crumbs.append(crumb)
        size += len(_dumps(crumb)) + 1
    return event


def envelope(event: dict[str, Any]) -> bytes:
    """The gzip-compressed envelope sentry-sdk would send for ``event`` (level 9, as it does)."""
    payload = _dumps(event).encode()
    header = {
        "event_id": event["event_id"],
        "sent_at": event["timestamp"],
        "trace": {"trace_id": uuid.uuid4().hex, "environment": event["environment"],
                  "release": event["release"], "transaction": event["transaction"]},
    }  # fmt: skip
    item = {"type": "event", "content_type": "application/json", "length": len(payload)}
    raw = b"\n".join([_dumps(header).encode(), _dumps(item).encode(), payload, b""])
    return gzip.compress(raw, compresslevel=9, mtime=0)


def build_bodies(count: int, seed: int = 42) -> tuple[list[bytes], dict[str, float]]:
    """``count`` gzip envelopes, and their shape (sizes, kinds) for the report."""
    rng = random.Random(seed)
    base = fixture_event()
    bodies, sizes, kinds = [], [], set()
    for index in range(count):
        event = build_event(base, index, rng)
        kinds.add(event["exception"]["values"][0]["type"])
        sizes.append(len(_dumps(event)))
        bodies.append(envelope(event))
    shape = {
        "events": count,
        "event_bytes_mean": round(sum(sizes) / count),
        "wire_bytes_mean": round(sum(map(len, bodies)) / count),
        "exception_kinds": len(kinds),
    }
    return bodies, shape


def auth_header(public_key: str) -> str:
    return f"Sentry sentry_key={public_key}, sentry_version=7, sentry_client={SDK_NAME}"


def write_bodies(bodies: list[bytes], path: Path) -> None:
    """One file: a count, then (length, bytes) per body; read back by ``read_bodies``."""
    with path.open("wb") as handle:
        handle.write(struct.pack("<I", len(bodies)))
        for body in bodies:
            handle.write(struct.pack("<I", len(body)))
            handle.write(body)


def read_bodies(path: Path) -> list[bytes]:
    data = path.read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    offset, bodies = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", data, offset)
        bodies.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return bodies
