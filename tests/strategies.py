"""Hypothesis strategies shared by the cross-check tests: small random architectures."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from scratchnet.core.architecture import ACTIVATIONS, LOSSES, mlp


@st.composite
def architectures(draw: st.DrawFn, *, dropout: bool = True) -> dict[str, Any]:
    """1-3 Dense layers of widths 1-12, any hidden activation, any loss, optional dropout and penalties."""
    dense_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 12)) for _ in range(dense_layers + 1)]
    loss = draw(st.sampled_from(sorted(LOSSES)))
    if loss == "cross_entropy":
        sizes[-1] = max(sizes[-1], 2)  # softmax over a single output is constant
    return mlp(
        sizes,
        activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        loss=loss,
        output=draw(st.sampled_from(sorted(ACTIVATIONS))),
        dropout=draw(st.sampled_from([0.0, 0.0, 0.3])) if dropout else 0.0,
        l2=draw(st.sampled_from([0.0, 0.0, 0.01])),
    )
