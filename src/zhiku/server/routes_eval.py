"""Routes for stored eval runs: list, metrics, and the self-contained HTML report."""

import json
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ..errors import ItemNotFound
from ..evaluate.runs import RunStore
from .auth import need

router = APIRouter()
Read = Annotated[str, Depends(need("read"))]
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# the report is one file with inline CSS, SVG and a little JS; nothing may load from elsewhere
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "img-src data:; base-uri 'none'; form-action 'none'")


@router.get("/api/kbs/{kb}/evals", tags=["evaluation"], summary="Stored eval runs, oldest first")
def runs(kb: Read, request: Request) -> list[dict]:
    return [{"id": r.id, "created_at": r.created_at, "dataset": Path(r.dataset).name,
             "retrieval_only": r.retrieval_only, "metrics": r.metrics}
            for r in RunStore(request.app.state.registry.get(kb)).list()]


def _folder(request: Request, kb: str, run_id: str) -> Path:
    """A run's folder, by id (or ``latest``/``previous``) only: never a path from the request."""
    if not _RUN_ID.match(run_id) or "/" in run_id or run_id.startswith("."):
        raise ItemNotFound(f"no eval run {run_id!r}", "list runs with GET /api/kbs/{kb}/evals")
    store = RunStore(request.app.state.registry.get(kb))
    known = {r.id for r in store.list()}
    if run_id not in known and run_id not in ("latest", "previous"):
        raise ItemNotFound(f"no eval run {run_id!r} in knowledge base {kb!r}",
                           f"list runs with GET /api/kbs/{kb}/evals")
    return store.resolve(run_id)


@router.get("/api/kbs/{kb}/evals/{run_id}", tags=["evaluation"],
            summary="A run's metrics and snapshot (settings, models, dataset and KB hashes)")
def run(kb: Read, run_id: str, request: Request) -> dict:
    folder = _folder(request, kb, run_id)
    return {"id": folder.name, **{part: json.loads((folder / f"{part}.json").read_text(encoding="utf-8"))
                                  for part in ("metrics", "snapshot")}}


@router.get("/api/kbs/{kb}/evals/{run_id}/report", tags=["evaluation"], response_class=HTMLResponse,
            summary="The run's HTML report (self-contained)")
def report(kb: Read, run_id: str, request: Request) -> HTMLResponse:
    folder = _folder(request, kb, run_id)
    return HTMLResponse((folder / "report.html").read_text(encoding="utf-8"),
                        headers={"Content-Security-Policy": REPORT_CSP})
