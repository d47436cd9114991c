"""QueriesFirst: a search's query goes ahead of waiting ingestion batches, and batches still move."""
from __future__ import annotations

import threading
import time

from zhiku.backends.turns import QueriesFirst


def _waiter(turns, query, order, name):
    def run():
        with turns.turn(query=query):
            order.append(name)
    t = threading.Thread(target=run)
    t.start()
    return t


def _until_waiting(turns, queries=0, batches=0):
    deadline = time.monotonic() + 5
    while (turns._queries_waiting, turns._batches_waiting) != (queries, batches):
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_query_goes_before_the_next_batch():
    turns, order = QueriesFirst(), []
    with turns.turn(query=False):  # a batch is embedding
        b2 = _waiter(turns, False, order, "batch 2")
        _until_waiting(turns, batches=1)
        q = _waiter(turns, True, order, "query")
        _until_waiting(turns, queries=1, batches=1)
    b2.join(5)
    q.join(5)
    assert order == ["query", "batch 2"]


def test_a_waiting_batch_is_not_starved_by_a_stream_of_queries():
    turns, order = QueriesFirst(max_queries_in_a_row=2), []
    with turns.turn(query=True):
        b = _waiter(turns, False, order, "batch")
        _until_waiting(turns, batches=1)
        qs = [_waiter(turns, True, order, f"q{i}") for i in range(4)]
        _until_waiting(turns, queries=4, batches=1)
    for t in [b, *qs]:
        t.join(5)
    # the held turn was query 1 in a row; one more query, then the batch, then the rest
    assert order.index("batch") == 1 and len(order) == 5
