"""One unit of a convolution, pooling or batch-norm layer, explained from the loops layer's own numbers.

Each function takes the :class:`~scratchnet.teaching.forward_pass.ForwardPass`, the layer's index,
the unit's flat position ``p`` in the layer's output and why it was chosen, and reads the loops
layer (its ``fields``, ``argmax``, ``running_mean`` ...): one implementation of the numbers.
:mod:`scratchnet.teaching.layer_explainers` registers them. Standard library only.
"""

from __future__ import annotations

import math

from scratchnet.loops.tensor import flatten, shape_of
from scratchnet.teaching.explanation import (
    ConvUnitExplanation,
    NormUnitExplanation,
    PoolUnitExplanation,
    WindowTerm,
    position,
)
from scratchnet.teaching.forward_pass import ForwardPass


def explain_conv(fp: ForwardPass, index: int, p: int, why: str) -> ConvUnitExplanation:
    """Unit p of Conv2D layer ``index``, read from the loops layer: its window (``fields``, from its
    forward pass) and the neuron of its output channel (eq. 12.1); with its first ``fp.maps`` feature
    maps to draw, and its own channel's when it is not one of them."""
    conv = fp.layer(index)
    values = fp.values
    o, i, j = position(p, shape_of(values[index + 1]))
    in_shape = shape_of(values[index])
    kh, kw = conv.kernel_size
    field = conv.fields[i * conv.out_size[1] + j]  # (k, input index) of every tap not on the padding
    pixels = flatten(values[index])
    unit = conv.neurons[o]
    terms = []
    for k, q in field:
        c, r, s = position(q, in_shape)
        _, u, v = position(k, (conv.in_channels, kh, kw))
        terms.append(WindowTerm(k, c, u, v, r, s, unit.weights[k], pixels[q], unit.weights[k] * pixels[q]))
    ranked = sorted(terms, key=lambda t: (-abs(t.product), t.tap))
    shown, rest = ranked[: fp.top], ranked[fp.top :]
    z = unit.forward([(k, pixels[q]) for k, q in field if pixels[q] != 0.0])  # as Conv2D.forward does it
    activation, act_index, a, then = fp.after(index, p)
    feature = fp.maps_of(index)
    drawn = list(range(min(fp.maps, len(feature.maps))))
    if fp.maps and o not in drawn:
        drawn.append(o)
    return ConvUnitExplanation(
        layer=index,
        unit=(o, i, j),
        why=why,
        input_name=fp.input_name(index),
        input_shape=in_shape,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        terms=shown,
        rest_count=len(rest),
        rest_sum=math.fsum(t.product for t in rest),
        zero_inputs=sum(1 for t in terms if t.input == 0.0),
        padded=conv.in_channels * kh * kw - len(field),
        weighted_sum=math.fsum(t.product for t in terms),
        bias=unit.bias,
        z=z,
        activation=activation,
        activation_layer=act_index,
        a=a,
        then=then,
        maps=feature,
        drawn=drawn,
    )


def explain_max_pool(fp: ForwardPass, index: int, p: int, why: str) -> PoolUnitExplanation:
    """Unit p of a MaxPool2D layer: its window and the input its forward pass chose (``argmax``, eq. 13.1, 13.2)."""
    return _explain_pool(fp, index, p, why, chooses=True)


def explain_avg_pool(fp: ForwardPass, index: int, p: int, why: str) -> PoolUnitExplanation:
    """Unit p of an AvgPool2D layer: its window and their mean (eq. 13.3)."""
    return _explain_pool(fp, index, p, why, chooses=False)


def _explain_pool(fp: ForwardPass, index: int, p: int, why: str, *, chooses: bool) -> PoolUnitExplanation:
    """Unit p of a pooling layer, read from the loops layer: its window (``fields``) and, when the
    layer ``chooses`` one input of it, that input (``argmax``)."""
    pool = fp.layer(index)
    values = fp.values
    c, i, j = position(p, shape_of(values[index + 1]))
    _, _, width = shape_of(values[index])
    window_index = i * pool.out_size[1] + j
    field = pool.fields[window_index]  # r * W + s of each input of the window, in one channel
    plane = flatten(values[index][c])
    rows = (field[0] // width, field[-1] // width)
    cols = (field[0] % width, field[-1] % width)
    window = [[plane[r * width + s] for s in range(cols[0], cols[1] + 1)] for r in range(rows[0], rows[1] + 1)]
    chosen = divmod(pool.argmax[0][c][window_index], width) if chooses else None
    return PoolUnitExplanation(
        layer=index,
        kind=fp.kind(index),
        unit=(c, i, j),
        why=why,
        input_name=fp.input_name(index),
        kernel_size=pool.kernel_size,
        stride=pool.stride,
        rows=rows,
        cols=cols,
        window=window,
        chosen=chosen,
        total=math.fsum(plane[q] for q in field),
        a=flatten(values[index + 1])[p],
    )


def follow_pool(fp: ForwardPass, index: int, p: int) -> int | None:
    """The unit of pooling layer ``index`` that value p of its (C, H, W) input feeds: the first window
    holding it; None on a row or column no window reaches (12.2)."""
    shape = shape_of(fp.values[index])
    if len(shape) != 3:
        return None
    pool = fp.layer(index)
    c, r, s = position(p, shape)
    (kh, kw), (sh, sw) = pool.kernel_size, pool.stride
    _, out_h, out_w = shape_of(fp.values[index + 1])
    # the first window holding (r, s): i*sh <= r < i*sh + kh, and the same for the columns
    rows = [i for i in range(out_h) if i * sh <= r < i * sh + kh]
    cols = [j for j in range(out_w) if j * sw <= s < j * sw + kw]
    if not rows or not cols:
        return None  # on a row or column that no window reaches (12.2), or between windows
    return (c * out_h + rows[0]) * out_w + cols[0]


def follow_same(fp: ForwardPass, index: int, p: int) -> int:
    """The unit of a layer that keeps its input's shape (BatchNorm) fed by value p of its input: unit p."""
    return p


def explain_norm(fp: ForwardPass, index: int, p: int, why: str) -> NormUnitExplanation:
    """Unit p of a BatchNorm layer at inference, read from the loops layer: its channel's running
    statistics, gamma, beta, eps and the x_hat its forward pass computed (eq. 15.3, 15.4, 15.6)."""
    norm = fp.layer(index)
    values = fp.values
    shape = shape_of(values[index])
    unit = position(p, shape)
    c = unit[0]
    within = p - c * math.prod(shape[1:])  # the unit's index in its channel's plane
    activation, act_index, a, then = fp.after(index, p)
    return NormUnitExplanation(
        layer=index,
        unit=unit,
        why=why,
        input_name=fp.input_name(index),
        x=flatten(values[index])[p],
        mean=norm.running_mean[c],
        var=norm.running_var[c],
        eps=norm.eps,
        x_hat=norm.x_hat[c][0][within],
        gamma=norm.weight[c],
        beta=norm.bias[c],
        y=flatten(values[index + 1])[p],
        activation=activation,
        activation_layer=act_index,
        a=a,
        then=then,
    )
