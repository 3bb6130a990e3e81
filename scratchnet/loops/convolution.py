"""A 2-D convolution layer, ``Conv2D``, and the window geometry the pooling layers share
(spec/math.md, section 12).

A convolution output unit is a neuron (neuron.py, eq. 2.1) that sees one window of the input and
shares its weights with every other position: output channel ``o`` is one :class:`Neuron` whose
``in_channels * kh * kw`` weights are the kernel ``weight[o]`` (in C order: channel, kernel row,
kernel column), applied at every window. As in PyTorch, it is a cross-correlation: the kernel is
not flipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.errors import ShapeError
from scratchnet.core.init import check_initializer
from scratchnet.core.registry import check_channels, window_output, window_pair
from scratchnet.loops.init import initial_bias, initial_weight
from scratchnet.loops.neuron import Neuron, NonzeroInputs
from scratchnet.loops.tensor import Batch, Param, as_batch, as_tensor, flatten, reshape, shape_of

Pair = tuple[int, int]
"""(height, width) of a kernel, a stride or a padding."""
Field = list[tuple[int, int]]
"""The window of one output position: ``(k, p)`` pairs, ``k`` a tap of the kernel (its index in a
neuron's flat weights) and ``p`` the input it reads (its index in the flattened sample)."""


def as_images(inputs: Sequence[Any], channels: int | None, where: str) -> Batch:
    """A copy of ``inputs`` as a batch of (channels, height, width) images of Python floats, all of
    one size; ShapeError when the batch is empty, has another rank, or (when given) other channels."""
    if hasattr(inputs, "tolist"):
        inputs = inputs.tolist()
    shape = shape_of(inputs)
    if len(inputs) > 0 and (len(shape) != 4 or (channels is not None and shape[1] != channels)):
        expected = f"({channels if channels is not None else 'channels'}, height, width)"
        raise ShapeError(f"{where}: expects a batch of {expected} images, got a batch of shape {shape}")
    return as_batch(inputs, shape[1:] if len(inputs) > 0 else None, where)


def shape_name(value: Any) -> tuple[int, ...]:
    """The shape of a NumPy array or a nested list, for error messages."""
    return tuple(value.shape) if hasattr(value, "shape") else shape_of(value)


def check_gradients(where: str, grad_outputs: Batch, batch_size: int, sample_shape: Sequence[int]) -> None:
    """ShapeError unless ``grad_outputs`` holds ``batch_size`` gradients of ``sample_shape`` (the
    shape of the layer's output in the last forward pass)."""
    given = shape_of(grad_outputs)
    if len(grad_outputs) != batch_size or given[1:] != tuple(sample_shape):
        raise ShapeError(f"{where}: expected gradients of shape {(batch_size, *sample_shape)}, got {given}")


def output_size(
    where: str, input_shape: Sequence[int], kernel_size: Pair, stride: Pair, padding: Pair = (0, 0)
) -> Pair:
    """(H', W'): the window positions along each axis of a (C, H, W) input (eq. 12.2); ShapeError
    when the kernel does not fit the padded input."""
    height, width = input_shape[1], input_shape[2]
    size = (
        window_output(height, kernel_size[0], stride[0], padding[0]),
        window_output(width, kernel_size[1], stride[1], padding[1]),
    )
    if min(size) < 1:
        raise ShapeError(
            f"{where}: kernel {list(kernel_size)} is larger than the padded input {height}x{width} "
            f"(padding {list(padding)}): the output would be empty"
        )
    return size


def receptive_fields(
    input_shape: Sequence[int], kernel_size: Pair, stride: Pair, padding: Pair = (0, 0)
) -> list[Field]:
    """The window of every output position (i, j), row by row, for a (C, H, W) input.

    Kernel tap (c, u, v) of the window at (i, j) reads input row r = i*sh + u - ph and column
    s = j*sw + v - pw (eq. 12.1, 12.4). A tap that falls on the zero padding (eq. 12.3) reads 0 and
    adds nothing to any sum, so it is left out: the padding is never built.
    """
    channels, height, width = input_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out_h, out_w = (window_output(n, k, s, p) for n, k, s, p in zip((height, width), kernel_size, stride, padding))
    fields = []
    for i in range(out_h):
        for j in range(out_w):
            field = []
            for c in range(channels):
                for u in range(kh):
                    r = i * sh + u - ph
                    for v in range(kw):
                        s = j * sw + v - pw
                        if 0 <= r < height and 0 <= s < width:
                            field.append(((c * kh + u) * kw + v, (c * height + r) * width + s))
            fields.append(field)
    return fields


class Conv2D:
    """A 2-D convolution: ``out_channels`` neurons, each a kernel of ``in_channels x kh x kw``
    weights and a bias, each applied to every window of the input (eq. 12.1).

    Arrays are ``weight`` ``(out_channels, in_channels, kh, kw)`` (PyTorch's layout) and ``bias``
    ``(out_channels,)``. ``kernel_size``, ``stride`` and ``padding`` are (height, width) pairs or
    one int for both; the padding is zeros.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        *,
        stride: int | Sequence[int] = (1, 1),
        padding: int | Sequence[int] = (0, 0),
        init: str = "he_normal",
        seed: int = 0,
    ) -> None:
        check_channels("Conv2D", in_channels, out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = window_pair(kernel_size, "Conv2D kernel_size", 1)
        self.stride = window_pair(stride, "Conv2D stride", 1)
        self.padding = window_pair(padding, "Conv2D padding", 0)
        self.init = check_initializer(init)
        self.kernel_shape = (in_channels, *self.kernel_size)  # one neuron's weights, (in, kh, kw)
        # fan_in = in * kh * kw, fan_out = out * kh * kw (eq. 12.8): the same numbers as the vectorized backend
        weights = initial_weight(init, (out_channels, *self.kernel_shape), seed)
        bias = initial_bias(init, out_channels, seed)
        self.neurons = [Neuron(flatten(kernel), b) for kernel, b in zip(weights, bias)]
        self.input_shape: tuple[int, ...] = ()  # (C, H, W) of the last forward pass
        self.out_size: Pair = (0, 0)
        self.fields: list[Field] = []  # the window of each output position, for this input size
        self.windows: list[list[NonzeroInputs]] = []  # per sample, the nonzero inputs of each window

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """z[n][o][i][j] = b[o] + sum_c sum_u sum_v w[o][c][u][v] x[n][c][i*sh+u-ph][j*sw+v-pw]
        (eq. 12.1): neuron o on the window at (i, j), for every sample and position."""
        batch = as_images(inputs, self.in_channels, "Conv2D.forward")
        shape = shape_of(batch[0])
        if shape != self.input_shape:  # the windows depend on the input's size only: find them once
            self.out_size = output_size("Conv2D.forward", shape, self.kernel_size, self.stride, self.padding)
            self.fields = receptive_fields(shape, self.kernel_size, self.stride, self.padding)
            self.input_shape = shape
        self.windows = []
        outputs = []
        for x in batch:
            pixels = flatten(x)
            # Each window's nonzero inputs, found once and shared by every neuron, here and in
            # backward: a zero input (most pixels of a digit, every ReLU that did not fire) adds nothing.
            windows = [[(k, pixels[p]) for k, p in field if pixels[p] != 0.0] for field in self.fields]
            self.windows.append(windows)
            outputs.append(
                [reshape([neuron.forward(window) for window in windows], self.out_size) for neuron in self.neurons]
            )
        return outputs

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """Given delta = dL/dz, sum each neuron's gradients over every sample and position
        (dL/dw, eq. 12.5; dL/db, eq. 12.6) and return dL/dx (eq. 12.7).

        With ``need_input_grad=False`` (the first layer: nobody needs dL/dx of the data) dL/dx is
        not computed and an empty list is returned.
        """
        check_gradients("Conv2D.backward", grad_outputs, len(self.windows), (self.out_channels, *self.out_size))
        for neuron in self.neurons:
            neuron.zero_grad()
        size = math.prod(self.input_shape)
        grad_inputs = []
        for windows, deltas_of_sample in zip(self.windows, grad_outputs):
            grad_pixels = [0.0] * size if need_input_grad else None
            for neuron, deltas in zip(self.neurons, deltas_of_sample):
                weights = neuron.weights
                for field, window, delta in zip(self.fields, windows, flatten(deltas)):
                    if delta == 0.0:  # a unit that pooling or a ReLU ignored adds nothing
                        continue
                    # dL/dw[k] += delta * x over the window's nonzero inputs (12.5), dL/db += delta (12.6)
                    neuron.backward(window, delta, None)
                    if grad_pixels is not None:  # every input of the window gets delta * its weight (12.7)
                        for k, p in field:
                            grad_pixels[p] += delta * weights[k]
            if grad_pixels is not None:
                grad_inputs.append(reshape(grad_pixels, self.input_shape))
        return grad_inputs

    def params(self) -> dict[str, Param]:
        """Copies of ``weight`` (one kernel per neuron) and ``bias``."""
        return {
            "weight": [reshape(n.weights, self.kernel_shape) for n in self.neurons],
            "bias": [n.bias for n in self.neurons],
        }

    def grads(self) -> dict[str, Param]:
        """Copies of dL/dW and dL/db from the last backward pass, shaped like :meth:`params`."""
        return {
            "weight": [reshape(n.grad_weights, self.kernel_shape) for n in self.neurons],
            "bias": [n.grad_bias for n in self.neurons],
        }

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Replace ``weight`` and ``bias`` with the given values (nested lists, NumPy arrays, ...)."""
        weight_shape = (self.out_channels, *self.kernel_shape)
        try:
            weight = as_tensor(named["weight"], weight_shape, "weight")
            bias = as_tensor(named["bias"], (self.out_channels,), "bias")
        except ShapeError:
            raise ShapeError(
                f"Conv2D.set_params: weight {shape_name(named['weight'])} and bias {shape_name(named['bias'])} "
                f"do not fit {weight_shape} and ({self.out_channels},)"
            ) from None
        for neuron, kernel, b in zip(self.neurons, weight, bias):
            neuron.weights, neuron.bias = flatten(kernel), b

    def describe(self) -> dict[str, Any]:
        return {
            "type": "Conv2D",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "init": self.init,
        }
