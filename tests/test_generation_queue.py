"""GenerationQueue: at most `slots` generations at once, a visible queue, timeouts, freed slots."""
from __future__ import annotations

import threading
import time

import pytest

from zhiku.backends.generator import Generator, Message, Piece, Sampling
from zhiku.backends.queue import GenerationQueue
from zhiku.errors import GeneratorBusy


class SlowFake(Generator):
    """FAKE generator: three pieces, ``delay`` seconds apart; records how many streams overlap."""

    name = "fake:slow"

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def stream(self, messages, sampling):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            for word in ("a", "b", "c"):
                time.sleep(self.delay)
                yield Piece(text=word)
            yield Piece(finish_reason="stop")
        finally:
            with self._lock:
                self.now -= 1


MSG = [Message("user", "q")]


@pytest.mark.parametrize("slots", [1, 2])
def test_never_more_than_slots_at_once_and_every_caller_served(slots):
    inner = SlowFake()
    q = GenerationQueue(inner, slots=slots)
    out: list[str] = []
    seen_waiting = []

    def call():
        out.append(q.complete(MSG, Sampling()))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    seen_waiting.append(q.status()["waiting"])
    for t in threads:
        t.join()
    assert out == ["abc"] * 6 and inner.peak == slots
    status = q.status()
    assert (status["served"], status["active"], status["waiting"]) == (6, 0, 0)
    assert seen_waiting[0] >= 6 - slots - 1  # the queue was visible while callers waited
    assert status["wait_p95_s"] > 0


def test_a_caller_that_waits_too_long_gets_a_clear_error():
    q = GenerationQueue(SlowFake(delay=0.3), slots=1, max_wait_s=0.1)
    holder = threading.Thread(target=lambda: q.complete(MSG, Sampling()))
    holder.start()
    time.sleep(0.05)
    with pytest.raises(GeneratorBusy, match="busy"):
        q.complete(MSG, Sampling())
    holder.join()
    assert q.status()["rejected"] == 1


def test_an_abandoned_stream_frees_its_slot():
    q = GenerationQueue(SlowFake(), slots=1, max_wait_s=1)
    stream = q.stream(MSG, Sampling())
    assert next(stream).text == "a" and q.status()["active"] == 1
    stream.close()  # a client that disconnects mid-answer
    assert q.status()["active"] == 0
    assert q.complete(MSG, Sampling()) == "abc"


def test_a_request_that_would_wait_too_long_is_refused_at_once():
    inner = SlowFake(delay=0.1)  # each generation holds the slot ~0.3 s
    q = GenerationQueue(inner, slots=1, max_wait_s=0.5)
    assert q.expected_wait_s() is None  # nothing timed yet: no guess
    for _ in range(3):
        q.complete(MSG, Sampling())
    assert q.expected_wait_s() == 0  # idle
    outcomes = []

    def call():
        t = time.perf_counter()
        try:
            q.complete(MSG, Sampling())
            outcomes.append(("served", time.perf_counter() - t))
        except GeneratorBusy as exc:
            outcomes.append((exc, time.perf_counter() - t))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join(10)
    busy = [(e, secs) for e, secs in outcomes if isinstance(e, GeneratorBusy)]
    # one runs and one or two fit within 0.5 s of waiting; the rest expect to wait longer and are
    # refused at once instead of after 0.5 s
    assert 3 <= len(busy) <= 4
    assert all("expected wait" in e.message and e.retry_after_s > 0 and secs < 0.1 for e, secs in busy)
    assert q.status()["rejected"] == len(busy)
