"""Where the query's terms occur in a hit's text (case-insensitive, NFKC-aware for ASCII)."""
from __future__ import annotations

import re
from typing import Sequence


def term_spans(text: str, terms: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Merged, sorted (start, end) spans of every occurrence of any term."""
    spans = []
    lowered = text.lower()
    for term in sorted(set(terms), key=len, reverse=True):
        if not term.strip():
            continue
        for m in re.finditer(re.escape(term.lower()), lowered):
            spans.append((m.start(), m.end()))
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)
