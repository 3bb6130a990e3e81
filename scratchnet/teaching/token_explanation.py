"""The records of ``scratchnet explain MODEL --text TEXT``: a language model's next-token
probabilities, every attention head's weights, and one head's output at one position term by term
(spec/math.md, section 20). :mod:`scratchnet.teaching.explain_tokens` fills them from the loops
backend; :mod:`scratchnet.teaching.sequence_text` prints them. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from scratchnet.teaching.explanation import LayerOutput


@dataclass(frozen=True)
class ForwardLine:
    """One layer of the forward pass: its place (``"3"``, or ``"3.1"`` inside a container, as its
    arrays are named), its depth (0 at the top) and its output for the text."""

    place: str
    depth: int
    output: LayerOutput


@dataclass(frozen=True)
class HeadWeights:
    """The weights of head ``head`` of the attention layer at ``place``: ``weights[t][s]`` for
    ``s <= t`` (row t has t + 1 values, eq. 20.3), read from the layer's ``attention_weights``."""

    place: str
    name: str
    head: int
    weights: list[list[float]]


@dataclass(frozen=True)
class ScoreTerm:
    """Key position ``s`` of one query: ``k_s^h``, ``q . k``, the score ``q . k / sqrt(d)`` (20.2),
    ``e^(score - m)`` and the weight ``a`` (20.3), the value ``v_s^h`` and ``a * v_s^h`` (20.4)."""

    s: int
    key: list[float]
    dot: float
    score: float
    exp: float
    weight: float
    value: list[float]
    weighted: list[float]


@dataclass(frozen=True)
class AttentionTerms:
    """Head ``head`` of the attention layer at ``place`` at query position ``position``, term by
    term: its query ``q_t^h`` (``d`` values), one :class:`ScoreTerm` per key position ``s <= t``, the
    softmax's ``m`` and sum, the weighted sum computed here and ``o_t^h`` as the layer computed it
    (its ``outputs``), and ``y_t``, the layer's output after the output projection (20.6)."""

    place: str
    name: str
    head: int
    heads: int
    position: int
    head_dim: int
    query: list[float]
    terms: list[ScoreTerm]
    m: float
    total: float
    weighted_sum: list[float]
    layer_output: list[float]
    projected: list[float]
    why: str


@dataclass(frozen=True)
class TokenExplanation:
    """One text through a language model: its token ids and their printable labels (the boundary
    token reads as a newline, ``\\n``), every layer's output, the probabilities of the next token
    after the last position (``top``: the ``(id, probability)`` pairs shown, most likely first),
    every attention head's weights and the chosen head's terms (None without attention layers)."""

    source: str
    ids: list[int]
    labels: list[str]
    boundary: int | None
    forward: list[ForwardLine]
    probabilities: list[float]
    token_labels: list[str]
    top: list[tuple[int, float]]
    heads: list[HeadWeights]
    terms: AttentionTerms | None
