"""``FifoLock``: a lock that serves waiters in arrival order.

``threading.Lock`` makes no promise about order: a thread that arrives while the lock is free can
take it ahead of threads that have waited for seconds. Under a stream of searches that lets some
wait for many turns; first-in-first-out bounds every wait by the queue ahead of it.
"""
from __future__ import annotations

import threading


class FifoLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def waiting(self) -> int:
        """Threads holding or waiting for the lock."""
        with self._cond:
            return self._next_ticket - self._serving

    def __enter__(self) -> "FifoLock":
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._cond.wait_for(lambda: self._serving == ticket)
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()
