"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009).

    fused(d) = Σ_r  w_r / (k + rank_r(d))      rank is 1-based; absent lists contribute 0

``k`` damps the head of each list: with k=60 (the paper's value, also FastGPT's) the
gap between rank 1 and rank 2 is small, so a passage ranked well by both retrievers beats
one ranked first by only one. RRF uses ranks, not scores, so BM25 and cosine never need
calibrating against each other. The default weights and k are measured on the dev set
(docs/retrieval.md); bench/retrieval_quality.py reproduces the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Ranked:
    """One retriever's result list: (row, score) best first."""

    name: str
    hits: list[tuple[int, float]]
    weight: float = 1.0


def rrf(lists: list[Ranked], k: int = DEFAULT_RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists; returns (row, fused score) best first, ties broken by row id."""
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, (row, _score) in enumerate(ranked.hits, start=1):
            fused[row] = fused.get(row, 0.0) + ranked.weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def positions(ranked: Ranked) -> dict[int, tuple[int, float]]:
    """row -> (1-based rank, score) for building traces."""
    return {row: (rank, score) for rank, (row, score) in enumerate(ranked.hits, start=1)}
