"""Citation markers in a generated answer: find them, drop dangling ones, and check each sentence
against the passages it cites.

Markers. ``[1]``, ``[1][2]`` (two markers), ``[1, 2]`` / ``[1,2]`` / ``[1，2]`` / ``[1、2]``, ranges
``[1-3]`` (expanded to 1, 2, 3; small models write them, and reading them as "1 and 3" would hide
passage 2), full-width ``【1】`` / ``［1］`` and footnote style ``[^1]``. Not markers: markdown links
``[1](url)``, reference or footnote definitions at the start of a line (``[1]: url``), reversed or
huge ranges (``[1-100]``), numbers of four or more digits (years) and ``[0]``.

Support. A small model's usual failure is a fluent claim that its cited passage does not make, so
each sentence is scored by lexical overlap with the union of the passages it cites: the share of
its content units found in them. Units are character bigrams of CJK runs (no segmenter, so no
disagreement between how the answer and the passage were cut) and lower-cased, lightly stemmed
Latin words and numbers (English function words dropped). Runs never cross punctuation; markdown
emphasis and spaces between CJK characters are removed first.

Threshold. ``SUPPORT_THRESHOLD = 0.5``, measured on a labelled set built from the llm-notes corpus
(tests/test_citations.py): 12 passages, 30 supported sentences (quotations and paraphrases) and 30
unsupported ones (claims the passage does not make), 10 of them English, each scored against the
passage it cites. Supported sentences average 0.79, unsupported 0.19. The best accuracy any
threshold reaches is 57/60 = 95%, for every threshold in (0.474, 0.545]; 0.5 sits in that interval.
The three errors are the hard cases: two loose paraphrases flagged ("几亿到几千亿" for "数亿到数千亿",
0.39; an English rewording with no shared words, 0.10) and one sentence that adds an invented clause
to a true one, passed (0.56). Without those and the other harder items (the first 24 + 24) the
separation is complete: unsupported ≤ 0.47 < 0.5 ≤ 0.60 ≤ supported. The proxy catches invented
facts, names, numbers and off-topic claims, not negations or swapped relations that reuse the
passage's words ("数据不决定上限" still scores 0.67 against "数据决定上限").

Not checked (``supported=True``, ``support=1.0``): sentences with fewer than three content units
("是的。", "评估[1]。", a heading), questions (a restated question claims nothing), sentences in
one script cited against passages in the other (an
English answer from Chinese notes: a lexical proxy cannot judge a translation). In a refusal every
sentence counts as supported (its support is still the measured one): it claims nothing.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

SUPPORT_THRESHOLD = 0.5  # see the module docstring for how it was measured
MIN_UNITS = 3  # a sentence with fewer content units is not a claim worth checking
MAX_RANGE = 20  # "[1-3]" expands; a longer span is not a citation

# -- markers -----------------------------------------------------------------------------------

_NUMS = r"\d{1,3}(?:\s*(?:[,，、;；]|[-–—~～])\s*\d{1,3})*"
_MARKER = re.compile(
    rf"(?P<ascii>\[\^?(?P<a>{_NUMS})\])(?!\()|【\s*(?P<b>{_NUMS})\s*】|［\s*(?P<c>{_NUMS})\s*］"
)
_PART = re.compile(r"(\d+)(?:\s*[-–—~～]\s*(\d+))?")


def find_markers(answer: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """Every citation marker as ``(start, end, numbers)``; numbers in written order, distinct."""
    out = []
    for m in _MARKER.finditer(answer):
        if m.group("ascii") and _is_definition(answer, m):
            continue
        numbers = _numbers(m.group("a") or m.group("b") or m.group("c"))
        if numbers:
            out.append((m.start(), m.end(), numbers))
    return out


def strip_markers(text: str) -> str:
    """``text`` without its ``[n]`` citation markers (and the space before each)."""
    for start, end, _nums in reversed(find_markers(text)):
        text = text[:start].rstrip() + text[end:]
    return text


def _is_definition(text: str, m: re.Match) -> bool:
    """``[1]: https://…`` or ``[^1]: …`` at the start of a line defines a reference; it cites nothing."""
    line_start = text.rfind("\n", 0, m.start()) + 1
    return not text[line_start:m.start()].strip() and text[m.end():m.end() + 1] == ":"


def _numbers(body: str) -> tuple[int, ...]:
    """``"1, 3-5"`` → (1, 3, 4, 5); () if any part is not a plausible citation number."""
    nums: list[int] = []
    for m in _PART.finditer(body):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if lo < 1 or hi < lo or hi - lo > MAX_RANGE:
            return ()
        nums.extend(range(lo, hi + 1))
    return tuple(dict.fromkeys(nums))


def clean_invalid(answer: str, valid: Collection[int]) -> str:
    """``answer`` without citations to passages not in ``valid``, so no reader meets a dangling one.

    A marker that cites only invalid numbers is removed with the spaces before it; a multi-number
    marker keeps its valid numbers (rewritten as ``[1, 2]`` in its own bracket style).
    """
    valid = set(valid)
    pieces, pos = [], 0
    for start, end, numbers in find_markers(answer):
        keep = [n for n in numbers if n in valid]
        if len(keep) == len(numbers):
            continue
        cut = start
        if not keep:
            while cut > pos and answer[cut - 1] in " \t":
                cut -= 1
        pieces.append(answer[pos:cut])
        if keep:
            pieces.append(_rewrite(answer[start:end], keep))
        pos = end
    pieces.append(answer[pos:])
    return "".join(pieces)


def _rewrite(marker: str, numbers: list[int]) -> str:
    opening = "[^" if marker.startswith("[^") else marker[0]
    sep = "，" if marker[0] in "【［" else ", "
    return f"{opening}{sep.join(map(str, numbers))}{marker[-1]}"


# -- sentences ---------------------------------------------------------------------------------

_CJK_END = "。！？；"
_CLOSERS = "\"'”’」』）)》】]"  # closing quotes/brackets that belong to the sentence they end
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LIST_NUMBER = re.compile(r"[ \t]*\d{1,2}")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans in ``text`` (whitespace trimmed), each keeping the markers that follow its end.

    Ends: 。！？； and newlines; English . ! ? when followed by whitespace or the end. Closing quotes and
    citation markers right after the end mark (``……。[1]``, ``done. [2]``) stay with the sentence.
    """
    markers = {s: e for s, e, _ in find_markers(text)}
    spans, start, i, n = [], 0, 0, len(text)
    while i < n:
        if i in markers:  # a marker never ends a sentence, and its digits are not punctuation
            i = markers[i]
            continue
        ch = text[i]
        end = None
        if ch == "\n":
            end = i
        elif ch in _CJK_END or (ch in ".!?" and (i + 1 == n or text[i + 1].isspace()) and not _list_number(text, i)):
            end = _absorb(text, i + 1, markers)
        if end is None:
            i += 1
            continue
        _add(spans, text, start, end)
        start = i = max(end, i + 1)
    _add(spans, text, start, n)
    return spans


def _list_number(text: str, i: int) -> bool:
    """The "." at ``i`` closes a list number ("1. 评估很难"), not a sentence."""
    line_start = text.rfind("\n", 0, i) + 1
    return text[i] == "." and _LIST_NUMBER.fullmatch(text[line_start:i]) is not None


def _absorb(text: str, j: int, markers: dict[int, int]) -> int:
    """Extend a sentence end over repeated end marks, closing quotes and trailing markers."""
    n = len(text)
    while j < n and (text[j] in _CJK_END or text[j] in ".!?…" or text[j] in _CLOSERS):
        j += 1
    while True:
        k = j
        while k < n and text[k] in " \t":
            k += 1
        if k in markers:
            j = markers[k]
        else:
            return j


def _add(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


# -- support -----------------------------------------------------------------------------------

_CJK_CHARS = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_SCRIPT_RUN = re.compile(f"[{_CJK_CHARS}]+|[^{_CJK_CHARS}]+")
_WORDS = re.compile(r"[^\W_]+")
_LATIN = re.compile(r"[^\W\d_]+|\d+")
_CJK_GAP = re.compile(f"(?<=[{_CJK_CHARS}])\\s+(?=[{_CJK_CHARS}])")
_EMPHASIS = re.compile(r"[*`~]")
_EN_STOP = frozenset((  # English function words: they carry no claim
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from",
    "as", "into", "than", "then", "so", "that", "this", "these", "those", "is", "are", "was", "were", "be",
    "been", "being", "it", "its", "it's", "they", "them", "their", "there", "here", "we", "our", "you",
    "your", "he", "she", "his", "her", "i", "me", "my", "do", "does", "did", "has", "have", "had", "not",
    "no", "can", "could", "will", "would", "shall", "should", "may", "might", "must", "also", "which",
    "who", "whom", "what", "when", "where", "why", "how", "about", "over", "under", "more", "most", "such",
    "only", "very", "just",
))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return _CJK_GAP.sub("", _EMPHASIS.sub("", text))


def _stem(word: str) -> str:
    """Crude suffix stripping so "models"/"model" and "trained"/"train" meet; never below 3 letters."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _units(text: str) -> tuple[list[str], list[str], int]:
    """(CJK units, Latin units, CJK character count) of ``text`` with markers removed."""
    text = _normalise(_strip_markers(text))
    cjk: list[str] = []
    latin: list[str] = []
    chars = 0
    for word in _WORDS.findall(text):
        for part in _SCRIPT_RUN.finditer(word):
            run = part.group()
            if _CJK_RUN.fullmatch(run):
                chars += len(run)
                cjk.extend([run] if len(run) == 1 else [run[k:k + 2] for k in range(len(run) - 1)])
            else:
                latin.extend(_stem(w) for w in _LATIN.findall(run))
    return cjk, latin, chars


def _strip_markers(text: str) -> str:
    pieces, pos = [], 0
    for start, end, _ in find_markers(text):
        pieces.append(text[pos:start])
        pieces.append("|")  # a marker ends a run: no bigram across it
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


@dataclass(frozen=True)
class _Evidence:
    """The unit sets of one or more passages, for membership tests."""

    cjk: frozenset[str]
    latin: frozenset[str]
    cjk_chars: int
    words: int

    def __or__(self, other: _Evidence) -> _Evidence:
        return _Evidence(self.cjk | other.cjk, self.latin | other.latin,
                         self.cjk_chars + other.cjk_chars, self.words + other.words)


_EMPTY = _Evidence(frozenset(), frozenset(), 0, 0)


@lru_cache(maxsize=256)
def _evidence(passage: str) -> _Evidence:
    cjk, latin, chars = _units(passage)
    singles = {c for u in cjk for c in u}  # a one-character run in the answer matches any character
    return _Evidence(frozenset(cjk) | frozenset(singles), frozenset(latin), chars, _alphabetic(latin))


def _claim_units(sentence: str) -> tuple[list[str], int, int]:
    """A sentence's distinct content units, its CJK character count and its Latin word count."""
    cjk, latin, chars = _units(sentence)
    content = [w for w in latin if w not in _EN_STOP]
    return list(dict.fromkeys(cjk + content)), chars, _alphabetic(latin)


def _alphabetic(words: list[str]) -> int:
    """Latin words that are not numbers: digits belong to no language."""
    return sum(1 for w in words if not w.isdigit())


def _cjk_share(chars: int, words: int) -> float:
    """How Chinese a text is, 0–1, counting a Latin word as about two characters of content."""
    return chars / (chars + 2 * words) if chars + words else 0.0


def _cross_language(s_chars: int, s_words: int, ev: _Evidence) -> bool:
    """The sentence is in one script and its passages in the other: overlap would say nothing.

    Chinese notes are full of English terms (GPT, Transformer), so a passage counts as Chinese only
    when more than 80% of it is; an English passage is one with (almost) no Chinese at all.
    """
    s, p = _cjk_share(s_chars, s_words), _cjk_share(ev.cjk_chars, ev.words)
    return (s < 0.2 and p > 0.8) or (s >= 0.5 and ev.cjk_chars + ev.words > 0 and p < 0.05)


def _support_score(sentence: str, evidence: _Evidence) -> float:
    """Share of the sentence's content units that occur in ``evidence`` (1.0 when it has none)."""
    units, _, _ = _claim_units(sentence)
    if not units:
        return 1.0
    found = sum(1 for u in units if u in evidence.cjk or u in evidence.latin)
    return found / len(units)


def support(sentence: str, passages: Collection[str]) -> float:
    """Support of ``sentence`` by the union of ``passages`` (the score compared with the threshold)."""
    ev = _EMPTY
    for p in passages:
        ev = ev | _evidence(p)
    return _support_score(sentence, ev)


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceCheck:
    text: str
    start: int  # character span of the sentence in the answer
    end: int
    cited: tuple[int, ...]  # valid passage numbers it relies on (its own markers, or inherited)
    support: float  # share of its content units found in those passages (all passages if none)
    supported: bool

    def as_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "cited": list(self.cited),
                "support": round(self.support, 4), "supported": self.supported}


@dataclass(frozen=True)
class CitationReport:
    cited: tuple[int, ...]  # valid numbers in order of first use
    invalid: tuple[int, ...]  # numbers that refer to no supplied passage
    sentences: tuple[SentenceCheck, ...]
    uncited: bool  # the answer has no valid citation at all

    @property
    def unsupported(self) -> tuple[SentenceCheck, ...]:
        return tuple(s for s in self.sentences if not s.supported)

    @property
    def supported_share(self) -> float:
        """Share of sentences that are supported (unchecked short ones count as supported); 1.0 if none."""
        if not self.sentences:
            return 1.0
        return sum(s.supported for s in self.sentences) / len(self.sentences)

    def as_dict(self) -> dict:
        return {"cited": list(self.cited), "invalid": list(self.invalid), "uncited": self.uncited,
                "supported_share": round(self.supported_share, 4),
                "unsupported": [s.as_dict() for s in self.unsupported],
                "sentences": [s.as_dict() for s in self.sentences]}


def check_citations(answer: str, passages: Mapping[int, str], refusal: bool = False) -> CitationReport:
    """Which passages the answer cites, which numbers dangle, and which sentences their passages back.

    ``passages`` maps citation number → passage text. ``refusal``: the answer says the knowledge base
    does not hold the answer, so there is nothing to support and nothing needs a citation.
    """
    markers = find_markers(answer)
    used = list(dict.fromkeys(n for _, _, nums in markers for n in nums))
    cited = tuple(n for n in used if n in passages)
    invalid = tuple(n for n in used if n not in passages)
    spans = split_sentences(answer)
    own = [_own_citations(markers, s, e, passages) for s, e in spans]
    relied = _inherit(answer, spans, own)
    checks = tuple(_check(answer[s:e], s, e, nums, passages, refusal) for (s, e), nums in zip(spans, relied))
    return CitationReport(cited, invalid, checks, uncited=not cited and not refusal)


def _own_citations(markers, start: int, end: int, passages: Mapping[int, str]) -> tuple[int, ...]:
    nums = (n for s, e, ns in markers if start <= s and e <= end for n in ns)
    return tuple(dict.fromkeys(n for n in nums if n in passages))


def _inherit(answer: str, spans: list[tuple[int, int]], own: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Give each unmarked sentence the markers of the next marked sentence in its paragraph.

    Models (and people) often cite once at the end of a run of sentences drawn from one passage —
    "A。B。C[1]。" — and a citation conventionally follows the claims it covers, so it reaches back,
    never forward. A blank line ends the reach: a new paragraph is a new line of argument. Trailing
    unmarked sentences stay uncited and are checked against all the passages.
    """
    out = list(own)
    carry: tuple[int, ...] = ()
    for i in range(len(spans) - 1, -1, -1):
        if i + 1 < len(spans) and _PARAGRAPH.search(answer, spans[i][1], spans[i + 1][0]):
            carry = ()
        if own[i]:
            carry = own[i]
        else:
            out[i] = carry
    return out


def _check(text: str, start: int, end: int, cited: tuple[int, ...], passages: Mapping[int, str],
           refusal: bool) -> SentenceCheck:
    units, chars, words = _claim_units(text)
    if len(units) < MIN_UNITS or _is_heading(text) or _is_question(text):
        return SentenceCheck(text, start, end, cited, 1.0, True)
    ev = _EMPTY
    for n in cited or passages:
        ev = ev | _evidence(passages[n])
    if _cross_language(chars, words, ev):
        return SentenceCheck(text, start, end, cited, 1.0, True)
    score = _support_score(text, ev)
    return SentenceCheck(text, start, end, cited, score, refusal or score >= SUPPORT_THRESHOLD)


def _is_heading(text: str) -> bool:
    return text.lstrip().startswith("#")


def _is_question(text: str) -> bool:
    """A question (models often restate the user's before answering) claims nothing."""
    return _strip_markers(text).rstrip().rstrip("|").rstrip().endswith(("?", "？"))


def novel_support(answer: str, question: str, passages: Collection[str]) -> float | None:
    """Share of what the answer adds to the question that the passages contain (0–1).

    A small model asked about something the passages do not hold tends to restate the question and
    append an invented fact ("DeepSeek-V3 的总参数量是 1000 亿"). Units the answer shares with the
    question say nothing about grounding, so they are left out; the rest (the fact) must come from
    the passages. ``None`` when the answer and passages are in different scripts (not judgeable);
    0.0 when the answer adds nothing to the question.
    """
    ev = _EMPTY
    for p in passages:
        ev = ev | _evidence(p)
    units, chars, words = _claim_units(answer)
    if _cross_language(chars, words, ev):
        return None
    asked = set(_claim_units(question)[0])
    asked |= {c for u in asked for c in u if _CJK_RUN.fullmatch(u)}
    new = [u for u in units if u not in asked]
    if not new:
        return 0.0
    return sum(1 for u in new if u in ev.cjk or u in ev.latin) / len(new)
