"""The HSK retrieval benchmark's data: corpus files and question sets built from `hsk-sentences-audio`.

The PyPI package `hsk-sentences-audio` (1.0.0, dataset CC-BY-SA-4.0) ships 4,354 graded Chinese
sentences with English translations and word tokens. Nothing is downloaded at run time: the
records come from ``hsk_sentences_audio.load_sentences()``. Pure functions over the records, so
tests can run them on a handful of hand-made records (not part of the package).

- corpus: one file per record, ``<id>.txt`` holding the Chinese sentence (one chunk = one sentence);
- question sets, in the shared/eval format (one JSON object a line):
  ``en2zh`` (the English translation), ``zh-exact`` (the Chinese sentence itself) and
  ``zh-keyword`` (2-3 rare content words of the sentence, space-separated).
A case's evidence lists every file that answers it: for duplicated sentences (4,354 records,
4,349 distinct sentences) every copy, for ``en2zh`` also every sentence with the same English
translation (the query cannot tell them apart), for ``zh-keyword`` every sentence containing all
the chosen words.
"""
from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

SETS = ("en2zh", "zh-exact", "zh-keyword")
MAX_RELEVANT = 10  # zh-keyword queries matching more sentences than this are skipped
SINGLE_CHAR_MAX_DF = 30  # a one-character word qualifies as a keyword only if at most this many sentences hold it
# ... and if it is not a function character (particles, pronouns, adverbs, prepositions, conjunctions, measures)
FUNCTION_CHARS = frozenset("的地得了着过吗呢吧啊呀哦嘛啦么我你您他她它咱谁哪这那些每各几个只是在有一不没别"
                           "还再又才更最太很也都就已将必应该可能会要想于为从向被把给让对比当由如此所因而但或和与及跟")
PLACEHOLDER_EN = frozenset({"placeholder", "ph"})  # 67 records carry no real translation (levels 5-6)
_CJK_WORD = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]+$")
_WS = re.compile(r"\s+")


def load_records() -> list[dict]:
    try:
        from hsk_sentences_audio import load_sentences
    except ImportError as exc:
        raise SystemExit("this benchmark needs the HSK data: pip install 'zhiku[bench]' "
                         "(or pip install hsk-sentences-audio==1.0.0)") from exc
    return list(load_sentences())


def file_name(record: dict) -> str:
    return f"{record['id']}.txt"


def write_corpus(records: Sequence[dict], folder: Path) -> int:
    """One UTF-8 file per record holding its Chinese sentence; rewrites only what differs. Returns files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for r in records:
        path = folder / file_name(r)
        body = r["chinese"] + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
            written += 1
    return written


def _norm_en(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def _case(set_name: str, record: dict, question: str, relevant: Iterable[dict]) -> dict:
    rel = sorted({r["id"]: r for r in relevant}.values(), key=lambda r: r["id"])
    return {"id": f"{set_name}-{record['id']}", "question": question, "answerable": True, "answer_keywords": [],
            "evidence": [{"source": file_name(r), "text": r["chinese"]} for r in rel]}


def by_sentence(records: Sequence[dict]) -> dict[str, list[dict]]:
    """Chinese sentence -> every record holding it, in id order (duplicates share one entry)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["id"]):
        out[r["chinese"]].append(r)
    return dict(out)


def en2zh_cases(records: Sequence[dict]) -> tuple[list[dict], dict]:
    """Question: the English translation. Relevant: every record with the same Chinese or the same English.

    Records whose translation is a placeholder ("placeholder", "PH") are left out; stats count them."""
    same_zh = by_sentence(records)
    same_en: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        same_en[_norm_en(r["translation"]["en"])].append(r)
    cases, seen = [], set()
    stats = {"placeholder_translation": 0, "shared_translation": 0}
    for r in sorted(records, key=lambda r: r["id"]):
        q = r["translation"]["en"].strip()
        key = _norm_en(q)
        if not q or key in PLACEHOLDER_EN:
            stats["placeholder_translation"] += 1
            continue
        if key in seen:
            stats["shared_translation"] += 1  # the same English as an earlier record: one case for both
            continue
        seen.add(key)
        relevant = [x for y in same_en[key] for x in same_zh[y["chinese"]]]
        cases.append(_case("en2zh", r, q, relevant))
    return cases, stats


def zh_exact_cases(records: Sequence[dict]) -> list[dict]:
    """Question: the Chinese sentence itself. Relevant: every record with that sentence."""
    return [_case("zh-exact", group[0], zh, group) for zh, group in
            sorted(by_sentence(records).items(), key=lambda kv: kv[1][0]["id"])]


def sentence_index(words: Iterable[str], sentences: Sequence[str]) -> dict[str, frozenset[int]]:
    """word -> indexes of the distinct sentences containing it (plain substring match)."""
    return {w: frozenset(i for i, s in enumerate(sentences) if w in s) for w in set(words)}


def pick_keywords(record: dict, df: dict[str, int]) -> list[str]:
    """2-3 content words of the sentence, deterministic: multi-character words before single
    characters, rarer first, then earlier; a single character only if rare and not a function
    character (的/了/呢/他...). Three words when the sentence has three
    qualifying words, else two; [] when it has fewer than two. Returned in sentence order."""
    order: dict[str, int] = {}
    for i, tok in enumerate(record["tokens"]):
        w = tok["word"]
        if w not in order and _CJK_WORD.match(w) and (len(w) >= 2 or (
                df.get(w, 0) <= SINGLE_CHAR_MAX_DF and w not in FUNCTION_CHARS)):
            order[w] = i
    ranked = sorted(order, key=lambda w: (len(w) == 1, df.get(w, 0), order[w]))
    if len(ranked) < 2:
        return []
    chosen = ranked[:3]
    return sorted(chosen, key=lambda w: order[w])


def zh_keyword_cases(records: Sequence[dict], max_relevant: int = MAX_RELEVANT) -> tuple[list[dict], dict]:
    """Question: 2-3 words joined by spaces. Relevant: every record whose sentence contains all of them.

    Returns (cases, stats) where stats counts the sentences skipped and why."""
    groups = by_sentence(records)
    sentences = list(groups)
    index = sentence_index((t["word"] for r in records for t in r["tokens"]), sentences)
    df = {w: len(ix) for w, ix in index.items()}
    cases, seen = [], set()
    stats = {"too_few_words": 0, "too_many_relevant": 0, "duplicate_query": 0}
    for zh, group in sorted(groups.items(), key=lambda kv: kv[1][0]["id"]):
        words = pick_keywords(group[0], df)
        if not words:
            stats["too_few_words"] += 1
            continue
        q = " ".join(words)
        if q in seen:
            stats["duplicate_query"] += 1  # another sentence chose the same words: same case
            continue
        seen.add(q)
        relevant = [r for i in frozenset.intersection(*(index[w] for w in words)) for r in groups[sentences[i]]]
        if len(relevant) > max_relevant:  # files, so duplicated sentences count once per copy
            stats["too_many_relevant"] += 1
            continue
        cases.append(_case("zh-keyword", group[0], q, relevant))
    return cases, stats


def build_sets(records: Sequence[dict], n: int | None, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """All three sets; ``n`` cases sampled from each (deterministically from ``seed``), None = every case."""
    keyword, kw_stats = zh_keyword_cases(records)
    en2zh, en_stats = en2zh_cases(records)
    full = {"en2zh": en2zh, "zh-exact": zh_exact_cases(records), "zh-keyword": keyword}
    out, info = {}, {}
    for name, cases in full.items():
        picked = cases if n is None or n >= len(cases) else random.Random(f"{seed}:{name}").sample(cases, n)
        out[name] = sorted(picked, key=lambda c: c["id"])
        sizes = [len(c["evidence"]) for c in out[name]]
        info[name] = {"available": len(cases), "cases": len(out[name]),
                      "multi_relevant": sum(1 for s in sizes if s > 1), "max_relevant": max(sizes, default=0)}
    info["en2zh"]["skipped"] = en_stats
    info["zh-keyword"]["skipped"] = kw_stats
    return out, info


def write_jsonl(cases: Sequence[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
