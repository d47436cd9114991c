"""Parsers: exact texts, block offsets and heading paths; bad input gives ParseError."""
from __future__ import annotations

import io
import random
import subprocess
import sys

import pytest

from zhiku.errors import ParseError, UnsupportedFile
from zhiku.ingest.parsers import EXTENSIONS, format_for, parse_file
from zhiku.types import ParsedDoc


def spans(doc: ParsedDoc) -> list[tuple[str, tuple[str, ...]]]:
    """Each block's text and heading path, after checking the block invariants."""
    previous_end = 0
    out = []
    for block in doc.blocks:
        piece = doc.text[block.start : block.end]
        assert piece and piece == piece.strip(), block
        assert block.start >= previous_end, "blocks overlap or are out of order"
        previous_end = block.end
        out.append((piece, block.heading_path))
    return out


def parse(data: bytes, name: str) -> ParsedDoc:
    fmt = format_for(name)
    assert fmt is not None
    return parse_file(data, name, fmt)


# ---------------------------------------------------------------- dispatch


def test_extensions_and_format_for() -> None:
    assert EXTENSIONS[".md"] == "markdown" and EXTENSIONS[".tsv"] == "csv"
    assert format_for("/a/B.TXT") == "txt"
    assert format_for("notes.text") == format_for("app.log") == "txt"
    assert format_for("x.markdown") == "markdown"
    assert format_for("page.HTM") == "html"
    assert format_for("a.pdf") == "pdf" and format_for("a.docx") == "docx" and format_for("a.csv") == "csv"
    assert format_for("a.doc") is None and format_for("README") is None


def test_unknown_format_lists_supported_extensions() -> None:
    with pytest.raises(UnsupportedFile) as err:
        parse_file(b"x", "a.doc", "doc")
    assert "a.doc" in err.value.message
    assert ".docx" in err.value.hint and ".md" in err.value.hint and ".tsv" in err.value.hint


def test_importing_parsers_does_not_import_pypdf_or_docx() -> None:
    code = "import sys, zhiku.ingest.parsers; print('pypdf' in sys.modules, 'docx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unexpected_parser_exception_becomes_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from zhiku.ingest.parsers import txt

    def boom(data: bytes, name: str) -> ParsedDoc:
        raise IndexError("oops")

    monkeypatch.setattr(txt, "parse", boom)
    with pytest.raises(ParseError, match="could not parse a.txt as txt: IndexError: oops"):
        parse_file(b"x", "a.txt", "txt")


@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.html", "a.csv", "a.tsv", "a.log"])
def test_empty_text_formats_give_an_empty_doc(name: str) -> None:
    doc = parse(b"", name)
    assert (doc.text, doc.blocks) == ("", ())
    assert parse(b"  \n\n \t\n", name).blocks == ()


@pytest.mark.parametrize("name", ["a.pdf", "a.docx"])
def test_empty_binary_formats_are_corrupt(name: str) -> None:
    with pytest.raises(ParseError, match="could not read"):
        parse(b"", name)


# ---------------------------------------------------------------- txt


def test_txt_paragraphs() -> None:
    data = "  第一段第一行\n第一段第二行  \n\n \t \n第二段。\r\n\r\n\r\n  third\n".encode()
    doc = parse(data, "a.txt")
    assert doc.text == "  第一段第一行\n第一段第二行  \n\n \t \n第二段。\n\n\n  third\n"
    assert spans(doc) == [("第一段第一行\n第一段第二行", ()), ("第二段。", ()), ("third", ())]
    assert doc.encoding == "utf-8"


def test_txt_gbk_and_big5_and_utf16() -> None:
    simplified = "第一段，简体中文。\n\n第二段：知识管理。"
    traditional = "第一段，繁體中文。\n\n第二段：知識管理。"
    gbk = parse(simplified.encode("gbk"), "a.txt")
    assert (gbk.text, gbk.encoding) == (simplified, "gb18030")
    assert [s for s, _ in spans(gbk)] == ["第一段，简体中文。", "第二段：知识管理。"]
    big5 = parse(traditional.encode("big5"), "b.txt")
    assert (big5.text, big5.encoding) == (traditional, "big5")
    utf16 = parse(simplified.encode("utf-16"), "c.txt")
    assert (utf16.text, utf16.encoding) == (simplified, "utf-16")


def test_png_renamed_txt() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
    with pytest.raises(ParseError, match=r"looks like a binary file \(PNG image\)"):
        parse(png, "photo.txt")


# ---------------------------------------------------------------- markdown

MARKDOWN = """\
---
title: 笔记
tags: [a, b]
---
# 知识库 #

第一段第一行
第一段第二行

![架构图](arch.png)
  [![badge](b.svg)](https://ci)  ![x][ref]
<img src="a.png" alt="a">

## 安装

- 第一项
- 第二项 [链接](http://x)

```python
# 不是标题
print("hi")
```

### 细节
细节段落。

设置
----
setext 段落

~~~
## fenced
~~~

Other
=====
last
"""


def test_markdown_structure() -> None:
    doc = parse(MARKDOWN.encode(), "notes.md")
    assert doc.text == (
        "# 知识库 #\n\n第一段第一行\n第一段第二行\n\n\n## 安装\n\n- 第一项\n- 第二项 [链接](http://x)\n\n"
        '```python\n# 不是标题\nprint("hi")\n```\n\n### 细节\n细节段落。\n\n设置\n----\nsetext 段落\n\n'
        "~~~\n## fenced\n~~~\n\nOther\n=====\nlast\n"
    )
    assert spans(doc) == [
        ("第一段第一行\n第一段第二行", ("知识库",)),
        ("- 第一项\n- 第二项 [链接](http://x)", ("知识库", "安装")),
        ('```python\n# 不是标题\nprint("hi")\n```', ("知识库", "安装")),
        ("细节段落。", ("知识库", "安装", "细节")),
        ("setext 段落", ("知识库", "设置")),
        ("~~~\n## fenced\n~~~", ("知识库", "设置")),
        ("last", ("Other",)),
    ]


def test_markdown_utf8_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + "# 标题\r\n\r\n正文\r\n".encode()
    doc = parse(data, "a.md")
    assert (doc.text, doc.encoding) == ("# 标题\n\n正文\n", "utf-8-sig")
    assert spans(doc) == [("正文", ("标题",))]


def test_markdown_without_closing_front_matter_keeps_text() -> None:
    doc = parse(b"---\nnot front matter\n", "a.md")
    assert spans(doc) == [("not front matter", ())]


def test_markdown_unclosed_fence_runs_to_the_end() -> None:
    doc = parse(b"intro\n```\ncode\n# x\n", "a.md")
    assert spans(doc) == [("intro", ()), ("```\ncode\n# x", ())]


def test_markdown_only_images_is_empty() -> None:
    doc = parse(b"![a](b.png)\n\n<IMG src=x>\n", "a.md")
    assert (doc.text, doc.blocks) == ("", ())


def test_random_bytes_renamed_md() -> None:
    with pytest.raises(ParseError, match="looks like a binary file"):
        parse(random.Random(1).randbytes(3000), "notes.md")


# ---------------------------------------------------------------- html

HTML = """<!DOCTYPE html>
<html><head><meta charset="gbk"><title>页面标题</title>
<style>p { color: red }</style></head>
<body>
<script>document.write("<p>不要这个</p>");</script>
<noscript>请启用脚本</noscript>
<h1>知识库 &amp; 搜索</h1>
<p>第一段   文字，
  继续。<br>新的一行</p>
<div>外层<b>粗体</b> 文本<p>内层段落</p>尾巴</div>
<h2>表格</h2>
<table><tr><th>名称</th><th>数量</th></tr>
<tr><td>苹果</td><td></td><td><p>三</p></td></tr></table>
<ul><li>项目一</li><li>项目&lt;二&gt;</li></ul>
<pre>  x = 1
    y = 2</pre>
<h3>小节</h3><h2>另一节</h2><p>结束&nbsp;了</p>
</body></html>"""


def test_html_gbk_meta_charset_script_and_structure() -> None:
    doc = parse(HTML.encode("gbk"), "page.html")
    assert doc.encoding == "gb18030"
    assert doc.text == (
        "知识库 & 搜索\n\n第一段 文字， 继续。\n新的一行\n\n外层粗体 文本\n\n内层段落\n\n尾巴\n\n表格\n\n"
        "名称 | 数量\n\n苹果 | 三\n\n项目一\n\n项目<二>\n\nx = 1\n    y = 2\n\n小节\n\n另一节\n\n结束 了"
    )
    h1, h2 = ("知识库 & 搜索",), ("知识库 & 搜索", "表格")
    assert spans(doc) == [
        ("第一段 文字， 继续。\n新的一行", h1),
        ("外层粗体 文本", h1),
        ("内层段落", h1),
        ("尾巴", h1),
        ("名称 | 数量", h2),
        ("苹果 | 三", h2),
        ("项目一", h2),
        ("项目<二>", h2),
        ("x = 1\n    y = 2", h2),
        ("结束 了", ("知识库 & 搜索", "另一节")),
    ]


def test_html_without_meta_is_detected() -> None:
    doc = parse("<p>繁體中文的網頁，請問這個檔案是什麼？</p>".encode("big5"), "a.htm")
    assert doc.encoding == "big5"
    assert spans(doc) == [("繁體中文的網頁，請問這個檔案是什麼？", ())]


def test_html_wrong_meta_falls_back_to_detection() -> None:
    data = '<meta charset="utf-8"><p>简体中文网页内容。</p>'.encode("gbk")
    doc = parse(data, "a.html")
    assert (doc.text, doc.encoding) == ("简体中文网页内容。", "gb18030")


def test_html_missing_head_close_and_bare_text() -> None:
    doc = parse(b"<html><head><title>t</title><body>loose text<p>para</p>", "a.html")
    assert spans(doc) == [("loose text", ()), ("para", ())]
    doc = parse(b"<head><title>t</title><style>x</style><h2>H</h2><p>para</p>", "b.html")
    assert (doc.text, spans(doc)) == ("H\n\npara", [("para", ("H",))])


# ---------------------------------------------------------------- pdf


def make_pdf(pages: list[list[str]], font: str = "Helvetica") -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if font == "STSong-Light":
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for lines in pages:
        c.setFont(font, 12)
        for i, line in enumerate(lines):
            c.drawString(72, 760 - 16 * i, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def test_pdf_chinese_cid_font() -> None:
    data = make_pdf([["知识库可以离线搜索中文文档。", "第二句话在这里！", "没有结尾"], ["第二页的内容。"]], "STSong-Light")
    doc = parse(data, "zh.pdf")
    assert "知识库可以离线搜索中文文档。" in doc.text
    assert spans(doc) == [
        ("知识库可以离线搜索中文文档。", ("p.1",)),
        ("第二句话在这里！", ("p.1",)),
        ("没有结尾", ("p.1",)),
        ("第二页的内容。", ("p.2",)),
    ]
    assert doc.text.endswith("没有结尾\n\n第二页的内容。")


def test_pdf_pages_and_sentences() -> None:
    data = make_pdf([["First sentence.", "Second one", "continues here."], [], ["Page three?"]])
    doc = parse(data, "en.pdf")
    assert spans(doc) == [
        ("First sentence.", ("p.1",)),
        ("Second one\ncontinues here.", ("p.1",)),
        ("Page three?", ("p.3",)),
    ]


def test_truncated_pdf() -> None:
    data = make_pdf([["Some text."]])
    with pytest.raises(ParseError, match="could not read PDF: .*; it may be corrupt or encrypted"):
        parse(data[: len(data) // 2], "cut.pdf")


def test_text_file_renamed_pdf() -> None:
    with pytest.raises(ParseError, match="could not read PDF"):
        parse(b"just some words\n", "fake.pdf")


def test_scanned_pdf_without_text_layer() -> None:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.rect(100, 100, 200, 200, fill=1)
    c.showPage()
    c.save()
    with pytest.raises(ParseError) as err:
        parse(buf.getvalue(), "scan.pdf")
    assert err.value.message == "PDF has no text layer (scanned images?); OCR is not supported"
    assert "OCR" in err.value.hint


def encrypted(data: bytes, password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_encrypted_with_empty_password_opens() -> None:
    doc = parse(encrypted(make_pdf([["Open sesame."]]), ""), "e.pdf")
    assert spans(doc) == [("Open sesame.", ("p.1",))]


def test_pdf_with_password_is_refused() -> None:
    with pytest.raises(ParseError, match="could not read PDF: it is password-protected"):
        parse(encrypted(make_pdf([["Secret."]]), "secret"), "e.pdf")


# ---------------------------------------------------------------- docx


def make_docx() -> bytes:
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    d = docx.Document()
    d.add_paragraph("文档标题", style="Title")
    d.add_paragraph("前言段落。")
    d.add_heading("第一章", 1)
    d.add_paragraph("第一章的段落。")
    d.add_paragraph("")
    d.add_heading("1.1 小节", 2)
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["名称", "数量", "备注"], ["苹果", "3", ""], ["", "", ""]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_paragraph("表格之后。\n换行")
    d.styles.add_style("标题 2", WD_STYLE_TYPE.PARAGRAPH)
    d.add_heading("第二章", 1)
    d.add_paragraph("中文样式标题", style="标题 2")
    d.add_paragraph("末段。")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def test_docx_headings_paragraphs_and_table() -> None:
    doc = parse(make_docx(), "report.docx")
    assert doc.text == (
        "文档标题\n\n前言段落。\n\n第一章\n\n第一章的段落。\n\n1.1 小节\n\n名称 | 数量 | 备注\n\n苹果 | 3\n\n"
        "表格之后。\n换行\n\n第二章\n\n中文样式标题\n\n末段。"
    )
    assert spans(doc) == [
        ("前言段落。", ("文档标题",)),
        ("第一章的段落。", ("第一章",)),
        ("名称 | 数量 | 备注", ("第一章", "1.1 小节")),
        ("苹果 | 3", ("第一章", "1.1 小节")),
        ("表格之后。\n换行", ("第一章", "1.1 小节")),
        ("末段。", ("第二章", "中文样式标题")),
    ]


def test_text_file_renamed_docx() -> None:
    with pytest.raises(ParseError, match="could not read .docx: BadZipFile"):
        parse("这是纯文本".encode(), "fake.docx")


def test_truncated_docx() -> None:
    data = make_docx()
    with pytest.raises(ParseError, match="could not read .docx"):
        parse(data[: len(data) // 2], "cut.docx")


# ---------------------------------------------------------------- csv


def test_csv_gbk_with_chinese_headers() -> None:
    data = "姓名,城市,年龄\r\n张三,北京,30\r\n李四,,25\r\n,,\r\n".encode("gbk")
    doc = parse(data, "people.csv")
    assert (doc.text, doc.encoding) == ("姓名: 张三 | 城市: 北京 | 年龄: 30\n姓名: 李四 | 年龄: 25", "gb18030")
    assert spans(doc) == [("姓名: 张三 | 城市: 北京 | 年龄: 30", ()), ("姓名: 李四 | 年龄: 25", ())]


def test_tsv_with_quotes_and_extra_cells() -> None:
    data = b'name\tnote\nalpha\t"two\nlines"\textra\n'
    doc = parse(data, "a.tsv")
    assert spans(doc) == [("name: alpha | note: two lines | extra", ())]


def test_csv_without_header() -> None:
    doc = parse(b"1,2,3\n4,,6\n", "n.csv")
    assert spans(doc) == [("1 | 2 | 3", ()), ("4 | 6", ())]


def test_csv_semicolons() -> None:
    doc = parse("产品;价格\n茶;12.5\n咖啡;30\n".encode(), "p.csv")
    assert doc.text == "产品: 茶 | 价格: 12.5\n产品: 咖啡 | 价格: 30"


def test_png_renamed_csv() -> None:
    with pytest.raises(ParseError, match="binary"):
        parse(b"\x89PNG\r\n\x1a\n" + bytes(50), "x.csv")


@pytest.mark.parametrize("module, name, package", [("pypdf", "a.pdf", "pypdf"), ("docx", "a.docx", "python-docx")])
def test_missing_optional_dependency(monkeypatch: pytest.MonkeyPatch, module: str, name: str, package: str) -> None:
    from zhiku.errors import MissingDependency

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependency) as err:
        parse(b"whatever", name)
    assert err.value.hint == f"pip install {package}"


def test_markdown_lone_dash_under_long_paragraph_is_not_a_heading():
    """Regression: a paragraph followed by a lone "-" line was swallowed as a setext heading."""
    from zhiku.ingest.parsers import markdown
    body = "Transformers 库最基础的对象就是 pipeline() 函数,它封装了预训练模型。\n三、语音模型\n-\n"
    doc = markdown.parse(("## [2.4 库](https://example.com/x)\n" + body).encode(), "x.md")
    texts = [doc.text[b.start:b.end] for b in doc.blocks]
    assert any("pipeline() 函数" in t for t in texts)
    assert doc.blocks[0].heading_path == ("2.4 库",)


def test_markdown_short_setext_heading_still_works():
    from zhiku.ingest.parsers import markdown
    doc = markdown.parse("标题\n===\n\n正文。\n".encode(), "x.md")
    assert [(doc.text[b.start:b.end], b.heading_path) for b in doc.blocks] == [("正文。", ("标题",))]
