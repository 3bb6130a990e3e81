"""The cross-check: the loops reference against the vectorized backend, and both against finite
differences. ``scratchnet check``, ``scratchnet train`` and the tests all call this module.

A comparison reports, per tensor, the largest absolute difference and the relative difference:
that largest absolute difference divided by a scale. The scale of the forward outputs and of the
loss is their own largest magnitude; the scale of a gradient tensor is the largest magnitude in the
whole gradient (every gradient tensor of the network), and likewise for the parameters after the
optimizer steps, because a gradient is one vector over all parameters. Elementwise, or per-tensor,
relative errors would flag harmless rounding in entries that cancel to nearly zero (a bias gradient
summing terms of 1e-2 to a result of 1e-5 carries their rounding of about 1e-17).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scratchnet.builders import build_network
from scratchnet.core import rng
from scratchnet.core.architecture import plan
from scratchnet.core.interface import Network
from scratchnet.loops.tensor import Shape, reshape, shape_of
from scratchnet.loops.tensor import flatten as flatten_nested

CROSS_TOLERANCE = 1e-12  # relative, loops against vectorized in float64
GRADIENT_RTOL = 1e-5  # finite differences: relative to the gradient's scale ...
GRADIENT_ATOL = 1e-8  # ... plus the rounding error of a central difference
FD_STEP = 1e-5


@dataclass(frozen=True)
class Comparison:
    """How far two versions of one tensor are apart, and whether that is within tolerance."""

    name: str
    max_abs: float
    max_rel: float
    passed: bool


def compare(
    name: str, actual: Any, expected: Any, rtol: float, atol: float = 0.0, scale: float | None = None
) -> Comparison:
    """Compare two tensors (nested lists, arrays or floats) as flat lists of floats, relative to
    ``scale`` (default: the largest magnitude in either tensor)."""
    a, b = flat_floats(actual), flat_floats(expected)
    if len(a) != len(b):
        return Comparison(name, math.inf, math.inf, False)
    max_abs = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
    if scale is None:
        scale = magnitude([a, b])
    max_rel = max_abs / scale if scale > 0.0 else (0.0 if max_abs == 0.0 else math.inf)
    finite = all(math.isfinite(x) for x in a) and all(math.isfinite(y) for y in b)
    return Comparison(name, max_abs, max_rel, finite and max_abs <= rtol * scale + atol)


def magnitude(tensors: Sequence[Any]) -> float:
    """The largest absolute value in any of ``tensors``."""
    return max((abs(x) for tensor in tensors for x in flat_floats(tensor)), default=0.0)


def flat_floats(value: Any) -> list[float]:
    """Any float, nested list or array as a flat list of Python floats, in C order."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    return flatten_nested(value)


def random_batch(sample_shape: int | Shape, classes: int, batch: int, seed: int) -> tuple[list[Any], list[int]]:
    """``batch`` samples of ``sample_shape`` (or that many features) of standard normal numbers, and
    uniform labels (streams 1000 and 1001 of ``seed``), as nested lists."""
    shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
    size = math.prod(shape)
    values = rng.normals(seed, 1000, batch * size)
    inputs = [reshape(values[n * size : (n + 1) * size], shape) for n in range(batch)]
    upper = 2 if classes == 1 else classes
    labels = [int(u * upper) for u in rng.uniforms(seed, 1001, batch)]
    return inputs, labels


def random_tokens(
    length: int, vocabulary: int, classes: int, batch: int, seed: int, ignore_index: int = -100
) -> tuple[list[list[int]], list[list[int]]]:
    """``batch`` sequences of ``length`` token ids uniform in 0..vocabulary-1, and targets uniform in
    0..classes-1 of which about a quarter are ``ignore_index`` (padding; never the first position of
    the first sequence, so that something is counted), from streams 1000-1002 of ``seed``."""
    ids = [int(u * vocabulary) for u in rng.uniforms(seed, 1000, batch * length)]
    targets = [int(u * classes) for u in rng.uniforms(seed, 1001, batch * length)]
    padded = rng.uniforms(seed, 1002, batch * length)
    targets = [ignore_index if u < 0.25 and k > 0 else y for k, (y, u) in enumerate(zip(targets, padded))]
    rows = range(0, batch * length, length)
    return [ids[k : k + length] for k in rows], [targets[k : k + length] for k in rows]


def random_inputs(description: Mapping[str, Any], batch: int, seed: int) -> tuple[list[Any], list[Any]]:
    """A random batch the architecture reads and its labels: :func:`random_batch`, or for a token
    network :func:`random_tokens` of its longest sequence."""
    checked = plan(description)
    if checked.vocabulary is None:
        return random_batch(checked.input_shape, checked.classes, batch, seed)
    ignore = int(checked.description["loss"].get("ignore_index", -100))
    return random_tokens(checked.input_shape[0], checked.vocabulary, checked.classes, batch, seed, ignore)


def shape_of_description(description: Mapping[str, Any]) -> tuple[Shape, int]:
    """(one sample's input shape, the number of outputs) of an architecture, as the registry infers them."""
    checked = plan(description)
    return checked.input_shape, checked.classes


def cross_check(
    description: Mapping[str, Any],
    *,
    batch: int = 4,
    seed: int = 0,
    steps: int = 3,
    lr: float = 0.1,
    make_optimizers: Callable[[], tuple[Any, Any]] | None = None,
) -> list[Comparison]:
    """Build the architecture in both backends (vectorized in float64) from the same parameters and
    compare forward outputs, loss, every gradient, and the parameters after ``steps`` optimizer steps
    (SGD with ``lr`` unless ``make_optimizers`` returns a (loops, vectorized) pair)."""
    from scratchnet import loops, vectorized

    loops_net = build_network(description, backend="loops", seed=seed)
    vector_net = build_network(description, backend="vectorized", dtype="float64", seed=seed)
    vector_net.set_params(loops_net.params())
    inputs, labels = random_inputs(description, batch, seed)

    results = []
    loops_out = loops_net.forward(inputs, training=True)
    vector_out = vector_net.forward(inputs, training=True)
    results.append(compare("forward", vector_out, loops_out, CROSS_TOLERANCE))
    loss_pair = (loops_net.loss(loops_out, labels), vector_net.loss(vector_out, labels))
    results.append(compare("loss", loss_pair[1], loss_pair[0], CROSS_TOLERANCE))
    loops_net.backward()
    vector_net.backward()
    loops_grads, vector_grads = loops_net.grads(), vector_net.grads()
    grad_scale = magnitude(list(loops_grads.values()) + list(vector_grads.values()))
    for name, grad in vector_grads.items():
        results.append(compare(f"grad {name}", grad, loops_grads[name], CROSS_TOLERANCE, scale=grad_scale))

    loops_opt, vector_opt = make_optimizers() if make_optimizers else (loops.SGD(lr), vectorized.SGD(lr))
    for step in range(steps):
        if step > 0:  # the first step uses the gradients compared above
            nets: tuple[Network[Any, Any], ...] = (loops_net, vector_net)
            for net in nets:
                out = net.forward(inputs, training=True)
                net.loss(out, labels)
                net.backward()
        loops_opt.step(loops_net)
        vector_opt.step(vector_net)
    loops_params, vector_params = loops_net.params(), vector_net.params()
    param_scale = magnitude(list(loops_params.values()) + list(vector_params.values()))
    for name, value in vector_params.items():
        results.append(
            compare(f"after {steps} steps {name}", value, loops_params[name], CROSS_TOLERANCE, scale=param_scale)
        )
    return results


def gradient_check(
    net: Any, inputs: Any, labels: Sequence[Any], *, max_per_tensor: int = 0, seed: int = 0, step: float = FD_STEP
) -> list[Comparison]:
    """Compare ``net``'s backpropagated gradients with central differences
    (L(p + h) - L(p - h)) / 2h, for every parameter element, or for ``max_per_tensor`` elements
    of each tensor chosen by ``seed`` when that is > 0. Dropout is off (inference mode)."""
    out = net.forward(inputs)
    net.loss(out, labels)
    net.backward()
    analytic = {name: flat_floats(grad) for name, grad in net.grads().items()}
    results = []
    params = net.params()
    for index, name in enumerate(analytic):  # the trained arrays: an untrained one has no gradient
        value = params[name]
        original = flat_floats(value)
        shape = shape_of_value(value)
        positions = list(range(len(original)))
        if 0 < max_per_tensor < len(positions):
            positions = rng.permutation(seed, 2000 + index, len(positions))[:max_per_tensor]
        layer = net.layers[int(name.split(".", 1)[0])]
        key = name.split(".", 1)[1]
        numeric, backprop = [], []
        for position in positions:
            losses = []
            for sign in (1.0, -1.0):
                nudged = list(original)
                nudged[position] += sign * step
                layer.set_params({**layer.params(), key: unflatten(nudged, shape)})
                losses.append(net.loss(net.forward(inputs), labels))
            numeric.append((losses[0] - losses[1]) / (2.0 * step))
            backprop.append(analytic[name][position])
        layer.set_params({**layer.params(), key: unflatten(original, shape)})
        results.append(compare(f"grad {name}", backprop, numeric, GRADIENT_RTOL, GRADIENT_ATOL))
    return results


def shape_of_value(value: Any) -> Shape:
    """The shape of an array or a nested list."""
    if hasattr(value, "shape"):
        return tuple(int(n) for n in value.shape)
    return shape_of(value)


def unflatten(flat: list[float], shape: Shape) -> Any:
    """``flat`` as a nested list of ``shape``."""
    return reshape(flat, shape)


@dataclass(frozen=True)
class CheckReport:
    """Everything ``scratchnet check`` measured: the backend comparison and both gradient checks."""

    cross: list[Comparison]
    gradients: dict[str, list[Comparison]]

    @property
    def passed(self) -> bool:
        every = self.cross + [c for group in self.gradients.values() for c in group]
        return all(c.passed for c in every)


def full_check(
    description: Mapping[str, Any],
    *,
    batch: int = 4,
    seed: int = 0,
    steps: int = 3,
    max_per_tensor: int = 6,
    gradient_backends: Sequence[str] = ("loops", "vectorized"),
    compare_backends: bool = True,
) -> CheckReport:
    """The cross-check (unless ``compare_backends`` is False: NumPy absent) plus a finite-difference
    check of each of ``gradient_backends`` on ``max_per_tensor`` elements of every tensor (0: all of them)."""
    inputs, labels = random_inputs(description, batch, seed)
    gradients = {}
    for backend in gradient_backends:
        net = build_network(description, backend=backend, dtype="float64", seed=seed)
        gradients[backend] = gradient_check(net, inputs, labels, max_per_tensor=max_per_tensor, seed=seed)
    cross = cross_check(description, batch=batch, seed=seed, steps=steps) if compare_backends else []
    return CheckReport(cross, gradients)


def summary(report: CheckReport) -> str:
    """One line for ``scratchnet train``: the worst relative differences and the verdict."""
    cross = max((c.max_rel for c in report.cross), default=0.0)
    grads = max((c.max_rel for group in report.gradients.values() for c in group), default=0.0)
    verdict = "passed" if report.passed else "FAILED"
    if not report.cross:
        alone = "NumPy absent: the loops backend alone"
        return f"cross-check {verdict} ({alone}): finite differences max rel diff {grads:.1e}"
    return (
        f"cross-check {verdict}: loops vs vectorized max rel diff {cross:.1e}, "
        f"finite differences max rel diff {grads:.1e}"
    )
