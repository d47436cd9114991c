"""The answer step: retrieve → judge evidence → pack → prompt → stream → check citations.

Works with any ``Generator``; with none (``--no-llm`` or ``generate.backend = "none"``) it returns
an extractive answer built from the best passages.
"""
from __future__ import annotations

import dataclasses
import re
import time
from typing import Callable, Sequence

from ..backends.generator import Generator, Message, Sampling, estimate_tokens
from ..config import AnswerSettings, GenerateSettings
from ..errors import ContextTooSmall, StreamInterrupted, UsageError
from .citations import (SUPPORT_THRESHOLD, check_citations, clean_invalid, find_markers, novel_support,
                        strip_markers, support)
from .packing import MIN_PASSAGE_TOKENS, pack, render
from .prompts import REFUSAL, language_of, template
from .refusal import evidence_strength, is_decline
from .rerank import Scorer, rerank
from .result import Answer

ANSWER_MARGIN = 16  # tokens for the chat template's role markers
REWRITE_TOKENS = 64
HISTORY_ANSWER_CHARS = 300  # earlier answers are shortened in the prompt: the question is what matters


@dataclasses.dataclass(frozen=True)
class Turn:
    question: str
    answer: str


def sampling_from(cfg: GenerateSettings) -> Sampling:
    return Sampling(cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_tokens, cfg.seed)


class Answerer:
    def __init__(self, kb, generator: Generator | None, answer_cfg: AnswerSettings, sampling: Sampling,
                 scorer: Scorer | None = None) -> None:
        self.kb = kb
        self.scorer = scorer
        self._warm_lang = ""
        self.generator = generator
        self.cfg = answer_cfg
        self.sampling = sampling

    def warm(self, lang: str = "zh") -> str:
        """Load the answer system prompt's KV cache (restored from disk when saved before).

        Runs before the first question of a language in a process; the embedded runtime then
        reuses it for every question. Returns what happened ("restored", "computed", "").
        """
        warm = getattr(self.generator, "warm", None)
        self._warm_lang = lang
        return warm([Message("system", template("answer", lang).system)]) if warm else ""

    def ask(self, question: str, history: Sequence[Turn] = (), on_token: Callable[[str], None] | None = None,
            extractive: bool = False) -> Answer:
        question = (question or "").strip()
        if not question:
            raise UsageError("the question is empty", "ask a question, e.g. zhiku ask \"数据决定什么？\"")
        t0 = time.perf_counter()
        lang = language_of(question)
        use_llm = self.generator is not None and not extractive
        out = Answer(question=question, mode="llm" if use_llm else "extractive",
                     generator=self.generator.name if use_llm else "")
        history = list(history)[-self.cfg.history_turns:] if self.cfg.history_turns > 0 else []
        out.standalone = self._standalone(question, history, lang, use_llm, out)
        t1 = time.perf_counter()
        result = self.kb.search(out.standalone)
        out.timings["retrieve_s"] = time.perf_counter() - t1
        out.warnings.extend(result.warnings)
        out.hits = result.hits
        if self.scorer is not None and result.hits:
            t1 = time.perf_counter()
            out.hits = rerank(out.standalone, result.hits, self.scorer, self.cfg.rerank_top)
            out.timings["rerank_s"] = time.perf_counter() - t1
        if not result.hits:
            return self._refuse(out, lang, "no_hits", t0)
        out.evidence = evidence_strength(result.terms, out.hits,
                                         self.kb.store.document_frequencies(list(result.terms)),
                                         self.kb.store.chunk_count())
        if out.evidence < self.cfg.min_evidence:
            return self._refuse(out, lang, "weak_evidence", t0)
        if not use_llm:
            return self._extractive(out, result.terms, t0)
        return self._generate(out, history, lang, on_token, t0, result.terms)

    # -- steps -------------------------------------------------------------------
    def _standalone(self, question: str, history: list[Turn], lang: str, use_llm: bool, out: Answer) -> str:
        if not history:
            return question
        if not use_llm:  # no model to rewrite with: retrieve with the previous question's words as context
            return f"{history[-1].question} {question}"
        t = time.perf_counter()
        shown = "\n".join(f"Q: {h.question}\nA: {strip_markers(h.answer)[:HISTORY_ANSWER_CHARS]}" for h in history)
        messages = template("rewrite", lang).messages(history=shown, question=question)
        sampling = dataclasses.replace(self.sampling, temperature=0.0, max_tokens=REWRITE_TOKENS)
        rewritten = self.generator.complete(messages, sampling).strip().splitlines()
        out.timings["rewrite_s"] = time.perf_counter() - t
        text = rewritten[0].strip() if rewritten else ""
        text = re.sub(r"^(改写后的问题|rewritten question)[:：]\s*", "", text, flags=re.IGNORECASE).strip()
        return text if 2 <= len(text) <= 4 * len(question) + 200 else question

    def _refuse(self, out: Answer, lang: str, reason: str, t0: float) -> Answer:
        out.answer, out.refused, out.refusal_reason = REFUSAL[lang], True, reason
        out.timings["total_s"] = time.perf_counter() - t0
        return out

    def _extractive(self, out: Answer, terms: Sequence[str], t0: float) -> Answer:
        from .extractive import extractive_answer
        ex = extractive_answer(list(terms), list(out.hits))
        out.answer = ex.text
        out.citations = [{"n": p.n, "source": p.hit.chunk.source, "chunk_id": p.hit.chunk.chunk_id,
                          "heading_path": list(p.hit.chunk.heading_path), "text": p.hit.chunk.text,
                          "highlights": [list(s) for s in p.spans]} for p in ex.passages]
        out.passages = out.citations
        out.timings["total_s"] = time.perf_counter() - t0
        return out

    def _generate(self, out: Answer, history: list[Turn], lang: str,
                  on_token: Callable[[str], None] | None, t0: float, terms: Sequence[str]) -> Answer:
        tpl = template("answer", lang)
        history_msgs = _history_messages(history)
        # the standalone question: a small model answers "那它呢？" by echoing it, the rewrite it can answer
        fixed = (estimate_tokens(tpl.system) + estimate_tokens(tpl.user) + estimate_tokens(out.standalone)
                 + sum(estimate_tokens(m.content) for m in history_msgs) + ANSWER_MARGIN)
        window = self.generator.context_window
        budget = min(self.cfg.context_tokens, window - fixed - self.sampling.max_tokens)
        if budget < MIN_PASSAGE_TOKENS:
            raise ContextTooSmall(
                f"the question{' and chat history' if history else ''} leave no room for passages in the "
                f"model's {window}-token context window (answer reserve {self.sampling.max_tokens})",
                "ask a shorter question, lower generate.max_tokens, or raise generate.context_window")
        passages = pack(out.hits, budget, self.cfg.max_passages, terms if self.cfg.focus else ())
        out.passages = [p.as_citation() for p in passages]
        messages = [Message("system", tpl.system), *history_msgs,
                    Message("user", tpl.user.format(passages=render(passages), question=out.standalone))]
        if self._warm_lang != lang:
            t = time.perf_counter()
            out.usage["warm"] = self.warm(lang)
            out.timings["warm_s"] = time.perf_counter() - t
        pieces: list[str] = []
        t = time.perf_counter()
        try:
            for piece in self.generator.stream(messages, self.sampling):
                if piece.text:
                    if not pieces:
                        out.timings["first_token_s"] = time.perf_counter() - t0
                    pieces.append(piece.text)
                    if on_token:
                        on_token(piece.text)
                if piece.finish_reason:
                    out.usage.update(piece.usage)
                    if piece.finish_reason == "length":
                        out.partial = True
                        out.warnings.append(f"the answer was cut at generate.max_tokens={self.sampling.max_tokens}")
        except StreamInterrupted as exc:
            pieces = [exc.partial] if exc.partial else pieces
            out.partial, out.error = True, exc.message
        out.timings["generate_s"] = time.perf_counter() - t
        raw = "".join(pieces).strip()
        valid = {p.n for p in passages}
        out.answer = clean_invalid(raw, valid)
        out.refused = is_decline(out.answer)
        if out.refused:
            out.refusal_reason = "model"
        texts = {p.n: p.render() for p in passages}  # the label (file, headings) is part of what the model read
        if not out.refused and out.answer and not out.error:
            out.grounding = novel_support(out.answer, out.standalone, list(texts.values()))
            if out.grounding is not None and out.grounding < self.cfg.min_grounding:
                out.draft, out.answer = out.answer, REFUSAL[lang]
                out.refused, out.refusal_reason = True, "ungrounded"
        report = check_citations(out.answer, texts, refusal=out.refused)
        attributed = None
        if report.uncited and not out.refused and out.answer and not out.partial:
            attributed = _attribute(out.answer, texts)
            if attributed is not None:
                out.answer = _append_marker(out.answer, attributed)
                report = check_citations(out.answer, texts)
        corrected: list[dict] = []
        if not out.refused and report.unsupported:
            out.answer, corrected = _repoint(out.answer, report, texts)
            if corrected:
                report = check_citations(out.answer, texts)
        out.check = {**report.as_dict(), "attributed": [attributed] if attributed is not None else [],
                     "corrected": corrected,
                     "invalid": _invalid(raw, valid)}  # the shown answer has them removed
        cited = set(report.cited)
        out.citations = [c for c in out.passages if c["n"] in cited]
        out.timings["total_s"] = time.perf_counter() - t0
        return out


def _attribute(answer: str, passages: dict[int, str]) -> int | None:
    """The passage that best supports an answer the model left uncited, if it supports it well enough.

    Small models often answer correctly from the passages but forget the ``[n]``. zhiku then cites
    the passage with the highest support score itself and says so in ``check.attributed``; an answer
    no passage supports stays uncited and flagged.
    """
    if not passages:
        return None
    best, n = _best_passage(answer, passages)
    return n if best >= SUPPORT_THRESHOLD else None


def _best_passage(text: str, passages: dict[int, str]) -> tuple[float, int]:
    """(support, number) of the passage that best supports ``text``; ties go to the lower number."""
    return max(((support(text, [p]), n) for n, p in passages.items()), key=lambda x: (x[0], -x[1]))


def _repoint(answer: str, report, passages: dict[int, str]) -> tuple[str, list[dict]]:
    """Move a citation to the passage that supports its sentence when the cited one does not.

    Small models often pick the wrong number (the evidence is in [1], the answer says [2]). When
    another passage supports the sentence at the threshold and the cited one does not, the marker is
    rewritten and the change listed in ``check.corrected``; unsupported sentences with no better
    passage stay flagged.
    """
    edits: list[tuple[int, int, str]] = []
    corrected: list[dict] = []
    for sent in report.unsupported:
        if not sent.cited:
            continue
        best, n = _best_passage(sent.text, passages)
        if best < SUPPORT_THRESHOLD or n in sent.cited:
            continue
        for start, end, nums in find_markers(answer):
            if sent.start <= start < sent.end:
                edits.append((start, end, f"[{n}]"))
        corrected.append({"sentence": sent.text, "from": list(sent.cited), "to": n})
    for start, end, repl in sorted(set(edits), reverse=True):
        answer = answer[:start] + repl + answer[end:]
    return answer, corrected


def _append_marker(answer: str, n: int) -> str:
    body = answer.rstrip()
    if body and body[-1] in "。.！!？?":
        return f"{body[:-1]}[{n}]{body[-1]}"
    return f"{body}[{n}]"


def _invalid(raw: str, valid: set[int]) -> list[int]:
    return sorted({n for _s, _e, nums in find_markers(raw) for n in nums if n not in valid})


def _history_messages(history: list[Turn]) -> list[Message]:
    msgs: list[Message] = []
    for turn in history:
        msgs.append(Message("user", turn.question))
        msgs.append(Message("assistant", strip_markers(turn.answer)[:HISTORY_ANSWER_CHARS]))
    return msgs

