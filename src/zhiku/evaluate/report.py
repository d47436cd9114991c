"""Run report: one self-contained HTML page, a comparison page and a Markdown summary (docs/evaluation-format.md).

Everything taken from run data is escaped with ``html.escape``; the pages load nothing from outside (inline CSS,
inline SVG charts, a little optional inline JavaScript; cases expand with ``<details>`` so it works without JS).
"""
from __future__ import annotations

import json
import re
from html import escape
from typing import Any, Iterable, Sequence

from .report_svg import (CONTROLS, DASH, JS, bar_chart, ci_chart, fmt_secs, fmt_signed, fmt_value, histogram, is_num,
                         page, percentile, significance)

METRIC_ORDER = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "accuracy", "correct_and_cited",
                "citation_support", "refusal", "false_refusal", "unsupported_rate", "judge_correctness",
                "judge_faithfulness")
BADGE_METRICS = ("hit@5", "accuracy", "refusal")
FAIL_LISTS = (("Errors", None), ("Retrieval misses (hit@5 = 0)", "hit@5"), ("Wrong answers (accuracy = 0)", "accuracy"),
              ("Answered unanswerable questions (refusal = 0)", "refusal"))
MD_LIST_MAX = 20
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_MARKER = re.compile(r"\[(\d+)\]")

# ---------- shared helpers ----------

def esc(value: Any) -> str:
    """HTML-escaped text of a value (None -> empty)."""
    return "" if value is None else escape(str(value))


def merge_spans(spans: Iterable[Any], length: int) -> list[tuple[int, int]]:
    """Clamp [start, end) spans to 0..length, drop empty/malformed ones, merge overlapping or touching ones."""
    clean = []
    for span in spans or ():
        if isinstance(span, (list, tuple)) and len(span) == 2 and all(is_num(p) for p in span):
            start, end = max(0, int(span[0])), min(length, int(span[1]))
            if start < end:
                clean.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(clean):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: Iterable[Any]) -> str:
    """Escaped text with the (clamped, merged) spans wrapped in <mark>; slices the raw text first, then escapes."""
    text = text or ""
    out, pos = [], 0
    for start, end in merge_spans(spans, len(text)):
        out.append(escape(text[pos:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def ordered_metrics(metrics: dict) -> list[tuple[str, Any, bool]]:
    """(name, value, higher_is_better) for each metric present in metrics.json, known ones first in a fixed order."""
    values = metrics.get("metrics") or {}
    hib = metrics.get("higher_is_better") or {}
    names = [m for m in METRIC_ORDER if m in values] + sorted(m for m in values if m not in METRIC_ORDER)
    return [(m, values[m], bool(hib.get(m, True))) for m in names]


def _short(digest: Any, n: int = 12) -> str:
    return str(digest)[:n] if digest else DASH


def _kv(d: Any) -> str:
    """A compact 'k=v, k=v' line for a settings dict (plain text, not escaped)."""
    if not isinstance(d, dict) or not d:
        return DASH
    parts = []
    for k, v in d.items():
        v = f"{v:g}" if isinstance(v, float) else v if isinstance(v, (str, int)) else json.dumps(v, ensure_ascii=False)
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def _generator(gen: Any) -> str:
    if not isinstance(gen, dict):
        return "none (retrieval only)"
    extra = [f"ctx {gen['context_window']}" if gen.get("context_window") else "",
             f"sha {_short(gen.get('model_sha256'))}" if gen.get("model_sha256") else ""]
    return f"{gen.get('backend', '?')}/{gen.get('model', '?')} " + " ".join(e for e in extra if e)


def snapshot_items(metrics: dict, snapshot: dict) -> list[tuple[str, str]]:
    """The key facts about what produced a run, as (label, plain text) pairs."""
    emb, ds, kb = snapshot.get("embedder") or {}, snapshot.get("dataset") or {}, snapshot.get("kb") or {}
    items = [("zhiku", str(snapshot.get("zhiku_version", DASH))),
             ("python", f"{snapshot.get('python', DASH)} · {snapshot.get('platform', DASH)} · "
                        f"{snapshot.get('cpus', DASH)} cpus"),
             ("embedder", f"{emb.get('name', DASH)} (dim {emb.get('dim', DASH)})"),
             ("generator", _generator(snapshot.get("generator")).strip()),
             ("sampling", _kv(snapshot.get("sampling"))), ("chunking", _kv(snapshot.get("chunking"))),
             ("fusion", _kv(snapshot.get("retrieval"))),
             ("dataset", f"{ds.get('path') or metrics.get('dataset', DASH)} · sha {_short(ds.get('sha256'))}"),
             ("kb content", f"sha {_short(kb.get('content_sha256'))} · {kb.get('sources', DASH)} sources · "
                            f"{kb.get('chunks', DASH)} chunks")]
    judge = metrics.get("judge")
    if isinstance(judge, dict):
        items.append(("judge", f"{judge.get('model', DASH)} · agreement {fmt_value(judge.get('agreement'), 2)} · "
                               f"kappa {fmt_value(judge.get('kappa'), 2)} · n {judge.get('n', DASH)}"))
    return items


def _lang(texts: Iterable[Any]) -> str:
    return "zh" if any(isinstance(t, str) and _CJK.search(t) for t in texts) else "en"


# ---------- HTML run report ----------

def _header_html(metrics: dict, snapshot: dict) -> str:
    kb = metrics.get("kb") or (snapshot.get("kb") or {}).get("name", "")
    facts = [("run", metrics.get("run_id")), ("created", metrics.get("created")),
             ("mode", "retrieval only" if metrics.get("retrieval_only") else "retrieval + answers"),
             ("counts", _kv(metrics.get("counts")))] + snapshot_items(metrics, snapshot)
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    full = esc(json.dumps(snapshot, ensure_ascii=False, indent=1, default=str))
    return (f"<header><h1>zhiku eval · {esc(kb)}</h1><dl class=\"kv\">{rows}</dl>"
            f"<details><summary>Full snapshot</summary><pre>{full}</pre></details></header>")


def _cost_table(cost: dict) -> str:
    rows = [f"<tr><td>{esc(k)}</td><td class=num>{fmt_secs(v.get('p50'))}</td><td class=num>"
            f"{fmt_secs(v.get('p95'))}</td><td class=num>{fmt_secs(v.get('mean'))}</td></tr>"
            for k, v in cost.items() if k.endswith("_s") and isinstance(v, dict)]
    tokens = cost.get("tokens") if isinstance(cost.get("tokens"), dict) else None
    foot = f"<p class=muted>tokens: {esc(_kv(tokens))}</p>" if tokens else ""
    foot += f"<p class=muted>whole run: {fmt_secs(cost.get('wall_s'))}</p>" if is_num(cost.get("wall_s")) else ""
    head = "<tr><th>stage</th><th>p50</th><th>p95</th><th>mean</th></tr>"
    return (f"<table>{head}{''.join(rows)}</table>" if rows else "") + foot


def _latency_html(metrics: dict, cases: list[dict]) -> str:
    cost = metrics.get("cost") if isinstance(metrics.get("cost"), dict) else {}
    stages = ["total_s"] + (["retrieve_s"] if metrics.get("retrieval_only") else [])
    charts = []
    for stage in stages:
        values = [(c.get("timings") or {}).get(stage) for c in cases]
        given = cost.get(stage) if isinstance(cost.get(stage), dict) else {}
        marks = [(p, given.get(p) if is_num(given.get(p)) else percentile(values, q)) for p, q in
                 (("p50", 50), ("p95", 95))]
        charts.append(histogram(values, stage, marks))
    return f"<section><h2>Latency</h2><div class=charts>{''.join(charts)}</div>{_cost_table(cost)}</section>"


def _badges(case: dict) -> tuple[str, bool]:
    """Pass/fail badges for the case and whether it failed anything (or raised)."""
    cm, out, failed = case.get("metrics") or {}, [], bool(case.get("error"))
    for name in BADGE_METRICS:
        v = cm.get(name)
        if is_num(v):
            ok = v >= 0.5
            failed |= not ok
            out.append(f'<span class="b {"ok" if ok else "no"}">{name} {"✓" if ok else "✗"}</span>')
    if cm.get("false_refusal") == 1:
        failed = True
        out.append('<span class="b no">false refusal</span>')
    if case.get("error"):
        out.append('<span class="b no">error</span>')
    return "".join(out) or '<span class="b na">n/a</span>', failed


def _trace(trace: Any) -> str:
    """'lex #1 · vec #3 · fused 0.0301' (ranks per retriever and the fused score; scores left out to stay small)."""
    if not isinstance(trace, dict) or not trace:
        return ""
    ranks = [f"{label} #{trace[key]}" if is_num(trace.get(key)) else f"{label} {DASH}"
             for key, label in (("lexical_rank", "lex"), ("vector_rank", "vec"))]
    fused = trace.get("fused_score")
    return " · ".join(ranks + ([f"fused {fused:.4g}"] if is_num(fused) else []))


def _hit_html(hit: dict) -> str:
    """One retrieved chunk: rank, source › headings, trace, relevance, text with evidence <mark>ed (kept compact)."""
    path = " › ".join(str(p) for p in [hit.get("source", "")] + list(hit.get("heading_path") or []))
    tr = _trace(hit.get("trace"))
    rel = hit.get("relevant")
    return (f'<li{" class=r" if rel else ""}><i>#{esc(hit.get("rank"))} {esc(path)}{" · " if tr else ""}{tr}'
            f'{" <b class=rl>relevant</b>" if rel else ""}</i>'
            f'<p>{highlight(str(hit.get("text") or ""), hit.get("evidence_spans") or [])}</p></li>')


def _citation_html(cite: dict, ranks: dict) -> str:
    rank = ranks.get(cite.get("chunk_id"))
    where = f"→ hit #{rank}" if rank is not None else esc(str(cite.get("text") or "")[:200])
    holds = '<span class="b ok">holds evidence</span>' if cite.get("holds_evidence") else \
        '<span class="b no">no evidence</span>'
    return f"<li><b>[{esc(cite.get('n'))}]</b> {esc(cite.get('source'))} {where} {holds}</li>"


def _answer_html(case: dict) -> str:
    ranks = {h.get("chunk_id"): h.get("rank") for h in case.get("hits") or []}
    parts = ['<div class="ans"><h4>Answer</h4>']
    if case.get("refused"):
        parts.append(f'<p><span class="b na">refused</span> {esc(case.get("refusal_reason"))}</p>')
    text = _MARKER.sub(r'<span class="cm">[\1]</span>', esc(case.get("answer")))
    parts.append(f"<p class=at>{text}</p>")
    cites = case.get("citations") or []
    if cites:
        parts.append(f"<ul class=cites>{''.join(_citation_html(c, ranks) for c in cites)}</ul>")
    if case.get("unsupported"):
        items = "".join(f"<li>{esc(s)}</li>" for s in case["unsupported"])
        parts.append(f"<h4>Unsupported sentences ({len(case['unsupported'])} of "
                     f"{esc(case.get('sentences', '?'))})</h4><ul>{items}</ul>")
    return "".join(parts) + "</div>"


def _judge_html(judge: dict) -> str:
    scores = " · ".join(f"{esc(k)} {fmt_value(v, 2)}" for k, v in judge.items() if k != "raw")
    raw = judge.get("raw")
    raw = f"<details><summary>judge output</summary><pre>{esc(raw)}</pre></details>" if raw else ""
    return f"<p><b>Judge</b> {scores}</p>{raw}"


def _case_body(case: dict) -> str:
    parts = [f"<p><b>Question</b> {esc(case.get('question'))}</p>"]
    if case.get("error"):
        parts.append(f"<p class=err><b>Error</b> {esc(case['error'])}</p>")
    alts = case.get("answer_keywords") or []
    if alts:
        kw = " | ".join(" + ".join(str(k) for k in alt) for alt in alts if isinstance(alt, (list, tuple)))
        parts.append(f"<p class=muted>expected keywords (any alternative): {esc(kw)}</p>")
    ev = case.get("evidence") or []
    if ev:
        items = "".join(f"<li><b>{esc(e.get('source'))}</b> {esc(e.get('text'))}</li>" for e in ev)
        parts.append(f"<h4>Evidence</h4><ul class=ev>{items}</ul>")
    hits = case.get("hits") or []
    parts.append(f"<h4>Retrieved ({len(hits)}) · first relevant rank {esc(case.get('first_relevant_rank') or DASH)}"
                 f" · relevant chunks in KB {esc(case.get('n_relevant', DASH))}</h4>")
    parts.append(f"<ul class=hits>{''.join(_hit_html(h) for h in hits)}</ul>" if hits else "<p class=muted>none</p>")
    if case.get("answer") is not None or case.get("refused"):
        parts.append(_answer_html(case))
    if isinstance(case.get("judge"), dict):
        parts.append(_judge_html(case["judge"]))
    return f"<div class=body>{''.join(parts)}</div>"


def _case_html(i: int, case: dict) -> str:
    badges, failed = _badges(case)
    total = (case.get("timings") or {}).get("total_s")
    rank = case.get("first_relevant_rank")
    data = (f'data-i="{i}" data-f="{int(failed)}" data-e="{int(bool(case.get("error")))}" '
            f'data-t="{total if is_num(total) else ""}" data-r="{rank if is_num(rank) else ""}"')
    return (f'<details class="case" {data}><summary><span></span><span>{esc(case.get("id"))}</span>'
            f'<span>{esc(case.get("question"))}</span><span>{badges}</span><span class=num>{esc(rank or DASH)}</span>'
            f'<span class=num>{fmt_secs(total)}</span></summary>{_case_body(case)}</details>')


def _cases_html(cases: list[dict]) -> str:
    if not cases:
        return "<section><h2>Cases</h2><p class=muted>No cases.</p></section>"
    failed = sum(_badges(c)[1] for c in cases)
    head = ('<div class="row"><span></span><span>id</span><span>question</span><span>checks</span>'
            '<span>rank</span><span>total</span></div>')
    rows = "".join(_case_html(i, c) for i, c in enumerate(cases))
    return (f"<section><h2>Cases ({len(cases)}, {failed} failed)</h2>{CONTROLS}{head}"
            f'<div id="cases">{rows}</div></section>')


def html_report(metrics: dict, cases: list[dict], snapshot: dict) -> str:
    """The whole run as one self-contained HTML page: header, metric chart, latency, expandable per-case table."""
    metrics, cases, snapshot = metrics or {}, cases or [], snapshot or {}
    rows = ordered_metrics(metrics)
    chart = bar_chart(rows) if rows else "<p class=muted>No metrics.</p>"
    note = "<p class=muted>↓ lower is better; – not measured.</p>" if rows else ""
    body = (_header_html(metrics, snapshot) + f"<section><h2>Metrics</h2>{chart}{note}</section>"
            + _latency_html(metrics, cases) + _cases_html(cases))
    lang = _lang([c.get("question") for c in cases] + [metrics.get("kb")])
    title = f"zhiku eval · {metrics.get('kb', '')} · {metrics.get('run_id', '')}"
    return page(title, lang, body, JS if cases else "")


# ---------- comparison page ----------

def _ci(row: dict) -> str:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    return f"[{fmt_signed(lo)}, {fmt_signed(hi)}]" if is_num(lo) and is_num(hi) else DASH


def _changed_html(title: str, items: list[dict], a: str, b: str) -> str:
    cells = "".join(
        f"<details class=chg><summary><b>{esc(c.get('id'))}</b> {esc(c.get('question'))} "
        f"<span class=muted>({esc(c.get('metric'))})</span></summary><div class=side>"
        f"<div><h4>{esc(a)}</h4><p class=at>{esc(c.get('answer_a') or DASH)}</p></div>"
        f"<div><h4>{esc(b)}</h4><p class=at>{esc(c.get('answer_b') or DASH)}</p></div></div></details>"
        for c in items)
    return f"<section><h2>{title} ({len(items)})</h2>{cells or '<p class=muted>none</p>'}</section>"


def comparison_html(comparison: dict) -> str:
    """A self-contained page comparing two runs: deltas with CI (chart and table), fixed and broken cases."""
    a, b, rows = str(comparison.get("a", "a")), str(comparison.get("b", "b")), comparison.get("metrics") or []
    warn = "".join(f"<li>{esc(w)}</li>" for w in comparison.get("warnings") or [])
    table = "".join(
        f"<tr><td>{esc(r.get('name'))}{'' if r.get('higher_is_better', True) else ' ↓'}</td>"
        f"<td class=num>{fmt_value(r.get('a'))}</td><td class=num>{fmt_value(r.get('b'))}</td>"
        f"<td class=num>{fmt_signed(r.get('delta'))}</td><td class=num>{_ci(r)}</td>"
        f"<td class=num>{esc(r.get('n', DASH))}</td><td>{significance(r)}</td></tr>" for r in rows)
    body = (f"<h1>zhiku eval compare · {esc(a)} → {esc(b)}</h1>"
            + (f'<ul class="warn">{warn}</ul>' if warn else "")
            + "<section><h2>Metrics (b − a, 95% CI)</h2>" + (ci_chart(rows) if rows else "")
            + "<table><tr><th>metric</th><th>a</th><th>b</th><th>Δ</th><th>95% CI</th><th>n</th><th></th></tr>"
            + table + "</table></section>"
            + _changed_html("Fixed", comparison.get("fixed") or [], a, b)
            + _changed_html("Broken", comparison.get("broken") or [], a, b))
    texts = [c.get("question") for c in (comparison.get("fixed") or []) + (comparison.get("broken") or [])]
    return page(f"zhiku eval compare {a} → {b}", _lang(texts), body)


# ---------- Markdown summary ----------

def md_text(value: Any, limit: int = 100) -> str:
    """One-line, length-limited, HTML-escaped text that cannot break a Markdown table."""
    text = " ".join(("" if value is None else str(value)).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return escape(text).replace("|", "\\|").replace("`", "'")


def _md_metrics(metrics: dict, comparison: dict | None) -> list[str]:
    if comparison is None:
        rows = ordered_metrics(metrics)
        return ["| metric | value |", "|---|---:|"] + [
            f"| {md_text(n, 40)}{'' if hib else ' ↓'} | {fmt_value(v)} |" for n, v, hib in rows]
    marks = {"better": "✅", "worse": "❌", "": ""}
    lines = [f"| metric | {md_text(comparison.get('a'), 40)} | {md_text(comparison.get('b'), 40)} | Δ | 95% CI "
             "| n | |", "|---|---:|---:|---:|---|---:|---|"]
    for r in comparison.get("metrics") or []:
        hib = r.get("higher_is_better", True)
        lines.append(f"| {md_text(r.get('name'), 40)}{'' if hib else ' ↓'} | {fmt_value(r.get('a'))} | "
                     f"{fmt_value(r.get('b'))} | {fmt_signed(r.get('delta'))} | {_ci(r)} | "
                     f"{md_text(r.get('n', DASH))} | {marks[significance(r)]} |")
    return lines + ["", "✅/❌ significant change for the better/worse (95% CI excludes 0); ↓ lower is better."]


def _md_cost(metrics: dict) -> list[str]:
    cost = metrics.get("cost") if isinstance(metrics.get("cost"), dict) else {}
    stages = [(k, v) for k, v in cost.items() if k.endswith("_s") and isinstance(v, dict)]
    if not stages:
        return []
    lines = ["", "**Cost per case**", "", "| stage | p50 | p95 |", "|---|---:|---:|"]
    lines += [f"| {md_text(k)} | {fmt_secs(v.get('p50'))} | {fmt_secs(v.get('p95'))} |" for k, v in stages]
    extra = [f"whole run {fmt_secs(cost['wall_s'])}" if is_num(cost.get("wall_s")) else "",
             f"tokens {md_text(_kv(cost['tokens']), 200)}" if isinstance(cost.get("tokens"), dict) else ""]
    return lines + ([""] + ["; ".join(e for e in extra if e)] if any(extra) else [])


def failed_lists(cases: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """Failed cases grouped by what failed: errors, retrieval misses, wrong answers, answered unanswerables."""
    groups = []
    for title, metric in FAIL_LISTS:
        if metric is None:
            items = [c for c in cases if c.get("error")]
        else:
            items = [c for c in cases if not c.get("error") and is_num((c.get("metrics") or {}).get(metric))
                     and c["metrics"][metric] < 0.5]
        groups.append((title, items))
    return groups


def _md_case_list(title: str, items: list[dict], extra: str = "") -> list[str]:
    lines = ["", f"**{title}: {len(items)}**", ""]
    for c in items[:MD_LIST_MAX]:
        detail = f" — {md_text(c.get(extra), 80)}" if extra and c.get(extra) else ""
        lines.append(f"- **{md_text(c.get('id'), 40)}** {md_text(c.get('question'))}{detail}")
    if len(items) > MD_LIST_MAX:
        lines.append(f"- … and {len(items) - MD_LIST_MAX} more")
    return lines


def _md_comparison_cases(comparison: dict) -> list[str]:
    lines = []
    for title in ("fixed", "broken"):
        items = comparison.get(title) or []
        lines += ["", f"**{title.capitalize()}: {len(items)}**", ""]
        for c in items[:MD_LIST_MAX]:
            lines.append(f"- **{md_text(c.get('id'), 40)}** ({md_text(c.get('metric'), 30)}) "
                         f"{md_text(c.get('question'))} — a: {md_text(c.get('answer_a') or DASH, 80)} · "
                         f"b: {md_text(c.get('answer_b') or DASH, 80)}")
        if len(items) > MD_LIST_MAX:
            lines.append(f"- … and {len(items) - MD_LIST_MAX} more")
    return lines


def markdown_summary(metrics: dict, snapshot: dict, comparison: dict | None = None,
                     cases: list[dict] | None = None) -> str:
    """A Markdown summary for a pull request; with ``comparison`` the table shows a, b, delta, CI and significance
    (``metrics``/``snapshot``/``cases`` are then those of run b)."""
    metrics, snapshot, comparison = metrics or {}, snapshot or {}, comparison or None
    title = (f"## zhiku eval compare {md_text(comparison.get('a'), 40)} → {md_text(comparison.get('b'), 40)}"
             if comparison else f"## zhiku eval {md_text(metrics.get('run_id'), 40)}")
    counts = metrics.get("counts") or {}
    lines = [title, "", f"kb **{md_text(metrics.get('kb'), 60)}** · dataset {md_text(metrics.get('dataset'), 120)} · "
             f"{md_text(metrics.get('created'), 40)}" + (" · retrieval only" if metrics.get("retrieval_only") else ""),
             "", "Counts: " + (md_text(_kv(counts), 300) if counts else DASH), ""]
    if comparison and comparison.get("warnings"):
        lines += [*(f"> ⚠️ {md_text(w, 300)}" for w in comparison["warnings"]), ""]
    lines += _md_metrics(metrics, comparison) + _md_cost(metrics)
    lines += ["", "<details><summary>Snapshot</summary>", ""]
    lines += [f"- {k}: {md_text(v, 300)}" for k, v in snapshot_items(metrics, snapshot)] + ["", "</details>"]
    if comparison:
        lines += _md_comparison_cases(comparison)
    for title, items in failed_lists(cases or []) if cases else []:
        if items:
            lines += _md_case_list(title, items, "error" if title == "Errors" else "")
    return "\n".join(lines) + "\n"
