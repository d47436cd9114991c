"""PDF text layer via pypdf (imported lazily): paragraphs per page, heading path ("p.N",)."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from types import ModuleType

from zhiku.errors import MissingDependency, ParseError
from zhiku.ingest.decode import normalize_newlines
from zhiku.ingest.parsers import paragraph_spans, trim_span
from zhiku.types import Block, ParsedDoc

_SENTENCE_ENDS = tuple("。！？.!?")
_CORRUPT_HINT = "open the file in a PDF viewer; if it asks for a password or fails, re-export or decrypt it first"
_SCANNED_HINT = (
    "export the text from the program that made the PDF, or run OCR on it (e.g. ocrmypdf) and add the result"
)


def parse(data: bytes, name: str) -> ParsedDoc:
    """Extract the text layer of every page; raise ParseError for corrupt, encrypted or scanned PDFs."""
    try:
        import pypdf
    except ImportError:
        raise MissingDependency("reading PDF files needs the pypdf package", hint="pip install pypdf") from None
    with _quiet():
        pages = _page_texts(pypdf, data)
    text_parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for number, page in enumerate(pages, start=1):
        if not page:
            continue
        if text_parts:
            text_parts.append("\n\n")
            pos += 2
        text_parts.append(page)
        blocks.extend(Block(pos + s, pos + e, (f"p.{number}",)) for s, e in _page_spans(page))
        pos += len(page)
    if pages and not text_parts:
        raise ParseError("PDF has no text layer (scanned images?); OCR is not supported", hint=_SCANNED_HINT)
    return ParsedDoc(text="".join(text_parts), blocks=tuple(blocks))


def _page_texts(pypdf: ModuleType, data: bytes) -> list[str]:
    """Each page's text, normalised and stripped ('' for pages without text)."""
    if not data:
        raise ParseError("could not read PDF: the file is empty", hint=_CORRUPT_HINT)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("could not read PDF: it is password-protected", hint=_CORRUPT_HINT)
        return [normalize_newlines(page.extract_text() or "").strip() for page in reader.pages]
    except ParseError:
        raise
    except pypdf.errors.DependencyError as exc:
        hint = "pip install cryptography (needed for AES-encrypted PDFs)"
        raise ParseError(f"could not read PDF: {exc}", hint=hint) from exc
    except Exception as exc:  # pypdf raises many types on damaged files
        raise ParseError(
            f"could not read PDF: {type(exc).__name__}: {exc}; it may be corrupt or encrypted", hint=_CORRUPT_HINT
        ) from exc


def _page_spans(page: str) -> list[tuple[int, int]]:
    """Paragraphs split on blank lines; failing that, on lines ending a sentence."""
    spans = paragraph_spans(page)
    if len(spans) > 1:
        return spans
    spans, start, pos = [], 0, 0
    for line in page.split("\n"):
        pos += len(line) + 1
        if line.rstrip().endswith(_SENTENCE_ENDS):
            spans.append(trim_span(page, start, pos - 1))
            start = pos
    spans.append(trim_span(page, start, len(page)))
    return [s for s in spans if s]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pypdf's warnings and log messages about sloppy files."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
