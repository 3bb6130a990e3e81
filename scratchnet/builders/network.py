"""Building a network of either backend from an architecture (plain data, see
:mod:`scratchnet.core.architecture`). Each layer type is looked up in the registry and in the
backend's ``LAYERS`` table; nothing here knows a layer type by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, overload

from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError
from scratchnet.core.interface import Network
from scratchnet.core.lazy import numpy_available
from scratchnet.core.registry import layer_type
from scratchnet.core.rng import derive_seed
from scratchnet.core.walk import LayerSite, walk

if TYPE_CHECKING:
    from scratchnet.loops.network import Network as LoopsNetwork
    from scratchnet.vectorized.network import Network as VectorizedNetwork

BACKENDS = ("vectorized", "loops")


def default_backend() -> str:
    """The vectorized backend, or the loops backend where NumPy is not installed."""
    return "vectorized" if numpy_available() else "loops"


def require_backend(backend: str) -> None:
    """ConfigError for the vectorized backend where NumPy is not installed (checked without importing it)."""
    if backend == "vectorized" and not numpy_available():
        raise ConfigError("the vectorized backend needs NumPy, which is not installed: use --backend loops")


def backend_module(backend: str) -> ModuleType:
    """``scratchnet.loops`` or ``scratchnet.vectorized`` (imported here, when asked for: the loops
    backend works without NumPy)."""
    if backend == "loops":
        from scratchnet import loops

        return loops
    if backend == "vectorized":
        require_backend(backend)
        from scratchnet import vectorized

        return vectorized
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


@overload
def build_network(
    description: Mapping[str, Any], *, backend: Literal["loops"], dtype: str = ..., seed: int = ...
) -> LoopsNetwork: ...
@overload
def build_network(
    description: Mapping[str, Any], *, backend: Literal["vectorized"] = ..., dtype: str = ..., seed: int = ...
) -> VectorizedNetwork: ...
@overload
def build_network(
    description: Mapping[str, Any], *, backend: str, dtype: str = ..., seed: int = ...
) -> Network[Any, Any]: ...
def build_network(
    description: Mapping[str, Any], *, backend: str = "vectorized", dtype: str = "float64", seed: int = 0
) -> Network[Any, Any]:
    """A network of ``backend`` with the architecture ``description``; layer i draws its initial
    parameters (or dropout masks) from ``derive_seed(seed, i)``. The loops backend computes in
    float64 whatever ``dtype`` says. Typed as that backend's Network when ``backend`` is a literal,
    else as the :class:`~scratchnet.core.interface.Network` Protocol both satisfy."""
    checked = plan(description)  # every shape is known before anything is allocated
    module = backend_module(backend)
    if backend == "vectorized":
        module.check_dtype(dtype)
    layers = [_build(site, module, backend, dtype, seed) for site in walk(checked)]
    loss_options = {key: value for key, value in checked.description["loss"].items() if key != "type"}
    loss = module.LOSSES[checked.description["loss"]["type"]](**loss_options)
    network: Network[Any, Any] = module.Network(
        layers,
        loss,
        l2=float(checked.description.get("l2", 0.0)),
        l1=float(checked.description.get("l1", 0.0)),
        input_shape=checked.input_shape,
        vocabulary=checked.vocabulary,
    )
    return network


def _build(site: LayerSite, module: ModuleType, backend: str, dtype: str, seed: int) -> Any:
    """The layer at ``site``, of ``module``: a seeded one draws from ``derive_seed(seed, *path)``
    (``derive_seed(seed, i)`` for layer i, ``derive_seed(seed, 3, 0)`` inside layer 3); a
    container's option of kind "layers" is given the layers it holds, built."""
    entry = layer_type(site.kind)
    if entry.name not in module.LAYERS:
        raise ConfigError(f"layer {site.prefix}: the {backend} backend has no {entry.name} layer")
    kwargs = {name: value for name, value in site.options.items() if value is not None}
    for option in entry.options:
        if option.kind == "layers":
            kwargs[option.name] = [_build(child, module, backend, dtype, seed) for child in site.children]
    if entry.seeded and "seed" not in kwargs:
        kwargs["seed"] = derive_seed(seed, *site.path)
    if entry.needs_input_shape:
        kwargs["input_shape"] = site.input_shape
    if backend == "vectorized" and entry.arrays(site.options, site.input_shape):
        kwargs["dtype"] = dtype
    return module.LAYERS[entry.name](**kwargs)


if TYPE_CHECKING:  # mypy proves here that each backend satisfies the Protocols; nothing runs (the layers:
    # each backend's LAYERS table is typed as makers of Layers)
    import scratchnet.loops as _loops
    import scratchnet.vectorized as _vectorized
    from scratchnet.core.interface import Loss, Optimizer
    from scratchnet.loops.tensor import Batch as _LoopsBatch
    from scratchnet.loops.tensor import Param as _LoopsParam
    from scratchnet.vectorized.tensor import Array as _Array

    def _loops_network(net: _loops.Network) -> Network[_LoopsBatch, _LoopsParam]:
        return net

    def _vectorized_network(net: _vectorized.Network) -> Network[_Array, _Array]:
        return net

    def _loops_losses(
        a: _loops.CrossEntropy, b: _loops.MeanSquaredError, c: _loops.BinaryCrossEntropy
    ) -> list[Loss[_LoopsBatch]]:
        return [a, b, c]

    def _vectorized_losses(
        a: _vectorized.CrossEntropy, b: _vectorized.MeanSquaredError, c: _vectorized.BinaryCrossEntropy
    ) -> list[Loss[_Array]]:
        return [a, b, c]

    def _loops_optimizers(
        a: _loops.SGD, b: _loops.Adagrad, c: _loops.RMSprop, d: _loops.Adam, e: _loops.AdamW
    ) -> list[Optimizer]:
        return [a, b, c, d, e]

    def _vectorized_optimizers(
        a: _vectorized.SGD, b: _vectorized.Adagrad, c: _vectorized.RMSprop, d: _vectorized.Adam, e: _vectorized.AdamW
    ) -> list[Optimizer]:
        return [a, b, c, d, e]
