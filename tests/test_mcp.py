"""The MCP server, driven by the official ``mcp`` SDK client over both transports.

stdio: a real ``zhiku mcp`` process. Streamable HTTP: the FastAPI app on a loopback uvicorn, with
keys on (the key matrix) and off. Knowledge bases are tiny and use the FAKE hash embedder (set in the
home's config.toml, so the server thread and the child process pick it up without environment).
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from zhiku import KnowledgeBase
from zhiku.server.app import create_app
from zhiku.server.mcp_server import add_text
from zhiku.store.keys import KeyStore

from .test_kb import write
from .test_server import running

SRC = str(Path(__file__).resolve().parents[1] / "src")
DOCS = {
    "评估.md": "# 评估\n\n想要做应用最首要的是先把评估工作做好。\n",
    "sampling.md": "# Sampling\n\nA higher temperature makes the probability distribution flatter.\n",
    "数据.txt": "数据决定了模型效果的上限，算法只是逼近这个上限。\n",
}
NOTE = "# 会议纪要\n\n下周三发布知库的 MCP 服务器，负责人是小王。\n"


def make_home(root: Path, names=("notes",)) -> Path:
    home = root / "home"
    write(home / "config.toml", '[embedder]\nname = "fake-hash"\n')
    for source, text in DOCS.items():
        write(root / "docs" / source, text)
    for name in names:
        with KnowledgeBase.open(name, home=home) as kb:
            kb.add([root / "docs"])
    return home


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


# -- stdio ----------------------------------------------------------------------------------------------
def stdio_params(home: Path, kb: str | None, read_only: bool = False) -> StdioServerParameters:
    args = ["-m", "zhiku", "mcp", "--home", str(home), *(["--kb", kb] if kb else []),
            *(["--read-only"] if read_only else [])]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
           "OMP_WAIT_POLICY": "passive", "HOME": str(home.parent),
           "XDG_DATA_HOME": str(home.parent / "xdg-data"), "XDG_CACHE_HOME": str(home.parent / "xdg-cache")}
    return StdioServerParameters(command=sys.executable, args=args, env=env)  # the real `zhiku mcp` command


def test_stdio_tools_search_ask_list_and_add(tmp_path):
    home = make_home(tmp_path, names=("notes", "other"))

    async def main():
        async with Client(stdio_params(home, "notes")) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"search", "ask", "list_documents", "add_document"}
            for tool in tools.values():
                assert tool.description and tool.output_schema
                assert all(p.get("description") for p in tool.input_schema["properties"].values()), tool.name
            assert tools["search"].input_schema["required"] == ["query"]
            assert tools["search"].annotations.read_only_hint and not tools["add_document"].annotations.read_only_hint

            found = await client.call_tool("search", {"query": "做应用首先要做好什么？", "k": 2})
            assert not found.is_error, text_of(found)
            hit = found.structured_content["hits"][0]
            assert found.structured_content["kb"] == "notes"  # run_stdio's kb is the default
            assert hit["source"] == "评估.md" and hit["heading_path"] == ["评估"] and hit["lexical_rank"] == 1
            assert "评估工作" in hit["text"] and hit["chunk_id"] and len(found.structured_content["hits"]) <= 2
            assert "评估.md" in text_of(found)  # the text content carries the same JSON, unescaped

            docs = await client.call_tool("list_documents", {"kb": "other"})
            assert docs.structured_content["kb"] == "other"
            assert sorted(d["source"] for d in docs.structured_content["documents"]) == sorted(DOCS)
            assert all(d["chunks"] >= 1 for d in docs.structured_content["documents"])

            answer = (await client.call_tool("ask", {"question": "What makes the distribution flatter?",
                                                     "no_llm": True})).structured_content
            assert answer["mode"] == "extractive" and not answer["refused"]
            assert answer["citations"][0]["source"] == "sampling.md" and "[1]" in answer["answer"]
            assert "temperature" in answer["citations"][0]["excerpt"]

            added = await client.call_tool("add_document", {"filename": "../../会议纪要.md", "content": NOTE})
            assert not added.is_error, text_of(added)
            assert added.structured_content == {"kb": "notes", "source": "会议纪要.md", "status": "added",
                                                "chunks": 1, "reason": ""}
            assert (home / "kbs" / "notes" / "uploads" / "会议纪要.md").read_text(encoding="utf-8") == NOTE
            again = await client.call_tool("add_document", {"filename": "会议纪要.md", "content": NOTE})
            assert again.structured_content["status"] == "unchanged"
            found = await client.call_tool("search", {"query": "MCP 服务器什么时候发布？", "k": 1})
            assert found.structured_content["hits"][0]["source"] == "会议纪要.md"

            # errors are tool errors with the message and the hint
            missing = await client.call_tool("search", {"query": "x", "kb": "nope"})
            assert missing.is_error and "no knowledge base named 'nope'" in text_of(missing)
            assert "available: notes, other" in text_of(missing)
            pdf = await client.call_tool("add_document", {"filename": "a.pdf", "content": "text"})
            assert pdf.is_error and "takes text" in text_of(pdf) and "hint:" in text_of(pdf)
            exe = await client.call_tool("add_document", {"filename": "run.exe", "content": "text"})
            assert exe.is_error and "unsupported file type" in text_of(exe)
            blank = await client.call_tool("add_document", {"filename": "blank.md", "content": "  \n"})
            assert blank.is_error and "empty" in text_of(blank)
            empty = await client.call_tool("search", {"query": ""})
            assert empty.is_error  # the schema's minLength

    anyio.run(main)
    assert sorted(p.name for p in (home / "kbs" / "notes" / "uploads").iterdir()) == ["会议纪要.md"]


def test_stdio_read_only_and_a_bad_kb(tmp_path):
    home = make_home(tmp_path)

    async def main():
        async with Client(stdio_params(home, None, read_only=True)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == {"search", "ask", "list_documents"}
            docs = await client.call_tool("list_documents", {})
            assert docs.is_error and "no knowledge base named 'default'" in text_of(docs)  # no --kb: "default"
            assert "available: notes" in text_of(docs)

    anyio.run(main)
    params = stdio_params(home, "nope")
    proc = subprocess.run([params.command, *params.args], env={**os.environ, **params.env}, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0 and "no knowledge base named 'nope'" in proc.stderr  # refused before serving


def test_a_skipped_upload_is_not_kept_and_keeps_the_earlier_version(tmp_path):
    home = make_home(tmp_path)
    uploads = home / "kbs" / "notes" / "uploads"
    with KnowledgeBase.open("notes", home=home) as kb:
        assert add_text(kb, "a.md", NOTE).status == "added"
        skipped = add_text(kb, "a.md", "---\ntitle: x\n---\n")  # front matter only: no text
        assert skipped.status == "skipped" and skipped.reason == "no text found in the file"
        assert (uploads / "a.md").read_text(encoding="utf-8") == NOTE  # what the knowledge base still holds
        assert add_text(kb, "b.md", "#").status == "skipped"
        assert sorted(p.name for p in uploads.iterdir()) == ["a.md"]


# -- streamable HTTP (the app mounts it at /mcp/) --------------------------------------------------------


@asynccontextmanager
async def mcp_client(url: str, key: str | None = None, mode: str = "auto"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def call(url: str, key: str | None, tool: str, args: dict):
    async def main():
        async with mcp_client(url, key) as client:
            return await client.call_tool(tool, args)
    return anyio.run(main)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("mcp-keys"), names=("notes", "other"))
    store = KeyStore(home)
    keys = {scope: store.create("notes", scope)[0] for scope in ("read", "write")}
    keys["other"] = store.create("other", "admin")[0]
    keys["all"] = store.create("*", "read")[0]
    revoked, record = store.create("notes", "admin")
    store.revoke(record.id)
    keys["revoked"] = revoked
    store.close()
    with running(create_app(home, require_keys=True)) as url:
        yield url + "/mcp/", keys


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28 per-request path, and the initialize handshake
def test_http_lists_tools_and_searches_with_a_key(keyed, mode):
    url, keys = keyed

    async def main():
        async with mcp_client(url, keys["read"], mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"search", "ask", "list_documents", "add_document"}
            assert all(t.description for t in tools.values())
            found = await client.call_tool("search", {"query": "评估工作"})
            assert not found.is_error, text_of(found)
            assert found.structured_content["kb"] == "notes"  # the key's knowledge base is the default
            assert found.structured_content["hits"][0]["source"] == "评估.md"
            refused = await client.call_tool("add_document", {"filename": "x.md", "content": "x"})
            assert refused.is_error and "does not allow write access" in text_of(refused)  # the key reached the tool
            answer = await client.call_tool("ask", {"question": "数据决定了什么？", "no_llm": True})
            assert answer.structured_content["citations"][0]["source"] == "数据.txt"
            docs = await client.call_tool("list_documents", {})
            assert len(docs.structured_content["documents"]) == len(DOCS)

    anyio.run(main)


@pytest.mark.parametrize("who", [None, "garbage", "revoked"])
def test_http_without_a_valid_key_is_401_before_mcp(keyed, who):
    url, keys = keyed
    headers = {"Accept": "application/json, text/event-stream"}
    if who:
        headers["Authorization"] = f"Bearer {keys.get(who, who)}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "0"}}}
    r = httpx.post(url, json=body, headers=headers, timeout=30)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"] and r.json()["hint"] and r.json()["type"] == "AuthError"
    with pytest.raises(Exception):  # the SDK client cannot even connect
        call(url, keys.get(who, who) if who else None, "list_documents", {})


@pytest.mark.parametrize("who, tool, args, error", [
    ("read", "search", {"query": "评估"}, ""),
    ("read", "add_document", {"filename": "x.md", "content": "# x\n\nx"}, "does not allow write access"),
    ("read", "search", {"query": "评估", "kb": "other"}, "does not allow knowledge base 'other'"),
    ("other", "list_documents", {"kb": "notes"}, "does not allow knowledge base 'notes'"),
    ("other", "search", {"query": "x", "kb": "nope"}, "does not allow knowledge base 'nope'"),  # no name leaks
    ("other", "search", {"query": "评估"}, ""),  # its own knowledge base by default
    ("all", "search", {"query": "x", "kb": "nope"}, "no knowledge base named 'nope'"),
    ("all", "list_documents", {}, "no knowledge base named 'default'"),  # a key for every kb: no default
])
def test_http_key_matrix(keyed, who, tool, args, error):
    url, keys = keyed
    result = call(url, keys[who], tool, args)
    if not error:
        assert not result.is_error, text_of(result)
    else:
        assert result.is_error and error in text_of(result) and "hint:" in text_of(result)


def test_http_write_key_adds_a_document_that_search_then_finds(keyed):
    url, keys = keyed
    added = call(url, keys["write"], "add_document", {"filename": "会议纪要.md", "content": NOTE})
    assert not added.is_error, text_of(added)
    assert added.structured_content["status"] in ("added", "replaced") and added.structured_content["kb"] == "notes"
    found = call(url, keys["read"], "search", {"query": "MCP 服务器什么时候发布？", "k": 1})
    assert found.structured_content["hits"][0]["source"] == "会议纪要.md"
    assert call(url, keys["other"], "search", {"query": "MCP 服务器"}).structured_content["hits"][0][
        "source"] != "会议纪要.md"  # other knowledge bases are untouched


def test_http_without_keys_on_loopback(tmp_path):
    home = make_home(tmp_path)
    with running(create_app(home, require_keys=False)) as url:
        found = call(url + "/mcp", None, "search", {"query": "temperature", "kb": "notes"})  # 307 to /mcp/
        assert not found.is_error and found.structured_content["hits"][0]["source"] == "sampling.md"
        added = call(url + "/mcp/", None, "add_document", {"filename": "n.txt", "content": "知库笔记", "kb": "notes"})
        assert added.structured_content["status"] == "added"
        # DNS rebinding: a page on another host name must not reach the tools of a keyless server
        r = httpx.post(url + "/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30,
                       headers={"Host": "evil.example:80", "Accept": "application/json, text/event-stream"})
        assert r.status_code in (403, 421)
        assert httpx.get(url + "/mcp/other", timeout=30).status_code == 404
