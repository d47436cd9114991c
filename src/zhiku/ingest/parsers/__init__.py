"""Format dispatch and small helpers shared by the parsers.

Format modules are imported lazily, so importing this package pulls in no pypdf or python-docx.
"""
from __future__ import annotations

import importlib
import os

from zhiku.errors import ParseError, UnsupportedFile, ZhikuError
from zhiku.types import Block, ParsedDoc

EXTENSIONS: dict[str, str] = {
    ".txt": "txt",
    ".text": "txt",
    ".log": "txt",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv",
    ".tsv": "csv",
}
_MODULES = {"txt": "txt", "markdown": "markdown", "html": "html", "pdf": "pdf", "docx": "docx", "csv": "csvfile"}


def format_for(path: str) -> str | None:
    """The format name for ``path``'s extension (case-insensitive), or None if unsupported."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def parse_file(data: bytes, name: str, fmt: str) -> ParsedDoc:
    """Parse ``data`` (the content of the file ``name``) as format ``fmt``.

    Raises ParseError (UnsupportedFile for an unknown format) or MissingDependency.
    """
    module_name = _MODULES.get(fmt)
    if module_name is None:
        raise UnsupportedFile(
            f"unsupported file type: {name}",
            hint="supported extensions: " + ", ".join(sorted(EXTENSIONS)),
        )
    module = importlib.import_module(f"{__name__}.{module_name}")
    try:
        return module.parse(data, name)
    except ZhikuError:
        raise
    except Exception as exc:  # a parser bug or a library choking on odd input: skip the file, say why
        raise ParseError(f"could not parse {name} as {fmt}: {type(exc).__name__}: {exc}") from exc


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the paragraphs (runs of non-blank lines) in ``text[start:end]``, whitespace-trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    first: int | None = None
    last = pos = start
    while pos <= end:
        nl = text.find("\n", pos, end)
        line_end = end if nl < 0 else nl
        span = trim_span(text, pos, line_end)
        if span:
            first = span[0] if first is None else first
            last = span[1]
        elif first is not None:
            spans.append((first, last))
            first = None
        pos = line_end + 1
    if first is not None:
        spans.append((first, last))
    return spans


def trim_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``(start, end)`` narrowed to exclude surrounding whitespace; None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


class DocBuilder:
    """Accumulates text pieces joined by ``sep``; some pieces become blocks."""

    def __init__(self, sep: str = "\n\n") -> None:
        self.sep = sep
        self._parts: list[str] = []
        self._length = 0
        self._blocks: list[Block] = []

    def add(self, text: str, heading_path: tuple[str, ...] = (), block: bool = True) -> None:
        """Append ``text`` (stripped; ignored if empty); record it as a block unless ``block`` is False."""
        text = text.strip()
        if not text:
            return
        if self._parts:
            self._parts.append(self.sep)
            self._length += len(self.sep)
        self._parts.append(text)
        if block:
            self._blocks.append(Block(self._length, self._length + len(text), heading_path))
        self._length += len(text)

    def build(self, encoding: str | None = None) -> ParsedDoc:
        return ParsedDoc(text="".join(self._parts), blocks=tuple(self._blocks), encoding=encoding)


class HeadingStack:
    """Enclosing headings: a level-n heading replaces any previous entry of level >= n."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> None:
        while self._entries and self._entries[-1][0] >= level:
            self._entries.pop()
        if title:
            self._entries.append((level, title))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._entries)
