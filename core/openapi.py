"""The OpenAPI 3.0 document served at /openapi.json, built from the limits in core.schema."""

from __future__ import annotations

from core import schema

JSON = "application/json"
# One server-sent event: `data` holds a JSON chunk (Completion/ChatCompletion shape with `delta` or `text`
# pieces), and the last event's data is `[DONE]`.
SSE_EVENT = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(*statuses: int) -> dict:
    reasons = {400: "invalid JSON or field (the message names the field and the limit)",
               401: "API key required and missing or wrong", 404: "unknown model",
               405: "method not allowed (see the Allow header)",
               413: f"body over {schema.MAX_BODY_BYTES} bytes", 415: "content-type is not application/json",
               500: "internal error (the message carries the request id of the log line)"}
    return {str(s): {"description": reasons[s], "content": {JSON: {"schema": ref("Error")}}} for s in statuses}


def sampling_properties(n_ctx: int, vocab_size: int) -> dict:
    stop_string = {"type": "string", "minLength": 1, "maxLength": schema.MAX_STOP_CHARS}
    return {
        "model": {"type": "string", "description": "optional; must name this server's model if given"},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": n_ctx - 1, "default": schema.DEFAULT_MAX_TOKENS,
                       "description": f"prompt tokens + max_tokens must fit the context of {n_ctx} tokens"},
        "temperature": {"type": "number", "minimum": 0, "maximum": schema.MAX_TEMPERATURE, "default": 1,
                        "description": "0 is greedy"},
        "top_p": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1, "default": 1},
        "top_k": {"type": "integer", "minimum": 0, "maximum": vocab_size, "default": 0,
                  "description": "extension: keep the k likeliest tokens; 0 disables"},
        "seed": {"type": "integer", "minimum": 0, "maximum": schema.MAX_SEED,
                 "description": "same seed and request, same text"},
        "stop": {"oneOf": [stop_string, {"type": "array", "items": stop_string, "maxItems": schema.MAX_STOP_STRINGS}]},
        "n": {"type": "integer", "enum": [1], "default": 1},
        "stream": {"type": "boolean", "default": False,
                   "description": "server-sent events ending with `data: [DONE]` (buffered on platforms that cannot stream)"},
    }


def choice_schema(chat: bool) -> dict:
    finish = {"type": "string", "enum": ["stop", "length"]}
    if chat:
        message = {"type": "object", "required": ["role", "content"],
                   "properties": {"role": {"type": "string", "enum": ["assistant"]}, "content": {"type": "string"}}}
        props = {"index": {"type": "integer"}, "message": message, "finish_reason": finish}
        required = ["index", "message", "finish_reason"]
    else:
        props = {"index": {"type": "integer"}, "text": {"type": "string"}, "finish_reason": finish,
                 "logprobs": {"nullable": True}}
        required = ["index", "text", "finish_reason"]
    return {"type": "object", "required": required, "properties": props}


def completion_schema(chat: bool) -> dict:
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object", "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"}, "object": {"type": "string"}, "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "minItems": 1, "maxItems": 1, "items": choice_schema(chat)},
            "usage": {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                      "properties": {"prompt_tokens": count, "completion_tokens": count, "total_tokens": count}},
        },
    }


def generation_operation(summary: str, request_schema: str, response_schema: str) -> dict:
    return {
        "summary": summary,
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": {JSON: {"schema": ref(request_schema)}}},
        "responses": {
            "200": {"description": "the completion, or server-sent events when stream is true",
                    "content": {JSON: {"schema": ref(response_schema)}, "text/event-stream": {"schema": SSE_EVENT}}},
            **error_responses(400, 401, 404, 405, 413, 415, 500),
        },
    }


def get_operation(summary: str, response_schema: dict, secured: bool) -> dict:
    op = {"summary": summary, "responses": {"200": {"description": "OK", "content": {JSON: {"schema": response_schema}}},
                                            **error_responses(*((401, 405, 500) if secured else (405, 500)))}}
    if secured:
        op["security"] = [{}, {"bearer": []}]
    return op


def openapi_document(model_name: str, n_ctx: int, vocab_size: int) -> dict:
    sampling = sampling_properties(n_ctx, vocab_size)
    message = {"type": "object", "required": ["role", "content"],
               "properties": {"role": {"type": "string", "enum": list(schema.CHAT_ROLES)}, "content": {"type": "string"}}}
    prompt = {"type": "string", "minLength": 1, "maxLength": schema.MAX_PROMPT_CHARS}
    return {
        "openapi": "3.0.3",
        "info": {"title": "tinyllm", "version": "1", "description": (
            f"OpenAI-compatible subset serving {model_name!r}. Limits: body {schema.MAX_BODY_BYTES} bytes, "
            f"prompt {schema.MAX_PROMPT_CHARS} characters, prompt + max_tokens within {n_ctx} tokens, "
            f"{schema.MAX_STOP_STRINGS} stop strings, {schema.MAX_MESSAGES} chat messages, "
            f"{schema.TIME_BUDGET_S:g} s of generation per request (then finish_reason 'length').")},
        "paths": {
            "/v1/completions": {"post": generation_operation("Complete a prompt", "CompletionRequest", "Completion")},
            "/v1/chat/completions": {"post": generation_operation("Answer a chat", "ChatRequest", "ChatCompletion")},
            "/v1/models": {"get": get_operation("The model served", ref("ModelList"), secured=True)},
            "/healthz": {"get": get_operation("Liveness, model and manifest hash", ref("Health"), secured=False)},
            "/openapi.json": {"get": get_operation("This document", {"type": "object"}, secured=False)},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "required only when TINYLLM_API_KEY_SHA256 is set"}},
            "schemas": {
                "CompletionRequest": {"type": "object", "required": ["prompt"],
                                      "properties": {"prompt": prompt, **sampling}},
                "ChatRequest": {"type": "object", "required": ["messages"], "properties": {
                    "messages": {"type": "array", "minItems": 1, "maxItems": schema.MAX_MESSAGES, "items": message},
                    "max_completion_tokens": sampling["max_tokens"], **sampling}},
                "Completion": completion_schema(chat=False),
                "ChatCompletion": completion_schema(chat=True),
                "ModelList": {"type": "object", "required": ["object", "data"], "properties": {
                    "object": {"type": "string"}, "data": {"type": "array", "items": {
                        "type": "object", "required": ["id", "object", "owned_by"],
                        "properties": {"id": {"type": "string"}, "object": {"type": "string"},
                                       "created": {"type": "integer"}, "owned_by": {"type": "string"}}}}}},
                "Health": {"type": "object", "required": ["status", "model", "engine", "manifest_sha256"],
                           "properties": {"status": {"type": "string"}, "model": {"type": "string"},
                                          "engine": {"type": "string"}, "manifest_sha256": {"type": "string"},
                                          "context_tokens": {"type": "integer"}}},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["message", "type"],
                    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                   "param": {"type": "string", "nullable": True},
                                   "code": {"type": "string", "nullable": True}}}}},
            },
        },
    }
