"""Benchmark: whole trainings of the language-model recipes against their references (issue 27, item 9).

    python tools/bench_gpt.py [--data-dir DIR] [--threads 2,1] [--rounds 1] [--steps N] [--only gpt|microgpt]
    python tools/bench.py --configs gpt [...]

**gpt.** ``scratchnet train --recipe gpt`` (nanoGPT's CPU configuration) on tinyshakespeare/input.txt,
beside a PyTorch twin (tools/bench_gpt_twin.py, nanoGPT's model.py layout) that makes the recipe's
choices: the same initial weights (scratchnet's, the run's seed), the same batch positions (the run's
own :func:`~scratchnet.data.text_batches.training_batch` for each step), the same held-out estimate at
each record, and the optimizer scratchnet builds for the recipe read from its ``describe()`` (AdamW, its
betas and eps, weight decay on the 2-D arrays only, clipping at the global norm, nanoGPT's warmup then
cosine), so the two never drift. Before timing, a float64 check runs three steps of both from the same
weights on the same batches and stops unless every array agrees to 1e-8. Each contender trains in its own
child process started with the run's thread count (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``;
``torch.set_num_threads``), alternating; the table gives per thread count the median over ``--rounds``
of the time to finish (the training time ``scratchnet train`` prints, the twin's loop likewise), the
held-out loss at the end scored as ``scratchnet evaluate`` scores it (the whole validation split in
consecutive non-overlapping blocks of the context, every position), and the peak RSS.

**microgpt.** ``scratchnet train --recipe microgpt`` (loops backend, pure Python) on names/names.txt
beside tools/microgpt_reference.py (microgpt's scalar-autograd algorithm), which starts from the same
initial weights and trains on the same documents in the same order (the run's own batches, one document
a step): the time per step and the mean loss over the last 100 steps of each, at one thread.

``--steps`` shortens every run (a smoke test; the figures then mean nothing). The recipes' settings are
read as ``scratchnet train`` reads them (training/text_recipes.py, through the command line's parser).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # first: it sets OPENBLAS_THREAD_TIMEOUT before NumPy loads, as `scratchnet train` does
import bench_gpt_runs as runs

NAME = "gpt"
PARTS = ("gpt", "microgpt")
CHECK_STEPS, CHECK_TOLERANCE = 3, 1e-8
LAST = 100  # the microgpt comparison's window: the mean loss of the last LAST steps


def default_data_dir() -> Path:
    """$SCRATCHNET_DATA_DIR, else ../shared/data beside the repository (as the tests find it)."""
    env = os.environ.get("SCRATCHNET_DATA_DIR")
    return Path(env) if env else bench.ROOT.parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------
# The children: each prints one JSON object as its last line


def scratchnet_child(recipe: str, data: str, steps: int | None) -> dict[str, Any]:
    """The recipe's whole training, as ``scratchnet train`` runs it (no model file is written)."""
    from scratchnet.training.text_train import train_text

    config, settings = runs.run_config(recipe, data, steps)
    recorder = runs.StepLosses()
    result = train_text(config, settings, log=lambda line: print(line, file=sys.stderr), check=False,
                        progress=False, callbacks=(recorder,))  # fmt: skip
    return {
        "seconds": result.train_seconds,
        "step_seconds": recorder.seconds / max(len(recorder.losses), 1),
        "validation_loss": result.metadata["training"]["final"]["validation_loss"],  # text_loss, as `evaluate`
        "first_loss": recorder.losses[0],
        "last_loss": statistics.fmean(recorder.losses[-LAST:]),
        "steps": len(recorder.losses),
        "rss_mb": runs.peak_rss_mb(),
    }


def twin_child(data: str, steps: int | None, threads: int) -> dict[str, Any]:
    import bench_gpt_torch

    return {**bench_gpt_torch.train_twin(*runs.run_config("gpt", data, steps), threads), "rss_mb": runs.peak_rss_mb()}


def check_child(data: str, steps: int | None) -> dict[str, Any]:
    import bench_gpt_torch

    return bench_gpt_torch.check_twin(*runs.run_config("gpt", data, steps), CHECK_STEPS)


def reference_child(data: str, steps: int | None) -> dict[str, Any]:
    """microgpt's algorithm from the recipe's initial weights on the recipe's documents, in its order."""
    import microgpt_reference as reference

    config, settings = runs.run_config("microgpt", data, steps)
    start = runs.microgpt_start(config, settings)
    started = time.perf_counter()
    losses = reference.train(start.weights, start.documents, start.boundary, len(start.documents), start.config,
                             lr=start.lr, betas=start.betas, eps=start.eps)  # fmt: skip
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "step_seconds": seconds / len(losses),
        "first_loss": losses[0],
        "last_loss": statistics.fmean(losses[-LAST:]),
        "steps": len(losses),
        "rss_mb": runs.peak_rss_mb(),
    }


def run_child(which: str, data: str, steps: int | None, threads: int) -> dict[str, Any]:
    if which in ("gpt", "microgpt"):
        return scratchnet_child(which, data, steps)
    if which == "twin":
        return twin_child(data, steps, threads)
    if which == "check":
        return check_child(data, steps)
    return reference_child(data, steps)


def spawn(which: str, data: Path, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    command = ["--child", which, "--child-data", str(data)] + (
        [] if args.steps is None else ["--steps", str(args.steps)]
    )
    return bench.run_child(__file__, command, threads, f"bench_gpt: the {which} run")


# ---------------------------------------------------------------------------------------------
# The two comparisons


def compare_gpt(data: Path, args: argparse.Namespace, threads: list[int]) -> bool:
    check = spawn("check", data, args, threads[0])
    ok = check["difference"] <= CHECK_TOLERANCE
    print(
        f"twin check (float64, {CHECK_STEPS} steps from the same weights on the same batches): losses "
        f"{', '.join(f'{v:.10f}' for v in check['losses'])} against PyTorch's "
        f"{', '.join(f'{v:.10f}' for v in check['torch_losses'])}; largest difference after the steps "
        f"{check['difference']:.1e} ({check['worst']}, relative to its largest value) over {check['arrays']} arrays: "
        f"{'agree' if ok else 'DISAGREE'} to {CHECK_TOLERANCE:.0e}"
    )
    if not ok:
        return False
    print(f"{'threads':>7} {'library':<10} {'train s':>9} {'ratio':>6} {'rounds':>11} {'val loss':>9} {'RSS MB':>7}")
    for count in threads:
        results: dict[str, list[dict[str, Any]]] = {"scratchnet": [], "torch": []}
        for _ in range(args.rounds):
            results["scratchnet"].append(spawn("gpt", data, args, count))
            results["torch"].append(spawn("twin", data, args, count))
        medians = {name: statistics.median(r["seconds"] for r in rs) for name, rs in results.items()}
        for name, rs in results.items():
            ratio, spread = "", ""
            if name == "scratchnet":
                ratio = f"{medians[name] / medians['torch']:.2f}"
                spread = ", ".join(f"{a['seconds'] / b['seconds']:.2f}" for a, b in zip(rs, results["torch"]))
            loss = statistics.median(r["validation_loss"] for r in rs)
            print(
                f"{count:>7} {name:<10} {medians[name]:>9.1f} {ratio:>6} {spread:>11} {loss:>9.4f} "
                f"{max(r['rss_mb'] for r in rs):>7.0f}"
            )
    print(
        "train s = the median over the rounds of the time to finish the training (validation estimates included, "
        "the final scoring not); ratio = scratchnet / PyTorch (rounds: each round's); val loss = nats per "
        "character on the whole held-out split in consecutive blocks of the context (as `scratchnet evaluate`); "
        "RSS = the largest child's peak"
    )
    return True


def compare_microgpt(data: Path, args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, Any]]] = {"scratchnet": [], "microgpt": []}
    for _ in range(args.rounds):
        results["scratchnet"].append(spawn("microgpt", data, args, 1))
        results["microgpt"].append(spawn("reference", data, args, 1))
    print(
        f"{'library':<22} {'ms/step':>9} {'speed-up':>8} {'steps':>6} {'run s':>7} {'first loss':>10} "
        f"{f'last {LAST} loss':>14} {'RSS MB':>7}"
    )
    medians = {name: statistics.median(r["step_seconds"] for r in rs) for name, rs in results.items()}
    for name, rs in results.items():
        label = "scratchnet (loops)" if name == "scratchnet" else "microgpt's algorithm"
        speedup = f"{medians['microgpt'] / medians[name]:.1f}x" if name == "scratchnet" else ""
        print(
            f"{label:<22} {1e3 * medians[name]:>9.1f} {speedup:>8} {rs[-1]['steps']:>6} "
            f"{statistics.median(r['seconds'] for r in rs):>7.1f} {rs[-1]['first_loss']:>10.6f} "
            f"{statistics.median(r['last_loss'] for r in rs):>14.4f} {max(r['rss_mb'] for r in rs):>7.0f}"
        )
    print(
        f"ms/step = the median over the rounds of each run's seconds per training step (scratchnet's without its "
        "held-out estimates, which the reference does not make); run s = the whole run's seconds (scratchnet's as "
        f"`scratchnet train` prints them, estimates included); last {LAST} loss = the mean "
        f"training loss of the last {LAST} steps (one document a step, so a mean); first loss = step 1's (the same "
        "weights on the same document: equal but for rounding); one thread"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="holds tinyshakespeare/ and names/")
    parser.add_argument("--threads", default="2,1", help="BLAS/torch threads of the gpt runs: a list like 2,1")
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs of each contender (the median)")
    parser.add_argument("--steps", type=int, default=None, help="train N steps instead of the recipe's (smoke tests)")
    parser.add_argument("--only", choices=PARTS, default=None, help="run one of the two comparisons")
    parser.add_argument("--child", choices=["gpt", "microgpt", "twin", "check", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--rounds and --steps must be at least 1")
    if args.child:
        print(json.dumps(run_child(args.child, args.child_data, args.steps, int(args.threads))))
        return 0
    folder = args.data_dir or default_data_dir()
    files = {"gpt": folder / "tinyshakespeare" / "input.txt", "microgpt": folder / "names" / "names.txt"}
    parts = PARTS if args.only is None else (args.only,)
    missing = [str(files[part]) for part in parts if not files[part].is_file()]
    if missing:
        print(f"bench_gpt: no such file: {', '.join(missing)} (give the folder with --data-dir)", file=sys.stderr)
        return 1
    print(f"machine: {bench.machine()}")
    if "gpt" in parts:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch is not importable: no twin to compare with. For it: pip install torch (its CPU build)")
            return 1
        print(f"gpt: {runs.describe('gpt', str(files['gpt']), args.steps)}")
        if not compare_gpt(files["gpt"], args, [int(t) for t in args.threads.split(",")]):
            return 1
    if "microgpt" in parts:
        print(f"microgpt: {runs.describe('microgpt', str(files['microgpt']), args.steps)}")
        compare_microgpt(files["microgpt"], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
