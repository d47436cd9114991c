"""Structure-aware chunking (pure functions).

Blocks (paragraphs) under the same heading path are packed into chunks of at most
``max_chars`` characters: whole paragraphs first; a paragraph that does not fit is split
at sentence boundaries (。！？；!? and English ". "), a sentence that does not fit at clause
marks (，、,;:：), then whitespace, then anywhere that is not inside a word or a number.
A new chunk inside a section starts with the previous chunk's last sentences, up to
``overlap_chars``. Each chunk is a contiguous span of the document text, so its offsets
show it in context.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..config import ChunkSettings
from ..types import Block, Chunk, ParsedDoc

CHUNKER_VERSION = "c1"
_SENTENCE_END = re.compile(r"(?:[。！？；!?]+|\.(?=\s)|\n)[”’」』）)\"']*\s*")
_CLAUSE_END = re.compile(r"[，、,;；:：]\s*")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def fingerprint(settings: ChunkSettings) -> str:
    """Identifies the chunking of a source: a change means the source is re-chunked on the next add."""
    return f"{CHUNKER_VERSION}:max={settings.max_chars}:overlap={settings.overlap_chars}:min={settings.min_chars}"


def chunk_document(doc: ParsedDoc, settings: ChunkSettings, source_key: str) -> list[Chunk]:
    spans: list[tuple[Span, tuple[str, ...]]] = []
    for heading, blocks in _sections(doc.blocks):
        spans.extend((s, heading) for s in _pack_section(doc.text, blocks, settings))
    return [
        Chunk(chunk_id=_chunk_id(source_key, s, doc.text), ordinal=i, text=doc.text[s.start:s.end],
              heading_path=heading, start=s.start, end=s.end)
        for i, (s, heading) in enumerate(spans)
    ]


def _sections(blocks: tuple[Block, ...]):
    current: list[Block] = []
    for block in blocks:
        if current and block.heading_path != current[0].heading_path:
            yield current[0].heading_path, current
            current = []
        current.append(block)
    if current:
        yield current[0].heading_path, current


def _pack_section(text: str, blocks: list[Block], cfg: ChunkSettings) -> list[Span]:
    chunks: list[Span] = []
    cur: Span | None = None
    for block in blocks:
        para = Span(block.start, block.end)
        if cur is not None and para.end - cur.start <= cfg.max_chars:
            cur = Span(cur.start, para.end)
            continue
        pieces = [para] if para.size <= cfg.max_chars else split_span(text, para, cfg.max_chars)
        for piece in pieces:
            if cur is not None and piece.end - cur.start <= cfg.max_chars:
                cur = Span(cur.start, piece.end)
                continue
            if cur is not None:
                chunks.append(cur)
                start = _overlap_start(text, cur, piece, cfg)
                cur = Span(start, piece.end)
            else:
                cur = piece
    if cur is not None:
        chunks.append(cur)
    return _merge_small_tail(chunks, cfg)


def _overlap_start(text: str, prev: Span, nxt: Span, cfg: ChunkSettings) -> int:
    """Start the next chunk with the previous chunk's trailing sentences (≤ overlap_chars)."""
    if cfg.overlap_chars <= 0:
        return nxt.start
    budget = cfg.max_chars - nxt.size
    start = nxt.start
    for sent in reversed(_split_by(text, prev, _SENTENCE_END)):
        if sent.start >= start:
            continue
        if nxt.start - sent.start > min(cfg.overlap_chars, budget):
            break
        start = sent.start
    return start


def _merge_small_tail(chunks: list[Span], cfg: ChunkSettings) -> list[Span]:
    if len(chunks) >= 2 and chunks[-1].size < cfg.min_chars:
        last, prev = chunks[-1], chunks[-2]
        if last.end - prev.start <= cfg.max_chars + cfg.min_chars:
            return chunks[:-2] + [Span(prev.start, last.end)]
    return chunks


def split_span(text: str, span: Span, limit: int) -> list[Span]:
    """Split a span into pieces of at most ``limit`` chars at the gentlest boundary available."""
    out: list[Span] = []
    for sent in _split_by(text, span, _SENTENCE_END):
        if sent.size <= limit:
            out.append(sent)
            continue
        for clause in _split_by(text, sent, _CLAUSE_END):
            if clause.size <= limit:
                out.append(clause)
            else:
                out.extend(_hard_split(text, clause, limit))
    return out


def _split_by(text: str, span: Span, pattern: re.Pattern) -> list[Span]:
    pieces, start = [], span.start
    for m in pattern.finditer(text, span.start, span.end):
        if m.end() > start:
            pieces.append(_strip(text, Span(start, m.end())))
            start = m.end()
    if start < span.end:
        pieces.append(_strip(text, Span(start, span.end)))
    return [p for p in pieces if p.size > 0]


def _hard_split(text: str, span: Span, limit: int) -> list[Span]:
    """Cut at whitespace if possible, never between two letters/digits of the same word or number."""
    out, start = [], span.start
    while span.end - start > limit:
        cut = _safe_cut(text, start, start + limit)
        out.append(_strip(text, Span(start, cut)))
        start = cut
    out.append(_strip(text, Span(start, span.end)))
    return [p for p in out if p.size > 0]


def _safe_cut(text: str, start: int, limit_end: int) -> int:
    window = text[start:limit_end]
    spaces = [m.end() for m in _SPACE.finditer(window)]
    if spaces and spaces[-1] > len(window) // 2:
        return start + spaces[-1]
    for cut in range(limit_end, start + len(window) // 2, -1):
        if not (_wordchar(text[cut - 1]) and _wordchar(text[cut])):
            return cut
    return limit_end  # one unbroken token longer than half a chunk: cutting is unavoidable


def _wordchar(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in "._-+%")


def _strip(text: str, span: Span) -> Span:
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end)


def _chunk_id(source_key: str, span: Span, text: str) -> str:
    digest = hashlib.sha1(f"{source_key}\0{span.start}\0{span.end}\0".encode())
    digest.update(text[span.start:span.end].encode())
    return digest.hexdigest()[:16]
