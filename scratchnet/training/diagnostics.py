"""Training diagnostics (Karpathy's "Zero to Hero", lectures 3 and 4), as a loop callback.

Every ``every`` steps (the first step, then steps ``every + 1``, ``2 every + 1``, ...)
:class:`Diagnostics` takes a *sample* of the step it watches:

* for each layer but the last (the output), the mean and standard deviation of its outputs on the
  batch (every number of them, population std), and for the layers that saturate the *saturated
  fraction*: Tanh outputs beyond ±0.97, Sigmoid outputs outside 0.015..0.985 (the same inputs:
  sigmoid(z) = (1 + tanh(z/2))/2), and ReLU *units dead on the whole batch* (a unit is one number of a
  sample's output; it is dead when it is 0 for every sample of the batch);
* for each trained array, the standard deviation of its gradient;
* for each weight array (those the l2/l1 penalties apply to), the update-to-data ratio
  ``log10(std(Δw) / std(w))``: Δw is the change the optimizer made to the array in that step (for SGD,
  ``-lr * g``), w the array after it, as the lecture computes it. About -3 is the rule of thumb.

It only reads: the layers' outputs (it sees each layer's ``forward`` return), ``params()`` before and
after the step and ``grads()``; a run with it gives the very model a run without it gives, in either
backend. The samples since the last record go into that record, under ``"diagnostics"``, so they are
saved in the history of the model file (spec/model-format.md). A layer mostly dead or saturated, and
a weight whose ratio leaves the sane band, are reported in one line each, at most once per layer
and kind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from scratchnet.core.architecture import plan
from scratchnet.core.lazy import lazy_module
from scratchnet.training.loop import Callback, Loop

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]
else:
    np = lazy_module("numpy", globals(), "np")

Warn = Callable[[str], None]

DEFAULT_EVERY = 10
TANH_SATURATION = 0.97  # |tanh| beyond this passes less than 6% of the gradient: 1 - 0.97^2
MOSTLY = 0.9  # a layer with more than this part dead or saturated is reported
RATIO_BAND = (-4.0, -2.0)  # log10 of the update-to-data ratio: 1e-4 .. 1e-2 around Karpathy's 1e-3
RATIO_WINDOW = 5  # the band is judged on the median of this many samples (Adam's first steps are larger)
ANNEALED = 0.1  # samples taken while a schedule has the rate below this part of its base are not judged
DIGITS = 4  # significant digits kept in the history
BUDGET = 4 * 1024 * 1024  # bytes of a run's samples in the model file: a quarter of a document's 16 MiB limit


def _tanh_saturated(outputs: Floats) -> float:
    return float(np.mean(np.abs(outputs) > TANH_SATURATION))


def _sigmoid_saturated(outputs: Floats) -> float:  # sigmoid(z) = (1 + tanh(z / 2)) / 2
    return float(np.mean(np.abs(2.0 * outputs - 1.0) > TANH_SATURATION))


def _relu_dead(outputs: Floats) -> float:
    units = outputs.reshape(outputs.shape[0], -1)
    return float(np.mean(np.all(units <= 0.0, axis=0)))


# The layer types that saturate: how the part of a batch's outputs that passes almost no gradient is
# measured, whether that is "dead" or "saturated", and what the warning says of it.
SATURATION: dict[str, tuple[Callable[[Floats], float], str, str]] = {
    "Tanh": (
        _tanh_saturated,
        "saturated",
        f"of its outputs are beyond ±{TANH_SATURATION}, where almost no gradient passes",
    ),
    "Sigmoid": (
        _sigmoid_saturated,
        "saturated",
        "of its outputs are outside 0.015..0.985, where almost no gradient passes",
    ),
    "ReLU": (_relu_dead, "dead", "of its units output 0 for every sample of the batch"),
}


def saturated_fraction(kind: str, outputs: Floats) -> float | None:
    """The part of a layer's batch ``outputs`` (samples first) that is saturated, for the kinds
    that saturate (:data:`SATURATION`: Tanh, Sigmoid, ReLU), else None. ReLU: the part of the units
    dead on the whole batch (0 for every sample)."""
    rule = SATURATION.get(kind)
    return None if rule is None else rule[0](outputs)


def update_ratio(before: Floats, after: Floats) -> float:
    """``log10(std(after - before) / std(after))``: -inf for no change, +inf or NaN for a constant array."""
    with np.errstate(all="ignore"):
        return float(np.log10(np.std(after - before) / np.std(after)))


def kept(value: float) -> float | None:
    """A number as the history keeps it: DIGITS significant digits, None when not finite (JSON has no NaN)."""
    return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else None


def as_floats(value: Any) -> Floats:
    """A tensor of either backend (an array or nested lists) as a new float64 array."""
    return np.array(value, dtype=np.float64)


class Diagnostics(Callback):
    """Record the diagnostics of every ``every``-th step into the history; ``warn`` gets the one-line
    warnings (default: none are given). ``band`` is the sane range of log10 of the update ratio."""

    def __init__(
        self,
        every: int = DEFAULT_EVERY,
        warn: Warn | None = None,
        band: tuple[float, float] = RATIO_BAND,
        mostly: float = MOSTLY,
    ) -> None:
        if every < 1:
            raise ValueError(f"diagnostics every {every} steps: must be >= 1")
        self.every, self.warn, self.band, self.mostly = every, warn, band, mostly
        self.samples: list[dict[str, Any]] = []  # since the last record
        self.warned: set[tuple[str, str]] = set()  # (layer or array, kind)
        self.ratios: dict[str, list[float]] = {}  # each weight's latest ratios, for the band
        self.outputs: dict[int, Any] = {}  # layer index -> its output in the step being watched
        self.watching = False  # the step under way is sampled: its layers' outputs are caught
        self.layers: list[Any] = []  # the layers whose forward is wrapped
        self.attached = False  # ... from the first step of a run (or of a run() after a pause) to its end
        self.weights: list[str] = []  # the arrays the ratio is taken of
        self.sample: dict[str, Any] | None = None  # the sample being taken: filled by on_loss, then on_step_end
        self.before: dict[str, Floats] = {}
        self.sized = False  # the size of the samples has been checked against BUDGET

    # The loop's hooks.

    def on_epoch_start(self, loop: Loop) -> None:
        if not self.attached:
            self.attach(loop)
        self.watching = self.due(loop.global_step)

    def on_loss(self, loop: Loop, loss: float) -> None:
        """After the forward pass of a sampled step: its activations, and the weights before the step."""
        if not self.watching:
            return
        self.watching = False
        params = loop.network.params()
        self.before = {name: as_floats(params[name]) for name in self.weights}
        self.sample = {"step": loop.global_step + 1, "lr": kept(loop.lr()), "loss": kept(loss)}
        self.sample["layers"] = self.activations()
        self.outputs = {}

    def on_step_end(self, loop: Loop, loss: float) -> None:
        """After the optimizer step of a sampled step: the gradients and the updates; then whether the
        next step is sampled."""
        if self.sample is not None:
            self.finish(loop, self.sample)
            self.sample, self.before = None, {}
        self.watching = self.due(loop.global_step)

    def on_measure(self, loop: Loop, record: dict[str, Any]) -> None:
        record["diagnostics"], self.samples = self.samples, []

    def on_close(self, loop: Loop) -> None:
        self.detach()

    # The work.

    def due(self, done: int) -> bool:
        """Whether the step after ``done`` steps is sampled: steps 1, every + 1, 2 every + 1, ..."""
        return done % self.every == 0

    def attach(self, loop: Loop) -> None:
        """See each layer's output: wrap its ``forward`` (on the object: the class is untouched, and
        :meth:`detach` removes the wrapper); note the network's weight arrays."""
        layers = list(loop.network.layers)
        for index, layer in enumerate(layers[:-1]):
            layer.forward = self.catching(index, layer.forward)
        self.layers, self.attached = layers[:-1], True
        self.weights = [array.name for array in plan(loop.network.describe()).arrays if array.penalized]

    def catching(self, index: int, forward: Callable[..., Any]) -> Callable[..., Any]:
        def watched(inputs: Any, training: bool = False) -> Any:
            outputs = forward(inputs, training)
            if self.watching and training:
                self.outputs[index] = outputs
            return outputs

        return watched

    def detach(self) -> None:
        for layer in self.layers:
            if "forward" in vars(layer):
                del layer.forward
        self.layers, self.outputs, self.attached = [], {}, False

    def activations(self) -> list[dict[str, Any]]:
        """The statistics of each caught layer output."""
        stats = []
        for index, layer in enumerate(self.layers):
            if index not in self.outputs:
                continue
            kind = str(layer.describe()["type"])
            outputs = as_floats(self.outputs[index])
            entry: dict[str, Any] = {
                "layer": index,
                "type": kind,
                "mean": kept(float(np.mean(outputs))),
                "std": kept(float(np.std(outputs))),
            }
            saturated = saturated_fraction(kind, outputs)
            if saturated is not None:
                entry["saturated"] = kept(saturated)
            stats.append(entry)
        return stats

    def finish(self, loop: Loop, sample: dict[str, Any]) -> None:
        """Add the gradients' spread and the weights' update ratios to ``sample``, keep it, and warn."""
        grads, params = loop.network.grads(), loop.network.params()
        sample["grad_std"] = {name: kept(float(np.std(as_floats(grad)))) for name, grad in grads.items()}
        ratios = {name: update_ratio(self.before[name], as_floats(params[name])) for name in self.weights}
        sample["update_ratio"] = {name: kept(ratio) for name, ratio in ratios.items()}
        self.samples.append(sample)
        if not self.sized:
            self.fit_budget(loop, len(json.dumps(sample)))
        if self.warn is not None:
            annealed = loop.lr() < ANNEALED * loop.optimizer.lr  # a schedule near its end: small steps are meant
            self.check(sample, {} if annealed else ratios)

    def fit_budget(self, loop: Loop, size: int) -> None:
        """After the first sample (``size`` bytes of JSON): sample less often if the rest of the run
        would take more than BUDGET bytes of the model file, and say so."""
        self.sized = True
        left = loop.epochs * loop.steps_per_epoch - loop.global_step
        every = max(self.every, math.ceil(left * size / BUDGET))
        if every != self.every:
            if self.warn is not None:
                needed = left // self.every * size / 2**20
                self.warn(
                    f"diagnostics every {self.every} steps would take {needed:.0f} MiB of the model file over the "
                    f"{left} steps left; recording every {every} steps instead"
                )
            self.every = every

    def check(self, sample: dict[str, Any], ratios: dict[str, float]) -> None:
        """One line for a layer mostly dead or saturated, or a weight whose ratio (the median of its
        last RATIO_WINDOW samples) is outside the band; each layer and kind once."""
        step = sample["step"]
        for entry in sample["layers"]:
            part = entry.get("saturated")
            if part is None or part <= self.mostly:
                continue
            _, kind, what = SATURATION[entry["type"]]
            self.say(
                f"layer {entry['layer']}",
                kind,
                f"layer {entry['layer']} ({entry['type']}) is mostly {kind}: {100 * part:.0f}% {what} (step {step})",
            )
        low, high = self.band
        for name, ratio in ratios.items():
            recent = self.ratios.setdefault(name, [])
            recent.append(ratio if not math.isnan(ratio) else math.inf)
            del recent[:-RATIO_WINDOW]
            if len(recent) < RATIO_WINDOW:
                continue
            median = float(np.median(recent))
            if low <= median <= high:
                continue
            layer = name.split(".", 1)[0]
            where = "below" if median < low else "above"
            if math.isfinite(median):
                shown = f"{10**median:.2g} (log10 {median:.2f}; the median of steps {self.window(step)})"
            else:
                shown = f"{'0' if median < 0 else 'NaN'} (the median of steps {self.window(step)})"
            self.say(
                f"layer {layer}",
                "update ratio",
                f"layer {layer} ({name}): update-to-data ratio {shown} is "
                f"{where} the sane band 1e{low:g}..1e{high:g} (about 1e-3 is the rule of thumb): "
                + ("raise the learning rate" if where == "below" else "lower the learning rate"),
            )

    def window(self, step: int) -> str:
        first = step - (RATIO_WINDOW - 1) * self.every
        return f"{max(first, 1)}..{step}"

    def say(self, who: str, kind: str, line: str) -> None:
        if (who, kind) not in self.warned:
            self.warned.add((who, kind))
            assert self.warn is not None
            self.warn(line)


def samples_of(history: Sequence[Any]) -> list[dict[str, Any]]:
    """Every diagnostics sample in a run's history, in step order."""
    samples = [s for record in history if isinstance(record, dict) for s in record.get("diagnostics") or ()]
    return [s for s in samples if isinstance(s, dict) and isinstance(s.get("step"), int)]
