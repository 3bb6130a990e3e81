"""Benchmark: an optimizer step on one thread against several, in one process.

    python tools/bench_threads.py [--data-dir DIR] [--sizes 784-512-256-10] [--threads 2] [--rounds 10]

Two copies of the same network train on MNIST with Adam, batch 128, taking turns every ``--steps``
steps: one with ``set_threads(1)``, one with ``--threads``. Because they alternate in one process, the
machine's drift hits both alike. Prints the median and best time of a whole training step and of the
optimizer step alone, per thread count, after one discarded round. The two networks' weights must stay
equal bit for bit (the split never changes the arithmetic); the tool checks that at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scratchnet.cli import shorten_openblas_spin  # noqa: E402

shorten_openblas_spin()  # before NumPy, as `scratchnet train` does (docs/performance.md)
import numpy as np  # noqa: E402

from scratchnet.builders import build_network, build_optimizer  # noqa: E402
from scratchnet.core.architecture import mlp  # noqa: E402
from scratchnet.data import load_dataset  # noqa: E402
from scratchnet.data.images import take_images, to_inputs  # noqa: E402
from scratchnet.vectorized import parallel  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An optimizer step on one thread against several, in one process.")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sizes", default="784-512-256-10", help="layer widths, e.g. 784-800-800-10")
    parser.add_argument("--threads", type=int, default=2, help="the thread count compared with 1")
    parser.add_argument("--rounds", type=int, default=10, help="turns of each thread count (the first is discarded)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per turn")
    args = parser.parse_args(argv)
    sizes = [int(width) for width in args.sizes.split("-")]
    data = load_dataset("mnist", args.data_dir, download=False, progress=False)
    images = data.train_images.reshape(len(data.train_images), -1)
    labels = data.train_labels.astype(np.intp)
    order = np.random.default_rng(0).permutation(len(labels))
    counts = [1, args.threads]
    runs = [
        (
            build_network(mlp(sizes), backend="vectorized", dtype="float32", seed=0),
            build_optimizer({"type": "Adam", "lr": 0.001}, "vectorized"),
        )
        for _ in counts
    ]
    step_us: dict[int, list[float]] = {count: [] for count in counts}
    optimizer_us: dict[int, list[float]] = {count: [] for count in counts}
    print(f"{args.sizes}, Adam, batch 128; OpenBLAS spin shortened: {parallel.openblas_spin_short()}")
    batch = 0
    for round_ in range(args.rounds):
        for count, (net, optimizer) in zip(counts, runs):
            parallel.set_threads(count)
            in_optimizer = 0.0
            start = time.perf_counter()
            for step in range(args.steps):
                first = ((batch + step) * 128) % (len(order) - 128)
                indices = order[first : first + 128]
                outputs = net.forward(to_inputs(take_images(images, indices), "float32"), training=True)
                net.loss(outputs, labels[indices])
                net.backward()
                before = time.perf_counter()
                optimizer.step(net)
                in_optimizer += time.perf_counter() - before
            if round_ > 0:
                step_us[count].append((time.perf_counter() - start) / args.steps * 1e6)
                optimizer_us[count].append(in_optimizer / args.steps * 1e6)
        batch += args.steps
    parallel.set_threads(None)
    for count in counts:
        print(
            f"{count} thread(s): step {statistics.median(step_us[count]):.0f} us (best {min(step_us[count]):.0f}), "
            f"optimizer {statistics.median(optimizer_us[count]):.0f} us (best {min(optimizer_us[count]):.0f})"
        )
    first_params, second_params = runs[0][0].params(), runs[1][0].params()
    same = all(np.array_equal(first_params[name], second_params[name]) for name in first_params)
    print("weights bit-identical:", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
