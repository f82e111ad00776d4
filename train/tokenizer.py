"""Byte-level BPE tokenizer trained with the `tokenizers` library (GPT-2's scheme), from a stream of documents."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS_TOKEN = "<|endoftext|>"


def train_tokenizer(documents: Iterable[str], vocab_size: int) -> Tokenizer:
    """Learn BPE merges over `documents` (any iterable: the corpus is streamed, never held whole);
    the end-of-text token gets id 0.

    Byte-level means every byte string encodes (no unknown token), so any prompt a user sends has ids.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    return tokenizer
