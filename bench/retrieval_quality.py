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
from zhiku.evaluate.dataset import holds_evidence, load_dataset  # noqa: E402
from zhiku.evaluate.metrics import hit_at, mean, ndcg_at, reciprocal_rank  # noqa: E402
from zhiku.retrieve.search import search  # noqa: E402


def evaluate(kb: KnowledgeBase, cases, cfg) -> dict:
    rows = []
    all_chunks = list(kb.store.iter_chunks())
    for case in cases:
        result = search(case.question, kb.store, kb.embedder, kb.segmenter, cfg)
        rel = [holds_evidence(h.chunk.source, h.chunk.text, case.evidence) for h in result.hits]
        n_rel = sum(holds_evidence(c.source, c.text, case.evidence) for c in all_chunks)  # overlap: may be >1
        rows.append((hit_at(rel, 1), hit_at(rel, 5), reciprocal_rank(rel), ndcg_at(rel, 10, n_rel), case.id))
    return {"hit@1": mean([r[0] for r in rows]), "hit@5": mean([r[1] for r in rows]),
            "mrr": mean([r[2] for r in rows]), "ndcg@10": mean([r[3] for r in rows]),
            "missed@5": [r[4] for r in rows if not r[1]]}


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
    cases = [c for c in ds.cases if c.answerable and c.evidence]
    print(f"dev set: {len(cases)} answerable cases with evidence ({len(ds.cases)} in all)\n")
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
