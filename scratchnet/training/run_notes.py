"""Lines a run says about its network before it trains: the network, optimizer, batches and seed; which
output layer it has; and a note when an MLP far wider than a table's features is about to train on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scratchnet.core import notation
from scratchnet.core.architecture import plan
from scratchnet.core.interface import Network, Optimizer
from scratchnet.data import Dataset
from scratchnet.training.config import TrainConfig
from scratchnet.training.feeding import describe_augmentations

Log = Callable[[str], None]


def output_layer_line(config: TrainConfig, classes: int) -> str:
    """The line that says whether the run added the output layer to ``--layers`` or used the layers' own."""
    if config.network().ends_in_output(classes):
        return f"network: the layers end in dense({classes}), one unit per class: that is the output layer (none added)"
    return f"network: the output layer dense({classes}) (one unit per class) and a softmax are added after the layers"


def table_note(config: TrainConfig, data: Dataset, log: Log) -> None:
    """A note when an MLP far wider than a table's features trains on it (the default recipe's 800-800
    network is sized for 784 pixels)."""
    features = data.sample_shape[0] if data.kind == "features" else None
    widest = max(config.hidden, default=0)
    if features is None or config.layers is not None or widest <= 8 * max(features, 16):
        return
    log(
        f"note: {data.name} is a table of {features} features, and this network's hidden layers are "
        f"{','.join(map(str, config.hidden))} wide (the default recipe's, sized for 784 pixels); a network sized "
        f"to the table, such as --hidden 32 or 64,32, trains as well in a fraction of the time"
    )


def describe_run(config: TrainConfig, network: Network[Any, Any], optimizer: Optimizer) -> str:
    """The line before the first step: the network, the optimizer, the batches and the seed."""
    checked = plan(network.describe())
    shown = (
        f"{checked.outline()} {config.activation}" if config.layers is None else notation.notation(checked.description)
    )
    parts = [f"network {shown}"]
    if config.dropout:
        parts.append(f"dropout {config.dropout:g}")
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    dtype = getattr(next(iter(network.params().values()), None), "dtype", None)  # arrays have one, lists not
    parts.append(f"{checked.parameter_count:,} parameters, {config.backend}" + ("" if dtype is None else f" {dtype}"))
    spec = optimizer.describe()
    opt = f"{spec['type']} lr {spec['lr']:g}"
    if config.lr_schedule != "constant":
        opt += f" {config.lr_schedule} schedule"
    parts.append(opt)
    epochs = f"{config.epochs} epoch" + ("s" if config.epochs != 1 else "")
    batches = [
        f"batch {'full' if config.batch_size == 0 else config.batch_size}",
        epochs,
        *describe_augmentations(config),
    ]
    parts.append(", ".join([*batches, f"seed {config.seed}"]))
    return "; ".join(parts)
