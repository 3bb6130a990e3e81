"""Where a network's outputs stop being finite numbers: the one line that replaces NumPy's overflow
warnings (``evaluate``) or a JSON answer that cannot hold ``inf`` (``serve``) when a model's weights
are too large for its dtype (float32 ends at about 3.4e38).

A model file holding large but finite weights is valid; only what it computes overflows. So the
check runs on the outputs, layer by layer, and names the first layer whose output is not finite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from scratchnet.core.lazy import lazy_module, numpy_loaded

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy", globals(), "np")


def first_nonfinite(outputs: Sequence[Any]) -> int | None:
    """The index of the first of ``outputs`` (each layer's output, in order) that holds a value that
    is not a finite number (inf or NaN), or None when all are finite."""
    for index, values in enumerate(outputs):
        if not np.isfinite(np.asarray(values, dtype=np.float64)).all():
            return index
    return None


def layer_outputs(network: Any, inputs: Any) -> list[Any]:
    """``outputs[l]``: the output of layer l of ``network`` (either backend) for a batch, in
    inference mode, with NumPy's floating-point warnings off (the caller checks the outputs)."""
    outputs = []
    values = inputs
    with np.errstate(all="ignore"):
        for layer in network.layers:
            values = layer.forward(values, False)
            outputs.append(values)
    return outputs


def overflow_layer(network: Any, inputs: Any) -> int | None:
    """The first layer of ``network`` whose output for the batch ``inputs`` is not finite, or None."""
    return first_nonfinite(layer_outputs(network, inputs))


def overflow_message(network: Any, index: int, name: str | None = None) -> str:
    """One line naming layer ``index`` (as ``name``, else its type) where the outputs overflow."""
    dtype = np.dtype(getattr(network, "dtype", "float64")).name
    what = name or str(network.layers[index].describe()["type"])
    return f"the model's outputs overflow {dtype} at layer {index} ({what}): its weights are too large"


class FloatingPointFlags:
    """Records whether NumPy met an overflow or an invalid operation (``np.errstate(call=...)``)."""

    def __init__(self) -> None:
        self.raised: set[str] = set()

    def __call__(self, kind: str, flag: int) -> None:
        self.raised.add(kind)


@contextmanager
def watched() -> Iterator[FloatingPointFlags]:
    """NumPy's overflow, invalid and divide-by-zero warnings recorded instead of printed (underflow,
    as in a softmax of very negative numbers, is normal and ignored)."""
    flags = FloatingPointFlags()
    if not numpy_loaded():  # no arrays: the loops backend's Python floats raise rather than warn
        yield flags
        return
    call: Callable[[str, int], None] = flags
    with np.errstate(over="call", invalid="call", divide="call", under="ignore", call=call):
        yield flags
