"""scratchnet: a neural-network library written from scratch, as readable loops and as NumPy."""

from scratchnet.core.errors import (
    ConfigError,
    DatasetError,
    InteropError,
    LabelError,
    ModelFormatError,
    ScratchnetError,
    ShapeError,
    TrainingError,
)
from scratchnet.core.version import __version__

__all__ = [
    "ConfigError",
    "DatasetError",
    "InteropError",
    "LabelError",
    "ModelFormatError",
    "ScratchnetError",
    "ShapeError",
    "TrainingError",
    "__version__",
    "build_network",
    "build_optimizer",
    "load",
    "load_model",
    "mlp",
    "save",
]

# Importing scratchnet imports no NumPy and changes nothing global (no environment variable, no
# thread setting): the builders import a backend when one is asked for, and model files import
# NumPy only when a vectorized network is saved or loaded.
from scratchnet.builders import build_network, build_optimizer
from scratchnet.core.architecture import mlp
from scratchnet.io.model import load, load_model, save
