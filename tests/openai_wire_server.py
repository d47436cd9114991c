"""TEST SERVER ONLY: a real loopback HTTP server speaking the OpenAI wire format, with faults on demand.

It answers ``POST /v1/chat/completions`` with Server-Sent Events (chunked, like llama.cpp and vLLM)
and ``POST /v1/rerank`` / ``/rerank`` with the rerank shapes, and records every request so tests can
check what the client sent. Each behaviour is set by one method::

    with OpenAIWireTestServer() as srv:
        srv.stream(["你好", "，世界"])          # normal stream
        srv.stream(["a", "b", "c"], cut_after=2)  # socket closed without [DONE]
        srv.error(404, "model 'x' not found")    # OpenAI error JSON
        srv.fail_first(2)                         # 503 twice, then the behaviour above
        srv.slow(2.0)                             # nothing for 2 s
        gen = OpenAIGenerator(srv.base_url, "test-model")
"""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CHAT_PATH = "/v1/chat/completions"
RERANK_PATHS = ("/v1/rerank", "/rerank")

Behaviour = Callable[["_Handler"], None]


@dataclass
class Received:
    """One request as the server saw it; ``headers`` keys are lower-case."""

    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text if it was not JSON


class OpenAIWireTestServer:
    """Context manager running the server on 127.0.0.1 on a free port in a daemon thread."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._chat: Behaviour = _stream_behaviour(["Hello", " world"], "stop", None, None, None, 0.0, True)
        self._rerank: Behaviour = _json_behaviour(200, {"results": []}, {})
        self._failures_left = 0
        self._failure: Behaviour | None = None
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # cuts every sleep short on shutdown
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        handler = type("BoundHandler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="openai-wire-test-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def root(self) -> str:
        assert self._httpd is not None, "use the server as a context manager"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    @property
    def chat_requests(self) -> list[Received]:
        return [r for r in self.requests if r.path == CHAT_PATH]

    # ---- chat behaviours -------------------------------------------------------------------
    def stream(self, pieces: list[str], finish_reason: str = "stop", usage: dict | None = None, *,
               cut_after: int | None = None, stall_after: int | None = None, stall_s: float = 0.0,
               done: bool = True) -> None:
        """Stream ``pieces`` as SSE chunks. ``cut_after``: close the socket after that many pieces
        (no finish, no [DONE]). ``stall_after``: go silent ``stall_s`` seconds after that many.
        ``done=False``: end after the finish chunk without ``data: [DONE]``."""
        self._chat = _stream_behaviour(pieces, finish_reason, usage, cut_after, stall_after, stall_s, done)

    def sse_lines(self, lines: list[str], content_type: str = "text/event-stream") -> None:
        """Send these raw lines (each followed by a blank line) as the body: for malformed streams."""
        body = "".join(f"{line}\n\n" for line in lines).encode("utf-8")
        self._chat = _raw_behaviour(200, content_type, body, {})

    def reply(self, status: int, body: bytes | str | dict, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        """Answer every chat request with this exact status and body."""
        self._chat = _raw_behaviour(status, content_type, _encode(body), headers or {})

    def error(self, status: int, message: str, retry_after: str | None = None) -> None:
        """An OpenAI-shaped error: ``{"error": {"message", "type", "code"}}``."""
        self._chat = _error_behaviour(status, message, retry_after)

    def completion_json(self, text: str, finish_reason: str = "stop", usage: dict | None = None) -> None:
        """A non-streaming ``chat.completion`` object, as a server that ignores ``stream`` sends."""
        body = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish_reason}],
                "usage": usage if usage is not None else _usage(1)}
        self._chat = _json_behaviour(200, body, {})

    def slow(self, delay_s: float) -> None:
        """Read the request, then send nothing for ``delay_s`` seconds (then a normal stream)."""
        inner = _stream_behaviour(["late"], "stop", None, None, None, 0.0, True)

        def behave(h: _Handler) -> None:
            if not self.stopping.wait(delay_s):
                inner(h)
        self._chat = behave

    def fail_first(self, times: int, status: int = 503, retry_after: str | None = None,
                   message: str = "server is loading the model") -> None:
        """Answer the next ``times`` requests (any path) with ``status``, then behave as set."""
        self._failures_left = times
        self._failure = _error_behaviour(status, message, retry_after)

    # ---- rerank behaviours -----------------------------------------------------------------
    def rerank(self, scores: list[float], shape: str = "results", omit: tuple[int, ...] = ()) -> None:
        """Rerank replies sorted by score, best first, like real servers. ``shape``: ``results``
        (vLLM/Jina/Cohere/llama.cpp) or ``tei`` (bare list with ``score``). ``omit``: indexes left out."""
        items = sorted(((i, s) for i, s in enumerate(scores) if i not in omit), key=lambda p: -p[1])
        if shape == "tei":
            body: Any = [{"index": i, "score": s} for i, s in items]
        else:
            body = {"model": "test-reranker", "object": "list",
                    "results": [{"index": i, "relevance_score": s} for i, s in items]}
        self._rerank = _json_behaviour(200, body, {})

    def rerank_reply(self, status: int, body: bytes | str | dict | list,
                     content_type: str = "application/json") -> None:
        self._rerank = _raw_behaviour(status, content_type, _encode(body), {})

    # ---- dispatch (called from handler threads) ---------------------------------------------
    def _dispatch(self, h: _Handler) -> None:
        with self._lock:
            failing = self._failures_left > 0
            if failing:
                self._failures_left -= 1
        if failing and self._failure is not None:
            self._failure(h)
        elif h.path == CHAT_PATH:
            self._chat(h)
        elif h.path in RERANK_PATHS:
            self._rerank(h)
        else:
            _error_behaviour(404, f"File Not Found: {h.path}", None)(h)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streaming, as real servers do
    owner: OpenAIWireTestServer

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        text = raw.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        self.owner.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.close_connection = True
        try:
            self.owner._dispatch(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        return

    # helpers used by behaviours
    def send_whole(self, status: int, content_type: str, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def chunk(self, text: str) -> None:
        data = text.encode("utf-8")
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        """Drop the connection mid-body, like a killed server process."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)


def _encode(body: bytes | str | dict | list) -> bytes:
    if isinstance(body, bytes):
        return body
    return (body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)).encode("utf-8")


def _usage(completion_tokens: int) -> dict:
    return {"prompt_tokens": 12, "completion_tokens": completion_tokens, "total_tokens": 12 + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 3}}


def _event(choices: list, **extra: Any) -> str:
    obj = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": "test-model",
           "choices": choices, **extra}
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _delta(delta: dict, finish_reason: str | None = None) -> str:
    return _event([{"index": 0, "delta": delta, "finish_reason": finish_reason}])


def _stream_behaviour(pieces: list[str], finish_reason: str, usage: dict | None, cut_after: int | None,
                      stall_after: int | None, stall_s: float, done: bool) -> Behaviour:
    def behave(h: _Handler) -> None:
        h.start_chunked()
        h.chunk(_delta({"role": "assistant", "content": None}))  # llama.cpp's opening chunk
        h.chunk(": keepalive\n\n")
        for i, piece in enumerate(pieces):
            if i == cut_after:
                h.cut()
                return
            if i == stall_after:
                h.owner.stopping.wait(stall_s)
            h.chunk(_delta({"content": piece}))
        if cut_after is not None and cut_after >= len(pieces):
            h.cut()
            return
        h.chunk(_delta({}, finish_reason))
        h.chunk(_event([], usage=usage if usage is not None else _usage(len(pieces))))
        if done:
            h.chunk("data: [DONE]\n\n")
        h.end_chunked()
    return behave


def _raw_behaviour(status: int, content_type: str, body: bytes, headers: dict[str, str]) -> Behaviour:
    return lambda h: h.send_whole(status, content_type, body, headers)


def _json_behaviour(status: int, body: Any, headers: dict[str, str]) -> Behaviour:
    return _raw_behaviour(status, "application/json", _encode(body), headers)


def _error_behaviour(status: int, message: str, retry_after: str | None) -> Behaviour:
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "code": status}}
    return _json_behaviour(status, body, {"Retry-After": retry_after} if retry_after else {})
