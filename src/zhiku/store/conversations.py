"""Chat conversations, kept in the knowledge base's own database (table ``conversations``/``turns``).

A turn is written once, complete, in one transaction after its answer has finished; an answer that
was cut off is not stored, so a resumed conversation never builds on half an answer.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

from ..errors import ItemNotFound
from .sqlite import SqliteStore


@dataclass(frozen=True)
class StoredTurn:
    idx: int
    question: str
    standalone: str
    answer: str
    refused: bool
    citations: list = field(default_factory=list)
    created_at: float = 0.0


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: float
    updated_at: float
    turns: int = 0


class Conversations:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def create(self, title: str) -> str:
        cid = time.strftime("%Y%m%d") + "-" + secrets.token_hex(3)
        now = time.time()
        with self._store._lock, self._store._tx():
            self._store._db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?)", (cid, title[:80], now, now))
        return cid

    def add_turn(self, cid: str, question: str, standalone: str, answer: str, refused: bool,
                 citations: list) -> int:
        self.get(cid)
        now = time.time()
        with self._store._lock, self._store._tx():
            db = self._store._db
            (idx,) = db.execute("SELECT coalesce(max(idx), -1) + 1 FROM turns WHERE conversation_id = ?",
                                (cid,)).fetchone()
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (cid, idx, question, standalone, answer, int(refused),
                        json.dumps(citations, ensure_ascii=False), now))
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid))
        return idx

    def list(self) -> list[Conversation]:
        with self._store._lock:
            rows = self._store._db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, count(t.idx) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id ORDER BY c.updated_at DESC").fetchall()
        return [Conversation(*r) for r in rows]

    def get(self, cid: str) -> Conversation:
        with self._store._lock:
            row = self._store._db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, count(t.idx) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id WHERE c.id = ? GROUP BY c.id", (cid,)).fetchone()
        if row is None:
            raise ItemNotFound(f"no conversation {cid!r} in this knowledge base",
                             "list conversations with: zhiku conversations list")
        return Conversation(*row)

    def turns(self, cid: str) -> list[StoredTurn]:
        self.get(cid)
        with self._store._lock:
            rows = self._store._db.execute(
                "SELECT idx, question, standalone, answer, refused, citations, created_at FROM turns "
                "WHERE conversation_id = ? ORDER BY idx", (cid,)).fetchall()
        return [StoredTurn(r[0], r[1], r[2], r[3], bool(r[4]), json.loads(r[5]), r[6]) for r in rows]

    def delete(self, cid: str) -> None:
        self.get(cid)
        with self._store._lock, self._store._tx():
            self._store._db.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
            self._store._db.execute("DELETE FROM conversations WHERE id = ?", (cid,))
