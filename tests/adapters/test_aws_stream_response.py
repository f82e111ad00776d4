"""The AWS adapter's `stream_response` hands the streaming runtime a stream, not a finished body: the first event
exists before the rest are decoded (the request's one log line, written when the stream ends, is not out yet)."""

from __future__ import annotations

import json

from contract_support import aws_event

from functions.devtools.local import LambdaContext, load_adapter


def test_the_first_event_exists_before_the_answer_is_decoded(loaded, capsys):
    body = {
        "prompt": "Hello world,",
        "max_tokens": 32,
        "temperature": 0,
        "stream": True,
        "logit_bias": {str(loaded.tokenizer.token_to_id("<|endoftext|>")): -100},  # all 32 tokens are decoded
    }
    event = aws_event("aws-url-v2", "POST", "/v1/completions", {"Content-Type": "application/json"}, b"")
    event.update(body=json.dumps(body))
    prelude, chunks = load_adapter("aws").stream_response(event, LambdaContext())
    assert prelude["statusCode"] == 200 and prelude["headers"]["content-type"].startswith("text/event-stream")
    capsys.readouterr()
    first = next(iter(chunks))
    assert first.startswith(b"data: ") and capsys.readouterr().out == ""
    rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n")
    assert json.loads(capsys.readouterr().out)["completion_tokens"] == 32
