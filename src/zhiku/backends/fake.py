"""Deterministic FAKE embedder for fast unit tests and demos. Never the default.

It hashes character bigrams into a small vector: similar strings get similar vectors,
but it understands nothing. The knowledge base records its name, so a KB built with it
cannot be silently mixed with a real one.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from .embedder import Embedder, normalise


class FakeHashEmbedder(Embedder):
    name = "fake-hash-bigram"
    dim = 64

    def embed_batch(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            text = text.lower()
            for a, b in zip(text, text[1:] or " "):
                h = hashlib.blake2b((a + b).encode(), digest_size=4).digest()
                out[row, int.from_bytes(h, "little") % self.dim] += 1.0
        return normalise(out)
