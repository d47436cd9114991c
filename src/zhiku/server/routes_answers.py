"""Routes for search, answers and conversations: the same ``KnowledgeBase`` calls as the CLI."""

import json
import queue
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..answer.pipeline import Turn as PipelineTurn
from ..errors import ZhikuError
from .auth import need

router = APIRouter()
Read = Annotated[str, Depends(need("read"))]


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=10_000)
    k: int | None = Field(default=None, ge=1, le=1000)
    mode: str | None = Field(default=None, pattern="^(hybrid|vector|lexical)$")


class Turn(BaseModel):
    question: str
    answer: str


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=10_000)
    stream: bool = False  # Server-Sent Events: token events, then the answer (citations, timings), then done
    history: list[Turn] = Field(default_factory=list, max_length=50)
    no_llm: bool = False  # extractive answer, no model


class TurnRequest(BaseModel):
    question: str = Field(min_length=1, max_length=10_000)
    stream: bool = False
    no_llm: bool = False


class NewConversation(BaseModel):
    title: str = Field(default="", max_length=200)


@router.post("/api/kbs/{kb}/search", tags=["answers"],
             summary="Hybrid search with a per-hit trace (same JSON as `zhiku search --json`)")
def search(body: SearchRequest, kb: Read, request: Request) -> dict:
    return request.app.state.registry.get(kb).search(body.query, k=body.k, mode=body.mode).as_dict()


@router.post("/api/kbs/{kb}/ask", tags=["answers"],
             summary="Answer with citations (JSON, or Server-Sent Events with stream=true)")
def ask(body: AskRequest, kb: Read, request: Request):
    answerer = request.app.state.registry.answerer(kb, body.no_llm)
    history = [PipelineTurn(t.question, t.answer) for t in body.history]
    if not body.stream:
        return answerer.ask(body.question, history=history, extractive=body.no_llm).as_dict()
    return StreamingResponse(sse(answer_events(answerer, body.question, history, body.no_llm)),
                             media_type="text/event-stream")


@router.get("/api/kbs/{kb}/conversations", tags=["conversations"], summary="Conversations, newest first")
def conversations(kb: Read, request: Request) -> list[dict]:
    return [c.__dict__ for c in request.app.state.registry.get(kb).conversations.list()]


@router.post("/api/kbs/{kb}/conversations", status_code=201, tags=["conversations"],
             summary="Start a conversation")
def new_conversation(body: NewConversation, kb: Read, request: Request) -> dict:
    convs = request.app.state.registry.get(kb).conversations
    return convs.get(convs.create(body.title)).__dict__


@router.get("/api/kbs/{kb}/conversations/{cid}", tags=["conversations"], summary="A conversation and its turns")
def conversation(kb: Read, cid: str, request: Request) -> dict:
    convs = request.app.state.registry.get(kb).conversations
    return {**convs.get(cid).__dict__, "turns": [t.__dict__ for t in convs.turns(cid)]}


@router.delete("/api/kbs/{kb}/conversations/{cid}", tags=["conversations"], summary="Delete a conversation")
def delete_conversation(kb: Read, cid: str, request: Request) -> dict:
    request.app.state.registry.get(kb).conversations.delete(cid)
    return {"deleted": cid}


@router.post("/api/kbs/{kb}/conversations/{cid}/ask", tags=["conversations"],
             summary="Continue a conversation: answered with its earlier turns; the turn is saved once complete")
def continue_conversation(body: TurnRequest, kb: Read, cid: str, request: Request):
    registry = request.app.state.registry
    convs = registry.get(kb).conversations
    history = [PipelineTurn(t.question, t.answer) for t in convs.turns(cid)]
    answerer = registry.answerer(kb, body.no_llm)

    def save(answer: dict) -> None:
        if not (answer.get("partial") and answer.get("error")):  # a cut-off answer is not kept
            convs.add_turn(cid, body.question, answer.get("standalone_question") or body.question,
                           answer["answer"], answer["refused"], answer["citations"])

    if not body.stream:
        answer = answerer.ask(body.question, history=history, extractive=body.no_llm).as_dict()
        save(answer)
        return answer

    def events():
        for event, data in answer_events(answerer, body.question, history, body.no_llm):
            if event == "answer":
                save(data)
            yield event, data

    return StreamingResponse(sse(events()), media_type="text/event-stream")


def answer_events(answerer, question: str, history: list, extractive: bool):
    """``(event, data)`` pairs: ``token`` ({"text"}) while the model writes, then ``citations``
    ({citations, refused}), ``timings`` ({timings, usage}) and ``answer`` (the whole ask JSON, the
    checked answer); or ``error`` ({error, hint, type}).

    The answer runs on its own thread and hands tokens over through a queue, so a caller can send
    each piece as it comes.
    """
    pipe: queue.Queue = queue.Queue()
    done = object()
    gone = threading.Event()  # the reader stopped (client went away): stop generating, free the model

    def on_token(text: str) -> None:
        if gone.is_set():
            raise _ReaderGone
        pipe.put(("token", {"text": text}))

    def work() -> None:
        try:
            answer = answerer.ask(question, history=history, extractive=extractive, on_token=on_token).as_dict()
            pipe.put(("citations", {"citations": answer["citations"], "refused": answer["refused"]}))
            pipe.put(("timings", {"timings": answer["timings"], "usage": answer["usage"]}))
            pipe.put(("answer", answer))
        except ZhikuError as exc:
            pipe.put(("error", {"error": exc.message, "hint": exc.hint, "type": type(exc).__name__}))
        except Exception as exc:  # noqa: BLE001 - a bug must still end the stream with an event
            pipe.put(("error", {"error": f"unexpected {type(exc).__name__}: {exc}", "hint": "", "type": "bug"}))
        pipe.put(done)

    threading.Thread(target=work, daemon=True, name="zhiku-answer").start()
    try:
        while (item := pipe.get()) is not done:
            yield item
    finally:
        gone.set()


class _ReaderGone(Exception):
    """Raised inside the model's token callback once nobody reads the stream any more."""


def sse(events):
    """``(event, data)`` pairs as Server-Sent Events, then ``done``."""
    for event, data in events:
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    yield "event: done\ndata: {}\n\n"
