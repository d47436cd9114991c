"""API keys: hashed at rest, shown once, the auth matrix (no key, wrong, revoked, scope, other KB)."""
from __future__ import annotations

import json

import pytest

from zhiku.errors import AuthError, Forbidden, UsageError
from zhiku.store.keys import KeyStore

from .test_cli import zhiku


@pytest.fixture
def store(tmp_path):
    s = KeyStore(tmp_path)
    yield s
    s.close()


def test_the_secret_is_not_stored(store, tmp_path):
    key, record = store.create("notes", "read")
    secret = key.split("_", 2)[2]
    assert key.startswith(f"zk_{record.id}_") and len(secret) >= 32
    store.close()
    for f in tmp_path.glob("keys.sqlite*"):
        assert secret.encode() not in f.read_bytes()


@pytest.mark.parametrize("scope, kb, needed, outcome", [
    ("read", "notes", "read", "ok"),
    ("read", "notes", "write", Forbidden),  # read key on a write route
    ("write", "notes", "read", "ok"),  # scopes nest
    ("write", "notes", "admin", Forbidden),
    ("admin", "notes", "write", "ok"),
    ("read", "other", "read", Forbidden),  # key for another knowledge base
    ("admin", "*", "admin", "ok"),  # a key for every knowledge base
])
def test_scope_and_knowledge_base(store, scope, kb, needed, outcome):
    key, _ = store.create(kb, scope)
    if outcome == "ok":
        assert store.authorize(key, "notes", needed).scope == scope
    else:
        with pytest.raises(outcome) as info:
            store.authorize(key, "notes", needed)
        assert info.value.status == 403


@pytest.mark.parametrize("bad", [None, "", "Bearer", "zk_short_x", "zk_0000000g_" + "a" * 30])
def test_missing_or_malformed_keys_are_401(store, bad):
    with pytest.raises(AuthError) as info:
        store.authorize(bad, "notes", "read")
    assert info.value.status == 401 and not isinstance(info.value, Forbidden)


def test_wrong_secret_and_revoked_key_are_401(store):
    key, record = store.create("notes", "write")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthError, match="unknown API key"):
        store.authorize(forged, "notes", "read")
    store.authorize(key, "notes", "read")
    assert store.list()[0].last_used_at is not None
    store.revoke(record.id)
    with pytest.raises(AuthError, match="revoked"):
        store.authorize(key, "notes", "read")
    with pytest.raises(UsageError, match="already revoked"):
        store.revoke(record.id)
    with pytest.raises(UsageError, match="no API key"):
        store.revoke("deadbeef")
    with pytest.raises(UsageError, match="unknown scope"):
        store.create("notes", "owner")


def test_cli_create_shows_the_key_once_list_never_does_revoke_works():
    made = zhiku("keys", "create", "--kb", "notes", "--scope", "write", "--label", "ci", check=0)
    key = made.stdout.strip()
    assert key.startswith("zk_") and "shown only now" in made.stderr
    listed = json.loads(zhiku("keys", "list", "--json", check=0).stdout)
    assert [(k["kb"], k["scope"], k["label"]) for k in listed] == [("notes", "write", "ci")]
    assert key not in zhiku("keys", "list", check=0).stdout
    kid = listed[0]["id"]
    assert "revoked key" in zhiku("keys", "revoke", kid, check=0).stdout
    assert json.loads(zhiku("keys", "list", "--json", check=0).stdout)[0]["revoked_at"]
    assert "needs the key's ID" in zhiku("keys", "revoke", check=2).stderr
    assert "invalid knowledge base name" in zhiku("keys", "create", "--kb", "../x", check=2).stderr
