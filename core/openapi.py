"""The OpenAPI 3.0 document served at /openapi.json, built from the routes' field tables and schemas and the
limits in core.schema."""

from __future__ import annotations

from typing import Protocol

from core import schema

JSON = "application/json"
# One server-sent event: `data` holds a JSON chunk (Completion/ChatCompletion shape with `delta` or `text`
# pieces), and the last event's data is `[DONE]`.
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
SECURED = [{}, {"bearer": []}]


class RouteDoc(Protocol):
    """What the document needs of a generation route (core.completion_route, core.chat_route)."""

    path: str
    summary: str
    required: str
    request_schema_name: str
    response_schema_name: str
    max_choices: int
    fields: tuple[schema.Field, ...]

    def choice_schema(self) -> dict: ...


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(*statuses: int) -> dict:
    reasons = {
        400: "invalid JSON or field (the message names the field and the limit)",
        401: "API key required and missing or wrong",
        404: "unknown model",
        405: "method not allowed (see the Allow header)",
        413: f"body over {schema.MAX_BODY_BYTES} bytes",
        415: "content-type is not application/json",
        500: "internal error (the message carries the request id of the log line)",
    }
    return {str(s): {"description": reasons[s], "content": {JSON: {"schema": ref("Error")}}} for s in statuses}


def request_schema(fields: tuple[schema.Field, ...], required: str) -> dict:
    """A request body's schema: one property per entry of its field table, nothing else accepted."""
    return {
        "type": "object",
        "required": [required],
        "additionalProperties": False,
        "properties": {f.name: f.openapi() for f in fields},
    }


def completion_schema(route: RouteDoc) -> dict:
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {
                "type": "array",
                "minItems": 1,
                "maxItems": route.max_choices,
                "items": route.choice_schema(),
            },
            "usage": {
                "type": "object",
                "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                "properties": {"prompt_tokens": count, "completion_tokens": count, "total_tokens": count},
            },
        },
    }


def generation_operation(summary: str, request_schema_name: str, response_schema: str) -> dict:
    return {
        "summary": summary,
        "security": SECURED,
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(request_schema_name)}}},
        "responses": {
            "200": {
                "description": "the completion, or server-sent events when stream is true",
                "content": {JSON: {"schema": ref(response_schema)}, "text/event-stream": {"schema": SSE_EVENT}},
            },
            **error_responses(400, 401, 404, 405, 413, 415, 500),
        },
    }


def post_operation(summary: str, request_schema_name: str, response_schema: str) -> dict:
    return {
        "summary": summary,
        "security": SECURED,
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(request_schema_name)}}},
        "responses": {
            "200": {"description": "OK", "content": {JSON: {"schema": ref(response_schema)}}},
            **error_responses(400, 401, 404, 405, 413, 415, 500),
        },
    }


def get_operation(summary: str, response_schema: dict, secured: bool, not_found: bool = False) -> dict:
    errors = (401, 405, 500) if secured else (405, 500)
    ok = {"description": "OK", "content": {JSON: {"schema": response_schema}}}
    op = {"summary": summary, "responses": {"200": ok, **error_responses(*errors, *((404,) if not_found else ()))}}
    if secured:
        op["security"] = SECURED
    return op


def object_schema(required: list[str], **properties: dict) -> dict:
    return {"type": "object", "required": required, "properties": properties}


STRING, INTEGER = {"type": "string"}, {"type": "integer"}
NULLABLE_STRING = {"type": "string", "nullable": True}
MODEL = object_schema(["id", "object", "owned_by"], id=STRING, object=STRING, created=INTEGER, owned_by=STRING)


def openapi_document(
    model_name: str, n_ctx: int, routes: list[RouteDoc], tokenizer_fields: dict[str, tuple[schema.Field, ...]]
) -> dict:
    """The document for a model's context, its generation routes (in order) and the tokenizer routes' tables."""
    model_card = get_operation("The model, by id (404 for another id)", ref("Model"), secured=True, not_found=True)
    # No control characters: a path holding one never reaches the function on the local server or Cloud Run
    # functions (functions-framework's werkzeug route `<path:path>` does not match a newline; it answers its own
    # HTML 404), so the document promises the JSON 404 only for ids that can arrive.
    model_id = {**STRING, "pattern": "^[^\\x00-\\x1f\\x7f]+$"}
    model_card["parameters"] = [{"name": "model_id", "in": "path", "required": True, "schema": model_id}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tinyllm",
            "version": "1",
            "description": (
                f"OpenAI-compatible subset serving {model_name!r}. Limits: body {schema.MAX_BODY_BYTES} bytes, "
                f"{schema.MAX_PROMPTS} prompts of {schema.MAX_PROMPT_CHARS} characters, each prompt + max_tokens "
                f"within {n_ctx} tokens, {schema.MAX_REQUEST_TOKENS} tokens of work per request (sum over prompts of "
                f"best_of x (prompt tokens + max_tokens)), n and best_of up to {schema.MAX_CHOICES}, "
                f"{schema.MAX_STOP_STRINGS} stop strings, {schema.MAX_MESSAGES} chat messages, "
                f"{schema.TIME_BUDGET_S:g} s of generation per request (then finish_reason 'length'). "
                "Log-probabilities are those of the raw model, before penalties, logit_bias, temperature, top-k and "
                "top-p."
            ),
        },
        "paths": {
            **{
                r.path: {"post": generation_operation(r.summary, r.request_schema_name, r.response_schema_name)}
                for r in routes
            },
            "/v1/models": {"get": get_operation("The model served", ref("ModelList"), secured=True)},
            "/v1/models/{model_id}": {"get": model_card},
            "/tokenize": {
                "post": post_operation("Token ids of a text (vLLM's shape)", "TokenizeRequest", "TokenizeResponse")
            },
            "/detokenize": {
                "post": post_operation("Text of token ids (vLLM's shape)", "DetokenizeRequest", "DetokenizeResponse")
            },
            "/tokenizer_info": {
                "get": get_operation("The tokenizer's configuration (vLLM's shape)", ref("TokenizerInfo"), secured=True)
            },
            "/healthz": {"get": get_operation("Liveness, model and manifest hash", ref("Health"), secured=False)},
            "/openapi.json": {"get": get_operation("This document", {"type": "object"}, secured=False)},
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "required only when TINYLLM_API_KEY_SHA256 is set",
                }
            },
            "schemas": {
                **{r.request_schema_name: request_schema(r.fields, r.required) for r in routes},
                "TokenizeRequest": request_schema(tokenizer_fields["tokenize"], "prompt"),
                "DetokenizeRequest": request_schema(tokenizer_fields["detokenize"], "tokens"),
                **{r.response_schema_name: completion_schema(r) for r in routes},
                "TokenizeResponse": object_schema(
                    ["count", "max_model_len", "tokens"],
                    count=INTEGER,
                    max_model_len=INTEGER,
                    tokens={"type": "array", "items": INTEGER},
                    token_strs={"type": "array", "nullable": True, "items": STRING},
                ),
                "DetokenizeResponse": object_schema(["prompt"], prompt=STRING),
                "TokenizerInfo": object_schema(
                    ["tokenizer_class", "eos_token", "model_max_length", "chat_template"],
                    tokenizer_class=STRING,
                    eos_token=NULLABLE_STRING,
                    bos_token=NULLABLE_STRING,
                    unk_token=NULLABLE_STRING,
                    pad_token=NULLABLE_STRING,
                    model_max_length=INTEGER,
                    add_bos_token={"type": "boolean"},
                    chat_template=STRING,
                ),
                "Model": MODEL,
                "ModelList": object_schema(["object", "data"], object=STRING, data={"type": "array", "items": MODEL}),
                "Health": object_schema(
                    ["status", "model", "engine", "manifest_sha256"],
                    status=STRING,
                    model=STRING,
                    engine=STRING,
                    manifest_sha256=STRING,
                    context_tokens=INTEGER,
                ),
                "Error": object_schema(
                    ["error"],
                    error=object_schema(
                        ["message", "type"], message=STRING, type=STRING, param=NULLABLE_STRING, code=NULLABLE_STRING
                    ),
                ),
            },
        },
    }
