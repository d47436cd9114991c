"""The CLI's commands. Each validates, makes one call on KnowledgeBase and renders the result."""
from __future__ import annotations

import argparse
import sys
from importlib import resources

from .cli import emit_json
from .errors import UsageError
from .kb import KnowledgeBase
from .types import AddReport
from .render import IngestBar, print_report, print_search, print_sources, stderr_console


def _open(args: argparse.Namespace, create: bool = False) -> KnowledgeBase:
    return KnowledgeBase.open(args.kb, home=args.home, create=create)


def _ingest(args, action) -> AddReport:
    """Run ``action(kb, progress)`` with a progress bar and print its report."""
    with _open(args, create=True) as kb, IngestBar(enabled=not args.json) as bar:
        report = action(kb, bar)
    if args.json:
        emit_json(report.as_dict())
    else:
        print_report(report, stderr_console())
    return report


def cmd_add(args) -> int:
    report = _ingest(args, lambda kb, bar: kb.add(args.paths, progress=bar))
    if report.outcomes and all(o.status == "skipped" for o in report.outcomes):
        return 1  # nothing could be ingested: the whole command failed
    return 0


def cmd_sync(args) -> int:
    _ingest(args, lambda kb, bar: kb.sync(args.folder, progress=bar))
    return 0


def cmd_rm(args) -> int:
    with _open(args) as kb:
        record = kb.resolve_source(args.source)
        n = kb.remove(record.path)
    print(f"removed {record.source} ({n} chunks)")
    return 0


def cmd_docs(args) -> int:
    with _open(args) as kb:
        records = kb.documents()
    if args.json:
        emit_json([{"source": r.source, "path": r.path, "format": r.format, "chunks": r.chunk_count,
                    "bytes": r.size, "content_hash": r.content_hash} for r in records])
    else:
        print_sources(records)
    return 0


def cmd_search(args) -> int:
    if args.k is not None and args.k < 1:
        raise UsageError("--k must be at least 1")
    with _open(args) as kb:
        result = kb.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        emit_json(result.as_dict())
    else:
        print_search(result)
    return 0


def cmd_kbs(args) -> int:
    names = KnowledgeBase.list_names(args.home)
    if args.json:
        emit_json(names)
    else:
        print("\n".join(names) if names else "no knowledge bases yet: zhiku add FOLDER")
    return 0


def cmd_reindex(args) -> int:
    with KnowledgeBase.open(args.kb, home=args.home, create=False, _allow_embedder_change=True) as kb, \
            IngestBar(enabled=True) as bar:
        bar.started(0)
        n = kb.reindex(progress=bar)
    print(f"re-embedded {n} chunks with {kb.embedder.name}")
    return 0


def cmd_demo(args) -> int:
    sample = resources.files("zhiku.samples").joinpath("demo")
    with resources.as_file(sample) as folder:
        with _open(args, create=True) as kb, IngestBar(enabled=True) as bar:
            report = kb.add([str(folder)], progress=bar)
            print_report(report, stderr_console())
            result = kb.search(args.query, k=3)
    print(f"\nzhiku search {args.query!r} --kb {args.kb}\n", file=sys.stderr)
    print_search(result)
    return 0
