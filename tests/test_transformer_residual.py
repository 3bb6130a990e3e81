"""Residual (spec/math.md, section 22): GPTs of one or two blocks of two residuals, and a residual
CNN. The loops reference and the vectorized backend agree (float64, relative 1e-12) on random GPTs
for the forward pass, the loss with ignored positions, every gradient and the parameters after
three steps of every optimizer; both agree with central finite differences; dropout inside a block
draws the same masks in both; the arrays nest ("3.0.weight") through params, grads, set_params,
the flat storage and the optimizers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import gpt_architectures
from test_crosscheck import failures, record
from test_transformer_crosscheck import TRANSFORMER_OPTIMIZERS

from scratchnet import loops, vectorized
from scratchnet.builders import build_network, build_optimizer
from scratchnet.checks.crosscheck import CROSS_TOLERANCE, cross_check, full_check, random_inputs
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.core.rng import derive_seed

BACKENDS = ("loops", "vectorized")
LARGEST_SEEN: dict[str, float] = {}  # the largest relative difference between the backends (for a report)


@settings(max_examples=60, deadline=None)
@given(
    description=gpt_architectures(),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    spec=st.sampled_from(TRANSFORMER_OPTIMIZERS),
)
def test_backends_agree_on_random_gpts_with_every_optimizer(
    description: dict[str, Any], batch: int, seed: int, spec: dict[str, Any]
) -> None:
    comparisons = cross_check(
        description,
        batch=batch,
        seed=seed,
        steps=3,
        make_optimizers=lambda: (build_optimizer(spec, "loops"), build_optimizer(spec, "vectorized")),
    )
    record(comparisons)
    worst = max(c.max_rel for c in comparisons)
    LARGEST_SEEN["gpt"] = max(LARGEST_SEEN.get("gpt", 0.0), worst)
    names = {c.name for c in comparisons}
    assert {"forward", "loss", "grad 0.weight"} <= names
    assert any(name.startswith("grad ") and name.endswith(".1.in_proj_weight") for name in names)
    assert any(name.startswith("after 3 steps ") and name.count(".") >= 2 for name in names)
    assert all(c.passed for c in comparisons), failures(comparisons)
    assert worst <= CROSS_TOLERANCE


def gpt(norm: str, approximate: str, heads: int, blocks: int, dropout: float = 0.0) -> dict[str, Any]:
    """A GPT whose activations are of order 1 (He and Glorot init), so that central differences with
    a step of 1e-5 are accurate: dim 4, vocabulary 5, sequences of 4."""
    dim, vocabulary, length = 4, 5, 4
    layers: list[dict[str, Any]] = [
        {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim, "init": "he_normal"},
        {"type": "PositionEmbedding", "max_length": length, "dim": dim, "init": "he_normal"},
    ]
    for _ in range(blocks):
        attention = {"type": "CausalSelfAttention", "dim": dim, "heads": heads, "init": "glorot_uniform"}
        layers.append({"type": "Residual", "layers": [{"type": norm, "dim": dim}, {**attention, "dropout": dropout}]})
        mlp = [
            {"type": norm, "dim": dim},
            {"type": "Dense", "in_features": dim, "out_features": 4 * dim, "init": "glorot_uniform"},
            {"type": "GELU", "approximate": approximate},
            {"type": "Dense", "in_features": 4 * dim, "out_features": dim, "init": "glorot_uniform"},
        ]
        layers.append({"type": "Residual", "layers": mlp + ([{"type": "Dropout", "rate": dropout}] if dropout else [])})
    layers += [
        {"type": norm, "dim": dim},
        {"type": "Dense", "in_features": dim, "out_features": vocabulary, "init": "glorot_uniform"},
        {"type": "Softmax"},
    ]
    return {"vocabulary": vocabulary, "input_shape": [length], "layers": layers, "loss": {"type": "CrossEntropy"}}


def residual_cnn() -> dict[str, Any]:
    """A padded convolution (it keeps the 6x6 shape) with batch norm and relu inside a residual block."""
    return {
        "input_shape": [2, 6, 6],
        "layers": [
            {"type": "Conv2D", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1},
            {
                "type": "Residual",
                "layers": [
                    {"type": "Conv2D", "in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1},
                    {"type": "BatchNorm", "num_features": 3},
                    {"type": "ReLU"},
                ],
            },
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "in_features": 27, "out_features": 4},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


@pytest.mark.parametrize(
    "description",
    [
        gpt("LayerNorm", "none", 2, 1),
        gpt("RMSNorm", "tanh", 1, 2),
        gpt("LayerNorm", "tanh", 4, 2),
        residual_cnn(),
    ],
    ids=["layernorm-1-block", "rmsnorm-2-blocks", "layernorm-4-heads-2-blocks", "residual-cnn"],
)
def test_finite_differences_agree_with_backprop_in_both_backends(description: dict[str, Any]) -> None:
    report = full_check(description, batch=3, seed=4, max_per_tensor=0)
    assert set(report.gradients) == set(BACKENDS)
    assert report.passed, [c for group in report.gradients.values() for c in group if not c.passed]
    assert max(c.max_rel for c in report.cross) <= CROSS_TOLERANCE


def test_the_finite_difference_check_catches_a_residual_that_forgets_its_skip_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check can fail: a vectorized Residual whose backward returns dL/dx through f only."""
    from scratchnet.vectorized import residual

    def through_f_only(self: Any, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        grad = grad_outputs
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    monkeypatch.setattr(residual.Residual, "backward", through_f_only)
    report = full_check(gpt("LayerNorm", "none", 2, 1), batch=2, seed=1, max_per_tensor=3)
    failed = {c.name for c in report.cross + report.gradients["vectorized"] if not c.passed}
    assert "grad 0.weight" in failed and all(c.passed for c in report.gradients["loops"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_residual_adds_its_input_to_its_layers_output(backend: str) -> None:
    """y = x + f(x) (eq. 23.1) and dL/dx = dL/dy + dL/dx through f (eq. 23.2), by hand: f = Dense
    with W = [[2, 0], [1, -1]], b = [0.5, 0], so y = x + W x + b and dL/dx = g + W^T g."""
    module: Any = loops if backend == "loops" else vectorized
    dense = module.Dense(2, 2)
    block = module.Residual([dense])
    block.set_params({"0.weight": [[2.0, 0.0], [1.0, -1.0]], "0.bias": [0.5, 0.0]})
    y = block.forward([[1.0, 3.0]] if backend == "loops" else np.array([[1.0, 3.0]]))
    assert np.asarray(y).tolist() == [[1.0 + 2.0 + 0.5, 3.0 + 1.0 - 3.0]]
    grad = block.backward([[1.0, 2.0]] if backend == "loops" else np.array([[1.0, 2.0]]))
    assert np.asarray(grad).tolist() == [[1.0 + (2.0 + 2.0), 2.0 + (0.0 - 2.0)]]
    assert np.asarray(block.grads()["0.weight"]).tolist() == [[1.0, 3.0], [2.0, 6.0]]
    assert block.describe() == {"type": "Residual", "layers": [dense.describe()]}
    with pytest.raises(ShapeError, match="Residual.set_params: missing \\['0.bias'\\]"):
        block.set_params({"0.weight": [[0.0, 0.0], [0.0, 0.0]]})
    with pytest.raises(ConfigError, match="Residual needs at least one layer"):
        module.Residual([])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_arrays_are_named_by_their_path_and_set_and_trained_through_the_network(backend: str) -> None:
    description = gpt("LayerNorm", "none", 2, 1)
    net = build_network(description, backend=backend, seed=3)
    names = list(net.params())
    assert names == [array.name for array in plan(description).arrays]
    assert names[:6] == ["0.weight", "1.weight", "2.0.weight", "2.0.bias", "2.1.in_proj_weight", "2.1.in_proj_bias"]
    assert "3.1.weight" in names and "3.3.bias" in names and "2.1.out_proj.weight" in names
    zeros = {name: np.zeros_like(np.asarray(value)) for name, value in net.params().items()}
    net.set_params(zeros)
    assert all(not np.asarray(value).any() for value in net.params().values())
    other = build_network(description, backend="vectorized" if backend == "loops" else "loops", seed=3)
    net.set_params(other.params())
    for name, value in other.params().items():
        assert np.array_equal(np.asarray(net.params()[name]), np.asarray(value)), name
    with pytest.raises(ShapeError, match="missing \\['2.1.in_proj_bias'\\]"):
        net.set_params({name: value for name, value in other.params().items() if name != "2.1.in_proj_bias"})
    inputs, labels = random_inputs(description, 2, seed=1)
    optimizer = build_optimizer({"type": "adamw", "lr": 0.01, "weight_decay": 0.1}, backend)
    before = {name: np.array(np.asarray(value)) for name, value in net.params().items()}
    net.loss(net.forward(inputs, training=True), labels)
    net.backward()
    optimizer.step(net)
    moved = {name for name, value in net.params().items() if not np.array_equal(np.asarray(value), before[name])}
    assert {"2.0.weight", "2.1.in_proj_weight", "3.1.weight", "3.3.bias"} <= moved
    assert {"2.1.out_proj.weight.exp_avg", "3.3.bias.exp_avg_sq"} <= set(optimizer.export_state()["arrays"])


def test_the_vectorized_network_keeps_nested_arrays_in_its_flat_storage() -> None:
    net = build_network(gpt("RMSNorm", "none", 2, 2), backend="vectorized", seed=0)
    flat, params, grads = net.flat_params(), net.params(), net.grads()
    assert flat.size == sum(value.size for name, value in params.items() if name in grads)
    blocks: list[Any] = [net.layers[2], net.layers[5]]
    attention = blocks[0].layers[1]
    assert np.shares_memory(attention.in_proj_weight, flat) and np.shares_memory(attention.out_proj.weight, flat)
    assert np.shares_memory(blocks[1].layers[3].grad_bias, net.flat_grads())
    flat[:] = 0.5
    assert float(net.params()["5.3.bias"][0]) == 0.5 and float(net.params()["2.1.out_proj.weight"][0, 0]) == 0.5


def test_dropout_inside_a_block_draws_its_seed_from_its_path_and_the_same_masks_in_both_backends() -> None:
    description = gpt("LayerNorm", "none", 2, 1, dropout=0.5)
    nets = [build_network(description, backend=backend, seed=11) for backend in BACKENDS]
    for net in nets:
        assert net.layers[3].layers[4].seed == derive_seed(11, 3, 4)  # layer 4 inside layer 3
        assert net.layers[2].layers[1].seed == derive_seed(11, 2, 1)
        assert net.describe()["layers"][3]["layers"][4]["seed"] == derive_seed(11, 3, 4)  # saved with the model
    nets[1].set_params(nets[0].params())
    inputs, _ = random_inputs(description, 3, seed=2)
    for _ in range(2):  # the k-th training pass draws stream k: the same masks each time in both
        outputs = [np.asarray(net.forward(inputs, training=True)) for net in nets]
        masks = [np.asarray(net.layers[3].layers[4].mask) for net in nets]
        assert np.array_equal(masks[0], masks[1]) and 0 < (masks[0] == 0).sum() < masks[0].size
        assert np.allclose(outputs[0], outputs[1], rtol=1e-12, atol=1e-15)
    assert not np.array_equal(np.asarray(nets[0].forward(inputs)), np.asarray(nets[0].forward(inputs, training=True)))


def test_nesting_and_the_layers_inside_containers_are_bounded() -> None:
    layer: dict[str, Any] = {"type": "Dense", "in_features": 2, "out_features": 2}
    for _ in range(20):
        layer = {"type": "Residual", "layers": [layer]}
    deep = {"layers": [layer, {"type": "Softmax"}], "loss": {"type": "CrossEntropy"}, "input_shape": [2]}
    with pytest.raises(ConfigError, match=r"^layer 0(\.0){16} \(Residual\) nests containers more than 16 deep$"):
        plan(deep)
    wide = {
        "layers": [{"type": "Residual", "layers": [{"type": "ReLU"}] * 10_000}, {"type": "Softmax"}],
        "loss": {"type": "CrossEntropy"},
        "input_shape": [2],
    }
    with pytest.raises(ConfigError, match="the architecture has 10002 layers, more than the limit of 10000"):
        plan(wide)
