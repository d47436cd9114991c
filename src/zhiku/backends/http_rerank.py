"""Reranking through an HTTP cross-encoder service (vLLM, TEI, Jina, Cohere, Xinference, llama.cpp).

These servers agree on the idea but not on the field names, so the request carries both spellings
(``documents`` and TEI's ``texts``) and the reply is read in either shape:
``{"results": [{"index", "relevance_score"}]}`` or TEI's bare ``[{"index", "score"}]``. Servers
sort results by score and may drop some (``top_n``), so scores are put back in input order and a
document the server left out scores ``-inf`` (ranked last, never dropped silently).
"""
from __future__ import annotations

import json
import math

from ..errors import GeneratorError
from .openai_generator import Endpoint, auth_headers, key_hints, post_json, read_json

_SHAPE_HINT = ('the rerank endpoint must answer {"results": [{"index", "relevance_score"}]} or '
               '[{"index", "score"}]; check that the URL is the rerank endpoint itself, '
               "e.g. http://127.0.0.1:8000/v1/rerank")


class HttpReranker:
    """Scores (query, document) pairs with a remote reranker; one POST per call."""

    retries = 2  # transient failures (refused, 429, 5xx) are retried like the generator's

    def __init__(self, url: str, model: str = "", api_key_env: str = "", timeout_s: float = 30.0) -> None:
        self.endpoint = Endpoint.parse(url, "rerank url")
        self.url = self.endpoint.url
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.name = f"http-rerank:{model or self.url}"

    def request_body(self, query: str, documents: list[str]) -> dict:
        """``model`` is sent only when set: vLLM and others reject an empty model name."""
        body: dict = {"query": query, "documents": documents, "texts": documents, "top_n": len(documents)}
        if self.model:
            body["model"] = self.model
        return body

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document, in the order of ``documents`` (higher is better)."""
        if not documents:
            return []
        hints = {404: f"check the rerank URL (it is {self.url}; e.g. http://127.0.0.1:8000/v1/rerank)"
                      + (f" and the model name {self.model!r}" if self.model else ""),
                 501: "the server does not rerank; llama.cpp server needs --reranking and a reranker model",
                 **key_hints(self.api_key_env)}
        conn, resp = post_json(self.endpoint, self.request_body(query, documents),
                               auth_headers(self.api_key_env, self.url), self.timeout_s, self.retries, hints)
        try:
            reply = read_json(resp, self.url, self.timeout_s)
        finally:
            conn.close()
        return self._scores(reply, len(documents))

    def _scores(self, reply: object, count: int) -> list[float]:
        items = reply.get("results") if isinstance(reply, dict) else reply
        if not isinstance(items, list):
            raise self._shape_error("no results list", reply)
        scores = [-math.inf] * count
        for item in items:
            index, score = self._item(item, count, reply)
            scores[index] = score
        return scores

    def _item(self, item: object, count: int, reply: object) -> tuple[int, float]:
        if not isinstance(item, dict):
            raise self._shape_error("a result that is not an object", reply)
        index = item.get("index")
        score = item.get("relevance_score", item.get("score"))
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
            raise self._shape_error(f"a result index outside 0..{count - 1}", reply)
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            raise self._shape_error("a result without a numeric relevance_score or score", reply)
        return index, float(score)

    def _shape_error(self, what: str, reply: object) -> GeneratorError:
        excerpt = json.dumps(reply, ensure_ascii=False)[:200]
        return GeneratorError(f"{self.url} did not answer in a known rerank format ({what}): {excerpt}",
                              _SHAPE_HINT)
