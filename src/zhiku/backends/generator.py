"""Generator: the one-method interface every LLM backend implements.

A backend turns chat messages into a stream of text pieces. Everything else (prompts, context
packing, citations, refusal) lives in ``zhiku.answer`` and works with any backend.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class Sampling:
    """Sampling controls shared by every generating command (see docs/configuration.md)."""

    temperature: float = 0.1
    top_k: int = 40
    top_p: float = 0.9
    max_tokens: int = 200
    seed: int = 42


@dataclass(frozen=True)
class Piece:
    """One streamed event: a text delta, and on the last event the finish reason and usage.

    ``finish_reason`` is ``stop`` (natural end), ``length`` (max_tokens reached) or ``None``
    while streaming. ``usage`` may hold ``prompt_tokens``, ``completion_tokens`` and
    ``cached_tokens`` (prompt tokens served from the KV cache).
    """

    text: str = ""
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)


class Generator(ABC):
    """Chat-completion backend. Implementations raise ``GeneratorError`` subclasses on failure.

    A stream that ends without a ``finish_reason`` (connection cut, process killed) must raise
    ``StreamInterrupted`` so callers can mark the partial answer as such.
    """

    name: str = "generator"
    context_window: int = 4096  # tokens the model can attend to, prompt + answer

    @abstractmethod
    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[Piece]:
        """Yield text pieces of the assistant's reply in order."""

    def complete(self, messages: list[Message], sampling: Sampling) -> str:
        """Convenience: the whole reply as one string."""
        return "".join(p.text for p in self.stream(messages, sampling))


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate of the token count of ``text`` for Qwen-style BPE vocabularies.

    Each CJK character counts as one token (Qwen2.5 averages about 0.7 per common Chinese
    character) and other text as one token per 3 characters (about 4 in English). Over-counting
    only packs a little less context; under-counting would overflow the window.
    """
    cjk = sum(1 for ch in text if _is_cjk(ch))
    return cjk + (len(text) - cjk + 2) // 3


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3000 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF or 0x20000 <= o <= 0x2FFFF
