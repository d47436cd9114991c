"""The answer without a model: the retrieved passages' sentences that best match the question, cited.

For each of the top hits, every sentence is scored by the question's search terms it contains
(``Segmenter.query_terms``; matched case-insensitively after NFKC folding, the way the index was
built). A term weighs its length in CJK characters (capped at 4: "上海交通大学" also arrives as
its sub-words, so long words already count several times) and 2 for a Latin word or number (about
one Chinese word; one- and two-letter words weigh 1). IDF is left out on purpose: retrieval has
already ranked the passages, and this only picks sentences inside them.

The answer is the best ``max_sentences`` sentences overall that score at least half the best one,
highest first (ties: the better passage, then the earlier sentence), each ending with ``[n]``: n is
its passage's 1-based position among the passages returned, which are exactly the cited ones, in
retrieval order. A sentence longer than 160 characters (transcripts run on without full stops) is
judged in clause groups. Pure string work: about a millisecond for three passages.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.segmenter import normalise  # the same folding as the query terms
from ..types import Hit
from .citations import split_sentences

MIN_SHARE_OF_BEST = 0.5  # a sentence scoring under half the best one is noise, not a second answer
MAX_PIECE_CHARS = 160  # transcripts run on for hundreds of characters without a full stop
LEAD_CHARS = 30  # unmatched context kept before the matching clause of an over-long sentence
LATIN_WEIGHT = 2.0
CJK_CAP = 4
_CJK = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_CHAR = r"[a-z0-9\u00c0-\u024f]"  # what a Latin word is made of; CJK next to it is a boundary
_CLAUSE_MARKS = "，,、：:"
_CLAUSE_END = re.compile(f"[{_CLAUSE_MARKS}]")
_LEAD = re.compile(r"^(?:[-*+]\s+|\d{1,2}[.)、](?!\d)\s*|>\s*)+")
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_QUOTE_END = "”’」』\"'"
_ENDS = "。！？；.!?;"


@dataclass(frozen=True)
class Passage:
    """A hit the answer cites, with the sentences to highlight in it."""

    n: int  # citation number: 1-based position among the passages of the answer
    hit: Hit
    spans: tuple[tuple[int, int], ...]  # sentences of hit.chunk.text that match the question

    def as_dict(self) -> dict:
        c = self.hit.chunk
        return {"n": self.n, "source": c.source, "chunk_id": c.chunk_id, "heading_path": list(c.heading_path),
                "text": c.text, "rank": self.hit.rank, "score": self.hit.score,
                "spans": [list(s) for s in self.spans]}


@dataclass(frozen=True)
class ExtractiveAnswer:
    """Cited sentences, one per line (empty when there were no hits), and the passages they cite."""

    text: str
    passages: tuple[Passage, ...]

    def as_dict(self) -> dict:
        return {"text": self.text, "passages": [p.as_dict() for p in self.passages]}


@dataclass(frozen=True)
class _Candidate:
    score: float
    hit_index: int  # position among the hits considered
    start: int
    end: int
    text: str  # as it will be shown


def extractive_answer(terms: Sequence[str], hits: Sequence[Hit], max_passages: int = 3,
                      max_sentences: int = 3) -> ExtractiveAnswer:
    """Compose a cited answer from the sentences of the top hits that contain the most query terms."""
    top = list(hits[:max_passages])
    if not top or max_sentences < 1:
        return ExtractiveAnswer("", ())
    weights = _weights(terms)
    per_hit = [_candidates(i, h.chunk.text, weights) for i, h in enumerate(top)]
    matched = [[c for c in cands if c.score > 0] for cands in per_hit]
    ranked = _best(c for cands in matched for c in cands)
    chosen = [c for c in ranked if c.score >= MIN_SHARE_OF_BEST * ranked[0].score][:max_sentences] if ranked else []
    if not chosen:  # nothing matches: the best passage still answers better than nothing
        chosen = _first(per_hit[0])
        matched = [chosen if i == 0 else [] for i in range(len(top))]
    used = sorted({c.hit_index for c in chosen})
    number = {i: k + 1 for k, i in enumerate(used)}
    passages = tuple(Passage(number[i], top[i], tuple((c.start, c.end) for c in matched[i])) for i in used)
    text = "\n".join(_cite(c.text, number[c.hit_index]) for c in chosen)
    return ExtractiveAnswer(text, passages)




def _weights(terms: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for term in terms:
        t = normalise(term).strip()
        if t and t not in out:
            cjk = len(_CJK.findall(t))
            out[t] = float(min(cjk, CJK_CAP)) if cjk else (LATIN_WEIGHT if len(t) > 2 or t.isdigit() else 1.0)
    return out


def _matches(text: str, term: str) -> bool:
    """CJK terms match anywhere; Latin words only whole ("data" is not in "database")."""
    if _CJK.search(term):
        return term in text
    return re.search(rf"(?<!{_LATIN_CHAR}){re.escape(term)}(?!{_LATIN_CHAR})", text) is not None


def _score(text: str, weights: dict[str, float]) -> float:
    folded = normalise(text)
    return sum(w for t, w in weights.items() if _matches(folded, t))


def _candidates(index: int, text: str, weights: dict[str, float]) -> list[_Candidate]:
    """Every sentence (or clause group of an over-long one) of a chunk, scored."""
    out = []
    for start, end in split_sentences(text):
        for s, e in _pieces(text, start, end, weights):
            shown = _display(text[s:e])
            if shown:
                score = 0.0 if _is_furniture(text[s:e]) else _score(text[s:e], weights)
                out.append(_Candidate(score, index, s, e, shown))
    return out


def _pieces(text: str, start: int, end: int, weights: dict[str, float]) -> list[tuple[int, int]]:
    """Split a sentence longer than MAX_PIECE_CHARS at clause marks into runs of at most that size.

    A run also ends before the first matching clause when it already holds LEAD_CHARS of unmatched
    lead-in, so the piece that answers starts near its match instead of 150 characters before it.
    """
    if end - start <= MAX_PIECE_CHARS:
        return [(start, end)]
    cuts = [m.end() for m in _CLAUSE_END.finditer(text, start, end) if m.end() < end] + [end]
    pieces, s, has_match, a = [], start, False, start
    for b in cuts:
        match = _score(text[a:b], weights) > 0
        if a > s and (b - s > MAX_PIECE_CHARS or (match and not has_match and a - s >= LEAD_CHARS)):
            pieces.append((s, a))
            s, has_match = a, False
        has_match = has_match or match
        a = b
    pieces.append((s, end))
    return [(x, y) for x, y in pieces if text[x:y].strip()]


def _is_furniture(sentence: str) -> bool:
    """Headings and image lines repeat the question's words without answering it."""
    s = sentence.lstrip()
    return s.startswith(("#", "!["))


def _display(sentence: str) -> str:
    """The sentence as shown: list bullets, quote marks, bold and HTML markup dropped, whitespace folded."""
    s = " ".join(_TAG.sub("", sentence).split())
    s = _LEAD.sub("", s).replace("**", "").replace("__", "")
    return s.strip()


def _best(cands) -> list[_Candidate]:
    """Highest score first; ties to the better passage, then the earlier sentence; no repeats.

    Top hits often overlap (neighbouring chunks share text), so the same sentence can come twice.
    """
    seen: set[str] = set()
    out = []
    for c in sorted(cands, key=lambda c: (-c.score, c.hit_index, c.start)):
        key = normalise(c.text)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _first(cands: list[_Candidate]) -> list[_Candidate]:
    """The first sentence of the top passage that is not a heading or image, else its first one."""
    for c in cands:
        if not _is_furniture(c.text):
            return [c]
    return cands[:1]


def _cite(sentence: str, n: int) -> str:
    """Put ``[n]`` before the sentence's closing punctuation ("做好[1]。", "automated [1].").

    A sentence that ends in a closing quote keeps it whole and takes the marker after it; a clause
    cut from a long sentence loses its trailing comma; one with no end mark gets a full stop in its
    own script.
    """
    body = sentence.rstrip(_ENDS + "…" + _CLAUSE_MARKS)
    end = sentence[len(body):].strip(_CLAUSE_MARKS)
    if not body:
        return f"{sentence}[{n}]"
    if not end:
        if body[-1] in _QUOTE_END:
            return f"{body}[{n}]"
        end = "。" if _CJK.search(body) else "."
    space = "" if not body[-1].isascii() else " "  # CJK text and full-width punctuation take no space
    return f"{body}{space}[{n}]{end}"
