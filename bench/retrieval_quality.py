"""Retrieval quality on the dev question set: lexical vs vector vs hybrid, side by side.

    python bench/retrieval_quality.py [--home DIR] [--sweep]

Builds (or reuses) a knowledge base of shared/corpus/llm-notes with the real embedder, then
reports hit@1, hit@5, MRR and nDCG@10 per mode. --sweep also tries fusion settings.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import CORPUS, DEV_SET, peak_rss_mb  # noqa: E402

from zhiku import KnowledgeBase  # noqa: E402
from zhiku.evaluate.dataset import Dataset, load_dataset  # noqa: E402
from zhiku.evaluate.runner import EvalOptions, run_eval  # noqa: E402
from zhiku.evaluate.tune import seen_with  # noqa: E402


def evaluate(kb: KnowledgeBase, dataset, cfg) -> dict:
    """zhiku's own eval engine (retrieval only) on ``kb`` seen with search settings ``cfg``."""
    view = seen_with(kb, dataclasses.replace(kb.settings, retrieve=cfg))
    run = run_eval(view, dataset, EvalOptions(retrieval_only=True))
    m = run.metrics["metrics"]
    return {"hit@1": m["hit@1"], "hit@5": m["hit@5"], "mrr": m["mrr"], "ndcg@10": m["ndcg@10"],
            "missed@5": [c["id"] for c in run.cases if c["metrics"].get("hit@5") == 0.0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=None, help="zhiku home to build/reuse the KB in (default: a temp dir)")
    ap.add_argument("--max-chars", type=int, default=None)
    ap.add_argument("--overlap", type=int, default=None)
    ap.add_argument("--sweep", action="store_true", help="also sweep rrf_k, weights and candidates")
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="zhiku-bench-")
    overrides = {}
    if args.max_chars:
        overrides["chunk.max_chars"] = args.max_chars
    if args.overlap is not None:
        overrides["chunk.overlap_chars"] = args.overlap
    kb = KnowledgeBase.open("llm-notes", home=home, overrides=overrides)
    t0 = time.perf_counter()
    report = kb.add([str(CORPUS)])
    print(f"ingest: {report.chunks_written} chunks written, {len(report.by_status('unchanged'))} files unchanged, "
          f"{time.perf_counter() - t0:.1f}s; chunks in KB: {kb.store.chunk_count()}; "
          f"chunking {kb.settings.chunk}")
    ds = load_dataset(DEV_SET)
    cases = Dataset(tuple(c for c in ds.cases if c.answerable and c.evidence), ds.problems, ds.path, ds.sha256)
    print(f"dev set: {len(cases.cases)} answerable cases with evidence ({len(ds.cases)} in all)\n")
    base = kb.settings.retrieve
    print(f"{'mode':<8} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'nDCG@10':>8}  missed@5")
    for mode in ("lexical", "vector", "hybrid"):
        m = evaluate(kb, cases, dataclasses.replace(base, mode=mode))
        print(f"{mode:<8} {m['hit@1']:6.3f} {m['hit@5']:6.3f} {m['mrr']:6.3f} {m['ndcg@10']:8.3f}  {' '.join(m['missed@5'])}")
    if args.sweep:
        print("\nsweep (hybrid): rrf_k, lexical_weight, vector_weight, candidates")
        board = []
        for rrf_k, lw, vw, cand in itertools.product((10, 30, 60, 100), (0.5, 1.0, 1.5), (0.5, 1.0, 1.5),
                                                     (20, 50, 100)):
            cfg = dataclasses.replace(base, mode="hybrid", rrf_k=rrf_k, lexical_weight=lw, vector_weight=vw,
                                      candidates=cand)
            board.append((evaluate(kb, cases, cfg), rrf_k, lw, vw, cand))
        board.sort(key=lambda b: (-b[0]["hit@5"], -b[0]["mrr"]))
        for m, rrf_k, lw, vw, cand in board[:12]:
            print(f"  k={rrf_k:<3} lex={lw:<3} vec={vw:<3} cand={cand:<3}  hit@1 {m['hit@1']:.3f} "
                  f"hit@5 {m['hit@5']:.3f} MRR {m['mrr']:.3f}")
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")
    kb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
