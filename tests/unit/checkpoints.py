"""GPT-2 checkpoints for the import, packing and fine-tuning tests, made as the issue asks: transformers' own
`GPT2LMHeadModel(config).save_pretrained` and `GPT2TokenizerFast.save_pretrained`, random weights.

The tokenizer is a byte-level BPE with GPT-2's exact vocabulary size (256 byte symbols, 50,000 merges, the
end-of-text token last: 50,257) built directly from a merge list (every pair of the 256 byte symbols in a fixed
order), not trained: it has GPT-2's layout and size at no training cost. Smaller checkpoints take the first
`vocab_size - 1` tokens of it.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

EOS = "<|endoftext|>"
GPT2_VOCAB = 50_257
DISTILGPT2_SHAPE = dict(n_layer=6, n_embd=768, n_head=12, vocab_size=GPT2_VOCAB, n_positions=1024)
GPT2_SHAPE = dict(n_layer=12, n_embd=768, n_head=12, vocab_size=GPT2_VOCAB, n_positions=1024)


def byte_level_bpe(vocab_size: int) -> Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer of exactly `vocab_size` tokens, EOS last."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    merges: list[tuple[str, str]] = []
    pairs = ((a, b) for a in alphabet for b in alphabet)
    while len(vocab) < vocab_size - 1:
        a, b = next(pairs)
        merges.append((a, b))
        vocab[a + b] = len(vocab)
    vocab[EOS] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(EOS, special=True)])
    return tokenizer


def save_checkpoint(directory: Path, seed: int = 0, init_std: float | None = None, **config) -> Path:
    """A GPT2LMHeadModel of `config` with seeded random weights, saved with its tokenizer as save_pretrained does.
    init_std: the weights' standard deviation (transformers' initializer_range, 0.02 by default); larger values
    make the logits less flat, so greedy decoding is not decided by rounding."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    vocab_size = config.get("vocab_size", GPT2_VOCAB)
    extra = {} if init_std is None else {"initializer_range": init_std}
    cfg = GPT2Config(eos_token_id=vocab_size - 1, bos_token_id=vocab_size - 1, **extra, **config)
    torch.manual_seed(seed)
    GPT2LMHeadModel(cfg).eval().save_pretrained(directory)
    tokenizer = GPT2TokenizerFast(tokenizer_object=byte_level_bpe(vocab_size), eos_token=EOS, bos_token=EOS)
    tokenizer.save_pretrained(directory)
    return directory
