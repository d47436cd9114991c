"""Ingest: hash → skip unchanged → parse → chunk → embed in batches → write each file atomically."""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Protocol

from ..backends.embedder import Embedder
from ..backends.segmenter import Segmenter
from ..config import ChunkSettings, IngestSettings
from ..errors import ParseError, UsageError
from ..store.base import Store
from ..types import AddReport, FileOutcome, SourceRecord
from . import chunker
from .discover import Found, discover, path_key
from .parsers import EXTENSIONS, format_for, parse_file

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What the pipeline tells an interface while it works (see NoProgress for the no-op)."""

    def started(self, total_files: int) -> None: ...
    def file_started(self, found: Found) -> None: ...
    def chunks_embedded(self, n: int) -> None: ...
    def file_done(self, outcome: FileOutcome) -> None: ...


class NoProgress:
    def started(self, total_files: int) -> None:
        pass

    def file_started(self, found: Found) -> None:
        pass

    def chunks_embedded(self, n: int) -> None:
        pass

    def file_done(self, outcome: FileOutcome) -> None:
        pass


class Ingestor:
    def __init__(self, store: Store, embedder: Embedder, segmenter: Segmenter,
                 chunk_cfg: ChunkSettings, ingest_cfg: IngestSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.segmenter = segmenter
        self.chunk_cfg = chunk_cfg
        self.cfg = ingest_cfg
        self.fingerprint = chunker.fingerprint(chunk_cfg)

    def add(self, paths: list[str], progress: Progress | None = None) -> AddReport:
        progress = progress or NoProgress()
        report = AddReport()
        t0 = time.perf_counter()
        found_all = list(discover(paths, self.cfg.follow_symlinks))
        progress.started(len(found_all))
        for found in found_all:
            progress.file_started(found)
            outcome = self.add_one(found, progress)
            report.outcomes.append(outcome)
            progress.file_done(outcome)
        report.seconds = time.perf_counter() - t0
        return report

    def add_one(self, found: Found, progress: Progress) -> FileOutcome:
        def skipped(reason: str) -> FileOutcome:
            return FileOutcome(found.path, found.source, "skipped", reason=reason)

        if found.problem:
            return skipped(found.problem)
        fmt = format_for(found.path)
        if fmt is None:
            return skipped(f"unsupported file type (supported: {', '.join(sorted(EXTENSIONS))})")
        try:
            data = _read(found.os_path, self.cfg.max_file_mb)
        except _Skip as skip:
            return skipped(str(skip))
        digest = hashlib.sha256(data).hexdigest()
        existing = self.store.get_source(found.path)
        if existing and existing.content_hash == digest and existing.chunker == self.fingerprint:
            return FileOutcome(found.path, found.source, "unchanged", chunks=existing.chunk_count)
        try:
            doc = parse_file(data, found.path, fmt)
        except ParseError as exc:
            return skipped(exc.message)
        chunks = chunker.chunk_document(doc, self.chunk_cfg, found.path)
        if not chunks:
            return skipped("no text found in the file")
        title = Path(found.source).stem
        texts = [c.embedding_text(title) for c in chunks]
        vectors = self.embedder.embed_passages(texts, self.cfg.batch_size, progress.chunks_embedded)
        terms = [" ".join(self.segmenter.doc_terms(t)) for t in texts]
        record = SourceRecord(path=found.path, source=found.source, content_hash=digest,
                              chunker=self.fingerprint, format=fmt, size=len(data), added_at=time.time())
        self.store.replace_source(record, doc.text, chunks, terms, vectors)
        return FileOutcome(found.path, found.source, "replaced" if existing else "added", chunks=len(chunks))

    def sync(self, folder: str, progress: Progress | None = None) -> AddReport:
        """Add new and changed files under ``folder``; remove sources whose files vanished."""
        if not os.path.isdir(os.path.expanduser(folder)):
            raise UsageError(f"{folder} is not a folder", "sync takes a folder that exists; to remove a source use: zhiku rm SOURCE")
        report = self.add([folder], progress)
        seen = {o.path for o in report.outcomes}
        root = path_key(os.path.abspath(os.path.expanduser(folder))).rstrip(os.sep) + os.sep
        for record in self.store.list_sources():
            if record.path.startswith(root) and record.path not in seen:
                n = self.store.remove_source(record.path)
                outcome = FileOutcome(record.path, record.source, "removed", chunks=n)
                report.outcomes.append(outcome)
                (progress or NoProgress()).file_done(outcome)
        return report


class _Skip(Exception):
    pass


def _read(path: str, max_mb: float) -> bytes:
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise _Skip("empty file")
        if size > max_mb * 1024 * 1024:
            raise _Skip(f"file is {size / 1048576:.0f} MB, over the {max_mb:g} MB limit "
                        "(raise it with ZHIKU_INGEST_MAX_FILE_MB or [ingest] max_file_mb)")
        with open(path, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise _Skip("permission denied (check the file's read permission)") from None
    except OSError as exc:
        raise _Skip(f"cannot read: {exc.strerror or exc}") from None
