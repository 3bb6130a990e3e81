"""The compact notation: what it parses to (written out by hand), its errors, and the way back."""

from __future__ import annotations

import pytest

from scratchnet.checks import narrow
from scratchnet.core import notation
from scratchnet.core.architecture import mlp, plan
from scratchnet.core.errors import ConfigError


def test_the_keras_mnist_convnet_parses_to_its_layers_with_every_shape_filled_in() -> None:
    text = "input(1x28x28), conv(32, 3), relu, maxpool(2), conv(64, 3), relu, maxpool(2), flatten, dense(10)"
    architecture = notation.parse(text)
    assert architecture == {
        "input_shape": [1, 28, 28],
        "layers": [
            {"type": "Conv2D", "in_channels": 1, "out_channels": 32, "kernel_size": 3},
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Conv2D", "in_channels": 32, "out_channels": 64, "kernel_size": 3},
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "in_features": 1600, "out_features": 10},  # 64 channels of 5x5
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
        "l2": 0.0,
        "l1": 0.0,
    }
    assert plan(architecture).parameter_count == 34_826  # Keras' model.summary() for mnist_convnet


def test_names_options_pairs_and_an_mlp() -> None:
    architecture = notation.parse(
        "input(3, 9, 10), Conv2D(4, 3x5, stride=2, padding=1, init=glorot_uniform), BatchNorm(momentum=0.2), "
        "leaky_relu(0.1), avg_pool(2, stride=1), flatten, dropout(0.5), dense(3)",
        loss="mse",
    )
    layers = architecture["layers"]
    assert layers[0] == {
        "type": "Conv2D",
        "in_channels": 3,
        "out_channels": 4,
        "kernel_size": [3, 5],
        "stride": 2,
        "padding": 1,
        "init": "glorot_uniform",
    }
    assert layers[1] == {"type": "BatchNorm", "num_features": 4, "momentum": 0.2}
    assert layers[2] == {"type": "LeakyReLU", "alpha": 0.1}
    assert layers[3] == {"type": "AvgPool2D", "kernel_size": 2, "stride": 1}
    # (9 + 2 - 3) // 2 + 1 = 5 rows, (10 + 2 - 5) // 2 + 1 = 4 columns; pooled 4 x 3; 4 channels
    assert layers[6] == {"type": "Dense", "in_features": 48, "out_features": 3}
    assert architecture["loss"] == {"type": "MeanSquaredError"} and len(layers) == 7  # no softmax for mse
    assert notation.parse("dense(128), relu, dense(10)", input_shape=[784], init="he_normal") == mlp([784, 128, 10])


def test_notation_writes_what_parse_reads() -> None:
    text = "input(2x9x9), conv(4, 3x5, stride=2, padding=1), batchnorm, relu, maxpool(2, stride=1), flatten, dense(3)"
    architecture = notation.parse(text)
    written = notation.notation(architecture)
    assert written == (
        "input(2x9x9), conv(4, 3x5, stride=2, padding=1), batchnorm, relu, maxpool(2, stride=1), "
        "flatten, dense(3), softmax"
    )
    assert notation.parse(written) == architecture


@pytest.mark.parametrize(
    "text, message",
    [
        ("conv(4, 3)", "needs the input shape"),
        ("input(1x5x5), conv(4, 7)", "item 2 'conv(4, 7)': kernel [7, 7] is larger than its padded input (1, 5, 5)"),
        ("input(1x8x8), dense(3)", "expects 64 inputs, but the layer before gives (1, 8, 8) (a Flatten before it"),
        ("input(1x8x8), frobnicate", "unknown layer 'frobnicate'; known: dense, dropout"),
        ("input(1x8x8), conv(4, 3, in_channels=2)", "in_channels comes from the input shape; leave it out"),
        ("input(1x8x8), maxpool(2, stride=0)", "stride must be at least 1, got [0, 0]"),
        ("input(1x8x8), conv(4, 3, 1, 1)", "Conv2D takes out_channels, kernel_size"),
        ("input(1x8x8), conv(4, 3), relu)", "unbalanced ')'"),
        ("input(1x8x8), conv(4, kernel=3x)", "cannot read the value '3x'"),
        ("input(4), relu, input(4)", "input(C, H, W) or input(CxHxW) comes first"),
        ("input(1x8x8), conv(stride=2, 4)", "a positional option after a named one"),
    ],
)
def test_a_wrong_item_is_one_line_naming_it(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        notation.parse(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_narrowed_keeps_the_layer_types_and_caps_the_widths() -> None:
    text = "conv(32, 5, padding=2), batchnorm, relu, maxpool(2), conv(out_channels=64, kernel_size=3), dense(128)"
    assert narrow.narrowed(text, 4) == (
        "conv(4, 5, padding=2), batchnorm, relu, maxpool(2), conv(out_channels=4, kernel_size=3), dense(4)"
    )
