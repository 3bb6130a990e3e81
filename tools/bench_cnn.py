"""Benchmark: scratchnet's vectorized convolutional layers against PyTorch on the CPU and plain NumPy.

    python tools/bench_cnn.py [--data-dir DIR] [--threads 2,1] [--rounds 2] [--epochs 2] [--warmup 20]
                              [--batches N] [--test-images 10000] [--skip-numpy]

The network is Keras's mnist_convnet example without its dropout: Conv2D 3x3 1->32, ReLU,
MaxPool2D 2, Conv2D 3x3 32->64, ReLU, MaxPool2D 2, Flatten, Dense 1600->10, softmax + cross-entropy,
Adam (lr 0.001), batch 128, 34,826 parameters, float32. As in tools/bench.py, every contender
starts from the same initial weights and sees the same batches in the same order, in alternating
child processes (scratchnet, plain NumPy, PyTorch, scratchnet, ...) started with the run's thread
count. Each child trains ``--warmup`` batches untimed (caches, allocators, threads), then ``--epochs``
timed epochs, and reports the median seconds per epoch, its peak RSS and the test accuracy it reached.
``--batches N`` times only the first N batches of each epoch and scales the time to a whole epoch
(a quick look, or a test). The same uint8-to-float step prepares every batch for all three.

"plain NumPy" is the same training written the straightforward way, with no framework: NCHW arrays,
im2col by a strided view, col2im over the kernel offsets, pooling by reshape and an equality mask,
the bias added and summed apart. It times its matrix products apart from the rest. "bound" is the
step's matrix products at the best sgemm rate this machine gives for their shapes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # first: it sets OPENBLAS_THREAD_TIMEOUT before NumPy loads, as `scratchnet train` does
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ARCHITECTURE: dict[str, Any] = {
    "input_shape": [1, 28, 28],
    "layers": [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 32, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Conv2D", "in_channels": 32, "out_channels": 64, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": 1600, "out_features": 10},
        {"type": "Softmax"},
    ],
    "loss": {"type": "CrossEntropy"},
}
NAME = "mnist_convnet adam"
LR = 0.001
SEED = bench.SEED
EVAL_CHUNK = 500  # test images per forward pass: a whole test set at once would need ~2 GB
F32 = np.float32


def initial_params() -> dict[str, Any]:
    """The float32 initial weights every contender starts from: scratchnet's, seed 0."""
    from scratchnet.builders import build_network

    net = build_network(ARCHITECTURE, backend="vectorized", dtype="float32", seed=SEED)
    return {name: value.copy() for name, value in net.params().items()}


def matmul_shapes(batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product of one training step, with K = C kh kw and M = N H' W' for a
    convolution: forward (M, K) x (K, out), dL/dW (out, M) x (M, K), dL/dx (M, out) x (out, K) (not for
    the first layer); a Dense layer as tools/bench.py counts it."""
    from scratchnet.core.architecture import plan

    checked = plan(ARCHITECTURE)
    shapes = []
    for index, (options, shape) in enumerate(zip(checked.options, checked.input_shapes)):
        layer = checked.description["layers"][index]["type"]
        if layer == "Conv2D":
            out, (oh, ow) = options["out_channels"], checked.input_shapes[index + 1][1:]
            k, m = shape[0] * math.prod(options["kernel_size"]), batch * oh * ow
            shapes += [(m, k, out), (out, m, k)] + ([(m, out, k)] if index > 0 else [])
        elif layer == "Dense":
            fan_in, fan_out = options["in_features"], options["out_features"]
            shapes += [(batch, fan_in, fan_out), (fan_out, batch, fan_in)] + (
                [(batch, fan_out, fan_in)] if index else []
            )
    return shapes


def flop_bound(batch: int, images: int) -> tuple[float, float, float]:
    """(seconds, median seconds, GFLOP/s) of one epoch's matrix products (see tools/bench.py)."""
    full, rest = divmod(images, batch)
    seconds, median, flops = 0.0, 0.0, 0.0
    for steps, size in ((full, batch), (1 if rest else 0, rest)):
        for m, k, n in matmul_shapes(size) if steps else []:
            best, typical = bench.sgemm_seconds((m, k, n), repeats=20)
            seconds, median = seconds + steps * best, median + steps * typical
            flops += steps * 2.0 * m * k * n
    return seconds, median, flops / seconds / 1e9


# ---------------------------------------------------------------------------------------------
# The plain NumPy reference


class PlainCNN:
    """The network trained by a straightforward float32 NumPy step (NCHW) with no framework: the
    reference for what the usual im2col recipe costs. Parameters live in one flat array for Adam,
    in scratchnet's names; ``product_seconds`` counts the matrix products."""

    SHAPES: ClassVar[dict[str, tuple[int, ...]]] = {
        "0.weight": (32, 1, 3, 3),
        "0.bias": (32,),
        "3.weight": (64, 32, 3, 3),
        "3.bias": (64,),
        "7.weight": (10, 1600),
        "7.bias": (10,),
    }

    def __init__(self, params: dict[str, Any]) -> None:
        total = sum(math.prod(shape) for shape in self.SHAPES.values())
        self.flat, self.grad_flat = np.empty(total, F32), np.zeros(total, F32)
        self.exp_avg, self.exp_avg_sq, self.work = np.zeros(total, F32), np.zeros(total, F32), np.empty(total, F32)
        self.p: dict[str, Any] = {}
        self.g: dict[str, Any] = {}
        offset = 0
        for name, shape in self.SHAPES.items():
            part = slice(offset, offset + math.prod(shape))
            offset = part.stop
            self.flat[part] = np.asarray(params[name], F32).ravel()
            self.p[name], self.g[name] = self.flat[part].reshape(shape), self.grad_flat[part].reshape(shape)
        self.steps = 0
        self.product_seconds = 0.0

    def product(self, a: Any, b: Any) -> Any:
        started = time.perf_counter()
        result = a @ b
        self.product_seconds += time.perf_counter() - started
        return result

    def conv(self, x: Any, name: str) -> tuple[Any, Any]:
        """z (NCHW) of a 3x3 convolution and its im2col matrix: rows (n, i, j), columns (c, p, q)."""
        weight, bias = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        n, c, h, w = x.shape
        oh, ow = h - 2, w - 2
        cols = sliding_window_view(x, (3, 3), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * 9)
        z = self.product(cols, weight.reshape(len(bias), -1).T) + bias
        return np.ascontiguousarray(z.reshape(n, oh, ow, len(bias)).transpose(0, 3, 1, 2)), cols

    def conv_backward(self, delta: Any, cols: Any, name: str, input_shape: tuple[int, ...] | None) -> Any:
        weight = self.p[f"{name}.weight"]
        out = weight.shape[0]
        n, _, oh, ow = delta.shape
        rows = delta.transpose(0, 2, 3, 1).reshape(-1, out)
        self.g[f"{name}.weight"][...] = self.product(rows.T, cols).reshape(weight.shape)
        self.g[f"{name}.bias"][...] = rows.sum(axis=0)
        if input_shape is None:
            return None
        pieces = self.product(rows, weight.reshape(out, -1)).reshape(n, oh, ow, -1, 3, 3)
        grad = np.zeros(input_shape, F32)
        for p in range(3):
            for q in range(3):
                grad[:, :, p : p + oh, q : q + ow] += pieces[:, :, :, :, p, q].transpose(0, 3, 1, 2)
        return grad

    @staticmethod
    def pool(a: Any) -> tuple[Any, Any]:
        """2x2 max pooling by reshape, and the mask of each window's first maximum in row-major order
        (PyTorch's rule: ties are common, e.g. where a blank patch of image gives every unit the bias)."""
        n, c, h, w = a.shape
        tiles = a[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
        corners = [tiles[:, :, :, p, :, q] for p in (0, 1) for q in (0, 1)]
        # the maximum of the four slices: NumPy's max over axes (3, 5) of the reshape is ~10x slower
        pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
        mask = np.empty(tiles.shape, bool)
        seen = np.zeros(pooled.shape, bool)
        for (p, q), corner in zip(((0, 0), (0, 1), (1, 0), (1, 1)), corners):
            first = (corner == pooled) & ~seen
            mask[:, :, :, p, :, q] = first
            seen |= first
        return pooled, mask

    @staticmethod
    def pool_backward(grad: Any, mask: Any, shape: tuple[int, ...]) -> Any:
        n, c, oh, ow = grad.shape
        result = np.zeros(shape, F32)
        result[:, :, : 2 * oh, : 2 * ow] = (mask * grad[:, :, :, None, :, None]).reshape(n, c, 2 * oh, 2 * ow)
        return result

    def forward(self, x: Any) -> tuple[Any, dict[str, Any]]:
        z1, cols1 = self.conv(x, "0")
        a1 = np.maximum(z1, 0.0)
        p1, mask1 = self.pool(a1)
        z2, cols2 = self.conv(p1, "3")
        a2 = np.maximum(z2, 0.0)
        p2, mask2 = self.pool(a2)
        flat = p2.reshape(len(x), -1)
        logits = self.product(flat, self.p["7.weight"].T) + self.p["7.bias"]
        kept = {"z1": z1, "cols1": cols1, "mask1": mask1, "p1": p1, "z2": z2, "cols2": cols2, "mask2": mask2}
        return logits, {**kept, "flat": flat, "p2": p2}

    def step(self, images: Any, labels: Any) -> float:
        """One training step on uint8 images ``(batch, 28, 28)``; returns the mean loss."""
        batch = len(labels)
        x = (images.astype(F32) / F32(255.0)).reshape(batch, 1, 28, 28)
        logits, kept = self.forward(x)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exps = np.exp(shifted)
        sums = exps.sum(axis=1)
        loss = float((np.log(sums) - shifted[np.arange(batch), labels]).sum()) / batch
        delta = exps / sums[:, None]
        delta[np.arange(batch), labels] -= 1.0  # dL/dz = (p - one-hot(y)) / B
        delta /= batch
        self.g["7.weight"][...] = self.product(delta.T, kept["flat"])
        self.g["7.bias"][...] = delta.sum(axis=0)
        grad = self.product(delta, self.p["7.weight"]).reshape(kept["p2"].shape)
        grad = self.pool_backward(grad, kept["mask2"], kept["z2"].shape) * (kept["z2"] > 0)
        grad = self.conv_backward(grad, kept["cols2"], "3", kept["p1"].shape)
        grad = self.pool_backward(grad, kept["mask1"], kept["z1"].shape) * (kept["z1"] > 0)
        self.conv_backward(grad, kept["cols1"], "0", None)
        self.adam()
        return loss

    def adam(self) -> None:
        """Adam with PyTorch's definitions (as scratchnet's), on the flat arrays."""
        self.steps += 1
        bench.adam_step(self.flat, self.grad_flat, self.exp_avg, self.exp_avg_sq, self.work, self.steps, LR)

    def predict(self, images: Any) -> Any:
        x = (images.astype(F32) / F32(255.0)).reshape(len(images), 1, 28, 28)
        return self.forward(x)[0].argmax(axis=1)


# ---------------------------------------------------------------------------------------------
# The children


def contender(which: str, threads: int) -> tuple[Callable[[Any, Any], object], Callable[[Any], Any], Any]:
    """(train step on uint8 images and labels, predict on uint8 images, the object) for one contender."""
    from scratchnet.data.images import to_inputs

    if which == "numpy":
        plain = PlainCNN(initial_params())
        return plain.step, plain.predict, plain
    if which == "scratchnet":
        from scratchnet.builders import build_network, build_optimizer

        net = build_network(ARCHITECTURE, backend="vectorized", dtype="float32", seed=SEED)
        net.set_params(initial_params())
        optimizer = build_optimizer({"type": "Adam", "lr": LR}, "vectorized")

        def inputs(images: Any) -> Any:
            return to_inputs(images, "float32").reshape(len(images), 1, 28, 28)

        def step(images: Any, labels: Any) -> None:
            # the step of scratchnet.training.train.run: forward, loss, backward, optimizer step
            net.loss(net.forward(inputs(images), training=True), labels)
            net.backward()
            optimizer.step(net)

        return step, lambda images: net.predict(inputs(images)), net
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model: Any = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(1600, 10),
    )
    params = initial_params()
    with torch.no_grad():
        for index in (0, 3, 7):
            model[index].weight.copy_(torch.from_numpy(params[f"{index}.weight"]))
            model[index].bias.copy_(torch.from_numpy(params[f"{index}.bias"]))
    torch_optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_function = torch.nn.CrossEntropyLoss()

    def torch_inputs(images: Any) -> Any:
        return torch.from_numpy(to_inputs(images, "float32").reshape(len(images), 1, 28, 28))

    def torch_step(images: Any, labels: Any) -> None:
        torch_optimizer.zero_grad(set_to_none=True)
        loss_function(model(torch_inputs(images)), torch.from_numpy(labels.astype(np.int64))).backward()
        torch_optimizer.step()

    def torch_predict(images: Any) -> Any:
        with torch.no_grad():
            return model(torch_inputs(images)).argmax(1).numpy()

    return torch_step, torch_predict, model


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    from scratchnet.data import load_dataset
    from scratchnet.data.images import take_images

    data = load_dataset("mnist", args.data_dir, download=False, progress=False)
    images, labels = data.train_images, data.train_labels.astype(np.intp)
    step, predict, model = contender(args.child, args.threads)
    batch, n = args.batch, len(labels)
    per_epoch = -(-n // batch)
    timed = per_epoch if args.batches is None else min(args.batches, per_epoch)
    orders = [np.asarray(order, np.intp) for order in bench.epoch_orders(n, args.epochs + 1)]
    for start in range(0, min(args.warmup, per_epoch) * batch, batch):  # epoch 0's first batches
        indices = orders[0][start : start + batch]
        step(take_images(images, indices), labels[indices])
    if isinstance(model, PlainCNN):
        model.product_seconds = 0.0  # count the timed epochs' products only
    seconds, loads = [], []
    for order in orders[1:]:
        with bench.EpochTimer() as timer:
            for start in range(0, timed * batch, batch):
                indices = order[start : start + batch]
                step(take_images(images, indices), labels[indices])
        seconds.append(timer.seconds)
        loads.append(timer.other_load)
    test = data.test_images[: args.test_images]
    predicted = np.concatenate([predict(test[s : s + EVAL_CHUNK]) for s in range(0, len(test), EVAL_CHUNK)])
    result = {
        "times": [s * per_epoch / timed for s in seconds],  # per whole epoch
        "loads": loads,
        "accuracy": float(np.mean(predicted == data.test_labels[: len(test)])),
        "rss_mb": bench.peak_rss_mb(),
    }
    if isinstance(model, PlainCNN):
        steps = args.epochs * timed
        result["products_us"] = model.product_seconds / steps * 1e6
        result["step_us"] = sum(seconds) / steps * 1e6
    return result


def spawn(which: str, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    command = ["--child", which, "--batch", str(args.batch), "--epochs", str(args.epochs)]
    command += ["--warmup", str(args.warmup), "--test-images", str(args.test_images)]
    if args.batches is not None:
        command += ["--batches", str(args.batches)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    return bench.run_child(__file__, command, threads, f"bench_cnn: the {which} run")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("SCRATCHNET_DATA_DIR"))
    parser.add_argument("--threads", default="2,1", help="BLAS/torch threads: a list like 2,1")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each contender per thread count")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches before them")
    parser.add_argument("--batches", type=int, default=None, help="time only this many batches of each epoch")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--test-images", type=int, default=10000, help="test images for the accuracy")
    parser.add_argument("--skip-numpy", action="store_true", help="do not run the plain NumPy reference")
    parser.add_argument("--child", choices=["scratchnet", "numpy", "torch", "bound"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.threads = int(args.threads)
        if args.child == "bound":
            seconds, median, rate = flop_bound(args.batch, 60000)
            print(json.dumps({"seconds": seconds, "median_seconds": median, "rate": rate}))
        else:
            print(json.dumps(run_child(args)))
        return 0
    try:
        import torch  # noqa: F401

        libraries = ["scratchnet", "numpy", "torch"]
    except ImportError:
        libraries = ["scratchnet", "numpy"]
        print("PyTorch is not importable: no comparison. For it: pip install torch (its CPU build)")
    if args.skip_numpy:
        libraries.remove("numpy")
    print(f"machine: {bench.machine()}")
    print(f"{NAME}: {sum(math.prod(v.shape) for v in initial_params().values())} parameters, batch {args.batch}")
    print(
        f"{'threads':>7} {'library':<10} {'s/epoch':>8} {'ratio':>6} {'rounds':>9} {'bound s':>8} {'x bound':>7} "
        f"{'x med':>6} {'RSS MB':>7} {'test acc':>8} {'other load':>10}"
    )
    splits, rates, runs_seen = [], [], []
    for threads in [int(t) for t in args.threads.split(",")]:
        runs: dict[str, list[dict[str, Any]]] = {library: [] for library in libraries}
        bounds = []
        for _ in range(args.rounds):
            bounds.append(spawn("bound", args, threads))
            for library in libraries:
                runs[library].append(spawn(library, args, threads))
        bound, rate = min((b["seconds"], b["rate"]) for b in bounds)
        rates.append(rate)
        typical = statistics.median(b["median_seconds"] for b in bounds)
        medians = {
            library: statistics.median(t for r in results for t in r["times"]) for library, results in runs.items()
        }
        for library, results in runs.items():
            ratio, spread = "", ""
            if "torch" in runs and library != "torch":
                ratio = f"{medians[library] / medians['torch']:.2f}"
                rounds = [
                    statistics.median(a["times"]) / statistics.median(b["times"])
                    for a, b in zip(results, runs["torch"])
                ]
                spread = f"{min(rounds):.2f}-{max(rounds):.2f}"
            loads = [load for r in results for load in r["loads"]]
            rss = max(r["rss_mb"] for r in results)
            accuracy = statistics.mean(r["accuracy"] for r in results)
            print(
                f"{threads:>7} {library:<10} {medians[library]:>8.2f} {ratio:>6} {spread:>9} {bound:>8.2f} "
                f"{medians[library] / bound:>7.2f} {medians[library] / typical:>6.2f} {rss:>7.0f} "
                f"{100 * accuracy:>7.2f}% {100 * statistics.mean(loads):>9.0f}%"
            )
        for library, results in runs.items():  # every run, in order: the machine's drift shows here
            each = ", ".join(f"{t:.1f} ({100 * load:.0f}%)" for r in results for t, load in zip(r["times"], r["loads"]))
            runs_seen.append(f"{threads} thread(s), {library}: {each}")
        if "numpy" in runs:
            products = statistics.median(r["products_us"] for r in runs["numpy"])
            step_us = statistics.median(r["step_us"] for r in runs["numpy"])
            bound_step = bound / -(-60000 // args.batch) * 1e6
            splits.append(
                f"{threads} thread(s): plain NumPy step {step_us / 1e3:.1f} ms, of which matrix products "
                f"{products / 1e3:.1f} ms ({products / bound_step:.2f}x their bound of {bound_step / 1e3:.1f} ms)"
            )
    print(
        "ratio = median epoch time / PyTorch's (rounds: the lowest and highest ratio of one round's pair of runs); "
        f"bound = an epoch's matrix products at the best sgemm rate measured ({', '.join(f'{r:.0f}' for r in rates)} "
        "GFLOP/s); x med = the same at the median rate; other load = other processes' share of the CPUs"
    )
    print("s/epoch of each timed epoch, round by round (other processes' load):")
    for line in runs_seen + splits:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
