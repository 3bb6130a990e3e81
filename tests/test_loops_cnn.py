"""The loops backend's convolutional layers (spec/math.md, sections 12-15): Conv2D, MaxPool2D,
AvgPool2D, Flatten and BatchNorm.

Every expectation is independent of the code under test: numbers worked out by hand (the spec's
worked example), central finite differences, the statistics module, and PyTorch in float64 where it
is installed (those tests skip cleanly without it).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from subprocesses import run_without

from scratchnet.builders import build_network
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.interface import Layer
from scratchnet.core.registry import window_output
from scratchnet.loops import LAYERS, AvgPool2D, BatchNorm, Conv2D, Dense, Flatten, MaxPool2D
from scratchnet.loops.init import initial_bias, initial_weight
from scratchnet.loops.tensor import Batch, Param, flatten, reshape, shape_of

Shape = tuple[int, ...]
Pair = tuple[int, int]
FD_STEP = 1e-5
FD_RTOL = 1e-6
FD_ATOL = 1e-8
TORCH_TOL = 1e-12


def random_tensor(shape: Shape, seed: int, *, integers: bool = False) -> Any:
    """A nested list of ``shape``: normal numbers, or small integers (which make ties)."""
    generator = random.Random(seed)
    count = math.prod(shape)
    values = [float(generator.randint(-2, 2)) if integers else generator.gauss(0.0, 1.0) for _ in range(count)]
    return reshape(values, shape)


def dot(tensor: Any, weights: Sequence[float]) -> float:
    """sum_k tensor_k * weights_k over the C-order elements: a scalar loss whose dL/d(tensor) is ``weights``."""
    return sum(a * r for a, r in zip(flatten(tensor), weights))


def numeric_gradient(loss: Callable[[list[float]], float], point: Sequence[float]) -> list[float]:
    """(L(p + h e_i) - L(p - h e_i)) / 2h for every coordinate i."""
    grads = []
    for i in range(len(point)):
        up, down = list(point), list(point)
        up[i] += FD_STEP
        down[i] -= FD_STEP
        grads.append((loss(up) - loss(down)) / (2.0 * FD_STEP))
    return grads


def assert_close(analytic: Any, numeric: Sequence[float]) -> None:
    assert flatten(analytic) == pytest.approx(list(numeric), rel=FD_RTOL, abs=FD_ATOL)


def check_gradients_numerically(layer: Any, inputs: Any, training: bool, names: Sequence[str]) -> None:
    """With L = sum(outputs * R) for a fixed random R (so dL/d(outputs) = R), compare the layer's
    backward pass with central differences for its inputs and each array in ``names``."""
    outputs = layer.forward(inputs, training)
    upstream = flatten(random_tensor(shape_of(outputs), 99))
    grad_inputs = layer.backward(reshape(upstream, shape_of(outputs)))
    analytic = layer.grads()
    input_shape = shape_of(inputs)
    assert_close(
        grad_inputs,
        numeric_gradient(lambda x: dot(layer.forward(reshape(x, input_shape), training), upstream), flatten(inputs)),
    )
    for name in names:
        original = layer.params()
        shape = shape_of(original[name])

        def loss(values: list[float], name: str = name, shape: Shape = shape, original: Any = original) -> float:
            layer.set_params({**original, name: reshape(values, shape)})
            return dot(layer.forward(inputs, training), upstream)

        numeric = numeric_gradient(loss, flatten(original[name]))
        layer.set_params(original)
        assert_close(analytic[name], numeric)


# --- (a) the worked example of spec/math.md, section 13, number for number ------------------------------

EXAMPLE_X = [[[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]]]]  # one sample, one channel, 3x3
EXAMPLE_W = [[[[1.0, 2.0], [-1.0, 1.0]]]]
EXAMPLE_B = [1.0]


def example_conv() -> Conv2D:
    conv = Conv2D(1, 1, (2, 2))
    conv.set_params({"weight": EXAMPLE_W, "bias": EXAMPLE_B})
    return conv


def test_worked_example_convolution_then_max_pool() -> None:
    conv, pool = example_conv(), MaxPool2D(2)
    z = conv.forward(EXAMPLE_X)
    assert z == [[[[7.0, 5.0], [1.0, 9.0]]]]
    assert pool.forward(z) == [[[[9.0]]]]
    delta = pool.backward([[[[2.0]]]])
    assert delta == [[[[0.0, 0.0], [0.0, 2.0]]]]
    grad_x = conv.backward(delta)
    assert conv.grads() == {"weight": [[[[2.0, 6.0], [0.0, 2.0]]]], "bias": [2.0]}
    assert grad_x == [[[[0.0, 0.0, 0.0], [0.0, 2.0, 4.0], [0.0, -2.0, 2.0]]]]


def test_worked_example_convolution_then_average_pool() -> None:
    conv, pool = example_conv(), AvgPool2D(2)
    assert pool.forward(conv.forward(EXAMPLE_X)) == [[[[5.5]]]]
    delta = pool.backward([[[[2.0]]]])
    assert delta == [[[[0.5, 0.5], [0.5, 0.5]]]]
    grad_x = conv.backward(delta)
    assert conv.grads() == {"weight": [[[[2.0, 3.0], [1.5, 2.5]]]], "bias": [2.0]}
    assert grad_x == [[[[0.5, 1.5, 1.0], [0.0, 1.5, 1.5], [-0.5, 0.0, 0.5]]]]


def test_zero_padding_reads_zeros_outside_the_image_and_a_stride_skips_positions() -> None:
    x = [[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]]
    shift = [[[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]]  # z[i][j] = xp[i+1][j+2] = x[i][j+1] (12.3)
    conv = Conv2D(1, 1, 3, padding=1)
    conv.set_params({"weight": shift, "bias": [0.5]})
    assert conv.forward(x) == [[[[2.5, 3.5, 0.5], [5.5, 6.5, 0.5], [8.5, 9.5, 0.5]]]]
    strided = Conv2D(1, 1, 3, stride=2, padding=1)  # windows at padded (0, 0), (0, 2), (2, 0), (2, 2) (12.4)
    strided.set_params({"weight": shift, "bias": [0.0]})
    assert strided.forward(x) == [[[[2.0, 0.0], [8.0, 0.0]]]]
    # the gradient of each output lands on the input it read; none on the padding (12.7)
    assert strided.backward([[[[1.0, 10.0], [100.0, 1000.0]]]]) == [
        [[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 100.0, 0.0]]]
    ]
    assert strided.grads()["bias"] == [1111.0]


# --- (b) finite differences of every gradient ------------------------------------------------------


@pytest.mark.parametrize(
    "kernel,stride,padding",
    [((3, 3), (1, 1), (0, 0)), ((3, 2), (2, 1), (1, 0)), ((2, 3), (1, 2), (2, 1)), ((1, 1), (3, 3), (1, 1))],
)
def test_conv_gradients_match_finite_differences(kernel: Pair, stride: Pair, padding: Pair) -> None:
    conv = Conv2D(2, 3, kernel, stride=stride, padding=padding, init="glorot_uniform", seed=4)
    conv.set_params({**conv.params(), "bias": [0.3, -0.2, 0.1]})
    check_gradients_numerically(conv, random_tensor((2, 2, 5, 6), 1), False, ["weight", "bias"])


@pytest.mark.parametrize("pool", [MaxPool2D(2), MaxPool2D((3, 2), stride=(1, 2)), AvgPool2D(2), AvgPool2D(3, stride=1)])
def test_pool_gradients_match_finite_differences(pool: MaxPool2D | AvgPool2D) -> None:
    # normal numbers: no ties, and no two values of a window within 2h of each other
    check_gradients_numerically(pool, random_tensor((2, 3, 5, 6), 2), False, [])


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_match_finite_differences(shape: Shape, training: bool) -> None:
    channels = shape[1]
    norm = BatchNorm(channels, momentum=0.2, eps=0.01)
    norm.set_params(
        {
            "weight": [1.5, -0.5, 0.75][:channels],
            "bias": [0.1, 0.2, -0.3][:channels],
            "running_mean": [0.2, -0.1, 0.4][:channels],
            "running_var": [0.5, 2.0, 1.25][:channels],
        }
    )
    check_gradients_numerically(norm, random_tensor(shape, 3), training, ["weight", "bias"])


def test_flatten_is_c_order_and_its_backward_reshapes_back() -> None:
    x = random_tensor((2, 3, 2, 4), 5)
    layer = Flatten()
    out = layer.forward(x)
    assert shape_of(out) == (2, 24)
    for n in range(2):
        for c in range(3):
            for h in range(2):
                for w in range(4):
                    assert out[n][(c * 2 + h) * 4 + w] == x[n][c][h][w]  # (14.1)
    assert layer.backward(out) == x  # (14.2)
    check_gradients_numerically(layer, x, False, [])


# --- (c) the max-pool tie rule ----------------------------------------------------------------------


def test_max_pool_sends_the_gradient_of_a_tie_to_the_first_maximum() -> None:
    pool = MaxPool2D(2)
    x = [[[[1.0, 3.0, 5.0, 5.0], [3.0, 2.0, 5.0, 5.0]]]]  # two windows: maxima tied at (0,1),(1,0) and all four
    assert pool.forward(x) == [[[[3.0, 5.0]]]]
    assert pool.backward([[[[1.0, 10.0]]]]) == [[[[0.0, 1.0, 10.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]


def test_max_pool_with_overlapping_windows_sums_the_gradients_of_a_shared_maximum() -> None:
    pool = MaxPool2D(2, stride=1)
    x = [[[[0.0, 9.0, 0.0], [1.0, 2.0, 3.0]]]]  # 9 is the maximum of both windows
    assert pool.forward(x) == [[[[9.0, 9.0]]]]
    assert pool.backward([[[[1.0, 2.0]]]]) == [[[[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]]]


# --- (d) output shapes ------------------------------------------------------------------------------


@st.composite
def geometries(draw: st.DrawFn) -> tuple[Pair, Pair, Pair, Pair]:
    """(kernel, stride, padding, input size) with the kernel no larger than the padded input."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(draw(st.integers(max(1, k - 2 * p), 8)) for k, p in zip(kernel, padding))
    return kernel, stride, padding, (size[0], size[1])


@settings(max_examples=40)
@given(geometries(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2))
def test_conv_output_shape_is_the_registrys_window_output(
    geometry: tuple[Pair, Pair, Pair, Pair], in_channels: int, out_channels: int, batch: int
) -> None:
    kernel, stride, padding, (height, width) = geometry
    conv = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding)
    out = conv.forward(random_tensor((batch, in_channels, height, width), 0))
    expected = (
        batch,
        out_channels,
        window_output(height, kernel[0], stride[0], padding[0]),
        window_output(width, kernel[1], stride[1], padding[1]),
    )
    assert shape_of(out) == expected
    description = {
        "input_shape": [in_channels, height, width],
        "layers": [conv.describe(), Flatten().describe()],
        "loss": {"type": "MeanSquaredError"},
    }
    assert plan(description).input_shapes[1] == expected[1:]  # the registry agrees before anything is built


@settings(max_examples=40)
@given(geometries(), st.booleans())
def test_pool_output_shape_is_the_registrys_window_output(
    geometry: tuple[Pair, Pair, Pair, Pair], maximum: bool
) -> None:
    kernel, stride, _, (height, width) = geometry
    height, width = height + kernel[0], width + kernel[1]  # no padding: the kernel must fit the input
    pool = (MaxPool2D if maximum else AvgPool2D)(kernel, stride=stride)
    out = pool.forward(random_tensor((2, 3, height, width), 0))
    expected = (2, 3, window_output(height, kernel[0], stride[0], 0), window_output(width, kernel[1], stride[1], 0))
    assert shape_of(out) == expected
    assert MaxPool2D(kernel).describe()["stride"] == list(kernel)  # stride None: the kernel size


@settings(max_examples=25)
@given(geometries())
def test_a_stride_keeps_every_stride_th_output_of_stride_one(geometry: tuple[Pair, Pair, Pair, Pair]) -> None:
    kernel, (sh, sw), padding, (height, width) = geometry
    x = random_tensor((1, 2, height, width), 6)
    strided = Conv2D(2, 2, kernel, stride=(sh, sw), padding=padding, seed=3).forward(x)
    dense = Conv2D(2, 2, kernel, padding=padding, seed=3).forward(x)  # (12.4): same weights, stride 1
    rows, columns = shape_of(strided)[2:]
    for o in range(2):
        assert strided[0][o] == [[dense[0][o][i * sh][j * sw] for j in range(columns)] for i in range(rows)]


def test_a_kernel_covering_the_whole_input_is_a_dense_layer() -> None:
    conv = Conv2D(2, 3, (3, 4), init="he_uniform", seed=8)
    weight = [flatten(kernel) for kernel in conv.params()["weight"]]
    dense = Dense(24, 3)
    dense.set_params({"weight": weight, "bias": [0.5, -0.5, 0.25]})
    conv.set_params({"weight": conv.params()["weight"], "bias": [0.5, -0.5, 0.25]})
    x = random_tensor((4, 2, 3, 4), 9)
    out = conv.forward(x)
    assert shape_of(out) == (4, 3, 1, 1)
    expected = dense.forward([flatten(sample) for sample in x])
    assert [flatten(sample) for sample in out] == [pytest.approx(row, rel=1e-13) for row in expected]


# --- the layer contract -------------------------------------------------------------------------------


def test_conv_draws_its_initial_parameters_with_the_shared_rules() -> None:
    conv = Conv2D(3, 4, 2, seed=11, init="uniform")
    assert conv.params() == {
        "weight": initial_weight("uniform", (4, 3, 2, 2), 11),
        "bias": initial_bias("uniform", 4, 11),
    }
    assert conv.describe() == {
        "type": "Conv2D",
        "in_channels": 3,
        "out_channels": 4,
        "kernel_size": [2, 2],
        "stride": [1, 1],
        "padding": [0, 0],
        "init": "uniform",
    }
    assert LAYERS["Conv2D"] is Conv2D


def test_every_layer_describes_every_option_as_json_friendly_data() -> None:
    assert MaxPool2D((2, 3)).describe() == {"type": "MaxPool2D", "kernel_size": [2, 3], "stride": [2, 3]}
    assert AvgPool2D(2, stride=1).describe() == {"type": "AvgPool2D", "kernel_size": [2, 2], "stride": [1, 1]}
    assert Flatten().describe() == {"type": "Flatten"}
    assert BatchNorm(4).describe() == {"type": "BatchNorm", "num_features": 4, "momentum": 0.1, "eps": 1e-5}
    conv = Conv2D(1, 2, (3, 1), stride=(2, 1), padding=(1, 0), init="zeros")
    assert conv.describe()["kernel_size"] == [3, 1] and conv.describe()["padding"] == [1, 0]


def test_params_and_grads_are_copies_and_set_params_takes_numpy_arrays() -> None:
    conv = Conv2D(2, 2, 2, seed=1)
    conv.forward(random_tensor((2, 2, 3, 3), 1))
    conv.backward(random_tensor((2, 2, 2, 2), 2))
    grads = conv.grads()
    grads["weight"][0][0][0][0] += 1.0
    assert conv.grads() != grads
    weight = np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2)
    conv.set_params({"weight": weight, "bias": np.array([1.0, 2.0])})
    assert conv.params()["weight"] == weight.tolist() and conv.params()["bias"] == [1.0, 2.0]
    with pytest.raises(ShapeError, match=r"Conv2D.set_params: weight \(2, 2, 2\) and bias"):
        conv.set_params({"weight": np.zeros((2, 2, 2)), "bias": [0.0, 0.0]})

    norm = BatchNorm(2)
    assert norm.params() == {
        "weight": [1.0, 1.0],
        "bias": [0.0, 0.0],
        "running_mean": [0.0, 0.0],
        "running_var": [1.0, 1.0],
    }
    arrays = {name: np.array([0.5, 2.0]) for name in ("weight", "bias", "running_mean", "running_var")}
    norm.set_params(arrays)
    assert norm.params() == {name: [0.5, 2.0] for name in arrays}
    norm.forward([[1.0, 2.0], [3.0, 5.0]], training=True)
    norm.backward([[1.0, 0.0], [0.0, 1.0]])
    assert set(norm.grads()) == {"weight", "bias"}  # the running statistics are not trained
    with pytest.raises(ShapeError, match="BatchNorm.set_params: expected the arrays"):
        norm.set_params({"weight": [1.0, 1.0], "bias": [0.0, 0.0]})


def test_need_input_grad_false_skips_only_the_input_gradient() -> None:
    x = random_tensor((2, 2, 4, 4), 3)
    for layer in (Conv2D(2, 3, 3, padding=1, seed=2), BatchNorm(2)):
        out = layer.forward(x, True)
        upstream = random_tensor(shape_of(out), 4)
        layer.backward(upstream)
        full = layer.grads()
        assert layer.backward(upstream, need_input_grad=False) == []
        assert layer.grads() == full


def test_gradients_are_overwritten_not_accumulated() -> None:
    conv = example_conv()
    for _ in range(2):
        conv.forward(EXAMPLE_X)
        conv.backward([[[[0.0, 0.0], [0.0, 2.0]]]])
    assert conv.grads() == {"weight": [[[[2.0, 6.0], [0.0, 2.0]]]], "bias": [2.0]}


# --- (e) batch-norm running statistics ----------------------------------------------------------------


def test_batch_norm_running_statistics_after_two_training_passes() -> None:
    momentum = 0.3
    norm = BatchNorm(2, momentum=momentum)
    batches = [random_tensor((3, 2, 2, 2), 10), random_tensor((3, 2, 2, 2), 11)]
    for batch in batches:
        norm.forward(batch, training=True)
    for c in range(2):
        values = [[v for sample in batch for row in sample[c] for v in row] for batch in batches]
        mean = (1 - momentum) * momentum * statistics.mean(values[0]) + momentum * statistics.mean(values[1])
        var = (
            (1 - momentum) ** 2 * 1.0
            + (1 - momentum) * momentum * statistics.variance(values[0])  # unbiased: divided by m - 1 (15.5)
            + momentum * statistics.variance(values[1])
        )
        assert norm.running_mean[c] == pytest.approx(mean, rel=1e-13)
        assert norm.running_var[c] == pytest.approx(var, rel=1e-13)
    before = norm.params()
    norm.forward(batches[0], training=False)  # inference leaves them alone (15.6)
    assert norm.params() == before


def test_batch_norm_normalizes_with_the_biased_variance_in_training() -> None:
    norm = BatchNorm(1, eps=1e-3)
    batch = [[1.0], [2.0], [4.0], [9.0]]
    out = norm.forward(batch, training=True)
    mean, var = statistics.mean([1.0, 2.0, 4.0, 9.0]), statistics.pvariance([1.0, 2.0, 4.0, 9.0])
    assert [row[0] for row in out] == pytest.approx([(x - mean) / math.sqrt(var + 1e-3) for x in (1, 2, 4, 9)])
    inference = norm.forward(batch)  # with running_mean = 0.1 * mean, running_var = 0.9 + 0.1 * unbiased
    running_var = 0.9 + 0.1 * statistics.variance([1.0, 2.0, 4.0, 9.0])
    expected = [(x - 0.1 * mean) / math.sqrt(running_var + 1e-3) for x in (1, 2, 4, 9)]
    assert [row[0] for row in inference] == pytest.approx(expected, rel=1e-13)


# --- (g) bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer,inputs,message",
    [
        (Conv2D(3, 2, 2), random_tensor((2, 1, 4, 4), 0), r"Conv2D.forward: expects a batch of \(3, height, width\)"),
        (Conv2D(1, 2, 2), random_tensor((2, 16), 0), r"Conv2D.forward: expects .* got a batch of shape \(2, 16\)"),
        (Conv2D(1, 2, 5, padding=1), random_tensor((1, 1, 2, 2), 0), r"kernel \[5, 5\] is larger than the padded"),
        (Conv2D(1, 2, 2), [], "Conv2D.forward: the batch is empty"),
        (Conv2D(1, 2, 2), [[[[1.0, 2.0], [3.0, 4.0]]], [[[1.0, 2.0]]]], "Conv2D.forward: sample 1"),
        (MaxPool2D(2), random_tensor((2, 3, 4), 0), r"MaxPool2D.forward: expects a batch of \(channels, height"),
        (AvgPool2D(3), random_tensor((1, 1, 2, 5), 0), "AvgPool2D.forward: kernel"),
        (BatchNorm(3), random_tensor((4, 2), 0), r"BatchNorm.forward: expects a batch of \(3,\) or \(3, height"),
        (BatchNorm(3), random_tensor((4, 3, 5), 0), r"got a batch of shape \(4, 3, 5\)"),
        (Flatten(), [1.0, 2.0], "Flatten.forward: expects a batch of samples with at least one axis"),
    ],
)
def test_bad_inputs_raise_a_one_line_shape_error_naming_the_layer(layer: Any, inputs: Any, message: str) -> None:
    with pytest.raises(ShapeError, match=message) as error:
        layer.forward(inputs, True)
    assert "\n" not in str(error.value)


def test_batch_norm_refuses_to_train_on_one_value_per_channel_but_infers_on_it() -> None:
    norm = BatchNorm(3)
    with pytest.raises(ShapeError, match="training needs more than 1 value per channel") as error:
        norm.forward([[1.0, 2.0, 3.0]], training=True)
    assert "\n" not in str(error.value)
    assert norm.forward([[1.0, 2.0, 3.0]])[0] == pytest.approx([x / math.sqrt(1.0 + 1e-5) for x in (1, 2, 3)])
    assert len(norm.forward([[[[1.0, 2.0]]] * 3], training=True)) == 1  # an image has H * W values: fine


def test_backward_checks_the_gradient_shape() -> None:
    conv = Conv2D(1, 2, 2)
    conv.forward(random_tensor((2, 1, 3, 3), 0))
    with pytest.raises(ShapeError, match=r"Conv2D.backward: expected gradients of shape \(2, 2, 2, 2\)"):
        conv.backward(random_tensor((2, 2, 3, 3), 0))
    pool = MaxPool2D(2)
    pool.forward(random_tensor((1, 1, 4, 4), 0))
    with pytest.raises(ShapeError, match=r"MaxPool2D.backward: expected gradients of shape \(1, 1, 2, 2\)"):
        pool.backward(random_tensor((1, 1, 4, 4), 0))


def test_bad_options_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="Conv2D kernel_size must be an integer >= 1"):
        Conv2D(1, 1, 0)
    with pytest.raises(ConfigError, match="Conv2D padding must be an integer >= 0"):
        Conv2D(1, 1, 2, padding=(-1, 0))
    with pytest.raises(ConfigError, match="MaxPool2D stride"):
        MaxPool2D(2, stride=(1, 2, 3))
    with pytest.raises(ConfigError, match="momentum"):
        BatchNorm(2, momentum=1.5)
    with pytest.raises(ConfigError, match="unknown initializer"):
        Conv2D(1, 1, 2, init="orthogonal")


# --- a whole network, and no NumPy ---------------------------------------------------------------------

CNN = {
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"type": "BatchNorm", "num_features": 3},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Conv2D", "in_channels": 3, "out_channels": 2, "kernel_size": [2, 3], "stride": [2, 1]},
        {"type": "AvgPool2D", "kernel_size": [1, 2]},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": 4, "out_features": 3},
        {"type": "Softmax"},
    ],
    "loss": {"type": "CrossEntropy"},
}


def test_a_cnn_builds_from_the_registry_and_trains() -> None:
    from scratchnet.loops import SGD

    net = build_network(CNN, backend="loops", seed=5)
    assert [type(layer).__name__ for layer in net.layers][:2] == ["Conv2D", "BatchNorm"]
    assert net.describe()["layers"][0] == {
        "type": "Conv2D",
        "in_channels": 1,
        "out_channels": 3,
        "kernel_size": [3, 3],
        "stride": [1, 1],
        "padding": [1, 1],
        "init": "he_normal",
    }
    inputs = random_tensor((6, 1, 8, 8), 12)
    labels = [0, 1, 2, 0, 1, 2]
    optimizer = SGD(lr=0.2)
    first = net.loss(net.forward(inputs, training=True), labels)
    for _ in range(15):
        net.loss(net.forward(inputs, training=True), labels)
        net.backward()
        optimizer.step(net)
    assert net.loss(net.forward(inputs, training=True), labels) < first
    assert net.params()["1.running_var"] != [1.0, 1.0, 1.0]  # the layer moved its own statistics


NO_NUMPY = """
    from scratchnet.builders import build_network
    from scratchnet.loops import SGD

    net = build_network(ARCHITECTURE, backend="loops", seed=1)
    inputs = [[[[float((n + r * s) % 3) for s in range(8)] for r in range(8)]] for n in range(4)]
    out = net.forward(inputs, training=True)
    net.loss(out, [0, 1, 2, 0])
    net.backward()
    SGD(lr=0.1).step(net)
    assert "numpy" not in sys.modules
    print("cnn without numpy")
    """


def test_the_convolutional_layers_run_without_numpy() -> None:
    result = run_without("numpy", f"ARCHITECTURE = {CNN!r}\n" + NO_NUMPY.replace("\n    ", "\n"))
    assert result.returncode == 0, result.stderr
    assert "cnn without numpy" in result.stdout


def _the_layers_satisfy_the_protocol(
    a: Conv2D, b: MaxPool2D, c: AvgPool2D, d: Flatten, e: BatchNorm
) -> list[Layer[Batch, Param]]:
    return [a, b, c, d, e]  # mypy checks this; nothing runs


# --- (f) against PyTorch, in float64 ----------------------------------------------------------------------


def assert_torch_close(ours: Any, theirs: Any) -> None:
    expected = theirs.detach().tolist() if hasattr(theirs, "detach") else theirs
    assert shape_of(ours) == shape_of(expected)
    assert flatten(ours) == pytest.approx(flatten(expected), rel=TORCH_TOL, abs=TORCH_TOL)


@settings(max_examples=30)
@given(geometries(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.booleans())
def test_conv_matches_torch(
    geometry: tuple[Pair, Pair, Pair, Pair], in_channels: int, out_channels: int, batch: int, integers: bool
) -> None:
    torch = pytest.importorskip("torch")
    kernel, stride, padding, (height, width) = geometry
    conv = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding, init="uniform", seed=batch)
    x = random_tensor((batch, in_channels, height, width), 7, integers=integers)  # integers: zeros to skip
    out = conv.forward(x)
    upstream = random_tensor(shape_of(out), 8)
    grad_x = conv.backward(upstream)
    params = {
        name: torch.tensor(value, dtype=torch.float64, requires_grad=True) for name, value in conv.params().items()
    }
    x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out_t = torch.nn.functional.conv2d(x_t, params["weight"], params["bias"], stride=stride, padding=padding)
    out_t.backward(torch.tensor(upstream, dtype=torch.float64))
    assert_torch_close(out, out_t)
    assert_torch_close(grad_x, x_t.grad)
    assert_torch_close(conv.grads()["weight"], params["weight"].grad)
    assert_torch_close(conv.grads()["bias"], params["bias"].grad)


@settings(max_examples=30)
@given(geometries(), st.booleans(), st.booleans())
def test_pools_match_torch_even_with_ties(
    geometry: tuple[Pair, Pair, Pair, Pair], maximum: bool, integers: bool
) -> None:
    torch = pytest.importorskip("torch")
    kernel, stride, _, (height, width) = geometry
    height, width = height + kernel[0], width + kernel[1]
    pool = (MaxPool2D if maximum else AvgPool2D)(kernel, stride=stride)
    x = random_tensor((2, 2, height, width), 3, integers=integers)  # integers in -2..2: many ties
    out = pool.forward(x)
    upstream = random_tensor(shape_of(out), 4)
    grad_x = pool.backward(upstream)
    x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    module = (torch.nn.MaxPool2d if maximum else torch.nn.AvgPool2d)(kernel, stride=stride)
    out_t = module(x_t)
    out_t.backward(torch.tensor(upstream, dtype=torch.float64))
    assert_torch_close(out, out_t)
    assert_torch_close(grad_x, x_t.grad)


def test_flatten_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = random_tensor((2, 3, 4, 5), 1)
    assert Flatten().forward(x) == torch.nn.Flatten()(torch.tensor(x, dtype=torch.float64)).tolist()


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 5)])
def test_batch_norm_matches_torch_in_training_and_inference(shape: Shape) -> None:
    torch = pytest.importorskip("torch")
    channels = shape[1]
    norm = BatchNorm(channels, momentum=0.25, eps=1e-4)
    module = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
        channels, momentum=0.25, eps=1e-4, dtype=torch.float64
    )
    gamma, beta = [1.5, -0.5, 2.0], [0.1, 0.2, -0.3]
    norm.set_params({**norm.params(), "weight": gamma, "bias": beta})
    with torch.no_grad():
        module.weight.copy_(torch.tensor(gamma, dtype=torch.float64))
        module.bias.copy_(torch.tensor(beta, dtype=torch.float64))
    for step, training in enumerate([True, True, False]):
        module.train(training)
        module.zero_grad()
        x = random_tensor(shape, 20 + step)
        out = norm.forward(x, training)
        upstream = random_tensor(shape, 30 + step)
        grad_x = norm.backward(upstream)
        x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        out_t = module(x_t)
        out_t.backward(torch.tensor(upstream, dtype=torch.float64))
        assert_torch_close(out, out_t)
        assert_torch_close(grad_x, x_t.grad)
        assert_torch_close(norm.grads()["weight"], module.weight.grad)
        assert_torch_close(norm.grads()["bias"], module.bias.grad)
        assert_torch_close(norm.params()["running_mean"], module.running_mean)
        assert_torch_close(norm.params()["running_var"], module.running_var)
