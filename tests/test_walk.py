"""The walk over a network's layers is ready for containers (a layer holding layers, as a residual
block will): ``Pair`` is defined here and nowhere in the package, a layer that runs a Dense layer
and an activation on its input. Its layers are walked into at their paths, their arrays are named by
the path (``1.0.weight``, as PyTorch names nested modules), and the teaching tools' blocks group them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

import scratchnet.teaching.explain  # noqa: F401  (registers the built-in explainers, which blocks reads)
from scratchnet.core import registry
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.walk import array_name, every_layer, kinds, walk
from scratchnet.teaching.explainers import Block, blocks, blocks_of


def pair_children(options: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    width = options["width"]
    return [{"type": "Dense", "in_features": options["fan_in"], "out_features": width}, {"type": "Tanh"}]


def pair_arrays(options: Mapping[str, Any], shape: registry.Shape) -> dict[str, registry.Shape]:
    return {"0.weight": (options["width"], options["fan_in"]), "0.bias": (options["width"],)}


PAIR = registry.LayerType(
    name="Pair",
    options=(registry.Option("fan_in", "int"), registry.Option("width", "int")),
    output_shape=lambda options, shape: (options["width"],),
    arrays=pair_arrays,
    math="(a test container)",
    children=pair_children,
)


@pytest.fixture(autouse=True)
def pair_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.LAYER_TYPES, "Pair", PAIR)
    yield


def architecture(fan_in: int = 3) -> dict[str, Any]:
    return {
        "layers": [
            {"type": "Dense", "in_features": 4, "out_features": 3},
            {"type": "ReLU"},
            {"type": "Pair", "fan_in": fan_in, "width": 5},
            {"type": "Dense", "in_features": 5, "out_features": 2},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


def test_a_containers_layers_are_walked_into_at_their_paths_and_name_their_arrays_by_them() -> None:
    checked = plan(architecture())
    sites = walk(checked)
    assert kinds(checked) == ["Dense", "ReLU", "Pair", "Dense", "Softmax"]
    assert [(site.path, site.kind) for site in every_layer(sites)] == [
        ((0,), "Dense"),
        ((1,), "ReLU"),
        ((2,), "Pair"),
        ((2, 0), "Dense"),
        ((2, 1), "Tanh"),
        ((3,), "Dense"),
        ((4,), "Softmax"),
    ]
    inner = sites[2].children
    assert inner[0].options == {"in_features": 3, "out_features": 5, "bias": True, "init": "he_normal", "std": None}
    assert inner[0].input_shape == (3,) and inner[1].input_shape == (5,)  # each layer's input is the last one's output
    assert inner[1].prefix == "2.1" and array_name(inner[0].path, "weight") == "2.0.weight"
    assert [array.name for array in checked.arrays][2:4] == ["2.0.weight", "2.0.bias"]  # as the plan names them


def test_blocks_group_a_network_and_a_containers_layers_alike() -> None:
    checked = plan(architecture())
    assert blocks(checked) == [Block(0, 1), Block(2, 2), Block(3, 3), Block(4, 4)]  # Dense + ReLU, Pair, ...
    assert blocks_of(walk(checked)[2].children) == [Block(0, 1, (2,))]  # the Dense and the Tanh inside layer 2


def test_a_layer_inside_a_container_that_does_not_fit_is_named_by_its_path() -> None:
    with pytest.raises(ConfigError, match=r"layer 2\.0 \(Dense\) expects 4 inputs, but the layer before gives 3"):
        walk(plan(architecture(fan_in=4)))
