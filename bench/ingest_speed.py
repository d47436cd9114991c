"""Ingestion speed of shared/corpus/llm-notes with the real embedder, and where the time goes.

    python bench/ingest_speed.py [--max-chars N] [--overlap N] [--batch N]

Baseline measured in the same run: embedding the very same chunk texts alone (the floor no
pipeline can beat with this embedder). Also reports a re-run on unchanged files and peak RSS.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CORPUS, peak_rss_mb  # noqa: E402

from zhiku import KnowledgeBase  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-chars", type=int, default=None)
    ap.add_argument("--overlap", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args()
    overrides = {k: v for k, v in (("chunk.max_chars", args.max_chars), ("chunk.overlap_chars", args.overlap),
                                   ("ingest.batch_size", args.batch)) if v is not None}
    home = tempfile.mkdtemp(prefix="zhiku-ingest-")
    with KnowledgeBase.open("bench", home=home, overrides=overrides) as kb:
        kb.embedder.embed_query("warm up")  # model load is not ingestion
        t0 = time.perf_counter()
        report = kb.add([str(CORPUS)])
        total = time.perf_counter() - t0
        chunks = list(kb.store.iter_chunks())
        texts = [c.embedding_text() for c in chunks]
        chars = sum(len(t) for t in texts)
        t0 = time.perf_counter()
        kb.embedder.embed_passages(texts, kb.settings.ingest.batch_size)
        embed_only = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = kb.add([str(CORPUS)])
        rerun = time.perf_counter() - t0
        print(f"chunking: {kb.settings.chunk}; batch {kb.settings.ingest.batch_size}")
    corpus_chars = sum(len(p.read_text(encoding="utf-8")) for p in CORPUS.glob("*.md"))
    print(f"corpus: {len(report.outcomes)} files, {corpus_chars} characters; "
          f"{len(chunks)} chunks, {chars} characters embedded ({chars / corpus_chars:.2f}x the corpus)")
    print(f"{'':<30} {'seconds':>8} {'chunks/s':>9}")
    print(f"{'zhiku add (full pipeline)':<30} {total:8.1f} {len(chunks) / total:9.1f}")
    print(f"{'baseline: embedding only':<30} {embed_only:8.1f} {len(chunks) / embed_only:9.1f}")
    print(f"pipeline overhead beyond embedding: {total - embed_only:.1f}s ({(total - embed_only) / total:.0%})")
    print(f"re-run on unchanged files: {rerun:.2f}s, {len(again.by_status('unchanged'))} unchanged, "
          f"{again.chunks_written} chunks written")
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
