"""Choose the generator named in config. Loaded models are kept per process (loading takes seconds)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from ..config import GenerateSettings
from ..errors import ConfigError
from .generator import Generator

BACKENDS = ("local", "openai", "none")
_cache: dict[tuple, Generator] = {}
_lock = threading.Lock()


def make_generator(cfg: GenerateSettings, model_dir: Path,
                   progress: Callable[[int, int], None] | None = None) -> Generator | None:
    """The configured generator, or None for ``backend = "none"`` (extractive answers only)."""
    if cfg.backend == "none":
        return None
    if cfg.backend == "openai":
        if not cfg.base_url:
            raise ConfigError("generate.backend is openai but generate.base_url is empty",
                              "set generate.base_url, e.g. http://127.0.0.1:11434/v1 for Ollama")
        from .openai_generator import OpenAIGenerator
        key = ("openai", cfg.base_url, cfg.model, cfg.api_key_env, cfg.timeout_s, cfg.retries, cfg.context_window)
        factory = lambda: OpenAIGenerator(cfg.base_url, cfg.model, cfg.api_key_env, cfg.timeout_s,  # noqa: E731
                                          cfg.retries, cfg.context_window)
    elif cfg.backend == "local":
        from .model_packs import resolve_model
        path = resolve_model(cfg.model, model_dir, progress)
        from .llama_generator import LlamaCppGenerator
        key = ("local", str(path), cfg.context_window, cfg.threads, cfg.nice)
        factory = lambda: LlamaCppGenerator(path, cfg.context_window, cfg.threads, label=cfg.model,  # noqa: E731
                                            kv_dir=model_dir / "kv", nice=cfg.nice)
    else:
        raise ConfigError(f"unknown generate.backend {cfg.backend!r}", f"use one of: {', '.join(BACKENDS)}")
    with _lock:
        if key not in _cache:
            _cache[key] = factory()
        return _cache[key]
