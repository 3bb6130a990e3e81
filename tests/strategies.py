"""Hypothesis strategies shared by the cross-check tests: small random architectures."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from scratchnet.core import notation
from scratchnet.core.architecture import ACTIVATION_LAYERS as ACTIVATIONS
from scratchnet.core.architecture import LOSSES, mlp


@st.composite
def architectures(draw: st.DrawFn, *, dropout: bool = True) -> dict[str, Any]:
    """1-3 Dense layers of widths 1-12, any hidden activation, any loss, optional dropout and penalties."""
    dense_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 12)) for _ in range(dense_layers + 1)]
    loss = draw(st.sampled_from(sorted(LOSSES)))
    if loss == "cross_entropy":
        sizes[-1] = max(sizes[-1], 2)  # softmax over a single output is constant
    return mlp(
        sizes,
        activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        loss=loss,
        output=draw(st.sampled_from(sorted(ACTIVATIONS))),
        dropout=draw(st.sampled_from([0.0, 0.0, 0.3])) if dropout else 0.0,
        l2=draw(st.sampled_from([0.0, 0.0, 0.01])),
    )


# Every optimizer, for networks that may hold batch norm. A bias just before a BatchNorm layer has a
# gradient that is exactly 0 in exact arithmetic (the normalization removes any shift) and about 1e-17
# in floating point, with a different rounding in each backend; an adaptive optimizer divides it by
# its own size plus eps and so turns it into a step of about lr * 1e-17 / eps. With eps = 1e-3 that
# step stays far below the comparison's tolerance; PyTorch's defaults (1e-8, 1e-10) would make it
# 1e-9 and more: noise, not a difference between the backends.
OPTIMIZER_SPECS = (
    {"type": "sgd", "lr": 0.1, "momentum": 0.9},
    {"type": "adagrad", "lr": 0.05, "eps": 1e-3},
    {"type": "rmsprop", "lr": 0.01, "centered": True, "eps": 1e-3},
    {"type": "adam", "lr": 0.01, "eps": 1e-3},
    {"type": "adamw", "lr": 0.01, "weight_decay": 0.1, "eps": 1e-3},
)


@st.composite
def cnn_architectures(draw: st.DrawFn) -> dict[str, Any]:
    """1-2 Conv2D layers of 1-4 channels (kernels 1-5, strides 1-3, padding 0-2), each maybe with
    BatchNorm, an activation and max or average pooling, then Flatten, maybe Dropout, Dense and
    Softmax, on one sample of 1-3 channels and up to 12x12 pixels, in the compact notation."""
    channels = draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    items = [f"input({channels}x{height}x{width})"]
    for _ in range(draw(st.integers(1, 2))):
        # Padding below the kernel size: a wider one adds outputs that see only zeros (the bias alone).
        kernel_h = draw(st.integers(1, min(5, height + 4)))
        kernel_w = draw(st.integers(1, min(5, width + 4)))
        padding = draw(st.integers(max(0, -(-(max(kernel_h - height, kernel_w - width)) // 2)), 2))
        padding = min(padding, kernel_h - 1, kernel_w - 1)
        if kernel_h > height + 2 * padding or kernel_w > width + 2 * padding:
            kernel_h, kernel_w = min(kernel_h, height + 2 * padding), min(kernel_w, width + 2 * padding)
        stride = draw(st.integers(1, 3))
        out_channels = draw(st.integers(1, 4))
        items.append(f"conv({out_channels}, {kernel_h}x{kernel_w}, stride={stride}, padding={padding})")
        height = (height + 2 * padding - kernel_h) // stride + 1
        width = (width + 2 * padding - kernel_w) // stride + 1
        if draw(st.booleans()):
            items.append("batchnorm")
        items.append(draw(st.sampled_from(["relu", "leaky_relu", "tanh", "sigmoid"])))
        if min(height, width) >= 2 and draw(st.booleans()):
            pool = draw(st.integers(1, min(3, height, width)))
            pool_stride = draw(st.sampled_from([None, 1, 2]))
            items.append(
                f"{draw(st.sampled_from(['maxpool', 'avgpool']))}({pool}"
                + ("" if pool_stride is None else f", stride={pool_stride}")
                + ")"
            )
            step = pool if pool_stride is None else pool_stride
            height, width = (height - pool) // step + 1, (width - pool) // step + 1
    items.append("flatten")
    if draw(st.booleans()):
        items.append("dropout(0.3)")
    if draw(st.booleans()):
        items += [f"dense({draw(st.integers(1, 6))})", "batchnorm", "relu"]
    items.append(f"dense({draw(st.integers(2, 5))})")
    architecture = notation.parse(", ".join(items))
    architecture["l2"] = draw(st.sampled_from([0.0, 0.0, 0.01]))
    return architecture


@st.composite
def transformer_architectures(draw: st.DrawFn) -> dict[str, Any]:
    """A small transformer-like stack on token ids (no residual connections yet): Embedding, maybe
    PositionEmbedding, then one or two blocks of a LayerNorm or RMSNorm, CausalSelfAttention, maybe a
    second norm and Dense-GELU-Dense, and a norm and a Dense layer to the vocabulary; vocabulary 2-8, sequences
    of 1-6 tokens, dim 2-8 divisible by the heads, either GELU, any init, maybe attention dropout, a
    padding ignore_index."""
    vocabulary, length = draw(st.integers(2, 8)), draw(st.integers(1, 6))
    dim = draw(st.integers(2, 8))
    heads = draw(st.sampled_from([h for h in range(1, dim + 1) if dim % h == 0]))
    # GPT's N(0, 0.02) for the tables; the layers in between are He or Glorot: without the residual
    # connections that carry a GPT's signal past them, a chain of N(0, 0.02) layers shrinks the
    # activations to 1e-6, below a norm's sqrt(eps), and the probabilities to uniform within 1e-4, so
    # that gradients of few, repeated tokens cancel to a size at which rounding shows at 1e-12.
    table_init = draw(st.sampled_from(["gpt_normal", "he_normal", "glorot_uniform"]))
    init = draw(st.sampled_from(["he_normal", "glorot_uniform"]))

    def norm() -> dict[str, Any]:
        # LayerNorm over 2 values is degenerate, as batch norm over 2 (see above): its outputs are
        # +-|d| / sqrt(d^2 + eps) whatever the inputs, and its input gradient, eps / (d^2 + eps) of
        # the upstream one, is what is left of a cancellation, so each backend's rounding shows at
        # 1e-11 once an adaptive optimizer has rescaled the tiny gradients behind it. From 3 values on
        # the gradient is of the upstream one's size.
        if dim >= 3 and draw(st.booleans()):
            affine = draw(st.booleans())
            return {"type": "LayerNorm", "dim": dim, "affine": affine, "bias": affine and draw(st.booleans())}
        return {"type": "RMSNorm", "dim": dim, "affine": draw(st.booleans())}

    layers: list[dict[str, Any]] = [
        {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim, "init": table_init}
    ]
    if draw(st.booleans()):
        layers.append(
            {
                "type": "PositionEmbedding",
                "max_length": length + draw(st.integers(0, 2)),
                "dim": dim,
                "init": table_init,
            }
        )
    for _ in range(draw(st.integers(1, 2))):  # one or two blocks, without residual connections yet
        layers.append(norm())
        attention = {"type": "CausalSelfAttention", "dim": dim, "heads": heads, "bias": draw(st.booleans())}
        attention.update(init=init, dropout=draw(st.sampled_from([0.0, 0.0, 0.25])))
        layers.append(attention)
        if draw(st.booleans()):
            layers.append(norm())
        # The MLP widens (GPT's is 4 dim): a narrower one funnels a block through a few sums that may
        # cancel, whose rounding a norm in its eps regime (rms < sqrt(eps)) then magnifies 300 times.
        hidden = draw(st.integers(dim, 4 * dim))
        layers += [
            {"type": "Dense", "in_features": dim, "out_features": hidden, "init": init},
            {"type": "GELU", "approximate": draw(st.sampled_from(["none", "tanh"]))},
            {"type": "Dense", "in_features": hidden, "out_features": dim, "init": init},
        ]
    # As in GPT, a norm before the scores.
    layers += [
        norm(),
        {"type": "Dense", "in_features": dim, "out_features": vocabulary, "init": init},
        {"type": "Softmax"},
    ]
    loss: dict[str, Any] = {"type": "CrossEntropy"}
    if draw(st.booleans()):
        loss["ignore_index"] = -1  # makemore's padding value
    return {
        "vocabulary": vocabulary,
        "input_shape": [length],
        "layers": layers,
        "loss": loss,
        "l2": draw(st.sampled_from([0.0, 0.0, 0.01])),
    }


@st.composite
def gpt_architectures(draw: st.DrawFn) -> dict[str, Any]:
    """A small GPT on token ids: Embedding, maybe PositionEmbedding, one or two blocks of two
    Residuals (nanoGPT's Block: x + attention(norm(x)), then x + mlp(norm(x)), maybe with dropout in
    either), a final norm and a Dense layer to the vocabulary; vocabulary 2-8, sequences of 1-6
    tokens, dim 2-8 divisible by the heads, LayerNorm or RMSNorm, either GELU, GPT's N(0, 0.02) or
    He or Glorot init, padded positions (random_tokens pads about a quarter; maybe ignore_index -1)."""
    vocabulary, length = draw(st.integers(2, 8)), draw(st.integers(1, 6))
    dim = draw(st.integers(2, 8))
    heads = draw(st.sampled_from([h for h in range(1, dim + 1) if dim % h == 0]))
    # With the residual connections carrying the signal past each block, GPT's N(0, 0.02) is drawn for
    # every layer too (the stacks without them above cannot take it).
    table_init = draw(st.sampled_from(["gpt_normal", "he_normal", "glorot_uniform"]))
    init = draw(st.sampled_from(["gpt_normal", "he_normal", "glorot_uniform"]))

    def norm() -> dict[str, Any]:
        if dim >= 3 and draw(st.booleans()):  # LayerNorm over 2 values is degenerate (see above)
            affine = draw(st.booleans())
            return {"type": "LayerNorm", "dim": dim, "affine": affine, "bias": affine and draw(st.booleans())}
        return {"type": "RMSNorm", "dim": dim, "affine": draw(st.booleans())}

    layers: list[dict[str, Any]] = [
        {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim, "init": table_init}
    ]
    if draw(st.booleans()):
        layers.append(
            {
                "type": "PositionEmbedding",
                "max_length": length + draw(st.integers(0, 2)),
                "dim": dim,
                "init": table_init,
            }
        )
    for _ in range(draw(st.integers(1, 2))):
        attention = {"type": "CausalSelfAttention", "dim": dim, "heads": heads, "bias": draw(st.booleans())}
        attention.update(init=init, dropout=draw(st.sampled_from([0.0, 0.0, 0.25])))
        layers.append({"type": "Residual", "layers": [norm(), attention]})
        hidden = draw(st.integers(dim, 4 * dim))
        mlp_layers = [
            norm(),
            {"type": "Dense", "in_features": dim, "out_features": hidden, "init": init},
            {"type": "GELU", "approximate": draw(st.sampled_from(["none", "tanh"]))},
            {"type": "Dense", "in_features": hidden, "out_features": dim, "init": init},
        ]
        if draw(st.booleans()):
            mlp_layers.append({"type": "Dropout", "rate": 0.2})
        layers.append({"type": "Residual", "layers": mlp_layers})
    layers += [
        norm(),
        {"type": "Dense", "in_features": dim, "out_features": vocabulary, "init": init},
        {"type": "Softmax"},
    ]
    loss: dict[str, Any] = {"type": "CrossEntropy"}
    if draw(st.booleans()):
        loss["ignore_index"] = -1
    return {
        "vocabulary": vocabulary,
        "input_shape": [length],
        "layers": layers,
        "loss": loss,
        "l2": draw(st.sampled_from([0.0, 0.0, 0.01])),
    }


def residual_cnn(channels: int = 1) -> dict[str, Any]:
    """A convolution, then a residual block (a padded convolution that keeps the shape, batch norm, relu),
    pooling and a Dense layer: a residual CNN on 6x6 images of ``channels`` channels."""
    return {
        "input_shape": [channels, 6, 6],
        "layers": [
            {"type": "Conv2D", "in_channels": channels, "out_channels": 3, "kernel_size": 3, "padding": 1},
            {
                "type": "Residual",
                "layers": [
                    {"type": "Conv2D", "in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1},
                    {"type": "BatchNorm", "num_features": 3},
                    {"type": "ReLU"},
                ],
            },
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "in_features": 27, "out_features": 4},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }
