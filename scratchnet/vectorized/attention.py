"""Multi-head causal self-attention on arrays, ``CausalSelfAttention`` (spec/math.md, section 20);
see scratchnet/loops/attention.py. Every head of every sample at once, as arrays of shape
(N, heads, T, d): the scores of a head are one batched matrix product."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.init import (
    SECOND_BIAS_STREAM,
    SECOND_WEIGHT_STREAM,
    check_initializer,
    check_std,
    init_description,
)
from scratchnet.vectorized import parallel, rng
from scratchnet.vectorized.init import initial_bias, initial_weight
from scratchnet.vectorized.memory import block_per_thread, in_blocks
from scratchnet.vectorized.tensor import Array, check_dtype, copy_params, row_sums

DROPOUT_STREAMS = 4  # the k-th training pass draws its dropout mask from stream 4 + k of the seed (eq. 20.5)


class Projection:
    """The output projection's arrays, ``out_proj.weight`` and ``out_proj.bias``, held as attributes
    ``weight`` and ``bias`` (gradients ``grad_weight``, ``grad_bias``) of ``layer.out_proj``."""

    def __init__(self, weight: Array, bias: Array) -> None:
        self.weight, self.bias = weight, bias
        self.grad_weight, self.grad_bias = np.zeros_like(weight), np.zeros_like(bias)


class CausalSelfAttention:
    """y = attention(x) for ``(N, T, dim)`` batches: ``heads`` heads of ``d = dim / heads`` values,
    every position attending to itself and the positions before it (eq. 20.1-20.6).

    After each forward pass ``attention_weights`` ``(N, heads, T, T)`` holds the weights of that pass
    (0 above the diagonal), for the teaching tools.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        init: str = "gpt_normal",
        std: float | None = None,
        out_std: float | None = None,
        seed: int = 0,
        dtype: str = "float64",
    ) -> None:
        if dim < 1 or heads < 1 or dim % heads != 0:
            raise ConfigError(f"CausalSelfAttention needs heads that divide dim, got dim {dim} and {heads} heads")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1), got {dropout}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.bias, self.dropout, self.init, self.seed = bias, dropout, check_initializer(init), seed
        self.dtype = check_dtype(dtype)
        self.std, self.out_std = check_std(init, std), check_std(init, out_std, "out_std")
        self.in_proj_weight = initial_weight(init, (3 * dim, dim), seed, self.dtype, std=self.std)
        self.in_proj_bias = initial_bias(init, 3 * dim if bias else 0, seed, self.dtype)
        self.out_proj = Projection(
            initial_weight(init, (dim, dim), seed, self.dtype, SECOND_WEIGHT_STREAM, self.out_std or self.std),
            initial_bias(init, dim if bias else 0, seed, self.dtype, SECOND_BIAS_STREAM),
        )
        self.grad_in_proj_weight = np.zeros_like(self.in_proj_weight)
        self.grad_in_proj_bias = np.zeros_like(self.in_proj_bias)
        self.calls = 0  # training passes with dropout so far: the stream of the next mask
        empty = np.zeros((0, 0, 0, 0), self.dtype)
        self.inputs: Array = np.zeros((0, 0, dim), self.dtype)
        self.queries, self.keys, self.values, self.outputs = empty, empty, empty, empty  # (N, H, T, d)
        self.attention_weights: Array = empty  # a (N, H, T, T)
        self.dropped: Array = empty  # a~ = a * mask, the weights the values were summed with
        self.mask: Array | None = None
        self.upper: npt.NDArray[np.bool_] = np.zeros((0, 0), bool)  # see future

    def forward(self, inputs: Array, training: bool = False) -> Array:
        """Every head of every sample through eq. 20.1-20.6 at once."""
        if inputs.ndim != 3 or inputs.shape[2] != self.dim or 0 in inputs.shape:
            raise ShapeError(
                f"CausalSelfAttention.forward: expects a batch of shape (N, T, {self.dim}), got {inputs.shape}"
            )
        batch, length, _ = inputs.shape
        self.inputs = inputs
        qkv = inputs.reshape(-1, self.dim) @ self.in_proj_weight.T  # (20.1), (N T, 3 dim)
        if self.bias:
            qkv += self.in_proj_bias
        # (N T, 3 dim) -> (3, N, H, T, d): q, k and v of each head
        heads = qkv.reshape(batch, length, 3, self.heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        self.queries, self.keys, self.values = heads[0], heads[1], heads[2]
        scores = self.queries @ self.keys.transpose(0, 1, 3, 2)  # (20.2), (N, H, T, T)
        weights = self.causal_softmax(scores)  # (20.3), in place
        self.attention_weights = weights
        self.mask = self.dropout_mask(batch, length) if training and self.dropout > 0.0 else None
        self.dropped = weights if self.mask is None else weights * self.mask  # (20.5)
        # (20.4) written straight into the heads side by side, (N, T, H, d), as (20.6) reads them
        joined = np.empty((batch, length, self.heads, self.head_dim), weights.dtype)
        self.outputs = np.matmul(self.dropped, self.values, out=joined.transpose(0, 2, 1, 3))  # (N, H, T, d)
        y = joined.reshape(-1, self.dim) @ self.out_proj.weight.T  # (20.6)
        if self.bias:
            y += self.out_proj.bias
        return y.reshape(batch, length, self.dim)

    def step(self, inputs: Array, cache: Cache) -> Array:
        """The new position t = ``cache.position`` of each sequence, ``(N, 1, dim)``: its query against
        the keys and values of positions 0..t, kept in ``cache`` as ``(N, H, length, d)`` arrays filled
        up to t (eq. 24.1-24.3)."""
        if inputs.ndim != 3 or inputs.shape[1:] != (1, self.dim):
            raise ShapeError(
                f"CausalSelfAttention.step: expects one new position (N, 1, {self.dim}), got {inputs.shape}"
            )
        batch, t = inputs.shape[0], cache.position
        shape = (batch, self.heads, cache.length, self.head_dim)
        keys, values = cache.state(self, lambda: (np.zeros(shape, self.dtype), np.zeros(shape, self.dtype)))
        if keys.shape != shape or t >= cache.length:
            raise ShapeError(
                f"CausalSelfAttention.step: position {t + 1} of {batch} sequences for a cache {keys.shape}"
            )
        qkv = inputs.reshape(batch, self.dim) @ self.in_proj_weight.T  # (20.1), at position t only
        if self.bias:
            qkv += self.in_proj_bias
        q, k, v = qkv.reshape(batch, 3, self.heads, 1, self.head_dim).transpose(1, 0, 2, 3, 4)  # (N, H, 1, d) each
        keys[:, :, t], values[:, :, t] = k[:, :, 0], v[:, :, 0]  # (24.1): k_t and v_t join the cache
        scores = q @ keys[:, :, : t + 1].transpose(0, 1, 3, 2)  # (24.2), (N, H, 1, t + 1)
        scores *= 1.0 / math.sqrt(self.head_dim)
        scores -= scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores, out=scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        outputs = weights @ values[:, :, : t + 1]  # (24.3), (N, H, 1, d)
        y: Array = outputs.reshape(batch, self.dim) @ self.out_proj.weight.T  # the heads side by side, (20.6)
        if self.bias:
            y += self.out_proj.bias
        return y.reshape(batch, 1, self.dim)

    def backward(self, grad_outputs: Array, need_input_grad: bool = True) -> Array:
        """dL/dx and every parameter's gradient, equation by equation backwards (eq. 20.7-20.11)."""
        batch, length, _ = self.inputs.shape
        if grad_outputs.shape != self.inputs.shape:
            raise ShapeError(
                f"CausalSelfAttention.backward: gradients of shape {grad_outputs.shape} for {self.inputs.shape}"
            )
        grad_y = grad_outputs.reshape(-1, self.dim)
        joined = self.outputs.transpose(0, 2, 1, 3).reshape(-1, self.dim)  # a view: forward laid it out so
        # (20.7): the output projection
        np.matmul(grad_y.T, joined, out=self.out_proj.grad_weight)
        if self.bias:
            grad_y.sum(axis=0, out=self.out_proj.grad_bias)
        grad_o = (grad_y @ self.out_proj.weight).reshape(batch, length, self.heads, self.head_dim).transpose(0, 2, 1, 3)
        # (20.8): dL/da~ = dL/do v^T, dL/dv = a~^T dL/do; then through the dropout mask (20.5)
        # dL/dq, dL/dk and dL/dv are written straight into (N, T, 3, H, d), the layout of (20.1)'s products
        grad_heads = np.empty((batch, length, 3, self.heads, self.head_dim), grad_o.dtype)
        grad_q, grad_k, grad_v = (grad_heads[:, :, part].transpose(0, 2, 1, 3) for part in range(3))
        grad_a = grad_o @ self.values.transpose(0, 1, 3, 2)
        np.matmul(self.dropped.transpose(0, 1, 3, 2), grad_o, out=grad_v)
        if self.mask is not None:
            grad_a *= self.mask
        grad_scores = self.causal_softmax_backward(grad_a)  # (20.9), in place
        # (20.10): score[t][s] = scale * q_t . k_s
        np.matmul(grad_scores, self.keys, out=grad_q)
        np.matmul(grad_scores.transpose(0, 1, 3, 2), self.queries, out=grad_k)
        # (20.11): the input projection, from (N T, 3 dim)
        grad_qkv = grad_heads.reshape(-1, 3 * self.dim)
        x = self.inputs.reshape(-1, self.dim)
        np.matmul(grad_qkv.T, x, out=self.grad_in_proj_weight)
        if self.bias:
            grad_qkv.sum(axis=0, out=self.grad_in_proj_bias)
        if not need_input_grad:
            return grad_outputs[:0]
        grad_x: Array = (grad_qkv @ self.in_proj_weight).reshape(batch, length, self.dim)
        return grad_x

    def causal_softmax(self, scores: Array) -> Array:
        """(20.2)-(20.3) from the products q_t . k_s in ``scores`` (N, H, T, T), in place: scaled, the
        positions s > t set to -inf (weight e^-inf = 0), and the softmax of each row. Half the samples
        on each of two threads (memory.block_per_thread): every row goes through the same operations
        whatever the split."""
        batch, _, length, _ = scores.shape
        scale, future = 1.0 / math.sqrt(self.head_dim), self.future(length)

        def block(part: slice) -> None:
            rows = scores[part]
            rows *= scale
            np.copyto(rows, -np.inf, where=future)
            rows -= rows.max(axis=-1, keepdims=True)
            np.exp(rows, out=rows)
            rows /= row_sums(rows)

        in_blocks(block, batch, scores.size // batch, block_per_thread(scores.size, parallel.MIN_CHUNK))
        return scores

    def causal_softmax_backward(self, grad_weights: Array) -> Array:
        """(20.9): dL/dscore = scale * a * (dL/da - sum_s dL/da_s a_s) on each row (the softmax backward,
        eq. 4.7, then the scale), in place in ``grad_weights``; 0 above the diagonal, where a = 0.
        Split over threads as :meth:`causal_softmax`."""
        batch = grad_weights.shape[0]
        scale = 1.0 / math.sqrt(self.head_dim)

        def block(part: slice) -> None:
            grad, a = grad_weights[part], self.attention_weights[part]
            grad -= row_sums(grad * a)
            grad *= a
            grad *= scale

        size = grad_weights.size
        in_blocks(block, batch, size // batch, block_per_thread(size, parallel.MIN_CHUNK))
        return grad_weights

    def future(self, length: int) -> npt.NDArray[np.bool_]:
        """The (T, T) mask of the positions s > t each row t must not see, kept for the last T."""
        if self.upper.shape != (length, length):
            self.upper = np.triu(np.ones((length, length), bool), k=1)
        return self.upper

    def dropout_mask(self, batch: int, length: int) -> Array:
        """mask[n][h][t][s] = 1 / (1 - rate) if u >= rate, else 0, u the uniform of index
        ((n * heads + h) * T + t) * T + s of stream 4 + k of the seed, for the k-th pass (eq. 20.5)."""
        draws = rng.uniforms(self.seed, DROPOUT_STREAMS + self.calls, batch * self.heads * length * length)
        self.calls += 1
        mask: Array = np.where(draws >= self.dropout, 1.0 / (1.0 - self.dropout), 0.0).astype(self.dtype)
        return mask.reshape(batch, self.heads, length, length)

    def params(self) -> dict[str, Array]:
        """The live arrays, by PyTorch's names."""
        named = {"in_proj_weight": self.in_proj_weight}
        if self.bias:
            named["in_proj_bias"] = self.in_proj_bias
        named["out_proj.weight"] = self.out_proj.weight
        if self.bias:
            named["out_proj.bias"] = self.out_proj.bias
        return named

    def grads(self) -> dict[str, Array]:
        """The live gradients of the last backward pass, named like :meth:`params`."""
        named = {"in_proj_weight": self.grad_in_proj_weight}
        if self.bias:
            named["in_proj_bias"] = self.grad_in_proj_bias
        named["out_proj.weight"] = self.out_proj.grad_weight
        if self.bias:
            named["out_proj.bias"] = self.out_proj.grad_bias
        return named

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Copy every array in (arrays or nested lists), named like :meth:`params`."""
        if set(named) != set(self.params()):
            raise ShapeError(
                f"CausalSelfAttention.set_params: expected the arrays {sorted(self.params())}, got {sorted(named)}"
            )
        copy_params("CausalSelfAttention", self.params(), named)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "CausalSelfAttention",
            "dim": self.dim,
            "heads": self.heads,
            "bias": self.bias,
            "dropout": self.dropout,
            **init_description(self.init, std=self.std, out_std=self.out_std),
        }
