"""Multi-head causal self-attention, ``CausalSelfAttention`` (spec/math.md, section 20).

It reads like the definition: each position t projects its input to a query, a key and a value;
in each head, t scores every position s <= t by q_t . k_s / sqrt(d), turns the scores into weights
with a softmax, and takes the weighted sum of the values; the heads' results side by side go
through an output projection. The parameters are PyTorch's nn.MultiheadAttention's:
``in_proj_weight`` (3 dim, dim), its rows the query, key and value projections in that order,
``in_proj_bias``, ``out_proj.weight`` and ``out_proj.bias``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from operator import mul
from typing import Any

from scratchnet.core import rng
from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.init import (
    SECOND_BIAS_STREAM,
    SECOND_WEIGHT_STREAM,
    check_initializer,
    check_std,
    init_description,
)
from scratchnet.loops.activations import softmax_and_log_sum_exp
from scratchnet.loops.convolution import check_gradients, shape_name
from scratchnet.loops.init import initial_bias, initial_weight
from scratchnet.loops.tensor import Batch, Matrix, Param, Vector, as_tensor, shape_of

DROPOUT_STREAMS = 4  # the k-th training pass draws its dropout mask from stream 4 + k of the seed (eq. 20.5)


def project(x: Vector, weight: Matrix, bias: Vector) -> Vector:
    """W x + b for one position (eq. 3.1 on one row); no bias when ``bias`` is empty."""
    z = [sum(map(mul, row, x)) for row in weight]  # sum_i W[j][i] x[i], in the order of i
    return [value + b for value, b in zip(z, bias)] if bias else z


def project_backward(g: Vector, x: Vector, weight: Matrix, grad_weight: Matrix, grad_bias: Vector) -> Vector:
    """Add one position's dL/dW += g x^T and dL/db += g (eq. 3.2, 3.3); return dL/dx = W^T g (eq. 3.4)."""
    for j, g_j in enumerate(g):
        if g_j != 0.0:
            grad_weight[j] = [total + g_j * value for total, value in zip(grad_weight[j], x)]
    if grad_bias:
        grad_bias[:] = [total + g_j for total, g_j in zip(grad_bias, g)]
    grad_x = [0.0] * len(x)
    for g_j, row in zip(g, weight):
        grad_x = [total + g_j * w for total, w in zip(grad_x, row)]
    return grad_x


def empty_cache(batch: int) -> tuple[list[Matrix], list[Matrix]]:
    """Keys ``k[n][s]`` and values ``v[n][s]`` of each of ``batch`` sequences, no position yet (eq. 24.1)."""
    return [[] for _ in range(batch)], [[] for _ in range(batch)]


def dot(a: Vector, b: Vector) -> float:
    total: float = sum(map(mul, a, b))
    return total


class CausalSelfAttention:
    """y = attention(x) for a batch of sequences ``(N, T, dim)``: ``heads`` heads of
    ``d = dim / heads`` values each, every position attending to itself and the positions before
    it (eq. 20.1-20.5). ``dropout`` drops attention weights in training, as PyTorch does.

    After each forward pass ``attention_weights[n][h][t][s]`` holds the weights of that pass
    (0 for s > t), for the teaching tools.
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
    ) -> None:
        if dim < 1 or heads < 1 or dim % heads != 0:
            raise ConfigError(f"CausalSelfAttention needs heads that divide dim, got dim {dim} and {heads} heads")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1), got {dropout}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.bias, self.dropout, self.init, self.seed = bias, dropout, check_initializer(init), seed
        self.std, self.out_std = check_std(init, std), check_std(init, out_std, "out_std")
        self.in_proj_weight: Matrix = initial_weight(init, (3 * dim, dim), seed, std=self.std)
        self.in_proj_bias: Vector = initial_bias(init, 3 * dim, seed) if bias else []
        self.out_proj_weight: Matrix = initial_weight(
            init, (dim, dim), seed, SECOND_WEIGHT_STREAM, self.out_std or self.std
        )
        self.out_proj_bias: Vector = initial_bias(init, dim, seed, SECOND_BIAS_STREAM) if bias else []
        self.zero_grads()
        self.calls = 0  # training passes with dropout so far: the stream of the next mask
        # What backward needs, per sample n: the inputs, q, k, v and the heads' outputs, by position;
        # the weights a[h][t][s] and, after dropout, the weights used (a~ = a * mask), s <= t.
        self.inputs: Batch = []
        self.queries: Batch = []
        self.keys: Batch = []
        self.values: Batch = []
        self.outputs: Batch = []
        self.weights: list[list[list[Vector]]] = []
        self.dropped: list[list[list[Vector]]] = []
        self.masks: list[list[list[Vector]]] | None = None
        self.attention_weights: list[Any] = []

    def zero_grads(self) -> None:
        self.grad_in_proj_weight = [[0.0] * self.dim for _ in range(3 * self.dim)]
        self.grad_in_proj_bias = [0.0] * (3 * self.dim) if self.bias else []
        self.grad_out_proj_weight = [[0.0] * self.dim for _ in range(self.dim)]
        self.grad_out_proj_bias = [0.0] * self.dim if self.bias else []

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """Every sample's sequence through eq. 20.1-20.5."""
        batch = self.check(inputs)
        length, scale, d = len(batch[0]), 1.0 / math.sqrt(self.head_dim), self.head_dim
        masks = self.dropout_masks(len(batch), length) if training and self.dropout > 0.0 else None
        self.inputs, self.queries, self.keys, self.values, self.masks = batch, [], [], [], masks
        self.outputs, self.weights, self.dropped, results = [], [], [], []
        for n, x in enumerate(batch):
            qkv = [project(x_t, self.in_proj_weight, self.in_proj_bias) for x_t in x]  # (20.1)
            q = [row[: self.dim] for row in qkv]
            k = [row[self.dim : 2 * self.dim] for row in qkv]
            v = [row[2 * self.dim :] for row in qkv]
            o = [[0.0] * self.dim for _ in range(length)]
            weights, dropped = [], []
            for h in range(self.heads):
                cols = slice(h * d, (h + 1) * d)  # head h's d values
                head_weights, head_dropped = [], []
                for t in range(length):  # position t sees s = 0..t
                    scores = [scale * dot(q[t][cols], k[s][cols]) for s in range(t + 1)]  # (20.2)
                    a, _ = softmax_and_log_sum_exp(scores)  # (20.3)
                    a_used = a if masks is None else [a_s * m for a_s, m in zip(a, masks[n][h][t])]  # (20.5)
                    # (20.4): o_t = sum_{s <= t} a[t][s] v_s, value by value of the head
                    o[t][cols] = [sum(a_used[s] * v[s][j] for s in range(t + 1)) for j in range(cols.start, cols.stop)]
                    head_weights.append(a)
                    head_dropped.append(a_used)
                weights.append(head_weights)
                dropped.append(head_dropped)
            results.append([project(o_t, self.out_proj_weight, self.out_proj_bias) for o_t in o])  # (20.6)
            self.queries.append(q)
            self.keys.append(k)
            self.values.append(v)
            self.outputs.append(o)
            self.weights.append(weights)
            self.dropped.append(dropped)
        self.attention_weights = [
            [[a_t + [0.0] * (length - len(a_t)) for a_t in head] for head in sample] for sample in self.weights
        ]
        return results

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """The new position t = ``cache.position`` of each sequence, ``(N, 1, dim)``: its query against
        the keys and values of positions 0..t, those of 0..t-1 kept in ``cache`` (eq. 24.1-24.3).
        Row t of :meth:`forward` on the whole sequence, computed in the same order."""
        batch = self.check(inputs)
        if len(batch[0]) != 1:
            raise ShapeError(
                f"CausalSelfAttention.step: expects one new position (N, 1, {self.dim}), got {len(batch[0])}"
            )
        keys, values = cache.state(self, lambda: empty_cache(len(batch)))
        if len(keys) != len(batch):
            raise ShapeError(f"CausalSelfAttention.step: {len(batch)} sequences, but the cache holds {len(keys)}")
        scale, d = 1.0 / math.sqrt(self.head_dim), self.head_dim
        results = []
        for n, (x_t,) in enumerate(batch):
            qkv = project(x_t, self.in_proj_weight, self.in_proj_bias)  # (20.1), at position t only
            q_t = qkv[: self.dim]
            keys[n].append(qkv[self.dim : 2 * self.dim])  # (24.1): k_t and v_t join the cache
            values[n].append(qkv[2 * self.dim :])
            o_t: Vector = []
            for h in range(self.heads):
                cols = slice(h * d, (h + 1) * d)
                scores = [scale * dot(q_t[cols], k_s[cols]) for k_s in keys[n]]  # (24.2): s = 0..t
                a, _ = softmax_and_log_sum_exp(scores)
                # (24.3): o_t = sum_{s <= t} a[t][s] v_s, value by value of the head
                o_t += [sum(a_s * v_s[j] for a_s, v_s in zip(a, values[n])) for j in range(cols.start, cols.stop)]
            results.append([project(o_t, self.out_proj_weight, self.out_proj_bias)])  # (20.6)
        return results

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dx and every parameter's gradient, equation by equation backwards (eq. 20.7-20.11)."""
        length = len(self.inputs[0]) if self.inputs else 0
        check_gradients("CausalSelfAttention.backward", grad_outputs, len(self.inputs), (length, self.dim))
        self.zero_grads()
        scale, d = 1.0 / math.sqrt(self.head_dim), self.head_dim
        grad_inputs = []
        for n, grad_y in enumerate(grad_outputs):
            q, k, v, o = self.queries[n], self.keys[n], self.values[n], self.outputs[n]
            # (20.7): the output projection, at each position
            grad_o = [
                project_backward(
                    grad_y[t], o[t], self.out_proj_weight, self.grad_out_proj_weight, self.grad_out_proj_bias
                )
                for t in range(length)
            ]
            grad_q = [[0.0] * self.dim for _ in range(length)]
            grad_k = [[0.0] * self.dim for _ in range(length)]
            grad_v = [[0.0] * self.dim for _ in range(length)]
            for h in range(self.heads):
                cols = range(h * d, (h + 1) * d)
                for t in range(length):
                    a, a_used = self.weights[n][h][t], self.dropped[n][h][t]
                    g_o = [grad_o[t][j] for j in cols]
                    # (20.8): dL/da~[t][s] = dL/do_t . v_s; dL/dv_s += a~[t][s] dL/do_t
                    grad_used = [sum(g * v[s][j] for g, j in zip(g_o, cols)) for s in range(t + 1)]
                    for s in range(t + 1):
                        for g, j in zip(g_o, cols):
                            grad_v[s][j] += a_used[s] * g
                    # through the dropout mask (eq. 20.5): dL/da = dL/da~ * mask
                    grad_a = (
                        grad_used if self.masks is None else [g * m for g, m in zip(grad_used, self.masks[n][h][t])]
                    )
                    # (20.9): the softmax backward (eq. 4.7) on the scores of row t
                    weighted = dot(grad_a, a)
                    grad_scores = [a_s * (g - weighted) for a_s, g in zip(a, grad_a)]
                    # (20.10): score s = scale * q_t . k_s
                    for s in range(t + 1):
                        for j in cols:
                            grad_q[t][j] += scale * grad_scores[s] * k[s][j]
                            grad_k[s][j] += scale * grad_scores[s] * q[t][j]
            # (20.11): the input projection, at each position
            grad_x = [
                project_backward(
                    grad_q[t] + grad_k[t] + grad_v[t],
                    self.inputs[n][t],
                    self.in_proj_weight,
                    self.grad_in_proj_weight,
                    self.grad_in_proj_bias,
                )
                for t in range(length)
            ]
            grad_inputs.append(grad_x)
        return grad_inputs if need_input_grad else []

    def dropout_masks(self, batch: int, length: int) -> list[list[list[Vector]]]:
        """mask[n][h][t][s] for s <= t: 1 / (1 - rate) if u >= rate, else 0, u the uniform of index
        ((n * heads + h) * T + t) * T + s of stream 4 + k of the seed, for the k-th pass (eq. 20.5)."""
        draws = rng.uniforms(self.seed, DROPOUT_STREAMS + self.calls, batch * self.heads * length * length)
        self.calls += 1
        keep = 1.0 / (1.0 - self.dropout)
        return [
            [
                [
                    [
                        keep if draws[((n * self.heads + h) * length + t) * length + s] >= self.dropout else 0.0
                        for s in range(t + 1)
                    ]
                    for t in range(length)
                ]
                for h in range(self.heads)
            ]
            for n in range(batch)
        ]

    def check(self, inputs: Any) -> Batch:
        if hasattr(inputs, "tolist"):
            inputs = inputs.tolist()
        shape = shape_of(inputs)
        if len(shape) != 3 or shape[2] != self.dim or 0 in shape:
            raise ShapeError(f"CausalSelfAttention.forward: expects a batch of shape (N, T, {self.dim}), got {shape}")
        return [[[float(x) for x in row] for row in sample] for sample in inputs]

    def params(self) -> dict[str, Param]:
        """Copies of the arrays, by PyTorch's names."""
        named: dict[str, Param] = {"in_proj_weight": [list(row) for row in self.in_proj_weight]}
        if self.bias:
            named["in_proj_bias"] = list(self.in_proj_bias)
        named["out_proj.weight"] = [list(row) for row in self.out_proj_weight]
        if self.bias:
            named["out_proj.bias"] = list(self.out_proj_bias)
        return named

    def grads(self) -> dict[str, Param]:
        """Copies of the gradients of the last backward pass, named like :meth:`params`."""
        named: dict[str, Param] = {"in_proj_weight": [list(row) for row in self.grad_in_proj_weight]}
        if self.bias:
            named["in_proj_bias"] = list(self.grad_in_proj_bias)
        named["out_proj.weight"] = [list(row) for row in self.grad_out_proj_weight]
        if self.bias:
            named["out_proj.bias"] = list(self.grad_out_proj_bias)
        return named

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Replace every array (nested lists, NumPy arrays, ...), named like :meth:`params`."""
        shapes = {name: shape_of(value) for name, value in self.params().items()}
        if set(named) != set(shapes):
            raise ShapeError(
                f"CausalSelfAttention.set_params: expected the arrays {sorted(shapes)}, got {sorted(named)}"
            )
        try:
            values = {name: as_tensor(named[name], shapes[name], name) for name in shapes}
        except ShapeError:
            given = ", ".join(f"{name} {shape_name(named[name])}" for name in shapes)
            raise ShapeError(
                f"CausalSelfAttention.set_params: {given} do not all fit {list(shapes.values())}"
            ) from None
        self.in_proj_weight, self.out_proj_weight = values["in_proj_weight"], values["out_proj.weight"]
        self.in_proj_bias = values.get("in_proj_bias", [])
        self.out_proj_bias = values.get("out_proj.bias", [])

    def describe(self) -> dict[str, Any]:
        return {
            "type": "CausalSelfAttention",
            "dim": self.dim,
            "heads": self.heads,
            "bias": self.bias,
            "dropout": self.dropout,
            **init_description(self.init, std=self.std, out_std=self.out_std),
        }
