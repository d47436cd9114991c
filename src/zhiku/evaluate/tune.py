"""``zhiku tune``: find better chunking and search settings for a knowledge base on a question set.

Coordinate ascent from the current settings, cheapest first:
1. chunking (size/overlap): each candidate is built once as a copy of the knowledge base under
   ``<home>/tune/<kb>/<chunking>/`` from the same files (later runs reuse it; unchanged files are
   skipped by hash), and measured with the current search settings;
2. search on the best copy, one dimension at a time with the others fixed at the best so far:
   mode, RRF k, lexical/vector weights, candidates per retriever;
3. with ``--answers``: passages given to the model (top-k) and rerank on/off, measured on answers.

Each measured configuration is a leaderboard row with its figures and cost. Settings are written
to the config only when asked (``--write``), and only when they beat the current ones.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import ChunkSettings, Settings
from .case_metrics import RETRIEVAL
from .compare import paired_bootstrap
from .dataset import Dataset
from .runner import EvalOptions, run_eval

CHUNKINGS = ((150, 40), (250, 80), (400, 100), (600, 150))  # (max_chars, overlap_chars)
SEARCH_GRID: dict[str, tuple] = {
    "mode": ("hybrid", "lexical", "vector"),
    "rrf_k": (10, 30, 60, 100),
    "weights": ((1.0, 1.0), (1.5, 1.0), (1.0, 1.5), (2.0, 1.0), (1.0, 2.0)),
    "candidates": (20, 50, 100),
}
PASSAGES = (3, 5, 8)  # answer.max_passages: how many retrieved passages the model reads


@dataclass(frozen=True)
class TuneOptions:
    metric: str = "hit@5"
    quick: bool = False  # no re-chunking
    answers: bool = False  # stage 3: measure answers (needs the model; minutes per configuration)
    rerank: bool = False  # stage 3 also tries answer.rerank = llm
    limit: int = 0


@dataclass
class Row:
    settings: dict  # dotted keys that differ from the knowledge base's current settings
    metrics: dict
    per_case: dict  # case id -> value of the tuned metric (for the interval against the baseline)
    seconds: float  # evaluating the question set
    build_s: float = 0.0  # building the chunking copy (0 when reused or not needed)
    chunks: int = 0
    stage: str = ""


@dataclass
class Leaderboard:
    metric: str
    rows: list[Row] = field(default_factory=list)
    baseline: Row | None = None
    best: Row | None = None
    interval: tuple[float, float, float] | None = None  # best vs baseline: delta, low, high
    notes: list[str] = field(default_factory=list)

    def ranked(self) -> list[Row]:
        return sorted(self.rows, key=lambda r: _key(r, self.metric), reverse=True)

    def as_dict(self) -> dict:
        row = lambda r: {k: v for k, v in dataclasses.asdict(r).items() if k != "per_case"}  # noqa: E731
        return {"metric": self.metric, "baseline": row(self.baseline) if self.baseline else None,
                "best": row(self.best) if self.best else None, "interval": self.interval,
                "rows": [row(r) for r in self.ranked()], "notes": self.notes}


def _key(row: Row, metric: str) -> tuple:
    """Ranking key: the metric, then MRR and nDCG@10 to break ties, then the faster (display order only)."""
    m = row.metrics
    return (m.get(metric) or 0.0, m.get("mrr") or 0.0, m.get("ndcg@10") or 0.0, -row.seconds)


def _beats(row: Row, other: Row, metric: str) -> bool:
    """Strictly better on quality; timing never decides (it is noise between identical configurations)."""
    return _key(row, metric)[:3] > _key(other, metric)[:3]


class _MemoQueries:
    """The knowledge base's embedder with query vectors remembered: every configuration asks the same questions."""

    def __init__(self, embedder) -> None:
        self._embedder, self._seen = embedder, {}

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_query(self, text: str):
        if text not in self._seen:
            self._seen[text] = self._embedder.embed_query(text)
        return self._seen[text]


def tune(kb, dataset: Dataset, options: TuneOptions, progress: Callable[[str], None] = print) -> Leaderboard:
    """Measure configurations and return the leaderboard; ``kb`` is left as it was."""
    original = kb.embedder
    kb.embedder = _MemoQueries(original)
    try:
        return _tune(kb, dataset, options, progress)
    finally:
        kb.embedder = original


def _tune(kb, dataset: Dataset, options: TuneOptions, progress: Callable[[str], None]) -> Leaderboard:
    board = Leaderboard(options.metric)
    # retrieval stages are judged on retrieval: tuning an answer metric picks retrieval by hit@5 first
    search = options if options.metric in RETRIEVAL else dataclasses.replace(options, metric="hit@5")
    board.baseline = _measure(kb, dataset, search, {}, "current", retrieval_only=True)
    board.rows.append(board.baseline)
    progress(f"current settings: {search.metric} {_fmt(board.baseline.metrics.get(search.metric))}")
    best_kb, best = kb, board.baseline
    if not options.quick:
        best_kb, best = _chunk_stage(kb, dataset, search, board, progress)
    best = _search_stage(best_kb, dataset, search, board, best, progress)
    if options.answers and options.metric in RETRIEVAL:
        board.notes.append(f"answer stage skipped: {options.metric} does not depend on answer settings "
                           "(tune an answer metric, e.g. --metric accuracy)")
    elif options.answers:
        progress("answers: the current settings first, then the best retrieval settings (slow)…")
        board.baseline = _measure(kb, dataset, options, {}, "current", retrieval_only=False)
        board.rows.append(board.baseline)
        best = _answer_stage(best_kb, dataset, options, board, best, progress)
    if best_kb is not kb:
        best_kb.close()
    board.best = best if _beats(best, board.baseline, options.metric) else None
    if board.best is not None:
        ids = [cid for cid in board.baseline.per_case if cid in board.best.per_case]
        board.interval = paired_bootstrap([board.baseline.per_case[i] for i in ids],
                                          [board.best.per_case[i] for i in ids])
    else:
        board.notes.append("no configuration beat the current settings")
    return board


def _measure(kb, dataset, options: TuneOptions, changed: dict, stage: str, retrieval_only: bool,
             overrides: dict | None = None) -> Row:
    target = _with(kb, overrides or changed)
    t0 = time.perf_counter()
    run = run_eval(target, dataset, EvalOptions(retrieval_only=retrieval_only, limit=options.limit))
    per_case = {c["id"]: c["metrics"].get(options.metric) for c in run.cases if not c["error"]}
    return Row(dict(changed), run.metrics["metrics"], {k: v for k, v in per_case.items() if v is not None},
               round(time.perf_counter() - t0, 2), chunks=target.store.chunk_count(), stage=stage)


def _with(kb, changed: dict):
    if not changed:
        return kb
    sections: dict[str, dict] = {}
    for key, value in changed.items():
        if key.startswith("chunk."):
            continue  # a chunking change is a different copy, opened by the caller
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    settings = kb.settings
    for section, values in sections.items():
        settings = dataclasses.replace(settings, **{section: dataclasses.replace(getattr(settings, section), **values)})
    return seen_with(kb, settings)


def seen_with(kb, settings: Settings):
    """The same open knowledge base (store, embedder, segmenter shared) with other search/answer settings.

    Not to be closed: it does not own the store.
    """
    from ..kb import KnowledgeBase
    return KnowledgeBase(kb.name, settings, kb.store, kb.embedder, kb.segmenter)


def _chunk_stage(kb, dataset, options, board, progress):
    current = (kb.settings.chunk.max_chars, kb.settings.chunk.overlap_chars)
    best_kb, best = kb, board.baseline
    for max_chars, overlap in CHUNKINGS:
        if (max_chars, overlap) == current:
            continue
        changed = {"chunk.max_chars": max_chars, "chunk.overlap_chars": overlap}
        progress(f"chunking {max_chars}/{overlap}: building a copy (reused when built before)…")
        copy, build_s, notes = chunked_copy(kb, dataclasses.replace(kb.settings.chunk, max_chars=max_chars,
                                                                     overlap_chars=overlap))
        board.notes.extend(notes)
        row = _measure(copy, dataset, options, changed, "chunking", retrieval_only=True)
        row.build_s = build_s
        board.rows.append(row)
        progress(f"  {options.metric} {_fmt(row.metrics.get(options.metric))} ({row.chunks} chunks, "
                 f"built in {build_s:.0f} s)")
        if _beats(row, best, options.metric):
            if best_kb is not kb:
                best_kb.close()
            best_kb, best = copy, row
        else:
            copy.close()
    return best_kb, best


def chunked_copy(kb, chunk: ChunkSettings):
    """The knowledge base's files chunked with ``chunk``, in a copy under ``<home>/tune/``."""
    from ..ingest.chunker import fingerprint
    from ..ingest.discover import Found
    from ..kb import KnowledgeBase
    from ..errors import EmbedderMismatch
    home = kb.settings.home / "tune" / kb.name / fingerprint(chunk)[:12]
    settings = dataclasses.replace(kb.settings, home=home, chunk=chunk)
    try:
        copy = KnowledgeBase.open(kb.name, settings=settings, embedder=kb.embedder)
    except EmbedderMismatch:  # built before an embedder change: stale, build it again
        shutil.rmtree(home)
        copy = KnowledgeBase.open(kb.name, settings=settings, embedder=kb.embedder)
    copy.segmenter = kb.segmenter  # the user dictionary lives in the real home
    t0 = time.perf_counter()
    ingestor, notes = copy._ingestor(), []
    records = kb.documents()
    for record in records:
        outcome = ingestor.add_one(Found(record.path, record.source, os_path=record.path), _Quiet())
        stored = copy.store.get_source(record.path)
        if outcome.status == "skipped":
            notes.append(f"tune copy: {record.source} skipped ({outcome.reason})")
        elif stored is not None and stored.content_hash != record.content_hash:
            notes.append(f"tune copy: {record.source} changed on disk since it was added; the copy has the new "
                         "text (run zhiku sync to update the knowledge base)")
    wanted = {r.path for r in records}
    for extra in copy.documents():  # removed from the knowledge base since the copy was built
        if extra.path not in wanted:
            copy.store.remove_source(extra.path)
    return copy, time.perf_counter() - t0, notes


class _Quiet:
    def chunks_embedded(self, n: int) -> None:
        pass


def _search_stage(kb, dataset, options, board, best: Row, progress) -> Row:
    chunk_part = {k: v for k, v in best.settings.items() if k.startswith("chunk.")}
    current = dict(chunk_part)
    for dim, values in SEARCH_GRID.items():
        mode = current.get("retrieve.mode", kb.settings.retrieve.mode)
        if dim != "mode" and mode != "hybrid":
            continue  # fusion settings do nothing outside hybrid mode
        for value in values:
            trial = _trial(kb.settings, chunk_part, {**current, **_dim(dim, value)})
            if trial == current or any(r.settings == trial for r in board.rows):
                continue
            row = _try(kb, dataset, options, board, trial, "search", progress)
            if _beats(row, best, options.metric):
                best, current = row, trial
    return best


def _answer_stage(kb, dataset, options, board, best: Row, progress) -> Row:
    base = dict(best.settings)
    top = board.baseline  # the current settings measured with answers
    if base:
        first = _try(kb, dataset, options, board, base, "answers", progress)
        top = first if _beats(first, top, options.metric) else top
    chunk_part = {k: v for k, v in base.items() if k.startswith("chunk.")}
    trials = [{"answer.max_passages": n} for n in PASSAGES]
    if options.rerank:
        trials.append({"answer.rerank": "llm"})
    for extra in trials:
        trial = _trial(kb.settings, chunk_part, {**base, **extra})
        if trial == base:
            continue
        row = _try(kb, dataset, options, board, trial, "answers", progress)
        if _beats(row, top, options.metric):
            top = row
    return top


def _trial(settings: Settings, chunk_part: dict, wanted: dict) -> dict:
    """A configuration: the copy's chunking plus the other settings that differ from ``settings``."""
    rest = {k: v for k, v in wanted.items() if not k.startswith("chunk.")}
    return {**chunk_part, **_differing(settings, rest)}


def _try(kb, dataset, options, board, trial: dict, stage: str, progress) -> Row:
    """Measure ``trial`` on ``kb`` (already chunked as the trial says), add it to the board, report it."""
    row = _measure(kb, dataset, options, trial, stage, retrieval_only=stage != "answers",
                   overrides={k: v for k, v in trial.items() if not k.startswith("chunk.")})
    board.rows.append(row)
    progress(f"  {describe(trial)}: {options.metric} {_fmt(row.metrics.get(options.metric))}")
    return row


def _differing(settings: Settings, trial: dict) -> dict:
    """Only the keys whose value differs from ``settings`` (a trial equal to them is the baseline)."""
    out = {}
    for key, value in trial.items():
        section, name = key.split(".")
        if getattr(getattr(settings, section), name) != value:
            out[key] = value
    return out


def _dim(dim: str, value) -> dict:
    if dim == "weights":
        return {"retrieve.lexical_weight": value[0], "retrieve.vector_weight": value[1]}
    return {f"retrieve.{dim}": value}


SHORT = {"chunk.max_chars": "chunk", "chunk.overlap_chars": "overlap", "retrieve.mode": "mode",
         "retrieve.rrf_k": "rrf_k", "retrieve.lexical_weight": "lex_w", "retrieve.vector_weight": "vec_w",
         "retrieve.candidates": "cand", "answer.max_passages": "passages", "answer.rerank": "rerank"}


def describe(settings: dict) -> str:
    """A short label for a configuration: only what differs from the current settings."""
    return " ".join(f"{SHORT.get(k, k)}={v}" for k, v in settings.items()) or "(current)"


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def write_choice(home: Path, row: Row) -> Path:
    """Merge ``row.settings`` into ``home/config.toml``; the file as it was is kept as config.toml.bak-TIME."""
    import tomllib
    path = home / "config.toml"
    current: dict = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for key, value in row.settings.items():
        section, name = key.split(".")
        current.setdefault(section, {})[name] = value
    if path.exists():
        backup = home / f"config.toml.bak-{time.strftime('%Y%m%d-%H%M%S')}"
        backup.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(_toml(current), encoding="utf-8")
    tmp.replace(path)
    return path


def _toml(data: dict) -> str:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for name, value in values.items():
            lines.append(f"{name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    import json
    return json.dumps(str(value), ensure_ascii=False)
