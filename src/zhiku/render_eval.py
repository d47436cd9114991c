"""Terminal rendering of evaluation runs, comparisons, gates and tuning leaderboards (rich)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .render import _Bar, stderr_console

ORDER = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "accuracy", "correct_and_cited",
         "citation_support", "refusal", "false_refusal", "unsupported_rate", "judge_correctness",
         "judge_faithfulness")


def fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


class EvalBar(_Bar):
    """Cases done, with the running count of failed cases; drawn only on a terminal."""

    def __init__(self) -> None:
        self.console = stderr_console()
        self.failed = 0
        self._progress = Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("cases · {task.fields[failed]} not passed · last {task.fields[last]}"),
                                  TimeElapsedColumn(), console=self.console, transient=True,
                                  disable=not self.console.is_terminal)
        self._task = self._progress.add_task("eval", total=None, failed=0, last="")

    def __call__(self, done: int, total: int, record: dict) -> None:
        m = record.get("metrics", {})
        if record.get("error") or 0.0 in (m.get("accuracy"), m.get("refusal"), m.get("hit@5")):
            self.failed += 1
        self._progress.update(self._task, completed=done, total=total, failed=self.failed, last=record["id"])


class SynthBar(_Bar):
    """Chunks tried and cases kept while ``eval generate`` runs."""

    def __init__(self, wanted: int) -> None:
        self.console = stderr_console()
        self._progress = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("chunks tried · {task.fields[kept]}/%d cases kept" % wanted),
                                  TimeElapsedColumn(), console=self.console, transient=True,
                                  disable=not self.console.is_terminal)
        self._task = self._progress.add_task("synth", total=None, kept=0)

    def __call__(self, tried: int, budget: int, kept: int) -> None:
        self._progress.update(self._task, completed=tried, total=budget, kept=kept)


def print_run(metrics: dict, problems: tuple[str, ...] = (), folder: str = "") -> None:
    out = Console(highlight=False)
    c = metrics["counts"]
    out.print(f"[bold]{metrics.get('run_id', '')}[/] kb {escape(metrics.get('kb', ''))} · "
              f"{c['cases']} cases ({c['answerable']} answerable, {c['unanswerable']} unanswerable)"
              + (" · retrieval only" if metrics.get("retrieval_only") else ""))
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in ORDER:
        if name in metrics["metrics"]:
            table.add_row(name, fmt(metrics["metrics"][name]))
    out.print(table)
    cost = Table(show_header=True, header_style="bold", title="seconds per case")
    for col in ("stage", "p50", "p95", "mean"):
        cost.add_column(col, justify="left" if col == "stage" else "right")
    for stage, s in metrics["cost"].items():
        if isinstance(s, dict) and "p50" in s:
            cost.add_row(stage, f"{s['p50']:.3f}", f"{s['p95']:.3f}", f"{s['mean']:.3f}")
    out.print(cost)
    tok = metrics["cost"].get("tokens")
    if tok and tok["prompt"] + tok["completion"]:
        out.print(f"tokens: {tok['prompt']} prompt ({tok['prompt_per_case']}/case), "
                  f"{tok['completion']} completion ({tok['completion_per_case']}/case)")
    out.print(f"wall time {metrics['cost'].get('wall_s', 0):.1f} s")
    j = metrics.get("judge")
    if j:
        out.print(f"judge {escape(str(j.get('model')))}: agrees with the keyword metric on "
                  f"{fmt(j.get('agreement'))} of {j.get('n')} answerable cases (kappa {fmt(j.get('kappa'))}); "
                  f"score–length correlation {fmt(j.get('length_correlation'))}; {j.get('unparsed', 0)} unreadable; "
                  f"{j.get('seconds', 0):.0f} s judging")
    _print_problems(c, problems)
    for w in metrics.get("warnings") or ():
        stderr_console().print(f"[yellow]note:[/] {escape(w)}")
    if folder:
        out.print(f"report: {folder}/report.html  (summary.md, cases.jsonl, metrics.json next to it)")


def _print_problems(counts: dict, problems: tuple[str, ...]) -> None:
    err = stderr_console()
    if problems:
        err.print(f"[yellow]{len(problems)} invalid lines in the question set were skipped:[/]")
        for p in problems[:20]:
            err.print(f"  {escape(p)}")
        if len(problems) > 20:
            err.print(f"  … and {len(problems) - 20} more")
    if counts.get("errors"):
        err.print(f"[red]{counts['errors']} cases failed with an error[/] (see 'error' in cases.jsonl)")
    missing = counts.get("evidence_not_in_kb") or []
    if missing:
        err.print(f"[yellow]{len(missing)} cases have evidence that no chunk of the knowledge base holds[/] "
                  f"(wrong source name, or text not verbatim?): {' '.join(missing[:10])}")


def print_gates(results) -> None:
    table = Table(title="gates", show_header=True, header_style="bold")
    for col in ("metric", "gate", "value", "result"):
        table.add_column(col)
    for r in results:
        table.add_row(r.gate.metric, r.gate.text, fmt(r.value),
                      "[green]pass[/]" if r.passed else ("[red]FAIL[/]" if r.value is not None
                                                         else "[red]FAIL (not measured)[/]"))
    Console(highlight=False).print(table)


def print_runs(rows) -> None:
    import time
    table = Table(show_header=True, header_style="bold")
    for col in ("run", "created", "dataset", "kind", "hit@5", "mrr", "accuracy", "refusal"):
        table.add_column(col, no_wrap=col in ("run", "created"))
    for r in rows:
        m = r.metrics
        table.add_row(r.id, time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
                      escape(r.dataset.rsplit("/", 1)[-1]), "retrieval" if r.retrieval_only else "answers",
                      fmt(m.get("hit@5")), fmt(m.get("mrr")), fmt(m.get("accuracy")), fmt(m.get("refusal")))
    Console(highlight=False).print(table if rows else "no eval runs yet: zhiku eval DATASET.jsonl")


def print_comparison(cmp: dict) -> None:
    out = Console(highlight=False)
    out.print(f"[bold]{cmp['a']}[/] → [bold]{cmp['b']}[/]  (paired over shared cases; 95% bootstrap interval)")
    table = Table(show_header=True, header_style="bold")
    for col in ("metric", "A", "B", "delta", "95% CI", "n", ""):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in cmp["metrics"]:
        good = (row["delta"] > 0) == row["higher_is_better"]
        mark = ("[green]better[/]" if good else "[red]worse[/]") if row["significant"] else ""
        table.add_row(row["name"], fmt(row["a"]), fmt(row["b"]), f"{row['delta']:+.3f}",
                      f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]", str(row["n"]), mark)
    out.print(table)
    for title, items in (("fixed", cmp["fixed"]), ("broken", cmp["broken"])):
        out.print(f"[bold]{title}[/]: {len(items)}")
        for it in items[:15]:
            out.print(f"  {it['id']} {it['metric']} {fmt(it['a'])}→{fmt(it['b'])}  {escape(it['question'][:60])}")
            if it.get("answer_a") is not None or it.get("answer_b") is not None:
                out.print(f"    A: {escape(str(it.get('answer_a') or '')[:100])}")
                out.print(f"    B: {escape(str(it.get('answer_b') or '')[:100])}")
        if len(items) > 15:
            out.print(f"  … and {len(items) - 15} more (--json for all)")
    jp = cmp.get("judge_pairwise")
    if jp:
        out.print(f"judge {escape(str(jp['model']))}, {jp['changed_answers']} changed answers judged in both orders: "
                  f"A better {jp['a_wins']}, B better {jp['b_wins']}, inconsistent {jp['inconsistent']}")
    for w in cmp["warnings"]:
        stderr_console().print(f"[yellow]note:[/] {escape(w)}")
    if cmp.get("snapshot_differences"):
        out.print("[bold]what differs between the runs[/]:")
        for d in cmp["snapshot_differences"][:30]:
            out.print(f"  {escape(d)}")


def print_leaderboard(board, written: bool = False) -> None:
    out = Console(highlight=False, width=max(Console().width, 100))
    from .evaluate.tune import describe
    table = Table(title=f"tune: best {board.metric} first", show_header=True, header_style="bold")
    for col in ("#", "settings", board.metric, "mrr", "ndcg@10", "chunks", "eval s", "build s"):
        table.add_column(col, justify="left" if col == "settings" else "right", no_wrap=col == "settings")
    for i, row in enumerate(board.ranked(), 1):
        table.add_row(str(i), escape(describe(row.settings)), fmt(row.metrics.get(board.metric)),
                      fmt(row.metrics.get("mrr")), fmt(row.metrics.get("ndcg@10")), str(row.chunks),
                      f"{row.seconds:.1f}", f"{row.build_s:.0f}" if row.build_s else "")
    out.print(table)
    if board.best is not None and board.interval:
        d, lo, hi = board.interval
        sure = "" if lo > 0 else " — the interval includes 0: on this many cases the gain may be chance"
        b, c = board.best.metrics, board.baseline.metrics
        out.print(f"best: {describe(board.best.settings)}\n  vs current: {board.metric} {d:+.3f} "
                  f"(95% CI [{lo:+.3f}, {hi:+.3f}]){sure}; mrr {_delta(b, c, 'mrr')}, "
                  f"ndcg@10 {_delta(b, c, 'ndcg@10')}")
        if not written:
            out.print("apply it with: zhiku tune … --write   (or set these keys in config.toml)")
    for note in board.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")


def _delta(b: dict, c: dict, name: str) -> str:
    if b.get(name) is None or c.get(name) is None:
        return "–"
    return f"{b[name] - c[name]:+.3f}"
