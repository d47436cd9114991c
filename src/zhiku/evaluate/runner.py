"""Run a question set through retrieval (and answers) and measure every case.

    >>> from zhiku import KnowledgeBase                                     # doctest: +SKIP
    >>> from zhiku.evaluate.dataset import load_dataset
    >>> from zhiku.evaluate.runner import EvalOptions, run_eval
    >>> with KnowledgeBase.open("llm-notes") as kb:
    ...     run = run_eval(kb, load_dataset("dev.jsonl"), EvalOptions(retrieval_only=True))
    ...     print(run.metrics["metrics"]["hit@5"])

The output shapes (``cases``, ``metrics``) are documented in docs/evaluation-format.md.
Retrieval is measured on the hits the answer step itself used, so an eval with answers costs
what the answers cost: no second search.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ZhikuError
from .case_metrics import CaseScorer, aggregate
from .dataset import Case, Dataset

log = logging.getLogger(__name__)

K = 10  # retrieval depth every case is measured at (hit@10, nDCG@10)


@dataclass(frozen=True)
class EvalOptions:
    retrieval_only: bool = False
    extractive: bool = False  # answers without a model (--no-llm)
    limit: int = 0  # first N cases only (0 = all)
    judge: bool = False


@dataclass
class EvalRun:
    cases: list[dict]
    metrics: dict
    snapshot: dict = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    run_id: str = ""
    folder: str = ""


Progress = Callable[[int, int, dict], None]  # (done, total, the case just finished)


def run_eval(kb, dataset: Dataset, options: EvalOptions = EvalOptions(), answerer=None, judge=None,
             progress: Progress | None = None) -> EvalRun:
    """Measure every case of ``dataset`` on ``kb``; a case that fails is recorded with its error, not fatal."""
    cases = list(dataset.cases[:options.limit] if options.limit else dataset.cases)
    t0 = time.perf_counter()
    scorer = CaseScorer(kb.store.iter_chunks())
    if not options.retrieval_only and answerer is None:
        answerer = kb.answerer(extractive=options.extractive)
    records: list[dict] = []
    interrupted = False
    for i, case in enumerate(cases, 1):
        try:
            record = _one(kb, case, scorer, answerer, options.extractive, judge)
        except KeyboardInterrupt:  # keep what is done: the caller stores a partial run
            interrupted = True
            break
        records.append(record)
        if progress:
            progress(i, len(cases), record)
    metrics = aggregate(records, retrieval_only=options.retrieval_only)
    metrics["cost"]["wall_s"] = round(time.perf_counter() - t0, 3)
    metrics["counts"]["skipped_lines"] = len(dataset.problems)
    metrics["counts"]["not_run"] = len(cases) - len(records)
    metrics.update(kb=kb.name, dataset=dataset.path, retrieval_only=options.retrieval_only, interrupted=interrupted)
    warnings = []
    if not options.retrieval_only and kb.settings.retrieve.k < K:
        warnings.append(f"retrieve.k is {kb.settings.retrieve.k}: answers see that many hits, so hit@k for larger k "
                        "is measured on fewer than k hits")
    metrics["warnings"] = warnings
    return EvalRun(records, metrics, problems=dataset.problems)


def _one(kb, case: Case, scorer: CaseScorer, answerer, extractive: bool, judge) -> dict:
    """One case measured; an error is recorded in the case (its metrics cleared), never raised."""
    record = scorer.blank(case)
    try:
        if answerer is None:
            t = time.perf_counter()
            result = kb.search(case.question, k=K)
            seconds = round(time.perf_counter() - t, 4)
            record["timings"] = {"retrieve_s": seconds, "total_s": seconds}
            scorer.score_hits(record, case, result.hits[:K])
        else:
            answer = answerer.ask(case.question, extractive=extractive)
            scorer.score_hits(record, case, answer.hits[:K])
            scorer.score_answer(record, case, answer)
        if judge is not None and record["answer"] is not None and not record["error"]:
            record["judge"] = judge.judge_case(case, record)
            for name in ("correctness", "faithfulness"):
                record["metrics"][f"judge_{name}"] = record["judge"].get(name)
    except ZhikuError as exc:
        log.warning("case %s failed: %s", case.id, exc)
        record["error"] = str(exc)
    except Exception as exc:  # a bug: recorded with its type so the run still finishes and can be reported
        log.exception("case %s failed", case.id)
        record["error"] = f"unexpected {type(exc).__name__}: {exc}"
    if record["error"]:
        record["metrics"] = {}
    return record
