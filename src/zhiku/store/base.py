"""The store interface. Every backend passes tests/store_contract.py."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

import numpy as np

from ..types import Chunk, SourceRecord, StoredChunk


class Store(ABC):
    """System of record for one knowledge base: sources, chunks, embeddings, lexical and vector search.

    Writes of one source are atomic: after ``replace_source`` or ``remove_source`` returns, a
    reader sees all of the new state or (if the process died) all of the old one.
    """

    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def get_source(self, path: str) -> SourceRecord | None: ...

    @abstractmethod
    def list_sources(self) -> list[SourceRecord]: ...

    @abstractmethod
    def source_text(self, path: str) -> str: ...

    @abstractmethod
    def replace_source(self, record: SourceRecord, text: str, chunks: Sequence[Chunk],
                       terms: Sequence[str], vectors: np.ndarray) -> None:
        """Insert or atomically replace a source and all its chunks.

        ``terms[i]`` is chunk i's segmented lexical text (space-separated); ``vectors[i]`` its embedding.
        """

    @abstractmethod
    def remove_source(self, path: str) -> int:
        """Remove a source and its chunks; returns the number of chunks removed (0 if unknown)."""

    @abstractmethod
    def get_chunks(self, rows: Sequence[int]) -> dict[int, StoredChunk]: ...

    @abstractmethod
    def chunk_by_id(self, chunk_id: str) -> StoredChunk | None: ...

    @abstractmethod
    def iter_chunks(self) -> Iterator[StoredChunk]: ...

    @abstractmethod
    def set_embeddings(self, rows: Sequence[int], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def chunk_count(self) -> int: ...

    @abstractmethod
    def lexical_search(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """BM25 over segmented terms (OR semantics); (row, score) best first, higher is better."""

    @abstractmethod
    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each term (terms in no chunk are absent or 0)."""

    @abstractmethod
    def vector_search(self, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        """Cosine similarity; (row, score) best first."""

    @abstractmethod
    def close(self) -> None: ...
