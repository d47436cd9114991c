"""Synthetic question sets (``zhiku eval generate``): question / answer / evidence cases written by
the generator from the knowledge base's own chunks, for users with no labelled set.

Chunks. Every chunk with at least ``MIN_CHARS`` non-space characters besides links and images,
mostly letters, digits or CJK (not code, tables or punctuation), is eligible. They are shuffled
with the seed inside each source, and sources are taken round-robin in a seeded order, so the
cases spread over the documents. One chunk gives at most one case; at most ``3 × n`` chunks are
tried.

Prompt (``synth.<system|user>.<lang>.txt``, the chunk's language). Three labelled lines (问题 /
答案 / 证据, or Question / Answer / Evidence) with one worked example: small models follow a line
format far more reliably than JSON. The reply is read leniently (markdown, quotes, full-width
colons, a label alone on its line, a JSON object).

Checks, each a drop reason counted in ``SynthResult.drops``:
- ``unparsed``: a line is missing;
- ``evidence_not_in_chunk``: the evidence is not in the chunk after whitespace normalisation
  (``dataset.squash``). Before giving up it is snapped to the chunk text: first exactly, ignoring
  markdown decoration and case (the model dropped ``**``), then to the chunk sentence with the
  highest character-bigram Dice overlap, only when that is ≥ ``SNAP_AT`` (a near-verbatim copy).
  The stored evidence is always the chunk's own text, so ``holds_evidence`` finds it;
- ``answer_not_in_evidence``: the answer does not occur in the evidence (the issue's rule);
- ``answer_too_long``: more than a short phrase (``MAX_ANSWER_CHARS``);
- ``answer_in_question``: the question gives the answer away (too easy);
- ``trivial_question``: too short, or it quotes the evidence;
- ``duplicate``: same question or same evidence as a case already kept.
Evidence of several sentences is narrowed to the first one holding the answer (a short passage is
more likely to sit inside one retrieved chunk); evidence shorter than ``MIN_EVIDENCE_CHARS`` is
widened to the chunk sentence around it, so it does not match unrelated chunks.

Keywords. ``answer_keywords`` is one alternative: the answer's content terms (segmenter, stopwords
dropped) that the question does not already contain, without terms inside longer ones, each of
which occurs in the evidence. The whole answer string would be too strict for a generated answer
that paraphrases ("数据质量和多样性" vs "数据的质量与多样性"); terms the question repeats would make
every on-topic answer correct. When no term qualifies, the whole answer is the keyword.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..answer.citations import split_sentences
from ..answer.prompts import language_of, template
from ..backends.generator import Generator, Sampling, _is_cjk
from ..errors import GeneratorError, GeneratorUnavailable, UsageError
from ..types import StoredChunk
from .dataset import squash

MIN_CHARS = 60  # a chunk shorter than this (no spaces) has too little to ask about
MIN_TEXT_SHARE = 0.6  # letters, digits and CJK characters among non-space characters
PASSAGE_CHARS = 700  # what the model is shown of a chunk (chunks are ~250 characters by default)
SNAP_AT = 0.85  # bigram Dice overlap needed to snap a paraphrased evidence to a chunk sentence
MIN_EVIDENCE_CHARS = 12
MAX_ANSWER_CHARS = 40  # no spaces; "a few words or a phrase"
MIN_QUESTION_CHARS = 5
ATTEMPTS_PER_CASE = 3
MAX_ERRORS_IN_A_ROW = 3  # the generator failing this often in a row is not a flaky reply: stop

SYNTH_SAMPLING = Sampling(temperature=0.0, max_tokens=160)

Progress = Callable[[int, int, int], None]  # (chunks tried, attempt budget, cases kept)


@dataclass(frozen=True)
class Draft:
    question: str
    answer: str
    evidence: str


@dataclass
class SynthResult:
    cases: list[dict]  # dataset lines (shared/eval format + synthetic, reference_answer, chunk_id)
    drops: dict[str, int] = field(default_factory=dict)  # reason → chunks dropped for it
    attempts: int = 0  # chunks sent to the generator
    eligible: int = 0  # chunks that passed the length / text filter
    snapped: int = 0  # kept cases whose evidence was snapped to the chunk text


def generate_cases(kb, generator: Generator, n: int, seed: int = 0, progress: Progress | None = None,
                   sampling: Sampling | None = None, max_attempts: int | None = None) -> SynthResult:
    """Up to ``n`` checked cases from ``kb``'s chunks (a ``zhiku.KnowledgeBase``), deterministic for a
    seed and a deterministic generator. Stops at ``n`` cases or after ``max_attempts`` chunks
    (default ``3 × n``). A ``GeneratorError`` is counted and skipped, unless it repeats
    ``MAX_ERRORS_IN_A_ROW`` times in a row; ``GeneratorUnavailable`` is raised at once.
    ``progress(tried, budget, kept)`` is called after each chunk."""
    if n < 1:
        raise UsageError(f"--n must be at least 1, not {n}", "ask for e.g. --n 50")
    chunks = pick_chunks(kb.store.iter_chunks(), seed)
    budget = min(len(chunks), max_attempts if max_attempts is not None else ATTEMPTS_PER_CASE * n)
    sampling = sampling or SYNTH_SAMPLING
    result = SynthResult(cases=[], eligible=len(chunks))
    drops: Counter[str] = Counter()
    seen: set[str] = set()
    errors = 0
    for chunk in chunks[:budget]:
        if len(result.cases) >= n:
            break
        result.attempts += 1
        try:
            raw = generator.complete(_messages(chunk.text), sampling)
            errors = 0
            case, reason, snapped = check(parse_draft(raw), chunk, kb.segmenter, seen)
        except GeneratorUnavailable:
            raise  # no model at all: retrying other chunks cannot help
        except GeneratorError:
            errors += 1
            if errors >= MAX_ERRORS_IN_A_ROW:
                raise
            case, reason, snapped = None, "generator_error", False
        if case is None:
            drops[reason] += 1
        else:
            case["id"] = f"syn-{len(result.cases) + 1:0{max(3, len(str(n)))}d}"
            result.cases.append(_ordered(case))
            result.snapped += snapped
        if progress:
            progress(result.attempts, budget, len(result.cases))
    result.drops = dict(sorted(drops.items()))
    return result


def write_cases(cases: Sequence[dict], path: str | Path, overwrite: bool = False) -> Path:
    """Write dataset lines as UTF-8 JSONL; refuses to replace an existing file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists", "choose another --out file, or pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    tmp.replace(path)
    return path


# -- chunks ----------------------------------------------------------------------------------------

_LINKS = re.compile(r"!?\[[^\]]*\]\([^)]*\)|https?://\S+")


def eligible(text: str) -> bool:
    """Prose enough to ask about: without links and images, at least ``MIN_CHARS`` non-space characters, of
    which ``MIN_TEXT_SHARE`` are letters, digits or CJK (not code, tables or punctuation)."""
    body = squash(_LINKS.sub("", text))
    if len(body) < MIN_CHARS:
        return False
    return sum(1 for ch in body if ch.isalnum() or _is_cjk(ch)) / len(body) >= MIN_TEXT_SHARE


def pick_chunks(chunks: Iterable[StoredChunk], seed: int) -> list[StoredChunk]:
    """Eligible chunks in a seeded order that takes the sources round-robin."""
    by_source: dict[str, list[StoredChunk]] = defaultdict(list)
    for c in chunks:
        if eligible(c.text):
            by_source[c.source].append(c)
    rng = random.Random(seed)
    sources = sorted(by_source)
    rng.shuffle(sources)
    queues = []
    for s in sources:
        group = sorted(by_source[s], key=lambda c: (c.ordinal, c.chunk_id))
        rng.shuffle(group)
        queues.append(group)
    out = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _messages(text: str):
    lang = language_of(text)
    passage = text.strip()[:PASSAGE_CHARS]
    return template("synth", lang).messages(passage=passage)


# -- reading the reply -----------------------------------------------------------------------------

_FIELDS = {
    "question": ("问题", "题目", "问", "question", "q"),
    "answer": ("答案", "回答", "答", "answer", "a"),
    "evidence": ("证据", "原文", "依据", "出处", "evidence", "source", "quote", "e"),
}
_LABEL = re.compile(r"^\s*(?:[-*>]\s*|\d+[.、)]\s*)?\**\s*([^\s:：*]{1,10})\s*\**\s*[:：]\s*\**\s*(.*)$")
_QUOTES = "\"'“”‘’「」『』`*"


def parse_draft(raw: str) -> Draft | None:
    """Question, answer and evidence from a reply, or None if any is missing."""
    found = _from_json(raw) or _from_lines(raw)
    q, a, e = (_clean(found.get(k, "")) for k in ("question", "answer", "evidence"))
    return Draft(q, a, e) if q and a and e else None


def _from_lines(raw: str) -> dict[str, str]:
    found: dict[str, str] = {}
    pending = None
    for line in (raw or "").splitlines():
        m = _LABEL.match(line)
        key = _field(m.group(1)) if m else None
        if key and key not in found:
            value = m.group(2).strip()  # type: ignore[union-attr]
            found[key] = value
            pending = None if value else key
        elif pending and line.strip():
            found[pending] = line.strip()
            pending = None
    return found


def _field(label: str) -> str | None:
    label = label.lower()
    return next((k for k, names in _FIELDS.items() if label in names), None)


def _from_json(raw: str) -> dict[str, str]:
    m = re.search(r"\{.*\}", raw or "", re.S)
    if not m:
        return {}
    try:
        obj = json.loads(m.group(0))
    except ValueError:
        return {}
    if not isinstance(obj, dict):
        return {}
    out = {}
    for key, value in obj.items():
        f = _field(str(key))
        if f and isinstance(value, str):
            out[f] = value
    return out


def _clean(text: str) -> str:
    text = " ".join(text.split()).strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text.strip(_QUOTES).strip()


# -- checks ----------------------------------------------------------------------------------------

def check(draft: Draft | None, chunk: StoredChunk, segmenter, seen: set[str]) -> tuple[dict | None, str, bool]:
    """(case, "", snapped) for a draft that passes every check, else (None, reason, False)."""
    if draft is None:
        return None, "unparsed", False
    evidence, snapped = locate(draft.evidence, chunk.text)
    if evidence is None:
        return None, "evidence_not_in_chunk", False
    answer, question = draft.answer.rstrip("。.！!"), draft.question
    sq_answer, sq_question = squash(answer).lower(), squash(question).lower()
    if len(split_sentences(evidence)) > 1:  # several sentences copied: keep the one that holds the answer
        evidence = _widen(_sentence_with(answer, evidence) or evidence, chunk.text)
    reason = _problem(sq_answer, sq_question, evidence, seen)
    if reason:
        return None, reason, False
    seen.update({"q:" + sq_question, "e:" + squash(evidence)})
    case = {"question": question, "answerable": True,
            "answer_keywords": [keywords(answer, question, evidence, segmenter)],
            "evidence": [{"source": chunk.source, "text": evidence}],
            "synthetic": True, "reference_answer": answer, "chunk_id": chunk.chunk_id}
    return case, "", snapped


def _problem(sq_answer: str, sq_question: str, evidence: str, seen: set[str]) -> str:
    sq_evidence = squash(evidence)
    if sq_answer not in sq_evidence.lower():
        return "answer_not_in_evidence"
    if len(sq_answer) > MAX_ANSWER_CHARS:
        return "answer_too_long"
    if sq_answer in sq_question:
        return "answer_in_question"
    if len(sq_question) < MIN_QUESTION_CHARS or sq_evidence.lower() in sq_question:
        return "trivial_question"
    if "q:" + sq_question in seen or "e:" + sq_evidence in seen:
        return "duplicate"
    return ""


def locate(evidence: str, chunk: str) -> tuple[str | None, bool]:
    """The chunk's own text for ``evidence``: (text, snapped) or (None, False) when it is not there."""
    if squash(evidence) and squash(evidence) in squash(chunk):
        text, snapped = _exact_span(evidence, chunk, _WS_ONLY) or evidence, False
    else:
        text, snapped = _exact_span(evidence, chunk, _DECORATION) or _nearest_sentence(evidence, chunk), True
    if text is None:
        return None, False
    if len(squash(text)) < MIN_EVIDENCE_CHARS:
        text = _widen(text, chunk)
    return text, snapped


_WS_ONLY = re.compile(r"\s")
_DECORATION = re.compile(r"[\s*_`#>~\"'“”‘’「」『』]")


def _exact_span(needle: str, hay: str, skip: re.Pattern) -> str | None:
    """The span of ``hay`` that equals ``needle`` once characters matching ``skip`` are ignored (case too)."""
    keep = [i for i, ch in enumerate(hay) if not skip.match(ch)]
    skeleton = "".join(hay[i] for i in keep).lower()
    target = skip.sub("", needle).lower()
    at = skeleton.find(target) if target else -1
    if at < 0:
        return None
    return hay[keep[at]:keep[at + len(target) - 1] + 1]


def _nearest_sentence(evidence: str, chunk: str) -> str | None:
    target = _bigrams(evidence)
    best, best_score = None, 0.0
    for start, end in split_sentences(chunk):
        sentence = chunk[start:end]
        grams = _bigrams(sentence)
        if grams and target:
            score = 2 * len(grams & target) / (len(grams) + len(target))
            if score > best_score:
                best, best_score = sentence, score
    return best if best_score >= SNAP_AT else None


def _bigrams(text: str) -> set[str]:
    s = _DECORATION.sub("", text).lower()
    return {s[i:i + 2] for i in range(len(s) - 1)}


def _widen(text: str, chunk: str) -> str:
    """The chunk sentence holding ``text`` (evidence too short to identify a passage on its own)."""
    core = squash(text)
    for start, end in split_sentences(chunk):
        if core in squash(chunk[start:end]):
            return chunk[start:end]
    return text


def _sentence_with(answer: str, evidence: str) -> str | None:
    """The first sentence of ``evidence`` holding ``answer``."""
    core = squash(answer).lower()
    for start, end in split_sentences(evidence):
        if core in squash(evidence[start:end]).lower():
            return evidence[start:end]
    return None


def keywords(answer: str, question: str, evidence: str, segmenter) -> list[str]:
    """The answer's content terms not in the question, each found in the evidence; else the answer itself."""
    q, ev = question.lower(), evidence.lower()
    terms = [t for t in segmenter.query_terms(answer) if t not in q and t in ev]
    if any(len(t) > 1 for t in terms):
        terms = [t for t in terms if len(t) > 1]
    terms = [t for t in terms if not any(t != o and t in o for o in terms)]
    return terms or [answer]


def _ordered(case: dict) -> dict:
    order = ("id", "question", "answerable", "answer_keywords", "evidence", "synthetic", "reference_answer",
             "chunk_id")
    return {k: case[k] for k in order if k in case}
