"""The vectorized Network keeps every parameter in one flat array and every gradient in another, and
its optimizers then update the flat arrays in one go, split into parts that threads update at the
same time. The per-parameter update (checked against the written-out formulas and the loops backend
in test_optimizers.py) is the reference here: the flat one must give bit-identical parameters and
state, in one part or several."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnet.builders import build_network, build_optimizer
from scratchnet.checks.crosscheck import random_batch
from scratchnet.core.architecture import mlp
from scratchnet.vectorized import parallel

SPECS = [
    {"type": "SGD", "lr": 0.1},
    {"type": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    {"type": "SGD", "lr": 0.05, "momentum": 0.5, "dampening": 0.3},
    {"type": "Adagrad", "lr": 0.05, "lr_decay": 0.01, "weight_decay": 0.001, "initial_accumulator_value": 0.1},
    {"type": "RMSprop", "lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01},
    {"type": "Adam", "lr": 0.01},
    {"type": "Adam", "lr": 0.01, "betas": [0.8, 0.99], "weight_decay": 0.01},
    {"type": "AdamW", "lr": 0.01, "weight_decay": 0.1},
]


class PerArray:
    """The same live arrays, without the flat ones: an optimizer updates them one array at a time."""

    def __init__(self, network: Any) -> None:
        self.network = network

    def params(self) -> dict[str, Any]:
        return self.network.params()  # type: ignore[no-any-return]

    def grads(self) -> dict[str, Any]:
        return self.network.grads()  # type: ignore[no-any-return]


def test_parameters_and_gradients_are_views_of_the_flat_arrays_in_order() -> None:
    net = build_network(mlp([5, 4, 3]), backend="vectorized", dtype="float32", seed=3)
    fresh = build_network(mlp([5, 4, 3]), backend="vectorized", dtype="float32", seed=3).params()
    params, flat = net.params(), net.flat_params()
    assert flat.shape == (5 * 4 + 4 + 4 * 3 + 3,) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat, np.concatenate([fresh[name].ravel() for name in fresh]))  # values kept
    assert all(value.base is flat for value in params.values())
    inputs, labels = random_batch(5, 3, 6, 1)
    net.loss(net.forward(inputs, training=True), labels)
    net.backward()
    grads = net.grads()
    np.testing.assert_array_equal(net.flat_grads(), np.concatenate([grads[name].ravel() for name in grads]))
    # set_params copies into the shared arrays, so a loaded model still trains through the flat ones
    net.set_params({name: np.full(value.shape, 0.5) for name, value in params.items()})
    assert np.all(net.flat_params() == 0.5) and all(value.base is flat for value in net.params().values())


def train(net: Any, trainable: Any, optimizer: Any, steps: int, seed: int) -> None:
    inputs, labels = random_batch(6, 3, 5, seed)
    for _ in range(steps):
        net.loss(net.forward(inputs, training=True), labels)
        net.backward()
        optimizer.step(trainable)


def assert_same(first: Any, second: Any) -> None:
    a, b = first.params(), second.params()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def assert_same_state(first: Any, second: Any) -> None:
    a, b = first.export_state(), second.export_state()
    assert a["step"] == b["step"] and sorted(a["arrays"]) == sorted(b["arrays"])
    for key in a["arrays"]:
        assert a["arrays"][key].shape == b["arrays"][key].shape, key
        np.testing.assert_array_equal(a["arrays"][key], b["arrays"][key], err_msg=key)


@contextmanager
def threads(count: int) -> Iterator[None]:
    """Flat steps in up to ``count`` parts, however small the network (74 parameters below)."""
    saved = parallel.MIN_CHUNK
    parallel.MIN_CHUNK = 1
    parallel.set_threads(count)
    try:
        yield
    finally:
        parallel.MIN_CHUNK = saved
        parallel.set_threads(None)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    spec=st.sampled_from(SPECS),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**32),
    steps=st.integers(1, 4),
    first_threads=st.integers(1, 3),
    then_threads=st.integers(1, 3),
)
def test_a_flat_step_equals_one_step_per_parameter_array(
    spec: dict[str, Any], dtype: str, seed: int, steps: int, first_threads: int, then_threads: int
) -> None:
    description = mlp([6, 5, 4, 3])
    flat_net = build_network(description, backend="vectorized", dtype=dtype, seed=seed)
    reference_net = build_network(description, backend="vectorized", dtype=dtype, seed=seed)
    flat_opt, reference_opt = build_optimizer(spec, "vectorized"), build_optimizer(spec, "vectorized")
    with threads(first_threads):
        train(flat_net, flat_net, flat_opt, steps, seed)
    train(reference_net, PerArray(reference_net), reference_opt, steps, seed)
    assert len(flat_opt.parts) == first_threads  # 74 parameters: 16-element boundaries leave room for 3 parts
    assert_same(flat_net, reference_net)
    assert_same_state(flat_opt, reference_opt)

    # The same optimizer goes on with another number of threads (the flat state is split anew).
    with threads(then_threads):
        train(flat_net, flat_net, flat_opt, 1, seed + 3)
    train(reference_net, PerArray(reference_net), reference_opt, 1, seed + 3)
    assert_same(flat_net, reference_net)
    assert_same_state(flat_opt, reference_opt)

    # The state moves between the two ways: exported from the flat one and imported into a fresh
    # optimizer that steps flat, or the same optimizer going on one array at a time.
    resumed = build_optimizer(spec, "vectorized")
    resumed.import_state(flat_opt.export_state())
    with threads(then_threads):
        train(flat_net, flat_net, resumed, 2, seed + 1)
    train(reference_net, PerArray(reference_net), reference_opt, 2, seed + 1)
    assert_same(flat_net, reference_net)
    assert_same_state(resumed, reference_opt)
    train(flat_net, PerArray(flat_net), resumed, 1, seed + 2)
    train(reference_net, reference_net, reference_opt, 1, seed + 2)
    assert_same(flat_net, reference_net)
    assert_same_state(resumed, reference_opt)


def test_an_optimizer_moved_to_another_network_checks_its_state() -> None:
    """State kept flat for one layout is still checked against the next network's parameters."""
    import pytest

    from scratchnet.core.errors import ShapeError

    first = build_network(mlp([6, 5, 3]), backend="vectorized", seed=1)
    optimizer = build_optimizer({"type": "Adam", "lr": 0.01}, "vectorized")
    train(first, first, optimizer, 1, 1)
    other = build_network(mlp([6, 4, 3]), backend="vectorized", seed=1)
    with pytest.raises(ShapeError, match="shape"):
        train(other, other, optimizer, 1, 1)
