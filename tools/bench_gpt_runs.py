"""The runs of tools/bench_gpt.py: the recipes' settings as ``scratchnet train`` reads them, a recorder of
every step's loss, the initial network of a run, and microgpt_reference's start from a run's weights and
documents. Standard library and scratchnet only (no PyTorch)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from scratchnet.builders import build_network, build_optimizer
from scratchnet.core.interface import Network, Optimizer
from scratchnet.data.text import TextData, load_text
from scratchnet.data.text_batches import training_batch
from scratchnet.training.config import TrainConfig
from scratchnet.training.loop import Callback, Loop
from scratchnet.training.optimizer import optimizer_spec
from scratchnet.training.text_train import TextSettings, TrainConfigView, context_of, run_length, text_architecture


def run_config(recipe: str, data: str, steps: int | None) -> tuple[TrainConfig, TextSettings]:
    """What ``scratchnet train --data DATA --recipe RECIPE [--steps STEPS]`` runs (training/text_recipes.py),
    read through the command line's own parser and text_config, so that the bench never drifts from it (a
    shorter ``--steps`` shortens the recipe's warmup in proportion, as there)."""
    from scratchnet.cli import build_parser
    from scratchnet.cli.train_text import text_config

    argv = ["train", "--data", data, "--recipe", recipe]
    if steps is not None:
        argv += ["--steps", str(steps)]
    config, settings = text_config(build_parser(argv).parse_args(argv))
    return config, settings


def describe(recipe: str, data: str, steps: int | None) -> str:
    """One line: the network's size, the run's length and its optimizer."""
    from scratchnet.core.architecture import plan

    config, settings = run_config(recipe, data, steps)
    text, network, optimizer = initial_state(config, settings)
    _, length = run_length(settings, config, text)
    return (
        f"--recipe {recipe} on {data}: {plan(network.describe()).parameter_count:,} parameters, "
        f"{length} steps of batch {config.batch_size} x context {context_of(settings, text)}, {config.backend} "
        f"{config.dtype}; {optimizer.describe()}"
    )


def text_of(config: TrainConfig, settings: TextSettings) -> TextData:
    assert config.data is not None
    return load_text(config.data, layout=settings.layout, seed=settings.split_seed, backend=config.backend)


def initial_state(
    config: TrainConfig, settings: TextSettings, dtype: str | None = None
) -> tuple[TextData, Network[Any, Any], Optimizer]:
    """The run's text, its network before the first step and its optimizer, built as train_text builds them."""
    data = text_of(config, settings)
    context = context_of(settings, data)
    architecture = text_architecture(config, data.vocabulary.size, context)
    network: Network[Any, Any] = build_network(
        architecture, backend=config.backend, dtype=dtype or config.dtype, seed=config.seed
    )
    epochs, steps = run_length(settings, config, data)
    optimizer: Optimizer = build_optimizer(optimizer_spec(TrainConfigView(config, epochs), steps), config.backend)
    return data, network, optimizer


def peak_rss_mb() -> float:
    """This process's peak resident set since it started its program (VmHWM; Linux resets it at exec,
    where ru_maxrss keeps the parent's size at the fork), or ru_maxrss where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StepLosses(Callback):
    """Every step's loss, and the seconds of the steps: from the first step's start to the last step's end,
    less the records between them (the held-out estimates, which microgpt's algorithm does not make)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.started: float | None = None
        self.ended = 0.0
        self.recording = 0.0  # the records' seconds between steps
        self.pending = 0.0  # the last record's, counted once another step has ended after it

    @property
    def seconds(self) -> float:
        return 0.0 if self.started is None else self.ended - self.started - self.recording

    def on_epoch_start(self, loop: Loop) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def on_step_end(self, loop: Loop, loss: float) -> None:
        self.losses.append(float(loss))
        self.ended = time.perf_counter()
        self.recording, self.pending = self.recording + self.pending, 0.0

    def on_record(self, loop: Loop, record: dict[str, Any]) -> None:
        self.pending = time.perf_counter() - self.ended  # a record follows its step's end at once


@dataclass
class MicrogptStart:
    """microgpt_reference.train's arguments for a run: its weights, documents (one a step), boundary id,
    Config and Adam settings."""

    weights: dict[str, list[list[float]]]
    documents: list[list[int]]
    boundary: int
    config: Any
    lr: float
    betas: tuple[float, float]
    eps: float


def microgpt_start(config: TrainConfig, settings: TextSettings) -> MicrogptStart:
    """The run's initial weights in microgpt_reference's names, and the document of each of its steps."""
    import microgpt_reference as reference

    data, network, optimizer = initial_state(config, settings)
    context = context_of(settings, data)
    boundary = data.vocabulary.boundary_id
    assert boundary is not None, "the microgpt recipe reads documents"
    _, steps = run_length(settings, config, data)
    documents = []
    for step in range(steps):
        inputs, targets = training_batch(data, step, 1, context, config.seed)
        row = [int(i) for i in inputs[0][1:]] + [int(targets[0][-1])]
        documents.append(row[:-1] if row[-1] == boundary else row)  # its characters (cut to the context)
    params = {name: to_rows(value) for name, value in network.params().items()}
    weights = reference_weights(params)
    d = len(weights["wte"][0])
    shape = reference.Config(
        vocab_size=data.vocabulary.size, n_embd=d, n_head=attention_heads(network.describe()),
        n_layer=sum(1 for name in weights if name.endswith(".wq")), block_size=context,
    )  # fmt: skip
    spec = optimizer.describe()
    return MicrogptStart(weights, documents, boundary, shape, spec["lr"], tuple(spec["betas"]), spec["eps"])


def to_rows(value: Any) -> list[list[float]]:
    """An array of either backend (nested lists in loops, NumPy in vectorized) as rows of floats; a 1-D
    one as one row."""
    rows = value.tolist() if hasattr(value, "tolist") else value
    return [[float(v) for v in row] for row in rows] if rows and isinstance(rows[0], list) else [list(rows)]


def reference_weights(params: dict[str, list[list[float]]]) -> dict[str, list[list[float]]]:
    """scratchnet's arrays in microgpt_reference's names: the first two tables are ``wte`` and ``wpe``, the
    last matrix ``lm_head``; each attention's ``in_proj_weight`` rows are q, k, v; the two matrices that
    follow an attention's ``out_proj`` are its block's ``fc1`` and ``fc2``. Biases and gains are not there."""
    matrices = [(name, rows) for name, rows in params.items() if len(rows) > 1 and not name.endswith("bias")]
    weights = {"wte": matrices[0][1], "wpe": matrices[1][1], "lm_head": matrices[-1][1]}
    layer, mlp = -1, list[list[list[float]]]()
    for name, rows in matrices[2:-1]:
        if name.endswith("in_proj_weight"):
            layer += 1
            d = len(rows) // 3
            for part, start in (("wq", 0), ("wk", d), ("wv", 2 * d)):
                weights[f"h{layer}.{part}"] = rows[start : start + d]
        elif name.endswith("out_proj.weight"):
            weights[f"h{layer}.wo"], mlp = rows, []
        else:
            mlp.append(rows)
            weights[f"h{layer}.{'fc1' if len(mlp) == 1 else 'fc2'}"] = rows
    return weights


def attention_heads(description: Any) -> int:
    """The heads of the first attention layer in a network's description."""
    layers = description["layers"] if isinstance(description, dict) else description
    for layer in layers:
        if "heads" in layer:
            return int(layer["heads"])
        inner = layer.get("layers")
        if inner:
            found = attention_heads(inner)
            if found:
                return found
    return 0
