"""``QueriesFirst``: one engine shared by searches and ingestion, with searches served first.

A search is waiting for its one query vector; ingestion embeds batch after batch and can wait.
So a query that arrives while a passage batch runs goes next, ahead of the following batch, and
a search does not queue behind a whole upload. So that ingestion still moves while searches
pour in, a waiting batch gets its turn after ``max_queries_in_a_row`` queries.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class QueriesFirst:
    def __init__(self, max_queries_in_a_row: int = 8) -> None:
        self.max_in_a_row = max_queries_in_a_row
        self._cond = threading.Condition()
        self._busy = False
        self._queries_waiting = 0
        self._batches_waiting = 0
        self._queries_in_a_row = 0

    def _batch_due(self) -> bool:
        return self._batches_waiting > 0 and self._queries_in_a_row >= self.max_in_a_row

    @contextmanager
    def turn(self, query: bool) -> Iterator[None]:
        with self._cond:
            if query:
                self._queries_waiting += 1
                try:
                    self._cond.wait_for(lambda: not self._busy and not self._batch_due())
                finally:
                    self._queries_waiting -= 1
                self._queries_in_a_row += 1
            else:
                self._batches_waiting += 1
                try:
                    self._cond.wait_for(lambda: not self._busy and (self._queries_waiting == 0 or self._batch_due()))
                finally:
                    self._batches_waiting -= 1
                self._queries_in_a_row = 0
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
