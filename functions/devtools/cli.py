"""`python -m functions.devtools` / `tinyllm`: generate text, serve locally, invoke a cloud handler locally.

Configuration precedence, everywhere: command-line argument > environment variable > default.
"""

from __future__ import annotations

import argparse
import sys

from core.artifacts import ArtifactError, load, resolve_model_dir
from core.generate import ContextOverflow, SamplingParams, encode_prompt, stream
from functions.devtools import local


def add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="complete a prompt and print the text as it is decoded")
    p.add_argument("prompt")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=1.0, help="0 means greedy")
    p.add_argument("--top-k", type=int, default=0, help="0 means no top-k filter")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None, help="same seed, same text")
    p.add_argument("--stop", action="append", default=[], help="stop string (repeatable)")
    p.add_argument(
        "--engine",
        choices=("numpy", "reference"),
        default="numpy",
        help="numpy (serving engine) or reference (transformers + torch)",
    )
    p.add_argument("--model-dir", default=None, help="model directory (default: see core.artifacts)")
    p.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    loaded = load(args.model_dir)
    engine = loaded.model
    if args.engine == "reference":
        from functions.devtools.reference import ReferenceEngine

        engine = ReferenceEngine(resolve_model_dir(args.model_dir))
    params = SamplingParams(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=tuple(args.stop),
    )
    sys.stdout.write(args.prompt)
    prompt_ids = encode_prompt(engine, loaded.tokenizer, args.prompt, params)
    for delta in stream(engine, loaded.tokenizer, prompt_ids, params):
        sys.stdout.write(delta)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the GCP function locally with the real functions-framework server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(run=lambda args: local.serve(args.host, args.port))


def add_invoke(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("invoke", help="call the AWS or Azure handler once with a native event; print its response")
    p.add_argument("cloud", choices=("aws", "azure"))
    p.add_argument("body", nargs="?", default="", help='JSON request body, e.g. \'{"prompt": "Hello"}\'')
    p.add_argument("--path", default=None, help="default: /v1/completions with a body, /healthz without")
    p.add_argument("--method", default=None, help="default: POST with a body, GET without")
    p.set_defaults(run=run_invoke)


def run_invoke(args: argparse.Namespace) -> int:
    method = args.method or ("POST" if args.body else "GET")
    path = args.path or ("/v1/completions" if args.body else "/healthz")
    print(local.invoke(args.cloud, args.body, method.upper(), path))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinyllm", description=(__doc__ or "").partition("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add_generate(sub)
    add_serve(sub)
    add_invoke(sub)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ArtifactError, ContextOverflow, ValueError) as exc:
        print(f"tinyllm: error: {exc}", file=sys.stderr)
        return 2
