"""tools/bench.py: what it counts (never how fast anything runs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "tools" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    return module


def test_the_matrix_products_of_a_step_are_counted_by_hand(bench: ModuleType) -> None:
    # 784-128-10 at batch 128: z1 = x W1^T, dW1 = d1^T x (no dL/dx for the data), z2 = a1 W2^T,
    # dW2 = d2^T a1, dL/da1 = d2 W2; as (m, k, n) of an (m, k) by (k, n) product
    assert bench.matmul_shapes([784, 128, 10], 128) == [
        (128, 784, 128),
        (128, 128, 784),
        (128, 128, 10),
        (10, 128, 128),
        (128, 10, 128),
    ]
    flops = sum(2 * m * k * n for m, k, n in bench.matmul_shapes([784, 512, 256, 10], 128))
    # forward 2*128*(784*512 + 512*256 + 256*10); backward the same for dW, plus dL/dx of layers 2 and 3
    assert flops == 2 * 128 * (784 * 512 + 512 * 256 + 256 * 10) * 2 + 2 * 128 * (512 * 256 + 256 * 10)


def test_both_libraries_start_from_the_same_weights_and_see_the_same_order(bench: ModuleType) -> None:
    params = bench.initial_params([784, 32, 10])
    assert {name: value.shape for name, value in params.items()} == {
        "0.weight": (32, 784),
        "0.bias": (32,),
        "2.weight": (10, 32),
        "2.bias": (10,),
    }
    assert all(str(value.dtype) == "float32" for value in params.values())
    orders = bench.epoch_orders(1000, 3)
    assert all(sorted(order) == list(range(1000)) for order in orders)
    assert orders[0] != orders[1] and orders == bench.epoch_orders(1000, 3)


def test_bench_threads_trains_both_thread_counts_to_the_same_weights(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("bench_threads", BENCH.parent / "bench_threads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = module.parallel.MIN_CHUNK
    module.parallel.MIN_CHUNK = 1024  # so that this small network is split too
    try:
        code = module.main(["--data-dir", str(data_dir), "--sizes", "784-16-10", "--rounds", "2", "--steps", "3"])
    finally:
        module.parallel.MIN_CHUNK = saved
    printed = capsys.readouterr().out
    assert code == 0 and "weights bit-identical: True" in printed
    assert "1 thread(s): step" in printed and "2 thread(s): step" in printed


@pytest.mark.parametrize("optimizer", [{"type": "SGD", "lr": 0.1}, {"type": "Adam", "lr": 0.001}])
def test_the_plain_numpy_reference_trains_like_scratchnet(bench: ModuleType, optimizer: dict[str, Any]) -> None:
    # The reference is written apart from scratchnet; the same steps on the same batches must give
    # the same losses and weights (up to float32 rounding), including a last, smaller batch.
    from scratchnet.builders import build_network, build_optimizer
    from scratchnet.core.architecture import mlp
    from scratchnet.data.images import to_inputs

    sizes = [784, 24, 12, 10]
    params = bench.initial_params(sizes)
    reference = bench.PlainNumpy(sizes, optimizer, params)
    net = build_network(mlp(sizes), backend="vectorized", dtype="float32", seed=0)
    net.set_params(params)
    step = build_optimizer(optimizer, "vectorized")
    rng = np.random.default_rng(7)
    for batch in (32, 32, 32, 9):
        images = (rng.integers(0, 256, (batch, 784)) * (rng.random((batch, 784)) < 0.2)).astype(np.uint8)
        labels = rng.integers(0, 10, batch)
        reference_loss = reference.step(images, labels)
        loss = net.loss(net.forward(to_inputs(images, "float32"), training=True), labels)
        net.backward()
        step.step(net)
        assert reference_loss == pytest.approx(loss, rel=1e-6)
    ours = net.params()
    for index in range(3):
        np.testing.assert_allclose(reference.weights[index], ours[f"{2 * index}.weight"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(reference.biases[index], ours[f"{2 * index}.bias"], rtol=1e-5, atol=1e-7)
    assert not np.allclose(reference.weights[0], params["0.weight"])  # it did train
    # the products it times are the ones the bound counts: 3 forward, 3 dL/dW, 2 dL/dx per step
    timed: list[tuple[int, int, int]] = []
    product = reference.product

    def counted(a: Any, b: Any, out: Any) -> None:
        timed.append((a.shape[0], a.shape[1], b.shape[1]))
        product(a, b, out)

    reference.product = counted
    reference.step(images, labels)
    assert sorted(timed) == sorted(bench.matmul_shapes(sizes, 9))
