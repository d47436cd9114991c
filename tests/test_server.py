"""The HTTP server on a real loopback port (uvicorn), with keys on: auth matrix, search, errors."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
from contextlib import contextmanager
import urllib.request

import pytest

import uvicorn  # noqa: E402

from zhiku import KnowledgeBase  # noqa: E402
from zhiku.server.app import create_app  # noqa: E402
from zhiku.server.run import is_loopback, require_keys_for  # noqa: E402
from zhiku.store.keys import KeyStore  # noqa: E402

from .test_cli import zhiku  # noqa: E402
from .test_kb import write  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_knowledge_bases(tmp_path):
    """A home with knowledge bases `notes` and `other`, each holding 评估.md; returns the home."""
    home = tmp_path / "home"
    write(tmp_path / "docs" / "评估.md", "# 评估\n\n想要做应用最首要的是先把评估工作做好。\n")
    for name in ("notes", "other"):
        with KnowledgeBase.open(name, home=home) as kb:
            kb.add([tmp_path / "docs"])
    return home


@pytest.fixture
def server(tmp_path, fake_embedder, monkeypatch):
    monkeypatch.setenv("ZHIKU_EMBEDDER_NAME", "fake-hash")
    # answers over HTTP use the real bundled 0.5B, kept short
    for key, value in {"MODEL": "qwen2.5-0.5b", "MAX_TOKENS": "24", "CONTEXT_WINDOW": "2048"}.items():
        monkeypatch.setenv(f"ZHIKU_GENERATE_{key}", value)
    home = two_knowledge_bases(tmp_path)
    store = KeyStore(home)
    made = {scope: store.create("notes", scope)[0] for scope in ("read", "write")}
    made["other"] = store.create("other", "admin")[0]
    revoked, rec = store.create("notes", "admin")
    store.revoke(rec.id)
    made["revoked"] = revoked
    store.close()
    with running(create_app(home, require_keys=True)) as url:
        yield url, made, home


@contextmanager
def running(app):
    """Serve ``app`` with a real uvicorn on a free loopback port; yields its base URL."""
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def call(url, path, key=None, body=None):
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_search_over_http_is_the_same_search(server):
    url, keys, home = server
    status, body = call(url, "/api/kbs/notes/search", keys["read"], {"query": "做应用首先要做好什么？", "k": 3})
    assert status == 200
    with KnowledgeBase.open("notes", home=home, create=False) as kb:
        direct = kb.search("做应用首先要做好什么？", k=3).as_dict()
    assert [h["chunk_id"] for h in body["hits"]] == [h["chunk_id"] for h in direct["hits"]]
    assert body["hits"][0]["trace"]["lexical_rank"] == 1


@pytest.mark.parametrize("who, kb, expected", [
    (None, "notes", 401),  # no key
    ("garbage", "notes", 401),  # malformed key
    ("revoked", "notes", 401),  # revoked key
    ("other", "notes", 403),  # key for another knowledge base
    ("read", "notes", 200),
    ("read", "other", 403),
])
def test_auth_matrix(server, who, kb, expected):
    url, keys, _ = server
    key = keys.get(who, who)
    status, body = call(url, f"/api/kbs/{kb}/search", key, {"query": "评估"})
    assert status == expected
    if expected != 200:
        assert body["error"] and body["hint"]


def test_listing_errors_and_schema(server):
    url, keys, _ = server
    status, kbs = call(url, "/api/kbs", keys["read"])  # only what the key may use
    assert status == 200 and [k["name"] for k in kbs] == ["notes"] and kbs[0]["documents"] == 1
    assert call(url, "/api/kbs")[0] == 401
    status, info = call(url, "/api/status")  # public, but names no knowledge base without a key
    assert status == 200 and info["keys_required"] and "knowledge_bases" not in info
    status, body = call(url, "/api/kbs/nokb/search", None, {"query": "x"})
    assert status == 401  # auth first: no knowledge-base names leak to callers without a key
    admin_all = KeyStore(server[2]).create("*", "admin")[0]
    status, body = call(url, "/api/kbs/nokb/documents", admin_all)
    assert status == 404 and "no knowledge base named 'nokb'" in body["error"]
    assert call(url, "/api/kbs/notes/search", keys["read"], {"query": ""})[0] == 422
    status, schema = call(url, "/openapi.json")
    assert status == 200 and "/api/kbs/{kb}/search" in schema["paths"]


def test_bind_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert require_keys_for("0.0.0.0", keys_flag=False) and not require_keys_for("127.0.0.1", keys_flag=False)
    proc = zhiku("serve", "--host", "0.0.0.0", "--port", "8765", check=2)
    assert "requires API keys" in proc.stderr and "zhiku keys create" in proc.stderr
    assert "not a port number" in zhiku("serve", "--port", "0", check=2).stderr


def test_ask_json_without_a_model(server):
    url, keys, _ = server
    status, body = call(url, "/api/kbs/notes/ask", keys["read"], {"question": "做应用首先要做好什么？", "no_llm": True})
    assert status == 200 and body["mode"] == "extractive" and "评估" in body["answer"]
    assert body["citations"][0]["source"] == "评估.md"


@pytest.mark.slow
def test_ask_streams_tokens_then_the_answer_then_done(server):
    url, keys, _ = server
    req = urllib.request.Request(url + "/api/kbs/notes/ask", method="POST",
                                 data=json.dumps({"question": "做应用首先要做好什么？", "stream": True}).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {keys['read']}")
    with urllib.request.urlopen(req, timeout=180) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [block.split("\n", 1) for block in r.read().decode().strip().split("\n\n")]
    names = [e[0].removeprefix("event: ") for e in events]
    assert names[-4:] == ["citations", "timings", "answer", "done"] and names.count("answer") == 1
    tokens = [json.loads(e[1].removeprefix("data: "))["text"] for e in events if e[0] == "event: token"]
    answer = json.loads(events[-2][1].removeprefix("data: "))
    assert tokens and answer["mode"] == "llm" and answer["generator"].startswith("llama.cpp:")
    assert "".join(tokens).strip()[:5] in (answer["draft_answer"] or answer["answer"]) or answer["check"]["invalid"]
    status, info = call(url, "/api/status")
    (queue,) = info["generation"]
    assert queue["served"] >= 1 and queue["active"] == 0 and queue["waiting"] == 0


# -- the OpenAI-compatible API, driven by the official openai client, unchanged ---------------------
def _client(url, key):
    import openai
    return openai.OpenAI(base_url=url + "/v1", api_key=key or "none", max_retries=0)


def test_openai_models_and_embeddings(server):
    url, keys, _ = server
    client = _client(url, keys["read"])
    assert [m.id for m in client.models.list()] == ["zhiku/notes"]
    texts = ["evaluation comes first", "数据决定上限"]
    out = client.embeddings.create(model="zhiku/notes", input=texts)
    from zhiku.backends.fake import FakeHashEmbedder  # the server's knowledge bases use the FAKE embedder here
    direct = FakeHashEmbedder().embed_batch(texts, is_query=False)
    import numpy as np
    assert np.allclose(np.array([d.embedding for d in out.data]), direct, atol=1e-6)
    assert any(out.data[0].embedding)
    import openai
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="zhiku/other", input="x")
    with pytest.raises(openai.AuthenticationError):
        _client(url, keys["revoked"]).models.list()
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="gpt-4o", input="x")


@pytest.mark.slow
def test_openai_chat_completions_stream_and_whole(server):
    url, keys, _ = server
    client = _client(url, keys["read"])
    messages = [{"role": "user", "content": "做应用首先要做好什么？"}]
    whole = client.chat.completions.create(model="zhiku/notes", messages=messages)
    assert whole.choices[0].message.content and whole.choices[0].finish_reason in ("stop", "length")
    extra = whole.model_extra["zhiku"]
    assert extra["answer"] == whole.choices[0].message.content and "citations" in extra
    stream = client.chat.completions.create(model="zhiku/notes", messages=messages, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert "citations" in chunks[-1].model_extra["zhiku"]

