"""The web UI in a real browser: Playwright driving Debian's Chromium (headless) against the real
server on loopback, with the real embedder and the bundled 0.5B model.

Screenshots of each step are saved under ``test-artifacts/web-ui/`` (or ``$ZHIKU_TEST_ARTIFACTS``).
Chromium comes from the system: ``apt-get install chromium`` (``.ci/run`` does it), or point
``ZHIKU_CHROMIUM`` at another Chromium or Chrome binary. Nothing is downloaded.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from zhiku.server.app import create_app
from zhiku.store.keys import KeyStore

from .test_server import running

ARTIFACTS = Path(os.environ.get("ZHIKU_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parent.parent / "test-artifacts") / "web-ui"
CHROMIUM = os.environ.get("ZHIKU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# the flags keep a headless Chromium from reaching out to Google's services on a closed network
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
DOC = ("# 评估\n\n想要做应用，最首要的是先把评估工作做好。没有评估，就无法判断改动是否让回答变好。\n\n"
       "## 数据\n\n数据质量决定了模型效果的上限，清洗和去重是训练前必做的工作。\n")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` "
                    "(Debian/Ubuntu), or set ZHIKU_CHROMIUM to a Chromium or Chrome binary")
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 900})
    p = context.new_page()
    p.set_default_timeout(30_000)
    p.requests_seen = []
    p.on("request", lambda r: p.requests_seen.append(r.url))
    p.console_errors = []
    p.on("console", lambda m: p.console_errors.append(m.text) if m.type == "error" else None)
    yield p
    context.close()


@pytest.fixture
def model_env(monkeypatch):
    for key, value in {"MODEL": "qwen2.5-0.5b", "MAX_TOKENS": "48", "CONTEXT_WINDOW": "2048"}.items():
        monkeypatch.setenv(f"ZHIKU_GENERATE_{key}", value)


def wait_until(check, seconds: float = 30) -> None:
    """Poll ``check()`` from Python: the page's CSP forbids the string eval ``wait_for_function`` uses."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_upload_ingest_ask_streamed_and_open_a_citation(page, tmp_path, model_env):
    home = tmp_path / "home"
    doc = tmp_path / "评估笔记.md"
    doc.write_text(DOC, encoding="utf-8")
    with running(create_app(home, require_keys=False)) as url:
        page.goto(url + "/#docs")
        page.wait_for_selector("#banner:not([hidden])")  # no knowledge base yet: the page says how to start
        page.click("details.admin summary")
        page.fill("#new-kb", "notes")
        page.click("#create-kb button[type=submit]")
        wait_until(lambda: page.input_value("#kb-select") == "notes")

        page.set_input_files("#files", str(doc))
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector("#upload-status[data-state=done]", timeout=120_000)
        assert "评估笔记.md: added" in page.inner_text("#upload-files")
        page.wait_for_selector("#doc-rows td:has-text('评估笔记.md')")
        shot(page, "1-uploaded")

        page.click("nav a[data-page=chat]")
        page.fill("#question", "做应用最首要的是什么？")
        page.click("#ask-btn")
        # tokens arrive while the model writes: the bubble is marked streaming and its text grows
        page.wait_for_selector(".msg.bot.streaming")
        thinking = page.inner_text(".msg.bot .text")
        seen = set()

        def streamed_text() -> bool:
            text = page.inner_text(".msg.bot .text")
            seen.add(text)
            return text != thinking and page.locator(".msg.bot.streaming").count() == 1
        wait_until(streamed_text, 120)
        shot(page, "2-streaming")
        page.wait_for_selector(".msg.bot:not(.streaming) .timing", timeout=180_000)
        assert len(seen) >= 2  # the text changed while the answer streamed
        shot(page, "3-answered")
        answer = page.inner_text(".msg.bot")
        assert "评估" in answer
        assert page.locator(".msg.bot .sources li").count() >= 1, answer
        page.locator(".msg.bot button.cite").first.click()
        page.wait_for_selector("#passage:not([hidden]) mark")
        assert page.inner_text("#passage-title").endswith("评估笔记.md")
        assert page.inner_text("#passage mark") in DOC
        shot(page, "4-citation")

        # the conversation was saved and reopens with its turn
        page.reload()
        page.wait_for_selector("#conv-list li a")
        page.click("#conv-list li a")
        page.wait_for_selector(".msg.user:has-text('做应用最首要的是什么？')")

        page.click("nav a[data-page=search]")
        page.fill("#search-q", "数据质量 上限")
        page.click("#search-form button[type=submit]")
        page.wait_for_selector("#search-rows tr")
        first = page.locator("#search-rows tr").first
        assert "评估笔记.md" in first.inner_text() and first.locator("mark").count() >= 1
        ranks = [page.inner_text("#search-rows tr >> nth=0 >> td.lexical-rank"),
                 page.inner_text("#search-rows tr >> nth=0 >> td.vector-rank")]
        assert any(r.strip().isdigit() for r in ranks)
        shot(page, "5-search-trace")

        page.click("#lang-btn")
        assert page.inner_text("nav a[data-page=chat]") == "Chat"
        shot(page, "6-english")

    hosts = {urlparse(u).netloc for u in page.requests_seen if u.startswith("http")}
    assert hosts == {urlparse(url).netloc}, hosts  # everything came from the server itself: no CDN
    assert not page.console_errors, page.console_errors


def test_keys_on_the_page_asks_for_a_key_and_enforces_scope(page, tmp_path, fake_embedder, monkeypatch):
    monkeypatch.setenv("ZHIKU_EMBEDDER_NAME", "fake-hash")
    home = tmp_path / "home"
    from zhiku import KnowledgeBase
    with KnowledgeBase.open("notes", home=home) as kb:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "a.md").write_text(DOC, encoding="utf-8")
        kb.add([tmp_path / "d"])
        from zhiku.evaluate.dataset import load_dataset
        from zhiku.evaluate.runner import EvalOptions, run_eval
        from zhiku.evaluate.runs import RunStore
        line = ('{"id": "e1", "question": "做应用最首要的是什么？", "answerable": true, "keywords": [["评估"]], '
                '"evidence": [{"source": "a.md", "text": "最首要的是先把评估工作做好"}]}')
        (tmp_path / "set.jsonl").write_text(line + "\n", encoding="utf-8")
        RunStore(kb).save(run_eval(kb, load_dataset(tmp_path / "set.jsonl"), EvalOptions(retrieval_only=True)))
    store = KeyStore(home)
    read_key = store.create("notes", "read")[0]
    store.close()
    answers = iter(["zk_00000000_wrongwrongwrongwrongwrongwrong", read_key])
    page.on("dialog", lambda d: d.accept(next(answers, read_key)) if d.type == "prompt" else d.accept())
    with running(create_app(home, require_keys=True)) as url:
        page.goto(url + "/#docs")
        # the first key is wrong: the server says 401 and the page asks again; the second is kept
        wait_until(lambda: page.input_value("#kb-select") == "notes")
        page.wait_for_selector("#doc-rows td:has-text('a.md')")
        assert page.evaluate("localStorage.getItem('zhiku.key')") == read_key
        # a read key cannot delete: the server's 403 and its hint are shown
        page.click("#doc-rows button.danger")
        page.wait_for_selector("#banner:not([hidden])")
        assert "write" in page.inner_text("#banner")
        shot(page, "7-read-key-refused")
        page.wait_for_selector("#doc-rows td:has-text('a.md')")

        page.click("nav a[data-page=evals]")
        page.wait_for_selector("#eval-rows td:has-text('set.jsonl')")
        assert "1.000" in page.inner_text("#eval-rows tr")  # hit@5 of the stored run
        page.click("#eval-rows button")
        frame = page.frame_locator("#report")
        frame.locator("text=e1").first.wait_for()
        assert frame.locator("h2").count() >= 1
        page.wait_for_timeout(300)  # let the frame paint before the screenshot
        shot(page, "8-eval-report")
