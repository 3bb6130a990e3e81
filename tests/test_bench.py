"""tools/bench.py: what it counts (never how fast anything runs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
        (128, 784, 128), (128, 128, 784), (128, 128, 10), (10, 128, 128), (128, 10, 128)]
    flops = sum(2 * m * k * n for m, k, n in bench.matmul_shapes([784, 512, 256, 10], 128))
    # forward 2*128*(784*512 + 512*256 + 256*10); backward the same for dW, plus dL/dx of layers 2 and 3
    assert flops == 2 * 128 * (784 * 512 + 512 * 256 + 256 * 10) * 2 + 2 * 128 * (512 * 256 + 256 * 10)


def test_both_libraries_start_from_the_same_weights_and_see_the_same_order(bench: ModuleType) -> None:
    params = bench.initial_params([784, 32, 10])
    assert {name: value.shape for name, value in params.items()} == {
        "0.weight": (32, 784), "0.bias": (32,), "2.weight": (10, 32), "2.bias": (10,)}
    assert all(str(value.dtype) == "float32" for value in params.values())
    orders = bench.epoch_orders(1000, 3)
    assert all(sorted(order) == list(range(1000)) for order in orders)
    assert orders[0] != orders[1] and orders == bench.epoch_orders(1000, 3)


def test_bench_threads_trains_both_thread_counts_to_the_same_weights(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
