"""Start the server with uvicorn; the bind rules live here."""
from __future__ import annotations

import ipaddress
from pathlib import Path

from ..errors import UsageError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_keys_for(host: str, keys_flag: bool) -> bool:
    """Keys are on when asked for, and always when the server is reachable from other machines."""
    return keys_flag or not is_loopback(host)


def serve(home: str | Path | None, host: str, port: int, keys_flag: bool) -> None:
    import uvicorn

    from ..config import load_settings
    from ..store.keys import KeyStore
    from .app import create_app
    require = require_keys_for(host, keys_flag)
    if require:
        store = KeyStore(load_settings(home).home)
        live = [k for k in store.list() if k.revoked_at is None]
        store.close()
        if not live:
            reason = f"binding to {host} (not loopback) requires API keys" if not is_loopback(host) else "--keys is on"
            raise UsageError(f"{reason}, but there are none",
                             "create one first: zhiku keys create --kb NAME --scope read")
    uvicorn.run(create_app(home, require_keys=require), host=host, port=port, log_level="info")
