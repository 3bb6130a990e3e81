"""Pooling layers, ``MaxPool2D`` and ``AvgPool2D`` (spec/math.md, section 13).

Each slides a ``kh x kw`` window with stride ``(sh, sw)`` (the kernel size unless given) over every
channel of every sample on its own, without padding, and replaces the window by one number: its
largest value, or its mean. Neither has parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scratchnet.core.network import ParameterFree
from scratchnet.core.registry import window_pair
from scratchnet.loops.convolution import Pair, as_images, check_gradients, output_size, receptive_fields
from scratchnet.loops.tensor import Batch, Param, flatten, reshape, shape_of


class Pool2D(ParameterFree[Param]):
    """What both pooling layers share: the options, the windows (found once per input size) and
    the checks; a subclass writes the rule of its window, forward and backward."""

    def __init__(self, kernel_size: int | Sequence[int], *, stride: int | Sequence[int] | None = None) -> None:
        name = type(self).__name__
        self.kernel_size = window_pair(kernel_size, f"{name} kernel_size", 1)
        self.stride = self.kernel_size if stride is None else window_pair(stride, f"{name} stride", 1)
        self.input_shape: tuple[int, ...] = ()  # (C, H, W) of the last forward pass
        self.out_size: Pair = (0, 0)
        self.fields: list[list[int]] = []  # per output position, its window's indices r * W + s in one channel

    def images(self, inputs: Batch) -> Batch:
        """``inputs`` checked and copied as a batch of images; the windows of their size (eq. 12.2 with p = 0)."""
        where = f"{type(self).__name__}.forward"
        batch = as_images(inputs, None, where)
        shape = shape_of(batch[0])
        if shape != self.input_shape:
            self.out_size = output_size(where, shape, self.kernel_size, self.stride)
            fields = receptive_fields((1, *shape[1:]), self.kernel_size, self.stride)  # one channel at a time
            self.fields = [[p for _, p in field] for field in fields]
            self.input_shape = shape
        return batch

    def check_gradients(self, grad_outputs: Batch, batch_size: int) -> None:
        """ShapeError unless ``grad_outputs`` is one gradient per sample, shaped like the output."""
        channels = self.input_shape[0] if self.input_shape else 0
        check_gradients(f"{type(self).__name__}.backward", grad_outputs, batch_size, (channels, *self.out_size))

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "kernel_size": list(self.kernel_size), "stride": list(self.stride)}


class MaxPool2D(Pool2D):
    """a[n][c][i][j] = the largest value of the window at (i, j) (eq. 13.1); the gradient goes to
    the window's first maximum in row-major order (eq. 13.2, PyTorch's rule for ties)."""

    def __init__(self, kernel_size: int | Sequence[int], *, stride: int | Sequence[int] | None = None) -> None:
        super().__init__(kernel_size, stride=stride)
        self.argmax: list[list[list[int]]] = []  # per sample and channel, each window's first maximum r * W + s

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """The maximum of every window of every channel (eq. 13.1), remembering where it is (13.2)."""
        batch = self.images(inputs)
        self.argmax = []
        outputs = []
        for x in batch:
            sample_argmax, sample = [], []
            for image in x:
                pixels = flatten(image)
                # max() returns the first of equal items: the first maximum in row-major window order
                argmax = [max(field, key=pixels.__getitem__) for field in self.fields]
                sample_argmax.append(argmax)
                sample.append(reshape([pixels[p] for p in argmax], self.out_size))
            self.argmax.append(sample_argmax)
            outputs.append(sample)
        return outputs

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dx = dL/da at each window's first maximum, 0 elsewhere, summed where windows overlap
        (eq. 13.2; ``need_input_grad`` is ignored, as in every parameter-free layer)."""
        self.check_gradients(grad_outputs, len(self.argmax))
        _, height, width = self.input_shape
        grad_inputs = []
        for sample_argmax, grads in zip(self.argmax, grad_outputs):
            sample = []
            for argmax, grad in zip(sample_argmax, grads):
                grad_pixels = [0.0] * (height * width)
                for p, delta in zip(argmax, flatten(grad)):
                    grad_pixels[p] += delta
                sample.append(reshape(grad_pixels, (height, width)))
            grad_inputs.append(sample)
        return grad_inputs


class AvgPool2D(Pool2D):
    """a[n][c][i][j] = the mean of the window at (i, j) (eq. 13.3); each of its kh * kw inputs gets
    1 / (kh * kw) of the gradient (eq. 13.4)."""

    def __init__(self, kernel_size: int | Sequence[int], *, stride: int | Sequence[int] | None = None) -> None:
        super().__init__(kernel_size, stride=stride)
        self.area = self.kernel_size[0] * self.kernel_size[1]  # kh * kw, the inputs of a window
        self.batch_size = 0

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """The mean of every window of every channel (eq. 13.3)."""
        batch = self.images(inputs)
        self.batch_size = len(batch)
        outputs = []
        for x in batch:
            sample = []
            for image in x:
                pixels = flatten(image)
                means = [sum(pixels[p] for p in field) / self.area for field in self.fields]
                sample.append(reshape(means, self.out_size))
            outputs.append(sample)
        return outputs

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dx[r][s] = sum over the windows holding (r, s) of dL/da / (kh * kw) (eq. 13.4;
        ``need_input_grad`` is ignored, as in every parameter-free layer)."""
        self.check_gradients(grad_outputs, self.batch_size)
        _, height, width = self.input_shape
        grad_inputs = []
        for grads in grad_outputs:
            sample = []
            for grad in grads:
                grad_pixels = [0.0] * (height * width)
                for field, delta in zip(self.fields, flatten(grad)):
                    share = delta / self.area
                    for p in field:
                        grad_pixels[p] += share
                sample.append(reshape(grad_pixels, (height, width)))
            grad_inputs.append(sample)
        return grad_inputs
