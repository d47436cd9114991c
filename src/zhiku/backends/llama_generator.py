"""Embedded generator: llama.cpp in-process through xllamacpp (prebuilt CPU wheel, no compiler).

llama.cpp's server core keeps the last prompt's KV cache in its slot and reuses the longest
common prefix (``cache_prompt``), so the fixed system prompt is computed once per process.
``warm()`` goes further: it saves that KV state to a file (llama.cpp's slot save) and later
processes restore it in milliseconds instead of recomputing it (about 7 s for the answer prompt
on 2 cores), so a one-shot ``zhiku ask`` gets the same head start as a long-running server.
One generation runs at a time: on a 2-core CPU, two at once would only halve each one's speed.
There are two KV slots, each with the full context window: prompts are routed by their system
message, so the answer prompt (slot 0) keeps its cache while a chat's rewrite prompt uses the
other.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import urllib.request
from pathlib import Path
from typing import Iterator

from ..errors import GeneratorError, MissingDependency, StreamInterrupted
from .generator import Generator, Message, Piece, Sampling

_DONE = object()
SLOTS = 2


class LlamaCppGenerator(Generator):
    def __init__(self, model_path: Path, context_window: int = 4096, threads: int = 0,
                 label: str = "", kv_dir: Path | None = None, nice: int = 0) -> None:
        self.model_path = Path(model_path)
        self.kv_dir = Path(kv_dir) if kv_dir else None  # where warm() keeps prompt KV caches
        self.context_window = context_window
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.nice = nice
        self.name = f"llama.cpp:{label or self.model_path.name}"
        self._server = None
        self._slots: dict[str, int] = {}  # system message → slot id, most recent last
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
                p.n_ctx = self.context_window * SLOTS  # split evenly: each slot gets the full window
                p.n_parallel = SLOTS
                p.cpuparams.n_threads = self.threads
                p.cpuparams_batch.n_threads = self.threads
                p.warmup = False
                p.verbosity = 0
                if self.kv_dir is not None:
                    self.kv_dir.mkdir(parents=True, exist_ok=True)
                    p.slot_save_path = str(self.kv_dir) + os.sep  # llama.cpp appends the file name as is
                    p.endpoint_slots = True
                try:
                    self._server = _start(lambda: xlc.Server(p), self.nice)
                except Exception as exc:  # llama.cpp reports load failures as a generic exception
                    raise GeneratorError(
                        f"llama.cpp could not load {self.model_path}: {exc}",
                        "the file may be damaged or not a llama.cpp model: for a bundled pack run "
                        "`zhiku models prepare NAME --force`; otherwise check generate.model") from exc
            return self._server

    def warm(self, messages: list[Message]) -> str:
        """Make the KV cache hold ``messages`` (e.g. the system prompt) so later prompts reuse it.

        Restores a saved state when there is one (``restored``), else computes it and saves it
        (``computed``); without ``kv_dir`` it only computes. A damaged or stale file is removed
        and recomputed.
        """
        server = self._load()
        name = self._kv_name(messages)
        slot = self._slot_for(messages)
        if self.kv_dir is not None and (self.kv_dir / name).is_file():
            try:
                if self._slot(server, "restore", name, slot).get("n_restored", 0) > 0:
                    return "restored"
            except Exception:  # noqa: BLE001 - any failure means: recompute
                pass
            (self.kv_dir / name).unlink(missing_ok=True)
        for _ in self.stream(messages, Sampling(max_tokens=1, temperature=0.0)):
            pass
        if self.kv_dir is not None:
            try:
                self._slot(server, "save", name, slot)
            except Exception:  # noqa: BLE001 - a cache we cannot write only costs time next run
                (self.kv_dir / name).unlink(missing_ok=True)
        return "computed"

    def _slot_for(self, messages: list[Message]) -> int:
        """Slot 0 for the first system prompt seen (warm() sees the answer prompt first), then LRU."""
        key = messages[0].content if messages and messages[0].role == "system" else ""
        if key in self._slots:
            slot = self._slots.pop(key)
        elif len(self._slots) < SLOTS:
            slot = len(self._slots)
        else:
            oldest = next(iter(self._slots))
            slot = self._slots.pop(oldest)
        self._slots[key] = slot
        return slot

    def _kv_name(self, messages: list[Message]) -> str:
        import xllamacpp
        st = self.model_path.stat()
        key = json.dumps([str(self.model_path), st.st_size, st.st_mtime_ns, self.context_window,
                          xllamacpp.__version__, [(m.role, m.content) for m in messages]], ensure_ascii=False)
        return "prompt-" + hashlib.sha256(key.encode()).hexdigest()[:24] + ".kv"

    def _slot(self, server, action: str, name: str, slot: int = 0) -> dict:
        """llama.cpp's slot save/restore, through the server's own loopback HTTP endpoint."""
        with self._run_lock:
            req = urllib.request.Request(f"{server.listening_address}/slots/{slot}?action={action}",
                                         data=json.dumps({"filename": name}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())

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
            "id_slot": self._slot_for(messages),
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


def _start(make, nice: int):
    """``make()`` on a short-lived thread at ``nice``: the threads llama.cpp starts for the model
    inherit it (Linux), so with nice > 0 searches on the same cores go first. The caller's own
    thread keeps its priority (an unprivileged process cannot lower it back)."""
    if nice <= 0:
        return make()
    out: list = []

    def run() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except (AttributeError, OSError):
            pass
        try:
            out.append(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out.append(exc)

    t = threading.Thread(target=run, name="zhiku-llama-load")
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]
