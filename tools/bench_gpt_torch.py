"""The PyTorch side of tools/bench_gpt.py: the twin of a ``--recipe gpt`` run, trained as the recipe
trains (its optimizer read from scratchnet's ``describe()``), and its float64 check against scratchnet.

The twin is tools/bench_gpt_twin.py's GPT (nanoGPT's model.py layout); it starts from the run's initial
weights, takes the run's batches (:func:`training_batch` of the run's seed and each step), estimates the
held-out loss on the first rows at each record as the run does, and is scored at the end on every held-out
position in consecutive blocks of the context (:func:`evaluation_batches`, as ``scratchnet evaluate``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import bench_gpt_runs as runs
import numpy as np
import torch
from bench_gpt_step import torch_names
from bench_gpt_twin import gpt
from torch.nn import functional

from scratchnet.data.text import TextData
from scratchnet.data.text_batches import HELD_OUT, IGNORE_INDEX, evaluation_batches, training_batch
from scratchnet.training.config import TrainConfig
from scratchnet.training.next_token import EVAL_BATCH
from scratchnet.training.text_train import REPORTS, VALIDATION_ROWS, TextSettings, context_of, run_length

# nanoGPT's layout in scratchnet's layer types: what the twin can stand for (anything else stops the bench)
BLOCK = (("LayerNorm", "CausalSelfAttention"), ("LayerNorm", "Dense", "GELU", "Dense"))


def twin_shape(description: dict[str, Any]) -> dict[str, Any]:
    """(vocabulary, context, layers, heads, dim, bias, head_bias) of a network laid out as nanoGPT's; SystemExit
    naming what differs from it (the twin would not be a twin)."""
    layers = description["layers"]
    types = [layer["type"] for layer in layers]
    blocks = layers[2:-3]
    inner = tuple(tuple(layer["type"] for layer in block.get("layers", ())) for block in blocks)
    norms = [layer for block in blocks for layer in block.get("layers", ()) if layer["type"] == "LayerNorm"]
    norms.append(layers[-3])
    dense = [layer for block in blocks for layer in block.get("layers", ()) if layer["type"] == "Dense"]
    attention = [
        layer for block in blocks for layer in block.get("layers", ()) if layer["type"] == "CausalSelfAttention"
    ]
    gelus = [layer for block in blocks for layer in block.get("layers", ()) if layer["type"] == "GELU"]
    problems = [
        types[:2] != ["Embedding", "PositionEmbedding"] or types[-3:] != ["LayerNorm", "Dense", "Softmax"],
        len(blocks) % 2 != 0 or inner != BLOCK * (len(blocks) // 2),
        any(n.get("bias", True) or not n.get("affine", True) or n.get("eps") != 1e-5 for n in norms),
        any(a.get("bias", True) or a.get("dropout", 0.0) for a in attention),
        any(g.get("approximate", "none") != "none" for g in gelus),
        len({bool(d.get("bias", True)) for d in dense}) > 1,
    ]
    if any(problems):
        raise SystemExit(f"bench_gpt: the run's network is not laid out as the twin: {description}")
    return {
        "vocabulary": layers[0]["num_embeddings"],
        "length": layers[1]["max_length"],
        "layers": len(blocks) // 2,
        "heads": attention[0]["heads"],
        "dim": layers[0]["embedding_dim"],
        "bias": bool(dense[0].get("bias", True)) if dense else True,
        "head_bias": bool(layers[-2].get("bias", True)),
    }


def twin_model(network: Any, dtype: Any) -> Any:
    """The twin, holding ``network``'s weights."""
    shape = twin_shape(network.describe())
    model = gpt(
        shape["vocabulary"],
        shape["length"],
        shape["layers"],
        shape["heads"],
        shape["dim"],
        shape["bias"],
        shape["head_bias"],
    ).to(dtype)
    names = torch_names(shape["layers"], shape["bias"], shape["head_bias"])
    parameters = dict(model.named_parameters())
    ours = network.params()
    if set(parameters) != set(names.values()) or set(ours) != set(names):
        raise SystemExit(f"bench_gpt: the twin's parameters {sorted(parameters)} are not the run's {sorted(ours)}")
    with torch.no_grad():
        for name, value in ours.items():
            parameters[names[name]].copy_(torch.from_numpy(np.asarray(value)))
    return model


def twin_optimizer(model: Any, spec: dict[str, Any]) -> tuple[Any, Callable[[int], float]]:
    """torch.optim.AdamW as scratchnet's optimizer ``spec`` (its describe()) says, and the rate of step t
    (nanoGPT's get_lr: linear warmup, then cosine to min_lr)."""
    if spec["type"] != "AdamW":
        raise SystemExit(f"bench_gpt: the twin trains with AdamW, the recipe with {spec['type']}")
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    decay = spec["weight_decay"]
    groups = [{"params": matrices, "weight_decay": decay}, {"params": others, "weight_decay": 0.0}]
    if not spec.get("decay_matrices_only"):
        groups = [{"params": matrices + others, "weight_decay": decay}]
    optimizer = torch.optim.AdamW(groups, lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"])
    schedule, lr = spec.get("schedule") or {"type": "Constant"}, spec["lr"]
    if schedule["type"] not in ("Cosine", "Constant"):
        raise SystemExit(f"bench_gpt: the twin knows cosine schedules, not {schedule}")

    def rate(t: int) -> float:
        if schedule["type"] == "Constant":
            return float(lr)
        warmup, total, low = schedule.get("warmup_steps", 0), schedule["total_steps"], schedule["min_lr"]
        if t < warmup:
            return float(lr * (t + 1) / (warmup + 1))
        ratio = min(t - warmup, total - warmup) / (total - warmup)
        return float(low + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - low))

    return optimizer, rate


def twin_step(model: Any, optimizer: Any, rate: float, clip: float | None, inputs: Any, targets: Any) -> float:
    for group in optimizer.param_groups:
        group["lr"] = rate
    logits = model(torch.from_numpy(inputs))
    loss = functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1), ignore_index=IGNORE_INDEX
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return float(loss.detach())


def twin_loss(model: Any, data: TextData, context: int, max_rows: int | None = None) -> tuple[float, int]:
    """Mean nats per held-out position (each once, in consecutive blocks of the context), as text_loss
    scores them; with ``max_rows``, the first rows only (the run's estimate)."""
    total, count, rows = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in evaluation_batches(data, context, EVAL_BATCH, HELD_OUT):
            if max_rows is not None:
                if rows >= max_rows:
                    break
                inputs, targets = inputs[: max_rows - rows], targets[: max_rows - rows]
            rows += len(inputs)
            logits = model(torch.from_numpy(inputs))
            flat = torch.from_numpy(targets).reshape(-1)
            total += float(
                functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), flat, ignore_index=IGNORE_INDEX, reduction="sum"
                )
            )
            count += int((flat != IGNORE_INDEX).sum())
    return (total / count if count else math.nan), count


def train_twin(config: TrainConfig, settings: TextSettings, threads: int) -> dict[str, Any]:
    """The twin's whole training: the seconds to finish it, and its held-out loss at the end."""
    torch.set_num_threads(threads)
    data, network, optimizer = runs.initial_state(config, settings)
    dtype = getattr(torch, config.dtype)
    model = twin_model(network, dtype)
    spec = optimizer.describe()
    twin, rate = twin_optimizer(model, spec)
    context, (_, steps) = context_of(settings, data), run_length(settings, config, data)
    every, batch = settings.eval_every or max(1, steps // REPORTS), max(config.batch_size, 1)
    started = time.perf_counter()
    for step in range(steps):
        inputs, targets = training_batch(data, step, batch, context, config.seed)
        loss = twin_step(model, twin, rate(step), spec.get("max_grad_norm"), inputs, targets)
        if (step + 1) % every == 0 or step + 1 == steps:
            twin_loss(model, data, context, VALIDATION_ROWS)  # the run's estimate at each record
    seconds = time.perf_counter() - started
    validation, _ = twin_loss(model, data, context)
    return {"seconds": seconds, "validation_loss": validation, "last_loss": loss, "steps": steps}


def check_twin(config: TrainConfig, settings: TextSettings, steps: int) -> dict[str, Any]:
    """``steps`` float64 steps of the run and of the twin from the same weights on the same batches: the
    losses, and the largest difference of any array afterwards relative to its largest value."""
    data, network, optimizer = runs.initial_state(config, settings, "float64")
    model = twin_model(network, torch.float64)
    spec = optimizer.describe()
    twin, rate = twin_optimizer(model, spec)
    context, batch = context_of(settings, data), max(config.batch_size, 1)
    losses, torch_losses = [], []
    for step in range(steps):
        inputs, targets = training_batch(data, step, batch, context, config.seed)
        losses.append(float(network.loss(network.forward(inputs, training=True), targets)))
        network.backward()
        optimizer.step(network)
        torch_losses.append(twin_step(model, twin, rate(step), spec.get("max_grad_norm"), inputs, targets))
    shape = twin_shape(network.describe())
    names = torch_names(shape["layers"], shape["bias"], shape["head_bias"])
    parameters = dict(model.named_parameters())
    differences = {}
    for name, value in network.params().items():
        theirs = parameters[names[name]].detach().numpy()
        differences[name] = float(np.max(np.abs(np.asarray(value) - theirs)) / max(np.max(np.abs(theirs)), 1e-300))
    worst = max(differences, key=lambda name: differences[name])
    return {
        "losses": losses,
        "torch_losses": torch_losses,
        "difference": max(differences[worst], *(abs(a - b) / abs(b) for a, b in zip(losses, torch_losses))),
        "worst": worst,
        "arrays": len(differences),
    }
