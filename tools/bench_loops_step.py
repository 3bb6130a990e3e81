"""Benchmark: CPU time of one training step of the loops backend (pure Python), for three configurations.

    python tools/bench_loops_step.py [--configs microgpt,small,cnn-small] [--steps 200] [--warmup 5] [--repeats 3]
                                     [--data-dir DIR] [--profile]

A step is what the training loop does: forward, loss, backward and the optimizer's step. The time is
``time.process_time()``, the CPU time of this process, not the wall clock: the machine is shared by
several sessions, so wall time measures the others as much as this code. Each configuration trains
``--warmup`` untimed steps, then ``--steps`` timed ones, ``--repeats`` times from a fresh network, and
prints the CPU milliseconds per step of the fastest and the median repeat and the mean loss of the
timed steps (other processes still slow this one down through the shared caches and cores: the fastest
repeat is the nearest to a quiet machine).

* ``microgpt``: microgpt's model (issue 27): vocabulary 27, one layer, 16 dimensions, 4 heads, context
  16, RMSNorm without a gain after the embeddings' sum and before attention and the MLP, no biases,
  ReLU MLP 16-64-16, head 16-27, weights N(0, 0.08) (the ``microgpt`` recipe's layers); one name per step
  from ``names/names.txt``, Adam lr 0.01, betas (0.85, 0.99), eps 1e-8, linear decay over 1000 steps.
  Its target is 8.3 ms a step (40x microgpt's scalar autograd, 332 ms a step here).
* ``small``: the ``small`` recipe, 784-32-10 ReLU, Adam lr 0.002, batch 32 MNIST images (pixel / 255).
* ``cnn-small``: the ``cnn-small`` recipe, conv(8, 3), ReLU, maxpool(2), Dense 1352-10, Adam lr 0.002,
  batch 32 MNIST images.

``--profile`` runs the timed steps of each configuration under cProfile and prints the 25 costliest
functions by their own time (the times are then cProfile's, several times slower).
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import os
import pstats
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchnet.builders import build_network, build_optimizer  # noqa: E402
from scratchnet.core.notation import parse  # noqa: E402
from scratchnet.data.text import load_text  # noqa: E402
from scratchnet.data.text_batches import training_batch  # noqa: E402
from scratchnet.training.text_recipes import VOCABULARY, microgpt_layers  # noqa: E402

CONFIGS = ("microgpt", "small", "cnn-small")
IMAGE_BATCH = 32
Step = Callable[[int], float]


def data_dir(given: str | None) -> Path:
    """``--data-dir``, else ``$SCRATCHNET_DATA_DIR``, else ``../shared/data`` beside the repository."""
    return Path(given or os.environ.get("SCRATCHNET_DATA_DIR") or ROOT.parent / "shared" / "data")


def microgpt_description(vocabulary: int) -> dict[str, Any]:
    """microgpt's model as architecture data: the ``microgpt`` recipe's layers (no biases, N(0, 0.08))."""
    layers = microgpt_layers().replace(VOCABULARY, str(vocabulary))
    return parse(f"input(tokens {vocabulary} x 16), {layers}")


def microgpt_step(directory: Path) -> Step:
    """One name per step through microgpt's model, trained by Adam as microgpt trains it."""
    data = load_text(directory / "names" / "names.txt", layout="documents", backend="loops")
    network: Any = build_network(microgpt_description(data.vocabulary.size), backend="loops")
    schedule = {"type": "linear", "total_steps": 1000}
    optimizer = build_optimizer(
        {"type": "adam", "lr": 0.01, "betas": [0.85, 0.99], "eps": 1e-8, "schedule": schedule}, "loops"
    )

    def step(index: int) -> float:
        inputs, targets = training_batch(data, index, 1, 16, 0)
        loss = float(network.loss(network.forward(inputs, training=True), targets))
        network.backward()
        optimizer.step(network)
        return loss

    return step


def mnist(directory: Path, count: int) -> tuple[list[list[float]], list[int]]:
    """The first ``count`` MNIST training images as 784 floats (pixel / 255), and their labels."""
    folder = directory / "mnist"
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "rb") as file:
        _, _, rows, columns = struct.unpack(">IIII", file.read(16))
        pixels = file.read(count * rows * columns)
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "rb") as file:
        file.read(8)
        labels = list(file.read(count))
    size = rows * columns
    images = [[p / 255.0 for p in pixels[n * size : (n + 1) * size]] for n in range(count)]
    return images, labels


def image_step(directory: Path, layers: str, shape: str, image: bool) -> Step:
    """Batches of 32 MNIST images through ``layers``, Adam lr 0.002 (the recipes ``small`` and ``cnn-small``)."""
    images, labels = mnist(directory, 1024)
    inputs = [[[row[r * 28 : (r + 1) * 28] for r in range(28)]] for row in images] if image else images
    network: Any = build_network(parse(f"input({shape}), {layers}", init="he_normal"), backend="loops")
    optimizer = build_optimizer({"type": "adam", "lr": 0.002}, "loops")
    batches = len(images) // IMAGE_BATCH

    def step(index: int) -> float:
        start = (index % batches) * IMAGE_BATCH
        loss = float(
            network.loss(
                network.forward(inputs[start : start + IMAGE_BATCH], training=True), labels[start : start + IMAGE_BATCH]
            )
        )
        network.backward()
        optimizer.step(network)
        return loss

    return step


def make_step(name: str, directory: Path) -> Step:
    if name == "microgpt":
        return microgpt_step(directory)
    if name == "small":
        return image_step(directory, "dense(32), relu, dense(10)", "784", image=False)
    return image_step(directory, "conv(8, 3), relu, maxpool(2), flatten, dense(10)", "1, 28, 28", image=True)


def run(name: str, directory: Path, steps: int, warmup: int, repeats: int, profile: bool) -> None:
    """``repeats`` times: a fresh network trains ``warmup`` untimed steps, then ``steps`` timed ones (the
    same steps each time); the CPU time per step of the fastest and of the median repeat."""
    seconds: list[float] = []
    losses: list[float] = []
    profiler = cProfile.Profile() if profile else None
    for _ in range(repeats):
        step = make_step(name, directory)
        for index in range(warmup):
            step(index)
        losses = []
        start = time.process_time()
        if profiler is not None:
            profiler.enable()
        for index in range(warmup, warmup + steps):
            losses.append(step(index))
        if profiler is not None:
            profiler.disable()
        seconds.append(time.process_time() - start)
    best, median = min(seconds), statistics.median(seconds)
    print(
        f"{name:10s} {1000.0 * best / steps:8.2f} CPU ms/step (fastest of {repeats}), "
        f"{1000.0 * median / steps:.2f} (median); {steps} steps; mean loss {sum(losses) / len(losses):.4f}"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU ms per training step of the loops backend")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"some of {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the same steps, each from a fresh network")
    parser.add_argument("--data-dir", default=None, help="the folder holding names/ and mnist/")
    parser.add_argument("--profile", action="store_true", help="profile the timed steps with cProfile")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error(f"--configs takes some of {', '.join(CONFIGS)}; --steps and --repeats >= 1, --warmup >= 0")
    print("CPU time (time.process_time), not wall time: the machine is shared")
    for name in names:
        run(name, data_dir(args.data_dir), args.steps, args.warmup, args.repeats, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
