"""The embedder contract: one abstract method, ``embed_batch``; helpers live here."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

import numpy as np


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    Subclasses set ``name`` (recorded in the knowledge base) and ``dim`` and implement
    ``embed_batch``. Asymmetric models (e5) distinguish queries from passages.
    """

    name: str = ""
    dim: int = 0

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, rows L2-normalised."""

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text], is_query=True)[0]

    def embed_passages(self, texts: Sequence[str], batch_size: int = 16,
                       progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed in batches, calling ``progress(n_done_in_batch)`` after each batch."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            batch = texts[i:i + batch_size]
            out[i:i + len(batch)] = self.embed_batch(batch, is_query=False)
            if progress:
                progress(len(batch))
        return out


def normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return rows / norms
