"""One error hierarchy. Every message says what happened and how to fix it.

Interfaces translate these at the edge (CLI: message + exit code; later HTTP: status code).
"""
from __future__ import annotations


class ZhikuError(Exception):
    """Base class. ``hint`` tells the user how to fix the problem."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(ZhikuError):
    """A bad option or argument."""

    exit_code = 2


class ConfigError(ZhikuError):
    exit_code = 2


class NotFound(ZhikuError):
    """Something named by the user does not exist (HTTP 404)."""


class KnowledgeBaseNotFound(NotFound):
    pass


class ItemNotFound(NotFound, UsageError):
    """A named conversation, eval run, source, chunk or job does not exist."""


class EmbedderMismatch(ZhikuError):
    """The knowledge base was built with another embedder than the one configured."""


class ParseError(ZhikuError):
    """A file could not be read as its format. Ingest skips it with this reason."""


class UnsupportedFile(ParseError):
    pass


class MissingDependency(ZhikuError):
    """An optional dependency is not installed; the hint names the package."""


class StoreError(ZhikuError):
    pass


class SchemaTooNew(StoreError):
    pass


class GeneratorError(ZhikuError):
    """The language model could not produce an answer (missing model, endpoint down, bad reply)."""


class GeneratorUnavailable(GeneratorError):
    """No generator can be used (model pack not installed, endpoint unreachable)."""


class StreamInterrupted(GeneratorError):
    """The reply stopped before the model finished; the text so far is in ``partial``."""

    def __init__(self, message: str, hint: str = "", partial: str = "") -> None:
        super().__init__(message, hint)
        self.partial = partial


class ContextTooSmall(GeneratorError, UsageError):
    """The question (and history) do not fit in the model's context window."""


class AuthError(ZhikuError):
    """A request's API key is missing, unknown, revoked or malformed (HTTP 401)."""

    status = 401


class Forbidden(AuthError):
    """The key is valid but not for this knowledge base or scope (HTTP 403)."""

    status = 403


class Conflict(ZhikuError):
    """The request clashes with work in progress, e.g. deleting a knowledge base while it ingests (HTTP 409)."""


class TooLarge(UsageError):
    """An upload is over a size or count limit (HTTP 413)."""


class GeneratorBusy(GeneratorError):
    """Every generation slot stayed busy, or would stay busy, longer than the caller may wait (HTTP 503)."""

    def __init__(self, message: str, hint: str = "", retry_after_s: float = 5.0) -> None:
        super().__init__(message, hint)
        self.retry_after_s = retry_after_s
