"""Ingestion jobs: one at a time, in order, with their state, progress versions, failures and cleanup."""
from __future__ import annotations

import threading

import pytest

from zhiku.errors import ItemNotFound, UsageError
from zhiku.server.jobs import IngestJobs
from zhiku.types import AddReport, FileOutcome


def test_jobs_run_one_at_a_time_and_report_state():
    jobs = IngestJobs()
    gate = threading.Event()
    order = []

    def slow(progress):
        progress.started(1)
        gate.wait(10)
        progress.file_done(FileOutcome("/x/a.md", "a.md", "added", chunks=3))
        order.append("slow")
        return AddReport()

    def quick(progress):
        order.append("quick")
        return AddReport()

    first = jobs.submit("notes", "upload", slow)
    second = jobs.submit("notes", "upload", quick)
    snap = jobs.wait(first, 0, timeout=5)  # the worker has started it
    assert snap["state"] == "running" and snap["files_total"] == 1
    assert jobs.get(second.id).state == "queued" and jobs.busy("notes") and not jobs.busy("other")
    gate.set()
    while jobs.get(second.id).state != "done":
        jobs.wait(second, jobs.get(second.id).version, timeout=5)
    assert order == ["slow", "quick"]
    done = jobs.get(first.id).as_dict()
    assert done["state"] == "done" and done["counts"]["added"] == 1 and done["files"][0]["chunks"] == 3
    assert not jobs.busy("notes")
    assert [j["id"] for j in jobs.list({"notes"})] == [second.id, first.id]  # newest first


def test_a_failing_job_records_the_error_and_still_cleans_up():
    jobs = IngestJobs()
    cleaned = threading.Event()

    def bad(progress):
        raise UsageError("disk full", "free some space")

    job = jobs.submit("notes", "upload", bad, after=lambda j: cleaned.set())
    while jobs.get(job.id).state not in ("done", "failed"):
        jobs.wait(job, jobs.get(job.id).version, timeout=5)
    final = jobs.get(job.id).as_dict()
    assert final["state"] == "failed" and final["error"] == {"error": "disk full", "hint": "free some space",
                                                             "type": "UsageError"}
    assert cleaned.is_set()
    with pytest.raises(ItemNotFound, match="no ingestion job"):
        jobs.get("nope")
