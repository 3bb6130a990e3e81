"""Explain a language model on a text, with the numbers of the loops backend (``explain --text``).

:func:`explain_tokens` runs the text's token ids through a loops ``Network`` and returns a
:class:`~scratchnet.teaching.token_explanation.TokenExplanation`: each layer's output, the
probabilities of the next token, the weights of every head of every attention layer (read from the
layer's ``attention_weights``, eq. 20.3), and one head at one position term by term: each score
``q . k / sqrt(d)`` (20.2) from the layer's own queries and keys, the softmax (20.3), and the
weighted sum of the values (20.4), checked against the layer's output for that head.

The layers are found by walking the network (:func:`scratchnet.core.walk.walk`), containers
included: a container's loops layer keeps the layers it holds in its ``layers`` list, in the order
of its registry entry's ``children``, and runs them in that order on its own input (a residual
block then adds its input back), so every layer inside it is run and shown at its place (``3.1``).
What the walk knows of each type comes from its explainer (an ``attention`` explainer reads the
layer's ``attention_weights``, ``queries``, ``keys``, ``values`` and ``outputs``, as the loops
``CausalSelfAttention`` keeps them): this module names no layer type. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import scratchnet.teaching.layer_explainers  # noqa: F401  (registers the built-in layer types' explainers)
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.core.text import printable
from scratchnet.core.walk import LayerSite, walk
from scratchnet.data.text import Vocabulary
from scratchnet.loops.activations import softmax_and_log_sum_exp
from scratchnet.loops.network import Network
from scratchnet.loops.tensor import flatten, shape_of
from scratchnet.teaching.explainers import EXPLAINERS, activation_of, explained_types, layer_name
from scratchnet.teaching.explanation import LayerOutput
from scratchnet.teaching.token_explanation import (
    AttentionTerms,
    ForwardLine,
    HeadWeights,
    ScoreTerm,
    TokenExplanation,
)

METADATA_PLACES = ("vocabulary",)  # where a model's metadata records its vocabulary (Vocabulary.to_dict)


def vocabulary_of(metadata: Mapping[str, Any], name: str = "the model") -> Vocabulary:
    """The vocabulary a model records: ``metadata["vocabulary"]`` (or the same under ``training``),
    as ``Vocabulary.to_dict`` writes it; ConfigError when there is none, DatasetError when it is not
    understood."""
    for section in (metadata, metadata.get("training")):
        if isinstance(section, Mapping) and isinstance(section.get("vocabulary"), Mapping):
            return Vocabulary.from_dict(section["vocabulary"])
    raise ConfigError(f"{name} records no vocabulary (metadata 'vocabulary'), so its token ids have no characters")


def token_ids(network: Network, text: str, vocabulary: Vocabulary) -> list[int]:
    """The ids the model reads for ``text``: for a documents vocabulary the boundary token first (a
    document starts with it, as in training), then the text's characters; one-line errors for a
    character outside the vocabulary, an empty input, or more tokens than the model reads."""
    if network.vocabulary is None:
        raise ConfigError("--text goes with a language model; this model reads images or features (give --index)")
    if vocabulary.size != network.vocabulary:
        raise ConfigError(
            f"the recorded vocabulary has {vocabulary.size} tokens but the network reads {network.vocabulary}"
        )
    start = [] if vocabulary.boundary_id is None else [vocabulary.boundary_id]
    ids = start + vocabulary.encode(text, "--text")
    if not ids:
        raise DatasetError("--text is empty: give at least one character for the model to read")
    longest = int(network.input_shape[0])
    if len(ids) > longest:
        extra = " and the boundary token before it" if start else ""
        raise ConfigError(
            f"--text has {len(text)} characters{extra}: {len(ids)} tokens, but the model reads at most {longest}"
        )
    return ids


def explain_tokens(
    network: Network,
    text: str,
    vocabulary: Vocabulary,
    *,
    layer: int | None = None,
    head: int | None = None,
    position: int | None = None,
    top: int = 8,
    source: str = "",
) -> TokenExplanation:
    """Run ``text`` through the loops language model ``network`` and explain it (see the module's
    docstring). ``layer`` picks the attention layer (its index in ``network.layers``, or the
    container there that holds it), ``head`` and ``position`` (an index into the ids, the boundary
    token at 0 for documents) the head and query position explained term by term; by default the last
    position, and the head (of ``layer``, or of any layer) whose weights there are the sharpest (the
    lowest entropy, the first on a tie). ``top`` next tokens are listed."""
    if top < 1:
        raise ConfigError(f"explain: --top must be at least 1, got {top}")
    sites = walk(network.plan)
    for site in _every(sites):
        if site.kind not in EXPLAINERS:
            raise ConfigError(
                f"explain cannot explain layer {site.prefix} ({site.kind}); it explains {', '.join(explained_types())}"
            )
    ids = token_ids(network, text, vocabulary)
    labels = [printable(vocabulary.decode([i])) for i in ids]
    forward: list[ForwardLine] = []
    outputs = _run(network.layers, sites, ids, 0, forward)  # (T, classes), as Network.forward (eq. 6)
    last = outputs[-1]
    is_probability = activation_of(sites[-1].kind).function == "softmax"
    probabilities = list(last) if is_probability else softmax_and_log_sum_exp(list(last))[0]
    ranked = sorted(range(len(probabilities)), key=lambda k: (-probabilities[k], k))[:top]
    token_labels = [printable(vocabulary.decode([k])) for k in range(vocabulary.size)]
    attention = [(site, _layer_at(network, site.path)) for site in _every(sites) if EXPLAINERS[site.kind].attention]
    heads = [
        HeadWeights(site.prefix, layer_name(site.kind, site.options), h, _rows(found.attention_weights[0][h]))
        for site, found in attention
        for h in range(found.heads)
    ]
    terms = None
    if attention:
        terms = _chosen_terms(attention, heads, layer, head, position, len(ids), forward)
    elif layer is not None or head is not None or position is not None:
        raise ConfigError("--layer, --head and --position choose an attention head; this model has none")
    return TokenExplanation(
        source=source,
        ids=ids,
        labels=labels,
        boundary=vocabulary.boundary_id,
        forward=forward,
        probabilities=probabilities,
        token_labels=token_labels,
        top=[(k, probabilities[k]) for k in ranked],
        heads=heads,
        terms=terms,
    )


def _every(sites: Sequence[LayerSite]) -> list[LayerSite]:
    found: list[LayerSite] = []
    for site in sites:
        found.append(site)
        found.extend(_every(site.children))
    return found


def _layer_at(network: Network, path: tuple[int, ...]) -> Any:
    """The loops layer at ``path``: a container keeps the layers it holds in ``layers``."""
    found: Any = network.layers[path[0]]
    for index in path[1:]:
        found = found.layers[index]
    return found


def _run(layers: Sequence[Any], sites: Sequence[LayerSite], x: Any, depth: int, lines: list[ForwardLine]) -> Any:
    """Run one sample ``x`` through ``layers`` as Network.forward does (eq. 6) and return the output,
    adding each layer's line to ``lines``: a container's own, then those of the layers it holds, run
    in order on its input."""
    for item, site in zip(layers, sites):
        y = item.forward([x], False)[0]
        name = layer_name(site.kind, site.options)
        lines.append(ForwardLine(site.prefix, depth, LayerOutput(site.index, name, site.kind, flatten(y), shape_of(y))))
        if site.children:
            _run(item.layers, site.children, x, depth + 1, lines)
        x = y
    return x


def _rows(weights: Sequence[Sequence[float]]) -> list[list[float]]:
    """Row t of a head's recorded weights, ``s <= t`` only (the rest are the causal mask's 0s)."""
    return [list(row[: t + 1]) for t, row in enumerate(weights)]


def _entropy(row: Sequence[float]) -> float:
    return -math.fsum(a * math.log(a) for a in row if a > 0.0)


def _chosen_terms(
    attention: list[tuple[LayerSite, Any]],
    heads: list[HeadWeights],
    layer: int | None,
    head: int | None,
    position: int | None,
    length: int,
    forward: Sequence[ForwardLine],
) -> AttentionTerms:
    """The terms of the chosen head at the chosen position, with one-line errors for a choice out of range."""
    places = ", ".join(site.prefix for site, _ in attention)
    if layer is not None:
        inside = [(site, found) for site, found in attention if site.path[0] == layer]
        if not inside:
            raise ConfigError(
                f"--layer {layer} is not an attention layer and holds none; the attention layers: {places}"
            )
        attention = inside[:1]
    if position is None:
        position = length - 1
    elif position >= length:
        raise ConfigError(f"--position {position}: the input has positions 0..{length - 1}")
    site, found = attention[0]
    why = "chosen with --layer and --head" if layer is not None else "chosen with --head"
    if head is not None:
        if head >= found.heads:
            raise ConfigError(
                f"--head {head}: layer {site.prefix} ({layer_name(site.kind, site.options)}) has heads "
                f"0..{found.heads - 1}"
            )
    else:
        chosen = [item for item in heads if any(item.place == s.prefix for s, _ in attention)]
        best = min(chosen, key=lambda item: _entropy(item.weights[position]))  # min keeps the first on a tie
        site, found = next((s, f) for s, f in attention if s.prefix == best.place)
        head = best.head
        why = f"the head with the sharpest weights at position {position} (the lowest entropy)"
    output = next(line.output for line in forward if line.place == site.prefix)
    return attention_terms(
        site, found, head, position, output.outputs[position * found.dim : (position + 1) * found.dim], why
    )


def attention_terms(
    site: LayerSite, found: Any, head: int, t: int, projected: Sequence[float], why: str = ""
) -> AttentionTerms:
    """Head ``head`` of attention layer ``found`` (after a forward pass of one sample) at position
    ``t``, term by term from the layer's own q, k and v (eq. 20.2-20.4); ``projected`` is the layer's
    output y_t (20.6)."""
    d = found.head_dim
    cols = slice(head * d, (head + 1) * d)
    q = list(found.queries[0][t][cols])
    keys = [list(found.keys[0][s][cols]) for s in range(t + 1)]
    values = [list(found.values[0][s][cols]) for s in range(t + 1)]
    dots = [sum(a * b for a, b in zip(q, k)) for k in keys]  # q_t . k_s, summed as the layer sums it
    scores = [value / math.sqrt(d) for value in dots]  # (20.2)
    m = max(scores)
    exps = [math.exp(score - m) for score in scores]  # (20.3)
    total = math.fsum(exps)
    weights = [e / total for e in exps]
    weighted = [[a * value for value in v] for a, v in zip(weights, values)]  # (20.4), term by term
    weighted_sum = [math.fsum(term[j] for term in weighted) for j in range(d)]
    terms = [
        ScoreTerm(s, keys[s], dots[s], scores[s], exps[s], weights[s], values[s], weighted[s]) for s in range(t + 1)
    ]
    return AttentionTerms(
        place=site.prefix,
        name=layer_name(site.kind, site.options),
        head=head,
        heads=found.heads,
        position=t,
        head_dim=d,
        query=q,
        terms=terms,
        m=m,
        total=total,
        weighted_sum=weighted_sum,
        layer_output=list(found.outputs[0][t][cols]),
        projected=list(projected),
        why=why,
    )
