"""Named recipes for a language model (``scratchnet train --data FILE.txt --recipe NAME``; issue 27, item 5).

A text recipe is the network (the compact notation, where ``{vocabulary}`` and ``{context}`` stand for
the file's vocabulary and the context, and a last item ``dense({vocabulary}, ...)`` is the output
layer itself), the optimizer, the run's flat settings and the text settings (layout, context, steps).

* ``microgpt``: Karpathy's microgpt exactly (tools/microgpt_reference.py): 1 layer, 16 dimensions, 4
  heads, context 16; an RMSNorm without gain after the sum of the embeddings and before the attention
  and the MLP; no biases; ReLU; every weight N(0, 0.08); one document per step; Adam lr 0.01, betas
  (0.85, 0.99), eps 1e-8, the rate decaying linearly to 0 over 1000 steps; the loops backend.
* ``gpt``: nanoGPT's CPU configuration of Shakespeare: 4 layers, 4 heads, 128 dimensions, context 64,
  batch 12, 2000 steps; LayerNorm, attention and Dense without biases; exact GELU; N(0, 0.02) with the
  residual projections at 0.02 / sqrt(2 x 4); AdamW lr 1e-3, weight decay 0.1 on matrices only, betas
  (0.9, 0.99), 100 steps of warmup then cosine to 1e-4, clipping at 1.0; no dropout; vectorized
  float32. nanoGPT ties its token embedding to its output layer: this recipe does not (the output
  layer is a Dense of its own).
* ``names``: makemore's Transformer (4 layers, 4 heads, 64 dimensions, context the longest name + 1,
  AdamW), sized in steps to aim at makemore's held-out 1.92 nats per character within 5 minutes on 2
  cores: batch 64 (makemore's 32) and 7500 steps (about 31 s a thousand steps on a quiet machine),
  and, for so few steps, makemore's lr 5e-4 raised to 5e-3 with a warmup and a cosine decay; at 7500
  steps the held-out loss parts from the training loss, so weight decay 0.1 (makemore's 0.01)
  (docs/language-models.md gives what the runs measured).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scratchnet.training.config import optimizer_settings

VOCABULARY, CONTEXT = "{vocabulary}", "{context}"  # filled in from the file (text_train.text_architecture)


@dataclass(frozen=True)
class TextRecipe:
    """A language-model recipe as data: ``layers`` (with the placeholders), the ``optimizer`` object,
    the ``run``'s flat settings (batch size, backend, dtype) and the ``text`` settings (layout,
    context, steps, eval_every)."""

    name: str
    summary: str
    layers: str
    optimizer: Mapping[str, Any]
    run: Mapping[str, Any]
    text: Mapping[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        """The recipe's flat settings (:class:`~scratchnet.training.config.TrainConfig` fields)."""
        return {"layers": self.layers, **optimizer_settings(self.optimizer), **self.run}


def _normal(std: float) -> str:
    return f"init=normal, std={std!r}"


def microgpt_layers(dim: int = 16, heads: int = 4, context: int = 16, std: float = 0.08) -> str:
    """microgpt's GPT of one block in the notation (tools/microgpt_reference.py, ``next_token_logits``)."""
    w = _normal(std)
    norm = "rmsnorm(affine=false)"
    attention = f"residual({norm}, attention({heads}, bias=false, {w}))"
    mlp = f"residual({norm}, dense({4 * dim}, bias=false, {w}), relu, dense({dim}, bias=false, {w}))"
    return (
        f"embedding({dim}, {w}), positions({context}, {w}), {norm}, {attention}, {mlp}, "
        f"dense({VOCABULARY}, bias=false, {w})"
    )


def gpt_layers(layers: int = 4, dim: int = 128, heads: int = 4, context: str | int = 64, std: float = 0.02) -> str:
    """nanoGPT's GPT (bias=False) in the notation: pre-norm blocks, the residual projections (attention's
    out_proj, the MLP's second Dense) at std / sqrt(2 x layers) (eq. 10.12), a final LayerNorm, and an
    untied output layer."""
    w, residual_std = _normal(std), std / math.sqrt(2 * layers)
    norm = "layernorm(bias=false)"
    attention = f"residual({norm}, attention({heads}, bias=false, {w}, out_std={residual_std!r}))"
    mlp = (
        f"residual({norm}, dense({4 * dim}, bias=false, {w}), gelu, dense({dim}, bias=false, {_normal(residual_std)}))"
    )
    blocks = ", ".join([attention, mlp] * layers)
    return f"embedding({dim}, {w}), positions({context}, {w}), {blocks}, {norm}, dense({VOCABULARY}, bias=false, {w})"


def names_layers(layers: int = 4, dim: int = 64, heads: int = 4) -> str:
    """makemore's Transformer: pre-norm blocks with biases, GELU, a final LayerNorm, an output layer
    without bias; N(0, 0.02) weights."""
    w = _normal(0.02)
    attention = f"residual(layernorm, attention({heads}, {w}))"
    mlp = f"residual(layernorm, dense({4 * dim}, {w}), gelu, dense({dim}, {w}))"
    blocks = ", ".join([attention, mlp] * layers)
    return (
        f"embedding({dim}, {w}), positions({CONTEXT}, {w}), {blocks}, layernorm, dense({VOCABULARY}, bias=false, {w})"
    )


TEXT_RECIPES: dict[str, TextRecipe] = {
    "microgpt": TextRecipe(
        "microgpt",
        "Karpathy's microgpt: 1 layer, 16 dimensions, 4 heads, context 16, RMSNorm without gain, no biases, ReLU, "
        "N(0, 0.08); one document per step, Adam lr 0.01 betas (0.85, 0.99) eps 1e-8 decaying linearly to 0 "
        "over 1000 steps; loops backend",
        layers=microgpt_layers(),
        optimizer={"type": "adam", "lr": 0.01, "betas": [0.85, 0.99], "eps": 1e-8, "schedule": {"type": "linear"}},
        run={"batch_size": 1, "backend": "loops", "dtype": "float64"},
        # two validation estimates, half-way and at the end: microgpt itself makes none, and on the loops
        # backend ten of them would take longer than the 1000 steps
        text={"layout": "documents", "context": 16, "steps": 1000, "eval_every": 500},
    ),
    "gpt": TextRecipe(
        "gpt",
        "nanoGPT's CPU Shakespeare configuration: 4 layers, 4 heads, 128 dimensions, context 64, batch 12, "
        "2000 steps, no biases, exact GELU, N(0, 0.02) with residual projections at 0.02/sqrt(8), AdamW lr 1e-3 "
        "weight decay 0.1 on matrices only, betas (0.9, 0.99), warmup 100 then cosine to 1e-4, clipping at 1.0, "
        "no dropout; an untied output layer (nanoGPT ties it to the token embedding); vectorized float32",
        layers=gpt_layers(),
        optimizer={
            "type": "adamw",
            "lr": 1e-3,
            "weight_decay": 0.1,
            "betas": [0.9, 0.99],
            "max_grad_norm": 1.0,
            "decay_matrices_only": True,
            "schedule": {"type": "cosine", "min_lr": 1e-4, "warmup_steps": 100},
        },
        run={"batch_size": 12, "backend": "vectorized", "dtype": "float32"},
        text={"context": 64, "steps": 2000, "eval_every": 250},
    ),
    "names": TextRecipe(
        "names",
        "makemore's Transformer (4 layers, 4 heads, 64 dimensions, context the longest name + 1, AdamW betas "
        "(0.9, 0.99)) sized for 5 minutes: batch 64, 7500 steps, makemore's lr 5e-4 raised to 5e-3 with 100 "
        "steps of warmup and a cosine decay to 5e-4, weight decay 0.1 (makemore's 0.01), clipping at 1.0; "
        "vectorized float32",
        layers=names_layers(),
        optimizer={
            "type": "adamw",
            "lr": 5e-3,
            "weight_decay": 0.1,
            "betas": [0.9, 0.99],
            "max_grad_norm": 1.0,
            "schedule": {"type": "cosine", "min_lr": 5e-4, "warmup_steps": 100},
        },
        run={"batch_size": 64, "backend": "vectorized", "dtype": "float32"},
        text={"layout": "documents", "steps": 7500, "eval_every": 1500},
    ),
}
