"""Question sets in the format of shared/eval/README.md (one JSON object a line)."""
from __future__ import annotations

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


@dataclass(frozen=True)
class Dataset:
    cases: tuple[Case, ...]
    problems: tuple[str, ...]  # "line N: what is wrong", for lines that were skipped


def load_dataset(path: str | Path) -> Dataset:
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read question set {path}: {exc}", "give a UTF-8 .jsonl file") from exc
    cases, problems = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cases.append(_case(json.loads(line)))
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"line {n}: {exc}")
    return Dataset(tuple(cases), tuple(problems))


def _case(obj: dict) -> Case:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    question = obj["question"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")
    evidence = tuple(Evidence(str(e["source"]), str(e["text"])) for e in obj.get("evidence", []))
    keywords = tuple(tuple(str(k) for k in alt) for alt in obj.get("answer_keywords", []))
    return Case(id=str(obj["id"]), question=question, answerable=bool(obj.get("answerable", True)),
                answer_keywords=keywords, evidence=evidence)


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
