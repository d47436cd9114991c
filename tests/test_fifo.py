"""FifoLock serves waiters in arrival order; the embedder's query and passage engines are separate."""
from __future__ import annotations

import threading
import time

import numpy as np

from zhiku.backends.fifo import FifoLock


def test_waiters_are_served_in_arrival_order():
    lock, order, threads = FifoLock(), [], []
    with lock:
        for i in range(6):
            t = threading.Thread(target=lambda i=i: (lock.__enter__(), order.append(i), lock.__exit__()))
            t.start()
            threads.append(t)
            deadline = time.monotonic() + 5
            while lock.waiting() != i + 2:  # the holder plus every thread started so far
                assert time.monotonic() < deadline
                time.sleep(0.002)
    for t in threads:
        t.join(5)
    assert order == list(range(6)) and lock.waiting() == 0


def test_a_query_does_not_wait_for_an_ingestion_batch(real_embedder):
    """The REAL embedder: while the passage engine is held (a batch in progress), a query still runs."""
    real_embedder.embed_batch(["预热"], is_query=True)
    with real_embedder._turns[False]:  # ingestion holds its engine
        done = threading.Event()
        threading.Thread(target=lambda: (real_embedder.embed_query("检索增强生成"), done.set())).start()
        assert done.wait(10), "a query waited behind the passage engine"
    q = real_embedder.embed_batch(["数据质量决定上限"], is_query=False)
    assert np.allclose(q, real_embedder._load(True).encode(["数据质量决定上限"], False), atol=1e-6)
