"""``create_app``: one process serving the knowledge bases under a zhiku home over HTTP.

Routes call the same ``KnowledgeBase`` methods as the CLI (search through exactly the code path
chat uses). Blocking work (search, embedding) runs in FastAPI's thread pool; knowledge bases are
opened once and shared; ingestion runs as jobs on one worker thread. Errors keep the CLI's message
and hint, as JSON with an HTTP status.

    >>> from zhiku.server.app import create_app                           # doctest: +SKIP
    >>> app = create_app(home="/tmp/zhiku-home", require_keys=False)
"""

from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .. import __version__
from ..config import load_settings
from ..errors import (AuthError, ConfigError, Conflict, GeneratorBusy, NotFound, TooLarge, UsageError,
                      ZhikuError)
from ..store.keys import KeyStore
from .jobs import IngestJobs
from .limits import BodyLimit
from .registry import Registry

WORKER_THREADS = 200  # FastAPI's thread pool (anyio's default is 40)


def create_app(home: str | Path | None = None, require_keys: bool = True) -> FastAPI:
    settings = load_settings(home)
    registry = Registry(settings)
    keys = KeyStore(settings.home)
    from .mcp_server import McpMount
    mcp = McpMount(registry, keys, require_keys)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # a queued answer holds a worker thread while it waits for the model: room for many, so
        # searches never queue behind waiting answers for a thread
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        async with mcp.running():
            yield
        registry.close()
        keys.close()

    app = FastAPI(title="zhiku", version=__version__, lifespan=lifespan,
                  description="知库: search and answers with citations from your files. "
                              "Send `Authorization: Bearer zk_…` when the server requires keys.")
    app.state.registry, app.state.keys, app.state.require_keys = registry, keys, require_keys
    app.state.jobs = IngestJobs()
    app.add_middleware(BodyLimit, upload_bytes=int(settings.server.max_upload_mb * 1024 * 1024))

    @app.exception_handler(ZhikuError)
    async def _zhiku_error(_request: Request, exc: ZhikuError) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))} if isinstance(exc, GeneratorBusy) else None
        return JSONResponse({"error": exc.message, "hint": exc.hint, "type": type(exc).__name__},
                            status_code=status_of(exc), headers=headers)

    @app.get("/api/status", summary="Server version, generation queue and ingestion jobs", tags=["status"])
    def status() -> dict:
        jobs = app.state.jobs.list()
        out = {"version": __version__, "keys_required": require_keys, "generation": registry.queues(),
               "ingestion": {"queued": sum(j["state"] == "queued" for j in jobs),
                             "running": sum(j["state"] == "running" for j in jobs)}}
        if not require_keys:  # with keys, names are listed only to a key (GET /api/kbs)
            out["knowledge_bases"] = registry.names()
        return out

    from .openai_api import add_openai_routes
    from .routes_answers import router as answers
    from .routes_eval import router as evals
    from .routes_kbs import router as kbs
    from .web import add_web_ui
    for router in (kbs, answers, evals):
        app.include_router(router)
    add_openai_routes(app)
    app.mount("/mcp", mcp.asgi)
    add_web_ui(app)
    return app


def status_of(exc: ZhikuError) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    for kind, code in ((NotFound, 404), (Conflict, 409), (TooLarge, 413), (GeneratorBusy, 503),
                       (UsageError, 400), (ConfigError, 400)):
        if isinstance(exc, kind):
            return code
    return 500
