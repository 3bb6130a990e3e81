"""Plots of a trained model as PNG files: training curves, confusion matrix, misclassified images,
first-layer weights; for a convolutional network, its kernels (filters) and one image's feature maps;
and an image's augmented versions.

matplotlib is optional (``pip install "scratchnet[plot]"``) and imported only when a plot is drawn,
always with its non-interactive Agg canvas (no display needed). Each function takes plain data and
writes one PNG of ``size`` inches at ``dpi`` dots per inch, so the file is exactly
``size[0] * dpi`` x ``size[1] * dpi`` pixels.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.errors import ConfigError, ScratchnetError

INSTALL_HINT = 'plotting needs matplotlib, which is not installed: pip install "scratchnet[plot]"'
DPI = 100
SIZES: dict[str, tuple[float, float]] = {  # inches; at the default 100 dpi, 100 px per inch
    "curves": (10.0, 4.0),
    "confusion": (8.0, 7.0),
    "misclassified": (8.0, 8.0),
    "weights": (8.0, 8.0),
    "filters": (8.0, 8.0),
    "feature-maps": (10.0, 8.0),
    "augmentations": (8.6, 6.2),  # 8 versions in 6 rows; plot_augmentations sizes it to its rows
}
MAX_FILTERS = 64  # kernels drawn when one input channel is shown
MAX_GRID = 16  # output channels (rows) and input channels (columns) drawn when every input channel is shown
MAX_MAPS = 63  # feature maps drawn beside the input image
SIDE = 28


def pixel_size(kind: str, dpi: int = DPI) -> tuple[int, int]:
    """The (width, height) in pixels of the PNG that plot ``kind`` writes at ``dpi``."""
    width, height = SIZES[kind]
    return round(width * dpi), round(height * dpi)


def png_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """The (width, height) in pixels of the PNG file at ``path``, read from its IHDR chunk."""
    with open(path, "rb") as file:
        head = file.read(24)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def new_figure(kind: str, dpi: int, size: tuple[float, float] | None = None) -> Any:
    """A matplotlib Figure on an Agg canvas (matplotlib objects are typed Any: it has no complete stubs),
    of ``size`` inches (default: the kind's size in SIZES)."""
    if dpi < 10 or dpi > 600:
        raise ConfigError(f"dpi must be between 10 and 600, got {dpi}")
    figure_module, agg = _matplotlib("matplotlib.figure"), _matplotlib("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=size or SIZES[kind], dpi=dpi)
    agg.FigureCanvasAgg(figure)  # draw with Agg whatever the default backend: no display needed
    return figure


def _matplotlib(module: str) -> Any:
    """Import a matplotlib module by name (so mypy does not need its stubs, nor matplotlib installed)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ScratchnetError(INSTALL_HINT) from None


def require_matplotlib() -> None:
    """Raise the one-line ScratchnetError naming the extra to install unless matplotlib imports."""
    _matplotlib("matplotlib")


def save(figure: Any, out: str | os.PathLike[str]) -> None:
    """Write ``figure`` as a PNG at ``out`` as every file of scratchnet is written: through a temporary
    file renamed over it, and never over a link, a device or a FIFO (ModelWriteError naming it)."""
    from pathlib import Path

    from scratchnet.io.model import replace_file

    try:
        replace_file(Path(os.fspath(out)), lambda f: figure.savefig(f, format="png", dpi=figure.dpi))
    except OSError as error:
        raise ScratchnetError(f"cannot write {os.fspath(out)}: {error.strerror or error}") from None


def plot_curves(
    history: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], *, title: str = "", dpi: int = DPI
) -> None:
    """Loss per epoch, and training and validation accuracy per epoch, side by side.

    ``history`` is ``metadata["training"]["history"]`` of a model saved by ``scratchnet train``: one
    record per reported epoch with ``epoch``, ``loss``, ``train_accuracy`` and ``validation_accuracy``
    (None when there is no validation split).
    """
    if not history:
        raise ConfigError("the training history is empty: nothing to plot")
    epochs = [float(record.get("epoch", n + 1)) for n, record in enumerate(history)]
    figure = new_figure("curves", dpi)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [_number(r.get("loss")) for r in history], marker="o", color="tab:red")
    loss_axes.set(title="training loss per epoch", xlabel="epoch", ylabel="loss")
    accuracy_axes.plot(epochs, [100 * _number(r.get("train_accuracy")) for r in history], marker="o", label="training")
    validation = [(e, _number(r.get("validation_accuracy"))) for e, r in zip(epochs, history)]
    validation = [(e, v) for e, v in validation if not math.isnan(v)]
    if validation:
        accuracy_axes.plot([e for e, _ in validation], [100 * v for _, v in validation], marker="s", label="validation")
    accuracy_axes.set(title="accuracy", xlabel="epoch", ylabel="accuracy (%)")
    accuracy_axes.legend(loc="lower right")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        if len(epochs) <= 20:
            axes.set_xticks(epochs)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save(figure, out)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def plot_confusion(
    matrix: Sequence[Sequence[int]],
    class_names: Sequence[str],
    out: str | os.PathLike[str],
    *,
    title: str = "",
    dpi: int = DPI,
) -> None:
    """The confusion matrix: row = true class, column = predicted class, each cell's count written in it.

    The diagonal (the right answers) is shaded blue on its own scale, and the errors orange on theirs,
    from 0 to the largest error count: on one linear scale, 10 errors beside a diagonal of 1,000 would
    be as white as an empty cell. An empty cell is white, its 0 written in grey."""
    classes = len(matrix)
    figure = new_figure("confusion", dpi)
    axes = figure.subplots()
    bars = [axes.inset_axes(box) for box in ([1.03, 0.0, 0.035, 1.0], [1.24, 0.0, 0.035, 1.0])]
    counts = [[int(v) for v in row] for row in matrix]
    right = max(1, max((counts[k][k] for k in range(classes)), default=0))
    wrong = max(1, max((v for r, row in enumerate(counts) for c, v in enumerate(row) if r != c), default=0))
    colormaps = _matplotlib("matplotlib").colormaps
    full = {True: colormaps["Blues"], False: colormaps["Oranges"]}  # by "on the diagonal"
    cells = [[_cell_level(counts[r][c], right if r == c else wrong) for c in range(classes)] for r in range(classes)]
    white = (1.0, 1.0, 1.0, 1.0)
    colours = [[full[r == c](t) if t else white for c, t in enumerate(row)] for r, row in enumerate(cells)]
    axes.imshow(colours, interpolation="nearest")
    size = 8 if classes <= 12 else 6
    for r in range(classes):
        for c in range(classes):
            colour = "white" if cells[r][c] > 0.65 else ("black" if counts[r][c] else "#a0a4aa")
            axes.text(c, r, str(counts[r][c]), ha="center", va="center", fontsize=size, color=colour)
    colormap_module = _matplotlib("matplotlib.cm")
    colors = _matplotlib("matplotlib.colors")
    for bar, peak, name, label in zip(bars, (right, wrong), ("Blues", "Oranges"), ("right (diagonal)", "errors")):
        scale = _light_to_dark(name)  # v / peak -> the colour of a cell of count v
        mappable = colormap_module.ScalarMappable(norm=colors.Normalize(0, peak), cmap=scale)
        figure.colorbar(mappable, cax=bar, label=label)
    names = [_short(name) for name in class_names]
    axes.set_xticks(range(classes), names, rotation=45, ha="right")
    axes.set_yticks(range(classes), names)
    axes.set(xlabel="predicted class", ylabel="true class")
    total = sum(sum(row) for row in counts)
    correct = sum(counts[k][k] for k in range(classes))
    accuracy = f"accuracy {100 * correct / total:.2f}% of {total}" if total else "no samples"
    axes.set_title(f"{title + ': ' if title else ''}confusion matrix ({accuracy})\nright and errors on two scales")
    figure.subplots_adjust(left=0.17, right=0.74, bottom=0.17, top=0.9)  # tight_layout leaves out the colour bars
    save(figure, out)


def _light_to_dark(name: str) -> Any:
    """matplotlib's colormap ``name`` from 30% of the way in: its lightest shade still stands out from white."""
    colors, colormaps = _matplotlib("matplotlib.colors"), _matplotlib("matplotlib").colormaps
    full = colormaps[name]
    return colors.ListedColormap([full(_LIGHTEST + (1 - _LIGHTEST) * k / 255) for k in range(256)])


_LIGHTEST = 0.3


def _cell_level(count: int, peak: int) -> float:
    """Where ``count`` falls on its scale (0 for an empty cell, else 0.3 to 1): the place in the colormap."""
    return 0.0 if count <= 0 else _LIGHTEST + (1 - _LIGHTEST) * min(count, peak) / peak


def plot_misclassified(
    images: Sequence[Any],
    labels: Sequence[int],
    predicted: Sequence[int],
    indices: Sequence[int],
    class_names: Sequence[str],
    out: str | os.PathLike[str],
    *,
    title: str = "",
    dpi: int = DPI,
    total: int | None = None,
) -> None:
    """A grid of images (28x28 grey, or ``(H, W, 3)`` RGB; at most 36 are drawn), each titled with its
    test index, true and predicted class; ``total`` is how many test images are misclassified in all
    (the heading says "36 of 352"). Up to 16 images get a figure sized to fit them (2 images: one row
    of two), more share the 8x8-inch grid."""
    count = min(len(images), 36)
    cols, rows, size = misclassified_grid(count)
    figure = new_figure("misclassified", dpi, size)
    font = 7 if count > 16 else 9
    grid = figure.subplots(rows, cols, squeeze=False)
    for n, axes in enumerate(ax for row in grid for ax in row):
        axes.axis("off")
        if n >= count:
            continue
        axes.imshow(images[n], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_title(
            f"#{indices[n]} true {_short(class_names[labels[n]], 12)}\npred {_short(class_names[predicted[n]], 12)}",
            fontsize=font,
        )
    total = len(images) if total is None else total
    if not count:
        heading = "no misclassified test images"
    elif total > count:
        heading = f"{count} of {total} misclassified test images"
    else:
        heading = f"{count} misclassified test images"
    figure.suptitle(f"{title + ': ' if title else ''}{heading}", fontsize=10 if count <= 4 else 12)
    figure.tight_layout()
    save(figure, out)


def misclassified_grid(count: int) -> tuple[int, int, tuple[float, float]]:
    """Columns, rows and the figure's size in inches for ``count`` misclassified images: 1 to 4 in one
    row, up to 16 in a grid of cells of 1.8 x 2 inches, more (or none) in the 8x8-inch figure."""
    if count == 0 or count > 16:
        cols = max(1, math.ceil(math.sqrt(count)))
        return cols, max(1, math.ceil(count / cols)), SIZES["misclassified"]
    cols = count if count <= 4 else math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    return cols, rows, (max(4.0, 1.8 * cols), 0.7 + 2.0 * rows)


def plot_weights(
    weights: Sequence[Sequence[float]],
    out: str | os.PathLike[str],
    *,
    title: str = "",
    dpi: int = DPI,
    shape: tuple[int, int] = (SIDE, SIDE),
) -> None:
    """First-layer weights as images of ``shape`` (the model's grey images: 28x28), one per hidden
    neuron (the first 64): red positive, blue negative, each on its own symmetric scale. Neuron j's
    image is row j of the weight matrix: what each pixel adds to its z (eq. 2.1)."""
    height, width = shape
    rows_of_weights = [list(map(float, row)) for row in weights[:64]]
    if not rows_of_weights or len(rows_of_weights[0]) != height * width:
        inputs = len(rows_of_weights[0]) if rows_of_weights else 0
        raise ConfigError(f"the first layer's weights are drawn as {height}x{width} images, but it has {inputs} inputs")
    count = len(rows_of_weights)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    figure = new_figure("weights", dpi)
    grid = figure.subplots(rows, cols, squeeze=False)
    for n, axes in enumerate(ax for row in grid for ax in row):
        axes.axis("off")
        if n >= count:
            continue
        w = rows_of_weights[n]
        limit = max(max(abs(v) for v in w), 1e-12)
        axes.imshow(
            [w[r * width : (r + 1) * width] for r in range(height)],
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
        )
        axes.set_title(str(n), fontsize=8, pad=1)
    total = len(weights)
    shown = f"the first {count} of {total}" if total > count else f"all {total}"
    figure.suptitle(f"{title + ': ' if title else ''}first-layer weights, {shown} hidden neurons (red +, blue -)")
    figure.tight_layout()
    save(figure, out)


def _short(name: str, limit: int = 11) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "."


def plot_filters(
    weights: Sequence[Sequence[Sequence[Sequence[float]]]],
    out: str | os.PathLike[str],
    *,
    channel: int | None = None,
    layer: int = 0,
    title: str = "",
    dpi: int = DPI,
) -> None:
    """A Conv2D layer's kernels ``weight[o][c]`` (shape ``(out, in, kh, kw)``) as small images, red
    positive and blue negative, on one symmetric scale per output channel o: what each input
    pixel of a window adds to z (eq. 12.1). With one input channel, or ``channel`` c, a grid of
    the kernels ``weight[o][c]`` (the first 64); otherwise a row per output channel and a column
    per input channel (the first 16 of each; with few input channels, the output channels wrap into
    side-by-side groups so the grid stays near square). Kernels of at most 5x5 taps have their values
    written in when each tap is large enough for its number (at 5 points or more)."""
    kernels = [[[list(map(float, row)) for row in plane] for plane in kernel] for kernel in weights]
    if not kernels or not kernels[0] or not kernels[0][0]:
        raise ConfigError("the convolution has no kernels to draw")
    outs, ins = len(kernels), len(kernels[0])
    if channel is not None and not 0 <= channel < ins:
        raise ConfigError(f"--channel {channel}: layer {layer} has input channels 0..{ins - 1}")
    single = channel is not None or ins == 1
    if single:
        c = channel or 0
        cells = [(o, c) for o in range(min(outs, MAX_FILTERS))]
        cols = math.ceil(math.sqrt(len(cells)))
        rows = math.ceil(len(cells) / cols)
    else:
        shown_outs, shown_ins = min(outs, MAX_GRID), min(ins, MAX_GRID)
        groups = _groups(shown_outs, shown_ins)
        rows, cols = math.ceil(shown_outs / groups), groups * shown_ins
        # cell (r, g * ins + c) is output channel g * rows + r, input channel c
        cells = [(g * rows + r, c) for r in range(rows) for g in range(groups) for c in range(shown_ins)]
        cells = [(o, c) if o < shown_outs else (-1, -1) for o, c in cells]
    figure = new_figure("filters", dpi)
    grid = figure.subplots(rows, cols, squeeze=False)
    drawn_axes = []
    for n, axes in enumerate(ax for row in grid for ax in row):
        axes.axis("off")
        if n >= len(cells) or cells[n][0] < 0:
            continue
        o, c = cells[n]
        limit = max(max(abs(v) for plane in kernels[o] for row in plane for v in row), 1e-12)
        axes.imshow(kernels[o][c], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        axes.set_title(f"out {o}" if single else f"out {o}, in {c}", fontsize=8, pad=2)
        drawn_axes.append((axes, kernels[o][c], limit))
    cells = [cell for cell in cells if cell[0] >= 0]
    shown = f"input channel {channel or 0}" if single else f"input channels 0..{len({c for _, c in cells}) - 1}"
    drawn = len({o for o, _ in cells})
    total = f"the first {drawn} of {outs}" if outs > drawn else f"all {outs}"
    heading = f"layer {layer} kernels w[o][c], {shown}, {total} output channels (red +, blue -)"
    figure.suptitle(f"{title + ': ' if title else ''}{heading}", fontsize=9)
    figure.tight_layout()
    _write_taps(figure, drawn_axes)
    save(figure, out)


def _groups(outs: int, ins: int) -> int:
    """How many groups of output channels to draw side by side, each a column per input channel: the
    number that makes the grid (ceil(outs / groups) rows, groups * ins columns) closest to square."""
    choices = range(1, max(1, MAX_GRID // ins) + 1)
    return min(choices, key=lambda g: (abs(math.ceil(outs / g) - g * ins), g))


def _write_taps(figure: Any, drawn: Sequence[tuple[Any, list[list[float]], float]]) -> None:
    """Write each tap's value in it, in the largest font (up to 8 points) whose "-0.12" fits the tap's
    width as laid out; when that is under 5 points, or the kernels are larger than 5x5, write none."""
    if not drawn:
        return
    kernel = drawn[0][1]
    taps_high, taps_wide = len(kernel), len(kernel[0])
    if taps_high * taps_wide > 25:
        return
    box = drawn[0][0].get_window_extent()  # pixels, after tight_layout; the image is square-tapped inside it
    tap_points = min(box.width / taps_wide, box.height / taps_high) * 72 / figure.dpi
    font = min(8.0, tap_points / 4.2)  # "-0.12" is about 3.2 font sizes wide in DejaVu Sans: a margin of 1/4
    if font < 5:
        return
    for axes, plane, limit in drawn:
        for u, row in enumerate(plane):
            for v, value in enumerate(row):
                colour = "white" if abs(value) > 0.6 * limit else "black"
                axes.text(v, u, f"{value:.2f}", ha="center", va="center", fontsize=font, color=colour)


def plot_feature_maps(
    maps: Sequence[Sequence[Sequence[float]]],
    image: Any,
    out: str | os.PathLike[str],
    *,
    source: str = "the image",
    layer_name: str = "",
    title: str = "",
    dpi: int = DPI,
) -> None:
    """The input ``image`` (28x28 uint8) and then one layer's feature maps for it (``(C, H, W)``, the
    first 63), all the maps on one grey scale from the layer's smallest value (black) to its largest
    (white), each titled with its channel and largest value."""
    planes = [[list(map(float, row)) for row in plane] for plane in maps]
    if not planes or not planes[0] or not planes[0][0]:
        raise ConfigError("there are no feature maps to draw")
    values = [v for plane in planes for row in plane for v in row]
    low, high = min(values), max(values)
    if high == low:
        high = low + 1.0  # a blank layer: draw it black rather than fail
    count = min(len(planes), MAX_MAPS)
    cols = math.ceil(math.sqrt(count + 1))
    rows = math.ceil((count + 1) / cols)
    figure = new_figure("feature-maps", dpi)
    grid = figure.subplots(rows, cols, squeeze=False)
    font = 10 if cols <= 4 else 8  # points: 8 is the smallest text of every plot
    for n, axes in enumerate(ax for row in grid for ax in row):
        axes.axis("off")
        if n == 0:
            axes.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axes.set_title("input", fontsize=font, pad=2)
        elif n <= count:
            plane = planes[n - 1]
            axes.imshow(plane, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            axes.set_title(f"ch {n - 1}, max {max(max(row) for row in plane):.2g}", fontsize=font, pad=2)
    shown = f"the first {count} of {len(planes)}" if len(planes) > count else f"all {len(planes)}"
    figure.suptitle(
        f"{title + ': ' if title else ''}{source}, {shown} feature maps of {layer_name} "
        f"(one scale: black {low:.3g}, white {max(values):.3g})",
        fontsize=10,
    )
    figure.tight_layout()
    save(figure, out)


def plot_augmentations(
    rows: Sequence[tuple[str, Sequence[Any]]],
    out: str | os.PathLike[str],
    *,
    source: str = "the image",
    title: str = "",
    dpi: int = DPI,
) -> None:
    """One row per augmentation: its name, then the images it made (each ``(H, W)`` grey 0..255 or
    ``(H, W, 3)`` RGB), as many columns as the longest row: 0.9 inch per image, 4 inches wide at least."""
    if not rows or not all(images for _, images in rows):
        raise ConfigError("there are no images to draw")
    cols = max(len(images) for _, images in rows)
    figure = new_figure("augmentations", dpi, (max(4.0, 1.4 + 0.9 * cols), 0.5 + 0.95 * len(rows)))
    grid = figure.subplots(len(rows), cols + 1, squeeze=False, gridspec_kw={"width_ratios": [1.5] + [1] * cols})
    for (name, images), axes_row in zip(rows, grid):
        for n, axes in enumerate(axes_row):
            axes.axis("off")
            if n == 0:
                axes.text(1.0, 0.5, name, ha="right", va="center", fontsize=9, transform=axes.transAxes)
            elif n <= len(images):
                axes.imshow(images[n - 1], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    figure.suptitle(f"{title + ': ' if title else ''}{source} and its augmented versions", fontsize=10)
    figure.tight_layout(pad=0.4, h_pad=0.3, w_pad=0.2)
    save(figure, out)
