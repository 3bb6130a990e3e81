"""One attention head at one position, term by term, as the JSON of ``/api/text/terms``: the numbers
of :class:`~scratchnet.teaching.token_explanation.AttentionTerms` (filled by
:func:`scratchnet.teaching.explain_tokens.explain_tokens` from the loops backend), each step with its
equation number in spec/math.md, and the lines ``scratchnet explain --text`` prints for it."""

from __future__ import annotations

import math
from typing import Any

from scratchnet.teaching.sequence_text import format_terms
from scratchnet.teaching.token_explanation import AttentionTerms, TokenExplanation


def terms_json(ex: TokenExplanation, terms: AttentionTerms) -> dict[str, Any]:
    """The terms of ``terms`` (a head at a position of ``ex``'s text) for the page."""
    t, d, h = terms.position, terms.head_dim, terms.head
    label = ex.labels
    gap = max((abs(a - b) for a, b in zip(terms.weighted_sum, terms.layer_output)), default=0.0)
    return {
        "place": terms.place,
        "name": terms.name,
        "head": h,
        "heads": terms.heads,
        "position": t,
        "token": label[t],
        "head_dim": d,
        "title": f"Layer {terms.place} ({terms.name}), head {h}, position {t} ('{label[t]}')",
        "equations": {
            "query": ["20.1", f"q_{t} = W_q x_{t} + b_q: head {h} reads values {h * d}..{(h + 1) * d - 1}"],
            "scores": ["20.2", f"s_{t}s = q_{t} . k_s / sqrt({d}), for s = 0..{t}"],
            "softmax": ["20.3", f"a_{t}s = e^(s_{t}s - m) / sum_r e^(s_{t}r - m)"],
            "sum": ["20.4", f"o_{t} = sum_s a_{t}s v_s"],
            "projection": ["20.6", f"y_{t} = W_o o_{t} + b_o (the {terms.heads} heads side by side)"],
        },
        "query": terms.query,
        "sqrt_d": math.sqrt(d),
        "terms": [
            {
                "s": term.s,
                "token": label[term.s],
                "key": term.key,
                "dot": term.dot,
                "score": term.score,
                "exp": term.exp,
                "weight": term.weight,
                "value": term.value,
                "weighted": term.weighted,
            }
            for term in terms.terms
        ],
        "m": terms.m,
        "total": terms.total,
        "weights_sum": math.fsum(term.weight for term in terms.terms),
        "weighted_sum": terms.weighted_sum,
        "layer_output": terms.layer_output,
        "difference": gap,
        "projected": terms.projected,
        "lines": format_terms(ex, terms),
    }
