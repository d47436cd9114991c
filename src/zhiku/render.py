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


class _Bar:
    """A rich Progress used as a context manager; subclasses set ``self._progress``."""

    _progress: Progress

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)


class IngestBar(_Bar):
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



# -- answers -------------------------------------------------------------------
class AssembleBar(_Bar):
    """Progress of the one-time assembly of a bundled model (hundreds of MB): drawn on a terminal only."""

    def __init__(self) -> None:
        self.console = stderr_console()
        self._progress = Progress(TextColumn("preparing model (once)"), BarColumn(),
                                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                  console=self.console, transient=True, disable=not self.console.is_terminal)
        self._task = None

    def update(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task("assemble", total=total)
        self._progress.update(self._task, completed=done)


class TokenPrinter:
    """Writes streamed answer text to stdout as it arrives."""

    def __init__(self) -> None:
        import sys
        self._out = sys.stdout
        self.count = 0

    def __call__(self, text: str) -> None:
        self.count += 1
        self._out.write(text)
        self._out.flush()


def print_answer(answer, streamed: bool) -> None:
    console = Console(highlight=False, soft_wrap=True)
    err = stderr_console()
    for warning in answer.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if answer.standalone and answer.standalone != answer.question:
        err.print(f"[dim]searched for: {escape(answer.standalone)}[/]")
    if streamed:
        console.print()
    else:
        console.print(escape(answer.answer))
    if streamed and answer.refusal_reason == "ungrounded":
        err.print("[yellow]withheld:[/] the answer above is not supported by the passages it was given")
        console.print(escape(answer.answer))
    if answer.partial:
        err.print(f"[yellow]partial answer[/]{': ' + escape(answer.error) if answer.error else ''}")
    if answer.refused:
        if answer.hits:
            console.print("\n[dim]closest sources (they do not answer the question):[/]")
            for hit in answer.hits[:3]:
                where = " › ".join((hit.chunk.source, *hit.chunk.heading_path))
                console.print(f"  [cyan]{escape(where)}[/]  {escape(_quote(hit.chunk.text))}")
    elif answer.citations:
        console.print("\n[bold]sources[/]")
        for c in answer.citations:
            where = " › ".join((c["source"], *c.get("heading_path", [])))
            console.print(f"  [{c['n']}] [cyan]{escape(where)}[/]  {escape(_quote(c['text']))}")
    check = answer.check or {}
    if check.get("uncited") and not answer.refused and answer.mode == "llm":
        err.print("[yellow]note:[/] the answer cites no passage; check it against the sources")
    for s in check.get("unsupported", []):
        err.print(f"[yellow]not supported by its citation:[/] {escape(s.get('text', '')[:80])}")
    if check.get("invalid"):
        err.print(f"[dim]removed citations to passages that were not given: {check['invalid']}[/]")
    t = answer.timings
    parts = [f"retrieve {t.get('retrieve_s', 0):.2f}s"]
    if "first_token_s" in t:
        parts.append(f"first token {t['first_token_s']:.1f}s")
    parts.append(f"total {t.get('total_s', 0):.1f}s")
    parts.append(answer.generator or "extractive, no model")
    err.print(f"[dim]{' · '.join(parts)}[/]")


def _quote(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width] + "…"


def print_conversations(items) -> None:
    console = Console(highlight=False, soft_wrap=True)
    if not items:
        console.print("no conversations yet: zhiku chat")
        return
    table = Table("id", "turns", "updated", "title", box=None)
    for c in items:
        table.add_row(c.id, str(c.turns), time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated_at)),
                      escape(c.title))
    console.print(table)


def print_conversation(conv, turns) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(conv.title)}[/]  ({conv.id}, {len(turns)} turns)")
    for t in turns:
        console.print(f"\n[bold]> {escape(t.question)}[/]")
        if t.standalone != t.question:
            console.print(f"[dim]searched for: {escape(t.standalone)}[/]")
        console.print(escape(t.answer))
        for c in t.citations:
            console.print(f"  [dim][{c['n']}] {escape(c['source'])}[/]")
