"""``scratchnet inspect MODEL.json``: what a model pair holds, and whether every checksum verifies.

Standard library only (no network is built): the pair is read and verified exactly as ``load``
does, then described. A damaged pair is a ModelFormatError: one line on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.cli.inspect_text import language_model_lines
from scratchnet.core.architecture import Plan, plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.registry import describe_shape, layer_type, options_of
from scratchnet.core.text import printable
from scratchnet.core.walk import LayerSite, every_layer, walk
from scratchnet.io.manifest import OPTIMIZER_PREFIX
from scratchnet.io.model import ModelFiles, model_paths, read_model
from scratchnet.io.resign import fix_checksum

DESCRIPTION = (
    "Read MODEL.json and the .npz beside it, verify every checksum, shape and dtype, and print "
    "the architecture, parameter counts and metadata. Exit status 1 when the pair is damaged."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.json", help="the model (NAME, NAME.json or NAME.npz)")
    parser.add_argument(
        "--fix-checksum",
        action="store_true",
        help="after you edited MODEL.json by hand on purpose: write its document checksum anew (asks first; "
        "only the checksum may be wrong, every other check still applies)",
    )
    parser.add_argument("--yes", action="store_true", help="with --fix-checksum: do not ask")


def run(args: argparse.Namespace) -> int:
    if args.yes and not args.fix_checksum:
        raise ConfigError("--yes answers --fix-checksum's question; give --fix-checksum too")
    if args.fix_checksum:
        return fix(args.model, args.yes)
    # Everything is read and verified before anything is printed: a damaged file prints one line.
    print(describe(read_model(args.model)))
    return 0


def fix(model: str, yes: bool) -> int:
    """``--fix-checksum``: re-sign a document edited by hand, once the user has said it was on purpose."""
    name = model_paths(model)[0]
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                "--fix-checksum asks before it rewrites a file; give --yes to answer yes without a terminal"
            )
        answer = input(f"{name} was edited after it was saved; was that you, on purpose? Re-sign it [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("left as it was")
            return 1
    digest = fix_checksum(name)
    print(
        f"{name}: the checksum was right already"
        if digest is None
        else f"{name}: re-signed (document_sha256 {digest[:12]}...)"
    )
    print(describe(read_model(name)))
    return 0


def describe(files: ModelFiles) -> str:
    """The report ``scratchnet inspect`` prints for a verified pair."""
    document = files.document
    architecture = document.architecture
    lines = [
        f"model: {files.json_path} + {files.npz_path.name}",
        f"format: {document.raw['format']} version {document.raw['version']}, dtype {document.dtype}",
    ]
    checked = plan(architecture)
    shape = checked.input_shape
    if checked.vocabulary is not None:
        lines.append(
            f"input: sequences of up to {shape[0]} token ids, "
            f"0..{checked.vocabulary - 1} (vocabulary {checked.vocabulary})"
        )
    else:
        lines.append(f"input: {shape[0]} features" if len(shape) == 1 else f"input: shape {describe_shape(shape)}")
    lines += language_model_lines(document.metadata)
    lines.append("")
    lines += _table(checked)
    trained = [array for array in checked.arrays if array.trained]
    untrained = [array for array in checked.arrays if not array.trained]
    nbytes = sum(entry.nbytes for entry in document.parameters)
    lines.append("")
    total = f"total: {checked.parameter_count} parameters in {len(trained)} arrays"
    if untrained:
        total += f", {sum(math.prod(a.shape) for a in untrained)} untrained values in {len(untrained)} arrays"
    lines.append(f"{total} ({_size(nbytes)})")
    options = ", ".join(f"{k} {_number(v)}" for k, v in architecture["loss"].items() if k != "type")
    loss = architecture["loss"]["type"] + (f" ({options})" if options else "")
    lines.append(f"loss: {loss}, l2 {_number(architecture.get('l2', 0.0))}, l1 {_number(architecture.get('l1', 0.0))}")
    metadata = document.metadata
    lines.append(f"saved: by scratchnet {metadata['scratchnet_version']} at {metadata['created']}")
    training = metadata.get("training")
    if isinstance(training, Mapping):
        lines += _training(training, metadata.get("dataset"))
    elif isinstance(metadata.get("dataset"), str):
        lines.append(f"training: dataset {metadata['dataset']}")
    optimizer = document.optimizer
    if optimizer is not None:
        state_bytes = sum(entry.nbytes for entry in optimizer.arrays)
        lines.append(
            f"optimizer state: {_settings(optimizer.spec)}, step {optimizer.step}, "
            f"{len(optimizer.arrays)} arrays ({_size(state_bytes)})"
        )
    optimizer_arrays = sum(1 for key in files.arrays if key.startswith(OPTIMIZER_PREFIX))
    detail = (
        f": {len(files.arrays) - optimizer_arrays} parameters, {optimizer_arrays} optimizer state"
        if optimizer_arrays
        else ""
    )
    lines.append(f"checksums: all {len(files.arrays)} arrays verify (sha256){detail}")
    # Each line holds text from the file (the dataset, the training summary's names and values): one
    # line each, with no character a terminal would obey.
    return "\n".join(printable(line) for line in lines)


def _table(checked: Plan) -> list[str]:
    """One row per layer; a container's layers follow it, indented, at their paths (``3.0``), and its
    count is that of every layer it holds."""
    rows = [("layer", "type", "output", "options", "parameters", "count")]
    for site in every_layer(walk(checked)):
        depth = len(site.path) - 1
        own = [array for array in checked.arrays if _holder(array.name) == site.prefix]
        inside = [array for array in checked.arrays if array.name.startswith(site.prefix + ".")]
        text = ", ".join(
            f"{key} {_number(value)}" if not _is_layers(value) else f"{key} {len(value)}"
            for key, value in _given(checked, site).items()
        )
        params = ", ".join(
            f"{array.name[len(site.prefix) + 1 :]} {array.shape}" + ("" if array.trained else " (untrained)")
            for array in own
        )
        count = str(sum(math.prod(array.shape) for array in inside if array.trained)) if inside else ""
        output = layer_type(site.kind).output_shape(site.options, site.input_shape)
        rows.append(("  " * depth + site.prefix, "  " * depth + site.kind, describe_shape(output), text, params, count))
    widths = [max(len(row[column]) for row in rows) for column in range(6)]
    right = {0, 2, 5}  # numbers are right-aligned
    return [
        "  ".join(
            cell.rjust(w) if c in right else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]


def _holder(name: str) -> str:
    """The path of the layer holding array ``name``: ``"3.1"`` for ``"3.1.out_proj.weight"``."""
    parts = name.split(".")
    digits = 0
    while digits < len(parts) - 1 and parts[digits].isdigit():
        digits += 1
    return ".".join(parts[:digits])


def _is_layers(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value) and bool(value)


def _given(checked: Plan, site: LayerSite) -> dict[str, Any]:
    """The options the architecture gives the layer at ``site`` (as written, not with defaults)."""
    layers: Sequence[Mapping[str, Any]] = checked.description["layers"]
    layer: Mapping[str, Any] = layers[site.path[0]]
    for index in site.path[1:]:
        children = layer_type(layer["type"]).children
        assert children is not None  # the walk went into it: a container
        layer = children(options_of(layer, "a layer"))[index]
    return {key: value for key, value in layer.items() if key != "type"}


def _training(training: Mapping[str, Any], dataset: Any = None) -> list[str]:
    """The training summary: the spec's documented members, and scratchnet train's own ``final``
    metrics for models saved before it filled in ``final_metrics``; ``dataset`` is the top-level
    ``metadata.dataset`` that scratchnet train also writes."""
    parts = []
    dataset = training.get("dataset", dataset)
    if isinstance(dataset, str):
        parts.append(f"dataset {dataset}")
    if "epochs" in training:
        parts.append(f"{training['epochs']} epoch{'' if training['epochs'] == 1 else 's'}")
    if "seed" in training:
        parts.append(f"seed {training['seed']}")
    if isinstance(training.get("optimizer"), Mapping):
        parts.append(f"optimizer {_settings(training['optimizer'])}")
    lines = [f"training: {', '.join(parts) if parts else '(no summary fields)'}"]
    metrics = training.get("final_metrics")
    if not (isinstance(metrics, Mapping) and metrics) and isinstance(training.get("final"), Mapping):
        metrics = training["final"]
    if isinstance(metrics, Mapping) and metrics:
        shown = [_metric(key, value) for key, value in metrics.items() if value is not None]
        lines.append("final metrics: " + ", ".join(shown))
    history = training.get("history")
    if isinstance(history, list):
        lines.append(f"history: {len(history)} {'entry' if len(history) == 1 else 'entries'}")
    return lines


def _metric(key: str, value: Any) -> str:
    """``test accuracy 98.94%``, ``train loss 0.0412``: accuracies as percentages."""
    name = str(key).replace("_", " ")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if is_number and "accuracy" in name and 0.0 <= value <= 1.0:
        return f"{name} {100 * value:.2f}%"
    return f"{name} {_number(value)}"


def _settings(spec: Mapping[str, Any]) -> str:
    """``Adam (lr 0.001, betas [0.9, 0.999])`` from an optimizer's describe()."""
    name = str(spec.get("type", "?"))
    rest = ", ".join(f"{key} {_number(value)}" for key, value in spec.items() if key != "type")
    return f"{name} ({rest})" if rest else name


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_number(item) for item in value) + "]"
    return str(value)


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
