"""Generator for any OpenAI-compatible HTTP server (llama.cpp server, vLLM, Ollama, LM Studio, ...).

Standard library only (``http.client``): the endpoint is optional, so it must not cost a
dependency. The reply is read as Server-Sent Events line by line, so the first words show as soon
as the server sends them. Transient failures (refused connection, 429, 5xx) are retried only
before any text arrived: once the caller has shown words, a retry would show a different answer.

The small HTTP helpers here (``post_json``, ``auth_headers``, ``read_json``) are shared with
``http_rerank`` so both endpoints fail with the same messages.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import (
    ConfigError,
    ContextTooSmall,
    GeneratorError,
    GeneratorUnavailable,
    StreamInterrupted,
)
from .generator import Generator, Message, Piece, Sampling

_BACKOFF_S = 0.5  # first retry delay; doubles per retry (0.5 s, 1 s, ...)
_MAX_RETRY_AFTER_S = 4.0  # a server asking for longer is not worth blocking an interactive answer
_MAX_LINE = 1 << 20  # one SSE line; real chunks are < 1 KiB, this only stops a runaway body
_MAX_BODY = 16 << 20  # a whole non-streaming reply
_EXCERPT_CHARS = 200
_sleep = time.sleep  # module-level so tests can record the backoff instead of waiting

_WIRE_HINT = ("check that the URL points at an OpenAI-compatible API, usually ending in /v1 "
              "(llama.cpp server: http://127.0.0.1:8080/v1, Ollama: http://127.0.0.1:11434/v1)")


@dataclass(frozen=True)
class Endpoint:
    """A parsed http(s) URL, split once so each request does not re-validate it."""

    url: str
    https: bool
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, url: str, setting: str) -> Endpoint:
        """Validate ``url`` up front: a typo should fail at startup, not at the first question."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{setting} {url!r} is not an http:// or https:// address",
                              f"set {setting} to e.g. http://127.0.0.1:8080/v1")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{setting} {url!r} has an invalid port", "use host:port, e.g. 127.0.0.1:8080") from exc
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(url.strip(), parts.scheme == "https", parts.hostname, port, path)

    def connection(self, timeout_s: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout_s)


class _Retryable(Exception):
    """A failure worth another attempt; ``error`` is what the user sees if attempts run out."""

    def __init__(self, error: GeneratorError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def auth_headers(api_key_env: str, url: str) -> dict[str, str]:
    """JSON request headers, with the bearer key read from the environment now (not at startup),
    so a key exported after the process started, or rotated, is picked up."""
    headers = {"Content-Type": "application/json", "User-Agent": "zhiku"}
    if api_key_env:
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise GeneratorUnavailable(
                f"the API key for {url} is expected in the environment variable {api_key_env}, "
                "which is empty or not set",
                f"export {api_key_env}=<your key>, or clear api_key_env in the config if the "
                "server needs no key")
        headers["Authorization"] = f"Bearer {key}"
    return headers


def key_hints(api_key_env: str) -> dict[int, str]:
    """401/403 hints that name the variable the key came from, when there is one."""
    if not api_key_env:
        return {}
    hint = f"the server refused the key in ${api_key_env}: check its value (and its permissions)"
    return {401: hint, 403: hint}


def post_json(endpoint: Endpoint, body: dict, headers: dict[str, str], timeout_s: float, retries: int,
              status_hints: dict[int, str] | None = None,
              ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """POST ``body`` and return the open connection and its 2xx response (the caller closes it).

    Refused/reset connections, 429 and 5xx (except 501) are retried ``retries`` times with
    exponential backoff or the server's Retry-After; everything else fails at once.
    """
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    for attempt in range(retries + 1):
        try:
            return _post_once(endpoint, payload, headers, timeout_s, status_hints or {})
        except _Retryable as exc:
            if attempt == retries:
                raise exc.error from exc.__cause__
            _sleep(exc.retry_after if exc.retry_after is not None else _BACKOFF_S * 2 ** attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def _post_once(endpoint: Endpoint, payload: bytes, headers: dict[str, str], timeout_s: float,
               status_hints: dict[int, str]) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = endpoint.connection(timeout_s)
    try:
        _connect(conn, endpoint, timeout_s)
        resp = _send(conn, endpoint, payload, headers, timeout_s)
    except BaseException:
        conn.close()
        raise
    if 200 <= resp.status < 300:
        return conn, resp
    try:
        error, retryable, retry_after = _status_error(endpoint, resp, status_hints)
    finally:
        conn.close()
    if retryable:
        raise _Retryable(error, retry_after)
    raise error


def _connect(conn: http.client.HTTPConnection, endpoint: Endpoint, timeout_s: float) -> None:
    """Open the TCP (and TLS) connection, classifying why it could not be opened."""
    where = f"{endpoint.host}:{endpoint.port or (443 if endpoint.https else 80)}"
    try:
        conn.connect()
    except socket.gaierror as exc:
        raise GeneratorUnavailable(f"cannot find the host {endpoint.host!r} of {endpoint.url} ({exc})",
                                   "check the host name in the URL; for a server on this machine use 127.0.0.1"
                                   ) from exc
    except TimeoutError as exc:
        raise GeneratorUnavailable(f"no answer from {where} within {timeout_s:g} s while connecting to "
                                   f"{endpoint.url}",
                                   f"is the server running at {where} and reachable from here?") from exc
    except ssl.SSLError as exc:
        raise GeneratorUnavailable(f"TLS handshake with {endpoint.url} failed: {exc}",
                                   "check https:// vs http:// in the URL and the server's certificate") from exc
    except OSError as exc:  # refused, reset, unreachable network: often a server still starting
        raise _Retryable(GeneratorUnavailable(
            f"cannot connect to {endpoint.url}: {exc.strerror or exc}",
            f"is the server running at {where}? start it, or fix the address in the config")) from exc


def _send(conn: http.client.HTTPConnection, endpoint: Endpoint, payload: bytes, headers: dict[str, str],
          timeout_s: float) -> http.client.HTTPResponse:
    """Send the request and read the status line and headers."""
    try:
        conn.request("POST", endpoint.path, body=payload, headers=headers)
        return conn.getresponse()
    except TimeoutError as exc:
        raise GeneratorError(f"{endpoint.url} sent no reply within {timeout_s:g} s",
                             "the server may be busy or still loading its model; try again, or raise "
                             "the timeout in the config") from exc
    except ConnectionError as exc:  # includes RemoteDisconnected: closed before answering
        raise _Retryable(GeneratorUnavailable(
            f"{endpoint.url} closed the connection before answering ({exc})",
            "the server may be restarting or overloaded; check its log")) from exc
    except http.client.HTTPException as exc:
        raise GeneratorError(f"{endpoint.url} did not answer in HTTP ({exc!r})", _WIRE_HINT) from exc
    except OSError as exc:
        raise _Retryable(GeneratorUnavailable(f"sending the request to {endpoint.url} failed: {exc}",
                                              "check the network and that the server is running")) from exc


_DEFAULT_STATUS_HINTS = {
    400: "the server rejected the request; its message above says why",
    401: "the server wants an API key: set api_key_env in the config to the name of an environment "
         "variable holding it, and export that variable",
    403: "the API key was refused: check its value and its permissions",
    404: "check the address (OpenAI-compatible servers usually expect it to end in /v1) and the model name",
    429: "the server is rate limiting: wait a moment and try again",
    501: "the server does not implement this endpoint",
}


def _status_error(endpoint: Endpoint, resp: http.client.HTTPResponse, status_hints: dict[int, str],
                  ) -> tuple[GeneratorError, bool, float | None]:
    """The error for a non-2xx reply, whether to retry it, and the server's Retry-After (capped)."""
    status = resp.status
    excerpt = error_excerpt(_read_capped(resp, 8192))
    message = f"{endpoint.url} answered HTTP {status} {resp.reason}".rstrip() + (f": {excerpt}" if excerpt else "")
    if 300 <= status < 400:
        location = resp.getheader("Location", "")
        return GeneratorError(message, f"the server redirects to {location or 'another address'}: "
                                       "put that address in the config"), False, None
    hint = status_hints.get(status) or _DEFAULT_STATUS_HINTS.get(status)
    if status >= 500 and not hint:
        hint = "the server failed; check its log"
    if status == 400 and _looks_like_context_overflow(excerpt):
        return ContextTooSmall(message, "ask a shorter question, or raise generate.context_window to "
                                        "match the server's context size"), False, None
    retryable = status == 429 or (status >= 500 and status != 501)
    return GeneratorError(message, hint or ""), retryable, _retry_after(resp.getheader("Retry-After"))


def _looks_like_context_overflow(text: str) -> bool:
    low = text.lower()
    return "context" in low and any(w in low for w in ("exceed", "maximum", "too long", "length"))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the HTTP-date form is ignored), capped for interactivity."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def _read_capped(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """Up to ``limit`` bytes of an error body; an unreadable body just gives no excerpt."""
    try:
        return resp.read(limit)
    except (OSError, http.client.HTTPException):
        return b""


def error_excerpt(raw: bytes) -> str:
    """A short, readable excerpt of an error body, unwrapping ``{"error": {"message": ...}}``
    (OpenAI, vLLM, llama.cpp), ``{"error": "..."}`` (Ollama, TEI) and ``{"detail": ...}`` (FastAPI)."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        err = next((obj[k] for k in ("error", "detail", "message") if k in obj), None)
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)
    return _shorten(text)


def _shorten(text: str) -> str:
    if text.startswith("<"):  # an HTML error page from a proxy: keep its words
        text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS - 1] + "…"


def wire_error(url: str, what: str, got: str) -> GeneratorError:
    """The endpoint answered, but not in the protocol we speak."""
    return GeneratorError(f"{url} did not speak the OpenAI wire format ({what}): got {_shorten(got)!r}",
                          _WIRE_HINT)


def read_json(resp: http.client.HTTPResponse, url: str, timeout_s: float) -> object:
    """The whole body of a JSON reply, parsed."""
    try:
        raw = resp.read(_MAX_BODY + 1)
    except TimeoutError as exc:
        raise GeneratorError(f"{url} stopped sending its reply for {timeout_s:g} s",
                             "the server may be overloaded; try again, or raise the timeout") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise GeneratorError(f"the connection to {url} broke while reading the reply ({exc!r})",
                             "try again; if it repeats, check the server's log") from exc
    if len(raw) > _MAX_BODY:
        raise GeneratorError(f"{url} sent a reply larger than {_MAX_BODY >> 20} MiB", _WIRE_HINT)
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        raise wire_error(url, "the body is not JSON", text) from None


class OpenAIGenerator(Generator):
    """Streams chat completions from ``{base_url}/chat/completions``."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "", timeout_s: float = 60.0,
                 retries: int = 2, context_window: int = 8192) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.context_window = context_window
        self.name = f"openai:{model}"
        self.endpoint = Endpoint.parse(self.base_url + "/chat/completions", "generate.base_url")
        self.url = self.endpoint.url

    def request_body(self, messages: list[Message], sampling: Sampling) -> dict:
        """The JSON request. ``top_k`` is not in OpenAI's spec but llama.cpp, vLLM and Ollama honour it."""
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        }

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[Piece]:
        headers = auth_headers(self.api_key_env, self.url)
        headers["Accept"] = "text/event-stream, application/json"
        hints = {404: f"check the model name ({self.model!r}) and that generate.base_url ends in /v1 "
                      f"(it is {self.base_url})", **key_hints(self.api_key_env)}
        conn, resp = post_json(self.endpoint, self.request_body(messages, sampling), headers,
                               self.timeout_s, self.retries, hints)
        try:  # closing early (the caller stopped reading) drops the connection, which stops the server
            if "json" in (resp.getheader("Content-Type") or "").lower():
                yield from self._whole_reply(resp)
            else:
                yield from self._sse_reply(resp)
        finally:
            conn.close()

    def _whole_reply(self, resp: http.client.HTTPResponse) -> Iterator[Piece]:
        """A server that ignored ``stream: true`` and sent one JSON completion."""
        obj = read_json(resp, self.url, self.timeout_s)
        if isinstance(obj, dict) and "error" in obj:
            raise self._server_error(obj, "")
        choice = _first_choice(obj, self.url, "a JSON reply without choices")
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if content is not None and not isinstance(content, str):
            raise wire_error(self.url, "message.content is not text", json.dumps(obj)[:300])
        if content:
            yield Piece(text=content)
        yield Piece(finish_reason=choice.get("finish_reason") or "stop", usage=_usage(obj))

    def _sse_reply(self, resp: http.client.HTTPResponse) -> Iterator[Piece]:
        """Chunks until ``[DONE]``; a close after a finish_reason also counts as complete."""
        received: list[str] = []
        finish: str | None = None
        usage: dict = {}
        done = False
        for data in self._sse_data(resp, received):
            if data == "[DONE]":
                done = True
                break
            obj = self._chunk(data, received)
            delta, reason = _delta(obj, self.url, data)
            if delta:
                received.append(delta)
                yield Piece(text=delta)
            finish = reason or finish
            usage = _usage(obj) or usage
        if not done and finish is None:
            raise StreamInterrupted(f"the connection to {self.url} closed before the answer was finished",
                                    "try again; if it repeats, check the server's log", "".join(received))
        yield Piece(finish_reason=finish or "stop", usage=usage)

    def _sse_data(self, resp: http.client.HTTPResponse, received: list[str]) -> Iterator[str]:
        """The payloads of the ``data:`` lines; comments (keepalives), blank lines and other SSE
        fields are skipped. A last line cut off without its newline is treated as a cut stream."""
        while True:
            raw = self._readline(resp, received)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not raw.endswith(b"\n"):
                if len(raw) >= _MAX_LINE:
                    raise wire_error(self.url, f"a line longer than {_MAX_LINE} bytes", line[:200])
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    return  # half a chunk: the connection was cut mid-line
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if field == "data":
                yield value.removeprefix(" ")
            elif field not in ("event", "id", "retry"):
                raise wire_error(self.url, "not a Server-Sent Events stream", line)

    def _readline(self, resp: http.client.HTTPResponse, received: list[str]) -> bytes:
        """One line; a timeout or broken connection becomes the error the caller can act on."""
        try:
            return resp.readline(_MAX_LINE)
        except TimeoutError as exc:
            if received:
                raise StreamInterrupted(f"{self.url} sent nothing for {self.timeout_s:g} s in the middle "
                                        "of the answer", "try again, or raise the timeout in the config",
                                        "".join(received)) from exc
            raise GeneratorError(f"{self.url} sent no answer within {self.timeout_s:g} s",
                                 "the server may be busy or still loading; try again, or raise the "
                                 "timeout in the config") from exc
        except (OSError, http.client.HTTPException) as exc:  # reset, or chunked body cut short
            raise StreamInterrupted(f"the connection to {self.url} broke before the answer was finished "
                                    f"({type(exc).__name__})", "try again; if it repeats, check the server's log",
                                    "".join(received)) from exc

    def _chunk(self, data: str, received: list[str]) -> dict:
        try:
            obj = json.loads(data)
        except ValueError:
            raise wire_error(self.url, "a data line that is not JSON", data) from None
        if not isinstance(obj, dict):
            raise wire_error(self.url, "a data line that is not a JSON object", data)
        if "error" in obj:
            raise self._server_error(obj, "".join(received))
        if "choices" not in obj and "usage" not in obj:
            raise wire_error(self.url, "a chunk without choices", data)
        return obj

    def _server_error(self, obj: dict, partial: str) -> GeneratorError:
        """An error the server reported inside a 200 reply (llama.cpp does so mid-stream)."""
        excerpt = error_excerpt(json.dumps(obj, ensure_ascii=False).encode("utf-8"))
        message = f"{self.url} reported an error: {excerpt}"
        if partial:
            return StreamInterrupted(message, "try again; if it repeats, check the server's log", partial)
        if _looks_like_context_overflow(excerpt):
            return ContextTooSmall(message, "ask a shorter question, or raise generate.context_window")
        return GeneratorError(message, "check the server's log")


def _first_choice(obj: object, url: str, what: str) -> dict:
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise wire_error(url, what, json.dumps(obj, ensure_ascii=False)[:300])
    return choices[0]


def _delta(obj: dict, url: str, data: str) -> tuple[str, str | None]:
    """Text and finish reason of a stream chunk; the usage-only chunk has ``choices: []``."""
    choices = obj.get("choices")
    if choices in (None, []):
        return "", None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise wire_error(url, "choices is not a list of objects", data)
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    if content is not None and not isinstance(content, str):
        raise wire_error(url, "delta.content is not text", data)
    return content or "", choices[0].get("finish_reason")


def _usage(obj: dict) -> dict:
    """``prompt_tokens``, ``completion_tokens`` and ``cached_tokens`` where the server reports them."""
    u = obj.get("usage")
    if not isinstance(u, dict):
        return {}
    out = {k: u[k] for k in ("prompt_tokens", "completion_tokens") if isinstance(u.get(k), int)}
    details = u.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None and isinstance(obj.get("timings"), dict):  # llama.cpp's own field
        cached = obj["timings"].get("cache_n")
    if isinstance(cached, int):
        out["cached_tokens"] = cached
    return out
