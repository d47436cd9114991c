"""FastAPI dependencies that check a request's API key against a knowledge base and scope.

Keys are checked only when the app was made with ``require_keys``; the checks raise ``AuthError``
(401) or ``Forbidden`` (403), which the app turns into JSON with a hint.
"""

from typing import Annotated

from fastapi import Header, Request

from ..store.keys import ApiKey


def bearer(header: str | None) -> str | None:
    return (header or "").removeprefix("Bearer ").strip() or None


def need(scope: str):
    """A dependency for routes with a ``{kb}`` path parameter: the caller's key must hold ``scope`` on it."""
    def check(kb: str, request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
        state = request.app.state
        if state.require_keys:
            state.keys.authorize(bearer(authorization), kb, scope)
        return kb
    return check


def any_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey | None:
    """Any live key (routes that list what a key may see); ``None`` when keys are off."""
    state = request.app.state
    return state.keys.verify(bearer(authorization)) if state.require_keys else None


def authorize(request: Request, authorization: str | None, kb: str, scope: str) -> None:
    """The same check as ``need`` for a knowledge base named in a request body."""
    state = request.app.state
    if state.require_keys:
        state.keys.authorize(bearer(authorization), kb, scope)
