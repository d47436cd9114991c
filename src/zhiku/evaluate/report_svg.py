"""Static parts of the evaluation report: page shell (inline CSS/JS), inline SVG charts, number formatting.

Stdlib only; nothing here references an external resource."""
from __future__ import annotations

import math
from html import escape
from typing import Any, Sequence

from .metrics import percentile as _percentile

DASH = "–"
GOOD, BAD, NEUTRAL, BAR, INK, GRID = "#2e7d32", "#c62828", "#9e9e9e", "#3f6fb5", "#222", "#ddd"


def is_num(v: Any) -> bool:
    """True for a finite int/float (bool excluded)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def fmt_value(v: Any, digits: int = 3) -> str:
    """A metric value with fixed decimals, or a dash when missing/null/not a number."""
    return f"{v:.{digits}f}" if is_num(v) else DASH


def fmt_signed(v: Any, digits: int = 3) -> str:
    """A delta with an explicit sign, or a dash."""
    return f"{v:+.{digits}f}" if is_num(v) else DASH


def fmt_secs(v: Any) -> str:
    """Seconds for people: '15 ms' under a second, '1.23 s' above; a dash when missing."""
    if not is_num(v):
        return DASH
    if v == 0:
        return "0"
    return f"{v * 1000:.0f} ms" if abs(v) < 1 else f"{v:.2f} s"


def percentile(values: Sequence[float], q: float) -> float | None:
    """``metrics.percentile`` over the numeric values; None when there are none."""
    xs = [v for v in values if is_num(v)]
    return _percentile(xs, q) if xs else None


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    head = (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape(label)}" font-family="sans-serif" font-size="12">')
    return head + "".join(body) + "</svg>"


def bar_chart(rows: Sequence[tuple[str, Any, bool]], width: int = 640) -> str:
    """Horizontal bars on a 0–1 scale, one per (name, value, higher_is_better); values labelled, null = dash."""
    label_w, bar_w, row_h = 170, width - 170 - 70, 22
    height = row_h * len(rows) + 24
    body = [f'<line x1="{label_w + bar_w * t / 4:.1f}" y1="0" x2="{label_w + bar_w * t / 4:.1f}" '
            f'y2="{height - 18}" stroke="{GRID}"/>'
            f'<text x="{label_w + bar_w * t / 4:.1f}" y="{height - 4}" text-anchor="middle" fill="#666">'
            f'{t / 4:g}</text>' for t in range(5)]
    for i, (name, value, higher) in enumerate(rows):
        y = i * row_h + 4
        shown = f"{name} ↓" if not higher else name
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" fill="{INK}">{escape(shown)}</text>')
        frac = min(max(value, 0.0), 1.0) if is_num(value) else 0.0
        if is_num(value):
            body.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar_w * frac:.1f}" height="{row_h - 6}" '
                        f'fill="{BAR}"><title>{escape(name)}: {fmt_value(value)}</title></rect>')
        body.append(f'<text x="{label_w + bar_w * frac + 4:.1f}" y="{y + 14}" fill="{INK}">'
                    f'{fmt_value(value)}</text>')
    return _svg(width, height, "metrics bar chart", body)


def _bins(values: Sequence[float], hi: float) -> list[int]:
    n_bins = min(30, max(5, math.ceil(math.sqrt(len(values)))))
    counts = [0] * n_bins
    for v in values:
        counts[min(int(max(v, 0.0) / hi * n_bins), n_bins - 1)] += 1
    return counts


def histogram(values: Sequence[float], label: str, marks: Sequence[tuple[str, float | None]] = (),
              width: int = 640, height: int = 190) -> str:
    """Histogram of non-negative durations (seconds) from 0 to the maximum, with vertical marks (e.g. p50, p95)."""
    xs = [v for v in values if is_num(v)]
    if not xs:
        return f'<p class="muted">No {escape(label)} timings.</p>'
    hi = max(max(xs), max((m for _, m in marks if is_num(m)), default=0.0)) or 1.0
    counts = _bins(xs, hi)
    left, top, plot_w, plot_h = 40, 48, width - 60, height - 78
    step, peak = plot_w / len(counts), max(counts)
    body = [f'<text x="{left}" y="14" fill="{INK}">{escape(label)} (n={len(xs)})</text>',
            f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" fill="#666">{peak}</text>']
    for i, c in enumerate(counts):
        h = plot_h * c / peak
        body.append(f'<rect x="{left + i * step + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
                    f'height="{h:.1f}" fill="{BAR}"><title>{fmt_secs(hi * i / len(counts))}–'
                    f'{fmt_secs(hi * (i + 1) / len(counts))}: {c}</title></rect>')
    base = top + plot_h
    body.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#666"/>')
    for t in (0.0, 0.5, 1.0):
        body.append(f'<text x="{left + plot_w * t:.1f}" y="{base + 16}" text-anchor="middle" fill="#666">'
                    f'{fmt_secs(hi * t)}</text>')
    for j, (name, m) in enumerate((n, m) for n, m in marks if is_num(m)):
        x = left + plot_w * m / hi
        end = x > left + plot_w * 0.75           # keep the label inside the picture near the right edge
        anchor = ' text-anchor="end"' if end else ""
        body.append(f'<line x1="{x:.1f}" y1="{top - 30 + 13 * j}" x2="{x:.1f}" y2="{base}" stroke="{BAD}" '
                    f'stroke-dasharray="4 3"/><text x="{x - 3 if end else x + 3:.1f}" y="{top - 20 + 13 * j}" '
                    f'fill="{BAD}" stroke="#fff" stroke-width="3" paint-order="stroke"'
                    f'{anchor}>{escape(name)} {fmt_secs(m)}</text>')
    return _svg(width, height, f"{label} histogram", body)


def significance(row: dict) -> str:
    """'better' / 'worse' for a significant change of a comparison row (direction-aware), '' otherwise."""
    d = row.get("delta")
    if not row.get("significant") or not is_num(d) or d == 0:
        return ""
    return "better" if (d > 0) == bool(row.get("higher_is_better", True)) else "worse"


def ci_chart(rows: Sequence[dict], width: int = 640) -> str:
    """Deltas (b − a) with their confidence intervals around a zero line; green/red = significant better/worse."""
    ext = max([abs(r.get(k)) for r in rows for k in ("delta", "ci_low", "ci_high") if is_num(r.get(k))] + [1e-9])
    label_w, row_h = 170, 22
    plot_w = width - label_w - 80
    height = row_h * len(rows) + 24
    x = lambda v: label_w + plot_w * (v + ext) / (2 * ext)  # noqa: E731
    body = [f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 18}" stroke="#666"/>',
            f'<text x="{x(-ext):.1f}" y="{height - 4}" fill="#666">{fmt_signed(-ext)}</text>',
            f'<text x="{x(ext):.1f}" y="{height - 4}" text-anchor="end" fill="#666">{fmt_signed(ext)}</text>']
    for i, r in enumerate(rows):
        y, colour = i * row_h + 15, {"better": GOOD, "worse": BAD}.get(significance(r), NEUTRAL)
        body.append(f'<text x="{label_w - 6}" y="{y + 4}" text-anchor="end" fill="{INK}">'
                    f'{escape(str(r.get("name", "")))}{"" if r.get("higher_is_better", True) else " ↓"}</text>')
        lo, hi, d = r.get("ci_low"), r.get("ci_high"), r.get("delta")
        if is_num(lo) and is_num(hi):
            body.append(f'<line x1="{x(lo):.1f}" y1="{y}" x2="{x(hi):.1f}" y2="{y}" stroke="{colour}" '
                        f'stroke-width="3"/>')
        if is_num(d):
            body.append(f'<circle cx="{x(d):.1f}" cy="{y}" r="4" fill="{colour}"/>')
        body.append(f'<text x="{label_w + plot_w + 8}" y="{y + 4}" fill="{colour}">{fmt_signed(d)}</text>')
    return _svg(width, height, "metric deltas with confidence intervals", body)


CSS = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:0 auto;max-width:1100px;padding:1em;color:#222}h1{font-size:1.5em;margin:.2em 0}h2{margin-top:1.4em}
h4{margin:.8em 0 .3em}dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:.5em 0}
dt{color:#666}dd{margin:0;word-break:break-word}.muted{color:#777}.charts{display:flex;flex-wrap:wrap;gap:1em}
table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}
.num{text-align:right;font-variant-numeric:tabular-nums}[hidden]{display:none!important}
.row,.case>summary{display:grid;grid-template-columns:1.2em 6em 1fr 17em 4em 5em;gap:.5em;padding:.3em .2em}
.row{font-weight:600;border-bottom:2px solid #ccc}.case{border-bottom:1px solid #eee}
.case>summary{cursor:pointer;list-style:none}.case>summary::-webkit-details-marker{display:none}
.case>summary::before{content:"▸"}.case[open]>summary::before{content:"▾"}.case[open]{background:#fafafa}
.b{display:inline-block;border-radius:3px;padding:0 .35em;margin-right:.25em;font-size:.85em;color:#fff}
.ok{background:#2e7d32}.no{background:#c62828}.na{background:#9e9e9e}.body{padding:.2em 1em 1em 2em}
.hits,.ev,.cites{padding-left:1.2em}.hits>li{list-style:none;margin:.4em 0;border-left:3px solid #ddd;
padding-left:.5em}.hits>li.r{border-left-color:#2e7d32}.hits i{display:block;font-style:normal;color:#555;
font-size:.9em}.rl{color:#2e7d32}.hits p,.at,pre{white-space:pre-wrap;margin:.2em 0}
mark{background:#ffe082}.cm{color:#3f6fb5;font-weight:600}.err{color:#c62828}.side{display:grid;
grid-template-columns:1fr 1fr;gap:1em}.warn{background:#fff3e0;padding:.5em 1em}
"""

JS = """
(function(){var c=document.getElementById('ctl'),l=document.getElementById('cases');if(!c||!l)return;c.hidden=false;
var items=[].slice.call(l.children),k={i:function(e){return +e.dataset.i},
t:function(e){return -(+e.dataset.t||0)},r:function(e){return e.dataset.r===''?1e9:+e.dataset.r}};
function apply(){var f=document.getElementById('flt').value,s=document.getElementById('srt').value,
q=document.getElementById('q').value.toLowerCase(),n=0;
items.sort(function(a,b){return k[s](a)-k[s](b)||k.i(a)-k.i(b)});
items.forEach(function(e){var show=(f==='all'||e.dataset[f]==='1')&&
(!q||e.firstElementChild.textContent.toLowerCase().indexOf(q)>=0);e.hidden=!show;if(show)n++;l.appendChild(e)});
document.getElementById('shown').textContent=n+' shown'}
c.addEventListener('input',apply);c.addEventListener('change',apply);apply()})();
"""

CONTROLS = ('<div id="ctl" hidden>Show <select id="flt"><option value="all">all</option>'
            '<option value="f">failed</option><option value="e">errors</option></select> sort '
            '<select id="srt"><option value="i">as run</option><option value="t">slowest first</option>'
            '<option value="r">first relevant rank</option></select> <input id="q" type="search" '
            'placeholder="filter by id or question"> <span id="shown" class="muted"></span></div>')


def page(title: str, lang: str, body: str, script: str = "") -> str:
    """A complete HTML document; ``body`` must already be escaped markup."""
    js = f"<script>{script}</script>" if script else ""
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}{js}</body></html>\n")
