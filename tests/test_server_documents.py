"""The server's write side on a real loopback port: knowledge bases, uploads and ingestion jobs,
upload abuse, document delete and re-sync, passages, conversations and eval runs."""
from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest

from zhiku import KnowledgeBase
from zhiku.server.app import create_app
from zhiku.store.keys import KeyStore

from .test_server import running, two_knowledge_bases

EVAL_LINE = {"id": "q1", "question": "做应用首先要做好什么？", "answerable": True,
             "evidence": [{"source": "评估.md", "text": "想要做应用最首要的是先把评估工作做好"}],
             "keywords": [["评估"]]}


@pytest.fixture
def site(tmp_path, fake_embedder, monkeypatch):
    """A server with keys on over two knowledge bases, small upload limits, and keys of every scope."""
    monkeypatch.setenv("ZHIKU_EMBEDDER_NAME", "fake-hash")
    monkeypatch.setenv("ZHIKU_INGEST_MAX_FILE_MB", "0.05")  # 52 KB per file
    monkeypatch.setenv("ZHIKU_SERVER_MAX_UPLOAD_MB", "0.5")  # 512 KB per request
    monkeypatch.setenv("ZHIKU_SERVER_MAX_UPLOAD_FILES", "20")
    home = two_knowledge_bases(tmp_path)
    store = KeyStore(home)
    keys = {scope: store.create("notes", scope)[0] for scope in ("read", "write", "admin")}
    keys["other"] = store.create("other", "admin")[0]
    keys["all"] = store.create("*", "admin")[0]
    store.close()
    with running(create_app(home, require_keys=True)) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client, keys, home


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def upload(client, key, files, kb="notes"):
    """POST files [(name, bytes)]; returns the response."""
    return client.post(f"/api/kbs/{kb}/documents", headers=auth(key),
                       files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def finished(client, key, job):
    """Follow a job's Server-Sent Events to the end; returns (progress events, final job)."""
    events = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events", headers=auth(key)) as r:
        assert r.status_code == 200
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "done"
    return events, events[-1][1]


def resync(client, key, kb="notes") -> dict:
    return client.post(f"/api/kbs/{kb}/sync", headers=auth(key)).json()["job"]


def sources(client, key, kb="notes"):
    r = client.get(f"/api/kbs/{kb}/documents", headers=auth(key))
    assert r.status_code == 200
    return {d["source"]: d for d in r.json()}


def test_upload_ingests_with_progress_and_search_finds_it(site):
    client, keys, home = site
    r = upload(client, keys["write"], [("rag.md", "# 检索\n\n混合检索把关键词和向量结果用倒数排名融合。\n".encode()),
                                       ("notes.txt", b"Reciprocal rank fusion merges the lexical and vector lists.")])
    assert r.status_code == 202
    job = r.json()["job"]
    assert job["kb"] == "notes" and job["state"] in ("queued", "running", "done")
    events, final = finished(client, keys["read"], job)
    assert final["state"] == "done" and final["counts"]["added"] == 2 and final["files_done"] == 2
    assert final["chunks_embedded"] >= 2
    versions = [e[1]["version"] for e in events]
    assert versions == sorted(versions) and all(name == "progress" for name, _ in events[:-1])
    assert client.get(f"/api/jobs/{job['id']}", headers=auth(keys["read"])).json()["state"] == "done"
    assert {"rag.md", "notes.txt", "评估.md"} <= set(sources(client, keys["read"]))
    hits = client.post("/api/kbs/notes/search", headers=auth(keys["read"]),
                       json={"query": "倒数排名融合", "k": 3}).json()["hits"]
    assert hits[0]["source"] == "rag.md"
    assert (home / "kbs" / "notes" / "uploads" / "rag.md").is_file()
    listed = client.get("/api/jobs", headers=auth(keys["read"])).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert client.get("/api/jobs", headers=auth(keys["other"])).json() == []  # another KB's jobs stay hidden
    assert client.get(f"/api/jobs/{job['id']}", headers=auth(keys["other"])).status_code == 403


def test_upload_abuse_is_refused_or_cleaned_and_nothing_is_lost(site):
    client, keys, home = site
    folder = home / "kbs" / "notes" / "uploads"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("a.txt", "hello " * 1000)
    r = upload(client, keys["write"], [
        ("../../../etc/evil.md", "# 路径\n\n穿越的文件名只保留基本名。\n".encode()),
        ("..\\..\\win.md", b"# win\n\nbackslash traversal keeps the base name only.\n"),
        ("..", b"x"),
        ("archive.zip", zipped.getvalue()),            # a type zhiku does not read: refused at the door
        ("looks-like-text.md", zipped.getvalue()),     # a zip named .md: ingest finds it binary, skips it
        ("empty.txt", b""),
        ("big.txt", b"a" * 60_000),                    # over the 52 KB per-file limit
        ("dup.md", b"# one\n\nfirst copy of the file.\n"), ("dup.md", b"# two\n\nsecond copy of the file.\n"),
    ])
    assert r.status_code == 202
    job = r.json()["job"]
    rejected = {x["name"]: x["reason"] for x in job["rejected"]}
    assert "unsupported file type .zip" in rejected["archive.zip"]
    assert "unusable file name" in rejected[".."]
    assert "over the" in rejected["big.txt"] and "given twice" in rejected["dup.md"]
    _, final = finished(client, keys["write"], job)
    by_name = {f["source"]: f for f in final["files"]}
    assert by_name["evil.md"]["status"] == "added" and by_name["win.md"]["status"] == "added"
    assert by_name["looks-like-text.md"]["status"] == "skipped" and by_name["empty.txt"]["status"] == "skipped"
    assert by_name["dup.md"]["status"] == "added"
    assert sorted(p.name for p in folder.iterdir()) == ["dup.md", "evil.md", "win.md"]  # skipped files removed
    assert not (home / "etc").exists() and not (home.parent / "etc" / "evil.md").exists()
    assert "looks-like-text.md" not in sources(client, keys["read"])

    # a bad new version of a file does not cost the good one
    r = upload(client, keys["write"], [("dup.md", zipped.getvalue())])
    _, final = finished(client, keys["write"], r.json()["job"])
    assert final["files"][0]["status"] == "skipped"
    assert (folder / "dup.md").read_bytes() == b"# one\n\nfirst copy of the file.\n"
    assert sources(client, keys["read"])["dup.md"]["chunks"] == 1


def test_upload_limits_on_count_and_request_size(site):
    client, keys, home = site
    r = upload(client, keys["write"], [(f"f{i}.txt", b"some text here") for i in range(21)])
    assert r.status_code == 413 and "over the limit of 20" in r.json()["error"]
    r = upload(client, keys["write"], [(f"many-{i}.txt", f"第{i}个文件的内容。".encode()) for i in range(20)])
    _, final = finished(client, keys["write"], r.json()["job"])  # the most files allowed at once: all in
    assert final["counts"]["added"] == 20 and len(sources(client, keys["read"])) == 21
    r = upload(client, keys["write"], [(f"g{i}.txt", b"b" * 40_000) for i in range(14)])  # 560 KB > 512 KB
    assert r.status_code == 413 and "max_upload_mb" in r.json()["hint"]
    # a body with no declared length is counted as it arrives and cut off at the limit
    def body():
        yield b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\n'
        for _ in range(40):
            yield b"x" * 65536
    multipart = {**auth(keys["write"]), "Content-Type": "multipart/form-data; boundary=zz"}
    r = client.post("/api/kbs/notes/documents", headers=multipart, content=body())
    assert r.status_code == 413
    big_json = {"query": "x" * 10, "pad": "y" * 3_000_000}
    assert client.post("/api/kbs/notes/search", headers=auth(keys["read"]), json=big_json).status_code == 413
    assert len(sources(client, keys["read"])) == 21  # nothing from the refused requests
    assert not [p for p in (home / "kbs" / "notes" / "uploads").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("who,method,path,expected", [
    (None, "post", "/api/kbs/notes/documents", 401),
    ("read", "post", "/api/kbs/notes/documents", 403),          # read key on a write route
    ("other", "post", "/api/kbs/notes/documents", 403),         # key for another KB
    ("read", "delete", "/api/kbs/notes/documents?source=评估.md", 403),
    ("read", "post", "/api/kbs/notes/sync", 403),
    ("write", "delete", "/api/kbs/notes", 403),                 # deleting a KB takes admin
    ("wrong", "get", "/api/kbs/notes/documents", 401),
    ("read", "get", "/api/kbs/notes/conversations", 200),
    ("read", "get", "/api/kbs/notes/evals", 200),
    ("other", "get", "/api/kbs/notes/evals", 403),
])
def test_auth_matrix_on_write_and_admin_routes(site, who, method, path, expected):
    client, keys, _ = site
    headers = {} if who is None else auth(keys.get(who, "zk_00000000_" + "x" * 30))
    kwargs = {}
    if path.endswith("documents") and method == "post":
        kwargs = {"files": [("files", ("a.md", b"# a\n\ntext", "text/markdown"))]}
    if path.endswith("/sync"):
        kwargs = {"json": {}}
    r = client.request(method.upper(), path, headers=headers, **kwargs)
    assert r.status_code == expected, r.text
    if expected >= 400:
        assert r.json()["error"] and r.json()["hint"]


def test_knowledge_bases_create_and_delete(site):
    client, keys, home = site
    assert client.post("/api/kbs", headers=auth(keys["admin"]), json={"name": "new"}).status_code == 403
    r = client.post("/api/kbs", headers=auth(keys["all"]), json={"name": "new"})
    assert r.status_code == 201 and r.json() == {"name": "new"}
    assert client.post("/api/kbs", headers=auth(keys["all"]), json={"name": "new"}).status_code == 409
    assert client.post("/api/kbs", headers=auth(keys["all"]), json={"name": "../x"}).status_code == 400
    names = [k["name"] for k in client.get("/api/kbs", headers=auth(keys["all"])).json()]
    assert names == ["new", "notes", "other"]
    job = upload(client, keys["all"], [("n.md", b"# n\n\nnew notes")], kb="new").json()["job"]
    _, final = finished(client, keys["all"], job)
    assert final["counts"]["added"] == 1
    assert client.delete("/api/kbs/new", headers=auth(keys["all"])).json() == {"deleted": "new"}
    assert not (home / "kbs" / "new").exists()
    assert client.get("/api/kbs/new/documents", headers=auth(keys["all"])).status_code == 404


def test_delete_resync_and_passage_in_context(site):
    client, keys, home = site
    text = "# 长文\n\n" + "".join(f"第{i}段：检索增强生成的一个细节，编号{i}。\n\n" for i in range(40))
    job = upload(client, keys["write"], [("long.md", text.encode())]).json()["job"]
    _, final = finished(client, keys["write"], job)
    assert final["counts"]["added"] == 1
    read = auth(keys["read"])
    hit = client.post("/api/kbs/notes/search", headers=read, json={"query": "编号20", "k": 1}).json()["hits"][0]
    p = client.get(f"/api/kbs/notes/passages/{hit['chunk_id']}", headers=read, params={"context": 50}).json()
    assert p["text"] == hit["text"] and p["source"] == "long.md" and len(p["before"]) == 50
    assert text.index(p["before"] + p["text"] + p["after"]) >= 0
    assert client.get("/api/kbs/notes/passages/nope", headers=auth(keys["read"])).status_code == 404

    # re-sync: a changed upload is re-ingested, a vanished upload is dropped
    folder = home / "kbs" / "notes" / "uploads"
    (folder / "long.md").write_text("# 长文\n\n改过的内容：重新同步会读到它。\n", encoding="utf-8")
    _, final = finished(client, keys["write"], resync(client, keys["write"]))
    statuses = {f["source"]: f["status"] for f in final["files"]}
    assert statuses["long.md"] == "replaced" and statuses["评估.md"] == "unchanged"
    (folder / "long.md").unlink()
    _, final = finished(client, keys["write"], resync(client, keys["write"]))
    assert {f["source"]: f["status"] for f in final["files"]}["long.md"] == "removed"

    r = client.delete("/api/kbs/notes/documents", headers=auth(keys["write"]), params={"source": "评估.md"})
    assert r.json() == {"source": "评估.md", "chunks_removed": 1}
    assert client.delete("/api/kbs/notes/documents", headers=auth(keys["write"]),
                         params={"source": "评估.md"}).status_code == 404
    assert sources(client, keys["read"]) == {}
    assert (home.parent / "docs" / "评估.md").is_file()  # a file added from the CLI is not the server's to delete


def test_conversations_keep_turns(site):
    client, keys, _ = site
    h = auth(keys["read"])
    conv = client.post("/api/kbs/notes/conversations", headers=h, json={"title": "评估"}).json()
    r = client.post(f"/api/kbs/notes/conversations/{conv['id']}/ask", headers=h,
                    json={"question": "做应用首先要做好什么？", "no_llm": True})
    assert r.status_code == 200 and "评估" in r.json()["answer"]
    with client.stream("POST", f"/api/kbs/notes/conversations/{conv['id']}/ask", headers=h,
                       json={"question": "为什么？", "no_llm": True, "stream": True}) as s:
        names = [line[7:] for line in s.iter_lines() if line.startswith("event: ")]
    assert names[-4:] == ["citations", "timings", "answer", "done"]
    got = client.get(f"/api/kbs/notes/conversations/{conv['id']}", headers=h).json()
    assert [t["question"] for t in got["turns"]] == ["做应用首先要做好什么？", "为什么？"]
    assert got["turns"][0]["citations"][0]["source"] == "评估.md"
    assert [c["id"] for c in client.get("/api/kbs/notes/conversations", headers=h).json()] == [conv["id"]]
    assert client.delete(f"/api/kbs/notes/conversations/{conv['id']}", headers=h).json() == {"deleted": conv["id"]}
    assert client.get(f"/api/kbs/notes/conversations/{conv['id']}", headers=h).status_code == 404


def test_eval_runs_list_metrics_and_report(site, tmp_path):
    client, keys, home = site
    from zhiku.evaluate.dataset import load_dataset
    from zhiku.evaluate.runner import EvalOptions, run_eval
    from zhiku.evaluate.runs import RunStore
    dataset = tmp_path / "set.jsonl"
    dataset.write_text(json.dumps(EVAL_LINE, ensure_ascii=False) + "\n", encoding="utf-8")
    with KnowledgeBase.open("notes", home=home, create=False) as kb:
        run = run_eval(kb, load_dataset(dataset), EvalOptions(retrieval_only=True))
        RunStore(kb).save(run)
    h = auth(keys["read"])
    (row,) = client.get("/api/kbs/notes/evals", headers=h).json()
    assert row["id"] == run.run_id and row["dataset"] == "set.jsonl" and row["metrics"]["hit@1"] == 1.0
    got = client.get(f"/api/kbs/notes/evals/{run.run_id}", headers=h).json()
    assert got["id"] == run.run_id and got["metrics"]["metrics"]["hit@1"] == 1.0
    assert isinstance(got["snapshot"], dict)
    r = client.get(f"/api/kbs/notes/evals/{run.run_id}/report", headers=h)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "q1" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    folder = str(home / "kbs" / "notes" / "evals" / run.run_id)
    for bad in ("nope", "..", "%2e%2e", folder.replace("/", "%2F")):
        assert client.get(f"/api/kbs/notes/evals/{bad}/report", headers=h).status_code == 404
    assert client.get("/api/kbs/notes/evals/latest", headers=h).json()["id"] == run.run_id


class EndlessFakeAnswerer:
    """A FAKE answerer that writes tokens until told to stop: shows whether a stream is cancelled."""

    def __init__(self) -> None:
        self.tokens = 0
        self.stopped_by = None

    def ask(self, question, history=(), extractive=False, on_token=None):
        import time
        try:
            while self.tokens < 100_000:
                on_token("字")
                self.tokens += 1
                time.sleep(0.002)
        except BaseException as exc:
            self.stopped_by = type(exc).__name__
            raise
        raise AssertionError("never stopped")


def test_a_client_leaving_mid_stream_stops_the_answer(tmp_path, fake_embedder, monkeypatch):
    import time
    monkeypatch.setenv("ZHIKU_EMBEDDER_NAME", "fake-hash")
    home = tmp_path / "home"
    with KnowledgeBase.open("notes", home=home):
        pass
    app = create_app(home, require_keys=False)
    fake = EndlessFakeAnswerer()
    app.state.registry.answerer = lambda kb, extractive: fake
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", "/api/kbs/notes/ask", json={"question": "q", "stream": True}) as r:
            for line in r.iter_lines():
                if line.startswith("event: token"):
                    break
        # the client has gone; the answer must stop at its next token instead of running on
        deadline = time.monotonic() + 10
        while fake.stopped_by is None:
            assert time.monotonic() < deadline, f"still generating after the client left ({fake.tokens} tokens)"
            time.sleep(0.05)
        assert fake.stopped_by == "_ReaderGone" and fake.tokens < 100_000
