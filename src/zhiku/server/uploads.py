"""Uploaded files: safe names, size limits, and where they are kept.

Uploads are written to ``<home>/kbs/<kb>/uploads/`` under a cleaned base name, through a temporary
file renamed into place, so a cut upload never leaves a half file that looks whole. A file that
ingestion then skips (binary, empty, unreadable) is deleted again, so the folder holds only what
the knowledge base holds.
"""
from __future__ import annotations

import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import UsageError
from ..ingest.parsers import EXTENSIONS

MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def safe_name(name: str) -> str:
    """The base name of an uploaded file, cleaned; raises ``UsageError`` when nothing usable is left.

    Directory parts (``../``, ``C:\\``, ``/etc/``) are dropped, control and reserved characters
    removed, Unicode normalised to NFC, and the type must be one zhiku can read.
    """
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE.sub("", base).strip().strip(".").strip()
    if not base or base in (".", ".."):
        raise UsageError(f"unusable file name {name!r}", "give the file a plain name such as notes.md")
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        stem, ext = os.path.splitext(base)
        base = stem.encode("utf-8")[:MAX_NAME_BYTES - len(ext.encode("utf-8"))].decode("utf-8", "ignore") + ext
    ext = os.path.splitext(base)[1].lower()
    if ext not in EXTENSIONS:
        raise UsageError(f"{base}: unsupported file type {ext or '(none)'}",
                         f"zhiku reads {', '.join(sorted(EXTENSIONS))}")
    return base


def uploads_dir(kb_dir: Path) -> Path:
    return kb_dir / "uploads"


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_files: int
    max_request_bytes: int


def store_upload(stream: BinaryIO, folder: Path, name: str, max_bytes: int) -> Path:
    """Copy ``stream`` to ``folder/name`` (temp file, then rename); ``UsageError`` past ``max_bytes``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.resolve().parent != folder.resolve():  # belt and braces: safe_name already stripped directories
        raise UsageError(f"unusable file name {name!r}", "give the file a plain name such as notes.md")
    tmp = folder / f".upload-{secrets.token_hex(6)}.part"
    size = 0
    try:
        with open(tmp, "wb") as out:
            while block := stream.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise UsageError(f"{name} is over the {max_bytes / 1048576:g} MB file limit",
                                     "split the file, or raise [ingest] max_file_mb")
                out.write(block)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def set_aside(target: Path) -> Path | None:
    """Move an existing ``target`` to ``.<name>.previous`` before a new upload takes its name;
    returns where it went (None if there was nothing)."""
    if not target.exists():
        return None
    backup = target.with_name(f".{target.name}.previous")
    os.replace(target, backup)
    return backup


def settle(target: Path, backup: Path | None, kept: bool) -> None:
    """After ingestion: keep the new file and drop the set-aside one, or (``kept=False``) drop the
    new file and put the previous one back, since the knowledge base still holds that version."""
    if kept:
        if backup is not None:
            backup.unlink(missing_ok=True)
        return
    target.unlink(missing_ok=True)
    if backup is not None:
        os.replace(backup, target)


def clear_partials(folder: Path) -> None:
    """Tidy what a killed upload left behind: temp files go, a set-aside previous file comes back
    if nothing replaced it."""
    if not folder.is_dir():
        return
    for part in folder.glob(".upload-*.part"):
        part.unlink(missing_ok=True)
    for previous in folder.glob(".*.previous"):
        target = folder / previous.name[1:-len(".previous")]
        if target.exists():
            previous.unlink(missing_ok=True)
        else:
            os.replace(previous, target)
