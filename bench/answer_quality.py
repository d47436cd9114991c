"""Answer quality and latency on the question sets, per model.

    python bench/answer_quality.py [--model qwen2.5-1.5b --model qwen2.5-0.5b] [--set dev|heldout|all]
                                   [--home DIR] [--calibrate] [--no-llm] [--limit N] [--out FILE]

Builds (or reuses) a knowledge base of shared/corpus/llm-notes, then asks every question and
reports, per model:
- accuracy: answerable cases whose answer holds a keyword alternative and was not refused;
- citation support: answerable, non-refused answers that cite a passage holding the evidence;
- refusal: unanswerable cases declined; false refusal: answerable cases declined;
- first-token and total latency (median, p95), peak RSS.
The baseline in the same run is the extractive answer (--no-llm path): same retrieval, no model.
--calibrate prints evidence strength per case and the refusal threshold sweep instead.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CORPUS, DEV_SET, ROOT, pct, peak_rss_mb  # noqa: E402

from zhiku import KnowledgeBase  # noqa: E402
from zhiku.evaluate.dataset import holds_evidence, load_dataset, matches_keywords  # noqa: E402

HELDOUT = ROOT / "bench" / "data" / "llm-notes-heldout.jsonl"


def cases_for(which: str):
    sets = {"dev": [DEV_SET], "heldout": [HELDOUT], "all": [DEV_SET, HELDOUT]}[which]
    out = []
    for path in sets:
        out.extend(load_dataset(path).cases)
    return out


def run(kb, cases, extractive: bool, verbose: bool) -> dict:
    answerer = kb.answerer(extractive=extractive)
    if not extractive:
        answerer.warm("zh")
    rows = []
    for case in cases:
        a = answerer.ask(case.question, extractive=extractive)
        cited_ok = any(holds_evidence(c["source"], c["text"], case.evidence) for c in a.citations)
        row = {"id": case.id, "answerable": case.answerable, "refused": a.refused, "reason": a.refusal_reason,
               "correct": case.answerable and not a.refused and matches_keywords(a.answer, case.answer_keywords),
               "cited_evidence": cited_ok, "uncited": bool(a.check.get("uncited")),
               "unsupported": len(a.check.get("unsupported", [])), "evidence": round(a.evidence, 3),
               "first_token_s": a.timings.get("first_token_s", a.timings["total_s"]),
               "total_s": a.timings["total_s"], "answer": a.answer, "usage": a.usage}
        rows.append(row)
        if verbose:
            flag = "ok " if row["correct"] or (not case.answerable and a.refused) else "BAD"
            print(f"  {flag} {case.id} {a.timings['total_s']:5.1f}s ev={a.evidence:.2f} "
                  f"{a.answer[:90]!r}", flush=True)
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    answered = [r for r in ans if not r["refused"]]
    return {
        "accuracy": statistics.mean(r["correct"] for r in ans) if ans else 0.0,
        "citation_support": statistics.mean(r["cited_evidence"] for r in answered) if answered else 0.0,
        "correct_and_cited": statistics.mean(r["correct"] and r["cited_evidence"] for r in ans) if ans else 0.0,
        "refusal": statistics.mean(r["refused"] for r in una) if una else 0.0,
        "false_refusal": statistics.mean(r["refused"] for r in ans) if ans else 0.0,
        "uncited": statistics.mean(r["uncited"] for r in answered) if answered else 0.0,
        "first_token_p50": statistics.median(r["first_token_s"] for r in rows),
        "first_token_p95": pct([r["first_token_s"] for r in rows], 95),
        "total_p50": statistics.median(r["total_s"] for r in rows),
        "total_p95": pct([r["total_s"] for r in rows], 95),
        "peak_rss_mb": peak_rss_mb(),
        "n_answerable": len(ans), "n_unanswerable": len(una),
        "rows": rows,
    }


def calibrate(kb, cases) -> None:
    answerer = kb.answerer(extractive=True)
    pts = []
    for case in cases:
        a = answerer.ask(case.question, extractive=True)
        pts.append((a.evidence, case.answerable, case.id))
        print(f"  {case.id} answerable={case.answerable!s:5} evidence={a.evidence:.3f}")
    print("\nthreshold  refusal(unanswerable)  false_refusal(answerable)")
    una = [p for p in pts if not p[1]]
    ans = [p for p in pts if p[1]]
    for th in [x / 20 for x in range(0, 17)]:
        r = sum(p[0] < th for p in una) / max(len(una), 1)
        f = sum(p[0] < th for p in ans) / max(len(ans), 1)
        print(f"  {th:.2f}      {r:.3f}                  {f:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=None)
    ap.add_argument("--model", action="append", help="bundled pack name or .gguf path (repeatable)")
    ap.add_argument("--set", default="all", choices=["dev", "heldout", "all"])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--no-llm", action="store_true", help="only the extractive baseline")
    ap.add_argument("-o", "--override", action="append", default=[], help="setting override KEY=VALUE")
    ap.add_argument("--out", help="write all rows as JSON here")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="zhiku-bench-")
    overrides = dict(o.split("=", 1) for o in args.override)
    cases = cases_for(args.set)
    if args.limit:
        cases = cases[: args.limit]
    results = {}
    models = [] if args.no_llm else (args.model or ["qwen2.5-1.5b"])
    for label in ["extractive (no LLM)", *models]:
        ov = dict(overrides)
        if label in models:
            ov["generate.model"] = label
        kb = KnowledgeBase.open("llm-notes", home=home, overrides=ov)
        t0 = time.perf_counter()
        rep = kb.add([str(CORPUS)])
        if rep.chunks_written:
            print(f"ingest: {rep.chunks_written} chunks in {time.perf_counter() - t0:.1f}s")
        if args.calibrate:
            calibrate(kb, cases)
            return 0
        print(f"\n== {label}: {len(cases)} cases ({args.set}) ==", flush=True)
        results[label] = run(kb, cases, extractive=label not in models, verbose=args.verbose)
        kb.close()
    keys = ["accuracy", "citation_support", "correct_and_cited", "refusal", "false_refusal", "uncited",
            "first_token_p50", "first_token_p95", "total_p50", "total_p95", "peak_rss_mb"]
    print("\n| metric | " + " | ".join(results) + " |")
    print("| --- |" + " --- |" * len(results))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{r[k]:.3f}" if k[0] != "p" else f"{r[k]:.0f}" for r in results.values()) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
