"""The training benchmark's pieces that need no download or long run: the corpus conversion and the unigram
baseline (the whole benchmark runs in `make bench QUICK=1`)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bench.corpus import paragraphs
from bench.training import unigram_entropy
from train.config import DEFAULT_CORPUS, read_corpus_lines


def test_each_paragraph_becomes_one_document_without_the_dictionary_headers():
    text = "\n\n00-database-short\n     The Jargon File\n\nfoo\n n.\n\n    A word that\n    wraps.\n\n\n\nbar\n"
    assert paragraphs(text) == ["foo n.", "A word that wraps.", "bar"]


def test_the_unigram_baseline_is_the_entropy_of_the_corpus_token_counts(model_dir):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    counts = Counter()
    for line in read_corpus_lines(DEFAULT_CORPUS):
        counts.update([*tokenizer.encode(line).ids, 0])
    total = sum(counts.values())
    expected = -sum(c / total * math.log(c / total) for c in counts.values())
    assert unigram_entropy(DEFAULT_CORPUS, model_dir / "tokenizer.json") == pytest.approx(expected)
    assert 0 < expected < math.log(tokenizer.get_vocab_size())
