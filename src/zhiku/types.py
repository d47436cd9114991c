"""Typed, immutable values passed between the journey's stages."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath


@dataclass(frozen=True)
class Block:
    """A span of a document's extracted text with the headings it sits under.

    ``start``/``end`` are character offsets into ``ParsedDoc.text``.
    """

    start: int
    end: int
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedDoc:
    """What a parser returns: the extracted text and its structural blocks."""

    text: str
    blocks: tuple[Block, ...]
    encoding: str | None = None  # the detected encoding, for text formats


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a source. ``text`` is ``source_text[start:end]``."""

    chunk_id: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    start: int
    end: int

    def embedding_text(self, title: str) -> str:
        return embedding_text(title, self.heading_path, self.text)


def embedding_text(title: str, heading_path: tuple[str, ...], text: str) -> str:
    """Text fed to the embedder and the lexical index: the title and headings travel with the chunk."""
    path = " > ".join(p for p in (title, *heading_path) if p)
    return f"{path}\n{text}" if path else text


@dataclass(frozen=True)
class SourceRecord:
    """A file in the knowledge base."""

    path: str  # absolute path on disk: the identity of the source
    source: str  # path relative to the folder that was added (what users see)
    content_hash: str
    chunker: str  # fingerprint of the chunking settings that produced the chunks
    format: str
    size: int
    chunk_count: int = 0
    added_at: float = 0.0


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the store, with its source."""

    row: int  # internal integer key (lexical and vector indexes use it)
    chunk_id: str
    source: str
    path: str
    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    start: int
    end: int

    def embedding_text(self) -> str:
        return embedding_text(PurePath(self.source).stem, self.heading_path, self.text)


@dataclass(frozen=True)
class Trace:
    """Why a hit is where it is: each retriever's rank and score, and the fused score."""

    lexical_rank: int | None = None
    lexical_score: float | None = None
    vector_rank: int | None = None
    vector_score: float | None = None
    fused_score: float | None = None

    def as_dict(self) -> dict:
        return {
            "lexical_rank": self.lexical_rank,
            "lexical_score": self.lexical_score,
            "vector_rank": self.vector_rank,
            "vector_score": self.vector_score,
            "fused_score": self.fused_score,
        }


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: StoredChunk
    trace: Trace
    highlights: tuple[tuple[int, int], ...] = ()  # spans in chunk.text matching query terms

    def as_dict(self) -> dict:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": self.score,
            "source": c.source,
            "chunk_id": c.chunk_id,
            "heading_path": list(c.heading_path),
            "text": c.text,
            "start": c.start,
            "end": c.end,
            "highlights": [list(h) for h in self.highlights],
            "trace": self.trace.as_dict(),
        }


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    hits: tuple[Hit, ...]
    terms: tuple[str, ...] = ()
    timings: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "query": self.query,
            "mode": self.mode,
            "terms": list(self.terms),
            "hits": [h.as_dict() for h in self.hits],
            "timings": self.timings,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class FileOutcome:
    """What ingest did with one file."""

    path: str
    source: str
    status: str  # added | replaced | unchanged | skipped | removed
    chunks: int = 0
    reason: str = ""


@dataclass
class AddReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def by_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def chunks_written(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "replaced"))

    def as_dict(self) -> dict:
        counts = {s: len(self.by_status(s)) for s in ("added", "replaced", "unchanged", "skipped", "removed")}
        return {
            **counts,
            "chunks_written": self.chunks_written,
            "seconds": round(self.seconds, 3),
            "files": [o.__dict__ for o in self.outcomes],
        }
