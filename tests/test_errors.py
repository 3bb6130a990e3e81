"""Bad input raises a ScratchnetError subclass whose message names the problem, in both backends."""

from __future__ import annotations

import math

import pytest

import scratchnet
from scratchnet.builders import build_network
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError, LabelError, ScratchnetError, ShapeError

BACKENDS = ["loops", "vectorized"]


def network(backend: str, loss: str = "cross_entropy") -> object:
    return build_network(mlp([3, 4, 2], loss=loss), backend=backend)


def test_error_hierarchy_is_importable_from_the_root() -> None:
    for error in (
        ShapeError,
        LabelError,
        ConfigError,
        scratchnet.ModelFormatError,
        scratchnet.DatasetError,
        scratchnet.TrainingError,
    ):
        assert issubclass(error, scratchnet.ScratchnetError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mismatched_input_width(backend: str) -> None:
    net = network(backend)
    with pytest.raises(ShapeError, match="4 features, expected 3"):
        net.forward([[1.0, 2.0, 3.0, 4.0]])  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend: str) -> None:
    with pytest.raises(ShapeError, match="empty"):
        network(backend).forward([])  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ragged_batch(backend: str) -> None:
    with pytest.raises(ShapeError):
        network(backend).forward([[1.0, 2.0, 3.0], [1.0, 2.0]])  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "labels,message",
    [
        ([0, 2], "label 1 is 2, outside 0..1"),
        ([-1, 0], "label 0 is -1"),
        ([0], "1 labels for a batch of 2|shape"),
        ([0.5, 1], "not an integer"),
    ],
)
def test_bad_labels(backend: str, labels: list[float], message: str) -> None:
    net = network(backend)
    out = net.forward([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])  # type: ignore[attr-defined]
    with pytest.raises((LabelError, ShapeError), match=message):
        net.loss(out, labels)  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_output_takes_labels_0_and_1_only(backend: str) -> None:
    net = build_network(mlp([2, 1], loss="bce"), backend=backend)
    out = net.forward([[1.0, 2.0]])
    with pytest.raises(LabelError, match="outside 0..1"):
        net.loss(out, [2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_needs_the_latest_forward_output(backend: str) -> None:
    net = network(backend)
    out = net.forward([[1.0, 2.0, 3.0]])  # type: ignore[attr-defined]
    net.forward([[1.0, 2.0, 3.0]])  # type: ignore[attr-defined]
    with pytest.raises(ScratchnetError, match="latest forward"):
        net.loss(out, [0])  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_before_loss(backend: str) -> None:
    net = network(backend)
    with pytest.raises(ScratchnetError, match="loss\\(\\) call first"):
        net.backward()  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_params_with_wrong_names_or_shapes(backend: str) -> None:
    net = network(backend)
    with pytest.raises(ShapeError, match="missing \\['2.bias'\\]"):
        net.set_params({"0.weight": [[0.0] * 3] * 4, "0.bias": [0.0] * 4, "2.weight": [[0.0] * 4] * 2})  # type: ignore[attr-defined]
    with pytest.raises(ShapeError, match="do not fit"):
        net.set_params(  # type: ignore[attr-defined]
            {
                "0.weight": [[0.0] * 3] * 5,
                "0.bias": [0.0] * 4,
                "2.weight": [[0.0] * 4] * 2,
                "2.bias": [0.0] * 2,
            }
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_architectures(backend: str) -> None:
    module = __import__(f"scratchnet.{backend}", fromlist=["Network"])
    with pytest.raises(ConfigError, match="final Softmax"):
        module.Network([module.Dense(2, 2), module.ReLU()], module.CrossEntropy())
    with pytest.raises(ConfigError, match="expects 3 inputs"):
        module.Network([module.Dense(2, 4), module.Dense(3, 2), module.Softmax()], module.CrossEntropy())
    with pytest.raises(ConfigError, match="dropout rate"):
        module.Dropout(1.0)
    with pytest.raises(ConfigError, match="unknown initializer"):
        module.Dense(2, 2, init="orthogonal")


def test_bad_descriptions() -> None:
    with pytest.raises(ConfigError, match="unknown type 'Conv2d'"):
        build_network({"layers": [{"type": "Conv2d"}], "loss": {"type": "CrossEntropy"}})
    with pytest.raises(ConfigError, match="unknown backend"):
        build_network(mlp([2, 2]), backend="cuda")
    with pytest.raises(ConfigError, match="dtype"):
        build_network(mlp([2, 2]), dtype="float16")
    with pytest.raises(ConfigError, match="layer sizes"):
        mlp([784])


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_is_finite_for_huge_logits(backend: str) -> None:
    """Logits of +-1000 would overflow a naive softmax or give log(0); the log-sum-exp form does not."""
    net = build_network(mlp([2, 3]), backend=backend)
    net.set_params({"0.weight": [[1000.0, 0.0], [-1000.0, 0.0], [0.0, 0.0]], "0.bias": [0.0, 0.0, 0.0]})
    out = net.forward([[1.0, 0.0], [-1.0, 0.0]])
    loss = net.loss(out, [1, 0])  # both labels pick a logit 2000 below the maximum
    assert math.isfinite(loss) and loss == pytest.approx(2000.0, rel=1e-12)
    net.backward()
    grads = net.grads()
    assert all(math.isfinite(float(v)) for row in grads["0.weight"] for v in row)


def test_mlp_rejects_bad_dropout_and_penalties() -> None:
    with pytest.raises(ConfigError, match="dropout rate"):
        mlp([3, 4, 2], dropout=-0.5)
    with pytest.raises(ConfigError, match="finite"):
        mlp([3, 4, 2], l2=math.inf)
    with pytest.raises(ConfigError, match="finite"):
        build_network({**mlp([3, 2]), "l1": math.inf})
