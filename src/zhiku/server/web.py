"""The web UI: three static files in the package (no CDN, no build step), served at ``/``.

The page talks to the same REST API as any client; with keys on, it asks for a key once and keeps
it in the browser's localStorage.
"""
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# the UI loads nothing from anywhere else; the CSP makes the browser enforce that. Inline styles are
# allowed only so an eval report (inline CSS) can be shown in a frame; scripts come from the package alone
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def add_web_ui(app: FastAPI) -> None:
    root = files("zhiku.server") / "web"

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((root / "index.html").read_text(encoding="utf-8"),
                            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})

    @app.get("/ui", include_in_schema=False)
    def ui() -> RedirectResponse:
        return RedirectResponse("/")

    @app.get("/ui/{name}", include_in_schema=False)
    def asset(name: str):
        if name not in ASSETS:
            return HTMLResponse("not found", status_code=404)
        return FileResponse(str(root / name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})
