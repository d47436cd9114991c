"""Word .docx via python-docx (imported lazily): paragraphs and table rows in body order."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from zhiku.errors import MissingDependency, ParseError
from zhiku.ingest.decode import normalize_newlines
from zhiku.ingest.parsers import DocBuilder, HeadingStack
from zhiku.types import ParsedDoc

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d*)", re.IGNORECASE)
_CORRUPT_HINT = "open the file in Word or LibreOffice and save it again as .docx (old .doc files are not supported)"


def parse(data: bytes, name: str) -> ParsedDoc:
    """Extract paragraphs (headings set the heading path) and table rows, in body order."""
    try:
        import docx
        from docx.oxml.ns import qn
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError:
        message = "reading .docx files needs the python-docx package"
        raise MissingDependency(message, hint="pip install python-docx") from None
    try:
        document = docx.Document(io.BytesIO(data))
        builder = DocBuilder()
        headings = HeadingStack()
        for element in _body_items(document.element.body, qn):
            if element.tag == qn("w:tbl"):
                for row in _table_rows(Table(element, document), qn):
                    builder.add(row, headings.path)
            else:
                _add_paragraph(Paragraph(element, document), builder, headings)
    except Exception as exc:  # zipfile, lxml, KeyError… : all mean a damaged or non-docx file
        reason = f"{type(exc).__name__}: {exc}"
        message = f"could not read .docx: {reason}; it may be corrupt or not a .docx file"
        raise ParseError(message, hint=_CORRUPT_HINT) from exc
    return builder.build()


def _body_items(body: Any, qn: Any) -> Iterator[Any]:
    """Paragraph and table elements of the body in order, looking inside content controls."""
    for child in body.iterchildren():
        if child.tag in (qn("w:p"), qn("w:tbl")):
            yield child
        elif child.tag == qn("w:sdt"):
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _body_items(content, qn)


def _add_paragraph(paragraph: Any, builder: DocBuilder, headings: HeadingStack) -> None:
    text = normalize_newlines(paragraph.text)
    level = _heading_level(paragraph)
    if level:
        headings.push(level, " ".join(text.split()))
        builder.add(text, block=False)
    else:
        builder.add(text, headings.path)


def _heading_level(paragraph: Any) -> int:
    """1–9 for heading styles ("Heading 2", "标题 2", "Title"), else 0."""
    try:
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
    except (KeyError, ValueError, AttributeError):
        return 0
    if style.lower().startswith("title"):
        return 1
    m = _HEADING_STYLE.match(style)
    return (int(m.group(1)) if m.group(1) else 1) if m else 0


def _table_rows(table: Any, qn: Any) -> Iterator[str]:
    """Each row's non-empty cells joined by " | " (merged cells counted once)."""
    from docx.table import _Cell

    for tr in table._tbl.iterchildren(qn("w:tr")):
        cells = (_Cell(tc, table).text for tc in tr.iterchildren(qn("w:tc")))
        texts = [" ".join(text.split()) for text in cells]
        yield " | ".join(t for t in texts if t)
