"""HTML via the stdlib parser: headings give the heading path; block elements are blocks."""
from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from zhiku.errors import ParseError
from zhiku.ingest.decode import decode_text, normalize_newlines
from zhiku.ingest.parsers import DocBuilder, HeadingStack
from zhiku.types import ParsedDoc

_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_ALIASES = {  # as browsers do: GBK/GB2312 → GB18030, Big5 → its Microsoft superset, Latin-1 → cp1252
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "cp950",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
}
_SKIP = frozenset({"script", "style", "noscript", "template", "head", "title"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    "p div li tr pre blockquote section article dd dt ul ol dl table thead tbody tfoot main header footer "
    "nav aside form figure figcaption address hr body html fieldset details summary caption".split()
)
_BR = "\x00"  # placeholder for <br> until whitespace is collapsed


def parse(data: bytes, name: str) -> ParsedDoc:
    """Decode ``data`` (``<meta charset>`` first) and extract its text blocks."""
    text, encoding = _decode(data)
    extractor = _Extractor()
    try:
        extractor.feed(text)
        extractor.close()
    except (AssertionError, ValueError) as exc:  # html.parser's reaction to hopeless markup
        raise ParseError(f"could not parse HTML: {exc}", hint="check that the file is an HTML page") from exc
    return extractor.doc.build(encoding)


def _decode(data: bytes) -> tuple[str, str]:
    """Use the charset declared in a ``<meta>`` tag when it decodes the bytes, else detect."""
    m = _META_CHARSET.search(data[:4096])
    if m and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = m.group(1).decode("ascii").lower()
        codec = _ALIASES.get(declared, declared)
        try:
            if not codecs.lookup(codec).name.startswith("utf-16"):
                return normalize_newlines(data.decode(codec)), codec
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)


class _Extractor(HTMLParser):
    """Collects blocks and headings into a DocBuilder."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = DocBuilder()
        self.headings = HeadingStack()
        self.skip: dict[str, int] = {}
        self.buf: list[str] = []
        self.heading_level = 0
        self.pre = 0
        self.row: list[list[str]] | None = None  # cells of the open table row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip[tag] = self.skip.get(tag, 0) + 1
        elif tag == "body" or tag in _HEADINGS or tag in _BLOCKS:
            self.skip.pop("head", None)  # tolerate a missing </head>
        if tag in _HEADINGS:
            self._flush()
            self.heading_level = _HEADINGS[tag]
        elif tag == "tr":
            self._flush_row()
            self._flush()
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.row.append([])
        elif tag == "br":
            self._text(_BR)
        elif tag in _BLOCKS:
            self._boundary()
            self.pre += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._text(_BR)
        elif tag in _BLOCKS:
            self._boundary()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip[tag] = max(0, self.skip.get(tag, 0) - 1)
        elif tag in _HEADINGS:
            self._flush()
        elif tag == "tr" or (tag == "table" and self.row is not None):
            self._flush_row()
        elif tag in _BLOCKS:
            self._boundary()
            self.pre = max(0, self.pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        self._text(data.replace(_BR, ""))

    def close(self) -> None:
        super().close()
        self._flush_row()
        self._flush()

    def _text(self, data: str) -> None:
        if any(self.skip.values()):
            return
        if self.row:
            self.row[-1].append(data)
        else:
            self.buf.append(data)

    def _boundary(self) -> None:
        """A block element starts or ends: inside a table cell it is a space, elsewhere a new block."""
        if self.row:
            self.row[-1].append(" ")
        else:
            self._flush()

    def _flush(self) -> None:
        raw, self.buf = "".join(self.buf), []
        text = raw.replace(_BR, "\n").strip("\n") if self.pre else _collapse(raw)
        if self.heading_level:
            self.headings.push(self.heading_level, " ".join(text.split()))
            self.doc.add(text, block=False)
            self.heading_level = 0
        else:
            self.doc.add(text, self.headings.path)

    def _flush_row(self) -> None:
        if self.row is None:
            return
        cells = [_collapse("".join(cell)).replace("\n", " ") for cell in self.row]
        self.row = None
        self.doc.add(" | ".join(c for c in cells if c), self.headings.path)


def _collapse(raw: str) -> str:
    """Collapse whitespace; ``<br>`` placeholders become line breaks."""
    lines = (" ".join(part.split()) for part in raw.split(_BR))
    return "\n".join(line for line in lines if line)
