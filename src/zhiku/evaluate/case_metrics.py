"""Per-case metric values and their aggregate (the shapes of docs/evaluation-format.md)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from ..types import Hit, StoredChunk
from .dataset import Case, evidence_spans, holds_evidence, matches_keywords, squash
from .metrics import hit_at, mean_of_known, ndcg_at, reciprocal_rank, spread

RETRIEVAL = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10")
ANSWERS = ("accuracy", "correct_and_cited", "citation_support", "refusal", "false_refusal", "unsupported_rate")
LOWER_IS_BETTER = ("false_refusal", "unsupported_rate")
STAGES = ("retrieve_s", "rewrite_s", "rerank_s", "warm_s", "first_token_s", "generate_s", "total_s")


class CaseScorer:
    """Judges hits and answers against a case's evidence and keywords.

    It reads every chunk once up front, so "how many chunks in the knowledge base hold this
    evidence" (the ideal for nDCG) is a lookup among the evidence source's chunks, not a scan.
    """

    def __init__(self, chunks: Iterable[StoredChunk]) -> None:
        self._by_source: dict[str, list[str]] = defaultdict(list)
        for c in chunks:
            self._by_source[c.source].append(squash(c.text))
        # every path suffix of a source ("notes/a.md" → "notes/a.md", "a.md"): evidence may name either
        self._by_suffix: dict[str, list[str]] = defaultdict(list)
        for source in self._by_source:
            parts = source.split("/")
            for i in range(len(parts)):
                self._by_suffix["/".join(parts[i:])].append(source)

    def n_relevant(self, case: Case) -> int:
        wanted: dict[str, list[str]] = defaultdict(list)
        for e in case.evidence:
            for source in self._by_suffix.get(e.source, ()):
                wanted[source].append(squash(e.text))
        return sum(any(w in t for w in ws) for source, ws in wanted.items() for t in self._by_source[source])

    def blank(self, case: Case) -> dict:
        return {"id": case.id, "question": case.question, "answerable": case.answerable,
                "synthetic": case.synthetic, "answer_keywords": [list(a) for a in case.answer_keywords],
                "evidence": [{"source": e.source, "text": e.text} for e in case.evidence],
                "hits": [], "first_relevant_rank": None, "n_relevant": 0, "answer": None, "refused": None,
                "refusal_reason": "", "citations": [], "unsupported": [], "sentences": 0,
                "metrics": {}, "timings": {}, "tokens": {}, "error": ""}

    def score_hits(self, record: dict, case: Case, hits: Sequence[Hit]) -> None:
        rel = []
        for h in hits:
            spans = evidence_spans(h.chunk.source, h.chunk.text, case.evidence) if case.evidence else []
            rel.append(bool(spans))
            record["hits"].append({"rank": h.rank, "source": h.chunk.source, "chunk_id": h.chunk.chunk_id,
                                   "heading_path": list(h.chunk.heading_path), "text": h.chunk.text,
                                   "relevant": bool(spans), "evidence_spans": [list(s) for s in spans],
                                   "trace": h.trace.as_dict()})
        record["first_relevant_rank"] = next((i for i, r in enumerate(rel, 1) if r), None)
        m = record["metrics"]
        if not case.evidence:  # nothing to find (unanswerable, or a set without evidence)
            m.update({k: None for k in RETRIEVAL})
            return
        n_rel = self.n_relevant(case)
        record["n_relevant"] = n_rel
        for k in (1, 3, 5, 10):
            m[f"hit@{k}"] = hit_at(rel, k)
        m["mrr"] = reciprocal_rank(rel)
        m["ndcg@10"] = ndcg_at(rel, 10, max(n_rel, sum(rel[:10])))

    def score_answer(self, record: dict, case: Case, answer) -> None:
        record.update(answer=answer.answer, refused=answer.refused, refusal_reason=answer.refusal_reason)
        record["citations"] = [{"n": c["n"], "source": c["source"], "chunk_id": c["chunk_id"], "text": c["text"],
                                "holds_evidence": holds_evidence(c["source"], c["text"], case.evidence)}
                               for c in answer.citations]
        sentences = answer.check.get("sentences", [])
        record["unsupported"] = [s["text"] for s in answer.check.get("unsupported", [])]
        record["sentences"] = len(sentences)
        record["timings"] = {k: round(v, 4) for k, v in answer.timings.items()}
        usage = answer.usage or {}
        record["tokens"] = {"prompt": int(usage.get("prompt_tokens", 0) or 0),
                            "completion": int(usage.get("completion_tokens", 0) or 0)}
        if answer.error:
            record["error"] = answer.error
        record["metrics"].update(answer_metrics(case, record))


def answer_metrics(case: Case, record: dict) -> dict:
    """Per-case answer metrics; None where a metric does not apply to the case."""
    refused = bool(record["refused"])
    answered = not refused and bool(record["answer"])
    cites_evidence = any(c["holds_evidence"] for c in record["citations"])
    m: dict = {k: None for k in ANSWERS}
    if case.answerable:
        m["false_refusal"] = float(refused)
        if case.answer_keywords:
            m["accuracy"] = float(answered and matches_keywords(record["answer"], case.answer_keywords))
            if case.evidence:
                m["correct_and_cited"] = float(bool(m["accuracy"]) and cites_evidence)
        if answered and case.evidence:
            m["citation_support"] = float(cites_evidence)
    else:
        m["refusal"] = float(refused)
    if answered and record["sentences"]:
        m["unsupported_rate"] = len(record["unsupported"]) / record["sentences"]
    return m


def aggregate(records: list[dict], retrieval_only: bool) -> dict:
    """metrics.json's body: counts, mean metric values over the cases they apply to, cost per stage."""
    ok = [r for r in records if not r["error"]]
    names = RETRIEVAL if retrieval_only else RETRIEVAL + ANSWERS
    values = {name: mean_of_known([r["metrics"].get(name) for r in ok]) for name in names}
    answered = [r for r in ok if r["answer"] and not r["refused"]]
    n_sent = sum(r["sentences"] for r in answered)
    if not retrieval_only:  # pooled over sentences, not a mean of per-case rates
        values["unsupported_rate"] = sum(len(r["unsupported"]) for r in answered) / n_sent if n_sent else None
    values = {k: (None if v is None else round(v, 4)) for k, v in values.items()}
    cost: dict = {s: spread([r["timings"][s] for r in ok if s in r["timings"]]) for s in STAGES}
    cost = {k: v for k, v in cost.items() if v["n"]}
    prompt = sum(r["tokens"].get("prompt", 0) for r in ok)
    completion = sum(r["tokens"].get("completion", 0) for r in ok)
    if not retrieval_only:
        cost["tokens"] = {"prompt": prompt, "completion": completion,
                          "prompt_per_case": round(prompt / len(ok), 1) if ok else 0.0,
                          "completion_per_case": round(completion / len(ok), 1) if ok else 0.0}
    counts = {"cases": len(records), "answerable": sum(r["answerable"] for r in records),
              "unanswerable": sum(not r["answerable"] for r in records),
              "with_evidence": sum(bool(r["evidence"]) for r in records),
              "evidence_not_in_kb": [r["id"] for r in ok if r["evidence"] and not r["n_relevant"]],
              "errors": len(records) - len(ok), "synthetic": sum(r["synthetic"] for r in records)}
    return {"counts": counts, "metrics": values,
            "higher_is_better": {k: k not in LOWER_IS_BETTER for k in values}, "cost": cost}
