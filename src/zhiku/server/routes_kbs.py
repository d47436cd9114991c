"""Routes for knowledge bases, documents (upload, list, delete, re-sync), ingestion jobs and passages."""

import json
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Header, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..errors import Conflict, TooLarge, UsageError
from ..kb import KnowledgeBase, validate_name
from ..store.keys import ApiKey
from ..types import AddReport, FileOutcome
from .auth import any_key, authorize, need
from .jobs import Job
from .uploads import clear_partials, safe_name, set_aside, settle, store_upload, uploads_dir

router = APIRouter()
Read = Annotated[str, Depends(need("read"))]
Write = Annotated[str, Depends(need("write"))]
Admin = Annotated[str, Depends(need("admin"))]


class NewKnowledgeBase(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="letters, digits, '-', '_' or '.'")


@router.get("/api/kbs", summary="Knowledge bases this key may use", tags=["knowledge bases"])
def list_kbs(request: Request, key: Annotated[ApiKey | None, Depends(any_key)]) -> list[dict]:
    reg = request.app.state.registry
    return [{"name": n, "documents": len(reg.get(n).documents()), "chunks": reg.get(n).store.chunk_count()}
            for n in reg.names(key)]


@router.post("/api/kbs", status_code=201, summary="Create an empty knowledge base (admin)", tags=["knowledge bases"])
def create_kb(body: NewKnowledgeBase, request: Request,
              authorization: Annotated[str | None, Header()] = None) -> dict:
    validate_name(body.name)
    authorize(request, authorization, body.name, "admin")
    reg = request.app.state.registry
    if body.name in reg.names():
        raise Conflict(f"knowledge base {body.name!r} already exists", "pick another name, or upload into it")
    reg.create(body.name)
    return {"name": body.name}


@router.delete("/api/kbs/{kb}", summary="Delete a knowledge base and everything in it (admin)",
               tags=["knowledge bases"])
def delete_kb(kb: Admin, request: Request) -> dict:
    state = request.app.state
    state.registry.get(kb)  # 404 for an unknown name
    if state.jobs.busy(kb):
        raise Conflict(f"knowledge base {kb!r} has an ingestion job running",
                       "wait for it to finish (GET /api/jobs), then delete")
    state.registry.forget(kb)
    KnowledgeBase.delete(kb, home=state.registry.home)
    return {"deleted": kb}


@router.get("/api/kbs/{kb}/documents", summary="Sources with chunk counts", tags=["documents"])
def documents(kb: Read, request: Request) -> list[dict]:
    return [{"source": r.source, "format": r.format, "chunks": r.chunk_count, "bytes": r.size,
             "content_hash": r.content_hash, "added_at": r.added_at}
            for r in request.app.state.registry.get(kb).documents()]


@router.post("/api/kbs/{kb}/documents", status_code=202, tags=["documents"],
             summary="Upload files (multipart, field `files`); returns the ingestion job to follow")
def upload(kb: Write, request: Request,
           files: Annotated[list[UploadFile], File(description="one or many files")]) -> dict:
    state = request.app.state
    knowledge_base = state.registry.get(kb)
    cfg = state.registry.settings
    if len(files) > cfg.server.max_upload_files:
        raise TooLarge(f"{len(files)} files in one upload, over the limit of {cfg.server.max_upload_files}",
                       "upload in smaller batches, or raise [server] max_upload_files")
    folder = uploads_dir(knowledge_base.settings.kb_dir(kb))
    max_bytes = int(cfg.ingest.max_file_mb * 1024 * 1024)
    saved: list[Path] = []
    backups: dict[Path, Path | None] = {}  # each saved file -> the previous file it replaced, if any
    rejected: list[dict] = []
    names: set[str] = set()
    for upload_file in files:
        try:
            name = safe_name(upload_file.filename or "")
            if name in names:
                raise UsageError(f"{name} is given twice in this upload", "send each file once")
            names.add(name)
            target = folder / name
            backup = set_aside(target)
            try:
                saved.append(store_upload(upload_file.file, folder, name, max_bytes))
            except UsageError:
                settle(target, backup, kept=False)
                raise
            backups[target] = backup
        except UsageError as exc:
            rejected.append({"name": upload_file.filename, "reason": exc.message, "hint": exc.hint})
    if not saved:
        job = state.jobs.submit(kb, "upload", lambda progress: AddReport(), rejected)
        return {"job": job.as_dict()}

    def after(job: Job) -> None:
        """Keep what was ingested; put back the previous file where the new one was not."""
        ingested = {o["source"] for o in job.outcomes if o["status"] in ("added", "replaced", "unchanged")}
        for path in saved:
            settle(path, backups[path], kept=path.name in ingested)

    job = state.jobs.submit(kb, "upload", lambda progress: knowledge_base.add(saved, progress), rejected, after)
    return {"job": job.as_dict()}


@router.delete("/api/kbs/{kb}/documents", summary="Remove a source and its chunks", tags=["documents"])
def delete_document(kb: Write, request: Request,
                    source: Annotated[str, Query(description="the source's name as listed, or its path")]) -> dict:
    knowledge_base = request.app.state.registry.get(kb)
    record = knowledge_base.resolve_source(source)
    removed = knowledge_base.store.remove_source(record.path)
    folder = os.path.abspath(uploads_dir(knowledge_base.settings.kb_dir(kb)))
    if os.path.dirname(record.path) == folder:
        Path(record.path).unlink(missing_ok=True)
    return {"source": record.source, "chunks_removed": removed}


@router.post("/api/kbs/{kb}/sync", status_code=202, tags=["documents"],
             summary="Re-ingest changed files; drop uploads that are gone (returns a job)")
def resync(kb: Write, request: Request) -> dict:
    state = request.app.state
    knowledge_base = state.registry.get(kb)

    def work(progress) -> AddReport:
        folder = uploads_dir(knowledge_base.settings.kb_dir(kb))
        clear_partials(folder)
        inside = os.path.abspath(folder) + os.sep
        report = knowledge_base.sync(folder, progress) if folder.is_dir() else AddReport()
        outside = [r for r in knowledge_base.documents() if not r.path.startswith(inside)]
        present = [r.path for r in outside if os.path.exists(r.path)]
        if present:
            report.outcomes += knowledge_base.add(present, progress).outcomes
        for r in outside:
            if not os.path.exists(r.path):  # not the server's file to forget: say so, keep it
                progress.file_done(FileOutcome(r.path, r.source, "skipped", r.chunk_count,
                                               f"{r.path} is gone; its chunks are kept until you delete the source"))
        return report

    return {"job": state.jobs.submit(kb, "sync", work).as_dict()}


@router.get("/api/jobs", summary="Recent ingestion jobs of the knowledge bases this key may use", tags=["jobs"])
def list_jobs(request: Request, key: Annotated[ApiKey | None, Depends(any_key)]) -> list[dict]:
    state = request.app.state
    return state.jobs.list(None if key is None else set(state.registry.names(key)))


def _job(request: Request, job_id: str, authorization: str | None) -> Job:
    job = request.app.state.jobs.get(job_id)
    authorize(request, authorization, job.kb, "read")
    return job


@router.get("/api/jobs/{job_id}", summary="An ingestion job's state and per-file outcomes", tags=["jobs"])
def get_job(job_id: str, request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
    return _job(request, job_id, authorization).as_dict()


@router.get("/api/jobs/{job_id}/events", tags=["jobs"],
            summary="Server-Sent Events: `progress` on every change, then `done` with the final job")
def job_events(job_id: str, request: Request, authorization: Annotated[str | None, Header()] = None):
    job, jobs = _job(request, job_id, authorization), request.app.state.jobs

    def events():
        seen = -1
        while True:
            snap = jobs.wait(job, seen)
            if snap["version"] != seen:
                seen = snap["version"]
                final = snap["state"] in ("done", "failed")
                yield f"event: {'done' if final else 'progress'}\ndata: {json.dumps(snap, ensure_ascii=False)}\n\n"
                if final:
                    return
            else:
                yield ": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/api/kbs/{kb}/passages/{chunk_id}", tags=["documents"],
            summary="A stored chunk with the source text around it (to open a citation in context)")
def passage(kb: Read, chunk_id: str, request: Request,
            context: Annotated[int, Query(ge=0, le=5000)] = 600) -> dict:
    return request.app.state.registry.get(kb).passage(chunk_id, context)
