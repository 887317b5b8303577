"""The app a real worker runs in test_celery.py: ``python -m celery -A celery_app.tasks worker``.

Set up as an app would be: ``bugnet.init()`` at import, its DSN and spool directory from
``BUGNET_DSN`` and ``BUGNET_SPOOL_DIR``. The test gives each worker its own queue and key
prefix on the Redis broker (``CELERY_APP_BROKER``, ``CELERY_APP_QUEUE``, ``CELERY_APP_PREFIX``),
so runs side by side never meet.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject

import bugnet

bugnet.init(shutdown_timeout=5.0)

logger = logging.getLogger("shop.tasks")
logger.setLevel(logging.INFO)  # what an app that logs at INFO configures

PREFIX = os.environ.get("CELERY_APP_PREFIX", "bugnet-test:")
QUEUE = os.environ.get("CELERY_APP_QUEUE", "bugnet-test")
BROKER = os.environ.get("CELERY_APP_BROKER", "redis://127.0.0.1:6379/0")

app = Celery("celery_app")
app.conf.update(
    broker_url=BROKER,
    result_backend=BROKER,
    broker_transport_options={"global_keyprefix": PREFIX},
    result_backend_transport_options={"global_keyprefix": PREFIX},
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    worker_enable_remote_control=False,
    worker_prefetch_multiplier=1,
)


@app.task(name="shop.fail")
def fail(order: int, password: str = "") -> None:
    logger.info("charging order %s", order)
    bugnet.set_tag("order", order)
    raise ValueError(f"card declined for order {order}")


@app.task(name="shop.fail_loudly")
def fail_loudly(order: int, password: str = "") -> None:
    logger.info("charging order %s", order)
    logger.error("declining order %s", order)  # an event of its own, before the failure's
    raise ValueError(f"card declined for order {order}")


@app.task(name="shop.flaky", bind=True, max_retries=3)
def flaky(self: Task) -> str:
    if self.request.retries < 1:
        raise self.retry(exc=ConnectionError("gateway timeout"), countdown=0)
    return "charged"


@app.task(name="shop.skip", bind=True)
def skip(self: Task) -> None:
    self.update_state(state="SKIPPING")  # for the test to see it ran
    raise Ignore()


@app.task(name="shop.refuse", bind=True)
def refuse(self: Task) -> None:
    self.update_state(state="REFUSING")  # Celery 5.7 then stores FAILURE; earlier ones do not
    raise Reject("malformed order", requeue=False)


@app.task(name="shop.lookup", throws=(KeyError,))
def lookup(sku: str) -> Any:
    raise KeyError(sku)


@app.task(name="shop.stall", time_limit=1)
def stall() -> None:
    logger.info("waiting for the warehouse")
    time.sleep(30)
