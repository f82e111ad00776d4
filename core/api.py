"""The HTTP contract, platform-neutral: Request in, Response out, one JSON log line per request.

Adapters translate their platform's request into `Request`, call `App.handle`, and translate the `Response`
back. Routing, API-key auth, limits, validation and the mapping of errors to status codes all live here.

Errors map to statuses in one table (ERROR_TYPES); a failure we did not foresee becomes a 500 whose message
carries only the request id, which finds the log line (with the exception) in the platform's logs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from core import completions
from core.artifacts import LoadedModel, load
from core.generate import ContextOverflow, drain, encode_prompt, stream
from core.openapi import openapi_document
from core.schema import MAX_BODY_BYTES, ApiError, generation_request, parse_json

ENV_API_KEY_SHA256 = "TINYLLM_API_KEY_SHA256"
ENGINE = "numpy"

# status -> OpenAI error type
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    500: "server_error",
}


@dataclass(frozen=True)
class Request:
    """A platform-neutral HTTP request. Header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None  # the platform's id when it has one (AWS request id, Azure invocation id)
    log_fields: Mapping[str, str] = field(default_factory=dict)  # extra platform fields for the log line

    @classmethod
    def of(cls, method: str, path: str, headers, body: bytes = b"", **kwargs) -> "Request":
        """Build a Request from any header mapping or (name, value) pairs, normalising the names."""
        pairs = headers.items() if hasattr(headers, "items") else headers
        return cls(method.upper(), path, {k.lower(): v for k, v in pairs}, body or b"", **kwargs)


@dataclass
class Response:
    """Status, headers and either a whole body or a stream of byte chunks (server-sent events)."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: Iterator[bytes] | None = None

    def read(self) -> bytes:
        """The whole body; a platform that cannot stream sends the events buffered in one body."""
        return self.body if self.chunks is None else b"".join(self.chunks)


def json_response(status: int, obj: dict, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return Response(status, {"content-type": "application/json", **(headers or {})}, body)


def error_response(err: ApiError) -> Response:
    error = {"message": err.message, "type": ERROR_TYPES.get(err.status, "invalid_request_error"),
             "param": err.param, "code": err.code}
    return json_response(err.status, {"error": error}, err.headers)


def write_log_line(record: dict) -> None:
    """One JSON object per line on stdout: Cloud Logging, CloudWatch and Application Insights all parse it."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def severity(status: int) -> str:
    return "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"


def gcp_trace(headers: Mapping[str, str]) -> dict:
    """Cloud Logging's trace field from X-Cloud-Trace-Context (`TRACE_ID/SPAN_ID;o=1`), when present."""
    value = headers.get("x-cloud-trace-context")
    if not value:
        return {}
    trace_id = value.split("/")[0]
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}


class App:
    """The composition root of a serving process: one verified model, the API key hash, the log sink."""

    def __init__(self, loaded: LoadedModel, api_key_sha256: str | None = None,
                 log: Callable[[dict], None] = write_log_line):
        self.loaded = loaded
        self.api_key_sha256 = (api_key_sha256 or "").strip().lower() or None
        self.log = log
        cfg = loaded.model.cfg
        self.openapi_document = openapi_document(loaded.name, cfg.n_positions, cfg.vocab_size)
        self.routes = {
            "/v1/completions": {"POST": lambda req, rec: self.generate(req, rec, chat=False)},
            "/v1/chat/completions": {"POST": lambda req, rec: self.generate(req, rec, chat=True)},
            "/v1/models": {"GET": self.models},
            "/healthz": {"GET": self.health},
            "/openapi.json": {"GET": self.openapi},
        }

    # -- the one entry point -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.request_id or uuid.uuid4().hex
        path = request.path.rstrip("/") or "/"
        record = {"request_id": request_id, "method": request.method[:16], "route": path[:200],
                  **gcp_trace(request.headers), **request.log_fields}
        try:
            response = self.route(path, request)(request, record)
        except ApiError as err:
            response = error_response(err)
        except Exception as exc:  # the edge: nothing unforeseen reaches the client as a traceback
            record["exception"] = "".join(traceback.format_exception(exc))[-4000:]
            response = error_response(ApiError(500, f"internal error; request id {request_id}", code="internal_error"))
        response.headers["x-request-id"] = request_id
        if response.chunks is not None:
            response.chunks = self.logged_stream(response.chunks, response.status, record, started)
        else:
            self.finish_log(record, response.status, started)
        return response

    def route(self, path: str, request: Request):
        methods = self.routes.get(path)
        if methods is None:
            raise ApiError(404, f"no route for {path[:200]}; see /openapi.json", code="unknown_route")
        if request.method not in methods:
            allow = ", ".join(methods)
            raise ApiError(405, f"{request.method} is not allowed on {path}; use {allow}",
                           code="method_not_allowed", headers={"allow": allow})
        if path.startswith("/v1/"):
            self.authorize(request)
        return methods[request.method]

    def authorize(self, request: Request) -> None:
        """When an API key hash is configured, require `Authorization: Bearer <key>` (constant-time compare)."""
        if self.api_key_sha256 is None:
            return
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        offered = hashlib.sha256(key.strip().encode("utf-8", "surrogateescape")).hexdigest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(offered, self.api_key_sha256):
            raise ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                           code="invalid_api_key", headers={"www-authenticate": "Bearer"})

    # -- routes ----------------------------------------------------------------------------------------
    def generate(self, request: Request, record: dict, chat: bool) -> Response:
        body = self.json_body(request)
        model = self.loaded.model
        req = generation_request(body, chat, self.loaded.name, model.cfg.n_positions, model.cfg.vocab_size)
        try:
            prompt_ids = encode_prompt(model, self.loaded.tokenizer, req.prompt, req.params)
        except ContextOverflow as exc:
            param = "prompt" if exc.prompt_tokens >= model.cfg.n_positions else "max_tokens"
            raise ApiError(400, f"'{param}': {exc}", param=param, code="context_length_exceeded") from None
        record["prompt_tokens"] = len(prompt_ids)
        deltas = stream(model, self.loaded.tokenizer, prompt_ids, req.params)
        completion_id = ("chatcmpl-" if chat else "cmpl-") + record["request_id"]
        created = int(time.time())
        if req.stream:
            events = completions.sse_events(chat, completion_id, created, self.loaded.name, deltas)
            return Response(200, {"content-type": "text/event-stream", "cache-control": "no-cache"}, chunks=events)
        gen = drain(deltas)
        record.update(completion_tokens=gen.completion_tokens, finish_reason=gen.finish_reason)
        return json_response(200, completions.completion(chat, completion_id, created, self.loaded.name, gen))

    def models(self, request: Request, record: dict) -> Response:
        card = {"id": self.loaded.name, "object": "model", "created": 0, "owned_by": "tinyllm"}
        return json_response(200, {"object": "list", "data": [card]})

    def health(self, request: Request, record: dict) -> Response:
        return json_response(200, {"status": "ok", "model": self.loaded.name, "engine": ENGINE,
                                   "manifest_sha256": self.loaded.manifest_sha256,
                                   "context_tokens": self.loaded.model.cfg.n_positions})

    def openapi(self, request: Request, record: dict) -> Response:
        return json_response(200, self.openapi_document)

    # -- helpers ---------------------------------------------------------------------------------------
    def json_body(self, request: Request) -> dict:
        if len(request.body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes", code="body_too_large")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise ApiError(415, f"content-type must be application/json, got {media_type[:100]!r}",
                           code="unsupported_media_type")
        return parse_json(request.body)

    def logged_stream(self, chunks: Iterator[bytes], status: int, record: dict, started: float) -> Iterator[bytes]:
        """Pass the events through, then write the log line once the stream has ended."""
        gen = None
        try:
            gen = yield from chunks
        finally:
            if gen is not None:
                record.update(completion_tokens=gen.completion_tokens, finish_reason=gen.finish_reason)
            self.finish_log(record, status, started)

    def finish_log(self, record: dict, status: int, started: float) -> None:
        record.update(status=status, latency_ms=round((time.perf_counter() - started) * 1000, 2))
        record["severity"] = severity(status)
        record["message"] = f"{record['method']} {record['route']} {status}"
        self.log(record)


def create_app(model_dir: str | None = None) -> App:
    """Build the serving app from the environment (model dir per core.artifacts; TINYLLM_API_KEY_SHA256)."""
    return App(load(model_dir), api_key_sha256=os.environ.get(ENV_API_KEY_SHA256))
