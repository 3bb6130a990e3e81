"""The built-in layer types' explainers: how ``scratchnet explain`` and ``scratchnet serve``'s page show
each of them (see :mod:`scratchnet.teaching.explainers`). One :func:`register_explainer` call per
type, at module level; the order is that of the list explain gives when it refuses a type.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scratchnet.teaching import backward_rules as back
from scratchnet.teaching import explain_text as text
from scratchnet.teaching import sequence_text as seq
from scratchnet.teaching.explain_neuron import explain_neuron
from scratchnet.teaching.explain_units import (
    explain_avg_pool,
    explain_conv,
    explain_max_pool,
    explain_norm,
    follow_pool,
    follow_same,
)
from scratchnet.teaching.explainers import CHANNEL, NEURON, Activation, BackwardRule, Explainer, register_explainer


def _pair(value: tuple[int, int]) -> str:
    return f"{value[0]}x{value[1]}"


def _conv_name(o: Mapping[str, Any]) -> str:
    extra = "".join(
        f", {name} {_pair(o[name])}" for name, plain in (("stride", (1, 1)), ("padding", (0, 0))) if o[name] != plain
    )
    return f"Conv2D({o['in_channels']} -> {o['out_channels']}, {_pair(o['kernel_size'])}{extra})"


def _pool_name(kind: str) -> Callable[[Mapping[str, Any]], str]:
    def name(o: Mapping[str, Any]) -> str:
        stride = f", stride {_pair(o['stride'])}" if o["stride"] != o["kernel_size"] else ""
        return f"{kind}({_pair(o['kernel_size'])}{stride})"

    return name


register_explainer(
    Explainer(
        "Dense",
        name=lambda o: f"Dense({o['in_features']}, {o['out_features']})",
        summary=text.dense_summary,
        equation=("2.1", "Neuron.forward", "z = sum_i w[i] * x[i] + b"),
        units=NEURON,
        explain=explain_neuron,
        format=text.format_neuron,
        heads_block=True,
        drawn=True,
        backward=BackwardRule(
            "3.2-3.4",
            "Dense.backward",
            "dL/dW[j][i] = delta[j] * x[i]; dL/db[j] = delta[j]; dL/dx[i] = sum_j delta[j] * W[j][i]",
            arrives="dL/dz",
            note=back.dense_note,
            parameter=back.dense_parameter,
            input_terms=back.dense_input_terms,
        ),
    )
)
register_explainer(
    Explainer(
        "Dropout",
        name=lambda o: f"Dropout({o['rate']:g})",
        summary=text.dropout_summary,
        joins_block=True,
        passes_through=True,
        backward=BackwardRule(
            "7.3", "Dropout.backward", "dL/dx = dL/da * mask; at inference dL/dx = dL/da", note=back.dropout_note
        ),
    )
)
# Each elementwise activation: the equation of f, its rule, and its derivative (spec/math.md section 4).
for _kind, _activation in (
    ("ReLU", Activation("4.1", "a = max(0, z)", "f'(z) = 1 if z > 0 else 0")),
    ("LeakyReLU", Activation("4.2", "a = z if z > 0 else alpha * z", "f'(z) = 1 if z > 0 else alpha")),
    ("Sigmoid", Activation("4.3", "a = 1 / (1 + e^-z)", "f'(z) = a (1 - a)")),
    ("Tanh", Activation("4.4", "a = tanh z", "f'(z) = 1 - a^2")),
    ("Identity", Activation("4.5", "a = z", "f'(z) = 1", trivial=True)),
):
    _rule = BackwardRule(
        _activation.equation,
        "Elementwise.backward",
        f"dL/dz = dL/da * f'(z), {_activation.derivative}",
        sends="dL/dz",
        note=back.elementwise_note,
    )
    register_explainer(Explainer(_kind, activation=_activation, joins_block=True, backward=_rule))
register_explainer(
    Explainer(
        "Softmax",
        summary=text.softmax_summary,
        activation=Activation(
            "4.6",
            "p[j] = e^(z[j] - m) / sum_k e^(z[k] - m), m = max_k z[k]",
            "",
            elementwise=False,
            function="softmax",
            outputs="Softmax outputs (4.6) softmax, p[k] = e^(z[k] - m) / sum_j e^(z[j] - m):",
            backward=("4.7", "Softmax.backward: delta = p[j] (g[j] - sum_k g[k] p[k])"),
        ),
        backward=BackwardRule(
            "4.7", "Softmax.backward", "dL/dz[k] = p[k] (g[k] - sum_j g[j] p[j])", arrives="dL/dp", sends="dL/dz"
        ),
    )
)
register_explainer(
    Explainer(
        "Conv2D",
        name=_conv_name,
        summary=text.conv_summary,
        equation=(
            "12.1",
            "Conv2D.forward",
            "z[o][i][j] = sum_c sum_u sum_v w[o][c][u][v] * x[c][i*sh + u - ph][j*sw + v - pw] + b[o]",
        ),
        units=CHANNEL,
        explain=explain_conv,
        format=text.format_conv,
        heads_block=True,
        feature_maps=True,
        drawn=True,
        backward=BackwardRule(
            "12.5-12.7",
            "Conv2D.backward",
            "dL/dw[o][c][u][v] = sum_i sum_j delta[o][i][j] * x[c][i*sh + u - ph][j*sw + v - pw]; "
            "dL/db[o] = sum_i sum_j delta[o][i][j]; dL/dx[c][r][s] = sum of delta[o][i][j] * w[o][c][u][v] "
            "over the windows and taps that read (r, s)",
            arrives="dL/dz",
            note=back.conv_note,
            parameter=back.conv_parameter,
        ),
    )
)
register_explainer(
    Explainer(
        "MaxPool2D",
        name=_pool_name("MaxPool2D"),
        summary=text.max_pool_summary,
        equation=("13.1", "MaxPool2D.forward", "a[c][i][j] = max over u, v of x[c][i*sh + u][j*sw + v]"),
        units=CHANNEL,
        explain=explain_max_pool,
        format=text.format_pool,
        follow=follow_pool,
        drawn=True,
        backward=BackwardRule(
            "13.2",
            "MaxPool2D.backward",
            "dL/dx[c][r][s] = dL/da[c][i][j] where (r, s) is the first maximum of window (i, j), else 0",
            note=back.max_pool_note,
        ),
    )
)
register_explainer(
    Explainer(
        "AvgPool2D",
        name=_pool_name("AvgPool2D"),
        summary=text.avg_pool_summary,
        equation=(
            "13.3",
            "AvgPool2D.forward",
            "a[c][i][j] = (1 / (kh*kw)) sum_u sum_v x[c][i*sh + u][j*sw + v]",
        ),
        units=CHANNEL,
        explain=explain_avg_pool,
        format=text.format_pool,
        follow=follow_pool,
        drawn=True,
        backward=BackwardRule(
            "13.4",
            "AvgPool2D.backward",
            "dL/dx[c][r][s] = sum over the windows (i, j) holding (r, s) of dL/da[c][i][j] / (kh * kw)",
            note=back.avg_pool_note,
        ),
    )
)
register_explainer(
    Explainer(
        "Flatten",
        summary=text.flatten_summary,
        backward=BackwardRule(
            "14.2", "Flatten.backward", "dL/dx[c][h][w] = dL/da[(c*H + h)*W + w]", note=back.flatten_note
        ),
    )
)
register_explainer(
    Explainer(
        "BatchNorm",
        name=lambda o: f"BatchNorm({o['num_features']})",
        summary=text.norm_summary,
        equation=(
            "15.6",
            "BatchNorm.forward",
            "y = gamma * (x - running_mean[c]) / sqrt(running_var[c] + eps) + beta",
        ),
        units=CHANNEL,
        explain=explain_norm,
        format=text.format_norm,
        follow=follow_same,
        joins_block=True,
        backward=BackwardRule(
            "15.7, 15.8, 15.10",
            "BatchNorm.backward",
            "dL/dgamma[c] = sum_k g_k * x_hat_k; dL/dbeta[c] = sum_k g_k; at inference "
            "dL/dx_k = gamma[c] * g_k / sqrt(running_var[c] + eps)",
            arrives="dL/dy",
            note=back.norm_note,
            parameter=back.norm_parameter,
        ),
    )
)

# The sequence layers (spec/math.md, sections 17-20). A container (a layer type whose registry entry
# has children, such as a residual block) needs an explainer of its own (its name and line); the
# layers it holds are walked by scratchnet.core.walk and shown at their places (3.0, 3.1 ...).
register_explainer(
    Explainer(
        "Embedding",
        name=lambda o: f"Embedding({o['num_embeddings']}, {o['embedding_dim']})",
        summary=seq.embedding_summary,
        equation=("17.1", "Embedding.forward", "x[t] = W[id[t]]"),
    )
)
register_explainer(
    Explainer(
        "PositionEmbedding",
        name=lambda o: f"PositionEmbedding({o['max_length']}, {o['dim']})",
        summary=seq.position_summary,
        equation=("17.3", "PositionEmbedding.forward", "y[t][c] = x[t][c] + P[t][c]"),
    )
)
register_explainer(
    Explainer(
        "LayerNorm",
        name=lambda o: f"LayerNorm({o['dim']})",
        summary=seq.layer_norm_summary,
        equation=("18.1-18.3", "LayerNorm.forward", "y[c] = gamma[c] * (x[c] - mu) / sqrt(var + eps) + beta[c]"),
    )
)
register_explainer(
    Explainer(
        "RMSNorm",
        name=lambda o: f"RMSNorm({o['dim']})",
        summary=seq.rms_norm_summary,
        equation=("18.6, 18.7", "RMSNorm.forward", "y[c] = gamma[c] * x[c] / sqrt((1/D) sum_j x[j]^2 + eps)"),
    )
)
_GELU_KIND = "GELU"
_GELU = Activation(
    "19.1",
    "a = z Phi(z), Phi(z) = erfc(-z / sqrt 2) / 2 (with approximate='tanh': a = z sigma(2w), 19.3)",
    "f'(z) = Phi(z) + z phi(z) (19.2; 19.4 with approximate='tanh')",
)
register_explainer(
    Explainer(
        _GELU_KIND,
        name=lambda o: _GELU_KIND if o["approximate"] == "none" else f"{_GELU_KIND}({o['approximate']})",
        activation=_GELU,
        joins_block=True,
        backward=BackwardRule(
            _GELU.equation,
            "Elementwise.backward",
            f"dL/dz = dL/da * f'(z), {_GELU.derivative}",
            sends="dL/dz",
            note=back.elementwise_note,
        ),
    )
)
register_explainer(
    Explainer(
        "CausalSelfAttention",
        name=lambda o: f"CausalSelfAttention({o['dim']}, {o['heads']} heads)",
        summary=seq.attention_summary,
        equation=(
            "20.2-20.4",
            "CausalSelfAttention.forward",
            "o_t^h = sum_{s <= t} softmax_s(q_t^h . k_s^h / sqrt(d)) v_s^h",
        ),
        attention=True,
    )
)
register_explainer(  # a container: explain walks into the layers it holds (scratchnet.core.walk)
    Explainer("Residual", summary=seq.residual_summary)
)
