"""The Embedding's weight gradient (eq. 17.2), a scatter-add of the rows of dL/dx by token id, in both
backends against sums computed exactly (math.fsum): within the error bound of any order of summation,
n u sum |terms| for n terms (u = 2^-53), with ids repeated many times, ids never read, terms of sixteen
orders of magnitude, and a batch of one position."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scratchnet import loops, vectorized


@pytest.mark.parametrize("backend", [loops, vectorized], ids=["loops", "vectorized"])
@pytest.mark.parametrize("shape,vocabulary", [((12, 64), 65), ((3, 5), 40), ((1, 1), 3), ((4, 9), 1)])
def test_the_weight_gradient_is_each_ids_sum(backend: object, shape: tuple[int, int], vocabulary: int) -> None:
    generator = np.random.default_rng(sum(shape) + vocabulary)
    ids = generator.integers(0, vocabulary, shape)
    grad = generator.normal(0.0, 1.0, (*shape, 7)) * 10.0 ** generator.integers(-8, 8, (*shape, 7))
    layer = backend.Embedding(vocabulary, 7)  # type: ignore[attr-defined]
    layer.forward(ids if backend is vectorized else ids.tolist())
    layer.backward(grad if backend is vectorized else grad.tolist())
    ours = np.asarray(layer.grads()["weight"], dtype=np.float64)
    rows = grad.reshape(-1, 7)
    for token in range(vocabulary):
        terms = rows[ids.ravel() == token]
        exact = np.array([math.fsum(column) for column in terms.T]) if len(terms) else np.zeros(7)
        bound = len(terms) * 2.0**-53 * np.abs(terms).sum(axis=0)
        assert (np.abs(ours[token] - exact) <= bound).all(), (token, ours[token] - exact, bound)
