"""Models in and out: scratchnet models to and from ONNX, safetensors and PyTorch.

* :func:`export_model` writes a scratchnet model (``NAME.json`` + ``NAME.npz``) as an ONNX file
  (:mod:`~scratchnet.interop.onnx_export`), as safetensors under the names ``torch.nn.Sequential``
  gives its tensors (:mod:`~scratchnet.interop.safetensors_io`), or as a short PyTorch script with
  those safetensors beside it (:mod:`~scratchnet.interop.pytorch_script`).
* :func:`import_model` reads an ONNX file (:mod:`~scratchnet.interop.onnx_import`) or a safetensors
  file back into a scratchnet model pair, which then evaluates, predicts and explains like any other.

Each layer type's ONNX operator is in one table per direction (``EXPORTERS``, ``IMPORTERS``) and its
PyTorch module in one (``TORCH_MODULES``); the array names are the registry's own. The ``onnx`` and
``safetensors`` packages are optional extras, imported only when a file of theirs is read or written
(:mod:`~scratchnet.interop.extras`): importing this package imports neither, nor NumPy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import ConfigError

if TYPE_CHECKING:
    from scratchnet.interop.portable import Portable

FORMATS = ("onnx", "safetensors", "pytorch")
SUFFIXES = {"onnx": ".onnx", "safetensors": ".safetensors", "pytorch": ".py"}

__all__ = ["FORMATS", "SUFFIXES", "Exported", "default_output", "export_model", "export_network", "import_model"]


def default_output(model: str | os.PathLike[str], to: str) -> Path:
    """Where ``export --to`` writes without ``--out``: beside the model, ``NAME.onnx`` / ``.safetensors`` / ``.py``."""
    from scratchnet.io.model import model_paths

    return model_paths(model)[0].with_suffix(SUFFIXES[to])


@dataclass(frozen=True)
class Exported:
    """What an export wrote (the script and its safetensors for "pytorch"), and notes for its user."""

    paths: list[Path]
    notes: list[str]


def export_model(
    model: str | os.PathLike[str],
    to: str,
    out: str | os.PathLike[str] | None = None,
    *,
    opset: int | None = None,
    dtype: str | None = None,
) -> Exported:
    """Export the scratchnet model ``model`` to format ``to`` (one of :data:`FORMATS`) at ``out``
    (default :func:`default_output`). ``opset`` applies to ONNX only; ``dtype`` ("float32" or
    "float64") casts the arrays (default: the model's)."""
    if to not in FORMATS:
        raise ConfigError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    if opset is not None and to != "onnx":
        raise ConfigError("--opset applies to --to onnx only")
    from scratchnet.interop.portable import read_scratchnet

    target = Path(os.fspath(out)) if out is not None else default_output(model, to)
    from scratchnet.io.model import check_replaceable

    for written in (target, target.with_suffix(".safetensors")) if to == "pytorch" else (target,):
        check_replaceable(written)  # a link, a device or a FIFO there: refused before the model is read
    if to == "onnx":
        from scratchnet.interop.onnx_export import DEFAULT_OPSET, check_opset

        check_opset(DEFAULT_OPSET if opset is None else opset)  # before the model is read: a usage error first
    return _export(read_scratchnet(model, dtype), to, target, opset, str(model))


def export_network(
    network: Any,
    to: str,
    out: str | os.PathLike[str],
    *,
    metadata: dict[str, Any] | None = None,
    opset: int | None = None,
    dtype: str | None = None,
) -> Exported:
    """Export a built network (of either backend, in memory: no model file needed) to format ``to``
    at ``out``, as :func:`export_model` exports a saved one; ``metadata`` is what a saved model's
    would hold (``dataset``, ``class_names``, ``input`` scaling)."""
    if to not in FORMATS:
        raise ConfigError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    if opset is not None and to != "onnx":
        raise ConfigError("--opset applies to --to onnx only")
    from scratchnet.interop.portable import portable_of
    from scratchnet.io.model import check_replaceable

    target = Path(os.fspath(out))
    for written in (target, target.with_suffix(".safetensors")) if to == "pytorch" else (target,):
        check_replaceable(written)
    return _export(portable_of(network, metadata, dtype), to, target, opset, "network")


def _export(source: Portable, to: str, target: Path, opset: int | None, name: str) -> Exported:
    """Write the Portable ``source`` as ``to`` at ``target``."""
    if to == "onnx":
        from scratchnet.interop.onnx_export import DEFAULT_OPSET, float64_caveat, write_onnx

        chosen = DEFAULT_OPSET if opset is None else opset
        caveat = float64_caveat(source, chosen)
        return Exported([write_onnx(source, target, chosen)], [caveat] if caveat else [])
    if to == "safetensors":
        from scratchnet.interop.safetensors_io import write_safetensors

        return Exported([write_safetensors(source, target)], [])
    from scratchnet.interop.pytorch_script import write_pytorch

    return Exported(write_pytorch(source, target, name), [])


def import_model(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    architecture: dict[str, Any] | None = None,
    loss: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Read ``path`` (``.onnx`` or ``.safetensors``, by its suffix) and save it as a scratchnet model
    at ``out`` (default: ``NAME.json`` beside it, which must not exist yet); return the ``.json`` written.

    ``architecture`` (a safetensors file's, when its metadata has none) and ``loss`` ("CrossEntropy",
    "MeanSquaredError" or "BinaryCrossEntropy"; default: the loss the last layer is fused with, else
    MeanSquaredError) say what the file does not; ``metadata`` is merged over what the file records
    (dataset, class names, input scaling)."""
    from scratchnet.interop.portable import write_scratchnet
    from scratchnet.io.lock import model_lock

    source = Path(os.fspath(path))
    kind = source.suffix.lower()
    if kind not in (".onnx", ".safetensors"):
        raise ConfigError(f"{source}: scratchnet imports .onnx and .safetensors files, not {kind or 'no suffix'}")
    if kind == ".onnx" and architecture is not None:
        raise ConfigError("an ONNX file describes its own layers: --architecture and --layers apply to safetensors")
    if out is None:
        target = source.with_suffix(".json")
        if target.exists():  # most likely the model this file was exported from: never replace it unasked
            raise ConfigError(f"{target} exists; give --out to choose the model to write (an existing one is replaced)")
    else:
        target = Path(os.fspath(out))
    # The lock scratchnet train holds on its output: a model being trained there is not replaced.
    with model_lock(target, purpose="importing"):
        if kind == ".onnx":
            from scratchnet.interop.onnx_import import read_onnx

            model = read_onnx(source, loss=loss)
        else:
            from scratchnet.interop.safetensors_io import read_safetensors

            model = read_safetensors(source, architecture=architecture, loss=loss)
        return write_scratchnet(model, target, metadata or {})
