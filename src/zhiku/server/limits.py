"""An ASGI guard on request body size, applied before anything parses the body.

Uploads (``POST /api/kbs/{kb}/documents``) may carry up to ``[server] max_upload_mb``; any other
request up to 2 MB. A declared ``Content-Length`` over the limit is refused at once; a body sent
without one is counted as it arrives and cut off at the limit. Either way the client gets HTTP
413 with a JSON body that names the setting, and no partial upload is kept.
"""
import json
import re

JSON_LIMIT = 2 * 1024 * 1024
_UPLOAD = re.compile(r"^/api/kbs/[^/]+/documents/?$")


class _TooBig(BaseException):
    """BaseException so that body parsers which turn any Exception into a 400 let it through."""


class BodyLimit:
    def __init__(self, app, upload_bytes: int, other_bytes: int = JSON_LIMIT) -> None:
        self.app, self.upload_bytes, self.other_bytes = app, upload_bytes, other_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        upload = bool(_UPLOAD.match(scope["path"]))
        limit = self.upload_bytes if upload else self.other_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _refuse(send, limit, upload)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooBig
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooBig:
            if not started:
                await _refuse(send, limit, upload)


async def _refuse(send, limit: int, upload: bool) -> None:
    setting = "[server] max_upload_mb" if upload else "(request bodies other than uploads are capped)"
    body = json.dumps({"error": f"request body is over the {limit / 1048576:g} MB limit",
                       "hint": f"send less at once; the limit is {setting}", "type": "TooLarge"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
