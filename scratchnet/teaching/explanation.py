"""What :mod:`scratchnet.teaching.explain` finds out about one prediction, as plain records, and the
table naming each loss's equation in ``spec/math.md`` (the layer types' are in their explainers,
:mod:`scratchnet.teaching.layer_explainers`).
:mod:`scratchnet.teaching.explain_text` turns the records into text; ``scratchnet serve`` into JSON.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

LOSSES: dict[str, tuple[str, str, str]] = {  # loss type: (equation, value function, gradient equation)
    "CrossEntropy": ("5.2", "CrossEntropy.value, log_sum_exp", "5.3"),
    "MeanSquaredError": ("5.4", "MeanSquaredError.value", "5.4"),
    "BinaryCrossEntropy": ("5.5", "BinaryCrossEntropy.value", "5.6"),
}
SMOOTHED = ("5.7", "CrossEntropy.value, log_sum_exp", "5.8")  # cross-entropy with label smoothing


def loss_equations(loss: object) -> tuple[str, str, str] | None:
    """The LOSSES entry of a built loss (eq. 5.7 and 5.8 for a label-smoothed cross-entropy), or None."""
    kind = type(loss).__name__
    if kind == "CrossEntropy" and float(getattr(loss, "label_smoothing", 0.0)) != 0.0:
        return SMOOTHED
    return LOSSES.get(kind)


@dataclass(frozen=True)
class Term:
    """One term w[i] * x[i] of a weighted sum (eq. 2.1)."""

    index: int
    weight: float
    input: float
    product: float


@dataclass(frozen=True)
class WeightGradient:
    """dL/dw[i] for one weight (eq. 2.2, plus the penalties 7.1/7.2 when the model has them)."""

    index: int
    input: float
    weight: float
    gradient: float


@dataclass(frozen=True)
class LayerOutput:
    """One layer of the forward pass (eq. 6): its index, a short name and its outputs for this input
    (flat, in C order; ``shape`` is their shape, ``(C, H, W)`` for feature maps)."""

    index: int
    name: str
    kind: str
    outputs: list[float]
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Backprop:
    """How the loss reaches one neuron: delta = dL/dz and the gradients of its parameters."""

    delta: float  # dL/dz for this neuron (eq. 2.2): equal to dL/db
    how: list[tuple[str, str, float]]  # (equation, text, value) steps from the loss to delta
    largest: list[WeightGradient]  # the weights with the largest |dL/dw|
    zero_inputs: int  # weights whose input is 0: dL/dw = delta * 0 = 0 (without penalties)
    grad_bias: float
    penalties: str  # the l2/l1 terms that are part of dL/dw (eq. 7.1, 7.2), "" without penalties


@dataclass(frozen=True)
class NeuronExplanation:
    """One neuron's forward computation (eq. 2.1 and its activation) and, with a label, its gradients."""

    layer: int  # index of its Dense layer in network.layers
    neuron: int
    why: str  # why this neuron was chosen
    output: bool  # whether it is a neuron of the last Dense layer (one per class)
    in_features: int
    input_name: str  # what its inputs are: "pixel" or "a of layer 1 (ReLU)"
    pixels: bool  # inputs are the pixels of a grey image (so an index is a (row, column) of ``grid``)
    terms: list[Term]  # the largest |w[i] * x[i]|, largest first
    rest_count: int
    rest_sum: float
    zero_inputs: int
    weighted_sum: float  # sum over all i of w[i] * x[i]
    bias: float
    z: float  # Neuron.forward
    activation: str  # activation layer type after the Dense layer ("Identity" when none)
    activation_layer: int | None
    a: float  # the activation's output for this neuron (p[j] after a Softmax)
    backprop: Backprop | None
    grid: tuple[int, ...] = ()  # the shape the inputs had before a Flatten ((28, 28) for pixels): names an index
    then: str = ""  # where z goes when no activation follows directly ("" when one does, or none at all)

    @property
    def unit(self) -> tuple[int, ...]:
        """Its place in its layer's output, as a unit of any layer is named: ``(neuron,)``."""
        return (self.neuron,)


Unit = tuple[int, int, int]
"""(channel, row, column) of one unit of a feature map."""


@dataclass(frozen=True)
class FeatureMaps:
    """The output of one layer for one input, channel by channel: ``maps[c][row][col]``."""

    layer: int  # the layer whose output this is
    name: str  # e.g. "ReLU" (the activation after a Conv2D)
    maps: list[list[list[float]]]
    low: float  # the smallest and largest value over every channel: the shading's one scale
    high: float


@dataclass(frozen=True)
class WindowTerm:
    """One term w[o][c][u][v] * x[c][r][s] of a convolution unit's weighted sum (eq. 12.1), where the
    kernel tap (u, v) of the window at (i, j) reads input row r = i*sh + u - ph, column s = j*sw + v - pw."""

    tap: int  # the weight's index in the neuron's flat weights, (c * kh + u) * kw + v
    channel: int
    u: int
    v: int
    row: int
    col: int
    weight: float
    input: float
    product: float


@dataclass(frozen=True)
class ConvUnitExplanation:
    """One output unit z[o][i][j] of a Conv2D layer: neuron o on the window at (i, j) (eq. 12.1)."""

    layer: int
    unit: Unit  # (o, i, j)
    why: str
    input_name: str
    input_shape: tuple[int, ...]  # (C, H, W) of the layer's input
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    terms: list[WindowTerm]  # the largest |w * x|, largest first
    rest_count: int
    rest_sum: float
    zero_inputs: int  # window inputs equal to 0: they add nothing
    padded: int  # kernel taps on the zero padding (eq. 12.3): they read 0 and add nothing
    weighted_sum: float
    bias: float
    z: float  # Neuron.forward on the window, as Conv2D.forward computes it
    activation: str  # the activation layer directly after it ("" when there is none)
    activation_layer: int | None
    a: float | None
    then: str  # where z goes when no activation follows directly
    maps: FeatureMaps  # the feature maps drawn with it (the output of its block: conv, batch norm, activation)
    drawn: list[int]  # the channels drawn: the first few, and the unit's own


@dataclass(frozen=True)
class PoolUnitExplanation:
    """One output unit a[c][i][j] of a MaxPool2D or AvgPool2D layer: one window of one channel (eq. 13.1, 13.3)."""

    layer: int
    kind: str  # "MaxPool2D" or "AvgPool2D"
    unit: Unit
    why: str
    input_name: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    rows: tuple[int, int]  # the window's first and last input row
    cols: tuple[int, int]
    window: list[list[float]]  # its inputs, row by row
    chosen: tuple[int, int] | None  # (row, col) of the input MaxPool2D.forward chose: the first maximum
    total: float  # sum of the window (AvgPool2D)
    a: float


@dataclass(frozen=True)
class NormUnitExplanation:
    """One unit of a BatchNorm layer at inference: its channel's running statistics applied (eq. 15.6)."""

    layer: int
    unit: tuple[int, ...]  # (c,) or (c, i, j)
    why: str
    input_name: str
    x: float
    mean: float  # running_mean[c]
    var: float  # running_var[c]
    eps: float
    x_hat: float  # BatchNorm.x_hat of the pass (eq. 15.3 with the running statistics)
    gamma: float
    beta: float
    y: float  # the layer's output
    activation: str
    activation_layer: int | None
    a: float | None
    then: str


class UnitExplanation(Protocol):
    """What every explained unit of a layer explained unit by unit (not neuron by neuron) has: the
    records above, and those a new layer type's explainer returns (docs/layers.md)."""

    @property
    def layer(self) -> int: ...
    @property
    def unit(self) -> tuple[int, ...]: ...  # its place in the layer's output: (c,) or (c, i, j)
    @property
    def why(self) -> str: ...
    @property
    def input_name(self) -> str: ...


@dataclass(frozen=True)
class Explanation:
    """Everything :func:`format_explanation` prints about one input."""

    source: str
    label: int | None
    class_names: tuple[str, ...]
    layers: list[LayerOutput]
    neurons: list[NeuronExplanation]
    units: list[UnitExplanation]  # units of the layers explained unit by unit (Conv2D, pooling, BatchNorm), in order
    logits: list[float]  # the input of the final Softmax/Sigmoid (the z of the output layer)
    outputs: list[float]  # the network's output: probabilities after a Softmax
    output_kind: str
    predicted: int
    loss_kind: str
    loss: float | None  # the data loss for the label (eq. 5.x), without penalties
    penalty: float  # l2/l1 penalty (eq. 7.1, 7.2), added to the loss in training
    log_sum_exp: float | None  # logsumexp(z) for cross-entropy (eq. 5.2)
    label_smoothing: float = 0.0  # cross-entropy's eps (eq. 5.7), 0 without


def position(p: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The multi-index of flat index ``p`` in C order: (c, i, j) for a (C, H, W) shape."""
    index = []
    for size in reversed(shape):
        p, rest = divmod(p, size)
        index.append(rest)
    return tuple(reversed(index))
