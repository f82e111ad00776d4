"""The HTTP shell, platform-neutral: Request in, Response out, one JSON log line per request.

Adapters translate their platform's request into `Request`, call `App.handle`, and translate the `Response`
back. Routing, API-key auth, CORS, reading the body, the mapping of errors to status codes and logging live
here; platform specifics (trace ids, invocation ids) arrive as `Request.log_fields`. What a route does is its
module's: a generation request goes route.parse (core.completion_route, core.chat_route) -> core.serving
(admit, run) -> core.generate; the tokenizer routes are core.tokenizer_route's.

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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from core import serving, tokenizer_route
from core.artifacts import LoadedModel, load
from core.body import json_body
from core.chat_route import ChatRoute
from core.completion_route import CompletionRoute
from core.openapi import openapi_document
from core.schema import ApiError
from core.serving import Tally

ENV_API_KEY_SHA256 = "TINYLLM_API_KEY_SHA256"
ENV_CORS_ORIGINS = "TINYLLM_CORS_ORIGINS"
ENGINE = "numpy"
OPEN_PATHS = ("/healthz", "/openapi.json")  # never need the API key (probes, documentation)
MODEL_PATH = "/v1/models/"
CORS_MAX_AGE_S = 600
CORS_ALLOW_HEADERS = "authorization, content-type"

# status -> OpenAI error type
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
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
    request_id: str | None = None  # the platform's id when it has one (AWS request id, Azure invocation id)
    log_fields: Mapping[str, str] = field(default_factory=dict)  # extra platform fields for the log line

    @classmethod
    def of(cls, method: str, path: str, headers, body: bytes = b"", **kwargs) -> Request:
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
    error = {
        "message": err.message,
        "type": ERROR_TYPES.get(err.status, "invalid_request_error"),
        "param": err.param,
        "code": err.code,
    }
    return json_response(err.status, {"error": error}, err.headers)


def write_log_line(record: dict) -> None:
    """One JSON object per line on stdout: Cloud Logging, CloudWatch and Application Insights all parse it."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def severity(status: int) -> str:
    return "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"


def cors_origins(value: str | None) -> frozenset[str]:
    """TINYLLM_CORS_ORIGINS: comma-separated exact origins (scheme://host[:port]); empty or unset: CORS off."""
    return frozenset(o.strip().rstrip("/") for o in (value or "").split(",") if o.strip())


class App:
    """The composition root of a serving process: one verified model, the API key hash, CORS, the log sink."""

    def __init__(
        self,
        loaded: LoadedModel,
        api_key_sha256: str | None = None,
        log: Callable[[dict], None] = write_log_line,
        cors: frozenset[str] = frozenset(),
    ):
        self.loaded = loaded
        self.api_key_sha256 = (api_key_sha256 or "").strip().lower() or None
        self.log = log
        self.cors = cors
        cfg = loaded.model.cfg
        completion, chat = CompletionRoute(cfg.n_positions, cfg.vocab_size), ChatRoute(cfg.n_positions, cfg.vocab_size)
        self.tokenizer_fields = tokenizer_route.fields(cfg.n_positions, cfg.vocab_size)
        self.openapi_document = openapi_document(
            loaded.name, cfg.n_positions, [completion, chat], self.tokenizer_fields
        )
        self.routes = {
            completion.path: {"POST": lambda req, rec: self.generate(completion, req, rec)},
            chat.path: {"POST": lambda req, rec: self.generate(chat, req, rec)},
            "/v1/models": {"GET": self.models},
            MODEL_PATH: {"GET": self.model_card},  # /v1/models/{id}
            "/tokenize": {"POST": self.tokenize},
            "/detokenize": {"POST": self.detokenize},
            "/tokenizer_info": {"GET": self.tokenizer_info},
            "/healthz": {"GET": self.health},
            "/openapi.json": {"GET": self.openapi},
        }

    # -- the one entry point -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.request_id or uuid.uuid4().hex
        path = request.path.rstrip("/") or "/"
        record = {"request_id": request_id, "method": request.method[:16], "route": path[:200], **request.log_fields}
        try:
            response = self.route(path, request)(request, record)
        except ApiError as err:
            response = error_response(err)
        except Exception as exc:  # the edge: nothing unforeseen reaches the client as a traceback
            record["exception"] = "".join(traceback.format_exception(exc))[-4000:]
            response = error_response(ApiError(500, f"internal error; request id {request_id}", code="internal_error"))
        response.headers["x-request-id"] = request_id
        response.headers.update(self.cors_headers(request))
        if response.chunks is not None:
            response.chunks = self.logged_stream(response.chunks, response.status, record, started)
        else:
            self.finish_log(record, response.status, started)
        return response

    def route(self, path: str, request: Request):
        route = MODEL_PATH if path.startswith(MODEL_PATH) else path
        methods = self.routes.get(route)
        if methods is None:
            raise ApiError(404, f"no route for {path[:200]}; see /openapi.json", code="unknown_route")
        if request.method == "OPTIONS" and self.cors:
            return lambda req, rec: self.preflight(req, methods)
        if request.method not in methods:
            allow = ", ".join(methods)
            raise ApiError(
                405,
                f"{request.method} is not allowed on {path}; use {allow}",
                code="method_not_allowed",
                headers={"allow": allow},
            )
        if route not in OPEN_PATHS:
            self.authorize(request)
        return methods[request.method]

    def authorize(self, request: Request) -> None:
        """When an API key hash is configured, require `Authorization: Bearer <key>` (constant-time compare)."""
        if self.api_key_sha256 is None:
            return
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        offered = hashlib.sha256(key.strip().encode("utf-8", "surrogateescape")).hexdigest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(offered, self.api_key_sha256):
            raise ApiError(
                401,
                "missing or invalid API key: send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )

    # -- CORS (only when TINYLLM_CORS_ORIGINS lists origins) ---------------------------------------------
    def cors_headers(self, request: Request) -> dict[str, str]:
        """For an allowed Origin: allow it (exactly, never `*`) and let the browser read x-request-id."""
        origin = request.headers.get("origin")
        if not self.cors or origin not in self.cors:
            return {"vary": "Origin"} if self.cors else {}
        return {
            "access-control-allow-origin": origin,
            "vary": "Origin",
            "access-control-expose-headers": "x-request-id",
        }

    def preflight(self, request: Request, methods: dict) -> Response:
        """Answer a browser's OPTIONS preflight without the API key (browsers never send it there)."""
        if request.headers.get("origin") not in self.cors:
            raise ApiError(
                403,
                f"origin {str(request.headers.get('origin'))[:200]!r} is not allowed; see {ENV_CORS_ORIGINS}",
                code="origin_not_allowed",
            )
        return Response(
            204,
            {
                "access-control-allow-methods": ", ".join(methods),
                "access-control-allow-headers": CORS_ALLOW_HEADERS,
                "access-control-max-age": str(CORS_MAX_AGE_S),
            },
        )

    # -- generation ------------------------------------------------------------------------------------
    def generate(self, route: CompletionRoute | ChatRoute, request: Request, record: dict) -> Response:
        """Parse with the route's table, admit (every limit), run; the body, or the events as they are decoded."""
        generation_request = route.parse(self.json_body(request), self.loaded.name)
        prompts = serving.admit(generation_request, self.loaded)
        tally, answer = serving.run(route, generation_request, prompts, self.loaded, record["request_id"])
        record["prompt_tokens"] = tally.prompt_tokens
        if isinstance(answer, dict):
            record.update(tally.log_fields())
            return json_response(200, answer)
        return Response(
            200,
            {"content-type": "text/event-stream", "cache-control": "no-cache"},
            chunks=self.tallied(answer, tally, record),
        )

    @staticmethod
    def tallied(events: Iterator[bytes], tally: Tally, record: dict) -> Iterator[bytes]:
        """Pass the events through; once they are all sent (or the client left), copy the counts to the log."""
        try:
            yield from events
        finally:
            record.update(tally.log_fields())

    # -- other routes ----------------------------------------------------------------------------------
    def model_object(self) -> dict:
        return {"id": self.loaded.name, "object": "model", "created": 0, "owned_by": "tinyllm"}

    def models(self, request: Request, record: dict) -> Response:
        return json_response(200, {"object": "list", "data": [self.model_object()]})

    def model_card(self, request: Request, record: dict) -> Response:
        model_id = request.path.rstrip("/")[len(MODEL_PATH) :]
        if model_id != self.loaded.name:
            raise ApiError(
                404,
                f"'model': the model {model_id[:64]!r} does not exist; this server has {self.loaded.name!r}",
                param="model",
                code="model_not_found",
            )
        return json_response(200, self.model_object())

    def tokenize(self, request: Request, record: dict) -> Response:
        body = tokenizer_route.tokenize(self.json_body(request), self.tokenizer_fields["tokenize"], self.loaded)
        return json_response(200, body)

    def detokenize(self, request: Request, record: dict) -> Response:
        body = tokenizer_route.detokenize(self.json_body(request), self.tokenizer_fields["detokenize"], self.loaded)
        return json_response(200, body)

    def tokenizer_info(self, request: Request, record: dict) -> Response:
        return json_response(200, tokenizer_route.tokenizer_config(self.loaded))

    def health(self, request: Request, record: dict) -> Response:
        return json_response(
            200,
            {
                "status": "ok",
                "model": self.loaded.name,
                "engine": ENGINE,
                "manifest_sha256": self.loaded.manifest_sha256,
                "context_tokens": self.loaded.model.cfg.n_positions,
            },
        )

    def openapi(self, request: Request, record: dict) -> Response:
        return json_response(200, self.openapi_document)

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def json_body(request: Request) -> dict:
        return json_body(request.body, request.headers.get("content-type", ""))

    def logged_stream(self, chunks: Iterator[bytes], status: int, record: dict, started: float) -> Iterator[bytes]:
        """Pass the events through, then write the log line once the stream has ended."""
        try:
            # A client that left early closes this generator: `yield from` closes `chunks` first, so the inner
            # generators record what was sent before the log line is written.
            yield from chunks
        finally:
            self.finish_log(record, status, started)

    def finish_log(self, record: dict, status: int, started: float) -> None:
        record.update(status=status, latency_ms=round((time.perf_counter() - started) * 1000, 2))
        record["severity"] = severity(status)
        record["message"] = f"{record['method']} {record['route']} {status}"
        self.log(record)


def create_app(model_dir: str | None = None) -> App:
    """Build the serving app from the environment (model dir per core.artifacts; TINYLLM_API_KEY_SHA256;
    TINYLLM_CORS_ORIGINS)."""
    return App(
        load(model_dir),
        api_key_sha256=os.environ.get(ENV_API_KEY_SHA256),
        cors=cors_origins(os.environ.get(ENV_CORS_ORIGINS)),
    )
