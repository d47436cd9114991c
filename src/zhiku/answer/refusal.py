"""When to say "the knowledge base does not say": before generation from evidence strength, after it
from the model's own reading.

Evidence strength is the IDF-weighted share of the question's search terms that appear in the best
single retrieved chunk (0–1). Rare terms (names, numbers, jargon) carry the question; when none of
the chunks holds them, the knowledge base almost surely does not answer it and asking a small model
only invites a guess. The threshold ``answer.min_evidence`` is calibrated in bench/answer_quality.py.
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

from ..backends.segmenter import normalise
from ..types import Hit

# Phrases a model uses to decline. Checked on the start of the answer, so a sentence that merely
# mentions "not mentioned" deep inside a real answer does not count.
_DECLINE = re.compile(
    r"(资料中?(并)?未(提及|提到|说明|涉及)|资料中?(并)?没有(提及|提到|说明|涉及|相关)|未提及|无法(根据|从)资料|"
    r"(knowledge base|passages?|documents?|context) (does|do) not (say|mention|contain|provide)|"
    r"not (mentioned|stated|provided) in the (passages?|knowledge base|documents?)|"
    r"^i (don't|do not) know)",
    re.IGNORECASE,
)


def evidence_strength(terms: Sequence[str], hits: Sequence[Hit], dfs: Mapping[str, int], n_chunks: int,
                      top: int = 5) -> float:
    """IDF-weighted share of ``terms`` found in the best of the first ``top`` hits."""
    terms = [t for t in dict.fromkeys(terms) if t.strip()]
    if not terms or not hits:
        return 0.0
    n = max(n_chunks, 1)
    weights = {t: math.log(1 + (n - dfs.get(t, 0) + 0.5) / (dfs.get(t, 0) + 0.5)) for t in terms}
    total = sum(weights.values()) or 1.0
    best = 0.0
    for hit in hits[:top]:
        text = normalise(hit.chunk.embedding_text())
        found = sum(w for t, w in weights.items() if t in text)
        best = max(best, found / total)
    return best


def is_decline(answer: str) -> bool:
    """The model said the passages do not hold the answer."""
    head = answer.strip()[:80]
    return bool(_DECLINE.search(head))
