"""tools/bench.py: what it counts (never how fast anything runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tool_modules import tool


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return tool("bench")


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
    module = tool("bench_threads")
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


# --- tools/bench_cnn.py: the mnist_convnet benchmark ---------------------------------------------


@pytest.fixture(scope="module")
def bench_cnn(bench: ModuleType) -> ModuleType:
    return tool("bench_cnn")  # registered, as `import bench_cnn` in tools/bench.py finds it


def test_the_cnn_products_of_a_step_are_counted_by_hand(bench_cnn: ModuleType) -> None:
    # conv 1->32 3x3 on 28x28 (26x26 out), conv 32->64 3x3 on 13x13 (11x11 out), Dense 1600->10; as
    # (m, k, n) with M = batch * out pixels, K = C * 3 * 3; no dL/dx for the first layer
    m1, m2 = 128 * 26 * 26, 128 * 11 * 11
    assert bench_cnn.matmul_shapes(128) == [
        (m1, 9, 32),
        (32, m1, 9),
        (m2, 288, 64),
        (64, m2, 288),
        (m2, 64, 288),
        (128, 1600, 10),
        (10, 128, 1600),
        (128, 10, 1600),
    ]
    params = bench_cnn.initial_params()
    assert sum(value.size for value in params.values()) == 34826  # Keras's mnist_convnet, without dropout
    assert all(str(value.dtype) == "float32" for value in params.values())


def test_the_plain_numpy_cnn_trains_like_scratchnet(bench_cnn: ModuleType) -> None:
    # Written apart from scratchnet (NCHW, its own im2col, col2im and pooling): the same steps on the
    # same batches give the same losses and weights, up to float32 rounding, including a last, smaller
    # batch; images with blank areas, whose pooling windows tie (the bias alone, after a step).
    from scratchnet.builders import build_network, build_optimizer
    from scratchnet.data.images import to_inputs

    params = bench_cnn.initial_params()
    reference = bench_cnn.PlainCNN(params)
    net = build_network(bench_cnn.ARCHITECTURE, backend="vectorized", dtype="float32", seed=0)
    net.set_params(params)
    optimizer = build_optimizer({"type": "Adam", "lr": bench_cnn.LR}, "vectorized")
    rng = np.random.default_rng(8)
    for batch in (16, 16, 16, 5):
        images = (rng.integers(0, 256, (batch, 28, 28)) * (rng.random((batch, 28, 28)) < 0.3)).astype(np.uint8)
        images[:, :10] = 0
        labels = rng.integers(0, 10, batch)
        reference_loss = reference.step(images, labels)
        inputs = to_inputs(images, "float32").reshape(batch, 1, 28, 28)
        loss = net.loss(net.forward(inputs, training=True), labels)
        net.backward()
        optimizer.step(net)
        assert reference_loss == pytest.approx(loss, rel=1e-5)
    ours = net.params()
    for name in reference.p:
        np.testing.assert_allclose(reference.p[name], ours[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert not np.allclose(reference.p["0.bias"], params["0.bias"])  # it did train
    np.testing.assert_array_equal(reference.predict(images), net.predict(inputs))


def test_bench_cnn_runs_each_contender_in_a_child_and_prints_the_table(
    bench_cnn: ModuleType, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data-dir", str(data_dir), "--threads", "1", "--rounds", "1", "--epochs", "1", "--warmup", "1"]
    assert bench_cnn.main([*argv, "--batches", "2", "--test-images", "500"]) == 0
    printed = capsys.readouterr().out
    assert "mnist_convnet adam: 34826 parameters, batch 128" in printed
    table = [line.split() for line in printed.splitlines()]
    rows = {row[1]: row for row in table if row[:1] == ["1"] and row[1] in ("scratchnet", "numpy", "torch")}
    assert {"scratchnet", "numpy"} <= set(rows)
    assert all(float(row[2]) > 0 and row[-2].endswith("%") for row in rows.values())
    assert "plain NumPy step" in printed and "matrix products" in printed


def test_bench_runs_the_cnn_configuration_through_bench_cnn_with_its_own_flags(
    bench: ModuleType, bench_cnn: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[list[str]] = []

    def main(argv: list[str]) -> int:
        given.append(argv)
        return 0

    monkeypatch.setattr(bench_cnn, "main", main)
    command = ["bench.py", "--configs", "mnist_convnet", "--threads", "2,1", "--rounds", "3", "--epochs", "1"]
    monkeypatch.setattr(sys, "argv", [*command, "--data-dir", "/data", "--skip-numpy"])
    assert bench.main() == 0
    assert given == [["--threads", "2,1", "--rounds", "3", "--epochs", "1", "--data-dir", "/data", "--skip-numpy"]]
    monkeypatch.setattr(sys, "argv", ["bench.py", "--configs", "mnist_convnet,784-1-10"])
    with pytest.raises(SystemExit):  # an unknown configuration: refused before anything runs
        bench.main()
    assert len(given) == 1


# --- tools/bench_gpt_step.py: one training step of nanoGPT's CPU configuration ------------------


@pytest.fixture(scope="module")
def bench_gpt_step(bench: ModuleType) -> ModuleType:
    return tool("bench_gpt_step")  # registered, as `import bench_gpt_step` in tools/bench.py finds it


def test_the_gpt_step_is_nanogpts_cpu_configuration_on_shifted_token_blocks(bench_gpt_step: ModuleType) -> None:
    params = bench_gpt_step.initial_params("float32")
    # per block: c_attn 3 C^2 and c_proj C^2 without biases, two LayerNorm weights C, the MLP's
    # C x 4C and 4C x C with biases 4C and C; then wte V x C, wpe T x C, ln_f C, a head V x C + V
    c, v, t = 128, 65, 64
    block = 4 * c * c + 2 * c + 2 * 4 * c * c + 4 * c + c
    assert sum(value.size for value in params.values()) == 4 * block + v * c + t * c + c + v * c + v == 815041
    assert all(str(value.dtype) == "float32" for value in params.values())
    assert set(bench_gpt_step.torch_names()) == set(params)  # every array has its twin, one to one
    first, second = bench_gpt_step.batches(2), bench_gpt_step.batches(2)
    for (inputs, targets), (again, _) in zip(first, second):
        assert inputs.shape == targets.shape == (12, 64)
        np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # the next token is the target
        np.testing.assert_array_equal(inputs, again)  # a fixed generator: the same batches in every child
        assert inputs.min() >= 0 and targets.max() < 65
    assert not np.array_equal(first[0][0], first[1][0])


def test_the_gpt_twin_check_agrees_to_1e_10_after_one_adamw_step(
    bench_gpt_step: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    assert bench_gpt_step.main(["--check"]) == 0
    printed = capsys.readouterr().out
    assert "agree to 1e-10" in printed and "over 37 arrays of 815041 values" in printed
    result = bench_gpt_step.check()
    assert result["loss_difference"] <= 1e-10 and result["parameter_difference"] <= 1e-10
    assert 3.5 < result["loss"] < 5.0  # about log 65 = 4.17 at GPT's small initial weights
    assert result["smallest_move"] > 1e-4  # the step moved every array (AdamW's first step is about lr)


def test_bench_runs_the_gpt_step_in_alternating_children_and_prints_the_table(
    bench: ModuleType, bench_gpt_step: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    command = ["bench.py", "--configs", "gpt-step", "--steps", "2", "--rounds", "1", "--threads", "1"]
    monkeypatch.setattr(sys, "argv", command)
    assert bench.main() == 0
    printed = capsys.readouterr().out
    assert "gpt-step: nanoGPT's CPU configuration, 4 layers, 4 heads, 128 dimensions, context 64, batch 12" in printed
    assert "agree to 1e-10" in printed
    table = [line.split() for line in printed.splitlines()]
    rows = {row[1]: row for row in table if row[:1] == ["1"] and row[1] in ("scratchnet", "torch")}
    assert set(rows) == {"scratchnet", "torch"}
    ours, theirs = rows["scratchnet"], rows["torch"]
    assert float(ours[2]) > 0 and float(theirs[2]) > 0
    assert float(ours[3]) == pytest.approx(float(ours[2]) / float(theirs[2]), abs=0.02)  # the ratio
    assert float(ours[5]) > 0 and float(theirs[3]) > 0  # each child's peak RSS, MB
    # the same weights and batches: both children's last losses agree to float32 rounding
    losses = [float(line.rsplit("last loss ", 1)[1]) for line in printed.splitlines() if "last loss" in line]
    assert len(losses) == 2 and losses[0] == pytest.approx(losses[1], abs=2e-3)
