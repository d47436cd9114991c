"""Find the files to ingest under the paths a user gave: recursive, loop-safe, hidden entries skipped."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class Found:
    path: str  # absolute path as stored: the source's identity (see path_key)
    source: str  # relative to the folder the user added, or the file name
    problem: str = ""  # non-empty: why this entry cannot be ingested
    os_path: str = ""  # the real path to open (differs from ``path`` only for non-UTF-8 names)


def path_key(path: str) -> str:
    """A storable (valid UTF-8) form of a path; undecodable name bytes become \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def discover(paths: list[str], follow_symlinks: bool = True) -> Iterator[Found]:
    for given in paths:
        p = Path(given).expanduser()
        if not p.exists():
            yield Found(path_key(str(p.absolute())), path_key(given),
                        "no such file or folder" if not p.is_symlink() else "broken symbolic link")
        elif p.is_dir():
            yield from _walk(p.absolute(), follow_symlinks)
        else:
            yield Found(path_key(str(p.absolute())), path_key(p.name), os_path=str(p.absolute()))


def _walk(root: Path, follow_symlinks: bool) -> Iterator[Found]:
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            yield _problem(root, folder, f"cannot open folder: {exc.strerror}")
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            continue  # a symlink loop or a second link to a folder already walked
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield _problem(root, folder, f"cannot list folder: {exc.strerror}")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink() and not follow_symlinks:
                continue
            try:
                if entry.is_dir():
                    subdirs.append(Path(entry.path))
                elif entry.is_file():
                    yield _found(root, Path(entry.path))
                elif entry.is_symlink():
                    yield _problem(root, Path(entry.path), "broken symbolic link")
            except OSError as exc:
                yield _problem(root, Path(entry.path), f"cannot read: {exc.strerror}")
        stack.extend(reversed(subdirs))


def _found(root: Path, path: Path) -> Found:
    return Found(path_key(str(path)), path_key(str(path.relative_to(root))), os_path=str(path))


def _problem(root: Path, path: Path, why: str) -> Found:
    return Found(path_key(str(path)), path_key(str(path.relative_to(root)) if path != root else path.name), why)
