"""The sequence layers (spec/math.md, sections 16-20) as standard ONNX operators.

Each is a :class:`~scratchnet.interop.onnx_nodes.Composite` unless one operator does it. The sequence
length is a dynamic axis: what depends on it (the rows of the position table, the causal mask) is
computed from the input's shape in the graph, so one graph runs sequences of any length up to the
network's (and a position table's) longest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.registry import Shape
from scratchnet.interop.onnx_nodes import OUT, Composite, LayerGraph, Node

LAYER_NORMALIZATION_OPSET = 17  # the opset that added LayerNormalization
GELU_OPSET = 20  # the opset that added Gelu (both forms); before it, Erf or Tanh and arithmetic
REDUCE_AXES_INPUT_OPSET = 18  # from 18 on, ReduceMean takes its axes as an input, not an attribute


def _linear(g: LayerGraph, x: str, weight: str, bias: str | None, step: str) -> str:
    """x W^T + b on the last axis: MatMul by the transposed (out, in) weight, then Add of the bias (16.1)."""
    transposed = g.node("Transpose", [weight], f"{step}_weight_t", perm=[1, 0])
    product = g.node("MatMul", [x, transposed], f"{step}_product" if bias else step)
    return g.node("Add", [product, bias], step) if bias else product


def _dense(g: LayerGraph) -> str:
    return _linear(g, g.x, g.array("weight"), g.array("bias") if g.options.get("bias", True) else None, OUT)


def _embedding(g: LayerGraph) -> str:
    """W[ids]: Gather of the table's rows by the token ids (17.1)."""
    return g.node("Gather", [g.array("weight"), g.x], OUT, axis=0)


def _position_embedding(g: LayerGraph) -> str:
    """x + P[0:T], with T read from the input's shape (17.3)."""
    shape = g.node("Shape", [g.x], "shape")
    length = g.node("Gather", [shape, g.ints("length_axis", [1])], "length", axis=0)  # [T]
    rows = g.node("Slice", [g.array("weight"), g.ints("first", [0]), length, g.ints("rows_axis", [0])], "rows")
    return g.node("Add", [g.x, rows], OUT)


def _layer_norm(g: LayerGraph) -> str:
    """LayerNormalization over the last axis (18.1)-(18.3); its Scale is required: ones without ``affine``."""
    if g.opset < LAYER_NORMALIZATION_OPSET:
        raise ConfigError(
            f"layer {g.site.prefix} (LayerNorm) exports as LayerNormalization, "
            f"which needs --opset {LAYER_NORMALIZATION_OPSET} or later"
        )
    o = g.options
    scale = g.array("weight") if o["affine"] else g.constant("ones", [1.0] * o["dim"])
    inputs = [g.x, scale, *([g.array("bias")] if o["affine"] and o["bias"] else [])]
    return g.node("LayerNormalization", inputs, OUT, axis=-1, epsilon=o["eps"])


def _rms_norm(g: LayerGraph) -> str:
    """x / sqrt(mean(x^2) + eps) * gamma over the last axis (18.6), (18.7); eps a constant of the model's dtype."""
    square = g.node("Mul", [g.x, g.x], "square")
    if g.opset >= REDUCE_AXES_INPUT_OPSET:
        mean = g.node("ReduceMean", [square, g.ints("last_axis", [-1])], "mean_square", keepdims=1)
    else:
        mean = g.node("ReduceMean", [square], "mean_square", axes=[-1], keepdims=1)
    shifted = g.node("Add", [mean, g.constant("eps", g.options["eps"])], "shifted")
    root = g.node("Sqrt", [shifted], "root")
    if not g.options["affine"]:
        return g.node("Div", [g.x, root], OUT)
    normalized = g.node("Div", [g.x, root], "normalized")
    return g.node("Mul", [normalized, g.array("weight")], OUT)


def _gelu(g: LayerGraph) -> str:
    """z Phi(z) (19.1), or its tanh form (19.3): Gelu from opset 20, else Erf or Tanh and arithmetic."""
    approximate = g.options["approximate"]
    if g.opset >= GELU_OPSET:
        return g.node("Gelu", [g.x], OUT, approximate=approximate)
    half = g.node("Mul", [g.x, g.constant("half", 0.5)], "half_z")
    if approximate == "none":  # Phi(z) = (1 + erf(z / sqrt 2)) / 2
        scaled = g.node("Mul", [g.x, g.constant("inverse_sqrt2", 1.0 / math.sqrt(2.0))], "scaled")
        curve = g.node("Erf", [scaled], "erf")
    else:  # (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2
        cube = g.node("Mul", [g.node("Mul", [g.x, g.x], "square"), g.x], "cube")
        inner = g.node("Add", [g.x, g.node("Mul", [cube, g.constant("c", 0.044715)], "cubic")], "inner")
        curve = g.node("Tanh", [g.node("Mul", [inner, g.constant("sqrt_2_over_pi", math.sqrt(2 / math.pi))], "w")], "u")
    one_plus = g.node("Add", [curve, g.constant("one", 1.0)], "one_plus")
    return g.node("Mul", [half, one_plus], OUT)


def _attention(g: LayerGraph) -> str:
    """Causal multi-head attention (20.1)-(20.6) on (N, T, D): the heads as (N, H, T, d) through
    Reshape and Transpose, scores by MatMul, the mask s > t by Where for the input's T, Softmax."""
    dim, heads, bias = g.options["dim"], g.options["heads"], g.options["bias"]
    d = dim // heads
    qkv = _linear(g, g.x, g.array("in_proj_weight"), g.array("in_proj_bias") if bias else None, "qkv")
    split = g.node("Reshape", [qkv, g.ints("heads_shape", [0, 0, 3, heads, d])], "qkv_split")  # (N, T, 3, H, d)
    stacked = g.node("Transpose", [split], "qkv_heads", perm=[2, 0, 3, 1, 4])  # (3, N, H, T, d)
    q, k, v = (g.node("Gather", [stacked, g.ints(f"{part}_index", i)], part, axis=0) for i, part in enumerate("qkv"))
    k_t = g.node("Transpose", [k], "k_t", perm=[0, 1, 3, 2])
    scores = g.node("Div", [g.node("MatMul", [q, k_t], "dot"), g.constant("sqrt_d", math.sqrt(d))], "scores")
    shape = g.node("Shape", [g.x], "shape")
    length = g.node("Gather", [shape, g.ints("length_axis", 1)], "length", axis=0)  # T, a scalar
    positions = g.node("Range", [g.ints("zero", 0), length, g.ints("step", 1)], "positions")
    rows = g.node("Unsqueeze", [positions, g.ints("rows_axis", [1])], "t")  # (T, 1)
    columns = g.node("Unsqueeze", [positions, g.ints("columns_axis", [0])], "s")  # (1, T)
    future = g.node("Greater", [columns, rows], "future")  # s > t: the causal mask (20.2)
    masked = g.node("Where", [future, g.constant("minus_inf", -math.inf), scores], "masked")
    weights = g.node("Softmax", [masked], "weights", axis=-1)  # (20.3)
    mixed = g.node("MatMul", [weights, v], "mixed")  # (20.4), (N, H, T, d)
    joined = g.node("Transpose", [mixed], "heads_joined", perm=[0, 2, 1, 3])  # (N, T, H, d)
    o = g.node("Reshape", [joined, g.ints("joined_shape", [0, 0, dim])], "o")
    return _linear(g, o, g.array("out_proj.weight"), g.array("out_proj.bias") if bias else None, OUT)


def dense(options: Mapping[str, Any], shape: Shape) -> Node | Composite:
    """Gemm for a row per sample (as before), MatMul + Add on the last axis of a sequence (16.1);
    without a bias, Gemm without its C, or MatMul alone."""
    if len(shape) == 1:
        arrays = ("weight", "bias") if options.get("bias", True) else ("weight",)
        return Node("Gemm", arrays, {"transB": 1})  # x W^T + b, W as (out, in)
    return Composite(_dense)


SEQUENCE_EXPORTERS: dict[str, Callable[[Mapping[str, Any], Shape], Node | Composite]] = {
    "Embedding": lambda o, s: Composite(_embedding),
    "PositionEmbedding": lambda o, s: Composite(_position_embedding),
    "LayerNorm": lambda o, s: Composite(_layer_norm),
    "RMSNorm": lambda o, s: Composite(_rms_norm),
    "GELU": lambda o, s: Composite(_gelu),
    "CausalSelfAttention": lambda o, s: Composite(_attention),
}
