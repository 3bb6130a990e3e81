"""The PyTorch twin of tools/bench_gpt_step.py: a GPT laid out as nanoGPT's model.py lays it out (its
module and parameter names), with what scratchnet's architecture has where the two differ: the head is
not tied to the token table, and the MLP's Linear layers have biases unless ``bias=False``, the head's
unless ``head_bias=False`` (tools/bench_gpt.py's twin of ``--recipe gpt``). LayerNorm and attention have no biases
(nanoGPT's ``bias = False``); no dropout. Written for the benchmarks."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional


class LayerNorm(nn.Module):
    """nn.LayerNorm over the last axis, eps 1e-5, scaled by ``weight`` and with no bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Any) -> Any:
        return functional.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class CausalSelfAttention(nn.Module):
    """q, k and v from one Linear (``c_attn``, rows in q, k, v order), causal scaled dot-product
    attention of each head, the heads side by side, then ``c_proj``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Any) -> Any:
        batch, length, dim = x.shape
        q, k, v = self.c_attn(x).split(dim, dim=2)
        q, k, v = (part.view(batch, length, self.heads, dim // self.heads).transpose(1, 2) for part in (q, k, v))
        y = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(batch, length, dim))


class MLP(nn.Module):
    def __init__(self, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * dim, dim, bias=bias)

    def forward(self, x: Any) -> Any:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    """x + attention(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, dim: int, heads: int, bias: bool = True) -> None:
        super().__init__()
        self.ln_1, self.attn = LayerNorm(dim), CausalSelfAttention(dim, heads)
        self.ln_2, self.mlp = LayerNorm(dim), MLP(dim, bias)

    def forward(self, x: Any) -> Any:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token and position embeddings, the blocks, a final LayerNorm and the head: logits (N, T, V)."""

    def __init__(
        self, vocabulary: int, length: int, layers: int, heads: int, dim: int, bias: bool = True, head_bias: bool = True
    ) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocabulary, dim),
                "wpe": nn.Embedding(length, dim),
                "h": nn.ModuleList([Block(dim, heads, bias) for _ in range(layers)]),
                "ln_f": LayerNorm(dim),
            }
        )
        self.lm_head = nn.Linear(dim, vocabulary, bias=head_bias)

    def forward(self, ids: Any) -> Any:
        positions = torch.arange(ids.shape[1], dtype=torch.long)
        x = self.transformer["wte"](ids) + self.transformer["wpe"](positions)
        blocks: Any = self.transformer["h"]
        for block in blocks:
            x = block(x)
        return self.lm_head(self.transformer["ln_f"](x))


def gpt(
    vocabulary: int, length: int, layers: int, heads: int, dim: int, bias: bool = True, head_bias: bool = True
) -> GPT:
    return GPT(vocabulary, length, layers, heads, dim, bias, head_bias)
