"""What produced a run: settings, models, prompts, versions, and hashes of the data it ran on.

Two runs are comparable when their snapshots differ only in what the change was about;
``zhiku eval compare`` lists every difference so a surprise shows up before the numbers do.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import sys
from pathlib import Path

from .. import __version__


def snapshot(kb, dataset, options, judge_model: str = "") -> dict:
    s = kb.settings
    gen = None
    if not options.retrieval_only and not options.extractive and s.generate.backend != "none":
        gen = _generator(s)
    return {
        "zhiku_version": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "argv": sys.argv[1:],
        "embedder": {"name": kb.embedder.name, "dim": kb.embedder.dim},
        "generator": gen,
        "sampling": _fields(s.generate, ("temperature", "top_k", "top_p", "max_tokens", "seed")) if gen else None,
        "chunking": dataclasses.asdict(s.chunk),
        "retrieval": dataclasses.asdict(s.retrieve),
        "answer": None if options.retrieval_only else dataclasses.asdict(s.answer),
        "prompt_templates": None if options.retrieval_only else _template_hashes(),
        "dataset": {"path": dataset.path, "sha256": dataset.sha256, "cases": len(dataset.cases),
                    "skipped_lines": len(dataset.problems)},
        "kb": kb_fingerprint(kb),
        "options": {**dataclasses.asdict(options), "judge_model": judge_model},
    }


def kb_fingerprint(kb) -> dict:
    """Name, source/chunk counts and one hash over every source's content and chunking.

    Two knowledge bases with the same files chunked the same way and embedded by the same model
    hash the same, wherever they live on disk (paths are not part of it, shown names are).
    """
    h = hashlib.sha256(f"{kb.embedder.name}:{kb.embedder.dim}\n".encode())
    records = sorted(kb.documents(), key=lambda r: (r.source, r.content_hash))
    for r in records:
        h.update(f"{r.source}\0{r.content_hash}\0{r.chunker}\n".encode())
    return {"name": kb.name, "content_sha256": h.hexdigest(), "sources": len(records),
            "chunks": kb.store.chunk_count(),
            "chunked_with": sorted({r.chunker for r in records})}  # what the KB was built with, not the config


def _generator(s) -> dict:
    g = s.generate
    out = {"backend": g.backend, "model": g.model, "context_window": g.context_window}
    if g.backend == "local":
        from ..backends.model_packs import PACKS
        pack = PACKS.get(g.model)
        if pack is not None:
            out["model_sha256"] = pack.sha256
        elif Path(g.model).expanduser().is_file():
            st = Path(g.model).expanduser().stat()
            out.update(model_bytes=st.st_size, model_mtime=int(st.st_mtime))
    else:
        out["base_url"] = g.base_url  # the key is referenced by env var name only, never recorded
    return out


def _template_hashes() -> dict:
    from ..answer.prompts import template_hashes
    return template_hashes()


def _fields(obj, names) -> dict:
    return {n: getattr(obj, n) for n in names}


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two snapshots (nested keys dotted), ignoring run-local keys."""
    out = []
    for key in sorted(set(a) | set(b)):
        if not prefix and key in ("argv", "options"):
            continue
        va, vb = a.get(key), b.get(key)
        name = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(differences(va, vb, name + "."))
        elif va != vb:
            out.append(f"{name}: {_short(va)} → {_short(vb)}")
    return out


def _short(v) -> str:
    text = str(v)
    return text[:12] + "…" if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text
