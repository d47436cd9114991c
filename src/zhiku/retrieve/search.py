"""Hybrid search: lexical (BM25 over segmented text) + vector (cosine), fused by RRF, with traces."""
from __future__ import annotations

import time

from ..backends.embedder import Embedder
from ..backends.segmenter import Segmenter
from ..config import RetrieveSettings
from ..errors import UsageError
from ..store.base import Store
from ..types import Hit, SearchResult, Trace
from .fusion import Ranked, positions, rrf
from .highlight import term_spans
from .lexical import select_terms

MODES = ("hybrid", "vector", "lexical")
MAX_QUERY_CHARS = 2000  # longer queries are cut (with a warning): e5 reads 512 tokens at a time anyway
MAX_QUERY_TERMS = 64


def search(query: str, store: Store, embedder: Embedder, segmenter: Segmenter,
           cfg: RetrieveSettings) -> SearchResult:
    _validate(query, cfg)
    warnings = []
    if len(query) > MAX_QUERY_CHARS:
        warnings.append(f"query cut from {len(query)} to {MAX_QUERY_CHARS} characters")
    text = query[:MAX_QUERY_CHARS]
    timings: dict[str, float] = {}
    terms = segmenter.query_terms(text)[:MAX_QUERY_TERMS]
    lists: list[Ranked] = []
    # Sequential on purpose: the embedder's OpenMP threads use every core, and a keyword search
    # on another thread at the same time made queries slower, not faster (bench/search_latency.py).
    if cfg.mode in ("hybrid", "lexical"):
        lists.append(_lexical(store, terms, cfg, timings, warnings))
    if cfg.mode in ("hybrid", "vector"):
        t0 = time.perf_counter()
        qvec = embedder.embed_query(text)
        timings["embed_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        lists.append(Ranked("vector", store.vector_search(qvec, cfg.candidates), cfg.vector_weight))
        timings["vector_s"] = time.perf_counter() - t0
    fused = rrf(lists, cfg.rrf_k) if cfg.mode == "hybrid" else lists[0].hits
    hits = _hits(fused[:cfg.k], lists, store, terms, cfg.mode == "hybrid")
    return SearchResult(query=query, mode=cfg.mode, hits=hits, terms=tuple(terms),
                        timings={k: round(v, 6) for k, v in timings.items()}, warnings=tuple(warnings))


def _lexical(store: Store, terms: list[str], cfg: RetrieveSettings, timings: dict, warnings: list) -> Ranked:
    t0 = time.perf_counter()
    kept, dropped = select_terms(terms, store.document_frequencies(terms))
    if dropped:
        warnings.append(f"very common terms left out of the keyword search: {' '.join(dropped)}")
    hits = store.lexical_search(kept, cfg.candidates)
    timings["lexical_s"] = time.perf_counter() - t0
    return Ranked("lexical", hits, cfg.lexical_weight)


def _validate(query: str, cfg: RetrieveSettings) -> None:
    if not query or not query.strip():
        raise UsageError("the query is empty", "give a question or some keywords, e.g. zhiku search \"数据决定什么\"")
    if cfg.mode not in MODES:
        raise UsageError(f"unknown search mode {cfg.mode!r}", f"use one of: {', '.join(MODES)}")
    if cfg.k < 1 or cfg.candidates < 1:
        raise UsageError("k and candidates must be at least 1")


def _hits(ranked: list[tuple[int, float]], lists: list[Ranked], store: Store, terms: list[str],
          fused: bool) -> tuple[Hit, ...]:
    chunks = store.get_chunks([row for row, _ in ranked])
    pos = {r.name: positions(r) for r in lists}
    out = []
    for row, score in ranked:
        chunk = chunks.get(row)
        if chunk is None:  # removed between the index lookup and now
            continue
        lex = pos.get("lexical", {}).get(row, (None, None))
        vec = pos.get("vector", {}).get(row, (None, None))
        trace = Trace(lexical_rank=lex[0], lexical_score=_round(lex[1]), vector_rank=vec[0],
                      vector_score=_round(vec[1]), fused_score=_round(score) if fused else None)
        out.append(Hit(rank=len(out) + 1, score=round(score, 6), chunk=chunk, trace=trace,
                       highlights=term_spans(chunk.text, terms)))
    return tuple(out)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
