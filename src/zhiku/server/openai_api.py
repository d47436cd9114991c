"""The OpenAI-compatible API: each knowledge base is a model named ``zhiku/<kb>``.

``/v1/chat/completions`` answers the last user message from the knowledge base (earlier turns are
the chat history), streamed in the OpenAI chunk format or whole. Citations are in the text as
``[n]`` and, in full, in an extra ``zhiku`` field. ``/v1/embeddings`` serves the embedder.
Sampling comes from the server's configuration: per-request sampling fields are accepted and ignored.
"""
import json
import time
import uuid
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..answer.pipeline import Turn
from ..errors import UsageError
from ..store.keys import ApiKey
from .auth import any_key
from .routes_answers import answer_events

PREFIX = "zhiku/"


class ChatMessage(BaseModel):
    role: str
    content: str | list | None = ""


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class EmbeddingRequest(BaseModel):
    model: str
    input: str | list[str]
    input_type: str = Field(default="passage", pattern="^(query|passage)$")  # e5 embeds the two differently


def kb_of(model: str) -> str:
    if not model.startswith(PREFIX) or len(model) == len(PREFIX):
        raise UsageError(f"unknown model {model!r}", "models are named zhiku/<knowledge base>; see GET /v1/models")
    return model[len(PREFIX):]


def _text(content) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (last user message) and the earlier user/assistant pairs as history."""
    turns, pending = [], None
    for m in messages[:-1]:
        if m.role == "user":
            pending = _text(m.content)
        elif m.role == "assistant" and pending is not None:
            turns.append(Turn(pending, _text(m.content)))
            pending = None
    last = messages[-1]
    if last.role != "user" or not _text(last.content).strip():
        raise UsageError("the last message must be a non-empty user message", "end messages with the question")
    return _text(last.content), turns


Key = Annotated[ApiKey | None, Depends(any_key)]


def add_openai_routes(app: FastAPI) -> None:
    registry, keys = app.state.registry, app.state.keys

    def allowed(key, kb: str, scope: str = "read") -> None:
        if key is not None:
            keys.authorize_record(key, kb, scope)

    @app.get("/v1/models", summary="Each knowledge base as a model (zhiku/<kb>)", tags=["openai"])
    def models(key: Key) -> dict:
        names = registry.names(key)
        return {"object": "list", "data": [{"id": PREFIX + n, "object": "model", "created": 0, "owned_by": "zhiku"}
                                           for n in names]}

    @app.post("/v1/chat/completions", summary="Answer from the knowledge base (OpenAI chat format)", tags=["openai"])
    def chat(body: ChatRequest, key: Key):
        kb = kb_of(body.model)
        allowed(key, kb)
        question, history = split_messages(body.messages)
        answerer = registry.answerer(kb, False)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if body.stream:
            return StreamingResponse(_stream(answerer, question, history, cid, created, body.model),
                                     media_type="text/event-stream")
        answer = answerer.ask(question, history=history)
        return {"id": cid, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                             "finish_reason": "length" if answer.partial else "stop"}],
                "usage": _usage(answer), "zhiku": _extra(answer)}

    @app.post("/v1/embeddings", summary="Vectors from the knowledge base's embedder", tags=["openai"])
    def embeddings(body: EmbeddingRequest, key: Key) -> dict:
        kb = kb_of(body.model)
        allowed(key, kb)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > 256:
            raise UsageError("input must hold 1 to 256 texts", "send fewer texts per request")
        emb = registry.get(kb).embedder
        vecs = emb.embed_batch(texts, is_query=body.input_type == "query")
        return {"object": "list", "model": body.model, "usage": {"prompt_tokens": 0, "total_tokens": 0},
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vecs)]}


def _stream(answerer, question, history, cid, created, model):
    head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    chunk = lambda delta, finish=None, **extra: "data: " + json.dumps(  # noqa: E731
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra},
        ensure_ascii=False) + "\n\n"
    yield chunk({"role": "assistant", "content": ""})
    for name, data in answer_events(answerer, question, history, extractive=False):
        if name == "token":
            yield chunk({"content": data["text"]})
        elif name == "answer":
            yield chunk({}, "length" if data["partial"] else "stop", zhiku=_extra_dict(data))
        elif name == "error":
            yield "data: " + json.dumps({"error": {"message": data["error"], "type": data["type"]}}) + "\n\n"
    yield "data: [DONE]\n\n"


def _usage(answer) -> dict:
    p, c = int(answer.usage.get("prompt_tokens", 0) or 0), int(answer.usage.get("completion_tokens", 0) or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _extra(answer) -> dict:
    return _extra_dict(answer.as_dict())


def _extra_dict(d: dict) -> dict:
    """What OpenAI's format has no place for: citations, refusal, the checked final answer, timings."""
    keep = ("answer", "refused", "refusal_reason", "draft_answer", "citations", "check", "timings", "warnings")
    return {k: d[k] for k in keep}
