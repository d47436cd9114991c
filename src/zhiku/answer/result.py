"""The value an answer step returns; ``as_dict`` is the ``zhiku ask --json`` shape."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..types import Hit


@dataclass
class Answer:
    question: str
    answer: str = ""
    refused: bool = False
    refusal_reason: str = ""  # no_hits | weak_evidence | model | ungrounded
    draft: str = ""  # ungrounded: the model's answer that was withheld
    grounding: float | None = None  # share of what the answer adds that the passages hold (None: not judged)
    mode: str = "llm"  # llm | extractive
    standalone: str = ""  # the question as retrieved: a follow-up rewritten, else the question
    citations: list[dict] = field(default_factory=list)  # passages the answer cites
    passages: list[dict] = field(default_factory=list)  # every passage given to the model
    check: dict = field(default_factory=dict)  # citation check: invalid numbers, unsupported sentences
    hits: tuple[Hit, ...] = ()
    evidence: float = 0.0  # evidence strength, 0–1 (see answer/refusal.py)
    partial: bool = False  # the reply was cut off (stream interrupted / max_tokens)
    error: str = ""
    generator: str = ""
    usage: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "draft_answer": self.draft,
            "grounding": None if self.grounding is None else round(self.grounding, 4),
            "mode": self.mode,
            "standalone_question": self.standalone,
            "citations": self.citations,
            "hits": [h.as_dict() for h in self.hits],
            "check": self.check,
            "evidence_strength": round(self.evidence, 4),
            "partial": self.partial,
            "error": self.error,
            "generator": self.generator,
            "usage": self.usage,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "warnings": self.warnings,
        }
