"""Reading the corpus as a stream of documents, refusing what cannot be text, and the train/validation split.

A document is one non-empty line (stripped). The file is read line by line in binary, so memory holds one
line at a time and a line longer than MAX_LINE_BYTES is refused before it is read whole.

The split rule: a document belongs to the validation set when the first 8 bytes of the sha256 of
"<seed>\n<document>" (UTF-8), read as a big-endian integer and divided by 2**64, are below `val_fraction`. It
depends on nothing but the document and the seed, so it is deterministic, the same whatever the order of the
lines, the two sets are disjoint, and a line repeated in the corpus always falls on the same side (no copy of
a validation line is trained on); another --seed draws another split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

MAX_LINE_BYTES = 1_000_000  # one document; a longer line is almost always a file without newlines
SPLIT_RULE = (
    "document (non-empty line) in validation iff int.from_bytes(sha256(utf8(f'{seed}\\n{line}'))[:8], "
    "'big') / 2**64 < val_fraction"
)


class CorpusError(ValueError):
    """The corpus cannot be trained on; the message names the file, where, and what to do."""


def documents(corpus: Path) -> Iterator[tuple[int, str]]:
    """(line number, document) for every non-empty line; CorpusError for a file that is not usable text."""
    try:
        handle = corpus.open("rb")
    except OSError as exc:
        raise CorpusError(
            f"{corpus}: cannot read the corpus ({exc.strerror}); pass a text file with --corpus"
        ) from None
    found = 0
    with handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise CorpusError(
                    f"{corpus}: line {number} is longer than {MAX_LINE_BYTES:,} bytes; a document is "
                    "one line, so break the text into lines (e.g. one paragraph a line)"
                )
            if b"\0" in raw:
                raise CorpusError(
                    f"{corpus}: line {number} holds a NUL byte, so this looks like a binary file; "
                    "the corpus must be UTF-8 text"
                )
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise CorpusError(
                    f"{corpus}: line {number} is not valid UTF-8 (byte {exc.start} of the line); "
                    "convert the file to UTF-8, e.g. with iconv"
                ) from None
            if text:
                found += 1
                yield number, text
    if not found:
        raise CorpusError(f"{corpus}: the corpus has no non-empty line to train on")


def is_validation(document: str, val_fraction: float, seed: int) -> bool:
    """The split rule (module docstring): a pure function of the document's text and the seed."""
    digest = hashlib.sha256(f"{seed}\n{document}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def split_documents(corpus: Path, val_fraction: float, seed: int, want_validation: bool) -> Iterator[str]:
    """The documents of one side of the split, in corpus order."""
    for _, doc in documents(corpus):
        if is_validation(doc, val_fraction, seed) == want_validation:
            yield doc


def corpus_record(corpus: Path) -> dict:
    """sha256, size and line count of the corpus file, read in chunks."""
    digest, size, lines = hashlib.sha256(), 0, 0
    with corpus.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    return {"sha256": digest.hexdigest(), "bytes": size, "lines": lines}
