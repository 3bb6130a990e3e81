"""Layers with parameters or randomness: ``Dense`` and ``Dropout`` (spec/math.md, sections 3 and 7)."""

from __future__ import annotations

from collections.abc import Mapping
from operator import mul
from typing import Any

from scratchnet.core import rng
from scratchnet.core.decoding import Cache
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.init import check_initializer, check_std, dense_description
from scratchnet.core.network import ParameterFree
from scratchnet.loops.init import initial_bias, initial_weight
from scratchnet.loops.neuron import Neuron, NonzeroInputs, nonzero
from scratchnet.loops.tensor import (
    Batch,
    Param,
    as_batch,
    as_tensor,
    by_sample,
    elementwise,
    flatten,
    is_sequence_batch,
    reshape,
    shape_of,
)


class Dense:
    """A fully connected layer: a list of ``out_features`` neurons, each seeing all ``in_features`` inputs.

    Parameters are ``weight`` ``(out_features, in_features)`` (row j is neuron j's weights) and
    ``bias`` ``(out_features,)``, which ``bias=False`` leaves out (each neuron's b stays 0, untrained:
    PyTorch's nn.Linear(..., bias=False)). Given a batch of sequences ``(N, T, in_features)`` it is
    applied at every position, as PyTorch's nn.Linear on the last axis (eq. 16.1). ``std`` is the
    spread of ``init="normal"`` (eq. 10.12).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "he_normal",
        std: float | None = None,
        seed: int = 0,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ConfigError(f"Dense needs at least one input and one output, got {in_features} -> {out_features}")
        self.in_features = in_features
        self.out_features = out_features
        self.has_bias = bias
        self.init = check_initializer(init)
        self.std = check_std(init, std)
        weights = initial_weight(init, (out_features, in_features), seed, std=self.std)
        bias_values = initial_bias(init, out_features, seed) if bias else [0.0] * out_features
        self.neurons = [Neuron(row, b) for row, b in zip(weights, bias_values)]
        self.inputs: Batch = []
        self.nonzero_inputs: list[NonzeroInputs] = []
        self.positions = 0  # T of the last forward pass when it read sequences, else 0

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        """z[n][j] = sum_i W[j][i] x[n][i] + b[j]: every neuron on every sample (eq. 3.1); a batch
        of sequences is N * T rows, z[n][t][j] = sum_i W[j][i] x[n][t][i] + b[j] (eq. 16.1)."""
        if is_sequence_batch(inputs):
            outputs = self.forward([row for sample in inputs for row in sample], training)
            self.positions = len(inputs[0])
            return by_sample(outputs, self.positions)
        self.positions = 0
        self.inputs = as_batch(inputs, (self.in_features,), "Dense.forward")
        if not mostly_zeros(self.inputs):  # a language model's rows: every input, in full sums
            self.nonzero_inputs = []
            weights, biases = [neuron.weights for neuron in self.neurons], [neuron.bias for neuron in self.neurons]
            # each neuron j: z[n][j] = sum_i w_i x[n][i] + b over every input, in the order of i (eq. 2.1)
            return [[sum(map(mul, w, x)) + b for w, b in zip(weights, biases)] for x in self.inputs]
        # Once per sample, shared by every neuron, here and in backward: only nonzero x_i add to z.
        self.nonzero_inputs = [nonzero(x) for x in self.inputs]
        return [[neuron.forward(x) for neuron in self.neurons] for x in self.nonzero_inputs]

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """The new position of each sequence, ``(N, 1, in_features)``: z = W x + b at that position
        alone (eq. 16.1, section 24; ``cache`` is unused, taken as every layer's step takes it).

        Each neuron sums over every input in order, where :meth:`forward` sums over the nonzero ones:
        the same number (a zero input adds nothing), but a language model's rows have no zeros to skip,
        and the plain sum is several times faster there."""
        if any(len(sample) != 1 or len(sample[0]) != self.in_features for sample in inputs):
            raise ShapeError(f"Dense.step: expects one new position (N, 1, {self.in_features}), got {shape_of(inputs)}")
        return [[[sum(map(mul, neuron.weights, x)) + neuron.bias for neuron in self.neurons]] for (x,) in inputs]

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """Given dL/dz, sum each neuron's gradients over the batch and return dL/dx (eq. 3.2-3.4).

        With ``need_input_grad=False`` (the first layer: nobody needs dL/dx of the data) dL/dx is
        not computed and an empty list is returned.
        """
        if self.positions:  # sequences: N * T rows, as in forward (eq. 16.1)
            rows = [row for sample in grad_outputs for row in sample]
            positions, self.positions = self.positions, 0
            grad_rows = self.backward(rows, need_input_grad)
            self.positions = positions
            return by_sample(grad_rows, positions) if need_input_grad else []
        if len(grad_outputs) != len(self.inputs):
            raise ShapeError(f"Dense.backward: {len(grad_outputs)} gradient rows for a batch of {len(self.inputs)}")
        if not self.nonzero_inputs:  # forward summed every input
            return self.backward_all(grad_outputs, need_input_grad)
        for neuron in self.neurons:
            neuron.zero_grad()
        grad_inputs = [[0.0] * self.in_features for _ in self.inputs] if need_input_grad else []
        for n, (x, deltas) in enumerate(zip(self.nonzero_inputs, grad_outputs)):
            grad_x = grad_inputs[n] if need_input_grad else None
            for neuron, delta in zip(self.neurons, deltas):
                neuron.backward(x, delta, grad_x)
        return grad_inputs

    def backward_all(self, grad_outputs: Batch, need_input_grad: bool) -> Batch:
        """:meth:`backward` over every input, each sum over the batch at once: the same numbers as
        the sample-by-sample sums of Neuron.backward, in the same order (eq. 2.2, 3.2-3.4)."""
        x_columns = list(zip(*self.inputs))  # x_columns[i][n] = x[n][i]
        for neuron, deltas in zip(self.neurons, zip(*grad_outputs)):  # deltas[n] = dL/dz[n][j]
            if not any(deltas):  # e.g. a ReLU that fired for no sample: the neuron's gradients are 0
                neuron.zero_grad()
                continue
            neuron.grad_weights = [sum(map(mul, deltas, x_i)) for x_i in x_columns]  # sum_n delta[n] x[n][i]
            neuron.grad_bias = sum(deltas)  # sum_n delta[n]
        if not need_input_grad:
            return []
        w_columns = list(zip(*(neuron.weights for neuron in self.neurons)))  # w_columns[i][j] = W[j][i]
        return [[sum(map(mul, deltas, w_i)) for w_i in w_columns] for deltas in grad_outputs]  # sum_j delta_j W[j][i]

    def params(self) -> dict[str, Param]:
        """Copies of ``weight`` (one row per neuron) and ``bias`` (when the layer has one)."""
        named: dict[str, Param] = {"weight": [list(n.weights) for n in self.neurons]}
        if self.has_bias:
            named["bias"] = [n.bias for n in self.neurons]
        return named

    def grads(self) -> dict[str, Param]:
        """Copies of dL/dW and dL/db from the last backward pass, shaped like :meth:`params`."""
        named: dict[str, Param] = {"weight": [list(n.grad_weights) for n in self.neurons]}
        if self.has_bias:
            named["bias"] = [n.grad_bias for n in self.neurons]
        return named

    def set_params(self, named: Mapping[str, Any]) -> None:
        """Replace ``weight`` and ``bias`` (when the layer has one) with the given values (nested lists
        or anything iterable)."""
        given_bias = named["bias"] if self.has_bias else [0.0] * self.out_features
        try:
            weight = as_tensor(named["weight"], (self.out_features, self.in_features), "weight")
            bias = as_tensor(given_bias, (self.out_features,), "bias")
        except ShapeError:
            raise ShapeError(
                f"Dense.set_params: weight {shape_of(named['weight'])} and bias {shape_of(given_bias)} do not fit "
                f"({self.out_features}, {self.in_features}) and ({self.out_features},)"
            ) from None
        for neuron, row, b in zip(self.neurons, weight, bias):
            neuron.weights, neuron.bias = row, b

    def describe(self) -> dict[str, Any]:
        return dense_description(self.in_features, self.out_features, self.has_bias, self.init, self.std)


def mostly_zeros(batch: Batch) -> bool:
    """Whether at least 3 in 4 inputs of a batch of rows are 0, as a digit's pixels are (about 80%):
    then Dense's sums skip them (neuron.py's ``nonzero``). Else, a ReLU's outputs (about half 0) or
    a language model's rows, the sums over every input cost less in Python than the skipping."""
    zeros: int = sum(row.count(0.0) for row in batch)
    return 4 * zeros >= 3 * len(batch) * len(batch[0])


class Dropout(ParameterFree[Param]):
    """Inverted dropout: in training, each input is kept with probability 1 - rate and scaled by
    1 / (1 - rate); at inference it is the identity (eq. 7.3).

    The mask of the k-th training forward pass comes from stream k of ``seed`` (see scratchnet.core.rng),
    so both backends drop exactly the same units.
    """

    def __init__(self, rate: float, *, seed: int = 0) -> None:
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.calls = 0  # training forward passes so far: the stream of the next mask
        self.mask: Batch = []

    def forward(self, inputs: Batch, training: bool = False) -> Batch:
        if not training or self.rate == 0.0:
            self.mask = []
            return inputs
        # One draw per input, in C order over the whole batch: input k is kept when draw k >= rate.
        draws = rng.uniforms(self.seed, self.calls, len(flatten(inputs)))
        self.calls += 1
        scale = 1.0 / (1.0 - self.rate)
        self.mask = reshape([scale if u >= self.rate else 0.0 for u in draws], shape_of(inputs))
        outputs: Batch = elementwise(lambda x, m: x * m, inputs, self.mask)
        return outputs

    def step(self, inputs: Batch, cache: Cache) -> Batch:
        """Decoding is inference, where dropout is the identity (spec/math.md, section 24; ``cache`` is
        unused, taken as every layer's step takes it)."""
        return self.forward(inputs)

    def backward(self, grad_outputs: Batch, need_input_grad: bool = True) -> Batch:
        """dL/dx = dL/da * mask (``need_input_grad`` is ignored: this is all the layer computes)."""
        if not self.mask:
            return grad_outputs
        grad_inputs: Batch = elementwise(lambda g, m: g * m, grad_outputs, self.mask)
        return grad_inputs

    def describe(self) -> dict[str, Any]:
        return {"type": "Dropout", "rate": self.rate, "seed": self.seed}
