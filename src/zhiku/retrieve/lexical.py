"""Choosing the keyword query's terms under a work budget.

SQLite FTS5 scores every posting of every OR-ed term, so a query containing a term that
occurs in half of 100k chunks costs ~100 ms. Such terms carry little BM25 weight anyway
(idf = ln(1 + (N - df + 0.5) / (df + 0.5)) is ~0.7 at df = N/2 versus ~9 for a rare term),
so terms are taken rarest first until their document frequencies add up to
``MAX_POSTINGS``; the rest are dropped and reported in the search trace. Small knowledge
bases (total postings under the budget) are never pruned. The budget was chosen with
bench/search_latency.py (docs/retrieval.md).
"""
from __future__ import annotations

from typing import Mapping, Sequence

MAX_POSTINGS = 6_000


def select_terms(terms: Sequence[str], df: Mapping[str, int],
                 budget: int = MAX_POSTINGS) -> tuple[list[str], list[str]]:
    """Split query terms into (kept, dropped). Terms that occur nowhere are dropped (they match nothing)."""
    present = [t for t in terms if df.get(t, 0) > 0]
    kept, used = set(), 0
    for term in sorted(present, key=lambda t: (df[t], terms.index(t))):
        if kept and used + df[term] > budget:
            break
        kept.add(term)
        used += df[term]
    return [t for t in terms if t in kept], [t for t in present if t not in kept]
