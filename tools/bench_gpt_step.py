"""Benchmark: one GPT training step of scratchnet's vectorized backend against a PyTorch twin on the CPU.

    python tools/bench_gpt_step.py [--threads 2,1] [--rounds 3] [--steps 20] [--warmup 3] [--check]
    python tools/bench.py --configs gpt-step [--threads 2,1] [--rounds 3] [--steps 20]

The model is nanoGPT's CPU configuration (its README's MacBook run of train_shakespeare_char):
4 layers, 4 heads, 128 dimensions, context 64, batch 12, a vocabulary of 65 characters, LayerNorm
and attention without biases (nanoGPT's train.py default ``bias = False``), exact GELU, no dropout,
AdamW (lr 1e-3, betas 0.9 and 0.99, weight decay 0.1). One step is forward, loss, backward and the
AdamW step, in float32. Where scratchnet cannot say what nanoGPT says, both contenders do what
scratchnet does: the MLP's and the head's Dense layers keep their biases, the head's weight is not
tied to the token table, weight decay applies to every array, and gradients are not clipped.

The PyTorch twin is written as nanoGPT's model.py is (one ``Linear`` for q, k and v, causal
``scaled_dot_product_attention``, ``F.layer_norm``, ``nn.GELU``, ``torch.optim.AdamW``), starts
from scratchnet's initial weights (seed 0) and sees the same batches: blocks of T + 1 token ids
drawn from one fixed generator, the inputs their first T and the targets their last T. The two run
in alternating child processes, each started with the run's thread count (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``; ``torch.set_num_threads``), each training ``--warmup`` untimed steps and then
``--steps`` timed ones. The table gives the median over ``--rounds`` of each child's seconds per step,
the ratio scratchnet / PyTorch (with the lowest and highest ratio of one round), each child's peak
RSS and minor page faults per timed step, and other processes' share of the CPUs.

``--check`` verifies the twin: one step of both in float64 from the same weights on the same batch,
whose losses and every parameter after the AdamW step must agree to 1e-10 (relative to the largest
value of each array). A timing run makes this check first, in a child, and stops if it fails.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # first: it sets OPENBLAS_THREAD_TIMEOUT before NumPy loads, as `scratchnet train` does
import numpy as np

NAME = "gpt-step"
VOCABULARY, LENGTH, BATCH, LAYERS, HEADS, DIM = 65, 64, 12, 4, 4, 128
LR, BETAS, WEIGHT_DECAY = 1e-3, (0.9, 0.99), 0.1
SEED = bench.SEED
BATCH_SEED = 1337  # the generator of the token blocks
TOLERANCE = 1e-10  # the twin check's largest accepted difference


def architecture() -> dict[str, Any]:
    """nanoGPT's CPU configuration as scratchnet's architecture data: the notation's
    ``input(tokens 65 x 64), embedding(128), positions(128), 4 x [residual(layernorm, attention(4)),
    residual(layernorm, dense(512), gelu, dense(128))], layernorm, dense(65)``, without the norms' and
    the attention's biases."""
    norm = {"type": "LayerNorm", "dim": DIM, "bias": False}
    attention = {"type": "CausalSelfAttention", "dim": DIM, "heads": HEADS, "bias": False}
    mlp = [
        norm,
        {"type": "Dense", "in_features": DIM, "out_features": 4 * DIM, "init": "gpt_normal"},
        {"type": "GELU"},
        {"type": "Dense", "in_features": 4 * DIM, "out_features": DIM, "init": "gpt_normal"},
    ]
    block = [{"type": "Residual", "layers": [norm, attention]}, {"type": "Residual", "layers": mlp}]
    return {
        "vocabulary": VOCABULARY,
        "input_shape": [LENGTH],
        "layers": [
            {"type": "Embedding", "num_embeddings": VOCABULARY, "embedding_dim": DIM},
            {"type": "PositionEmbedding", "max_length": LENGTH, "dim": DIM},
            *(block * LAYERS),
            norm,
            {"type": "Dense", "in_features": DIM, "out_features": VOCABULARY, "init": "gpt_normal"},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


def initial_params(dtype: str) -> dict[str, Any]:
    """The initial weights every contender starts from: scratchnet's, seed 0, in ``dtype``."""
    from scratchnet.builders import build_network

    net = build_network(architecture(), backend="vectorized", dtype=dtype, seed=SEED)
    return {name: value.copy() for name, value in net.params().items()}


def batches(count: int) -> list[tuple[Any, Any]]:
    """``count`` (inputs, targets) pairs of (BATCH, LENGTH) token ids: random blocks of LENGTH + 1 ids
    from one fixed generator, inputs the first LENGTH and targets the last LENGTH of each block."""
    generator = np.random.default_rng(BATCH_SEED)
    blocks = [generator.integers(0, VOCABULARY, (BATCH, LENGTH + 1)) for _ in range(count)]
    return [(block[:, :-1].astype(np.intp), block[:, 1:].astype(np.intp)) for block in blocks]


def torch_names(layers: int = LAYERS, bias: bool = True, head_bias: bool = True) -> dict[str, str]:
    """scratchnet's array name -> the twin's parameter name (nanoGPT's, but for the head's bias), for
    ``layers`` blocks whose MLP has biases or (``bias=False``) none, and a head with or without one."""
    names = {"0.weight": "transformer.wte.weight", "1.weight": "transformer.wpe.weight"}
    for layer in range(layers):
        attention, mlp, block = 2 + 2 * layer, 3 + 2 * layer, f"transformer.h.{layer}"
        names[f"{attention}.0.weight"] = f"{block}.ln_1.weight"
        names[f"{attention}.1.in_proj_weight"] = f"{block}.attn.c_attn.weight"
        names[f"{attention}.1.out_proj.weight"] = f"{block}.attn.c_proj.weight"
        names[f"{mlp}.0.weight"] = f"{block}.ln_2.weight"
        for index, part in ((1, "c_fc"), (3, "c_proj")):
            names[f"{mlp}.{index}.weight"] = f"{block}.mlp.{part}.weight"
            if bias:
                names[f"{mlp}.{index}.bias"] = f"{block}.mlp.{part}.bias"
    head = 2 + 2 * layers
    names[f"{head}.weight"] = "transformer.ln_f.weight"
    names[f"{head + 1}.weight"] = "lm_head.weight"
    if head_bias:
        names[f"{head + 1}.bias"] = "lm_head.bias"
    return names


# ---------------------------------------------------------------------------------------------
# The contenders: each a (step on (inputs, targets) returning the loss, params by scratchnet's names)


def scratchnet_contender(dtype: str) -> tuple[Any, Any]:
    from scratchnet.builders import build_network, build_optimizer

    net = build_network(architecture(), backend="vectorized", dtype=dtype, seed=SEED)
    net.set_params(initial_params(dtype))
    optimizer = build_optimizer(
        {"type": "AdamW", "lr": LR, "betas": list(BETAS), "weight_decay": WEIGHT_DECAY}, "vectorized"
    )

    def step(inputs: Any, targets: Any) -> float:
        # the step of scratchnet.training: forward, loss, backward, optimizer step
        loss = net.loss(net.forward(inputs, training=True), targets)
        net.backward()
        optimizer.step(net)
        return loss

    return step, lambda: {name: np.array(value) for name, value in net.params().items()}


def torch_contender(dtype: str, threads: int | None = None) -> tuple[Any, Any]:
    import torch
    from bench_gpt_twin import gpt

    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = gpt(VOCABULARY, LENGTH, LAYERS, HEADS, DIM).to(getattr(torch, dtype))
    names = torch_names()
    parameters = dict(model.named_parameters())
    if set(parameters) != set(names.values()):
        raise SystemExit(f"bench_gpt_step: the twin's parameters {sorted(parameters)} are not {sorted(names.values())}")
    with torch.no_grad():
        for ours, value in initial_params(dtype).items():
            parameters[names[ours]].copy_(torch.from_numpy(value))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)

    def step(inputs: Any, targets: Any) -> float:
        logits = model(torch.from_numpy(inputs))
        loss = torch.nn.functional.cross_entropy(logits.view(-1, VOCABULARY), torch.from_numpy(targets).view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        return float(loss.detach())

    def params() -> dict[str, Any]:
        return {ours: parameters[theirs].detach().numpy().copy() for ours, theirs in names.items()}

    return step, params


# ---------------------------------------------------------------------------------------------
# The check and the children


def check() -> dict[str, Any]:
    """One float64 step of both from the same weights on the same batch: the loss difference and
    the largest parameter difference after the AdamW step, each relative to the largest value."""
    inputs, targets = batches(1)[0]
    ours_step, ours_params = scratchnet_contender("float64")
    theirs_step, theirs_params = torch_contender("float64")
    ours_loss, theirs_loss = ours_step(inputs, targets), theirs_step(inputs, targets)
    ours, theirs = ours_params(), theirs_params()
    initial = initial_params("float64")
    differences = {
        name: float(np.max(np.abs(ours[name] - theirs[name])) / max(np.max(np.abs(theirs[name])), 1e-300))
        for name in ours
    }
    worst = max(differences, key=lambda name: differences[name])
    moved = min(float(np.max(np.abs(ours[name] - initial[name]))) for name in ours)
    return {
        "loss": ours_loss,
        "torch_loss": theirs_loss,
        "loss_difference": abs(ours_loss - theirs_loss) / abs(theirs_loss),
        "parameter_difference": differences[worst],
        "worst_parameter": worst,
        "arrays": len(ours),
        "values": int(sum(value.size for value in ours.values())),
        "smallest_move": moved,
    }


def run_child(which: str, threads: int, steps: int, warmup: int) -> dict[str, Any]:
    """``warmup`` untimed steps, then ``steps`` timed ones, in float32."""
    if which == "check":
        return check()
    step, _ = scratchnet_contender("float32") if which == "scratchnet" else torch_contender("float32", threads)
    data = batches(warmup + steps)
    for inputs, targets in data[:warmup]:
        step(inputs, targets)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with bench.EpochTimer() as timer:
        for inputs, targets in data[warmup:]:
            loss = step(inputs, targets)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {
        "seconds": timer.seconds / steps,
        "load": timer.other_load,
        "rss_mb": bench.peak_rss_mb(),
        "faults": faults / steps,
        "loss": loss,
    }


def spawn(which: str, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    command = ["--child", which, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    return bench.run_child(__file__, command, threads, f"bench_gpt_step: the {which} run")


def report_check(result: dict[str, Any]) -> bool:
    """Print the twin check's figures; whether they are within the tolerance."""
    ok = bool(result["loss_difference"] <= TOLERANCE and result["parameter_difference"] <= TOLERANCE)
    print(
        f"twin check (float64, one step from the same weights on the same batch): loss {result['loss']:.12f} "
        f"against PyTorch's {result['torch_loss']:.12f}, relative difference {result['loss_difference']:.1e}; "
        f"largest parameter difference after AdamW {result['parameter_difference']:.1e} ({result['worst_parameter']}, "
        f"relative to its largest value) over {result['arrays']} arrays of {result['values']} values: "
        f"{'agree' if ok else 'DISAGREE'} to {TOLERANCE:.0e}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--threads", default="2,1", help="BLAS/torch threads: a list like 2,1")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each contender per thread count")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    parser.add_argument("--check", action="store_true", help="only verify the twin in float64, and time nothing")
    parser.add_argument("--child", choices=["scratchnet", "torch", "check"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--steps and --rounds must be at least 1, --warmup at least 0")
    if args.child:
        print(json.dumps(run_child(args.child, int(args.threads), args.steps, args.warmup)))
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not importable: no twin to compare with. For it: pip install torch (its CPU build)")
        return 1
    if args.check:
        return 0 if report_check(check()) else 1
    thread_counts = [int(t) for t in args.threads.split(",")]
    print(f"machine: {bench.machine()}")
    values = sum(math.prod(v.shape) for v in initial_params("float32").values())
    print(
        f"{NAME}: nanoGPT's CPU configuration, {LAYERS} layers, {HEADS} heads, {DIM} dimensions, context {LENGTH}, "
        f"batch {BATCH}, vocabulary {VOCABULARY}, {values} parameters, float32, AdamW"
    )
    if not report_check(bench.run_child(__file__, ["--child", "check"], thread_counts[0], "bench_gpt_step: the check")):
        return 1
    print(
        f"{'threads':>7} {'library':<10} {'s/step':>9} {'ratio':>6} {'rounds':>9} {'RSS MB':>7} {'faults/step':>11} "
        f"{'other load':>10}"
    )
    seen = []
    for threads in thread_counts:
        runs: dict[str, list[dict[str, Any]]] = {"scratchnet": [], "torch": []}
        for _ in range(args.rounds):
            for library in runs:
                runs[library].append(spawn(library, args, threads))
        medians = {library: statistics.median(r["seconds"] for r in results) for library, results in runs.items()}
        for library, results in runs.items():
            ratio, spread = "", ""
            if library != "torch":
                ratio = f"{medians[library] / medians['torch']:.2f}"
                rounds = [a["seconds"] / b["seconds"] for a, b in zip(results, runs["torch"])]
                spread = f"{min(rounds):.2f}-{max(rounds):.2f}"
            print(
                f"{threads:>7} {library:<10} {medians[library]:>9.4f} {ratio:>6} {spread:>9} "
                f"{max(r['rss_mb'] for r in results):>7.0f} {statistics.median(r['faults'] for r in results):>11.0f} "
                f"{100 * statistics.mean(r['load'] for r in results):>9.0f}%"
            )
            each = ", ".join(f"{1e3 * r['seconds']:.1f} ms ({100 * r['load']:.0f}%)" for r in results)
            seen.append(f"{threads} thread(s), {library}: {each}; last loss {results[-1]['loss']:.4f}")
    print(
        "s/step = the median over the rounds of each run's mean seconds per timed step; ratio = scratchnet / PyTorch "
        "(rounds: the lowest and highest ratio of one round's pair of runs); RSS = the largest child's peak; "
        "other load = other processes' share of the CPUs while timing"
    )
    print("ms/step of each run, round by round (other processes' load):")
    for line in seen:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
