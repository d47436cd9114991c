"""Shared helpers for the benchmarks (not part of the package)."""
from __future__ import annotations

import os
import resource
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ZHIKU_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus" / "llm-notes"
DEV_SET = SHARED / "eval" / "llm-notes-dev.jsonl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values, q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    i = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[i]
