"""Markdown: headings give the heading path; paragraphs, lists and code fences are blocks."""
from __future__ import annotations

import re

from zhiku.ingest.decode import decode_text
from zhiku.ingest.parsers import HeadingStack, trim_span
from zhiku.types import Block, ParsedDoc

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))??(?:[ \t]+#+)?[ \t]*$")
MAX_SETEXT_TITLE = 120
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_NOT_SETEXT_TEXT = re.compile(r"^ {0,3}(?:[-*+>|]|\d+[.)])(?:\s|$)")
_IMAGE = r"(?:\[\s*)?!\[[^\]]*\](?:\([^)]*\)|\[[^\]]*\])(?:\s*\]\([^)]*\))?"
_IMAGE_LINE = re.compile(rf"^\s*(?:(?:{_IMAGE}|<img\b[^>]*>)\s*)+$", re.IGNORECASE)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def parse(data: bytes, name: str) -> ParsedDoc:
    """Decode ``data`` and split it into heading-aware blocks."""
    raw, encoding = decode_text(data)
    lines = _clean_lines(_FRONT_MATTER.sub("", raw, count=1))
    text = "\n".join(lines)
    if not text.strip():
        return ParsedDoc(text="", blocks=(), encoding=encoding)
    return ParsedDoc(text=text, blocks=tuple(_Splitter(text, lines).run()), encoding=encoding)


def _clean_lines(text: str) -> list[str]:
    """The lines of ``text`` without image-only lines (lines inside code fences are kept)."""
    kept: list[str] = []
    fence = ""
    for line in text.split("\n"):
        if fence:
            fence = "" if _closes(line, fence) else fence
        elif m := _FENCE.match(line):
            fence = m.group(1)
        elif _IMAGE_LINE.match(line):
            continue
        kept.append(line)
    return kept


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


class _Splitter:
    """Walks the cleaned lines, tracking offsets, headings, paragraphs and fences."""

    def __init__(self, text: str, lines: list[str]) -> None:
        self.text = text
        self.lines = lines
        self.headings = HeadingStack()
        self.blocks: list[Block] = []
        self.para: list[int] = []  # indexes of the current paragraph's lines
        self.para_path: tuple[str, ...] = ()
        self.offsets: list[int] = []
        pos = 0
        for line in lines:
            self.offsets.append(pos)
            pos += len(line) + 1

    def run(self) -> list[Block]:
        i = 0
        while i < len(self.lines):
            i = self._step(i)
        self._close_paragraph()
        return self.blocks

    def _step(self, i: int) -> int:
        """Handle line ``i``; return the index of the next line to look at."""
        line = self.lines[i]
        if m := _FENCE.match(line):
            self._close_paragraph()
            return self._fence(i, m.group(1))
        if m := _ATX.match(line):
            self._close_paragraph()
            self.headings.push(len(m.group(1)), _plain_title(m.group(2) or ""))
        elif (m := _SETEXT.match(line)) and self._setext_ok(m.group(1)):
            title = _plain_title(self.lines[self.para[0]])
            self.para = []
            self.headings.push(1 if m.group(1)[0] == "=" else 2, title)
        elif not line.strip() or _BREAK.match(line):
            self._close_paragraph()
        else:
            if not self.para:
                self.para_path = self.headings.path
            self.para.append(i)
        return i + 1

    def _setext_ok(self, underline: str) -> bool:
        """A setext heading is one short line over a '===' or '--' underline.

        Stricter than CommonMark on purpose: in notes and chat exports a lone "-" (an empty
        list item) under a long paragraph must not turn the whole paragraph into a heading.
        """
        if len(self.para) != 1 or (underline[0] == "-" and len(underline) < 2):
            return False
        line = self.lines[self.para[0]]
        return len(line.strip()) <= MAX_SETEXT_TITLE and not _NOT_SETEXT_TEXT.match(line)

    def _fence(self, i: int, fence: str) -> int:
        """Add the fenced code block starting at line ``i`` as one block; return the line after it."""
        j = i + 1
        while j < len(self.lines) and not _closes(self.lines[j], fence):
            j += 1
        last = min(j, len(self.lines) - 1)
        self._add(i, last, self.headings.path)
        return j + 1

    def _close_paragraph(self) -> None:
        if self.para:
            self._add(self.para[0], self.para[-1], self.para_path)
            self.para = []

    def _add(self, first: int, last: int, path: tuple[str, ...]) -> None:
        span = trim_span(self.text, self.offsets[first], self.offsets[last] + len(self.lines[last]))
        if span:
            self.blocks.append(Block(span[0], span[1], path))


def _plain_title(title: str) -> str:
    """Heading text without link targets: "[李沐讲座](https://…)" → "李沐讲座"."""
    return _LINK.sub(r"\1", title).strip()
