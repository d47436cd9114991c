"""The knowledge base on disk. ``Store`` is the interface; ``SqliteStore`` the embedded default."""
from .base import Store
from .sqlite import SqliteStore

__all__ = ["Store", "SqliteStore"]
