"""One model, many callers: generations wait their turn for a slot, and the queue reports itself.

A model context generates one answer at a time (or a few, with a small pool). ``GenerationQueue``
wraps any ``Generator`` so that concurrent callers (server requests, chat sessions) queue for
``slots`` slots instead of fighting over the model, and ``status()`` says how deep the queue is
and how long requests waited: the figures a server's status endpoint shows.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Iterator

from ..errors import GeneratorBusy
from .generator import Generator, Message, Piece, Sampling

WAITS_KEPT = 500  # recent waits kept for the percentiles
HOLDS_KEPT = 20  # recent slot hold times, for the expected wait of a newcomer


class GenerationQueue(Generator):
    def __init__(self, inner: Generator, slots: int = 1, max_wait_s: float = 120.0) -> None:
        self.inner = inner
        self.slots = slots
        self.max_wait_s = max_wait_s
        self._sem = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = self._active = self._served = self._rejected = 0
        self._waits: deque[float] = deque(maxlen=WAITS_KEPT)
        self._holds: deque[float] = deque(maxlen=HOLDS_KEPT)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def context_window(self) -> int:  # type: ignore[override]
        return self.inner.context_window

    def stream(self, messages: list[Message], sampling: Sampling) -> Iterator[Piece]:
        """The inner stream, once a slot is free; the slot is held until the stream ends or is closed."""
        since = self._acquire()
        try:
            yield from self.inner.stream(messages, sampling)
        finally:  # also on GeneratorExit: a caller that stops reading frees the slot
            self._release(since)

    def warm(self, messages: list[Message]) -> str:
        warm = getattr(self.inner, "warm", None)
        if warm is None:
            return ""
        since = self._acquire()
        try:
            return warm(messages)
        finally:
            self._release(since)

    def status(self) -> dict:
        with self._lock:
            waits = list(self._waits)
            return {"generator": self.inner.name, "slots": self.slots, "active": self._active,
                    "waiting": self._waiting, "served": self._served, "rejected": self._rejected,
                    "wait_p50_s": _nearest_rank(waits, 50), "wait_p95_s": _nearest_rank(waits, 95),
                    "expected_wait_s": None if (e := self._expected_wait()) is None else round(e, 1)}

    def expected_wait_s(self) -> float | None:
        """How long a request arriving now would wait: the queue ahead of it times the recent mean
        hold of a slot (None until a few generations have been timed)."""
        with self._lock:
            return self._expected_wait()

    def _expected_wait(self) -> float | None:
        if len(self._holds) < 3:
            return None
        ahead = self._waiting + self._active - (self.slots - 1)
        return max(0, ahead) / self.slots * (sum(self._holds) / len(self._holds))

    def _acquire(self) -> float:
        """Wait for a slot; returns when it was taken (for ``_release``)."""
        t0 = time.perf_counter()
        with self._lock:
            expected = self._expected_wait()
            if expected is not None and expected > self.max_wait_s:  # fail now, not after max_wait_s
                self._rejected += 1
                raise GeneratorBusy(
                    f"the model is busy: {self._waiting} requests wait and the expected wait is {expected:.0f} s, "
                    f"over the {self.max_wait_s:g} s limit", "try again shortly, or serve more slots / a faster model",
                    retry_after_s=expected - self.max_wait_s + 1)
            self._waiting += 1
            depth = self._waiting
        got = self._sem.acquire(timeout=self.max_wait_s)
        waited = time.perf_counter() - t0
        with self._lock:
            self._waiting -= 1
            if not got:
                self._rejected += 1
            else:
                self._active += 1
                self._waits.append(waited)
        if not got:
            raise GeneratorBusy(f"the model was busy for {waited:.0f} s ({depth - 1} requests ahead in the queue)",
                                "try again shortly, or serve more slots / a faster model")
        return time.perf_counter()

    def _release(self, since: float) -> None:
        with self._lock:
            self._active -= 1
            self._served += 1
            self._holds.append(time.perf_counter() - since)
        self._sem.release()


def _nearest_rank(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank, rounded (0 when nothing has waited yet)."""
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))], 4)
