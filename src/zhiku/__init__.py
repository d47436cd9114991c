"""zhiku (知库): a private, offline knowledge base that searches and answers from your files.

``import zhiku`` is cheap: models, parsers and the store load on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["KnowledgeBase", "__version__"]


def __getattr__(name: str):
    if name == "KnowledgeBase":
        from .kb import KnowledgeBase
        return KnowledgeBase
    raise AttributeError(name)
