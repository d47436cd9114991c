"""Embedded generator: llama.cpp in-process through xllamacpp (prebuilt CPU wheel, no compiler).

llama.cpp's server core keeps the last prompt's KV cache in its slot and reuses the longest
common prefix (``cache_prompt``), so the fixed system prompt is computed once per process;
``warm()`` computes it ahead of the first question. One generation runs at a time (one slot):
on a 2-core CPU, two at once would only halve each one's speed.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Iterator

from ..errors import GeneratorError, MissingDependency, StreamInterrupted
from .generator import Generator, Message, Piece, Sampling

_DONE = object()


class LlamaCppGenerator(Generator):
    def __init__(self, model_path: Path, context_window: int = 4096, threads: int = 0,
                 label: str = "") -> None:
        self.model_path = Path(model_path)
        self.context_window = context_window
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.name = f"llama.cpp:{label or self.model_path.name}"
        self._server = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def _load(self):
        with self._load_lock:
            if self._server is None:
                try:
                    import xllamacpp as xlc
                except ImportError as exc:
                    raise MissingDependency("the embedded LLM runtime xllamacpp is not installed",
                                            "pip install xllamacpp; or answer without a model: --no-llm") from exc
                p = xlc.CommonParams()
                p.model.path = str(self.model_path)
                p.n_ctx = self.context_window
                p.n_parallel = 1
                p.cpuparams.n_threads = self.threads
                p.cpuparams_batch.n_threads = self.threads
                p.warmup = False
                p.verbosity = 0
                try:
                    self._server = xlc.Server(p)
                except Exception as exc:  # llama.cpp reports load failures as a generic exception
                    raise GeneratorError(
                        f"llama.cpp could not load {self.model_path}: {exc}",
                        "the file may be damaged or not a llama.cpp model: for a bundled pack run "
                        "`zhiku models prepare NAME --force`; otherwise check generate.model") from exc
            return self._server

    def warm(self, messages: list[Message]) -> None:
        """Compute the KV cache of ``messages`` (e.g. the system prompt) so later prompts reuse it."""
        for _ in self.stream(messages, Sampling(max_tokens=1, temperature=0.0)):
            pass

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[Piece]:
        server = self._load()
        request = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "cache_prompt": True,
            "temperature": sampling.temperature,
            "top_k": sampling.top_k,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        }
        events: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def on_chunk(chunk) -> bool:
            events.put(chunk)
            return cancel.is_set()  # True asks llama.cpp to stop generating

        def run() -> None:
            try:
                with self._run_lock:
                    result = server.handle_chat_completions(request, on_chunk)
                if isinstance(result, dict) and "error" in result:
                    events.put(result)
            except Exception as exc:  # surfaced in the consumer's thread
                events.put(exc)
            finally:
                events.put(_DONE)

        worker = threading.Thread(target=run, name="zhiku-llama", daemon=True)
        worker.start()
        text: list[str] = []
        finished = False
        try:
            while True:
                item = events.get()
                if item is _DONE:
                    break
                if isinstance(item, Exception):
                    raise GeneratorError(f"llama.cpp failed: {item}") from item
                if "error" in item:
                    raise _error(item["error"], self.context_window)
                for choice in item.get("choices", []):
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if delta:
                        text.append(delta)
                        yield Piece(text=delta)
                    if choice.get("finish_reason"):
                        finished = True
                        yield Piece(finish_reason=choice["finish_reason"], usage=_usage(item))
        finally:
            cancel.set()
            worker.join()
        if not finished:
            raise StreamInterrupted("llama.cpp stopped before the answer was finished",
                                    "try again; if it repeats, lower generate.max_tokens", "".join(text))


def _usage(chunk: dict) -> dict:
    t = chunk.get("timings") or {}
    u = chunk.get("usage") or {}
    out = {
        "prompt_tokens": u.get("prompt_tokens", (t.get("prompt_n", 0) + t.get("cache_n", 0)) or None),
        "completion_tokens": u.get("completion_tokens", t.get("predicted_n")),
        "cached_tokens": t.get("cache_n"),
        "prompt_ms": t.get("prompt_ms"),
        "decode_ms": t.get("predicted_ms"),
    }
    return {k: v for k, v in out.items() if v is not None}


def _error(err, window: int) -> GeneratorError:
    msg = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    if "context" in msg.lower() or "exceed" in msg.lower():
        from ..errors import ContextTooSmall
        return ContextTooSmall(f"the prompt does not fit the model's context window ({window} tokens): {msg}",
                               "ask a shorter question, or raise generate.context_window")
    return GeneratorError(f"llama.cpp refused the request: {msg}")
