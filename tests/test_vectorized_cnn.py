"""The vectorized convolutional layers (spec/math.md, sections 12-15), checked against expectations
that do not come from their own code: central finite differences of every gradient (float64),
PyTorch's functional ops (float64, within 1e-12 relative), and values worked out by hand. Also the
memory layouts they hand each other, float32, the network's flat storage, and bad shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.interface import Layer
from scratchnet.vectorized import LAYERS, AvgPool2D, BatchNorm, Conv2D, Flatten, MaxPool2D, ReLU
from scratchnet.vectorized.init import initial_bias, initial_weight
from scratchnet.vectorized.tensor import Array

RTOL = 1e-12  # against PyTorch, float64
FD_STEP = 1e-6
FD_TOL = 1e-7  # central differences of smooth float64 losses of size ~1


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def close(actual: Any, expected: Any, rtol: float = RTOL) -> None:
    """Within ``rtol`` of the largest expected value, elementwise (a relative error that a value near 0
    does not blow up), and of the same shape."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def numeric_grad(loss: Callable[[], float], array: Array) -> Array:
    """dL/d(array) by central differences, perturbing ``array`` in place one value at a time."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + FD_STEP
        plus = loss()
        array[index] = saved - FD_STEP
        minus = loss()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * FD_STEP)
    return grad


def check_gradients(layer: Any, inputs: Array, training: bool = False, seed: int = 0) -> None:
    """Every gradient of ``layer`` (inputs and trained arrays) against finite differences of
    L = sum(forward(x) * R) for a fixed random R, so that dL/d(output) = R."""
    outputs = layer.forward(inputs, training)
    weights = rng(seed).standard_normal(outputs.shape)

    def loss() -> float:
        return float(np.sum(layer.forward(inputs, training) * weights))

    layer.forward(inputs, training)
    grad_inputs = layer.backward(weights)
    analytic = {"inputs": grad_inputs, **{name: value.copy() for name, value in layer.grads().items()}}
    numeric = {"inputs": numeric_grad(loss, inputs)}
    for name in layer.grads():
        numeric[name] = numeric_grad(loss, layer.params()[name])
    for name in numeric:
        assert analytic[name].shape == numeric[name].shape, name
        np.testing.assert_allclose(analytic[name], numeric[name], rtol=FD_TOL, atol=FD_TOL, err_msg=name)


def channels_last(x: Array) -> Array:
    """The same (N, C, H, W) values laid out as NHWC in memory: results must not depend on the layout."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def batch_last(x: Array) -> Array:
    """The same values laid out as CHWN in memory, the layout these layers hand each other."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


# --- finite differences ---------------------------------------------------------------------------

CONVOLUTIONS = [
    # (in, out, kernel, stride, padding, input (N, H, W))
    (1, 2, 3, 1, 0, (2, 5, 6)),
    (3, 2, (2, 3), (2, 1), (1, 2), (2, 5, 4)),
    (2, 3, 3, (1, 2), 1, (3, 4, 5)),
    (2, 2, (1, 1), 3, 0, (2, 7, 5)),
]


@pytest.mark.parametrize("in_channels,out_channels,kernel,stride,padding,size", CONVOLUTIONS)
@pytest.mark.parametrize("layout", [lambda x: x, channels_last, batch_last])
def test_conv2d_gradients_match_finite_differences(
    in_channels: int,
    out_channels: int,
    kernel: Any,
    stride: Any,
    padding: Any,
    size: tuple[int, int, int],
    layout: Callable[[Array], Array],
) -> None:
    conv = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding, seed=3)
    conv.bias[...] = rng(1).standard_normal(out_channels)  # not zeros, so that the bias counts
    n, h, w = size
    inputs = layout(rng(2).standard_normal((n, in_channels, h, w)))
    check_gradients(conv, inputs)


@pytest.mark.parametrize("layer_class", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(
    "kernel,stride,size",
    [(2, None, (6, 6)), (2, None, (5, 7)), (3, 1, (5, 6)), ((2, 3), (1, 2), (5, 7)), (2, 3, (7, 8))],
)
def test_pooling_gradients_match_finite_differences(
    layer_class: type, kernel: Any, stride: Any, size: tuple[int, int]
) -> None:
    layer = layer_class(kernel, stride=stride)
    # distinct values, more than FD_STEP apart, so that no maximum changes place under the step
    values = rng(4).permutation(2 * 3 * size[0] * size[1]).astype(np.float64) * 0.01
    check_gradients(layer, batch_last(values.reshape(2, 3, *size)))


def test_flatten_gradient_matches_finite_differences_for_each_layout() -> None:
    x = rng(5).standard_normal((3, 2, 3, 4))
    for inputs in (x.copy(), channels_last(x), batch_last(x)):
        check_gradients(Flatten(), inputs)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_match_finite_differences_in_training_and_inference(
    shape: tuple[int, ...], training: bool
) -> None:
    norm = BatchNorm(shape[1], momentum=0.3)
    norm.weight[...] = rng(6).uniform(0.5, 2.0, shape[1])
    norm.bias[...] = rng(7).standard_normal(shape[1])
    norm.running_mean[...] = rng(8).standard_normal(shape[1])
    norm.running_var[...] = rng(9).uniform(0.5, 2.0, shape[1])
    inputs = rng(10).standard_normal(shape) * 2.0 + 1.0
    check_gradients(norm, batch_last(inputs) if len(shape) == 4 else inputs, training)


# --- against PyTorch ------------------------------------------------------------------------------


@pytest.mark.parametrize("in_channels,out_channels,kernel,stride,padding,size", CONVOLUTIONS)
@pytest.mark.parametrize("layout", [lambda x: x, channels_last])
def test_conv2d_matches_pytorch(
    in_channels: int,
    out_channels: int,
    kernel: Any,
    stride: Any,
    padding: Any,
    size: tuple[int, int, int],
    layout: Callable[[Array], Array],
) -> None:
    torch = pytest.importorskip("torch")
    conv = Conv2D(in_channels, out_channels, kernel, stride=stride, padding=padding, seed=11)
    conv.bias[...] = rng(12).standard_normal(out_channels)
    n, h, w = size
    x = rng(13).standard_normal((n, in_channels, h, w))
    tx = torch.tensor(x, requires_grad=True)
    tw, tb = torch.tensor(conv.weight, requires_grad=True), torch.tensor(conv.bias, requires_grad=True)
    tz = torch.nn.functional.conv2d(tx, tw, tb, stride=conv.stride, padding=conv.padding)
    grad = rng(14).standard_normal(tuple(tz.shape))
    tz.backward(torch.tensor(grad))
    z = conv.forward(layout(x))
    close(z, tz.detach().numpy())
    close(conv.backward(layout(grad)), tx.grad.numpy())
    close(conv.grad_weight, tw.grad.numpy())
    close(conv.grad_bias, tb.grad.numpy())


@pytest.mark.parametrize("max_pool", [True, False])
@pytest.mark.parametrize(
    "kernel,stride,size",
    [(2, None, (8, 8)), (2, None, (7, 9)), (3, 1, (6, 7)), (3, 2, (7, 7)), ((2, 3), (1, 2), (6, 8)), (2, 3, (8, 7))],
)
def test_pooling_matches_pytorch_including_overlapping_windows(
    max_pool: bool, kernel: Any, stride: Any, size: tuple[int, int]
) -> None:
    torch = pytest.importorskip("torch")
    layer = MaxPool2D(kernel, stride=stride) if max_pool else AvgPool2D(kernel, stride=stride)
    x = rng(15).standard_normal((3, 4, *size))
    x[:, :2, :3] = 0.0  # ties, as after a ReLU
    x[0, 0, 4] = 1.5  # a whole row of equal maxima
    tx = torch.tensor(x, requires_grad=True)
    function = torch.nn.functional.max_pool2d if max_pool else torch.nn.functional.avg_pool2d
    ta = function(tx, layer.kernel_size, layer.stride)
    grad = rng(16).standard_normal(tuple(ta.shape))
    ta.backward(torch.tensor(grad))
    close(layer.forward(x, training=True), ta.detach().numpy())
    close(layer.backward(grad), tx.grad.numpy())
    close(layer.forward(channels_last(x)), ta.detach().numpy())  # any input layout
    close(layer.backward(channels_last(grad)), tx.grad.numpy())


def test_flatten_matches_torch_flatten() -> None:
    torch = pytest.importorskip("torch")
    x = rng(17).standard_normal((2, 3, 4, 5))
    expected = torch.nn.Flatten()(torch.tensor(x)).numpy()
    for inputs in (x, channels_last(x), batch_last(x)):
        np.testing.assert_array_equal(Flatten().forward(inputs), expected)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)])
def test_batch_norm_matches_pytorch_with_running_statistics_after_two_training_steps(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    channels, momentum, eps = shape[1], 0.2, 1e-3
    norm = BatchNorm(channels, momentum=momentum, eps=eps)
    norm.weight[...] = rng(18).uniform(0.5, 2.0, channels)
    norm.bias[...] = rng(19).standard_normal(channels)
    t_weight = torch.tensor(norm.weight.copy(), requires_grad=True)
    t_bias = torch.tensor(norm.bias.copy(), requires_grad=True)
    t_mean, t_var = torch.zeros(channels, dtype=torch.float64), torch.ones(channels, dtype=torch.float64)
    for step, training in enumerate((True, True, False)):
        x = rng(20 + step).standard_normal(shape) * 3.0 - 1.0
        tx = torch.tensor(x, requires_grad=True)
        ty = f.batch_norm(tx, t_mean, t_var, t_weight, t_bias, training=training, momentum=momentum, eps=eps)
        grad = rng(30 + step).standard_normal(shape)
        t_weight.grad = t_bias.grad = None
        ty.backward(torch.tensor(grad))
        close(norm.forward(x, training), ty.detach().numpy())
        close(norm.backward(grad), tx.grad.numpy())
        close(norm.grad_weight, t_weight.grad.numpy())
        close(norm.grad_bias, t_bias.grad.numpy())
        close(norm.running_mean, t_mean.numpy())  # moved by the two training passes, not by the third
        close(norm.running_var, t_var.numpy())
    assert not np.allclose(norm.running_var, 1.0)


# --- values by hand -------------------------------------------------------------------------------


def test_max_pool_sends_a_tie_to_the_first_maximum_in_row_major_order() -> None:
    pool = MaxPool2D(2)
    x = np.array([[[[1.0, 3.0, 5.0, 5.0], [3.0, 2.0, 5.0, 5.0]]]])  # windows [[1, 3], [3, 2]] and all 5
    np.testing.assert_array_equal(pool.forward(x, training=True), [[[[3.0, 5.0]]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[[10.0, 20.0]]]])), [[[[0, 10, 20, 0], [0, 0, 0, 0]]]])
    # overlapping windows (stride 1): each window's first maximum gets its gradient, and they add
    overlapping = MaxPool2D(2, stride=1)
    x = np.array([[[[4.0, 4.0, 4.0], [1.0, 4.0, 2.0]]]])
    np.testing.assert_array_equal(overlapping.forward(x), [[[[4.0, 4.0]]]])
    np.testing.assert_array_equal(overlapping.backward(np.array([[[[1.0, 2.0]]]])), [[[[1, 2, 0], [0, 0, 0]]]])


def test_the_worked_example_of_the_spec() -> None:
    """spec/math.md, section 13's worked example: a 2x2 convolution then a 2x2 pool."""
    conv = Conv2D(1, 1, 2)
    conv.set_params({"weight": [[[[1, 2], [-1, 1]]]], "bias": [1]})
    x = np.array([[[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]]]])
    z = conv.forward(x)
    np.testing.assert_array_equal(z, [[[[7, 5], [1, 9]]]])
    pool = MaxPool2D(2)
    np.testing.assert_array_equal(pool.forward(z), [[[[9]]]])
    grad_x = conv.backward(pool.backward(np.array([[[[2.0]]]])))
    np.testing.assert_array_equal(conv.grad_weight, [[[[2, 6], [0, 2]]]])
    np.testing.assert_array_equal(conv.grad_bias, [2])
    np.testing.assert_array_equal(grad_x, [[[[0, 0, 0], [0, 2, 4], [0, -2, 2]]]])
    average = AvgPool2D(2)
    np.testing.assert_array_equal(average.forward(conv.forward(x)), [[[[5.5]]]])
    grad_x = conv.backward(average.backward(np.array([[[[2.0]]]])))
    np.testing.assert_array_equal(conv.grad_weight, [[[[2, 3], [1.5, 2.5]]]])
    np.testing.assert_array_equal(grad_x, [[[[0.5, 1.5, 1], [0, 1.5, 1.5], [-0.5, 0, 0.5]]]])


def test_batch_norm_by_hand() -> None:
    norm = BatchNorm(1, momentum=0.5, eps=0.0 + 1e-12)
    y = norm.forward(np.array([[1.0], [3.0]]), training=True)  # mean 2, biased variance 1
    np.testing.assert_allclose(y, [[-1.0], [1.0]], rtol=1e-11)
    np.testing.assert_allclose(norm.running_mean, [1.0])  # 0.5 * 0 + 0.5 * 2
    np.testing.assert_allclose(norm.running_var, [1.5])  # 0.5 * 1 + 0.5 * (unbiased 2)
    np.testing.assert_allclose(norm.forward(np.array([[1.0]])), [[0.0]], atol=1e-12)  # (1 - 1) / sqrt(1.5)


# --- the interface ----------------------------------------------------------------------------------


def test_the_new_layers_satisfy_the_layer_protocol() -> None:
    # mypy --strict checks this list's type: each class has the Protocol's methods and signatures
    layers: list[Layer[Array, Array]] = [Conv2D(1, 1, 1), MaxPool2D(2), AvgPool2D(2), Flatten(), BatchNorm(1)]
    assert [layer.describe()["type"] for layer in layers] == [
        "Conv2D",
        "MaxPool2D",
        "AvgPool2D",
        "Flatten",
        "BatchNorm",
    ]


def test_constructors_take_ints_or_pairs_and_describe_every_option_with_lists() -> None:
    conv = Conv2D(3, 4, 5, stride=2, padding=(1, 0), init="glorot_uniform", seed=7, dtype="float32")
    assert conv.describe() == {
        "type": "Conv2D",
        "in_channels": 3,
        "out_channels": 4,
        "kernel_size": [5, 5],
        "stride": [2, 2],
        "padding": [1, 0],
        "init": "glorot_uniform",
    }
    # the initial values are the seeded draws both backends make (eq. 12.8, 10.5-10.10)
    np.testing.assert_array_equal(conv.weight, initial_weight("glorot_uniform", (4, 3, 5, 5), 7, np.dtype("float32")))
    np.testing.assert_array_equal(conv.bias, initial_bias("glorot_uniform", 4, 7, np.dtype("float32")))
    assert MaxPool2D(2).describe() == {"type": "MaxPool2D", "kernel_size": [2, 2], "stride": [2, 2]}
    assert AvgPool2D((3, 2), stride=1).describe() == {"type": "AvgPool2D", "kernel_size": [3, 2], "stride": [1, 1]}
    assert Flatten().describe() == {"type": "Flatten"}
    assert BatchNorm(3).describe() == {"type": "BatchNorm", "num_features": 3, "momentum": 0.1, "eps": 1e-5}
    assert all(name in LAYERS for name in ("Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "BatchNorm"))
    for bad in (lambda: Conv2D(0, 1, 3), lambda: Conv2D(1, 1, 0), lambda: MaxPool2D(2, stride=0)):
        with pytest.raises(ConfigError):
            bad()


def test_batch_norm_arrays_and_which_are_trained() -> None:
    norm = BatchNorm(3, dtype="float32")
    params = norm.params()
    assert list(params) == ["weight", "bias", "running_mean", "running_var"]
    assert [list(v) for v in params.values()] == [[1.0] * 3, [0.0] * 3, [0.0] * 3, [1.0] * 3]
    assert all(value.dtype == np.float32 for value in params.values())
    assert list(norm.grads()) == ["weight", "bias"]
    assert not hasattr(norm, "grad_running_mean") and not hasattr(norm, "grad_running_var")
    norm.set_params({"weight": [2, 2, 2], "bias": [1, 1, 1], "running_mean": [0.5] * 3, "running_var": [4.0] * 3})
    assert norm.params()["running_var"] is params["running_var"]  # copied in place
    np.testing.assert_allclose(norm.forward(np.full((2, 3), 0.5)), np.ones((2, 3)))  # 2 * 0 + 1


def test_set_params_takes_nested_lists_in_place_and_names_a_shape_that_does_not_fit() -> None:
    conv = Conv2D(1, 2, 2)
    weight = conv.weight
    conv.set_params({"weight": np.ones((2, 1, 2, 2), np.float32).tolist(), "bias": [0.5, -0.5]})
    assert conv.weight is weight and np.all(weight == 1.0) and list(conv.bias) == [0.5, -0.5]
    with pytest.raises(ShapeError, match=r"Conv2D.set_params: weight \(2, 1, 3, 3\) does not fit \(2, 1, 2, 2\)"):
        conv.set_params({"weight": np.ones((2, 1, 3, 3)), "bias": [0.0, 0.0]})
    with pytest.raises(ShapeError, match="BatchNorm.set_params: missing"):
        BatchNorm(2).set_params({"weight": [1, 1], "bias": [0, 0]})
    with pytest.raises(ShapeError, match="MaxPool2D has no parameters"):
        MaxPool2D(2).set_params({"weight": [1.0]})


def test_outputs_have_pytorch_shapes_whatever_the_memory_layout() -> None:
    x = rng(40).standard_normal((4, 3, 9, 8))
    conv = Conv2D(3, 5, 3, padding=1, seed=2)
    reference = conv.forward(np.ascontiguousarray(x))
    assert reference.shape == (4, 5, 9, 8)
    for inputs in (channels_last(x), batch_last(x), x[:, :, ::-1, :][:, :, ::-1, :]):
        close(conv.forward(inputs), reference, rtol=1e-15)
    pooled = MaxPool2D(2).forward(reference)
    assert pooled.shape == (4, 5, 4, 4)
    assert Flatten().forward(pooled).shape == (4, 80)
    assert BatchNorm(5).forward(pooled, training=True).shape == (4, 5, 4, 4)


def test_need_input_grad_false_skips_the_input_gradient() -> None:
    x = rng(41).standard_normal((2, 1, 5, 5))
    conv = Conv2D(1, 2, 3)
    z = conv.forward(x)
    conv.backward(np.ones_like(z))
    weight_grad = conv.grad_weight.copy()
    assert conv.backward(np.ones_like(z), need_input_grad=False).shape[0] == 0
    np.testing.assert_array_equal(conv.grad_weight, weight_grad)
    norm = BatchNorm(1)
    y = norm.forward(x, training=True)
    assert norm.backward(np.ones_like(y), need_input_grad=False).shape[0] == 0


@pytest.mark.parametrize("layer", [Conv2D(2, 3, 3, padding=1, dtype="float32"), MaxPool2D(2), AvgPool2D(2)])
def test_float32_forward_and_backward_stay_float32_and_agree_with_float64(layer: Any) -> None:
    x = rng(42).standard_normal((3, 2, 6, 6))
    out32 = layer.forward(x.astype(np.float32), training=True)
    grad32 = layer.backward(np.ones(out32.shape, np.float32))
    assert out32.dtype == np.float32 and grad32.dtype == np.float32
    if isinstance(layer, Conv2D):
        assert all(g.dtype == np.float32 for g in layer.grads().values())
        layer = Conv2D(2, 3, 3, padding=1, dtype="float64")
    else:
        layer = type(layer)(2)
    out64 = layer.forward(x, training=True)
    grad64 = layer.backward(np.ones(out64.shape))
    close(out32, out64, rtol=1e-5)
    close(grad32, grad64, rtol=1e-5)
    norm = BatchNorm(2, dtype="float32")
    y = norm.forward(x, training=True)
    assert y.dtype == np.float32 and norm.backward(np.ones_like(y)).dtype == np.float32


# --- the network ---------------------------------------------------------------------------------

ARCHITECTURE = {
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"type": "BatchNorm", "num_features": 3},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Conv2D", "in_channels": 3, "out_channels": 4, "kernel_size": 2, "stride": 2},
        {"type": "AvgPool2D", "kernel_size": 2, "stride": 1},
        {"type": "Flatten"},
        {"type": "BatchNorm", "num_features": 4},
        {"type": "Dense", "in_features": 4, "out_features": 3},
        {"type": "Softmax"},
    ],
    "loss": {"type": "CrossEntropy"},
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_network_shares_flat_storage_with_the_new_layers_through_an_optimizer_step(dtype: str) -> None:
    net = build_network(ARCHITECTURE, backend="vectorized", dtype=dtype, seed=5)
    optimizer = build_optimizer({"type": "Adam", "lr": 0.05}, "vectorized")
    flat, flat_grads = net.flat_params(), net.flat_grads()
    trained = [name for name in net.params() if "running" not in name]
    assert list(net.grads()) == trained
    assert flat.size == sum(net.params()[name].size for name in trained) and flat.dtype == np.dtype(dtype)
    x = rng(43).random((6, 1, 8, 8))
    labels = np.array([0, 1, 2, 0, 1, 2])
    before = flat.copy()
    losses = []
    for _ in range(5):
        losses.append(net.loss(net.forward(x, training=True), labels))
        net.backward()
        optimizer.step(net)
    assert losses[-1] < losses[0]
    assert not np.array_equal(flat, before)
    params, grads = net.params(), net.grads()
    for name in trained:  # the layers' own arrays are views of the flat ones, after the steps too
        index, attribute = name.split(".")
        layer = net.layers[int(index)]
        assert getattr(layer, attribute) is params[name] and params[name].base is flat, name
        assert getattr(layer, f"grad_{attribute}").base is flat_grads, name
        assert np.shares_memory(grads[name], flat_grads)
    offset = 0
    for name in trained:  # in grads() order
        size = params[name].size
        np.testing.assert_array_equal(flat[offset : offset + size], params[name].ravel())
        offset += size
    batchnorm: Any = net.layers[1]
    running = batchnorm.running_var
    assert not np.shares_memory(running, flat) and not np.all(running == 1.0)  # the layer moved it itself
    assert "1.running_mean.exp_avg" not in optimizer.export_state()["arrays"]


# --- bad shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer,inputs,message",
    [
        (
            Conv2D(3, 2, 3),
            np.zeros((2, 3, 5)),
            r"Conv2D.forward: expected a batch of shape \(batch, 3, height, width\)",
        ),
        (Conv2D(3, 2, 3), np.zeros((2, 2, 5, 5)), r"Conv2D.forward: .* got \(2, 2, 5, 5\)"),
        (Conv2D(1, 2, 4, padding=1), np.zeros((1, 1, 1, 5)), "Conv2D.forward: kernel .4, 4. is larger than its padded"),
        (Conv2D(1, 2, 2), np.zeros((0, 1, 4, 4)), "Conv2D.forward: the batch is empty"),
        (MaxPool2D(2), np.zeros((2, 5, 5)), r"MaxPool2D.forward: expected a batch of shape \(batch, channels"),
        (AvgPool2D(3), np.zeros((1, 1, 2, 5)), r"AvgPool2D.forward: kernel \[3, 3\] is larger than its input"),
        (Flatten(), np.zeros(4), "Flatten.forward: expected a non-empty batch"),
        (BatchNorm(3), np.zeros((2, 4)), r"BatchNorm.forward: expected a batch of shape \(batch, 3\)"),
        (BatchNorm(3), np.zeros((2, 3, 4)), "BatchNorm.forward"),
        (BatchNorm(3), np.zeros((1, 3)), "training needs more than one value per channel"),
        (BatchNorm(2), np.zeros((1, 2, 1, 1)), "training needs more than one value per channel"),
    ],
)
def test_bad_input_shapes_are_one_line_shape_errors_naming_the_layer(layer: Any, inputs: Array, message: str) -> None:
    with pytest.raises(ShapeError, match=message) as raised:
        layer.forward(inputs, training=True)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("layer", [Conv2D(1, 2, 3), MaxPool2D(2), AvgPool2D(2), Flatten(), BatchNorm(1)])
def test_a_gradient_that_does_not_fit_the_outputs_is_a_shape_error(layer: Any) -> None:
    outputs = layer.forward(np.ones((2, 1, 6, 6)) * np.arange(6.0), training=True)
    with pytest.raises(ShapeError, match=f"{type(layer).__name__}.backward: gradient of shape"):
        layer.backward(np.zeros((3, *outputs.shape[1:])))


def test_results_are_bit_identical_for_any_number_of_threads_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from scratchnet.vectorized import memory, parallel

    x = batch_last(rng(44).standard_normal((5, 6, 9, 9)))

    def run() -> list[Array]:
        conv, pool, average = Conv2D(6, 7, 3, padding=1, seed=1), MaxPool2D(3, stride=2), AvgPool2D(2, stride=1)
        relu = ReLU()
        z = conv.forward(x)
        r = relu.forward(z)
        a, b = pool.forward(r, training=True), average.forward(z)
        grad_r = pool.backward(np.ones_like(a))
        grads = [grad_r, relu.backward(grad_r), average.backward(np.ones_like(b)), conv.backward(np.ones_like(z))]
        return [z, r, a, b, *grads, conv.grad_weight.copy(), conv.grad_bias.copy()]

    monkeypatch.setattr(parallel, "MIN_CHUNK", 1)
    results = {}
    for threads, block in ((1, 1 << 18), (1, 50), (3, 50), (2, 1)):
        monkeypatch.setattr(memory, "BLOCK_VALUES", block)
        parallel.set_threads(threads)
        try:
            results[threads, block] = run()
        finally:
            parallel.set_threads(None)
    first = results[1, 1 << 18]
    for other in results.values():
        for expected, actual in zip(first, other):
            np.testing.assert_array_equal(actual, expected)


def test_a_large_inference_batch_goes_a_few_samples_at_a_time_and_backward_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scratchnet.vectorized import convolution

    x = rng(45).standard_normal((7, 3, 6, 5))
    grad = rng(46).standard_normal((7, 4, 3, 5))
    whole = Conv2D(3, 4, 3, stride=(2, 1), padding=1, seed=8)
    expected = whole.forward(x, training=True)
    expected_grad = whole.backward(grad)
    monkeypatch.setattr(convolution, "INFERENCE_VALUES", 2 * 28 * 15)  # two samples' windows per pass
    parts = Conv2D(3, 4, 3, stride=(2, 1), padding=1, seed=8)
    close(parts.forward(x), expected, rtol=1e-14)
    close(parts.backward(grad), expected_grad, rtol=1e-14)
    close(parts.grad_weight, whole.grad_weight, rtol=1e-14)
    close(parts.grad_bias, whole.grad_bias, rtol=1e-14)


def test_a_result_the_caller_keeps_never_changes_and_one_it_drops_is_reused() -> None:
    from scratchnet.vectorized.memory import Workspace

    conv, pool = Conv2D(2, 3, 3, seed=4), MaxPool2D(2)
    batches = [rng(50 + k).standard_normal((4, 2, 8, 8)) for k in range(4)]
    z = conv.forward(batches[0])
    pooled = pool.forward(z, training=True)
    grad = conv.backward(pool.backward(np.ones_like(pooled)))
    kept = [z.copy(), pooled.copy(), grad.copy()]
    view = z[1:, ::2]  # only a view of it is left
    del z
    for x in batches[1:]:
        pool.backward(np.ones_like(pool.forward(conv.forward(x), training=True)))
        conv.backward(np.ones((4, 3, 6, 6)))
    np.testing.assert_array_equal(view, kept[0][1:, ::2])
    np.testing.assert_array_equal(pooled, kept[1])
    np.testing.assert_array_equal(grad, kept[2])
    work = Workspace()
    first = work.output("a", (3, 4), np.dtype(np.float64))
    address = first.ctypes.data
    del first
    assert work.output("a", (3, 4), np.dtype(np.float64)).ctypes.data == address  # free again: reused
    held = work.output("a", (3, 4), np.dtype(np.float64))
    assert work.output("a", (3, 4), np.dtype(np.float64)) is not held  # held: a new one


@pytest.mark.parametrize("block", [1 << 18, 64])  # the whole array in one pass, or blocks of 64 values
@pytest.mark.parametrize("layout", ["batch first", "batch last", "with gaps"])
def test_relu_gives_max_0_z_and_its_mask_in_every_memory_layout(
    layout: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scratchnet.vectorized import memory

    monkeypatch.setattr(memory, "BLOCK_VALUES", block)
    z = rng(60).standard_normal((4, 3, 5, 6))
    z[0, 0, 0, :3] = 0.0  # at z = 0 the gradient is 0 (eq. 4.1)
    delta = rng(61).standard_normal(z.shape)
    inputs = {"batch first": z.copy(), "batch last": batch_last(z), "with gaps": np.repeat(z, 2, axis=3)[..., ::2]}[
        layout
    ]
    relu = ReLU()
    for _ in range(3):  # the kept result arrays are reused from the second batch on
        outputs = relu.forward(inputs, training=True)
        np.testing.assert_array_equal(outputs, np.where(z > 0.0, z, 0.0))
        grad = relu.backward(batch_last(delta))  # the gradient in another layout than z
        np.testing.assert_array_equal(grad, np.where(z > 0.0, delta, 0.0))
    assert grad[0, 0, 0, :3].tolist() == [0.0, 0.0, 0.0]


def test_relu_results_the_caller_keeps_never_change() -> None:
    relu = ReLU()
    first = relu.forward(rng(62).standard_normal((3, 2, 4, 4)))
    grad = relu.backward(np.ones_like(first))
    kept = first.copy(), grad.copy()
    for seed in (63, 64, 65):
        relu.backward(np.ones_like(relu.forward(rng(seed).standard_normal((3, 2, 4, 4)))))
    np.testing.assert_array_equal(first, kept[0])
    np.testing.assert_array_equal(grad, kept[1])


def test_relu_refuses_a_gradient_that_does_not_fit() -> None:
    relu = ReLU()
    relu.forward(np.ones((2, 3)))
    with pytest.raises(ShapeError, match="ReLU.backward: gradient of shape"):
        relu.backward(np.ones((3, 3)))
