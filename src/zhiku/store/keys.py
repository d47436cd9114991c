"""API keys: stored hashed in ``<home>/keys.sqlite``, shown once, scoped to a knowledge base.

A key reads ``zk_<id>_<secret>``. The id is public (it names the key in lists and logs); only
the SHA-256 of the secret is stored, so a copy of the database does not give working keys.
Scopes nest: ``read`` < ``write`` < ``admin``. A key is bound to one knowledge base, or to all
of them with ``*``.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import AuthError, Forbidden, UsageError

SCOPES = ("read", "write", "admin")
ALL_KBS = "*"
_KEY = re.compile(r"^zk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,})$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    kb TEXT NOT NULL,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
)"""


@dataclass(frozen=True)
class ApiKey:
    id: str
    kb: str
    scope: str
    label: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    def allows(self, kb: str, scope: str) -> bool:
        return (self.kb in (kb, ALL_KBS)) and SCOPES.index(self.scope) >= SCOPES.index(scope)


class KeyStore:
    def __init__(self, home: str | Path) -> None:
        path = Path(home) / "keys.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def create(self, kb: str, scope: str, label: str = "") -> tuple[str, ApiKey]:
        """A new key; returns the full key (shown once, never stored) and its record."""
        if scope not in SCOPES:
            raise UsageError(f"unknown scope {scope!r}", f"use one of: {', '.join(SCOPES)}")
        kid, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
        record = ApiKey(kid, kb, scope, label, time.time())
        with self._lock:
            self._db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                             (kid, _digest(secret), kb, scope, label, record.created_at))
        return f"zk_{kid}_{secret}", record

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute("SELECT id, kb, scope, label, created_at, revoked_at, last_used_at "
                                    "FROM api_keys ORDER BY created_at").fetchall()
        return [ApiKey(*r) for r in rows]

    def revoke(self, kid: str) -> ApiKey:
        kid = kid.removeprefix("zk_").split("_")[0]
        with self._lock:
            n = self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                 (time.time(), kid)).rowcount
        found = [k for k in self.list() if k.id == kid]
        if not found:
            raise UsageError(f"no API key with id {kid!r}", "list keys with: zhiku keys list")
        if not n:
            raise UsageError(f"API key {kid} was already revoked")
        return found[0]

    def verify(self, key: str | None) -> ApiKey:
        """The record of a valid, unrevoked key; AuthError (401) for a missing, malformed, unknown or revoked one."""
        if not key:
            raise AuthError("this server needs an API key", "send it as: Authorization: Bearer zk_…")
        m = _KEY.match(key.strip())
        if not m:
            raise AuthError("malformed API key",
                            "keys look like zk_<8 hex>_<secret>; create one with: zhiku keys create")
        kid, secret = m.groups()
        with self._lock:
            row = self._db.execute("SELECT secret_sha256, kb, scope, label, created_at, revoked_at, last_used_at "
                                   "FROM api_keys WHERE id = ?", (kid,)).fetchone()
        if row is None or not hmac.compare_digest(row[0], _digest(secret)):
            raise AuthError("unknown API key", "check the key, or create one with: zhiku keys create")
        record = ApiKey(kid, *row[1:])
        if record.revoked_at is not None:
            raise AuthError(f"API key {kid} was revoked", "create a new one with: zhiku keys create")
        with self._lock:
            self._db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (time.time(), kid))
        return record

    def authorize(self, key: str | None, kb: str, scope: str) -> ApiKey:
        """The key's record if it may use ``scope`` on ``kb``; AuthError (401) or Forbidden (403) if not."""
        return self.authorize_record(self.verify(key), kb, scope)

    def authorize_record(self, record: ApiKey, kb: str, scope: str) -> ApiKey:
        """``record`` if it may use ``scope`` on ``kb``, else Forbidden (403)."""
        if not record.allows(kb, scope):
            what = f"knowledge base {kb!r}" if record.kb not in (kb, ALL_KBS) else f"{scope} access"
            raise Forbidden(f"API key {record.id} ({record.scope} on {record.kb}) does not allow {what}",
                            "use a key with that scope for that knowledge base")
        return record

    def close(self) -> None:
        self._db.close()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
