"""Standalone sanity checker for a question set in the format of shared/eval/README.md.

    python bench/data/check_heldout.py [QUESTIONS.jsonl] [CORPUS_DIR]

Defaults: bench/data/llm-notes-heldout.jsonl and $ZHIKU_SHARED/corpus/llm-notes
(ZHIKU_SHARED defaults to ../shared next to the repository). Exits 1 on any problem.

Checks: every line is a JSON object with the fields; ids are unique; answerable cases have
keywords and evidence, unanswerable ones have neither; every evidence text occurs verbatim in its source after whitespace normalisation (runs of whitespace collapsed to
one space on both sides); at least one keyword alternative occurs (case-insensitive) in the
evidence text or its surrounding context (the blank-line separated paragraph holding it, or
200 characters either side, whichever is larger). Evidence outside 10-40 characters is only
a warning.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHARED = Path(os.environ.get("ZHIKU_SHARED", ROOT.parent / "shared"))
FIELDS = {"id": str, "question": str, "answerable": bool, "answer_keywords": list, "evidence": list}
_WS = re.compile(r"\s+")


def norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def context(raw: str, passage: str) -> str | None:
    """The paragraph or +-200 chars (whichever is longer) around passage, normalised."""
    body = norm(raw)
    i = body.find(passage)
    if i < 0:
        return None
    window = body[max(0, i - 200): i + len(passage) + 200]
    for para in re.split(r"\n\s*\n", raw):
        p = norm(para)
        if passage in p and len(p) > len(window):
            return p
    return window


def check(questions: Path, corpus: Path, warnings: list[str]) -> list[str]:
    errors: list[str] = []
    seen: set[str] = set()
    cache: dict[str, str] = {}
    for n, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            errors.append(f"line {n}: empty line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: invalid JSON ({e})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"line {n}: not an object")
            continue
        bad = [k for k, t in FIELDS.items() if not isinstance(obj.get(k), t)]
        if bad:
            errors.append(f"line {n}: missing or mistyped fields {bad}")
            continue
        cid = obj["id"]
        if cid in seen:
            errors.append(f"{cid}: duplicate id")
        seen.add(cid)
        if not obj["question"].strip():
            errors.append(f"{cid}: empty question")
        kws, evs = obj["answer_keywords"], obj["evidence"]
        if not obj["answerable"]:
            if kws or evs:
                errors.append(f"{cid}: unanswerable case with keywords or evidence")
            continue
        if not kws or not all(isinstance(a, list) and a and all(isinstance(k, str) and k.strip()
                                                               for k in a) for a in kws):
            errors.append(f"{cid}: answer_keywords must be a non-empty list of non-empty string lists")
            continue
        if not evs:
            errors.append(f"{cid}: answerable case without evidence")
        for ev in evs:
            src, text = ev.get("source"), ev.get("text")
            if not isinstance(src, str) or not isinstance(text, str):
                errors.append(f"{cid}: evidence needs string source and text")
                continue
            passage = norm(text)
            if not 10 <= len(passage) <= 40:
                warnings.append(f"{cid}: evidence is {len(passage)} characters, 10-40 recommended")
            path = corpus / src
            if src not in cache:
                cache[src] = path.read_text(encoding="utf-8") if path.is_file() else ""
            if not cache[src]:
                errors.append(f"{cid}: source {src!r} not found in {corpus}")
                continue
            ctx = context(cache[src], passage)
            if ctx is None:
                errors.append(f"{cid}: evidence {passage!r} not found in {src}")
                continue
            low = ctx.lower()
            if not any(all(k.lower() in low for k in alt) for alt in kws):
                errors.append(f"{cid}: no keyword alternative {kws} in the evidence context")
    return errors


def main(argv: list[str]) -> int:
    questions = Path(argv[1]) if len(argv) > 1 else HERE / "llm-notes-heldout.jsonl"
    corpus = Path(argv[2]) if len(argv) > 2 else SHARED / "corpus" / "llm-notes"
    warnings: list[str] = []
    errors = check(questions, corpus, warnings)
    lines = [x for x in questions.read_text(encoding="utf-8").splitlines() if x.strip()]
    n_ans = sum('"answerable": true' in x for x in lines)
    print(f"{questions}: {len(lines)} cases ({n_ans} answerable, {len(lines) - n_ans} unanswerable)")
    for w in warnings:
        print("  WARN ", w)
    for e in errors:
        print("  ERROR", e)
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
