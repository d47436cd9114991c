"""Optional model-as-judge: pointwise scores against a reference, position-checked pairwise verdicts,
and how far the judge agrees with the keyword metric.

Pointwise (``Judge.score``). One prompt (``judge.<system|user>.<lang>.txt``) shows the question, a
reference built from the case (``reference_for``), the passages the answer was given and the
answer, and asks for two labelled lines with a three-level verdict: correctness against the
reference and faithfulness to the passages. yes / partial / no map to 1.0 / 0.5 / 0.0; a 1–5 digit
(what a model trained on other rubrics may write instead) maps to (d - 1) / 4. Three levels, not
ten: a 0.5B–1.5B model cannot use a fine scale consistently. Temperature is always 0.

Length bias. Judges prefer longer answers, so (a) the rubric says length earns nothing and
extra content is not a merit, and (b) what the judge sees is normalised: citation markers removed
(``[1]`` looks like rigour), whitespace folded, and the answer capped at ``ANSWER_CHARS``
characters with a visible note that the rest was cut, so a rambling answer cannot win by volume.
The residual bias is measured, not assumed away: ``length_correlation(scores, lengths)``.
Passages are capped as well (``PASSAGE_CHARS`` each, ``PASSAGES_CHARS`` in all) to keep the prompt
short for a small local model.

Position bias (``Judge.pairwise``). The pair is asked twice, A first then B first; each verdict is
mapped back to A/B and a win counts only when both orders name the same answer. The prompt forces
a choice (1 or 2, no tie option: with one, the 1.5B answered "same" for 6 of 8 orderings), so a
real tie shows up as "inconsistent", which counts for neither, like a position flip (each order
preferring its first answer) or an unreadable reply. "tie" is returned only when both orders say
"same" anyway.

Binary correctness (``JudgeScore.correct``, used for agreement with the keyword metric) is
correctness ≥ ``CORRECT_AT`` = 0.75: only "yes" (or 4–5 of 5). Measured on 8 answers to dev-set
questions with the 1.5B, "partial" was given to a wrong answer, never to a right one.

Unreadable judge output never raises: the score is None and ``parsed`` is False.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from ..answer.citations import strip_markers
from ..answer.prompts import REFUSAL, language_of, template
from ..backends.generator import Generator, Sampling

ANSWER_CHARS = 400  # what the judge sees of an answer (zhiku answers are one or two sentences)
PASSAGE_CHARS = 400  # of each passage
PASSAGES_CHARS = 1200  # of all passages together
CORRECT_AT = 0.75  # correctness counted as "correct" for agreement: only "yes" (see the module docstring)

JUDGE_SAMPLING = Sampling(temperature=0.0, max_tokens=32)
PAIR_SAMPLING = Sampling(temperature=0.0, max_tokens=8)

_CUT_NOTE = {"zh": "……（以下省略，超出部分不计分）", "en": " ... (cut here; the rest is not graded)"}
_NO_PASSAGES = {"zh": "（无）", "en": "(none)"}

# -- verdict words ---------------------------------------------------------------------------------
# A verdict opens the value ("部分正确", "no, it says data"); a sentence that merely contains 不 or 是
# is not one. Negatives and "partial" are tried before "yes": 不正确 / incorrect / 部分正确.
_LEAD = r"^(?:回答|答案|the answer is\s+|it is\s+)?"
_LEVELS: tuple[tuple[float, re.Pattern], ...] = (
    (0.5, re.compile(_LEAD + r"(部分|一部分|partial|partly|somewhat)", re.I)),
    (0.0, re.compile(_LEAD + r"(否|不|错|无|没有|no\b|not\b|incorrect|wrong|unsupported|false)", re.I)),
    (1.0, re.compile(_LEAD + r"(?:完全|基本)?(是|对|正确|有据|忠实|yes|correct|supported|true|faithful)", re.I)),
)
_DIGIT = re.compile(r"(?<![\d.])([1-5])(?:\s*/\s*5|\s*分)?(?![\d.])")
_LABEL = re.compile(r"(?P<c>正确性?|准确性?|correct(?:ness)?|accura(?:te|cy))|"
                    r"(?P<f>忠实度?|有据|依据|faithful(?:ness)?|support(?:ed)?|grounded(?:ness)?)", re.I)
_SEP = re.compile(r"\s*[:：=]\s*")
_DECOR = re.compile(r"[*#`>\"'“”「」]")


@dataclass(frozen=True)
class JudgeScore:
    """One pointwise judgement. A score is None when the judge's reply did not say it."""

    correctness: float | None  # 1.0 agrees with the reference, 0.5 partly, 0.0 not
    faithfulness: float | None  # 1.0 every claim is in the passages; None also when no passages were given
    raw: str
    parsed: bool  # every score that was asked for was read from the reply

    @property
    def correct(self) -> bool | None:
        """Binary correctness for agreement with the keyword metric ("partial" does not count)."""
        return None if self.correctness is None else self.correctness >= CORRECT_AT

    def as_dict(self) -> dict:
        return {"correctness": self.correctness, "faithfulness": self.faithfulness, "raw": self.raw,
                "parsed": self.parsed}


@dataclass(frozen=True)
class PairVerdict:
    """A pairwise judgement asked in both orders. ``first``/``second`` are already mapped back to a/b."""

    winner: str  # "a" | "b" | "tie" | "inconsistent"
    first: str | None  # verdict with answer a shown first: "a", "b", "tie" or None (unreadable)
    second: str | None  # verdict with answer b shown first, mapped back to a/b
    raw_first: str
    raw_second: str

    @property
    def consistent(self) -> bool:
        return self.winner != "inconsistent"

    def as_dict(self) -> dict:
        return {"winner": self.winner, "first": self.first, "second": self.second,
                "raw_first": self.raw_first, "raw_second": self.raw_second}


class Judge:
    """Scores answers with ``generator`` (a local model or an endpoint), always at temperature 0."""

    def __init__(self, generator: Generator, sampling: Sampling | None = None) -> None:
        self.generator = generator
        # the caller's seed / top_k / top_p are kept; temperature is always 0 and the reply is short
        self.sampling = replace(sampling or JUDGE_SAMPLING, temperature=0.0, max_tokens=JUDGE_SAMPLING.max_tokens)
        self.pair_sampling = replace(self.sampling, max_tokens=PAIR_SAMPLING.max_tokens)

    def score(self, question: str, answer: str, reference: str, passages: Sequence[str] = ()) -> JudgeScore:
        lang = language_of(question)
        shown = [p for p in (normalise(t, PASSAGE_CHARS, lang) for t in passages) if p]
        messages = template("judge", lang).messages(
            question=question.strip(), reference=reference.strip(), answer=normalise(answer, ANSWER_CHARS, lang),
            passages=_join_passages(shown, lang))
        raw = self.generator.complete(messages, self.sampling)
        correctness, faithfulness = parse_scores(raw)
        if not shown:
            faithfulness = None  # nothing to be faithful to: whatever the model said is noise
        parsed = correctness is not None and (faithfulness is not None or not shown)
        return JudgeScore(correctness, faithfulness, raw, parsed)

    def pairwise(self, question: str, answer_a: str, answer_b: str, reference: str) -> PairVerdict:
        lang = language_of(question)
        a, b = normalise(answer_a, ANSWER_CHARS, lang), normalise(answer_b, ANSWER_CHARS, lang)
        raw1 = self._pair(lang, question, reference, a, b)
        raw2 = self._pair(lang, question, reference, b, a)
        first = {1: "a", 2: "b", 0: "tie"}.get(parse_choice(raw1))  # type: ignore[arg-type]
        second = {1: "b", 2: "a", 0: "tie"}.get(parse_choice(raw2))  # type: ignore[arg-type]
        winner = first if first is not None and first == second else "inconsistent"
        return PairVerdict(winner, first, second, raw1, raw2)

    def judge_case(self, case: Any, record: Mapping) -> dict:
        """``score`` for one run record (docs/evaluation-format.md): the reference from the case, the answer,
        and as passages the chunks it cited (the top three hits when it cited none)."""
        passages = [c["text"] for c in record.get("citations") or () if c.get("text")]
        passages = passages or [h["text"] for h in (record.get("hits") or ())[:3] if h.get("text")]
        return self.score(str(record.get("question") or case.question), str(record.get("answer") or ""),
                          reference_for(case), passages).as_dict()

    def _pair(self, lang: str, question: str, reference: str, first: str, second: str) -> str:
        messages = template("judge_pair", lang).messages(question=question.strip(), reference=reference.strip(),
                                                         first=first, second=second)
        return self.generator.complete(messages, self.pair_sampling)


# -- what the judge sees ---------------------------------------------------------------------------

def normalise(text: str, cap: int, lang: str = "zh") -> str:
    """Citation markers removed, whitespace folded, at most ``cap`` characters (then a note saying so)."""
    text = " ".join(strip_markers(text).split())
    if len(text) <= cap:
        return text
    return text[:cap].rstrip() + _CUT_NOTE[lang]


def _join_passages(passages: list[str], lang: str) -> str:
    out, used = [], 0
    for n, p in enumerate(passages, 1):
        if used >= PASSAGES_CHARS:
            break
        p = p[:PASSAGES_CHARS - used]
        used += len(p)
        out.append(f"[{n}] {p}")
    return "\n".join(out) or _NO_PASSAGES[lang]


def reference_for(case: Any) -> str:
    """The reference the judge compares against: ``reference_answer`` when the case has one, else the
    answer keywords ("评估 或 数据" — every word of one alternative is the point) and the evidence passages.

    ``case`` is a ``dataset.Case`` or a raw dataset line (dict). An unanswerable case's reference is
    the refusal: the right answer says the knowledge base does not hold it.
    """
    get = case.get if isinstance(case, Mapping) else (lambda k, d=None: getattr(case, k, d))
    lang = language_of(str(get("question", "")))
    if not get("answerable", True):
        return REFUSAL[lang]
    given = get("reference_answer")
    if isinstance(given, str) and given.strip():
        return given.strip()
    alts = [[str(k) for k in alt] for alt in get("answer_keywords", ()) or () if alt]
    sep, alt_sep = ("、", " 或 ") if lang == "zh" else (", ", " or ")
    point = alt_sep.join(sep.join(alt) for alt in alts)
    texts = [e["text"] if isinstance(e, Mapping) else e.text for e in get("evidence", ()) or ()]
    quote = " / ".join(" ".join(str(t).split()) for t in texts if str(t).strip())
    if point and quote:
        return f"{point}（原文：{quote}）" if lang == "zh" else f"{point} (source: {quote})"
    return point or quote


# -- reading the reply -----------------------------------------------------------------------------

def parse_scores(raw: str) -> tuple[float | None, float | None]:
    """(correctness, faithfulness) from a judge reply; None for each one that cannot be read.

    Labelled verdicts are read first, one a line or both on one line ("正确：是", "Correct: partial",
    "**忠实度**: 4/5", "正确：是 忠实：否", a label alone with its verdict on the next line); a reply with
    no label but one short verdict ("是", "4", "Correct") is taken as correctness only.
    """
    text = _DECOR.sub("", raw or "").strip()
    found: dict[str, float | None] = {}
    labels = [m for m in _LABEL.finditer(text) if _SEP.match(text, m.end())]
    for i, m in enumerate(labels):
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        value = text[_SEP.match(text, m.end()).end():end].strip()  # type: ignore[union-attr]
        key = "c" if m.group("c") else "f"
        if key not in found or found[key] is None:
            found[key] = _level(value.splitlines()[0] if value else "")
    if not labels:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) == 1:
            found["c"] = _level(lines[0], bare=True)
    return found.get("c"), found.get("f")


def _level(text: str, bare: bool = False) -> float | None:
    text = text.strip()
    if not text or (bare and len(text) > 12):  # a bare verdict is a word, not an explanation
        return None
    head = re.split(r"[，,。.;；(（)）]", text.lstrip("（(【[ "), maxsplit=1)[0].strip()
    d = _DIGIT.match(head)
    if d:
        return (int(d.group(1)) - 1) / 4
    if re.search(r"[/|]", head):
        return None  # the rubric's options echoed back ("是/部分/否"), not a choice
    for value, pattern in _LEVELS:
        if pattern.match(head):
            return value
    return None


_CHOICE = re.compile(r"(?<!\d)([12])(?!\d)|(?<![A-Za-z])([AB])(?![A-Za-z])|(相同|一样|同|(?i:same|tie|equal|both))")


def parse_choice(raw: str) -> int | None:
    """1 or 2 for the preferred answer, 0 for "same", None when the reply names none (or both 1 and 2)."""
    found = set()
    for m in _CHOICE.finditer(_DECOR.sub("", raw or "")[:80]):
        if m.group(1):
            found.add(int(m.group(1)))
        elif m.group(2):
            found.add(1 if m.group(2).upper() == "A" else 2)
        else:
            found.add(0)
    return found.pop() if len(found) == 1 else None


# -- agreement with the keyword metric -------------------------------------------------------------

def agreement(judge_correct: Sequence[bool | None], keyword_correct: Sequence[bool | None]) -> dict:
    """Raw agreement and Cohen's kappa between the judge's and the keyword metric's correct/incorrect.

    Pairs where either side is None (judge unreadable) are left out; ``n`` counts the pairs used.
    kappa = (p_o - p_e) / (1 - p_e), p_e = P(judge yes)·P(kw yes) + P(judge no)·P(kw no).
    Degenerate cases: no pairs → agreement and kappa None. Both raters give one and the same label
    to every case → p_e = 1 and kappa is 0/0: it is None (undefined, not "perfect"), while agreement
    is 1.0 — read it as "too little variety to tell".
    """
    if len(judge_correct) != len(keyword_correct):
        raise ValueError("judge and keyword labels must cover the same cases")
    pairs = [(bool(j), bool(k)) for j, k in zip(judge_correct, keyword_correct) if j is not None and k is not None]
    n = len(pairs)
    if not n:
        return {"n": 0, "agreement": None, "kappa": None}
    p_o = sum(j == k for j, k in pairs) / n
    pj, pk = sum(j for j, _ in pairs) / n, sum(k for _, k in pairs) / n
    p_e = pj * pk + (1 - pj) * (1 - pk)
    kappa = None if math.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)
    return {"n": n, "agreement": p_o, "kappa": kappa}


def summarise(records: Sequence[Mapping], model: str = "") -> dict:
    """Run-level judge figures from run records that carry a ``judge`` dict (from ``Judge.judge_case``).

    Returns ``{"judge_correctness", "judge_faithfulness", "judge": {model, agreement, kappa, n,
    length_correlation, unparsed}}``: means over readable scores; agreement of judge-correct
    (correctness ≥ ``CORRECT_AT``) with the keyword ``accuracy`` over answerable cases; Spearman of
    correctness with the answer's length (markers removed).
    """
    judged = [r for r in records if isinstance(r.get("judge"), Mapping)]
    corr = [r["judge"].get("correctness") for r in judged]
    faith = [f for f in (r["judge"].get("faithfulness") for r in judged) if f is not None]
    answerable = [r for r in judged if r.get("answerable", True)
                  and (r.get("metrics") or {}).get("accuracy") is not None]
    j = [None if r["judge"].get("correctness") is None else r["judge"]["correctness"] >= CORRECT_AT
         for r in answerable]
    k = [r["metrics"]["accuracy"] >= 0.5 for r in answerable]
    agree = agreement(j, k)
    lengths = [len(normalise(str(r.get("answer") or ""), 10**9)) for r in judged]
    readable = [c for c in corr if c is not None]
    return {"judge_correctness": sum(readable) / len(readable) if readable else None,
            "judge_faithfulness": sum(faith) / len(faith) if faith else None,
            "judge": {"model": model, "agreement": agree["agreement"], "kappa": agree["kappa"], "n": agree["n"],
                      "length_correlation": length_correlation(corr, lengths),
                      "unparsed": sum(1 for r in judged if not r["judge"].get("parsed"))}}


def length_correlation(scores: Sequence[float | None], lengths: Sequence[int | float]) -> float | None:
    """Spearman rank correlation of judge scores with answer lengths (ties get average ranks).

    Near 0 is what we want; clearly positive means the judge still rewards length. Pairs with a
    None score are left out; None when fewer than 3 pairs remain or either side is constant.
    """
    if len(scores) != len(lengths):
        raise ValueError("scores and lengths must cover the same cases")
    pairs = [(float(s), float(n)) for s, n in zip(scores, lengths) if s is not None]
    if len(pairs) < 3:
        return None
    return _pearson(_ranks([s for s, _ in pairs]), _ranks([n for _, n in pairs]))


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(x: list[float], y: list[float]) -> float | None:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / math.sqrt(sxx * syy)
