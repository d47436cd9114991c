"""Terminal rendering for the CLI (rich): progress bar, reports, search hits with highlights."""
from __future__ import annotations

import time
from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .types import AddReport, FileOutcome, SearchResult, SourceRecord

SNIPPET_CHARS = 320


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class IngestBar:
    """Progress for ``add``/``sync``: files, chunks and chunks/s; only drawn on a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.console = stderr_console()
        self.enabled = enabled and self.console.is_terminal
        self.chunks = 0
        self.t0 = time.perf_counter()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]} chunks/s"),
                                  TimeElapsedColumn(), console=self.console, transient=True,
                                  disable=not self.enabled)
        self._task = None

    def __enter__(self) -> "IngestBar":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def started(self, total_files: int) -> None:
        self._task = self._progress.add_task("ingesting", total=total_files or None, chunks=0, rate="0.0")

    def file_started(self, found) -> None:
        self._progress.update(self._task, description=_short(found.source))

    def chunks_embedded(self, n: int) -> None:
        self.chunks += n
        rate = self.chunks / max(time.perf_counter() - self.t0, 1e-9)
        self._progress.update(self._task, chunks=self.chunks, rate=f"{rate:.1f}")

    def file_done(self, outcome: FileOutcome) -> None:
        self._progress.advance(self._task)


def _short(name: str, width: int = 32) -> str:
    return escape(name if len(name) <= width else "…" + name[-(width - 1):])


def print_report(report: AddReport, console: Console) -> None:
    d = report.as_dict()
    rate = d["chunks_written"] / report.seconds if report.seconds else 0.0
    console.print(f"added {d['added']}, replaced {d['replaced']}, unchanged {d['unchanged']}, "
                  f"skipped {d['skipped']}" + (f", removed {d['removed']}" if d["removed"] else "")
                  + f" — {d['chunks_written']} chunks in {report.seconds:.1f}s ({rate:.1f} chunks/s)")
    if d["unchanged"] and not (d["added"] or d["replaced"]):
        console.print("nothing changed: unchanged files were not parsed or embedded again")
    skipped = report.by_status("skipped")
    for outcome in skipped[:20]:
        console.print(f"  skipped {escape(outcome.source)}: {escape(outcome.reason)}")
    if len(skipped) > 20:
        reasons = Counter(o.reason for o in skipped[20:])
        for reason, n in reasons.most_common():
            console.print(f"  skipped {n} more: {escape(reason)}")


def print_sources(records: list[SourceRecord]) -> None:
    console = Console(highlight=False, soft_wrap=True)
    if not records:
        console.print("no documents yet: zhiku add FOLDER")
        return
    table = Table("source", "format", "chunks", "size", box=None)
    for r in records:
        table.add_row(escape(r.source), r.format, str(r.chunk_count), f"{r.size / 1024:.1f} KB")
    console.print(table)
    console.print(f"{len(records)} sources, {sum(r.chunk_count for r in records)} chunks")


def print_search(result: SearchResult) -> None:
    console = Console(highlight=False, soft_wrap=True)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if not result.hits:
        console.print("no hits")
        return
    for hit in result.hits:
        c, t = hit.chunk, hit.trace
        where = " › ".join((c.source, *c.heading_path))
        console.print(f"[bold]{hit.rank}.[/] [cyan]{escape(where)}[/]  score {hit.score:.4f}")
        console.print(f"   [dim]{escape(_trace_line(t))}[/]")
        console.print(_snippet(c.text, hit.highlights))
        console.print()


def _trace_line(t) -> str:
    lex = f"lexical #{t.lexical_rank} ({t.lexical_score:.3f})" if t.lexical_rank else "lexical –"
    vec = f"vector #{t.vector_rank} ({t.vector_score:.3f})" if t.vector_rank else "vector –"
    fused = f"  fused {t.fused_score:.4f}" if t.fused_score is not None else ""
    return f"{lex}  {vec}{fused}"


def _snippet(text: str, highlights) -> Text:
    start = 0
    if highlights and highlights[0][0] > SNIPPET_CHARS // 2:
        start = highlights[0][0] - SNIPPET_CHARS // 4
    end = min(len(text), start + SNIPPET_CHARS)
    out = Text("   " + ("…" if start else ""))
    pos = start
    for s, e in highlights:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(text[pos:s])
        out.append(text[s:e], style="bold yellow")
        pos = e
    out.append(text[pos:end] + ("…" if end < len(text) else ""))
    return out

