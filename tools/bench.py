"""Benchmark: scratchnet's vectorized backend against PyTorch on the CPU, and the loops backend.

    python tools/bench.py [--data-dir DIR] [--epochs 3] [--rounds 2] [--threads N] [--batch-sizes 128]
                          [--configs NAME,...]

For each configuration, scratchnet and PyTorch train the same MLP from the same initial weights on
the same float32 data in the same order, with the same optimizer and batch size. They run in
alternating child processes (scratchnet, NumPy, PyTorch, scratchnet, ...), so a noisy machine
hurts both alike; each child trains one warm-up epoch and then ``--epochs`` timed ones. The table
gives the median seconds per timed epoch, images/s, the ratio scratchnet / PyTorch, the peak RSS
of each whole process, the test accuracy each reached, and the share of the CPUs that other
processes used during the timed epochs. It also measures the machine's sgemm rate for the layer
shapes (in a child process started with the run's thread count, once per round, keeping the
fastest) and gives the matrix-product lower bound of an epoch, and the loops backend's images/s.

A third child, "numpy", trains the same network with a hand-written NumPy step and no framework
around it (``PlainNumpy``): the reference for what NumPy itself costs. It times its matrix products
apart from the rest, and the tool prints that split against the bound (``--skip-numpy`` leaves it out).

Without PyTorch it prints scratchnet's own figures and how to install PyTorch's CPU build.
tools/bench_cnn.py does the same for a convolutional network (Keras's mnist_convnet);
``--configs mnist_convnet`` runs it from here, after any MLP configurations asked for.
tools/bench_gpt_step.py times one training step of nanoGPT's CPU configuration against a PyTorch
twin; ``--configs gpt-step`` runs it from here, after the others. tools/bench_gpt.py runs the whole
``--recipe gpt`` and ``--recipe microgpt`` trainings beside their references; ``--configs gpt`` runs it
from here, last (``--steps`` shortens its trainings).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Before NumPy, as `scratchnet train` does: shorten OpenBLAS's idle spinning, which NumPy's OpenBLAS
# reads once when it loads, so that the optimizers' threads find a free core, and let glibc reuse
# freed large blocks (docs/performance.md); every contender's child process starts so.
from scratchnet.cli import keep_freed_memory, shorten_openblas_spin  # noqa: E402

shorten_openblas_spin()
keep_freed_memory()
import numpy as np  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "784-128-10 sgd": {"sizes": [784, 128, 10], "optimizer": {"type": "SGD", "lr": 0.1}},
    "784-512-256-10 adam": {"sizes": [784, 512, 256, 10], "optimizer": {"type": "Adam", "lr": 0.001}},
}
SEED = 0
CNN_CONFIG = "mnist_convnet"  # run by tools/bench_cnn.py
GPT_CONFIG = "gpt-step"  # run by tools/bench_gpt_step.py
GPT_TRAINING = "gpt"  # run by tools/bench_gpt.py


# ---------------------------------------------------------------------------------------------
# Measurements shared by both children


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat; (0, 0) where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class EpochTimer:
    """Wall time of an epoch, and the share of all CPUs that other processes used meanwhile."""

    def __enter__(self) -> EpochTimer:
        self.busy0, self.total0 = cpu_jiffies()
        self.own0 = sum(os.times()[:2])
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.wall0
        busy1, total1 = cpu_jiffies()
        own = sum(os.times()[:2]) - self.own0
        ticks = os.sysconf("SC_CLK_TCK")
        if total1 > self.total0:
            others = (busy1 - self.busy0) / ticks - own
            self.other_load = max(0.0, others / ((total1 - self.total0) / ticks))
        else:
            self.other_load = float("nan")


def epoch_orders(n: int, epochs: int) -> list[list[int]]:
    from scratchnet.core.rng import permutation

    return [permutation(SEED, 500 + epoch, n) for epoch in range(epochs)]


def initial_params(sizes: list[int]) -> dict[str, Any]:
    from scratchnet.builders import build_network
    from scratchnet.core.architecture import mlp

    net = build_network(mlp(sizes), backend="vectorized", dtype="float32", seed=SEED)
    return {name: value.copy() for name, value in net.params().items()}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


# ---------------------------------------------------------------------------------------------
# The children


def timed_epochs(
    n: int, epochs: int, batch: int, train_step: Callable[[Any], object], warmed_up: Callable[[], None] = lambda: None
) -> tuple[list[float], list[float]]:
    """Seconds and other processes' load of each epoch after the first, which warms up caches,
    allocators and threads (``warmed_up`` runs when it ends); ``train_step`` gets each batch's indices."""
    times, loads = [], []
    for epoch, order in enumerate(epoch_orders(n, epochs + 1)):
        order_array = np.asarray(order, dtype=np.intp)
        with EpochTimer() as timer:
            for start in range(0, len(order_array), batch):
                train_step(order_array[start : start + batch])
        if epoch == 0:
            warmed_up()
        else:
            times.append(timer.seconds)
            loads.append(timer.other_load)
    return times, loads


def run_scratchnet(config: dict[str, Any], data_dir: str | None, epochs: int, batch: int) -> dict[str, Any]:
    from scratchnet.builders import build_network, build_optimizer
    from scratchnet.core.architecture import mlp
    from scratchnet.data import load_dataset
    from scratchnet.data.images import take_images, to_inputs

    data = load_dataset("mnist", data_dir, download=False, progress=False)
    images, labels = data.train_images.reshape(len(data.train_images), -1), data.train_labels.astype(np.intp)
    net = build_network(mlp(config["sizes"]), backend="vectorized", dtype="float32", seed=SEED)
    net.set_params(initial_params(config["sizes"]))
    optimizer = build_optimizer(config["optimizer"], "vectorized")

    def train_step(indices: Any) -> None:
        # the step of scratchnet.training.train.run: uint8 images scaled per batch, then forward, loss,
        # backward, optimizer step
        outputs = net.forward(to_inputs(take_images(images, indices), "float32"), training=True)
        net.loss(outputs, labels[indices])
        net.backward()
        optimizer.step(net)

    times, loads = timed_epochs(len(labels), epochs, batch, train_step)
    test = data.test_images.reshape(len(data.test_images), -1)
    accuracy = float(np.mean(net.predict(to_inputs(test, "float32")) == data.test_labels))
    return {"times": times, "loads": loads, "accuracy": accuracy, "rss_mb": peak_rss_mb()}


def adam_step(p: Any, g: Any, m: Any, v: Any, work: Any, steps: int, lr: float) -> None:
    """One Adam step (PyTorch's definitions, as scratchnet's; betas 0.9, 0.999, eps 1e-8) on flat
    arrays in place: the parameters ``p``, gradients ``g``, moments ``m`` and ``v``, after ``steps``
    steps in all; ``work`` is scratch memory of their size."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m *= beta1
    m += np.multiply(g, 1.0 - beta1, out=work)
    v *= beta2
    np.multiply(g, 1.0 - beta2, out=work)
    v += np.multiply(work, g, out=work)
    denominator = np.sqrt(v, out=work)
    denominator /= math.sqrt(1.0 - beta2**steps)
    denominator += eps
    step = np.divide(m, denominator, out=work)
    p -= np.multiply(step, lr / (1.0 - beta1**steps), out=work)


class PlainNumpy:
    """The same MLP (ReLU hidden layers, softmax + cross-entropy) trained by a hand-written float32
    NumPy step with no framework around it: every parameter in one flat array, every work array
    allocated once per batch size, every operation in place, the optimizer one NumPy call per pass
    on one thread. It is the reference for what NumPy itself costs, and it times its matrix products
    apart from everything else (``product_seconds``)."""

    def __init__(self, sizes: list[int], optimizer: dict[str, Any], params: dict[str, Any]) -> None:
        self.optimizer = optimizer
        shapes = [shape for fan_in, fan_out in zip(sizes[:-1], sizes[1:]) for shape in ((fan_out, fan_in), (fan_out,))]
        names = [f"{2 * i}.{name}" for i in range(len(sizes) - 1) for name in ("weight", "bias")]
        total = sum(math.prod(shape) for shape in shapes)
        self.flat, self.grad_flat = np.empty(total, np.float32), np.zeros(total, np.float32)
        self.work = np.empty(total, np.float32)
        views, offset = [], 0
        for name, shape in zip(names, shapes):
            part = slice(offset, offset + math.prod(shape))
            offset = part.stop
            self.flat[part] = np.asarray(params[name], np.float32).ravel()
            views.append((self.flat[part].reshape(shape), self.grad_flat[part].reshape(shape)))
        self.weights, self.grad_weights = [w for w, _ in views[0::2]], [g for _, g in views[0::2]]
        self.biases, self.grad_biases = [b for b, _ in views[1::2]], [g for _, g in views[1::2]]
        self.exp_avg, self.exp_avg_sq = np.zeros(total, np.float32), np.zeros(total, np.float32)
        self.steps = 0
        self.product_seconds = 0.0
        self.buffers: dict[int, dict[str, Any]] = {}

    def buffer(self, batch: int) -> dict[str, Any]:
        """The work arrays for a batch of this size, allocated on first use."""
        if batch not in self.buffers:
            widths = [w.shape[0] for w in self.weights]
            self.buffers[batch] = {
                "x": np.empty((batch, self.weights[0].shape[1]), np.float32),
                "z": [np.empty((batch, w), np.float32) for w in widths],
                "a": [np.empty((batch, w), np.float32) for w in widths[:-1]],
                "zeros": [np.zeros((batch, w), np.float32) for w in widths[:-1]],
                "mask": [np.empty((batch, w), bool) for w in widths[:-1]],
                "delta": [np.empty((batch, w), np.float32) for w in widths[:-1]],
                "rows": np.arange(batch),
                "ones": np.ones(widths[-1], np.float32),
            }
        return self.buffers[batch]

    def product(self, a: Any, b: Any, out: Any) -> None:
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        self.product_seconds += time.perf_counter() - started

    def step(self, images: Any, labels: Any) -> float:
        """One training step on a batch of uint8 images ``(batch, pixels)``; returns the mean loss."""
        batch = len(labels)
        buf = self.buffer(batch)
        x, z, a, rows = buf["x"], buf["z"], buf["a"], buf["rows"]
        np.copyto(x, images, casting="unsafe")
        x /= np.float32(255.0)
        inputs = x
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            self.product(inputs, weight.T, z[i])
            z[i] += bias
            if i < len(a):
                np.maximum(z[i], buf["zeros"][i], out=a[i])
                inputs = a[i]
        logits = z[-1]
        top = logits.max(axis=1)
        p = np.subtract(logits, top[:, None], out=logits)  # z - max: no exponent overflows
        picked = p[rows, labels]
        np.exp(p, out=p)
        sums = p @ buf["ones"]
        loss = float((np.log(sums) - picked).sum()) / batch  # log sum_k e^z_k - z_y, both less the max
        p /= sums[:, None]
        p[rows, labels] -= 1.0  # dL/dz = (p - one-hot(y)) / B
        p /= batch
        delta = p
        for i in reversed(range(len(self.weights))):
            self.product(delta.T, x if i == 0 else a[i - 1], self.grad_weights[i])
            delta.sum(axis=0, out=self.grad_biases[i])
            if i > 0:
                previous = buf["delta"][i - 1]
                self.product(delta, self.weights[i], previous)
                np.greater(z[i - 1], 0.0, out=buf["mask"][i - 1])
                np.multiply(previous, buf["mask"][i - 1], out=previous)
                delta = previous
        self.update()
        return loss

    def update(self) -> None:
        """SGD or Adam (PyTorch's definitions, as scratchnet's) on the flat arrays."""
        lr, p, g, work = self.optimizer["lr"], self.flat, self.grad_flat, self.work
        self.steps += 1
        if self.optimizer["type"] == "SGD":
            p -= np.multiply(g, lr, out=work)
            return
        adam_step(p, g, self.exp_avg, self.exp_avg_sq, work, self.steps, lr)

    def predict(self, images: Any) -> Any:
        inputs = images.astype(np.float32) / np.float32(255.0)
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            inputs = inputs @ weight.T + bias
            if i < len(self.weights) - 1:
                inputs = np.maximum(inputs, 0.0)
        return inputs.argmax(axis=1)


def run_numpy(config: dict[str, Any], data_dir: str | None, epochs: int, batch: int) -> dict[str, Any]:
    from scratchnet.data import load_dataset
    from scratchnet.data.images import take_images

    data = load_dataset("mnist", data_dir, download=False, progress=False)
    images, labels = data.train_images.reshape(len(data.train_images), -1), data.train_labels.astype(np.intp)
    net = PlainNumpy(config["sizes"], config["optimizer"], initial_params(config["sizes"]))

    def warmed_up() -> None:
        net.product_seconds = 0.0  # count the timed epochs' products only

    times, loads = timed_epochs(
        len(labels), epochs, batch, lambda indices: net.step(take_images(images, indices), labels[indices]), warmed_up
    )
    steps = epochs * -(-len(labels) // batch)
    accuracy = float(np.mean(net.predict(data.test_images.reshape(len(data.test_images), -1)) == data.test_labels))
    return {
        "times": times,
        "loads": loads,
        "accuracy": accuracy,
        "rss_mb": peak_rss_mb(),
        "products_us": net.product_seconds / steps * 1e6,
        "step_us": sum(times) / steps * 1e6,
    }


def run_torch(config: dict[str, Any], data_dir: str | None, epochs: int, batch: int, threads: int) -> dict[str, Any]:
    import torch

    from scratchnet.data import load_dataset

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    data = load_dataset("mnist", data_dir, download=False, progress=False)
    x_all = torch.from_numpy(data.train_images.reshape(len(data.train_images), -1).astype(np.float32) / 255.0)
    y_all = torch.from_numpy(data.train_labels.astype(np.int64))
    sizes = config["sizes"]
    layers: list[Any] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    params = initial_params(sizes)
    with torch.no_grad():
        for index, layer in enumerate(m for m in model if isinstance(m, torch.nn.Linear)):
            layer.weight.copy_(torch.from_numpy(params[f"{2 * index}.weight"]))
            layer.bias.copy_(torch.from_numpy(params[f"{2 * index}.bias"]))
    spec = config["optimizer"]
    if spec["type"] == "SGD":
        optimizer: Any = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    loss_function = torch.nn.CrossEntropyLoss()
    times, loads = [], []
    for epoch, order in enumerate(epoch_orders(len(y_all), epochs + 1)):
        with EpochTimer() as timer:
            permutation = torch.tensor(order)
            x, y = x_all[permutation], y_all[permutation]  # the pre-shuffled tensors of this epoch
            for start in range(0, len(y), batch):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_function(model(x[start : start + batch]), y[start : start + batch])
                loss.backward()
                optimizer.step()
        if epoch > 0:
            times.append(timer.seconds)
            loads.append(timer.other_load)
    with torch.no_grad():
        test = torch.from_numpy(data.test_images.reshape(len(data.test_images), -1).astype(np.float32) / 255.0)
        accuracy = float((model(test).argmax(1).numpy() == data.test_labels).mean())
    return {"times": times, "loads": loads, "accuracy": accuracy, "rss_mb": peak_rss_mb()}


def child_main(args: argparse.Namespace) -> None:
    config = CONFIGS[args.child_config]
    if args.child == "scratchnet":
        result = run_scratchnet(config, args.data_dir, args.epochs, args.child_batch)
    elif args.child == "numpy":
        result = run_numpy(config, args.data_dir, args.epochs, args.child_batch)
    elif args.child == "torch":
        result = run_torch(config, args.data_dir, args.epochs, args.child_batch, args.threads)
    else:  # the bound, measured in a process whose OpenBLAS started with this run's thread count
        seconds, median, rate = flop_bound(config["sizes"], args.child_batch, 60000)
        result = {"seconds": seconds, "median_seconds": median, "rate": rate}
    print(json.dumps(result))


def spawn(which: str, name: str, batch: int, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    command = ["--child", which, "--child-config", name, "--child-batch", str(batch), "--epochs", str(args.epochs)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    return run_child(__file__, command, threads, f"bench: the {which} run of {name}")


def run_child(script: str, arguments: list[str], threads: int, label: str) -> dict[str, Any]:
    """Run ``script`` with ``arguments`` and ``--threads threads`` in a child Python whose BLAS starts
    with that many threads, and return the JSON object its last line of output holds."""
    env = dict(
        os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)
    )
    command = [sys.executable, script, *arguments, "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------------------------------
# Machine figures


def matmul_shapes(sizes: list[int], batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product of one training step: forward x W^T, backward delta^T x and
    delta W (the first layer's dL/dx is never computed)."""
    shapes = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes.append((batch, fan_in, fan_out))  # z = x W^T
        shapes.append((fan_out, batch, fan_in))  # dL/dW = delta^T x
        if index > 0:
            shapes.append((batch, fan_out, fan_in))  # dL/dx = delta W
    return shapes


def sgemm_seconds(shape: tuple[int, int, int], repeats: int = 50) -> tuple[float, float]:
    """The best and the median time of one float32 product of this shape on this machine."""
    m, k, n = shape
    a = np.random.default_rng(0).random((m, k), dtype=np.float32)
    b = np.random.default_rng(1).random((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def flop_bound(sizes: list[int], batch: int, images: int) -> tuple[float, float, float]:
    """(seconds, median seconds, GFLOP/s): the matrix products of one epoch at the best sgemm rate
    measured, the same at the median rate of the same repeats, and the best rate."""
    full, rest = divmod(images, batch)
    seconds, median, flops = 0.0, 0.0, 0.0
    for steps, size in ((full, batch), (1 if rest else 0, rest)):
        for m, k, n in matmul_shapes(sizes, size) if steps else []:
            best, typical = sgemm_seconds((m, k, n))
            seconds, median = seconds + steps * best, median + steps * typical
            flops += steps * 2.0 * m * k * n
    return seconds, median, flops / seconds / 1e9


def loops_images_per_second(data_dir: str | None, seconds: float = 10.0) -> float:
    """Forward + backward + SGD update of a 784-32-10 loops network on real MNIST batches of 32.

    The batches are turned into lists of floats before the clock starts: that is data preparation
    (NumPy), not the loops backend."""
    from scratchnet.builders import build_network
    from scratchnet.core.architecture import mlp
    from scratchnet.data import load_dataset
    from scratchnet.loops import SGD

    data = load_dataset("mnist", data_dir, download=False, progress=False)
    net = build_network(mlp([784, 32, 10]), backend="loops", seed=SEED)
    optimizer = SGD(lr=0.1)
    images = data.train_images.reshape(60000, -1)
    batches = [
        ((images[s : s + 32] / 255.0).tolist(), data.train_labels[s : s + 32].tolist()) for s in range(0, 32 * 64, 32)
    ]
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        inputs, labels = batches[(done // 32) % len(batches)]
        net.loss(net.forward(inputs, training=True), labels)
        net.backward()
        optimizer.step(net)
        done += 32
    return done / (time.perf_counter() - started)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"
        f", {platform.system()} {platform.release()}"
    )


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("SCRATCHNET_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run, after one warm-up epoch")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"alternating runs of each library per configuration (2; {GPT_CONFIG}: 3)",
    )
    parser.add_argument(
        "--threads", default="auto", help="BLAS/torch threads: a number, 'auto' (all cores) or a list like 1,2"
    )
    parser.add_argument("--batch-sizes", default="128", help="comma-separated, e.g. 32,128,1024")
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated among: {', '.join(CONFIGS)}, {CNN_CONFIG} (the CNN of tools/bench_cnn.py), "
        f"{GPT_CONFIG} (tools/bench_gpt_step.py), {GPT_TRAINING} (tools/bench_gpt.py)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"timed steps per run of {GPT_CONFIG} (its default: 20); training steps of {GPT_TRAINING}",
    )
    parser.add_argument("--skip-loops", action="store_true", help="do not measure the loops backend")
    parser.add_argument("--skip-numpy", action="store_true", help="do not run the plain NumPy reference")
    parser.add_argument("--child", choices=["scratchnet", "numpy", "torch", "bound"], help=argparse.SUPPRESS)
    parser.add_argument("--child-config", help=argparse.SUPPRESS)
    parser.add_argument("--child-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.threads = int(args.threads)
        child_main(args)
        return 0
    names = args.configs.split(",")
    own_tools = {GPT_CONFIG: run_gpt_bench, GPT_TRAINING: run_gpt_training_bench}  # after the others, in this order
    unknown = [name for name in names if name not in CONFIGS and name != CNN_CONFIG and name not in own_tools]
    if unknown:
        parser.error(
            f"unknown configuration {unknown[0]!r}; choose among {', '.join(CONFIGS)}, {CNN_CONFIG}, "
            f"{', '.join(own_tools)}"
        )
    later = [run for name, run in own_tools.items() if name in names]
    names = [name for name in names if name not in own_tools]
    status = main_others(args, names) if names else 0
    for run in later:
        status = status or run(args)
    return status


def main_others(args: argparse.Namespace, names: list[str]) -> int:
    """The MLP configurations among ``names``, then the CNN if asked for."""
    rounds = args.rounds
    args.rounds = 2 if rounds is None else rounds
    try:
        return main_mlp_and_cnn(args, names)
    finally:
        args.rounds = rounds


def main_mlp_and_cnn(args: argparse.Namespace, names: list[str]) -> int:
    if CNN_CONFIG in names:  # its own tool, with the same alternation and columns; after the MLPs
        names.remove(CNN_CONFIG)
        status = main_mlp(args, names) if names else 0
        return status or run_cnn_bench(args)
    return main_mlp(args, names)


def run_cnn_bench(args: argparse.Namespace) -> int:
    """tools/bench_cnn.py with this run's data, threads, rounds, epochs and --skip-numpy."""
    import bench_cnn  # here: it imports this module

    threads = str(os.cpu_count() or 1) if args.threads == "auto" else args.threads
    argv = ["--threads", threads, "--rounds", str(args.rounds), "--epochs", str(args.epochs)]
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    argv += ["--skip-numpy"] if args.skip_numpy else []
    return bench_cnn.main(argv)


def run_gpt_bench(args: argparse.Namespace) -> int:
    """tools/bench_gpt_step.py with this run's threads (its own default 2,1 for 'auto'), rounds and steps."""
    import bench_gpt_step  # here: it imports this module

    argv = [] if args.threads == "auto" else ["--threads", args.threads]
    argv += [] if args.rounds is None else ["--rounds", str(args.rounds)]
    argv += [] if args.steps is None else ["--steps", str(args.steps)]
    return bench_gpt_step.main(argv)


def run_gpt_training_bench(args: argparse.Namespace) -> int:
    """tools/bench_gpt.py with this run's data, threads (its own default 2,1 for 'auto'), rounds and steps."""
    import bench_gpt  # here: it imports this module

    argv = [] if args.threads == "auto" else ["--threads", args.threads]
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    argv += [] if args.rounds is None else ["--rounds", str(args.rounds)]
    argv += [] if args.steps is None else ["--steps", str(args.steps)]
    return bench_gpt.main(argv)


def main_mlp(args: argparse.Namespace, names: list[str]) -> int:
    """The MLP configurations ``names``."""

    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    thread_counts = [os.cpu_count() or 1] if args.threads == "auto" else [int(t) for t in args.threads.split(",")]
    print(f"machine: {machine()}")
    if not have_torch:
        print(
            "PyTorch is not importable: scratchnet's figures only. For the comparison install PyTorch's CPU build:\n"
            "  pip install torch --index-url https://download.pytorch.org/whl/cpu"
        )
    header = (
        f"{'configuration':<22} {'batch':>5} {'thr':>3} {'library':<10} {'s/epoch':>8} {'images/s':>9} "
        f"{'ratio':>6} {'rounds':>9} {'bound s':>8} {'x bound':>7} {'x med':>7} {'RSS MB':>7} {'test acc':>8} "
        f"{'other load':>10}"
    )
    rows: list[tuple[Any, ...]] = []
    splits: list[str] = []
    for threads in thread_counts:
        for name in names:
            for batch in [int(b) for b in args.batch_sizes.split(",")]:
                runs: dict[str, list[dict[str, Any]]] = {"scratchnet": [], "numpy": [], "torch": []}
                bounds = []
                for _ in range(args.rounds):
                    bounds.append(spawn("bound", name, batch, args, threads))
                    runs["scratchnet"].append(spawn("scratchnet", name, batch, args, threads))
                    if not args.skip_numpy:
                        runs["numpy"].append(spawn("numpy", name, batch, args, threads))
                    if have_torch:
                        runs["torch"].append(spawn("torch", name, batch, args, threads))
                # the machine's speed drifts: the bound is the fastest of the rounds' measurements
                bound, rate = min((b["seconds"], b["rate"]) for b in bounds)
                # what the same products typically take here: the median repeat, median over the rounds
                typical = statistics.median(b["median_seconds"] for b in bounds)
                medians = {}
                for library, results in runs.items():
                    if not results:
                        continue
                    times = [t for r in results for t in r["times"]]
                    loads = [load for r in results for load in r["loads"]]
                    medians[library] = statistics.median(times)
                    rows.append(
                        (
                            name,
                            batch,
                            threads,
                            library,
                            medians[library],
                            60000 / medians[library],
                            bound,
                            max(r["rss_mb"] for r in results),
                            statistics.mean(r["accuracy"] for r in results),
                            statistics.mean(loads),
                            rate,
                            typical,
                        )
                    )
                for i in range(len(rows) - len(medians), len(rows)):
                    library = rows[i][3]
                    ratio = (
                        medians[library] / medians["torch"]
                        if "torch" in medians and library != "torch"
                        else float("nan")
                    )
                    # each round's own ratio (the runs next to each other in time): the spread says how
                    # much of the figure is the machine
                    spread = (
                        [
                            statistics.median(a["times"]) / statistics.median(b["times"])
                            for a, b in zip(runs[library], runs["torch"])
                        ]
                        if library != "torch"
                        else []
                    )
                    rows[i] = rows[i] + (ratio, spread)
                if runs["numpy"]:
                    products = statistics.median(r["products_us"] for r in runs["numpy"])
                    step = statistics.median(r["step_us"] for r in runs["numpy"])
                    bound_step = bound / -(-60000 // batch) * 1e6
                    splits.append(
                        f"{name}, batch {batch}, {threads} thread(s): matrix products {products:.0f} us "
                        f"({products / bound_step:.2f}x their bound), everything else {step - products:.0f} us "
                        f"({(step - products) / bound_step:.2f}x the bound), of a {step:.0f} us step"
                    )
    print(header)
    for name, batch, threads, library, seconds, ips, bound, rss, accuracy, load, _rate, typical, ratio, spread in rows:
        ratio_text = f"{ratio:.2f}" if ratio == ratio else ""
        spread_text = f"{min(spread):.2f}-{max(spread):.2f}" if spread else ""
        print(
            f"{name:<22} {batch:>5} {threads:>3} {library:<10} {seconds:>8.3f} {ips:>9.0f} {ratio_text:>6} "
            f"{spread_text:>9} {bound:>8.3f} {seconds / bound:>7.2f} {seconds / typical:>7.2f} {rss:>7.0f} "
            f"{100 * accuracy:>7.2f}% "
            f"{100 * load:>9.0f}%"
        )
    print(
        "numpy = the same training as a hand-written NumPy step with no framework (every array allocated "
        "once, every operation in place, the optimizer on one thread): what NumPy itself costs"
    )
    print(
        "ratio = median epoch time / PyTorch's (rounds: the lowest and highest ratio of one round's "
        "pair of runs); bound = the epoch's matrix products at the best sgemm rate measured in the rounds "
        f"({', '.join(sorted({f'{r[10]:.0f}' for r in rows}))} GFLOP/s); x med = the same at the median time "
        "of the repeats of each product (what this machine typically delivers); other load = other processes' "
        "share of all CPUs during the timed epochs"
    )
    if splits:
        print(
            "where the plain NumPy step's time goes "
            "(median per step; the bound is the matrix products at the best rate):"
        )
        for line in splits:
            print("  " + line)
    if not args.skip_loops:
        print(
            f"loops backend, 784-32-10, batch 32 (lists of floats), forward + backward + SGD: "
            f"{loops_images_per_second(args.data_dir):.0f} images/s (Python {platform.python_version()})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
