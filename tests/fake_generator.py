"""FAKE generator for unit tests only: replies from a script, records the prompts it was given."""
from __future__ import annotations

from typing import Callable, Iterator

from zhiku.backends.generator import Generator, Message, Piece, Sampling
from zhiku.errors import StreamInterrupted


class ScriptedGenerator(Generator):
    """Replies with ``reply(messages)``; ``cut_after`` pieces then a StreamInterrupted, if set."""

    name = "fake:scripted"

    def __init__(self, reply: Callable[[list[Message]], str] | str, context_window: int = 4096,
                 cut_after: int | None = None) -> None:
        self.reply = reply if callable(reply) else (lambda _m: reply)
        self.context_window = context_window
        self.cut_after = cut_after
        self.calls: list[tuple[list[Message], Sampling]] = []

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[Piece]:
        self.calls.append((messages, sampling))
        text = self.reply(messages)
        pieces = [text[i:i + 3] for i in range(0, len(text), 3)]
        for i, p in enumerate(pieces):
            if self.cut_after is not None and i == self.cut_after:
                raise StreamInterrupted("connection closed mid-answer", partial="".join(pieces[:i]))
            yield Piece(text=p)
        yield Piece(finish_reason="stop", usage={"completion_tokens": len(pieces)})
