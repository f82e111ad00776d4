"""A request body as the HTTP shell reads it: size, media type, UTF-8, nesting depth, then one JSON object.

Each check is an ApiError with its own status (413, 415, 400) before any field is read.
"""

from __future__ import annotations

import json

from core.schema import MAX_BODY_BYTES, MAX_JSON_DEPTH, ApiError


def json_body(body: bytes, content_type: str) -> dict:
    """The body of a POST as a JSON object, or ApiError (413 too large, 415 not JSON, 400 malformed)."""
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes", code="body_too_large")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            415, f"content-type must be application/json, got {media_type[:100]!r}", code="unsupported_media_type"
        )
    return parse_json(body)


def parse_json(body: bytes) -> dict:
    """The body as a JSON object, or ApiError 400 (invalid UTF-8, invalid JSON, too deep, not an object)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {exc.start})", code="invalid_json") from None
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise ApiError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels", code="invalid_json")
    try:
        data = json.loads(text, parse_constant=reject_constant)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers over Python's digit limit
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return data


def reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Bracket depth outside strings, counted without recursion (json.loads would recurse on it)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False
