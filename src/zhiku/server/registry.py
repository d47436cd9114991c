"""The server's shared state: open knowledge bases, their answerers, one generation queue per model."""
from __future__ import annotations

import threading
from pathlib import Path

from ..backends.queue import GenerationQueue
from ..config import Settings
from ..kb import KnowledgeBase
from ..store.keys import ALL_KBS, ApiKey


class Registry:
    """Open knowledge bases and their answerers, one of each per process, made on first use.

    Every answerer of every knowledge base shares one ``GenerationQueue`` per model, so concurrent
    requests take turns on the model instead of fighting over it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home: Path = settings.home
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
        cfg = self.settings.server
        with self._lock:
            return self._queues.setdefault(id(gen), GenerationQueue(gen, cfg.generation_slots, cfg.max_wait_s))

    def queues(self) -> list[dict]:
        with self._lock:
            return [q.status() for q in self._queues.values()]

    def get(self, name: str) -> KnowledgeBase:
        with self._lock:
            if name not in self._open:
                self._open[name] = KnowledgeBase.open(name, home=self.home, create=False)
            return self._open[name]

    def create(self, name: str) -> KnowledgeBase:
        with self._lock:
            if name not in self._open:
                self._open[name] = KnowledgeBase.open(name, home=self.home, create=True)
            return self._open[name]

    def forget(self, name: str) -> None:
        """Close a knowledge base and drop its answerers (before it is deleted)."""
        with self._lock:
            kb = self._open.pop(name, None)
            for key in [k for k in self._answerers if k[0] == name]:
                del self._answerers[key]
        if kb is not None:
            kb.close()

    def names(self, key: ApiKey | None = None) -> list[str]:
        """Knowledge bases under the home; with ``key``, only those it may use."""
        return [n for n in KnowledgeBase.list_names(self.home) if key is None or key.kb in (n, ALL_KBS)]

    def close(self) -> None:
        with self._lock:
            for kb in self._open.values():
                kb.close()
            self._open.clear()
