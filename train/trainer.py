"""Train a GPT-2 with torch on streamed mini-batches and write config, weights and tokenizer to a directory.

nanoGPT's recipe: the training documents as one token stream on disk (train.tokens), each step a batch of
`batch_size` windows of `block_size + 1` tokens at random offsets drawn by a seeded generator (the stream read
as a ring, so every token is in as many windows as any other), AdamW with
warm-up and cosine decay. Every `eval_interval` steps the validation loss is measured on a fixed sample of
windows from the held-out documents (and once more after the last step); with `keep` "best" the weights with
the best validation loss are the ones written, else the last ones; training stops early after `patience`
evaluations without improvement (0: never).

Deterministic on one machine for a given corpus, config and device: one seed drives torch and the window
sampler, dropout is off, torch runs deterministic kernels on a fixed number of threads. Only a time budget
makes the stopping step depend on the machine's speed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import GPT2Config, GPT2LMHeadModel

from train.checkpoint import Checkpoint
from train.config import ConfigError, TrainConfig
from train.corpus import SPLIT_RULE, CorpusError, split_documents
from train.tokenizer import EOS_TOKEN, train_tokenizer
from train.tokens import gather, window_starts, write_stream

MIN_IMPROVEMENT = 1e-4  # nats: a validation loss must beat the best by more than this to count as better


@dataclass
class TrainResult:
    """What a run did, for the manifest, the summary line and the loss curve."""

    device: str
    split: dict
    steps: int = 0
    tokens_seen: int = 0
    stop_reason: str = "steps"
    train_loss: float = float("nan")  # mean over the last evaluation interval (one step is noisy)
    val_loss: float | None = None  # of the weights written
    initial_val_loss: float | None = None  # of the --init-from checkpoint, before any step
    best_val_loss: float | None = None
    best_step: int | None = None
    seconds: float = 0.0
    train_curve: list[tuple[int, float]] = field(default_factory=list)  # (tokens seen, loss) per step
    val_curve: list[tuple[int, float]] = field(default_factory=list)  # (tokens seen, loss) per evaluation

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_seen / self.seconds if self.seconds else 0.0


def resolve_device(requested: str) -> torch.device:
    """auto: the GPU when torch sees one, else the CPU; cuda without a GPU is refused."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def learning_rate_at(step: int, horizon: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak at `horizon` steps."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, horizon - cfg.warmup_steps))
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def planned_steps(cfg: TrainConfig) -> int:
    """The step count the schedule aims at: --steps, or fewer when --max-tokens comes first."""
    if cfg.max_tokens is None:
        return cfg.steps
    return max(1, min(cfg.steps, cfg.max_tokens // (cfg.batch_size * cfg.block_size)))


def build_model(cfg: TrainConfig, vocab_size: int, eos_id: int) -> GPT2LMHeadModel:
    """A fresh GPT-2 of the config's shape; its end-of-text id is also its BOS and padding id."""
    config = GPT2Config(
        vocab_size=vocab_size,
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
    return GPT2LMHeadModel(config)


def validation_windows(val: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """The fixed validation sample: eval_windows windows at offsets from their own seeded generator, or the
    whole validation stream as one shorter window when it is shorter than one window."""
    window = cfg.block_size + 1
    if len(val) < window:
        return np.asarray(val, dtype=np.int64)[None, :]
    return gather(val, window_starts(np.random.default_rng([cfg.seed, 1]), len(val), cfg.eval_windows), window)


def batch_loss(model: GPT2LMHeadModel, windows: torch.Tensor) -> torch.Tensor:
    inputs, targets = windows[:, :-1], windows[:, 1:]
    logits = model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits  # no padding: all ones
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


@torch.no_grad()
def evaluate(model: GPT2LMHeadModel, windows: torch.Tensor, batch_size: int) -> float:
    """Mean cross-entropy per token over the fixed windows (all windows have the same length)."""
    model.eval()
    total = sum(
        batch_loss(model, windows[i : i + batch_size]).item() * len(windows[i : i + batch_size])
        for i in range(0, len(windows), batch_size)
    )
    model.train()
    return total / len(windows)


def check_streams(train: np.ndarray, val: np.ndarray, cfg: TrainConfig, split: dict) -> None:
    if len(train) < cfg.block_size + 1:
        raise CorpusError(
            f"the training documents hold {len(train)} tokens, fewer than one window of --block-size + 1 "
            f"= {cfg.block_size + 1}; add text or lower --block-size"
        )
    if cfg.val_fraction > 0 and len(val) < 2:
        raise CorpusError(
            f"no document of {split['train_documents'] + split['val_documents']} fell into the "
            f"validation split (--val-fraction {cfg.val_fraction:g}); add documents, raise "
            "--val-fraction, or pass --val-fraction 0 to train without validation"
        )


def model_from_checkpoint(init: Checkpoint) -> GPT2LMHeadModel:
    """GPT2LMHeadModel of the checkpoint's config and weights, dropout off (as in every run here: deterministic)."""
    config = GPT2Config(**{**init.config, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0})
    model = GPT2LMHeadModel(config)
    state = {
        name if name.startswith("lm_head.") else f"transformer.{name}": torch.from_numpy(tensor)
        for name, tensor in init.tensors.items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied_head = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied_head or unexpected:  # check_tensors vouched for the names: this guards a change there
        raise RuntimeError(f"checkpoint does not fit GPT2LMHeadModel: missing {missing}, unexpected {unexpected}")
    return model


def train_model(
    corpus: Path, out_dir: Path, cfg: TrainConfig, show_progress: bool = True, init: Checkpoint | None = None
) -> TrainResult:
    """Train tokenizer + model from `corpus` (or fine-tune `init`, with its tokenizer); write config, weights and
    tokenizer into out_dir."""
    device = resolve_device(cfg.device)
    if device.type == "cuda":  # cuBLAS needs this for deterministic results (torch's reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)

    if init is not None:
        tokenizer, eos_id = init.tokenizer, init.config["eos_token_id"]
    else:
        tokenizer = train_tokenizer(split_documents(corpus, cfg.val_fraction, cfg.seed, False), cfg.vocab_size)
        eos_id = tokenizer.token_to_id(EOS_TOKEN)
    if eos_id is None:  # train_tokenizer adds it as a special token; this guards a change there
        raise RuntimeError(f"the trained tokenizer has no {EOS_TOKEN} token")
    with tempfile.TemporaryDirectory(prefix=".tokens-", dir=out_dir.parent) as scratch:
        train = write_stream(
            split_documents(corpus, cfg.val_fraction, cfg.seed, False),
            tokenizer,
            eos_id,
            Path(scratch) / "train.tokens",
        )
        val = write_stream(
            split_documents(corpus, cfg.val_fraction, cfg.seed, True), tokenizer, eos_id, Path(scratch) / "val.tokens"
        )
        split = {
            "rule": SPLIT_RULE,
            "val_fraction": cfg.val_fraction,
            "train_tokens": len(train),
            "val_tokens": len(val),
            "train_documents": int(np.count_nonzero(train == eos_id)),
            "val_documents": int(np.count_nonzero(val == eos_id)),
        }
        check_streams(train, val, cfg, split)
        model = model_from_checkpoint(init) if init else build_model(cfg, tokenizer.get_vocab_size(), eos_id)
        torch.nn.Module.to(model, device)  # in place; PreTrainedModel.to's functools.wraps wrapper hides its signature
        result = TrainResult(device=device.type, split=split)
        val_windows = torch.from_numpy(validation_windows(val, cfg)).to(device) if cfg.val_fraction > 0 else None
        if init is not None and val_windows is not None:  # what fine-tuning starts from, to compare with the end
            result.initial_val_loss = evaluate(model, val_windows, cfg.batch_size)
        best_state = run_steps(model, train, val_windows, cfg, device, result, show_progress)
        del train, val  # release the memory maps before the scratch directory goes
    if cfg.keep == "best" and best_state is not None:
        model.load_state_dict(best_state)
        result.val_loss = result.best_val_loss
    elif result.val_curve:
        result.val_loss = result.val_curve[-1][1]
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    return result


def run_steps(
    model,
    train: np.ndarray,
    val_windows,
    cfg: TrainConfig,
    device: torch.device,
    result: TrainResult,
    show_progress: bool,
) -> dict | None:
    """The training loop; fills `result` and returns the best weights when cfg.keep is "best"."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    horizon, window, tokens_per_step = planned_steps(cfg), cfg.block_size + 1, cfg.batch_size * cfg.block_size
    if horizon < cfg.steps:
        result.stop_reason = "max tokens"  # the token budget shortened the schedule; time or early stop may still win
    best_state, evals_without_gain, since_eval = None, 0, []
    start = time.monotonic()
    bar = tqdm(total=horizon, desc=f"training {cfg.preset}", disable=not show_progress, unit="step")

    def validate() -> bool:
        """Measure validation loss, note the best (and copy its weights); True when patience has run out."""
        nonlocal best_state, evals_without_gain
        loss = evaluate(model, val_windows, cfg.batch_size)
        result.val_curve.append((result.tokens_seen, loss))
        if result.best_val_loss is None or loss < result.best_val_loss - MIN_IMPROVEMENT:
            result.best_val_loss, result.best_step, evals_without_gain = loss, result.steps, 0
            if cfg.keep == "best":
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            evals_without_gain += 1
        return cfg.patience > 0 and evals_without_gain >= cfg.patience

    for step in range(horizon):
        if cfg.time_budget is not None and time.monotonic() - start >= cfg.time_budget:
            result.stop_reason = "time budget"
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, horizon, cfg)
        windows = torch.from_numpy(gather(train, window_starts(rng, len(train), cfg.batch_size), window))
        loss = batch_loss(model, windows.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        result.steps, result.tokens_seen = step + 1, result.tokens_seen + tokens_per_step
        result.train_curve.append((result.tokens_seen, loss.item()))
        since_eval.append(loss.item())
        stop = False
        if result.steps % cfg.eval_interval == 0 or result.steps == horizon:
            result.train_loss, since_eval = sum(since_eval) / len(since_eval), []
            stop = val_windows is not None and validate()
        elapsed = time.monotonic() - start
        bar.update(1)
        bar.set_postfix_str(progress_text(result, elapsed))
        if stop:
            result.stop_reason = f"early stop ({cfg.patience} evaluations without a better validation loss)"
            break
    if since_eval:
        result.train_loss = sum(since_eval) / len(since_eval)
        if val_windows is not None and result.steps:
            validate()
    result.seconds = time.monotonic() - start
    bar.close()
    return best_state


def progress_text(result: TrainResult, elapsed: float) -> str:
    val = f"{result.val_curve[-1][1]:.3f}" if result.val_curve else "–"
    rate = result.tokens_seen / elapsed if elapsed else 0.0
    return f"{rate:,.0f} tok/s, loss {result.train_curve[-1][1]:.3f}, val {val}"
