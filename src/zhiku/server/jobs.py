"""Ingestion jobs: uploads and re-syncs run one at a time on a worker thread, with progress.

A job's state moves ``queued`` → ``running`` → ``done`` | ``failed``. Every change bumps a version
number, so a client can poll ``GET /api/jobs/{id}`` or stream the changes (``wait``). Jobs live in
memory: after a restart the list is empty, but the knowledge base is consistent because each file
is written in one transaction, and a re-sync ingests any upload a killed job had not reached.
"""
from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ItemNotFound, ZhikuError
from ..types import AddReport, FileOutcome

KEEP_FINISHED = 200


@dataclass
class Job:
    id: str
    kb: str
    kind: str  # upload | sync
    state: str = "queued"  # queued | running | done | failed
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    files_total: int = 0
    files_done: int = 0
    current: str = ""
    chunks_embedded: int = 0
    outcomes: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)  # refused at upload: {name, reason}
    error: dict | None = None
    version: int = 0

    def as_dict(self) -> dict:
        counts = {s: sum(o["status"] == s for o in self.outcomes)
                  for s in ("added", "replaced", "unchanged", "skipped", "removed")}
        return {"id": self.id, "kb": self.kb, "kind": self.kind, "state": self.state,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "files_total": self.files_total, "files_done": self.files_done, "current": self.current,
                "chunks_embedded": self.chunks_embedded, "counts": counts, "files": list(self.outcomes),
                "rejected": list(self.rejected), "error": self.error, "version": self.version}


class _JobProgress:
    """The ingest pipeline's ``Progress``, recorded on a job."""

    def __init__(self, jobs: "IngestJobs", job: Job) -> None:
        self.jobs, self.job = jobs, job

    def started(self, total_files: int) -> None:  # a job may run several passes (sync): totals add up
        self.jobs._update(self.job, files_total=self.job.files_total + total_files)

    def file_started(self, found) -> None:
        self.jobs._update(self.job, current=found.source)

    def chunks_embedded(self, n: int) -> None:
        self.jobs._update(self.job, chunks_embedded=self.job.chunks_embedded + n)

    def file_done(self, outcome: FileOutcome) -> None:
        self.jobs._update(self.job, files_done=self.job.files_done + (outcome.status != "removed"),
                          outcomes=[*self.job.outcomes, _outcome(outcome)])


Work = Callable[[_JobProgress], AddReport]


class IngestJobs:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._cond = threading.Condition()
        self._queue: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._run, daemon=True, name="zhiku-ingest")
        self._worker.start()

    def submit(self, kb: str, kind: str, work: Work, rejected: list[dict] | None = None,
               after: Callable[[Job], None] | None = None) -> Job:
        """Queue ``work(progress)``; ``after(job)`` runs on the worker once the job has finished."""
        job = Job(id=secrets.token_hex(6), kb=kb, kind=kind, rejected=list(rejected or []))
        with self._cond:
            self._jobs[job.id] = job
            self._trim()
        self._queue.put((job, work, after))
        return job

    def get(self, job_id: str) -> Job:
        with self._cond:
            if job_id not in self._jobs:
                raise ItemNotFound(f"no ingestion job {job_id!r}",
                                   "jobs are kept in memory until the server restarts; list them: GET /api/jobs")
            return self._jobs[job_id]

    def list(self, kbs: set[str] | None = None) -> list[dict]:
        with self._cond:
            return [j.as_dict() for j in reversed(self._jobs.values()) if kbs is None or j.kb in kbs]

    def busy(self, kb: str) -> bool:
        with self._cond:
            return any(j.kb == kb and j.state in ("queued", "running") for j in self._jobs.values())

    def wait(self, job: Job, seen_version: int, timeout: float = 15.0) -> dict:
        """The job once its version passes ``seen_version`` (or after ``timeout``, unchanged)."""
        with self._cond:
            self._cond.wait_for(lambda: job.version > seen_version, timeout=timeout)
            return job.as_dict()

    def _update(self, job: Job, **changes) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(job, key, value)
            job.version += 1
            self._cond.notify_all()

    def _run(self) -> None:
        _lower_priority()
        while True:
            job, work, after = self._queue.get()
            self._update(job, state="running", started_at=time.time())
            try:
                work(_JobProgress(self, job))
                final = {"state": "done"}
            except ZhikuError as exc:
                final = {"state": "failed", "error": {"error": exc.message, "hint": exc.hint,
                                                       "type": type(exc).__name__}}
            except Exception as exc:  # noqa: BLE001 - a bug fails the job, never the worker
                final = {"state": "failed", "error": {"error": f"unexpected {type(exc).__name__}: {exc}",
                                                       "hint": "this is a bug; please report it", "type": "bug"}}
            if after is not None:
                try:
                    after(job)
                except Exception:  # noqa: BLE001 - cleanup must not keep the job from finishing
                    pass
            self._update(job, current="", finished_at=time.time(), **final)

    def _trim(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        for job_id in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]


INGEST_NICE = 10


def _lower_priority() -> None:
    """Ingestion yields the CPU to searches and answers: this thread (and the embedding threads it
    starts, which inherit it) runs at nice 10. Linux only; elsewhere it runs at normal priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INGEST_NICE)
    except (AttributeError, OSError):
        pass


def _outcome(o: FileOutcome) -> dict:
    return {"source": o.source, "status": o.status, "chunks": o.chunks, "reason": o.reason}
