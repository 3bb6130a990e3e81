"""The sequence layers' lines of the forward pass, and a language model's explanation as text
(``explain --text``): the next-token probabilities, every head's attention weights as a small heat
map, and one head at one position term by term (spec/math.md, sections 17-20). Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scratchnet.teaching.explain_text import layer_summary, num
from scratchnet.teaching.explanation import LayerOutput
from scratchnet.teaching.token_explanation import AttentionTerms, HeadWeights, TokenExplanation

SHADES = " ░▒▓█"  # a weight in [0.2 k, 0.2 (k + 1)) is SHADES[k]; 1 is '█'
MAP_WIDTH = 100  # heads are drawn side by side up to this many columns
SHOWN_VALUES = 8  # a vector of at most this many values is shown whole, a longer one by its first 4
BAR = 20  # the width of a probability's bar


def _rows(item: LayerOutput) -> str:
    """``4 positions of 16 values``, and their range."""
    v = item.outputs
    size = f"{item.shape[0]} positions of {item.shape[1]} values" if len(item.shape) == 2 else f"{len(v)} values"
    return f"{size}, from {num(min(v))} to {num(max(v))}"


def embedding_summary(item: LayerOutput) -> str:
    return f"(17.1) Embedding.forward: x[t] = W[id[t]], the row of each token: {_rows(item)}"


def position_summary(item: LayerOutput) -> str:
    return f"(17.3) PositionEmbedding.forward: y[t] = x[t] + P[t]: {_rows(item)}"


def layer_norm_summary(item: LayerOutput) -> str:
    return (
        "(18.1-18.3) LayerNorm.forward: each position's row to mean 0 and variance 1, "
        f"y = gamma * x_hat + beta: {_rows(item)}"
    )


def rms_norm_summary(item: LayerOutput) -> str:
    return (
        f"(18.6, 18.7) RMSNorm.forward: each position's row over its root mean square, y = gamma * x_hat: {_rows(item)}"
    )


def attention_summary(item: LayerOutput) -> str:
    rule = "each position attends to itself and the ones before it"
    return f"(20.1-20.6) CausalSelfAttention.forward: {rule}: {_rows(item)}"


def residual_summary(item: LayerOutput) -> str:
    return f"(23.1) Residual.forward: y = x + f(x), f its layers run in order on x: {_rows(item)}"


def shade(weight: float) -> str:
    """The heat map's character for an attention weight in [0, 1]."""
    return SHADES[min(max(int(weight * len(SHADES)), 0), len(SHADES) - 1)]


def vector(values: Sequence[float], shown: int = SHOWN_VALUES) -> str:
    """A vector compactly, to 4 digits: whole when it has at most ``shown`` values, else its first 4
    and how many there are."""
    if len(values) <= shown:
        return "[" + ", ".join(f"{value:.4g}" for value in values) + "]"
    return "[" + ", ".join(f"{value:.4g}" for value in values[:4]) + f", ... {len(values)} values]"


def format_token_explanation(ex: TokenExplanation) -> str:
    out = [
        f"Explaining the text of {len(ex.ids)} tokens {_quoted(ex, range(len(ex.ids)))} with {ex.source}."
        " Equation numbers (n.k) refer to spec/math.md."
    ]
    if ex.boundary is not None:
        out.append("The boundary token, written \\n, starts every document (position 0) and ends it.")
    out += ["", "Forward pass, layer by layer (6) Network.forward:"]
    width = max(len(line.output.name) + 2 * line.depth for line in ex.forward)
    places = max(len(line.place) for line in ex.forward)
    for line in ex.forward:
        name = "  " * line.depth + line.output.name
        out.append(f"  layer {line.place:<{places}} {name:<{width}} {layer_summary(line.output)}")
    out += ["", *_format_probabilities(ex)]
    if ex.heads:
        out += ["", *_format_maps(ex)]
    if ex.terms is not None:
        out += ["", *format_terms(ex, ex.terms)]
    return "\n".join(out)


def _quoted(ex: TokenExplanation, positions: Sequence[int]) -> str:
    return "'" + "".join(ex.labels[t] for t in positions) + "'"


def _format_probabilities(ex: TokenExplanation) -> list[str]:
    last = len(ex.ids) - 1
    out = [
        f"Next character after {_quoted(ex, range(0 if ex.boundary is None else 1, last + 1))} (the scores at "
        f"position {last}): (4.6) softmax, p[k] = e^(z[k] - m) / sum_j e^(z[j] - m); the {len(ex.top)} most "
        f"likely of {len(ex.probabilities)}:"
    ]
    width = max(len(label) for label in ex.token_labels) + 2
    for k, p in ex.top:
        label = "'" + ex.token_labels[k] + "'"
        note = "  the boundary: the document ends" if k == ex.boundary else ""
        out.append(f"  {k:>4} {label:<{width}} p = {p:<12.6g} {'#' * round(p * BAR)}{note}")
    return out


def _format_maps(ex: TokenExplanation) -> list[str]:
    steps = ", ".join(f"'{SHADES[k]}' from {k / len(SHADES):g}" for k in range(len(SHADES)))
    out = [
        "Attention weights (20.3) a[t][s]: a row per query position t, a column per key position s <= t, "
        f"each row sums to 1; {steps}:"
    ]
    places = list(dict.fromkeys(item.place for item in ex.heads))
    for place in places:
        heads = [item for item in ex.heads if item.place == place]
        out.append(f"  layer {place} ({heads[0].name})")
        out += _draw_heads(ex, heads)
        last = len(ex.ids) - 1
        for item in heads:
            row = " ".join(f"{ex.labels[s]}:{a:.3f}" for s, a in enumerate(item.weights[last]))
            out.append(f"    head {item.head} at position {last}: {row}")
    return out


def _draw_heads(ex: TokenExplanation, heads: Sequence[HeadWeights]) -> list[str]:
    """The heads' maps side by side, as many as fit in :data:`MAP_WIDTH` columns per group."""
    cell = max(len(label) for label in ex.labels)
    length = len(ex.ids)
    map_width = cell * (length + 1) + 1
    per_line = max(1, (MAP_WIDTH - 4) // (map_width + 2))
    out: list[str] = []
    for start in range(0, len(heads), per_line):
        group = heads[start : start + per_line]
        rows = [[f"head {item.head}".ljust(map_width) for item in group]]
        rows.append([" " * (cell + 1) + "".join(label.rjust(cell) for label in ex.labels) for _ in group])
        for t in range(length):
            rows.append(
                [
                    ex.labels[t].rjust(cell)
                    + " "
                    + "".join(shade(a) * cell for a in item.weights[t]).ljust(cell * length)
                    for item in group
                ]
            )
        out += ["    " + "  ".join(part.ljust(map_width) for part in row).rstrip() for row in rows]
    return out


def format_terms(ex: TokenExplanation, terms: AttentionTerms) -> list[str]:
    """One head at one position term by term: the scores (20.2), the softmax (20.3), the weighted sum (20.4)."""
    t, d, h = terms.position, terms.head_dim, terms.head
    first, last = h * d, (h + 1) * d - 1
    width = max(len(label) for label in ex.labels) + 2
    tokens = [f"{term.s:>4} {chr(39) + ex.labels[term.s] + chr(39):<{width}}" for term in terms.terms]
    keys = [vector(term.key) for term in terms.terms]
    values = [vector(term.value) for term in terms.terms]
    key_width, value_width = max(map(len, keys)), max(map(len, values))
    heading = f"{'s':>4} {'token':<{width}}"
    out = [
        f"Layer {terms.place} ({terms.name}), head {h}, position {t} ('{ex.labels[t]}'): {terms.why}",
        f"  (20.1) CausalSelfAttention.forward: q_t = W_q x_t + b_q, k_s = W_k x_s + b_k, v_s = W_v x_s + b_v "
        f"(the rows of in_proj_weight); head {h} reads their values {first}..{last}, d = {d}",
        f"    q_{t} = {vector(terms.query)}",
        f"  (20.2) the scores: s_{t}s = q_{t} . k_s / sqrt({d}) = q_{t} . k_s / {math.sqrt(d):.6g}, for s = 0..{t}",
        f"    {heading} {'k_s':<{key_width}} {'q . k_s':>12} {'score':>12}",
        *(
            f"    {token} {key:<{key_width}} {term.dot:>12.6g} {term.score:>12.6g}"
            for token, key, term in zip(tokens, keys, terms.terms)
        ),
        f"  (20.3) the softmax over s <= {t}: a_{t}s = e^(s_{t}s - m) / sum_r e^(s_{t}r - m), "
        f"m = max_s s_{t}s = {num(terms.m)}, sum = {num(terms.total)}",
        f"    {heading} {'score - m':>12} {'e^(score - m)':>14} {'a':>12}",
        *(
            f"    {token} {term.score - terms.m:>12.6g} {term.exp:>14.6g} {term.weight:>12.6g}"
            for token, term in zip(tokens, terms.terms)
        ),
        f"    = {num(math.fsum(term.weight for term in terms.terms))} (the weights sum to 1)",
        f"  (20.4) the weighted sum: o_{t} = sum_s a_{t}s v_s, head {h}'s {d} values",
        f"    {heading} {'a':>10}  {'v_s':<{value_width}}  a * v_s",
        *(
            f"    {token} {term.weight:>10.4g}  {value:<{value_width}}  {vector(term.weighted)}"
            for token, value, term in zip(tokens, values, terms.terms)
        ),
    ]
    gap = max(abs(a - b) for a, b in zip(terms.weighted_sum, terms.layer_output))
    out += [
        f"    = o_{t} {vector(terms.weighted_sum)}",
        f"    the layer's own o_{t} (CausalSelfAttention.outputs, values {first}..{last}): "
        f"{vector(terms.layer_output)}; largest difference {gap:.3g}",
        f"  (20.6) the {terms.heads} heads' o_{t} side by side through the output projection: "
        f"y_{t} = W_o o_{t} + b_o = {vector(terms.projected)}",
    ]
    return out
