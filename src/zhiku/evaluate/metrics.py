"""Retrieval metrics as pure functions of a boolean relevance list (rank order)."""
from __future__ import annotations

import math
from typing import Sequence


def hit_at(relevant: Sequence[bool], k: int) -> float:
    """1.0 if any of the first k results is relevant."""
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool]) -> float:
    """1 / rank of the first relevant result (0 if none)."""
    for i, rel in enumerate(relevant, start=1):
        if rel:
            return 1.0 / i
    return 0.0


def ndcg_at(relevant: Sequence[bool], k: int, n_relevant: int | None = None) -> float:
    """Binary-gain nDCG@k. ``n_relevant`` is how many relevant items exist (defaults to those seen)."""
    dcg = sum(1.0 / math.log2(i + 2) for i, rel in enumerate(relevant[:k]) if rel)
    ideal_n = min(k, n_relevant if n_relevant is not None else sum(bool(r) for r in relevant))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(ideal_n))
    return dcg / idcg if idcg else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if not s:
        return 0.0
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def spread(values: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of a list of seconds (or any figures), rounded for reports."""
    return {"p50": round(percentile(values, 50), 4), "p95": round(percentile(values, 95), 4),
            "mean": round(mean(values), 4), "n": len(values)}


def mean_of_known(values: Sequence[float | None]) -> float | None:
    """Mean over the values that apply (not None); None when none apply."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
