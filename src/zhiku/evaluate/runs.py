"""Stored evaluation runs: a folder per run under the knowledge base, listed in its database.

    <home>/kbs/<kb>/evals/<run_id>/{metrics.json, cases.jsonl, snapshot.json, report.html, summary.md}

A run is written into a hidden temporary folder and renamed into place, then indexed; a process
killed midway leaves no half run behind (only a ``.tmp-*`` folder that the next save removes).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from ..errors import ItemNotFound, UsageError
from ..store.eval_runs import EvalRunIndex, RunRow
from .runner import EvalRun

FILES = ("metrics.json", "cases.jsonl", "snapshot.json", "report.html", "summary.md")
STALE_S = 3600  # a temporary run folder older than this is from a killed save

log = logging.getLogger(__name__)


class RunStore:
    def __init__(self, kb) -> None:
        self.kb = kb
        self.root = kb.settings.kb_dir(kb.name) / "evals"
        self.index = EvalRunIndex(kb.store)

    def save(self, run: EvalRun, out: str | Path | None = None) -> Path:
        """Write the run's files, index it, and copy them to ``out`` when given. Returns the run folder."""
        created = time.time()
        run.run_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(created)) + "-" + secrets.token_hex(2)
        run.metrics = {"run_id": run.run_id, "created": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                      time.localtime(created)), **run.metrics}
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".tmp-*"):  # left by a killed save; a young one may be another save's
            if time.time() - stale.stat().st_mtime > STALE_S:
                shutil.rmtree(stale, ignore_errors=True)
        tmp = self.root / f".tmp-{run.run_id}"
        tmp.mkdir()
        _write_files(tmp, run)
        final = self.root / run.run_id
        os.replace(tmp, final)
        run.folder = str(final)
        self.index.add(RunRow(run.run_id, created, run.metrics.get("dataset", ""),
                              run.snapshot.get("dataset", {}).get("sha256", ""),
                              bool(run.metrics.get("retrieval_only")), str(final), run.metrics["metrics"]))
        if out is not None:
            copy_to(final, Path(out))
        return final

    def list(self) -> list[RunRow]:
        return self.index.list()

    def load(self, ref: str) -> EvalRun:
        """A run by id, unique id prefix, ``latest``/``previous``, or a run folder path."""
        folder = self.resolve(ref)
        return load_folder(folder)

    def resolve(self, ref: str) -> Path:
        path = Path(ref).expanduser()
        if (path / "metrics.json").is_file():
            return path
        rows = self.list()
        if ref in ("latest", "previous"):
            need = 1 if ref == "latest" else 2
            if len(rows) < need:
                raise UsageError(f"there is no {ref} run in knowledge base {self.kb.name!r}",
                                 f"run one with: zhiku eval DATASET --kb {self.kb.name}")
            found = [rows[-need]]
        else:
            found = [r for r in rows if r.id == ref] or [r for r in rows if r.id.startswith(ref)]
        if len(found) != 1:
            what = "no run" if not found else f"{len(found)} runs"
            raise (UsageError if found else ItemNotFound)(f"{what} matching {ref!r} in knowledge base {self.kb.name!r}",
                             f"list runs with: zhiku eval runs --kb {self.kb.name}, or give a run folder")
        folder = Path(found[0].folder)
        if not (folder / "metrics.json").is_file():
            raise UsageError(f"run {found[0].id} is indexed but its folder {folder} is gone",
                             f"forget such runs with: zhiku eval runs --prune --kb {self.kb.name}")
        return folder

    def prune(self) -> list[str]:
        """Forget indexed runs whose folder was deleted; returns their ids."""
        gone = [r.id for r in self.list() if not (Path(r.folder) / "metrics.json").is_file()]
        for rid in gone:
            self.index.delete(rid)
        return gone


def load_folder(folder: Path) -> EvalRun:
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        snapshot = json.loads((folder / "snapshot.json").read_text(encoding="utf-8"))
        with open(folder / "cases.jsonl", encoding="utf-8") as fh:
            cases = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the run in {folder}: {exc}",
                         "the folder must hold metrics.json, snapshot.json and cases.jsonl from zhiku eval") from exc
    return EvalRun(cases, metrics, snapshot, run_id=metrics.get("run_id", folder.name), folder=str(folder))


def _write_files(folder: Path, run: EvalRun) -> None:
    from .report import html_report, markdown_summary
    dump = lambda obj: json.dumps(obj, ensure_ascii=False, indent=1)  # noqa: E731
    (folder / "metrics.json").write_text(dump(run.metrics), encoding="utf-8")
    (folder / "snapshot.json").write_text(dump(run.snapshot), encoding="utf-8")
    with open(folder / "cases.jsonl", "w", encoding="utf-8") as fh:
        for case in run.cases:
            fh.write(json.dumps(case, ensure_ascii=False) + "\n")
    try:  # the figures above are the run; a report that fails to render must not lose them
        (folder / "report.html").write_text(html_report(run.metrics, run.cases, run.snapshot), encoding="utf-8")
        (folder / "summary.md").write_text(markdown_summary(run.metrics, run.snapshot, cases=run.cases),
                                           encoding="utf-8")
    except Exception:  # noqa: BLE001 - a report bug; the run is still stored
        log.exception("could not write the report of run %s", run.run_id)


def copy_to(folder: Path, out: Path) -> None:
    """Copy a run's files into ``out`` (created if needed; earlier run files there are replaced)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file", "give a folder for the run's files")
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        src = folder / name
        if src.is_file():
            tmp = out / f".{name}.tmp"
            shutil.copyfile(src, tmp)
            os.replace(tmp, out / name)
