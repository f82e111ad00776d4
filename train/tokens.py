"""The corpus as one flat token stream on disk (nanoGPT's train.bin), and the windows drawn from it.

Documents are encoded in batches and appended to a uint16 file, each followed by the end-of-text id, then
the file is memory-mapped: memory holds one batch of documents while encoding and, while training, only the
pages that sampled windows touch. So peak memory follows batch × block × model, not the corpus size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

ENCODE_BATCH = 1024  # documents per encode_batch call
TOKEN_DTYPE = np.uint16


def batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def write_stream(documents: Iterable[str], tokenizer: Tokenizer, eos_id: int, path: Path) -> np.ndarray:
    """Encode `documents` into `path` (ids + EOS after each) and return the file memory-mapped, read-only."""
    with path.open("wb") as out:
        for batch in batches(documents, ENCODE_BATCH):
            for encoding in tokenizer.encode_batch(batch):
                np.asarray([*encoding.ids, eos_id], dtype=TOKEN_DTYPE).tofile(out)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=TOKEN_DTYPE)
    return np.memmap(path, dtype=TOKEN_DTYPE, mode="r")


def window_starts(rng: np.random.Generator, stream_len: int, count: int) -> np.ndarray:
    """`count` random start offsets, uniform over the whole stream (windows wrap around its end)."""
    return rng.integers(0, stream_len, size=count)


def gather(stream: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """The windows of `window` tokens from each start, as an int64 array (len(starts), window).

    The stream is read as a ring: a window running past the end continues at the start (after the last
    document's EOS comes the first document, as after any other). Without the wrap, tokens near either end
    would be in fewer windows than the rest: the first line of the corpus would be learnt worse than others.
    """
    positions = (starts[:, None] + np.arange(window)[None, :]) % len(stream)
    return np.asarray(stream[positions], dtype=np.int64)
