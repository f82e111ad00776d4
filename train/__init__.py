"""Training: a byte-level BPE tokenizer and a tiny GPT-2, from the user's corpus to artifacts/model/."""
