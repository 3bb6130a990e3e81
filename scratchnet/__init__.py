"""scratchnet: a neural-network library written from scratch, as readable loops and as NumPy."""

from scratchnet.errors import (
    ConfigError,
    DatasetError,
    LabelError,
    ModelFormatError,
    ScratchnetError,
    ShapeError,
    TrainingError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DatasetError",
    "LabelError",
    "ModelFormatError",
    "ScratchnetError",
    "ShapeError",
    "TrainingError",
    "__version__",
]

# Model files; scratchnet.io imports NumPy only when a vectorized network is saved or loaded.
from scratchnet.io.model import load, save  # noqa: E402

__all__ += ["load", "save"]
