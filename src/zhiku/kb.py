"""The composition root: one object that opens a knowledge base and delegates to the journey's steps.

    >>> from zhiku import KnowledgeBase
    >>> with KnowledgeBase.open("notes", home="/tmp/zhiku-demo") as kb:      # doctest: +SKIP
    ...     kb.add(["~/notes"])
    ...     for hit in kb.search("数据决定什么？").hits:
    ...         print(hit.rank, hit.chunk.source, hit.chunk.text[:40])
"""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from .backends.embedder import Embedder
from .backends.embedders import get_embedder
from .backends.segmenter import Segmenter
from .config import Settings, load_settings
from .errors import ConfigError, EmbedderMismatch, ItemNotFound, KnowledgeBaseNotFound, UsageError
from .ingest.pipeline import Ingestor, Progress
from .retrieve.search import search as run_search
from .store.sqlite import SqliteStore
from .types import AddReport, SearchResult, SourceRecord

_NAME = re.compile(r"^[\w][\w.-]{0,63}$")
DB_FILE = "kb.sqlite"


class KnowledgeBase:
    def __init__(self, name: str, settings: Settings, store: SqliteStore, embedder: Embedder,
                 segmenter: Segmenter) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.segmenter = segmenter

    @classmethod
    def open(cls, name: str = "default", home: str | Path | None = None, settings: Settings | None = None,
             overrides: Mapping[str, Any] | None = None, create: bool = True,
             embedder: Embedder | None = None, _allow_embedder_change: bool = False) -> "KnowledgeBase":
        """Open (or create) the knowledge base ``name`` under the zhiku home."""
        validate_name(name)
        settings = settings or load_settings(home, overrides)
        folder = settings.kb_dir(name)
        if not (folder / DB_FILE).exists() and not create:
            raise KnowledgeBaseNotFound(f"no knowledge base named {name!r} in {settings.home}",
                                        f"create it by adding files: zhiku add FOLDER --kb {name}")
        embedder = embedder or get_embedder(settings.embedder.name)
        store = SqliteStore(folder / DB_FILE, embedder.dim, settings.index.hnsw_min_chunks)
        try:
            _bind_embedder(store, embedder, name, _allow_embedder_change)
            segmenter = Segmenter(settings.user_dict)
        except BaseException:
            store.close()
            raise
        return cls(name, settings, store, embedder, segmenter)

    # -- ingest ---------------------------------------------------------------
    def _ingestor(self) -> Ingestor:
        return Ingestor(self.store, self.embedder, self.segmenter, self.settings.chunk, self.settings.ingest)

    def add(self, paths: list[str | Path], progress: Progress | None = None) -> AddReport:
        """Ingest files and folders (recursively). Unchanged files are skipped by content hash."""
        return self._ingestor().add([str(p) for p in paths], progress)

    def sync(self, folder: str | Path, progress: Progress | None = None) -> AddReport:
        """Add new and changed files under ``folder`` and remove sources whose files are gone."""
        return self._ingestor().sync(str(folder), progress)

    def remove(self, source: str) -> int:
        """Remove a source by its shown name or absolute path; returns the chunks removed."""
        record = self.resolve_source(source)
        return self.store.remove_source(record.path)

    def documents(self) -> list[SourceRecord]:
        return self.store.list_sources()

    def resolve_source(self, source: str) -> SourceRecord:
        records = self.store.list_sources()
        exact = [r for r in records if r.path == source or r.path == str(Path(source).absolute())]
        matches = exact or [r for r in records if r.source == source]
        if not matches:
            raise ItemNotFound(f"no source {source!r} in knowledge base {self.name!r}",
                             f"list sources with: zhiku docs --kb {self.name}")
        if len(matches) > 1:
            paths = "\n    ".join(r.path for r in matches)
            raise UsageError(f"{source!r} names {len(matches)} sources:\n    {paths}",
                             "give the absolute path of the one you mean")
        return matches[0]

    def passage(self, chunk_id: str, context_chars: int = 600) -> dict:
        """A stored chunk in its source: ``{source, path, heading_path, before, text, after}``.

        ``before``/``after`` are up to ``context_chars`` of the source text around the chunk, so an
        interface can show a cited passage where it stands in the file.
        """
        chunk = self.store.chunk_by_id(chunk_id)
        if chunk is None:
            raise ItemNotFound(f"no chunk {chunk_id!r} in knowledge base {self.name!r}",
                               "the source may have been changed or removed since; search again")
        text = self.store.source_text(chunk.path)
        return {"chunk_id": chunk.chunk_id, "source": chunk.source, "path": chunk.path,
                "heading_path": list(chunk.heading_path), "text": chunk.text,
                "before": text[max(0, chunk.start - context_chars):chunk.start],
                "after": text[chunk.end:chunk.end + context_chars]}

    def reindex(self, progress: Progress | None = None) -> int:
        """Re-embed every stored chunk with the configured embedder; returns the chunk count."""
        chunks = list(self.store.iter_chunks())
        texts = [c.embedding_text() for c in chunks]
        cb = progress.chunks_embedded if progress else None
        vectors = self.embedder.embed_passages(texts, self.settings.ingest.batch_size, cb)
        self.store.set_embeddings([c.row for c in chunks], vectors)
        self.store.set_meta("embedder_name", self.embedder.name)
        self.store.set_meta("embedder_dim", str(self.embedder.dim))
        return len(chunks)

    # -- retrieve -------------------------------------------------------------
    def search(self, query: str, k: int | None = None, mode: str | None = None) -> SearchResult:
        """Hybrid (default), vector or lexical search with a per-hit trace."""
        cfg = self.settings.retrieve
        if k is not None or mode is not None:
            cfg = replace(cfg, k=k if k is not None else cfg.k, mode=mode or cfg.mode)
        return run_search(query, self.store, self.embedder, self.segmenter, cfg)

    # -- answer ---------------------------------------------------------------
    def answerer(self, extractive: bool = False, progress=None, wrap=None):
        """An ``Answerer`` bound to this knowledge base and the configured generator.

        ``extractive=True`` (``--no-llm``) never loads a model. ``progress(done, total)`` reports
        the one-time assembly of a bundled model pack. ``wrap(generator)`` may put the generator
        behind something (the server's ``GenerationQueue``) before the answerer and reranker use it.
        """
        from .answer.pipeline import Answerer, sampling_from
        from .backends.generators import make_generator
        gen = None if extractive else make_generator(self.settings.generate, self.settings.model_dir, progress)
        if gen is not None and wrap is not None:
            gen = wrap(gen)
        return Answerer(self, gen, self.settings.answer, sampling_from(self.settings.generate),
                        scorer=self._scorer(gen))

    def _scorer(self, gen):
        cfg = self.settings.answer
        if cfg.rerank == "off":
            return None
        if cfg.rerank == "llm":
            from .answer.rerank import LlmJudge
            return LlmJudge(gen) if gen is not None else None  # --no-llm: nothing to judge with
        if cfg.rerank == "http":
            if not cfg.rerank_url:
                raise ConfigError("answer.rerank is http but answer.rerank_url is empty",
                                  "set answer.rerank_url, e.g. http://127.0.0.1:8000/v1/rerank")
            from .backends.http_rerank import HttpReranker
            return HttpReranker(cfg.rerank_url, cfg.rerank_model, self.settings.generate.api_key_env)
        raise ConfigError(f"unknown answer.rerank {cfg.rerank!r}", "use one of: off, llm, http")

    def ask(self, question: str, on_token=None, extractive: bool = False):
        """Answer ``question`` from this knowledge base, with citations (see ``zhiku.answer``)."""
        return self.answerer(extractive).ask(question, on_token=on_token, extractive=extractive)

    @property
    def conversations(self):
        from .store.conversations import Conversations
        return Conversations(self.store)

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def list_names(home: str | Path | None = None) -> list[str]:
        root = load_settings(home).home / "kbs"
        return sorted(p.name for p in root.iterdir() if (p / DB_FILE).exists()) if root.exists() else []

    @staticmethod
    def delete(name: str, home: str | Path | None = None) -> None:
        validate_name(name)
        folder = load_settings(home).kb_dir(name)
        if not (folder / DB_FILE).exists():
            raise KnowledgeBaseNotFound(f"no knowledge base named {name!r}", "list them with: zhiku kbs")
        shutil.rmtree(folder)


def validate_name(name: str) -> None:
    if not _NAME.match(name or ""):
        raise UsageError(f"invalid knowledge base name {name!r}",
                         "use letters, digits, '-', '_' or '.', at most 64 characters, not starting with '.' or '-'")


def _bind_embedder(store: SqliteStore, embedder: Embedder, kb_name: str, allow_change: bool) -> None:
    name, dim = store.get_meta("embedder_name"), store.get_meta("embedder_dim")
    if name is None:
        store.set_meta("embedder_name", embedder.name)
        store.set_meta("embedder_dim", str(embedder.dim))
    elif (name, int(dim or 0)) != (embedder.name, embedder.dim) and not allow_change:
        raise EmbedderMismatch(
            f"knowledge base {kb_name!r} was built with embedder {name} ({dim}-d), "
            f"but zhiku is configured with {embedder.name} ({embedder.dim}-d); mixing them would give wrong results",
            f"re-embed it with the configured embedder: zhiku reindex --kb {kb_name} "
            f"(or set embedder.name back to the one it was built with)")
