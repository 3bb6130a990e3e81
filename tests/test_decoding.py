"""Incremental decoding with a key/value cache (spec/math.md, section 24): fed one token at a time, a
network of either backend gives at every position what its full forward pass gives there (float64,
within 1e-12), the two backends agree within 1e-12, a container that steps its children works, and
misuse is a one-line error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import gpt_architectures, transformer_architectures

from scratchnet import loops, vectorized
from scratchnet.builders import build_network
from scratchnet.checks.crosscheck import random_tokens
from scratchnet.core.decoding import Cache, Decoder, step_layers
from scratchnet.core.errors import ConfigError, LabelError, ScratchnetError, ShapeError

BACKENDS = ("loops", "vectorized")
TOLERANCE = 1e-12


def gpt_stack(dim: int = 8, heads: int = 2, vocabulary: int = 7, length: int = 6) -> dict[str, Any]:
    """A GPT-like flat stack whose layers all keep activations of order 1 (He and Glorot init)."""
    return {
        "vocabulary": vocabulary,
        "input_shape": [length],
        "layers": [
            {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim, "init": "he_normal"},
            {"type": "PositionEmbedding", "max_length": length + 2, "dim": dim, "init": "he_normal"},
            {"type": "LayerNorm", "dim": dim},
            {"type": "CausalSelfAttention", "dim": dim, "heads": heads, "init": "glorot_uniform"},
            {"type": "RMSNorm", "dim": dim},
            {"type": "CausalSelfAttention", "dim": dim, "heads": 1, "bias": False, "init": "glorot_uniform"},
            {"type": "Dense", "in_features": dim, "out_features": 3 * dim, "init": "glorot_uniform"},
            {"type": "GELU"},
            {"type": "Dropout", "rate": 0.5},
            {"type": "Dense", "in_features": 3 * dim, "out_features": vocabulary, "init": "glorot_uniform"},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


def decoded(network: Any, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The outputs and logits of every position, fed one position of every sequence at a time: (N, T, K)."""
    decoder = Decoder(network)
    outputs, logits = [], []
    for t in range(len(ids[0])):
        outputs.append(decoder.step([sequence[t] for sequence in ids]))
        logits.append(decoder.logits)
    return np.asarray(outputs).transpose(1, 0, 2), np.asarray(logits).transpose(1, 0, 2)


def assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    assert np.all(np.abs(got - expected) <= TOLERANCE * np.maximum(1.0, np.abs(expected))), np.abs(got - expected).max()


@settings(max_examples=25, deadline=None)
@given(description=transformer_architectures(), batch=st.integers(1, 3), seed=st.integers(0, 2**32))
def test_the_cached_steps_give_the_full_forward_pass_at_every_position(
    description: dict[str, Any], batch: int, seed: int
) -> None:
    check_decoding(description, batch, seed)


@settings(max_examples=25, deadline=None)
@given(description=gpt_architectures(), batch=st.integers(1, 3), seed=st.integers(0, 2**32))
def test_gpts_of_residual_blocks_decode_as_their_full_forward_pass(
    description: dict[str, Any], batch: int, seed: int
) -> None:
    # Residual.step: y_t = x_t + f(x_t), its layers stepping with their own part of the cache
    check_decoding(description, batch, seed)


def check_decoding(description: dict[str, Any], batch: int, seed: int) -> None:
    """The cached steps equal the full forward pass at every position, in each backend, and the
    backends agree."""
    length, vocabulary = description["input_shape"][0], description["vocabulary"]
    ids, _ = random_tokens(length, vocabulary, vocabulary, batch, seed)
    steps = {}
    for backend in BACKENDS:
        network: Any = build_network(description, backend=backend, seed=seed)
        full = np.asarray(network.forward(ids))
        logits = np.asarray(network.loss_inputs)  # what the final Softmax read
        outputs, step_logits = decoded(network, ids)
        assert_close(outputs, full)
        assert_close(step_logits, logits)
        steps[backend] = outputs
    assert_close(steps["loops"], steps["vectorized"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gpt_stack_decodes_two_sequences_at_once(backend: str) -> None:
    description = gpt_stack()
    network = build_network(description, backend=backend, seed=11)
    ids = [[0, 3, 6, 1, 1, 2], [5, 5, 4, 0, 6, 3]]
    outputs, _ = decoded(network, ids)
    assert_close(outputs, np.asarray(network.forward(ids)))
    alone, _ = decoded(network, [ids[1]])  # the second sequence does not depend on the first
    assert_close(alone[0], outputs[1])
    probabilities = outputs.sum(axis=-1)
    assert np.allclose(probabilities, 1.0)


def test_the_backends_decode_the_same_distributions() -> None:
    ids = [[2, 2, 6, 0, 5, 1]]
    results = [decoded(build_network(gpt_stack(), backend=backend, seed=3), ids)[0] for backend in BACKENDS]
    assert_close(results[0], results[1])
    assert np.abs(results[0] - results[0][:, :1]).max() > 1e-3  # the positions differ: not a constant


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_starts_again_from_position_zero(backend: str) -> None:
    decoder = Decoder(build_network(gpt_stack(), backend=backend, seed=5))
    first = decoder.feed([1, 2, 3])
    assert decoder.position == 3
    decoder.reset()
    assert decoder.position == 0
    assert decoder.feed([1, 2, 3]) == first
    assert decoder.feed([4]) != first


class ToyResidual:
    """A container as the module docstring of scratchnet/core/decoding.py describes one: y = x + f(x),
    f a list of layers, stepped by stepping its children (a stand-in for scratchnet's Residual)."""

    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers

    def forward(self, inputs: Any) -> Any:
        outputs = inputs
        for layer in self.layers:
            outputs = layer.forward(outputs)
        return np.asarray(inputs) + np.asarray(outputs)

    def step(self, inputs: Any, cache: Cache) -> Any:
        return np.asarray(inputs) + np.asarray(step_layers(self.layers, inputs, cache))


@pytest.mark.parametrize("module", [loops, vectorized])
def test_a_container_steps_its_children_with_the_same_cache(module: Any) -> None:
    dim, length = 6, 5
    block = ToyResidual(
        [
            module.LayerNorm(dim),
            module.CausalSelfAttention(dim, 3, init="glorot_uniform", seed=1),
            module.Dense(dim, dim, init="glorot_uniform", seed=2),
            module.CausalSelfAttention(dim, 2, init="glorot_uniform", seed=3),
        ]
    )
    x = np.asarray(vectorized.Embedding(4, dim, init="he_normal", seed=4).weight)[[0, 1, 2, 3, 1]][None]  # (1, 5, 6)
    full = block.forward(x.tolist() if module is loops else x)
    cache = Cache(length)
    rows = []
    for t in range(length):
        position = x[:, t : t + 1]
        rows.append(block.step(position.tolist() if module is loops else position, cache)[:, 0])
        cache.position += 1
    assert_close(np.stack(rows, axis=1), full)


@pytest.mark.parametrize("backend", BACKENDS)
def test_misuse_is_a_one_line_error(backend: str) -> None:
    network: Any = build_network(gpt_stack(length=3), backend=backend, seed=2)
    decoder = Decoder(network)
    decoder.feed([1, 2, 3])
    errors: list[ScratchnetError] = []
    with pytest.raises(ShapeError, match="at most 3 positions") as full:
        decoder.step([4])
    errors.append(full.value)
    decoder.reset()
    with pytest.raises(LabelError, match="outside the vocabulary") as bad_id:
        decoder.step([7])
    errors.append(bad_id.value)
    decoder.reset()
    decoder.step([1, 2])
    with pytest.raises(ShapeError, match="one token per sequence") as batch:
        decoder.step([1])
    errors.append(batch.value)
    mse = {"type": "MeanSquaredError"}
    dense = {"layers": [{"type": "Dense", "in_features": 2, "out_features": 2}], "loss": mse}
    with pytest.raises(ConfigError, match="reads token ids") as images:
        Decoder(build_network(dense, backend=backend))
    errors.append(images.value)
    flat = {"input_shape": [1, 2, 2], "layers": [{"type": "Flatten"}], "loss": mse}
    network.layers[4] = build_network(flat, backend=backend).layers[0]
    with pytest.raises(ConfigError, match=r"layer 4 \(Flatten\) cannot decode") as flatten:
        Decoder(network)
    errors.append(flatten.value)
    assert all("\n" not in str(error) for error in errors)


@pytest.mark.parametrize("module", [loops, vectorized])
def test_a_position_past_the_position_table_is_a_one_line_error(module: Any) -> None:
    table = module.PositionEmbedding(2, 3)
    cache = Cache(5)  # a cache longer than the table: the table's own check fires
    cache.position = 2
    x = [[[0.0, 0.0, 0.0]]] if module is loops else np.zeros((1, 1, 3))
    with pytest.raises(ShapeError, match="position 3, but the layer holds 2") as error:
        table.step(x, cache)
    assert "\n" not in str(error.value)
    cache.position = 1
    assert np.allclose(np.asarray(table.step(x, cache))[0, 0], np.asarray(table.weight)[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cache_that_forgets_the_earlier_positions_is_caught(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison can fail: with a fresh state at every step, attention at position t sees no
    earlier key (the loops' lists hold position t alone; the arrays hold zeros before t)."""
    network = build_network(gpt_stack(), backend=backend, seed=8)
    ids = [[1, 4, 4, 2, 0, 6]]
    full = np.asarray(network.forward(ids))
    monkeypatch.setattr(Cache, "state", lambda self, layer, make: make())
    outputs, _ = decoded(network, ids)
    assert np.allclose(outputs[:, 0], full[:, 0])  # position 0 has nothing to forget
    assert np.abs(outputs[:, 1:] - full[:, 1:]).max() > 1e-4
