"""A module imported on first use, for the modules of training and data that the loops backend imports
with NumPy absent: they name ``np`` at module level but only reach for it on the vectorized path.

In such a module::

    if TYPE_CHECKING:
        import numpy as np
    else:
        np = lazy_module("numpy", globals(), "np")

The first ``np.something`` imports NumPy and puts the module itself in the global ``np``, so later
uses cost what a plain ``import numpy as np`` costs. :func:`quiet_floats` is ``np.errstate(all="ignore")``
when NumPy is loaded, and nothing otherwise (no array exists then to warn).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from contextlib import AbstractContextManager, nullcontext
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module ``name`` in ``namespace[alias]`` until an attribute is asked for."""

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name, self._namespace, self._alias = name, namespace, alias

    def _load(self) -> ModuleType:
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module  # from now on the global is the module itself
        return module

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


def lazy_module(name: str, namespace: dict[str, Any], alias: str) -> Any:
    """``name`` imported when first used, as ``namespace[alias]`` (a module's ``globals()``)."""
    return LazyModule(name, namespace, alias)


def numpy_available() -> bool:
    """Whether NumPy can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("numpy") is not None
    except (ImportError, ValueError):
        return False


def numpy_loaded() -> bool:
    """Whether NumPy has been imported in this process (a vectorized network, or arrays, exist)."""
    return "numpy" in sys.modules


def quiet_floats() -> AbstractContextManager[Any]:
    """``numpy.errstate(all="ignore")`` when NumPy is loaded: an overflow is the NaN guard's to report,
    not a warning. Without NumPy there is nothing to silence (Python floats raise, and the loop catches)."""
    module = sys.modules.get("numpy")
    if module is None:
        return nullcontext()
    context: AbstractContextManager[Any] = module.errstate(all="ignore")
    return context
