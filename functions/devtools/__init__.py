"""The developer's tools, never shipped: the `tinyllm` command (cli), local runs of the cloud entry points and
the test/bench harness (local), and the transformers parity oracle (reference). See docs/architecture.md."""
