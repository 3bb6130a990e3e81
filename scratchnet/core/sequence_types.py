"""The sequence layer types of the layer registry (spec/math.md, sections 16-20): Embedding,
PositionEmbedding, LayerNorm, RMSNorm, GELU and CausalSelfAttention, registered when any part of
:mod:`scratchnet.core` is imported (``scratchnet/core/__init__.py`` imports this module). Standard
library only.

A token network's samples are T token ids, shape ``(T,)``; the layers after its Embedding see
``(T, C)``: T positions of C values each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.registry import (
    STD_OPTION,
    LayerType,
    Option,
    Shape,
    _positive_float,
    _rate,
    _same_shape,
    at_least_one,
    describe_shape,
    initializer,
    register,
)


def _sequence(shape: Shape, dim: int) -> None:
    """ConfigError unless ``shape`` is a sequence (T, dim)."""
    if len(shape) != 2 or shape[1] != dim:
        raise ConfigError(
            f"expects a sequence of {dim} values per position (T, {dim}), "
            f"but the layer before gives {describe_shape(shape)}"
        )


def _embedding_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    if len(shape) != 1:
        raise ConfigError(f"reads a sequence of token ids (T,), but its input has shape {describe_shape(shape)}")
    return (shape[0], options["embedding_dim"])


def _position_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    _sequence(shape, options["dim"])
    if shape[0] > options["max_length"]:
        raise ConfigError(f"holds {options['max_length']} positions, but the sequences are {shape[0]} long")
    return shape


def _last_axis(options: Mapping[str, Any], shape: Shape) -> Shape:
    if shape[-1] != options["dim"]:
        raise ConfigError(
            f"normalizes the last axis of {options['dim']} values, but the layer before gives {describe_shape(shape)}"
        )
    return shape


def _norm_arrays(options: Mapping[str, Any], shape: Shape) -> dict[str, Shape]:
    dim = (options["dim"],)
    arrays: dict[str, Shape] = {"weight": dim} if options["affine"] else {}
    if options["affine"] and options.get("bias", False):
        arrays["bias"] = dim
    return arrays


def _attention_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    _sequence(shape, options["dim"])
    if options["dim"] % options["heads"] != 0:
        raise ConfigError(f"splits {options['dim']} values into {options['heads']} heads, which does not divide them")
    return shape


def _attention_arrays(options: Mapping[str, Any], shape: Shape) -> dict[str, Shape]:
    dim = options["dim"]
    arrays: dict[str, Shape] = {"in_proj_weight": (3 * dim, dim)}
    if options["bias"]:
        arrays["in_proj_bias"] = (3 * dim,)
    arrays["out_proj.weight"] = (dim, dim)
    if options["bias"]:
        arrays["out_proj.bias"] = (dim,)
    return arrays


def _approximation(value: str) -> str | None:
    return None if value in ("none", "tanh") else f"approximate must be 'none' or 'tanh', got {value!r}"


def _last_dim(shape: Shape) -> dict[str, Any]:
    return {"dim": shape[-1]}


register(
    LayerType(
        name="Embedding",
        options=(
            Option("num_embeddings", "int", check=at_least_one("num_embeddings")),
            Option("embedding_dim", "int", check=at_least_one("embedding_dim")),
            Option("init", "str", "gpt_normal", check=initializer),
            STD_OPTION,
        ),
        arrays=lambda o, shape: {"weight": (o["num_embeddings"], o["embedding_dim"])},
        output_shape=_embedding_output,
        penalized=("weight",),
        seeded=True,
        reads_tokens=True,
        math="17",
        positional=("embedding_dim",),
        width="embedding_dim",
    )
)
register(
    LayerType(
        name="PositionEmbedding",
        options=(
            Option("max_length", "int", check=at_least_one("max_length")),
            Option("dim", "int", check=at_least_one("dim")),
            Option("init", "str", "gpt_normal", check=initializer),
            STD_OPTION,
        ),
        arrays=lambda o, shape: {"weight": (o["max_length"], o["dim"])},
        output_shape=_position_output,
        penalized=("weight",),
        seeded=True,
        math="17",
        positional=("max_length",),
        from_input=_last_dim,
        aliases=("positions",),
    )
)
register(
    LayerType(
        name="LayerNorm",
        options=(
            Option("dim", "int", check=at_least_one("dim")),
            Option("eps", "float", 1e-5, check=_positive_float("eps")),
            Option("affine", "bool", True),
            Option("bias", "bool", True),
        ),
        arrays=_norm_arrays,
        output_shape=_last_axis,
        math="18",
        from_input=_last_dim,
    )
)
register(
    LayerType(
        name="RMSNorm",
        options=(
            Option("dim", "int", check=at_least_one("dim")),
            Option("eps", "float", 1e-5, check=_positive_float("eps")),
            Option("affine", "bool", True),
        ),
        arrays=_norm_arrays,
        output_shape=_last_axis,
        math="18",
        from_input=_last_dim,
    )
)
register(
    LayerType(
        name="GELU",
        options=(Option("approximate", "str", "none", check=_approximation),),
        positional=("approximate",),
        output_shape=_same_shape,
        shape_preserving=True,
        math="19",
    )
)
register(
    LayerType(
        name="CausalSelfAttention",
        options=(
            Option("dim", "int", check=at_least_one("dim")),
            Option("heads", "int", check=at_least_one("heads")),
            Option("bias", "bool", True),
            Option("dropout", "float", 0.0, check=_rate),
            Option("init", "str", "gpt_normal", check=initializer),
            STD_OPTION,
            Option("out_std", "float", None, check=_positive_float("out_std")),
        ),
        arrays=_attention_arrays,
        output_shape=_attention_output,
        penalized=("in_proj_weight", "out_proj.weight"),
        seeded=True,
        math="20",
        positional=("heads",),
        from_input=_last_dim,
        aliases=("attention",),
    )
)
