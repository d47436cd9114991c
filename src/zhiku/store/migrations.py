"""Named, append-only schema migrations. Never edit a released one; add a new one."""
from __future__ import annotations

import sqlite3
import time

from ..errors import SchemaTooNew

MIGRATIONS: list[tuple[str, str]] = [
    ("001_sources_chunks_fts", """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            chunker TEXT NOT NULL,
            format TEXT NOT NULL,
            size INTEGER NOT NULL,
            text TEXT NOT NULL,
            added_at REAL NOT NULL
        );
        CREATE INDEX sources_source ON sources(source);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chunk_id TEXT NOT NULL UNIQUE,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            heading_path TEXT NOT NULL,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            embedding BLOB NOT NULL
        );
        CREATE INDEX chunks_source ON chunks(source_id, ordinal);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, tokenize = 'unicode61 remove_diacritics 0');
    """),
    ("002_fts_vocabulary", """
        CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, row);
    """),
    ("003_conversations", """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            question TEXT NOT NULL,
            standalone TEXT NOT NULL,
            answer TEXT NOT NULL,
            refused INTEGER NOT NULL,
            citations TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (conversation_id, idx)
        );
    """),
    ("004_eval_runs", """
        CREATE TABLE eval_runs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            dataset TEXT NOT NULL,
            dataset_sha256 TEXT NOT NULL,
            retrieval_only INTEGER NOT NULL,
            folder TEXT NOT NULL,
            metrics TEXT NOT NULL
        );
    """),
]


def apply(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction. Returns the names applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    known = {name for name, _ in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise SchemaTooNew(f"this knowledge base was written by a newer zhiku (migrations {sorted(unknown)})",
                           "upgrade zhiku: pip install -U zhiku")
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
