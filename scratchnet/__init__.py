"""scratchnet: a neural-network library written from scratch, as readable loops and as NumPy."""

import os as _os
import sys as _sys

# After every matrix product, NumPy's OpenBLAS keeps its idle threads spinning on their cores for 2^28
# cycles (~0.1 s), which leaves no core for the vectorized optimizers' threads. 2^20 cycles (~0.4 ms)
# still covers the gaps between the products of one training step, so products are not slowed. OpenBLAS
# reads this once, when NumPy is first imported: it takes effect only if scratchnet is imported first,
# and a value the user set wins. README, Performance; scratchnet/vectorized/parallel.py.
# OPENBLAS_SPIN_SHORT tells whether the spin is short in this process, as far as scratchnet can know: a
# value set before Python started is in effect whatever the import order.
_user_set = "OPENBLAS_THREAD_TIMEOUT" in _os.environ
_timeout = _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20").strip()
OPENBLAS_SPIN_SHORT = (_user_set or "numpy" not in _sys.modules) and _timeout.isdigit() and 0 < int(_timeout) <= 20

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
    "OPENBLAS_SPIN_SHORT",
    "__version__",
]

# Model files; scratchnet.io imports NumPy only when a vectorized network is saved or loaded.
from scratchnet.io.model import load, save  # noqa: E402

__all__ += ["load", "save"]
