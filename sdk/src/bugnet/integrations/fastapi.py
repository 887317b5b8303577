"""FastAPI: a FastAPI app is a Starlette app, so the Starlette integration's hooks do the work
(a request is watched and reported once, whichever of the two is on); this one brings its
settings and the ``fastapi`` mechanism to FastAPI apps.

What FastAPI adds is covered by those hooks: ``@app.exception_handler(...)`` handlers are the
app's Starlette exception handlers; ``def`` endpoints run in Starlette's threadpool, which
copies the request's context (and so its scopes) into the worker thread; ``BackgroundTasks`` run
after the response is sent but before the app's call returns, so an exception there escapes the
request's wrapper and is reported with the request's data.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without FastAPI installed
    raise ImportError(
        "the FastAPI integration needs FastAPI: pip install 'bugnet[fastapi]' "
        "(or pip install fastapi)"
    ) from exc

from bugnet.integrations import module_ready
from bugnet.integrations.starlette import StarletteIntegration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class FastApiIntegration(StarletteIntegration):
    """Takes the Starlette integration's options, for FastAPI apps."""

    identifier = "fastapi"
    _installed: ClassVar[bool] = False  # its own flag, not the inherited one

    @classmethod
    def setup_once(cls) -> None:
        # The Starlette patches serve both integrations: installed once, by whichever is first.
        if not StarletteIntegration._installed:
            StarletteIntegration.setup_once()
            StarletteIntegration._installed = True


module_ready(__name__)
