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
from collections.abc import Mapping, Sequence
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


def project_backward(grads: Matrix, xs: Matrix, weight: Matrix, grad_weight: Matrix, grad_bias: Vector) -> Matrix:
    """For the positions' g_t = dL/dz_t and inputs x_t of one sequence: add dL/dW += sum_t g_t x_t^T and
    dL/db += sum_t g_t (eq. 3.2, 3.3); return each position's dL/dx_t = W^T g_t (eq. 3.4)."""
    x_columns = list(zip(*xs))  # x_columns[i][t] = x_t[i]
    for j, g_column in enumerate(zip(*grads)):  # g_column[t] = g_t[j]
        grad_weight[j] = [total + sum(map(mul, g_column, x_i)) for total, x_i in zip(grad_weight[j], x_columns)]
        if grad_bias:
            grad_bias[j] += sum(g_column)
    w_columns = list(zip(*weight))  # w_columns[i][j] = W[j][i]: dL/dx_t[i] = sum_j g_t[j] W[j][i]
    return [[sum(map(mul, g_t, w_i)) for w_i in w_columns] for g_t in grads]


def empty_cache(batch: int) -> tuple[list[Matrix], list[Matrix]]:
    """Keys ``k[n][s]`` and values ``v[n][s]`` of each of ``batch`` sequences, no position yet (eq. 24.1)."""
    return [[] for _ in range(batch)], [[] for _ in range(batch)]


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    """sum_i a[i] b[i], in the order of i."""
    total: float = sum(map(mul, a, b))
    return total


def head_columns(rows: Matrix, cols: slice) -> Matrix:
    """Each position's values of one head: ``rows[t][cols]``."""
    return [row[cols] for row in rows]


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
            o: Matrix = [[] for _ in range(length)]  # each head's d values join o_t in turn
            weights, dropped = [], []
            for h in range(self.heads):
                cols = slice(h * d, (h + 1) * d)  # head h's d values
                q_h, k_h, v_h = head_columns(q, cols), head_columns(k, cols), head_columns(v, cols)
                head_weights, head_dropped = [], []
                for t in range(length):  # position t sees s = 0..t
                    scores = [scale * sum(map(mul, q_h[t], k_s)) for k_s in k_h[: t + 1]]  # (20.2)
                    a, _ = softmax_and_log_sum_exp(scores)  # (20.3)
                    a_used = a if masks is None else [a_s * m for a_s, m in zip(a, masks[n][h][t])]  # (20.5)
                    # (20.4): o_t[j] = sum_{s <= t} a[t][s] v_s[j], for each value j of the head
                    o[t] += [sum(map(mul, a_used, v_j)) for v_j in zip(*v_h[: t + 1])]
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
            grad_o = project_backward(
                grad_y, o, self.out_proj_weight, self.grad_out_proj_weight, self.grad_out_proj_bias
            )
            grad_q: Matrix = [[] for _ in range(length)]  # each head's d values join in turn
            grad_k: Matrix = [[] for _ in range(length)]
            grad_v: Matrix = [[] for _ in range(length)]
            for h in range(self.heads):
                cols = slice(h * d, (h + 1) * d)
                q_h, k_h, v_h = head_columns(q, cols), head_columns(k, cols), head_columns(v, cols)
                grad_k_h = [[0.0] * d for _ in range(length)]
                grad_v_h = [[0.0] * d for _ in range(length)]
                for t in range(length):
                    a, a_used, g_o = self.weights[n][h][t], self.dropped[n][h][t], grad_o[t][cols]
                    # (20.8): dL/da~[t][s] = dL/do_t . v_s; dL/dv_s += a~[t][s] dL/do_t
                    grad_used = [sum(map(mul, g_o, v_s)) for v_s in v_h[: t + 1]]
                    for s, a_s in enumerate(a_used):
                        grad_v_h[s] = [total + a_s * g for total, g in zip(grad_v_h[s], g_o)]
                    # through the dropout mask (eq. 20.5): dL/da = dL/da~ * mask
                    grad_a = (
                        grad_used if self.masks is None else [g * m for g, m in zip(grad_used, self.masks[n][h][t])]
                    )
                    # (20.9): the softmax backward (eq. 4.7) on the scores of row t
                    weighted = dot(grad_a, a)
                    grad_scores = [a_s * (g - weighted) for a_s, g in zip(a, grad_a)]
                    # (20.10): score s = scale * q_t . k_s, so dL/dq_t = sum_s scale dL/dscore_s k_s
                    # and dL/dk_s += scale dL/dscore_s q_t
                    scaled = [scale * g for g in grad_scores]
                    grad_q[t] += [sum(map(mul, scaled, k_j)) for k_j in zip(*k_h[: t + 1])]
                    for s, g_s in enumerate(scaled):
                        grad_k_h[s] = [total + g_s * q_j for total, q_j in zip(grad_k_h[s], q_h[t])]
                for t in range(length):
                    grad_k[t] += grad_k_h[t]
                    grad_v[t] += grad_v_h[t]
            # (20.11): the input projection, at each position
            grad_x = project_backward(
                [g_q + g_k + g_v for g_q, g_k, g_v in zip(grad_q, grad_k, grad_v)],
                self.inputs[n],
                self.in_proj_weight,
                self.grad_in_proj_weight,
                self.grad_in_proj_bias,
            )
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
        return [[list(map(float, row)) for row in sample] for sample in inputs]

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
