"""zhiku as an MCP server: search, cited answers, document lists and text uploads for AI agents.

Two transports, one set of tools (built by ``build_server`` on the official ``mcp`` SDK, 2.x):

* stdio — ``run_stdio(home, kb)``, behind ``zhiku mcp [--kb NAME] [--read-only]``. No keys: the
  local user already owns the files.
* streamable HTTP — ``McpMount``, mounted into the FastAPI app at ``/mcp``; the endpoint is
  ``http://HOST:PORT/mcp/`` (``/mcp`` answers with a 307 redirect there). With keys on, every HTTP
  request needs ``Authorization: Bearer zk_…``: ``_KeyGate`` answers 401 JSON before MCP runs and
  puts the verified key in the ASGI scope; each tool reads it back from the request the SDK hands it
  (``ctx.request_context.request.scope``) and checks the key's knowledge base and scope.

    >>> mount = McpMount(app.state.registry, app.state.keys, require_keys=True)   # doctest: +SKIP
    >>> app.mount("/mcp", mount.asgi)                                              # doctest: +SKIP
    >>> async with mount.running(): ...                                            # in the app's lifespan
"""

import contextlib
import io
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..config import load_settings
from ..errors import AuthError, KnowledgeBaseNotFound, UsageError, ZhikuError
from ..ingest.parsers import EXTENSIONS, format_for
from ..kb import KnowledgeBase, validate_name
from ..store.keys import ALL_KBS, ApiKey, KeyStore
from ..types import FileOutcome
from .auth import bearer
from .registry import Registry
from .uploads import safe_name, set_aside, settle, store_upload, uploads_dir

SCOPE_KEY = "zhiku.api_key"  # where _KeyGate leaves the verified ApiKey in the ASGI scope
TEXT_FORMATS = ("txt", "markdown", "html", "csv")  # add_document takes text; PDF/DOCX go through zhiku add
INSTRUCTIONS = """\
zhiku (知库) searches the user's private, offline knowledge bases (notes, documents; Chinese and English).
Use `search` to find passages, `ask` for a short answer with numbered citations [n], `list_documents` to see
what a knowledge base holds, and `add_document` to save a text note into it. Quote sources by their file name.
知库：检索用户本地知识库。search 找原文段落，ask 给出带引用的回答，list_documents 列出文档，add_document 保存文本。"""

_UPLOAD_LOCK = threading.Lock()  # one upload at a time: a same-named upload must not interleave save and ingest


# -- what the tools return (published as each tool's output schema) -------------------------------------
class Hit(BaseModel):
    rank: int = Field(description="1 = best")
    score: float = Field(description="fused relevance score (higher is better)")
    source: str = Field(description="the file the passage comes from")
    heading_path: list[str] = Field(description="headings above the passage, outermost first")
    chunk_id: str
    text: str = Field(description="the passage")
    lexical_rank: int | None = Field(description="rank in keyword (BM25) search; null = not found by it")
    vector_rank: int | None = Field(description="rank in semantic (vector) search; null = not found by it")


class SearchResult(BaseModel):
    kb: str
    query: str
    mode: str = Field(description="hybrid, vector or lexical")
    hits: list[Hit]
    warnings: list[str]


class Citation(BaseModel):
    n: int = Field(description="the number the answer cites as [n]")
    source: str
    heading_path: list[str]
    chunk_id: str
    excerpt: str = Field(description="the cited text")


class AskResult(BaseModel):
    kb: str
    question: str
    answer: str = Field(description="the answer, with [n] citation markers; a refusal when refused is true")
    refused: bool = Field(description="true: the knowledge base does not hold the answer")
    refusal_reason: str = Field(description="no_hits, weak_evidence, model or ungrounded; empty if answered")
    mode: str = Field(description="llm (written by the language model) or extractive (quoted sentences)")
    citations: list[Citation]
    warnings: list[str]


class Document(BaseModel):
    source: str
    format: str
    chunks: int
    bytes: int


class DocumentList(BaseModel):
    kb: str
    documents: list[Document]


class AddResult(BaseModel):
    kb: str
    source: str = Field(description="the name the document is stored and cited under")
    status: Literal["added", "replaced", "unchanged", "skipped"] = Field(
        description="added (new), replaced (same name, new content), unchanged (same content), "
                    "skipped (not stored; see reason)")
    chunks: int = Field(description="passages indexed")
    reason: str = Field(description="why it was skipped; empty otherwise")


# -- who may do what ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Access:
    """How tools find their knowledge base and check the caller's key.

    ``require_keys``: over HTTP, the key ``_KeyGate`` verified must allow the knowledge base and scope.
    ``default_kb``: the knowledge base used when a call names none (stdio's ``--kb``).
    """

    registry: Registry
    keys: KeyStore | None = None
    require_keys: bool = False
    default_kb: str | None = None

    def open(self, ctx: Context, kb: str | None, scope: str) -> KnowledgeBase:
        key = self.caller(ctx)
        name = kb or self.default_kb or (key.kb if key is not None and key.kb != ALL_KBS else None) or "default"
        validate_name(name)
        if key is not None:
            assert self.keys is not None
            self.keys.authorize_record(key, name, scope)  # before the existence check: names do not leak
        available = self.registry.names(key)
        if name not in available:
            raise KnowledgeBaseNotFound(f"no knowledge base named {name!r}", _available_hint(available))
        return self.registry.get(name)

    def caller(self, ctx: Context) -> ApiKey | None:
        """The verified key of this HTTP request; None when keys are off (stdio, or HTTP without keys)."""
        if not self.require_keys:
            return None
        request = ctx.request_context.request
        key = request.scope.get(SCOPE_KEY) if request is not None else None
        if not isinstance(key, ApiKey):  # fail closed: a request that did not pass the gate
            raise AuthError("this server needs an API key", "send it as: Authorization: Bearer zk_…")
        return key


def _available_hint(names: list[str]) -> str:
    if not names:
        return "there is no knowledge base yet; create one by adding files: zhiku add FOLDER --kb NAME"
    return f"available: {', '.join(names)} (pass one as kb)"


@contextlib.contextmanager
def _as_tool_error() -> Iterator[None]:
    """zhiku errors become tool errors (isError) whose text keeps the message and the hint."""
    try:
        yield
    except ZhikuError as exc:
        raise ToolError(f"{exc.message}\nhint: {exc.hint}" if exc.hint else exc.message) from exc


# -- the tools ------------------------------------------------------------------------------------------
KbArg = Annotated[str | None, Field(
    description="knowledge base name (知识库名称); omit for the default one")]


def build_server(access: Access, writable: bool = True) -> MCPServer:
    """An MCP server with zhiku's tools; ``writable=False`` leaves out ``add_document``."""
    with _host_logging_kept():
        server = MCPServer("zhiku", title="zhiku 知库", version=__version__, instructions=INSTRUCTIONS)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(title="Search 检索", annotations=reads)
    def search(
        query: Annotated[str, Field(min_length=1, max_length=10_000,
                                    description="what to look for, in Chinese or English (中文或英文)")],
        ctx: Context,
        kb: KbArg = None,
        k: Annotated[int, Field(ge=1, le=50, description="how many passages to return")] = 5,
    ) -> SearchResult:
        """Hybrid (keyword + semantic) search of a knowledge base: the best passages with their source
        file and headings. 在知识库中检索最相关的原文段落。"""
        with _as_tool_error():
            base = access.open(ctx, kb, "read")
            return _search_result(base.name, base.search(query, k=k).as_dict())

    @server.tool(title="Ask 问答", annotations=reads)
    def ask(
        question: Annotated[str, Field(min_length=1, max_length=10_000,
                                       description="the question, in Chinese or English (中文或英文)")],
        ctx: Context,
        kb: KbArg = None,
        no_llm: Annotated[bool, Field(
            description="true: quote the best matching sentences instead of running the language model "
                        "(instant; no model needed)")] = False,
    ) -> AskResult:
        """Answer a question from a knowledge base only, with numbered citations [n] to the passages used;
        refuses when the knowledge base does not hold the answer. 基于知识库回答问题并给出引用。"""
        with _as_tool_error():
            name = access.open(ctx, kb, "read").name
            answer = access.registry.answerer(name, no_llm).ask(question, history=[], extractive=no_llm)
            return _ask_result(name, answer.as_dict())

    @server.tool(title="List documents 文档列表", annotations=reads)
    def list_documents(ctx: Context, kb: KbArg = None) -> DocumentList:
        """The documents in a knowledge base, with how many passages (chunks) each has. 列出知识库中的文档。"""
        with _as_tool_error():
            base = access.open(ctx, kb, "read")
            docs = [Document(source=r.source, format=r.format, chunks=r.chunk_count, bytes=r.size)
                    for r in base.documents()]
            return DocumentList(kb=base.name, documents=docs)

    if not writable:
        return server

    @server.tool(title="Add document 添加文档",
                 annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                             open_world_hint=False))
    def add_document(
        filename: Annotated[str, Field(
            description="file name with a text extension, e.g. notes.md or 会议纪要.txt "
                        f"(one of: {', '.join(sorted(_text_extensions()))}); "
                        "a document with the same name is replaced")],
        content: Annotated[str, Field(min_length=1, description="the document's full text (UTF-8)")],
        ctx: Context,
        kb: KbArg = None,
    ) -> AddResult:
        """Save a text document into a knowledge base and index it, so search and ask find it.
        Needs write access. 保存文本文档到知识库并建立索引。"""
        with _as_tool_error():
            base = access.open(ctx, kb, "write")
            outcome = add_text(base, filename, content)
            return AddResult(kb=base.name, source=outcome.source, status=outcome.status,  # type: ignore[arg-type]
                             chunks=outcome.chunks, reason=outcome.reason)

    return server


@contextlib.contextmanager
def _host_logging_kept() -> Iterator[None]:
    """MCPServer() calls logging.basicConfig (a rich handler on the root logger, level INFO); the
    process that hosts it (the HTTP server, the CLI) keeps its own logging setup instead."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level


def _search_result(kb: str, result: dict) -> SearchResult:
    hits = [Hit(rank=h["rank"], score=h["score"], source=h["source"], heading_path=h["heading_path"],
                chunk_id=h["chunk_id"], text=h["text"], lexical_rank=h["trace"]["lexical_rank"],
                vector_rank=h["trace"]["vector_rank"]) for h in result["hits"]]
    return SearchResult(kb=kb, query=result["query"], mode=result["mode"], hits=hits, warnings=result["warnings"])


def _ask_result(kb: str, answer: dict) -> AskResult:
    citations = [Citation(n=c["n"], source=c["source"], heading_path=c["heading_path"], chunk_id=c["chunk_id"],
                          excerpt=c.get("excerpt") or c.get("text", "")) for c in answer["citations"]]
    warnings = list(answer["warnings"]) + ([answer["error"]] if answer.get("error") else [])
    return AskResult(kb=kb, question=answer["question"], answer=answer["answer"], refused=answer["refused"],
                     refusal_reason=answer["refusal_reason"], mode=answer["mode"], citations=citations,
                     warnings=warnings)


# -- uploads --------------------------------------------------------------------------------------------
def _text_extensions() -> list[str]:
    return [ext for ext, fmt in EXTENSIONS.items() if fmt in TEXT_FORMATS]


def add_text(kb: KnowledgeBase, filename: str, content: str) -> FileOutcome:
    """Save ``content`` as ``<kb dir>/uploads/<safe name>`` and ingest it.

    A skipped document is not kept: the file it would have replaced (same name) is put back, or the
    new file deleted, so the uploads folder holds only what the knowledge base holds.
    """
    name = safe_name(filename)
    if format_for(name) not in TEXT_FORMATS:
        raise UsageError(f"{name}: add_document takes text, not {format_for(name)} files",
                         f"use a text extension ({', '.join(sorted(_text_extensions()))}), "
                         "or add PDF/DOCX files with: zhiku add FILE --kb " + kb.name)
    if not content.strip():
        raise UsageError(f"{name}: the content is empty", "pass the document's full text as content")
    data = content.encode("utf-8")
    folder = uploads_dir(kb.settings.kb_dir(kb.name))
    limit = int(kb.settings.ingest.max_file_mb * 1024 * 1024)
    with _UPLOAD_LOCK:
        target = folder / name
        folder.mkdir(parents=True, exist_ok=True)
        backup = set_aside(target)
        try:
            store_upload(io.BytesIO(data), folder, name, limit)
            outcome = kb.add([target]).outcomes[0]
        except BaseException:
            settle(target, backup, kept=False)
            raise
        settle(target, backup, kept=outcome.status != "skipped")
    return outcome


# -- stdio ----------------------------------------------------------------------------------------------
def run_stdio(home: str | Path | None, kb: str | None, read_only: bool = False) -> None:
    """Serve MCP over stdin/stdout until the client hangs up (``zhiku mcp``).

    ``kb``: the knowledge base tools use when a call names none (must exist). ``read_only`` leaves out
    ``add_document``. Raises ``UsageError``/``KnowledgeBaseNotFound`` before serving for a bad ``kb``.
    """
    settings = load_settings(home)
    registry = Registry(settings)
    if kb is not None:
        validate_name(kb)
        if kb not in registry.names():
            raise KnowledgeBaseNotFound(f"no knowledge base named {kb!r} in {settings.home}",
                                        _available_hint(registry.names()))
    server = build_server(Access(registry, default_kb=kb), writable=not read_only)
    try:
        server.run("stdio")
    finally:
        registry.close()


# -- streamable HTTP ------------------------------------------------------------------------------------
class McpMount:
    """MCP over streamable HTTP for the FastAPI app: ``app.mount("/mcp", mount.asgi)``, and
    ``async with mount.running(): yield`` in the app's lifespan (a mounted app's own lifespan never runs).

    Stateless mode: every POST stands alone (no session to resume or hijack), and every request
    passes the key check. Without keys (a loopback server) the Host and Origin headers must be
    loopback ones, so a web page cannot reach the tools through DNS rebinding.
    """

    def __init__(self, registry: Registry, keys: KeyStore, require_keys: bool) -> None:
        self.server = build_server(Access(registry, keys, require_keys))
        self.require_keys = require_keys
        self._running = False
        self.asgi: ASGIApp = _KeyGate(self._dispatch, keys, require_keys)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run a fresh session manager for the app's lifetime (one per entry, so an app may restart)."""
        self.server.streamable_http_app(streamable_http_path="/", stateless_http=True,
                                        transport_security=self._transport_security())
        async with self.server.session_manager.run():
            self._running = True
            try:
                yield
            finally:
                self._running = False

    def _transport_security(self) -> TransportSecuritySettings:
        if self.require_keys:  # reachable from other machines under any host name; the key is the guard
            return TransportSecuritySettings(enable_dns_rebinding_protection=False)
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._running:
            await _error(503, "the MCP endpoint is not running", "the app must enter McpMount.running() "
                         "in its lifespan", "NotRunning")(scope, receive, send)
            return
        await self.server.session_manager.handle_request(scope, receive, send)


class _KeyGate:
    """ASGI wrapper: 404 off the endpoint; with keys on, 401 JSON without a valid key, else the key is
    left in ``scope[SCOPE_KEY]`` for the tools (the SDK passes the request, scope and all, to them)."""

    def __init__(self, app: ASGIApp, keys: KeyStore, require_keys: bool) -> None:
        self.app, self.keys, self.require_keys = app, keys, require_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websockets; lifespan is McpMount.running()'s job
        if _route_path(scope) not in ("", "/"):
            await _error(404, f"no MCP route {scope['path']}", "the MCP endpoint is /mcp/",
                         "NotFound")(scope, receive, send)
            return
        if self.require_keys:
            try:
                scope[SCOPE_KEY] = await anyio.to_thread.run_sync(self.keys.verify, _bearer(scope))
            except AuthError as exc:
                await _error(exc.status, exc.message, exc.hint, type(exc).__name__,
                             {"WWW-Authenticate": 'Bearer realm="zhiku"'})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and sets root_path to the mount)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _bearer(scope: Scope) -> str | None:
    return bearer(next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None))


def _error(status: int, message: str, hint: str, kind: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    """The REST API's error JSON: ``{error, hint, type}``."""
    return JSONResponse({"error": message, "hint": hint, "type": kind}, status_code=status, headers=headers)
