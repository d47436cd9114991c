"""Optional reranking of the top hits before packing (``answer.rerank``; off by default).

- ``llm``: the configured generator reads each of the top ``answer.rerank_top`` passages with the
  question and answers yes/no; "yes" passages move ahead of "no" ones, retrieval order kept within
  each group. On a 2-core CPU this costs one prompt per passage (see docs/answers.md for the
  measurement that keeps it off).
- ``http``: a ``/rerank`` endpoint (vLLM, TEI, Xinference, llama.cpp server) scores the passages.
Hits below the reranked top keep their order after them. Ranks are renumbered; traces are kept.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Protocol, Sequence

from ..backends.generator import Generator, Sampling
from ..types import Hit
from .prompts import language_of, template

_YES = re.compile(r"^\s*(是|对|有|包含|yes|y\b)", re.IGNORECASE)


class Scorer(Protocol):
    def rerank(self, query: str, documents: list[str]) -> list[float]: ...


class LlmJudge:
    """Scores passages 1.0 (the model says the passage answers the question) or 0.0."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        tpl = template("rerank", language_of(query))
        sampling = Sampling(temperature=0.0, max_tokens=2)
        return [1.0 if _YES.match(self.generator.complete(tpl.messages(passage=d, question=query), sampling))
                else 0.0 for d in documents]


def rerank(query: str, hits: Sequence[Hit], scorer: Scorer, top: int) -> tuple[Hit, ...]:
    head, tail = list(hits[:top]), list(hits[top:])
    if not head:
        return tuple(hits)
    scores = scorer.rerank(query, [h.chunk.text for h in head])
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))  # stable: ties keep retrieval order
    ranked = [head[i] for i in order] + tail
    return tuple(dataclasses.replace(h, rank=r) for r, h in enumerate(ranked, 1))
