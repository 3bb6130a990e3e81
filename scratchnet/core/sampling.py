"""Sampling text from a language model (spec/math.md, section 24): temperature, top-k, top-p (nucleus)
and a seeded draw, one token at a time, streamed as the characters come. Standard library only.

The rules work on the next-token logits as Python floats, whichever backend computed them, and every
draw is the uniform (eq. 10.2) of index ``i`` (the i-th new token) of stream ``sample`` of the seed: a
pure function of the seed, so the same seed samples the same text in either backend and on any machine.
:func:`generate` yields token ids; :func:`sample_text` starts from a prefix, yields characters and, for a
model of documents, stops at the boundary token. The model is anything with :class:`LanguageModel`'s
methods: a :class:`scratchnet.core.decoding.Decoder` over a network of either backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from scratchnet.core import rng
from scratchnet.core.errors import ConfigError, ScratchnetError


class LanguageModel(Protocol):
    """What sampling needs of a model: the most positions it reads (``length``), feeding one token at a
    time (``step``, a batch of one) with the next token's scores in ``logits[0]``, and ``reset``."""

    length: int
    logits: list[list[float]]

    def reset(self) -> None: ...
    def step(self, tokens: Sequence[int]) -> list[list[float]]: ...


class TextVocabulary(Protocol):
    """What :func:`sample_text` needs of a vocabulary (:class:`scratchnet.data.text.Vocabulary`)."""

    @property
    def characters(self) -> str: ...
    @property
    def boundary_id(self) -> int | None: ...
    def encode(self, text: str, where: str = ...) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...


@dataclass(frozen=True)
class Policy:
    """How the next token is chosen from the logits: ``temperature`` (0 takes the most likely token,
    greedy), then at most the ``top_k`` likeliest tokens, then the smallest set of the likeliest whose
    probability reaches ``top_p`` (eq. 24.4-24.7). None keeps every token."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        t, k, p = self.temperature, self.top_k, self.top_p
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t < math.inf:
            raise ConfigError(f"the temperature must be a finite number >= 0, got {t!r}")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigError(f"top-k must be a whole number >= 1, got {k!r}")
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0):
            raise ConfigError(f"top-p must be a number in (0, 1], got {p!r}")

    def weights(self, logits: Sequence[float]) -> list[float]:
        """Each token's weight, proportional to its probability of being drawn; 0 for a token the
        rules leave out (eq. 24.4-24.6)."""
        if not logits:
            raise ConfigError("there are no logits to sample from")
        if not all(map(math.isfinite, logits)):
            bad = next(i for i, z in enumerate(logits) if not math.isfinite(z))
            raise ScratchnetError(f"the model's score of token {bad} is {logits[bad]}: there is nothing to sample from")
        if self.temperature == 0.0:  # (24.4): greedy, the first of the largest scores
            best = max(range(len(logits)), key=logits.__getitem__)
            return [1.0 if i == best else 0.0 for i in range(len(logits))]
        scaled = [z / self.temperature for z in logits]
        kept = list(range(len(scaled)))
        if self.top_k is not None and self.top_k < len(scaled):  # (24.5): ties with the k-th are kept
            kth = sorted(scaled, reverse=True)[self.top_k - 1]
            kept = [i for i in kept if scaled[i] >= kth]
        m = max(scaled[i] for i in kept)
        weights = [0.0] * len(scaled)
        for i in kept:
            weights[i] = math.exp(scaled[i] - m)  # (24.4): softmax(z / T), not yet divided by its sum
        if self.top_p is not None:
            weights = nucleus(weights, self.top_p)
        return weights

    def probabilities(self, logits: Sequence[float]) -> list[float]:
        """The distribution the next token is drawn from: :meth:`weights` divided by their sum."""
        weights = self.weights(logits)
        total = sum(weights)
        return [w / total for w in weights]


def nucleus(weights: Sequence[float], top_p: float) -> list[float]:
    """Top-p (eq. 24.6): the likeliest tokens (ties: the smaller id first) until their share of the
    total reaches ``top_p``; the weights of the others set to 0."""
    order = sorted((i for i, w in enumerate(weights) if w > 0.0), key=lambda i: (-weights[i], i))
    total = 0.0
    for i in order:
        total += weights[i]  # summed in this order, so that the running sum reaches the total exactly
    kept, running = [0.0] * len(weights), 0.0
    for i in order:
        kept[i] = weights[i]
        running += weights[i]
        if running >= top_p * total:
            break
    return kept


def draw(weights: Sequence[float], u: float) -> int:
    """The token of the uniform ``u`` in [0, 1) (eq. 24.7): the first id whose cumulative weight, in id
    order, exceeds u times the total; a token of weight 0 is never drawn."""
    cumulative, running = [], 0.0
    for w in weights:
        running += w
        cumulative.append(running)
    target = u * running
    for i, c in enumerate(cumulative):
        if c > target:
            return i
    return max(i for i, w in enumerate(weights) if w > 0.0)  # u * total rounded up to the total


def uniform(seed: int, sample: int, index: int) -> float:
    """The uniform of the ``index``-th new token of sample number ``sample`` (eq. 10.2, 24.7)."""
    return rng.uniforms(seed, sample, 1, start=index)[0]


def generate(
    model: LanguageModel,
    start: Sequence[int],
    *,
    length: int,
    policy: Policy = Policy(),
    seed: int = 0,
    sample: int = 0,
    stop: int | None = None,
    keep: int | None = None,
) -> Iterator[int]:
    """Up to ``length`` new token ids after ``start``, each as soon as it is drawn; ends early at
    ``stop`` (not yielded). The model reads at most ``model.length`` positions: when a new token would
    not fit, the cache starts again from the last ``keep`` tokens (half the context unless given;
    ``keep = model.length`` is nanoGPT's crop, re-reading the whole window at every token) (eq. 24.8).
    Bad settings are one-line ConfigErrors raised here, before the first token."""
    context = model.length
    keep = max(1, context // 2) if keep is None else keep
    if not whole(keep) or not 1 <= keep <= context:
        raise ConfigError(f"keep must be a whole number of positions in 1..{context}, got {keep!r}")
    for name, value in (("the length", length), ("the seed", seed), ("the sample number", sample)):
        if not whole(value) or value < 0:
            raise ConfigError(f"{name} must be a whole number >= 0, got {value!r}")
    if not start:
        raise ConfigError("sampling needs at least one token to start from")
    return tokens_after(model, list(start[-context:]), length, policy, seed, sample, stop, keep)


def tokens_after(
    model: LanguageModel,
    window: list[int],
    length: int,
    policy: Policy,
    seed: int,
    sample: int,
    stop: int | None,
    keep: int,
) -> Iterator[int]:
    """:func:`generate`'s loop, from the tokens of ``window`` (a start longer than the context is
    cropped to its last tokens, as nanoGPT crops)."""
    read(model, window)
    for index in range(length):
        token = draw(policy.weights(model.logits[0]), uniform(seed, sample, index))
        if token == stop:
            return
        yield token
        if index + 1 == length:
            return
        window.append(token)
        if len(window) > model.length:  # (24.8): the cache is full; read the last `keep` tokens again
            window = window[-keep:]
            read(model, window)
        else:
            model.step([token])


def read(model: LanguageModel, tokens: Sequence[int]) -> None:
    """Start the model again from ``tokens``, fed one at a time into an empty cache."""
    model.reset()
    for token in tokens:
        model.step([token])


def whole(value: object) -> bool:
    """Whether ``value`` is an int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def sample_text(
    model: LanguageModel,
    vocabulary: TextVocabulary,
    *,
    prefix: str = "",
    length: int,
    policy: Policy = Policy(),
    seed: int = 0,
    sample: int = 0,
    keep: int | None = None,
) -> Iterator[str]:
    """The characters of one sample, as they come: the prefix's, then up to ``length`` new ones.

    A model of documents starts from its boundary token and the prefix and stops at the next boundary
    token; a model of running text starts from the prefix, or from a newline when the prefix is empty
    (nanoGPT's default start), and runs for ``length`` characters. A prefix character outside the
    vocabulary is a one-line DatasetError naming it, raised here, before the first character."""
    ids = vocabulary.encode(prefix, "the prefix")
    boundary = vocabulary.boundary_id
    if boundary is not None:
        start = [boundary, *ids]
    elif ids:
        start = ids
    elif "\n" in vocabulary.characters:
        start = vocabulary.encode("\n")
    else:
        raise ConfigError("this model's vocabulary has no newline to start from: give a prefix")
    tokens = generate(model, start, length=length, policy=policy, seed=seed, sample=sample, stop=boundary, keep=keep)
    return characters(prefix, tokens, vocabulary)


def characters(prefix: str, tokens: Iterator[int], vocabulary: TextVocabulary) -> Iterator[str]:
    """The prefix's characters, then each new token's as it is drawn."""
    yield from prefix
    for token in tokens:
        yield vocabulary.decode([token])
