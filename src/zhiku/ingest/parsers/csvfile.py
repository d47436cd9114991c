"""CSV/TSV: one block per data row, "header: value | …" when the first row is a header."""
from __future__ import annotations

import csv
import io

from zhiku.errors import ParseError
from zhiku.ingest.decode import decode_text
from zhiku.ingest.parsers import DocBuilder
from zhiku.types import ParsedDoc

_SNIFF_CHARS = 8192  # csv.Sniffer's regexes are slow on big samples


def parse(data: bytes, name: str) -> ParsedDoc:
    """Decode ``data``, detect the delimiter and header, and render each row as one line."""
    text, encoding = decode_text(data)
    if not text.strip():
        return ParsedDoc(text="", blocks=(), encoding=encoding)
    sample = _sample(text)
    delimiter = _delimiter(sample, name)
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        rows = [[" ".join(cell.split()) for cell in row] for row in reader]
    except csv.Error as exc:
        hint = "check the file's quoting, or save it again as UTF-8 CSV"
        raise ParseError(f"could not read CSV: {exc}", hint=hint) from exc
    rows = [row for row in rows if any(row)]
    header = rows[0] if len(rows) > 1 and _has_header(sample, rows[0]) else None
    builder = DocBuilder(sep="\n")
    for row in rows[1:] if header else rows:
        builder.add(_render(row, header))
    return builder.build(encoding)


def _sample(text: str) -> str:
    """The first lines of ``text``, about ``_SNIFF_CHARS`` long, for csv.Sniffer."""
    if len(text) <= _SNIFF_CHARS:
        return text
    cut = text.rfind("\n", 0, _SNIFF_CHARS)
    return text[: cut if cut > 0 else _SNIFF_CHARS]


def _delimiter(sample: str, name: str) -> str:
    """The sniffed delimiter if it occurs in the first line, else one chosen by extension."""
    fallback = "\t" if name.lower().endswith(".tsv") else ","
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return fallback
    first_line = sample.split("\n", 1)[0]
    return sniffed if sniffed in first_line else fallback


def _has_header(sample: str, first: list[str]) -> bool:
    """Sniffer's opinion, or a first row of distinct, non-empty, non-numeric cells."""
    try:
        if csv.Sniffer().has_header(sample):
            return True
    except csv.Error:
        pass
    cells = [c for c in first if c]
    return len(cells) == len(first) and len(set(cells)) == len(cells) and not any(map(_is_number, cells))


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", "").rstrip("%"))
    except ValueError:
        return False
    return True


def _render(row: list[str], header: list[str] | None) -> str:
    """"h1: v1 | h2: v2" (empty cells skipped); without a header the cells joined by " | "."""
    if header is None:
        return " | ".join(cell for cell in row if cell)
    names = header + [""] * (len(row) - len(header))
    return " | ".join(f"{h}: {v}" if h else v for h, v in zip(names, row) if v)
