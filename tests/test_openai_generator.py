"""OpenAIGenerator and HttpReranker against a real loopback HTTP server, and against llama.cpp's server.

The loopback server (tests/openai_wire_server.py) produces each wire behaviour and fault on
demand; the last tests start llama.cpp's own HTTP server through xllamacpp with a real GGUF.
"""
from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from zhiku.backends import openai_generator
from zhiku.backends.generator import Message, Piece, Sampling
from zhiku.backends.http_rerank import HttpReranker
from zhiku.backends.openai_generator import OpenAIGenerator
from zhiku.errors import (
    ConfigError,
    ContextTooSmall,
    GeneratorError,
    GeneratorUnavailable,
    StreamInterrupted,
)

from .openai_wire_server import OpenAIWireTestServer


def _gguf_path() -> Path:
    """The bundled 0.5B pack (installed by the test extra), assembled once into the model cache."""
    from zhiku.backends.model_packs import default_model_dir, resolve_model
    return resolve_model("qwen2.5-0.5b", default_model_dir())


ASK = [Message("system", "Answer briefly."), Message("user", "北京是哪个国家的首都？")]
SAMPLING = Sampling(temperature=0.3, top_k=20, top_p=0.8, max_tokens=64, seed=7)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch) -> list[float]:
    """Record retry backoff instead of waiting, so retry tests are fast and can check the delays."""
    recorded: list[float] = []
    monkeypatch.setattr(openai_generator, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def srv() -> Iterator[OpenAIWireTestServer]:
    with OpenAIWireTestServer() as server:
        yield server


def _gen(srv: OpenAIWireTestServer, **kw) -> OpenAIGenerator:
    return OpenAIGenerator(srv.base_url, "test-model", **kw)


def _collect(gen: OpenAIGenerator) -> list[Piece]:
    return list(gen.stream(ASK, SAMPLING))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- normal streaming -----------------------------------------------------------------------

def test_streams_each_delta_then_a_final_piece_with_finish_reason_and_usage(srv):
    srv.stream(["北京", "是", "中国的首都。"], finish_reason="stop")
    pieces = _collect(_gen(srv))
    assert [p.text for p in pieces[:-1]] == ["北京", "是", "中国的首都。"]
    assert all(p.finish_reason is None for p in pieces[:-1])
    assert pieces[-1] == Piece(text="", finish_reason="stop",
                               usage={"prompt_tokens": 12, "completion_tokens": 3, "cached_tokens": 3})


def test_length_finish_reason_is_passed_through(srv):
    srv.stream(["a", "b"], finish_reason="length")
    assert _collect(_gen(srv))[-1].finish_reason == "length"


def test_sends_model_messages_and_every_sampling_parameter(srv):
    _collect(_gen(srv))
    (req,) = srv.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["content-type"] == "application/json"
    assert "authorization" not in req.headers
    assert req.body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Answer briefly."},
                     {"role": "user", "content": "北京是哪个国家的首都？"}],
        "stream": True, "stream_options": {"include_usage": True},
        "temperature": 0.3, "top_p": 0.8, "top_k": 20, "max_tokens": 64, "seed": 7,
    }


def test_trailing_slash_in_base_url_is_tolerated(srv):
    gen = OpenAIGenerator(srv.base_url + "/", "test-model")
    assert gen.complete(ASK, SAMPLING) == "Hello world"
    assert srv.requests[0].path == "/v1/chat/completions"


def test_name_and_context_window():
    gen = OpenAIGenerator("http://127.0.0.1:9/v1", "qwen2.5-7b", context_window=32768)
    assert (gen.name, gen.context_window) == ("openai:qwen2.5-7b", 32768)


def test_a_base_url_that_is_not_http_is_a_config_error():
    with pytest.raises(ConfigError, match="not an http"):
        OpenAIGenerator("127.0.0.1:8080/v1", "m")


def test_finish_then_close_without_done_is_a_complete_answer(srv):
    srv.stream(["ok"], done=False)
    pieces = _collect(_gen(srv))
    assert [p.text for p in pieces] == ["ok", ""]
    assert pieces[-1].finish_reason == "stop"


def test_non_streaming_json_reply_is_one_piece_plus_the_final(srv):
    srv.completion_json("整段回答", finish_reason="length",
                        usage={"prompt_tokens": 5, "completion_tokens": 4})
    pieces = _collect(_gen(srv))
    assert pieces == [Piece(text="整段回答"),
                      Piece(finish_reason="length", usage={"prompt_tokens": 5, "completion_tokens": 4})]


# ---- API key --------------------------------------------------------------------------------

def test_api_key_is_read_from_the_environment_at_call_time(srv, monkeypatch):
    gen = _gen(srv, api_key_env="ZK_TEST_API_KEY")
    monkeypatch.setenv("ZK_TEST_API_KEY", "sk-secret-1")  # set after construction: still used
    gen.complete(ASK, SAMPLING)
    assert srv.requests[-1].headers["authorization"] == "Bearer sk-secret-1"


def test_empty_api_key_variable_names_the_variable_and_sends_nothing(srv, monkeypatch):
    monkeypatch.setenv("ZK_TEST_API_KEY", "")
    with pytest.raises(GeneratorUnavailable) as info:
        _collect(_gen(srv, api_key_env="ZK_TEST_API_KEY"))
    assert "ZK_TEST_API_KEY" in info.value.message and "ZK_TEST_API_KEY" in info.value.hint
    assert srv.requests == []


# ---- unreachable server and retries ---------------------------------------------------------

def test_connection_refused_is_unavailable_after_retrying_with_backoff(sleeps):
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(GeneratorUnavailable) as info:
        list(OpenAIGenerator(url, "m", retries=2).stream(ASK, SAMPLING))
    assert url in info.value.message
    assert "is the server running" in info.value.hint
    assert sleeps == [0.5, 1.0]


def test_dns_failure_is_unavailable_without_retrying(monkeypatch, sleeps):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with pytest.raises(GeneratorUnavailable, match="cannot find the host 'llm.example'"):
        list(OpenAIGenerator("http://llm.example:8000/v1", "m").stream(ASK, SAMPLING))
    assert sleeps == []


def test_503_then_success_is_retried_transparently(srv, sleeps):
    srv.fail_first(2, status=503)
    srv.stream(["after", " retry"])
    assert _gen(srv, retries=2).complete(ASK, SAMPLING) == "after retry"
    assert len(srv.chat_requests) == 3
    assert sleeps == [0.5, 1.0]


def test_5xx_beyond_the_retries_raises_with_the_server_message(srv, sleeps):
    srv.fail_first(5, status=500, message="CUDA out of memory")
    with pytest.raises(GeneratorError) as info:
        _collect(_gen(srv, retries=1))
    assert len(srv.chat_requests) == 2
    assert "HTTP 500" in info.value.message and "CUDA out of memory" in info.value.message
    assert "{" not in info.value.message  # the OpenAI error JSON is unwrapped
    assert sleeps == [0.5]


def test_429_honours_retry_after_capped_to_a_few_seconds(srv, sleeps):
    srv.fail_first(1, status=429, retry_after="2")
    assert _gen(srv).complete(ASK, SAMPLING) == "Hello world"
    srv.fail_first(1, status=429, retry_after="120")
    assert _gen(srv).complete(ASK, SAMPLING) == "Hello world"
    assert sleeps == [2.0, openai_generator._MAX_RETRY_AFTER_S]
    assert openai_generator._MAX_RETRY_AFTER_S <= 5


def test_retries_zero_fails_on_the_first_503(srv, sleeps):
    srv.fail_first(1, status=503)
    with pytest.raises(GeneratorError, match="HTTP 503"):
        _collect(_gen(srv, retries=0))
    assert sleeps == [] and len(srv.requests) == 1


# ---- client errors: no retry ----------------------------------------------------------------

@pytest.mark.parametrize("status, message, hint_word", [
    (401, "Invalid API key provided", "api_key_env"),
    (404, "The model `nope` does not exist", "model name"),
    (400, "temperature must be between 0 and 2", "rejected"),
])
def test_4xx_fails_at_once_with_the_unwrapped_server_message(srv, sleeps, status, message, hint_word):
    srv.error(status, message)
    with pytest.raises(GeneratorError) as info:
        _collect(_gen(srv))
    assert not isinstance(info.value, GeneratorUnavailable)
    assert f"HTTP {status}" in info.value.message and message in info.value.message
    assert srv.base_url in info.value.message
    assert hint_word in info.value.hint
    assert len(srv.requests) == 1 and sleeps == []


def test_401_hint_names_the_key_variable_in_use(srv, monkeypatch):
    monkeypatch.setenv("ZK_TEST_API_KEY", "sk-wrong")
    srv.error(401, "Invalid API key")
    with pytest.raises(GeneratorError) as info:
        _collect(_gen(srv, api_key_env="ZK_TEST_API_KEY"))
    assert "$ZK_TEST_API_KEY" in info.value.hint


def test_wrong_base_url_path_is_a_404_with_a_v1_hint(srv):
    gen = OpenAIGenerator(srv.root, "test-model")  # forgot /v1
    with pytest.raises(GeneratorError) as info:
        _collect(gen)
    assert "HTTP 404" in info.value.message and "/v1" in info.value.hint


def test_context_overflow_400_is_context_too_small(srv):
    srv.error(400, "the request exceeds the available context size, try increasing it")
    with pytest.raises(ContextTooSmall):
        _collect(_gen(srv))


# ---- garbage --------------------------------------------------------------------------------

@pytest.mark.parametrize("setup", [
    lambda s: s.reply(200, "<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html"),
    lambda s: s.sse_lines(["data: this is not json"]),
    lambda s: s.sse_lines(['data: {"object": "something.else", "value": 1}']),
    lambda s: s.reply(200, {"object": "list", "data": []}),
    lambda s: s.reply(200, "not json at all", "application/json"),
], ids=["html-body", "non-json-data-line", "chunk-without-choices", "json-without-choices", "json-type-not-json"])
def test_a_reply_not_in_the_openai_wire_format_says_so(srv, setup):
    setup(srv)
    with pytest.raises(GeneratorError) as info:
        _collect(_gen(srv))
    assert not isinstance(info.value, StreamInterrupted)
    assert "did not speak the OpenAI wire format" in info.value.message
    assert "/v1" in info.value.hint


def test_error_event_inside_the_stream_is_raised(srv):
    srv.sse_lines(['data: {"error": {"code": 500, "message": "llama_decode failed"}}'])
    with pytest.raises(GeneratorError, match="llama_decode failed"):
        _collect(_gen(srv))


# ---- timeouts and cut streams ---------------------------------------------------------------

def test_no_reply_within_the_timeout_is_a_generator_error(srv, sleeps):
    srv.slow(3.0)
    started = time.monotonic()
    with pytest.raises(GeneratorError) as info:
        _collect(_gen(srv, timeout_s=0.3))
    assert time.monotonic() - started < 2.0
    assert not isinstance(info.value, StreamInterrupted)
    assert "0.3 s" in info.value.message and sleeps == []  # a timeout is not retried


def test_silence_mid_stream_is_interrupted_with_the_partial_text(srv):
    srv.stream(["第一", "第二", "第三"], stall_after=2, stall_s=3.0)
    gen = _gen(srv, timeout_s=0.3)
    seen: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        for piece in gen.stream(ASK, SAMPLING):
            seen.append(piece.text)
    assert seen == ["第一", "第二"]
    assert info.value.partial == "第一第二"


def test_stream_cut_midway_is_interrupted_and_never_retried(srv, sleeps):
    srv.stream(["one ", "two ", "three"], cut_after=2)
    seen: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        for piece in _gen(srv, retries=2).stream(ASK, SAMPLING):
            seen.append(piece.text)
    assert seen == ["one ", "two "]
    assert info.value.partial == "one two "
    assert srv.base_url in info.value.message
    assert len(srv.requests) == 1 and sleeps == []


def test_stream_cut_before_any_text_is_interrupted_with_empty_partial(srv):
    srv.stream(["never sent"], cut_after=0)
    with pytest.raises(StreamInterrupted) as info:
        _collect(_gen(srv))
    assert info.value.partial == ""


def test_stream_cut_after_the_last_piece_but_before_the_finish_is_interrupted(srv):
    srv.stream(["all", " text"], cut_after=2)
    with pytest.raises(StreamInterrupted) as info:
        _collect(_gen(srv))
    assert info.value.partial == "all text"


HALF = 'data: {"choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": null}]}\n\n'


def test_stream_ending_in_half_a_chunk_is_interrupted_not_garbage(srv):
    srv.reply(200, HALF + 'data: {"choices": [{"index": 0, "del', "text/event-stream")
    with pytest.raises(StreamInterrupted) as info:
        _collect(_gen(srv))
    assert info.value.partial == "half"


def test_done_without_a_final_newline_still_completes(srv):
    srv.reply(200, HALF + "data: [DONE]", "text/event-stream")
    assert [(p.text, p.finish_reason) for p in _collect(_gen(srv))] == [("half", None), ("", "stop")]


# ---- reranker -------------------------------------------------------------------------------

DOCS = ["北京是中国的首都", "香蕉是一种水果", "巴黎是法国的首都"]


def test_rerank_results_shape_maps_scores_back_to_input_order(srv):
    srv.rerank([0.9, 0.05, 0.4])  # the server answers best first: indexes 0, 2, 1
    scores = HttpReranker(srv.root + "/v1/rerank", model="bge-reranker").rerank("中国的首都", DOCS)
    assert scores == [0.9, 0.05, 0.4]


def test_rerank_tei_bare_list_shape(srv):
    srv.rerank([-2.5, 7.0, 1.25], shape="tei")
    assert HttpReranker(srv.root + "/rerank").rerank("q", DOCS) == [-2.5, 7.0, 1.25]


def test_rerank_missing_indexes_score_minus_infinity(srv):
    srv.rerank([0.9, 0.05, 0.4], omit=(1,))
    assert HttpReranker(srv.root + "/v1/rerank").rerank("q", DOCS) == [0.9, -math.inf, 0.4]


def test_rerank_request_carries_both_field_spellings_and_the_key(srv, monkeypatch):
    monkeypatch.setenv("ZK_RERANK_KEY", "rk-1")
    srv.rerank([0.1, 0.2, 0.3])
    HttpReranker(srv.root + "/v1/rerank", model="bge-reranker-v2-m3", api_key_env="ZK_RERANK_KEY").rerank("q", DOCS)
    (req,) = srv.requests
    assert req.path == "/v1/rerank"
    assert req.body == {"model": "bge-reranker-v2-m3", "query": "q", "documents": DOCS, "texts": DOCS, "top_n": 3}
    assert req.headers["authorization"] == "Bearer rk-1"


def test_rerank_without_model_omits_the_field(srv):
    srv.rerank([0.1, 0.2, 0.3])
    HttpReranker(srv.root + "/v1/rerank").rerank("q", DOCS)
    assert "model" not in srv.requests[0].body


def test_rerank_of_no_documents_sends_nothing(srv):
    assert HttpReranker(srv.root + "/v1/rerank").rerank("q", []) == []
    assert srv.requests == []


def test_rerank_unreachable_is_unavailable():
    with pytest.raises(GeneratorUnavailable, match="is the server running"):
        HttpReranker(f"http://127.0.0.1:{_free_port()}/v1/rerank").rerank("q", DOCS)


def test_rerank_error_status_is_a_generator_error_with_the_message(srv, sleeps):
    srv.rerank_reply(501, {"error": {"code": 501, "message": "This server does not support reranking. "
                                                             "Start it with `--reranking`"}})
    with pytest.raises(GeneratorError) as info:
        HttpReranker(srv.root + "/v1/rerank").rerank("q", DOCS)
    assert "--reranking" in info.value.message and "reranker model" in info.value.hint
    assert sleeps == []  # 501 is not transient


def test_rerank_retries_503(srv, sleeps):
    srv.fail_first(1, status=503)
    srv.rerank([1.0, 2.0, 3.0])
    assert HttpReranker(srv.root + "/v1/rerank").rerank("q", DOCS) == [1.0, 2.0, 3.0]
    assert sleeps == [0.5]


@pytest.mark.parametrize("body", [
    {"data": [{"index": 0, "score": 1.0}]},
    {"results": [{"index": 7, "relevance_score": 1.0}]},
    {"results": [{"index": 0, "relevance_score": "high"}]},
    "<html>502 Bad Gateway</html>",
], ids=["unknown-shape", "index-out-of-range", "score-not-a-number", "html"])
def test_rerank_garbage_is_a_generator_error(srv, body):
    srv.rerank_reply(200, body)
    with pytest.raises(GeneratorError) as info:
        HttpReranker(srv.root + "/v1/rerank").rerank("q", DOCS)
    assert srv.root in info.value.message and info.value.hint


# ---- llama.cpp's own HTTP server ------------------------------------------------------------

@contextmanager
def _llama_server(gguf: Path, rerank: bool = False) -> Iterator[str]:
    """llama.cpp's HTTP server (via xllamacpp) on loopback; yields its root address."""
    import xllamacpp as xlc
    p = xlc.CommonParams()
    p.model.path = str(gguf)
    p.n_ctx = 1024
    p.n_parallel = 1
    p.cpuparams.n_threads = 2
    p.cpuparams_batch.n_threads = 2
    p.warmup = False
    p.verbosity = 0
    if rerank:  # what `llama-server --reranking` sets
        p.embedding = True
        p.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_RANK
    server = xlc.Server(p)
    try:
        yield server.listening_address  # e.g. "http://127.0.0.1:41509"
    finally:
        del server


@pytest.mark.slow
def test_llama_cpp_server_streams_through_the_openai_generator():
    gguf = _gguf_path()
    with _llama_server(gguf) as address:
        assert address.startswith("http://127.0.0.1:")
        gen = OpenAIGenerator(address + "/v1", "local")
        pieces = list(gen.stream([Message("user", "Say hello.")], Sampling(temperature=0, max_tokens=8)))
    assert "".join(p.text for p in pieces).strip()
    final = pieces[-1]
    assert final.finish_reason in ("stop", "length")
    assert final.usage["prompt_tokens"] > 0
    assert 0 < final.usage["completion_tokens"] <= 8


@pytest.mark.slow
def test_llama_cpp_server_rerank_endpoint_through_http_reranker():
    gguf = _gguf_path()
    docs = ["Paris is the capital of France.", "Bananas are yellow."]
    with _llama_server(gguf, rerank=True) as address:
        reranker = HttpReranker(address + "/v1/rerank")
        forward = reranker.rerank("What is the capital of France?", docs)
        backward = reranker.rerank("What is the capital of France?", docs[::-1])
    # a chat model is no reranker, so only the wire contract is checked: one finite score per
    # document, attached to the right document whatever order the server answers in
    assert len(forward) == 2 and all(math.isfinite(s) for s in forward)
    assert forward[0] != forward[1]
    assert backward == pytest.approx(forward[::-1], rel=1e-3, abs=1e-4)
