"""Plain text: paragraphs separated by blank lines."""
from __future__ import annotations

from zhiku.ingest.decode import decode_text
from zhiku.ingest.parsers import paragraph_spans
from zhiku.types import Block, ParsedDoc


def parse(data: bytes, name: str) -> ParsedDoc:
    """Decode ``data`` and split it into paragraph blocks."""
    text, encoding = decode_text(data)
    if not text.strip():
        return ParsedDoc(text="", blocks=(), encoding=encoding)
    blocks = tuple(Block(s, e) for s, e in paragraph_spans(text))
    return ParsedDoc(text=text, blocks=blocks, encoding=encoding)
