"""Lines a run says about its network before it trains: which output layer it has, and a note when
an MLP far wider than a table's features is about to train on it."""

from __future__ import annotations

from collections.abc import Callable

from scratchnet.data import Dataset
from scratchnet.training.config import TrainConfig

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
