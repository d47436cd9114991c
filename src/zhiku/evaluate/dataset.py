"""Question sets in the format of shared/eval/README.md (one JSON object a line)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Evidence:
    source: str
    text: str


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    answerable: bool
    answer_keywords: tuple[tuple[str, ...], ...]
    evidence: tuple[Evidence, ...]
    synthetic: bool = False  # made by ``zhiku eval generate``, not written by a person
    reference_answer: str = ""  # optional reference text (the judge compares against it)


@dataclass(frozen=True)
class Dataset:
    cases: tuple[Case, ...]
    problems: tuple[str, ...]  # "line N: what is wrong", for lines that were skipped
    path: str = ""
    sha256: str = ""  # of the file's bytes: a run records which version of the set it used


def load_dataset(path: str | Path) -> Dataset:
    """Read a question set; invalid lines are skipped and listed in ``problems`` with their line number."""
    try:
        data = Path(path).read_bytes()
        # split on \n only: JSON strings may hold U+2028/U+2029/U+0085 raw, and splitlines() splits there
        lines = [line.rstrip("\r") for line in data.decode("utf-8-sig").split("\n")]
    except FileNotFoundError as exc:
        raise UsageError(f"question set not found: {path}", "give the path of a .jsonl file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read question set {path}: {exc}", "give a UTF-8 .jsonl file") from exc
    cases: list[Case] = []
    problems: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = _case(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"line {n}: {_describe(exc)}")
            continue
        if case.id in seen:
            problems.append(f"line {n}: duplicate id {case.id!r} (ids must be unique; this line was skipped)")
            continue
        seen.add(case.id)
        cases.append(case)
    return Dataset(tuple(cases), tuple(problems), str(Path(path).resolve()), hashlib.sha256(data).hexdigest())


def _describe(exc: Exception) -> str:
    return f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)


def _case(obj: dict) -> Case:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    question = obj["question"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")
    cid = obj["id"]
    if isinstance(cid, bool) or not isinstance(cid, (str, int)) or not str(cid).strip():
        raise ValueError("id must be a non-empty string")
    answerable = obj.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError(f"answerable must be true or false, got {answerable!r}")
    synthetic = obj.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise ValueError(f"synthetic must be true or false, got {synthetic!r}")
    return Case(id=str(cid), question=question, answerable=answerable,
                answer_keywords=_keywords(obj.get("answer_keywords", [])), evidence=_evidence(obj.get("evidence", [])),
                synthetic=synthetic, reference_answer=str(obj.get("reference_answer") or ""))


def _keywords(raw) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list):
        raise ValueError("answer_keywords must be a list of alternatives, e.g. [[\"数据\", \"质量\"], [\"data\"]]")
    out = []
    for alt in raw:
        if not isinstance(alt, list) or not alt or not all(isinstance(k, str) and k.strip() for k in alt):
            raise ValueError("each answer_keywords alternative must be a non-empty list of non-empty strings, "
                             f"got {alt!r} (a flat list? wrap it: [[...]])")
        out.append(tuple(alt))
    return tuple(out)


def _evidence(raw) -> tuple[Evidence, ...]:
    if not isinstance(raw, list):
        raise ValueError("evidence must be a list of {\"source\": ..., \"text\": ...} objects")
    out = []
    for e in raw:
        if not isinstance(e, dict) or not isinstance(e.get("source"), str) or not isinstance(e.get("text"), str) \
                or not e["source"].strip() or not squash(e["text"]):
            raise ValueError(f"each evidence entry needs a non-empty \"source\" and \"text\", got {e!r}")
        out.append(Evidence(e["source"], e["text"]))
    return tuple(out)


def squash(text: str) -> str:
    """Whitespace normalisation for evidence matching: all whitespace removed."""
    return _WS.sub("", text)


def holds_evidence(source: str, text: str, evidence: tuple[Evidence, ...]) -> bool:
    """A chunk is a hit when it comes from an evidence source and contains that evidence passage."""
    body = squash(text)
    return any(_same_source(source, e.source) and squash(e.text) in body for e in evidence)


def _same_source(chunk_source: str, evidence_source: str) -> bool:
    return chunk_source == evidence_source or chunk_source.endswith("/" + evidence_source)


def matches_keywords(answer: str, alternatives: tuple[tuple[str, ...], ...]) -> bool:
    """True when every keyword of at least one alternative occurs in the answer (case-insensitive)."""
    low = answer.lower()
    return any(alt and all(k.lower() in low for k in alt) for alt in alternatives)


def evidence_spans(source: str, text: str, evidence: tuple[Evidence, ...]) -> list[tuple[int, int]]:
    """Where each evidence passage of ``source`` sits in ``text``, as character offsets into ``text``.

    Matching ignores whitespace (as ``holds_evidence`` does), so the span may cover line breaks the
    evidence line does not have. Empty when the chunk holds no evidence.
    """
    wanted = [squash(e.text) for e in evidence if _same_source(source, e.source)]
    if not wanted:
        return []
    kept = [i for i, ch in enumerate(text) if not ch.isspace()]  # squashed position -> original offset
    body = "".join(text[i] for i in kept)
    spans = []
    for needle in wanted:
        at = body.find(needle)
        while needle and at >= 0:
            spans.append((kept[at], kept[at + len(needle) - 1] + 1))
            at = body.find(needle, at + len(needle))
    return sorted(set(spans))
