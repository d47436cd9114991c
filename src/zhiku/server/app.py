"""``create_app``: one process serving the knowledge bases under a zhiku home over HTTP.

Routes call the same ``KnowledgeBase`` methods as the CLI (search through exactly the code path
chat uses). Blocking work (search, embedding) runs in FastAPI's thread pool; knowledge bases are
opened once and shared. Errors keep the CLI's message and hint, as JSON with an HTTP status.

    >>> from zhiku.server.app import create_app                           # doctest: +SKIP
    >>> app = create_app(home="/tmp/zhiku-home", require_keys=False)
"""

import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .. import __version__
from ..config import load_settings
from ..errors import AuthError, ConfigError, KnowledgeBaseNotFound, UsageError, ZhikuError
from ..kb import KnowledgeBase
from ..store.keys import ALL_KBS, ApiKey, KeyStore


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=10_000)
    k: int | None = Field(default=None, ge=1, le=1000)
    mode: str | None = Field(default=None, pattern="^(hybrid|vector|lexical)$")


class Registry:
    """Open knowledge bases, one instance each per process, opened on first use."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._open: dict[str, KnowledgeBase] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> KnowledgeBase:
        with self._lock:
            if name not in self._open:
                self._open[name] = KnowledgeBase.open(name, home=self.home, create=False)
            return self._open[name]

    def names(self) -> list[str]:
        return KnowledgeBase.list_names(self.home)

    def close(self) -> None:
        with self._lock:
            for kb in self._open.values():
                kb.close()
            self._open.clear()


def create_app(home: str | Path | None = None, require_keys: bool = True) -> FastAPI:
    settings = load_settings(home)
    registry = Registry(settings.home)
    keys = KeyStore(settings.home)
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        registry.close()
        keys.close()

    app = FastAPI(title="zhiku", version=__version__, description="知库: search and answers from your files.",
                  lifespan=lifespan)
    app.state.registry, app.state.keys, app.state.require_keys = registry, keys, require_keys

    @app.exception_handler(ZhikuError)
    async def _zhiku_error(_request: Request, exc: ZhikuError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "hint": exc.hint, "type": type(exc).__name__},
                            status_code=status_of(exc))

    def caller(scope: str):
        def check(kb: str, authorization: Annotated[str | None, Header()] = None) -> str:
            if require_keys:
                keys.authorize(_bearer(authorization), kb, scope)
            return kb
        return check

    def any_key(authorization: Annotated[str | None, Header()] = None) -> ApiKey | None:
        return keys.verify(_bearer(authorization)) if require_keys else None

    @app.get("/api/status", summary="Server version and open knowledge bases")
    def status() -> dict:
        return {"version": __version__, "keys_required": require_keys, "knowledge_bases": registry.names()}

    @app.get("/api/kbs", summary="Knowledge bases this key may use")
    def list_kbs(key: Annotated[ApiKey | None, Depends(any_key)]) -> list[str]:
        return [n for n in registry.names() if key is None or key.kb in (n, ALL_KBS)]

    @app.get("/api/kbs/{kb}/documents", summary="Sources with chunk counts")
    def documents(kb: Annotated[str, Depends(caller("read"))]) -> list[dict]:
        return [{"source": r.source, "format": r.format, "chunks": r.chunk_count, "bytes": r.size,
                 "content_hash": r.content_hash} for r in registry.get(kb).documents()]

    @app.post("/api/kbs/{kb}/search", summary="Hybrid search with a per-hit trace (same JSON as `zhiku search --json`)")
    def search(body: SearchRequest, kb: Annotated[str, Depends(caller("read"))]) -> dict:
        return registry.get(kb).search(body.query, k=body.k, mode=body.mode).as_dict()

    return app


def _bearer(header: str | None) -> str | None:
    return (header or "").removeprefix("Bearer ").strip() or None


def status_of(exc: ZhikuError) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    if isinstance(exc, KnowledgeBaseNotFound):
        return 404
    if isinstance(exc, (UsageError, ConfigError)):
        return 400
    return 500
