"""Plots of how a run learns, as PNG files: the diagnostics ``scratchnet train --diagnostics`` records
(``scratchnet plot diagnostics``) and the loss against the learning rate of ``scratchnet lr-find``.

Like :mod:`scratchnet.teaching.plots` (whose figure and file helpers these use), each function takes
plain data and writes one PNG of ``size`` inches at ``dpi`` dots per inch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.teaching.plots import DPI, new_figure, save

DIAGNOSTICS_SIZE = (12.0, 8.0)
LR_FIND_SIZE = (8.0, 5.0)
RULE_OF_THUMB = -3.0  # log10 of Karpathy's update-to-data ratio
SANE_BAND = (-4.0, -2.0)


def _series(samples: Sequence[Mapping[str, Any]], pick: Any) -> dict[str, tuple[list[int], list[float]]]:
    """``{label: (steps, values)}`` from ``pick(sample)``, an iterable of (label, value) pairs per
    sample; values that are not numbers (null in the file) are left out."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for sample in samples:
        for label, value in pick(sample):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                steps, values = series.setdefault(str(label), ([], []))
                steps.append(int(sample["step"]))
                values.append(float(value))
    return series


def _layers(sample: Mapping[str, Any], member: str) -> list[tuple[str, Any]]:
    entries = sample.get("layers")
    if not isinstance(entries, list):
        return []
    return [(f"{e.get('layer')} {e.get('type')}", e.get(member)) for e in entries if isinstance(e, dict)]


def _arrays(sample: Mapping[str, Any], member: str) -> list[tuple[str, Any]]:
    values = sample.get(member)
    return list(values.items()) if isinstance(values, dict) else []


def _draw(axes: Any, series: dict[str, tuple[list[int], list[float]]], marker: bool) -> None:
    for label, (steps, values) in series.items():
        axes.plot(steps, values, label=label, marker="o" if marker else None, markersize=3)
    if series:
        axes.legend(fontsize=7, ncol=2 if len(series) > 6 else 1, loc="best")
    else:
        axes.text(0.5, 0.5, "none recorded", ha="center", va="center", transform=axes.transAxes, color="grey")


def plot_diagnostics(
    samples: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], *, title: str = "", dpi: int = DPI
) -> None:
    """Four panels over the training steps: each layer's activation std; the part of each ReLU layer's
    units dead on the batch, or of each Tanh or Sigmoid layer's outputs saturated; each trained
    array's gradient std (log scale); each weight's update-to-data ratio, log10, with the 1e-3 line
    and the 1e-4..1e-2 band. ``samples`` are the ``diagnostics`` of the history's records."""
    if not samples:
        raise ConfigError("the history holds no diagnostics: nothing to plot")
    marker = len(samples) <= 40
    figure = new_figure("diagnostics", dpi, DIAGNOSTICS_SIZE)
    (std_axes, saturated_axes), (grad_axes, ratio_axes) = figure.subplots(2, 2)
    _draw(std_axes, _series(samples, lambda s: _layers(s, "std")), marker)
    std_axes.set(title="activations: standard deviation per layer", ylabel="std")
    saturated = _series(samples, lambda s: [(k, None if v is None else 100 * v) for k, v in _layers(s, "saturated")])
    _draw(saturated_axes, saturated, marker)
    saturated_axes.set(title="dead (ReLU units, on the batch) or saturated (Tanh, Sigmoid)", ylabel="% of the layer")
    saturated_axes.set_ylim(-2, 102)
    gradients = _series(samples, lambda s: [(k, v) for k, v in _arrays(s, "grad_std") if v is None or v > 0])
    _draw(grad_axes, gradients, marker)
    grad_axes.set(title="gradients: standard deviation per array", ylabel="std")
    if gradients:
        grad_axes.set_yscale("log")
    ratio_axes.axhspan(*SANE_BAND, color="tab:green", alpha=0.08, label="sane band 1e-4..1e-2")
    ratio_axes.axhline(RULE_OF_THUMB, color="black", linestyle="--", linewidth=1, label="1e-3 (rule of thumb)")
    _draw(ratio_axes, _series(samples, lambda s: _arrays(s, "update_ratio")), marker)
    ratio_axes.set(title="update-to-data ratio per weight: log10(std(Δw) / std(w))", ylabel="log10")
    for axes in (std_axes, saturated_axes, grad_axes, ratio_axes):
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save(figure, out)


def plot_lr_find(
    rates: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    suggested: float,
    rule: str,
    out: str | os.PathLike[str],
    *,
    title: str = "",
    dpi: int = DPI,
) -> None:
    """The loss of each step against its learning rate (log scale), the smoothed loss over it, and a
    line at the suggested rate, labelled with the rule that chose it."""
    if not rates:
        raise ConfigError("the sweep took no step: nothing to plot")
    figure = new_figure("lr-find", dpi, LR_FIND_SIZE)
    axes = figure.subplots(1, 1)
    finite = [(r, v) for r, v in zip(rates, losses) if math.isfinite(v)]
    axes.plot([r for r, _ in finite], [v for _, v in finite], color="tab:blue", alpha=0.3, label="loss of the step")
    axes.plot(rates, smoothed, color="tab:blue", label="smoothed loss")
    axes.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested lr {suggested:.3g}\n({rule})")
    axes.set_xscale("log")
    top = 1.5 * max(smoothed[0], min(smoothed)) if smoothed else None
    if top is not None and math.isfinite(top):
        axes.set_ylim(0, top)
    axes.set(xlabel="learning rate", ylabel="training loss", title=title or "learning-rate finder")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    figure.tight_layout()
    save(figure, out)
