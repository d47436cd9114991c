"""``create_app``: one process serving the knowledge bases under a zhiku home over HTTP.

Routes call the same ``KnowledgeBase`` methods as the CLI (search through exactly the code path
chat uses). Blocking work (search, embedding) runs in FastAPI's thread pool; knowledge bases are
opened once and shared. Errors keep the CLI's message and hint, as JSON with an HTTP status.

    >>> from zhiku.server.app import create_app                           # doctest: +SKIP
    >>> app = create_app(home="/tmp/zhiku-home", require_keys=False)
"""

import json
import queue
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from .. import __version__
from ..config import load_settings
from ..errors import AuthError, ConfigError, KnowledgeBaseNotFound, UsageError, ZhikuError
from ..answer.pipeline import Turn as PipelineTurn
from ..backends.queue import GenerationQueue
from ..kb import KnowledgeBase
from ..store.keys import ALL_KBS, ApiKey, KeyStore


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=10_000)
    k: int | None = Field(default=None, ge=1, le=1000)
    mode: str | None = Field(default=None, pattern="^(hybrid|vector|lexical)$")


class Turn(BaseModel):
    question: str
    answer: str


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=10_000)
    stream: bool = False  # Server-Sent Events: token events, then the answer (citations, timings), then done
    history: list[Turn] = Field(default_factory=list, max_length=50)
    no_llm: bool = False  # extractive answer, no model


class Registry:
    """Open knowledge bases and their answerers, one of each per process, made on first use.

    Every answerer of every knowledge base shares one ``GenerationQueue`` per model, so concurrent
    requests take turns on the model instead of fighting over it.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self._open: dict[str, KnowledgeBase] = {}
        self._answerers: dict[tuple[str, bool], object] = {}
        self._queues: dict[int, GenerationQueue] = {}
        self._lock = threading.Lock()

    def answerer(self, name: str, extractive: bool):
        kb, key = self.get(name), (name, extractive)
        with self._lock:
            if key in self._answerers:
                return self._answerers[key]
        # loading a model takes seconds: not under the registry's lock, so searches go on meanwhile
        # (make_generator keeps one instance per model and has its own lock)
        made = kb.answerer(extractive, wrap=self._queued)
        with self._lock:
            return self._answerers.setdefault(key, made)

    def _queued(self, gen) -> GenerationQueue:
        """One queue per model, shared by every knowledge base's answerer."""
        with self._lock:
            return self._queues.setdefault(id(gen), GenerationQueue(gen))

    def queues(self) -> list[dict]:
        with self._lock:
            return [q.status() for q in self._queues.values()]

    def get(self, name: str) -> KnowledgeBase:
        with self._lock:
            if name not in self._open:
                self._open[name] = KnowledgeBase.open(name, home=self.home, create=False)
            return self._open[name]

    def names(self, key: ApiKey | None = None) -> list[str]:
        """Knowledge bases under the home; with ``key``, only those it may use."""
        return [n for n in KnowledgeBase.list_names(self.home) if key is None or key.kb in (n, ALL_KBS)]

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

    @app.get("/api/status", summary="Server version, knowledge bases, and the generation queue")
    def status() -> dict:
        out = {"version": __version__, "keys_required": require_keys, "generation": registry.queues()}
        if not require_keys:  # with keys, names are listed only to a key (GET /api/kbs)
            out["knowledge_bases"] = registry.names()
        return out

    @app.get("/api/kbs", summary="Knowledge bases this key may use")
    def list_kbs(key: Annotated[ApiKey | None, Depends(any_key)]) -> list[str]:
        return registry.names(key)

    @app.get("/api/kbs/{kb}/documents", summary="Sources with chunk counts")
    def documents(kb: Annotated[str, Depends(caller("read"))]) -> list[dict]:
        return [{"source": r.source, "format": r.format, "chunks": r.chunk_count, "bytes": r.size,
                 "content_hash": r.content_hash} for r in registry.get(kb).documents()]

    @app.post("/api/kbs/{kb}/search", summary="Hybrid search with a per-hit trace (same JSON as `zhiku search --json`)")
    def search(body: SearchRequest, kb: Annotated[str, Depends(caller("read"))]) -> dict:
        return registry.get(kb).search(body.query, k=body.k, mode=body.mode).as_dict()

    @app.post("/api/kbs/{kb}/ask", summary="Answer with citations (JSON, or Server-Sent Events with stream=true)")
    def ask(body: AskRequest, kb: Annotated[str, Depends(caller("read"))]):
        answerer = registry.answerer(kb, body.no_llm)
        history = [PipelineTurn(t.question, t.answer) for t in body.history]
        if not body.stream:
            return answerer.ask(body.question, history=history, extractive=body.no_llm).as_dict()
        return StreamingResponse(sse_answer(answerer, body.question, history, body.no_llm),
                                 media_type="text/event-stream")

    from .openai_api import add_openai_routes
    add_openai_routes(app, registry, keys, any_key)
    return app


def answer_events(answerer, question: str, history: list, extractive: bool):
    """``(event, data)`` pairs: ``token`` ({"text"}) while the model writes, then ``answer`` (the ask
    JSON), or ``error`` ({error, hint, type}).

    The answer runs on its own thread and hands tokens over through a queue, so a caller can send
    each piece as it comes.
    """
    pipe: queue.Queue = queue.Queue()
    done = object()

    def work() -> None:
        try:
            answer = answerer.ask(question, history=history, extractive=extractive,
                                  on_token=lambda text: pipe.put(("token", {"text": text})))
            pipe.put(("answer", answer.as_dict()))
        except ZhikuError as exc:
            pipe.put(("error", {"error": exc.message, "hint": exc.hint, "type": type(exc).__name__}))
        except Exception as exc:  # noqa: BLE001 - a bug must still end the stream with an event
            pipe.put(("error", {"error": f"unexpected {type(exc).__name__}: {exc}", "hint": "", "type": "bug"}))
        pipe.put(done)

    threading.Thread(target=work, daemon=True, name="zhiku-answer").start()
    while (item := pipe.get()) is not done:
        yield item


def sse_answer(answerer, question: str, history: list, extractive: bool):
    """``answer_events`` as Server-Sent Events, then ``done``."""
    for event, data in answer_events(answerer, question, history, extractive):
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    yield "event: done\ndata: {}\n\n"


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
