"""The index of evaluation runs, in the knowledge base's own database (table ``eval_runs``).

A run's files (cases, metrics, snapshot, report) live in a folder; the row is written last, after
the folder is complete, so a run killed midway is never listed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .sqlite import SqliteStore


@dataclass(frozen=True)
class RunRow:
    id: str
    created_at: float
    dataset: str
    dataset_sha256: str
    retrieval_only: bool
    folder: str
    metrics: dict  # the flat metric values of metrics.json


class EvalRunIndex:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def add(self, row: RunRow) -> None:
        with self._store._lock, self._store._tx():
            self._store._db.execute("INSERT INTO eval_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                                    (row.id, row.created_at, row.dataset, row.dataset_sha256,
                                     int(row.retrieval_only), row.folder, json.dumps(row.metrics)))

    def list(self) -> list[RunRow]:
        with self._store._lock:
            rows = self._store._db.execute("SELECT id, created_at, dataset, dataset_sha256, retrieval_only, "
                                           "folder, metrics FROM eval_runs ORDER BY created_at").fetchall()
        return [RunRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], json.loads(r[6])) for r in rows]

    def delete(self, run_id: str) -> None:
        with self._store._lock, self._store._tx():
            self._store._db.execute("DELETE FROM eval_runs WHERE id = ?", (run_id,))
