"""Compare two runs case by case: metric deltas with paired bootstrap intervals, and flipped cases."""
from __future__ import annotations

import numpy as np

from .case_metrics import LOWER_IS_BETTER
from .runner import EvalRun
from .snapshot import differences

FLIP_METRICS = ("accuracy", "refusal", "citation_support", "hit@5")
RESAMPLES = 2000


def paired_bootstrap(a: list[float], b: list[float], resamples: int = RESAMPLES, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``b - a`` over paired cases and a percentile bootstrap interval for it.

    Cases are resampled with replacement (the same case index for both runs, which is what makes
    it paired): the interval reflects how much the difference depends on which questions happen
    to be in the set. Returns (delta, low, high).
    """
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    if not a:
        return 0.0, 0.0, 0.0
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(d.mean()), float(low), float(high)


def compare(a: EvalRun, b: EvalRun, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The comparison dict that reports and ``zhiku eval compare --json`` show."""
    by_id_a = {c["id"]: c for c in a.cases if not c.get("error")}
    by_id_b = {c["id"]: c for c in b.cases if not c.get("error")}
    common = [cid for cid in by_id_a if cid in by_id_b]
    names = [n for n in b.metrics.get("metrics", {}) if n in a.metrics.get("metrics", {})]
    rows = []
    for name in names:
        pairs = [(by_id_a[c]["metrics"].get(name), by_id_b[c]["metrics"].get(name)) for c in common]
        pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
        if not pairs:
            continue
        xa, xb = [p[0] for p in pairs], [p[1] for p in pairs]
        delta, low, high = paired_bootstrap(xa, xb, resamples, seed)
        rows.append({"name": name, "a": round(sum(xa) / len(xa), 4), "b": round(sum(xb) / len(xb), 4),
                     "delta": round(delta, 4), "ci_low": round(low, 4), "ci_high": round(high, 4), "n": len(pairs),
                     "higher_is_better": name not in LOWER_IS_BETTER, "significant": low > 0 or high < 0})
    fixed, broken = _flips(common, by_id_a, by_id_b)
    return {"a": a.run_id, "b": b.run_id, "metrics": rows, "fixed": fixed, "broken": broken,
            "warnings": _warnings(a, b, common), "snapshot_differences": differences(a.snapshot, b.snapshot)}


def _flips(common: list[str], by_a: dict, by_b: dict) -> tuple[list[dict], list[dict]]:
    fixed, broken = [], []
    for cid in common:
        ca, cb = by_a[cid], by_b[cid]
        for name in FLIP_METRICS:
            va, vb = ca["metrics"].get(name), cb["metrics"].get(name)
            if va is None or vb is None or va == vb:
                continue
            better = (vb > va) != (name in LOWER_IS_BETTER)
            item = {"id": cid, "question": cb["question"], "metric": name, "a": va, "b": vb,
                    "answer_a": ca.get("answer"), "answer_b": cb.get("answer"),
                    "rank_a": ca.get("first_relevant_rank"), "rank_b": cb.get("first_relevant_rank")}
            (fixed if better else broken).append(item)
    return fixed, broken


def _warnings(a: EvalRun, b: EvalRun, common: list[str]) -> list[str]:
    out = []
    sa, sb = a.snapshot.get("dataset", {}), b.snapshot.get("dataset", {})
    if sa.get("sha256") != sb.get("sha256"):
        out.append("the runs used different question sets (dataset hashes differ): only shared case ids are paired")
    ka, kb = a.snapshot.get("kb", {}), b.snapshot.get("kb", {})
    if ka.get("content_sha256") != kb.get("content_sha256"):
        out.append("the knowledge base content or chunking differs between the runs")
    only = len(a.cases) + len(b.cases) - 2 * len(common)
    if only:
        out.append(f"{only} cases are in only one run or failed in one: they are left out of the pairing")
    if a.metrics.get("retrieval_only") != b.metrics.get("retrieval_only"):
        out.append("one run is retrieval-only: answer metrics are compared only where both have them")
    return out
