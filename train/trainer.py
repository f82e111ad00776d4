"""Train a tiny GPT-2 with torch on the CPU and write artifacts/model/ with its manifest.

Deterministic on one machine: one seed drives torch, the data order is fixed (full batch), dropout is off,
and torch runs its deterministic kernels on a fixed number of threads.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel

from train.config import TrainConfig, read_corpus_lines
from train.tokenizer import EOS_TOKEN, train_tokenizer


def line_windows(line_ids: list[list[int]], block_size: int) -> torch.Tensor:
    """One window of block_size + 1 tokens starting at each line, over the looped token stream.

    Starting every window at a line start matches how prompts arrive at serving time (position 0 is the
    first word of a line); looping the stream keeps every window full length.
    """
    stream = [tok for ids in line_ids for tok in ids]
    starts, offset = [], 0
    for ids in line_ids:
        starts.append(offset)
        offset += len(ids)
    repeats = math.ceil((block_size + 1) / len(stream)) + 1
    looped = torch.tensor(stream * repeats, dtype=torch.long)
    return torch.stack([looped[s : s + block_size + 1] for s in starts])  # (N, block_size + 1)


def learning_rate_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_model(corpus: Path, out_dir: Path, cfg: TrainConfig, show_progress: bool = True) -> float:
    """Train tokenizer + model from `corpus`, write config/weights/tokenizer into out_dir; return final loss."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)

    lines = read_corpus_lines(corpus)
    tokenizer = train_tokenizer(lines, cfg.vocab_size)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    if eos_id is None:  # train_tokenizer adds it as a special token; this guards a change there
        raise RuntimeError(f"the trained tokenizer has no {EOS_TOKEN} token")
    line_ids = [[*tokenizer.encode(line).ids, eos_id] for line in lines]
    windows = line_windows(line_ids, cfg.block_size)
    inputs, targets = windows[:, :-1], windows[:, 1:]  # (N, T) each

    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    loss_value = float("nan")
    bar = tqdm(range(cfg.steps), desc="training", disable=not show_progress, unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, cfg)
        logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits  # (N, T, vocab)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = loss.item()
        bar.set_postfix(loss=f"{loss_value:.4f}")

    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    return loss_value


def fresh_dir_beside(target: Path) -> Path:
    """A temporary directory next to `target`, so the finished model can be renamed into place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))


def replace_dir(staging: Path, target: Path) -> None:
    """Move `staging` to `target`, replacing an older model (a half-written model never sits at target)."""
    if target.exists():
        shutil.rmtree(target)
    staging.chmod(0o755)  # mkdtemp makes it private; a model directory is ordinary build output
    staging.rename(target)
