"""The JSON API behind ``scratchnet serve``'s page for a language model: the next character and every
head's attention as you type, one head's terms on a click, and a sample streamed as it is drawn.

A :class:`TextSession` holds one model, loaded three times: into the vectorized backend for the
answers the page asks for at every key (``/api/text/predict``), a second vectorized copy that
generates (``/api/text/generate``, a :class:`~scratchnet.core.decoding.Decoder` with the rules of
:mod:`scratchnet.core.sampling`), and the loops backend, whose numbers
:func:`scratchnet.teaching.explain_tokens.explain_tokens` reads when a cell of a head's map is
clicked (``/api/text/terms``: the numbers of ``scratchnet explain --text``, one implementation).
A lock per network makes the server's threads take turns with it. docs/serve.md describes every
field; a request the API refuses is a :class:`~scratchnet.serve.api.RequestError` (a 4xx).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import scratchnet.teaching.layer_explainers  # noqa: F401  (registers the layer types' explainers)
from scratchnet.core import notation
from scratchnet.core.decoding import Decoder
from scratchnet.core.errors import ConfigError, ScratchnetError
from scratchnet.core.sampling import Policy, sample_text
from scratchnet.core.text import printable
from scratchnet.core.walk import LayerSite, walk
from scratchnet.data.text import Vocabulary
from scratchnet.io.model import load_model
from scratchnet.serve.api import RequestError, check_fields, whole
from scratchnet.serve.routes import Body, Query, Routes, Stream
from scratchnet.serve.terms_json import terms_json
from scratchnet.teaching.explain_tokens import explain_tokens, vocabulary_of
from scratchnet.teaching.explainers import EXPLAINERS, activation_of, layer_name

MAX_TOP = 100  # the most next characters listed
DEFAULT_TOP = 10
MAX_GENERATE = 1000  # the most characters one generate request draws
DEFAULT_GENERATE = 200
GENERATE_SECONDS = 60.0  # a sample stops after this long, however far it got
MAX_SEED = (1 << 63) - 1


def is_language_model(network: Any) -> bool:
    """Whether a loaded network reads token ids (a vocabulary in its architecture)."""
    return getattr(network, "vocabulary", None) is not None


class TextSession:
    """One language model served: both backends, its vocabulary and its attention layers."""

    page = "text.html"

    def __init__(self, model: str) -> None:
        self.path = model
        vectorized = load_model(model, backend="vectorized")
        if not is_language_model(vectorized.network):
            raise ConfigError(f"{model} reads images or features, not text: serve it with the digit page")
        self.network = vectorized.network
        self.generator = load_model(model, backend="vectorized").network
        self.loops = load_model(model, backend="loops").network
        self.metadata = vectorized.metadata
        self.architecture = vectorized.architecture
        self.vocabulary: Vocabulary = vocabulary_of(self.metadata, model)
        if self.vocabulary.size != self.network.vocabulary:
            raise ConfigError(
                f"{model} records a vocabulary of {self.vocabulary.size} tokens but its network reads "
                f"{self.network.vocabulary}"
            )
        self.context = int(self.network.input_shape[0])
        self.start = [] if self.vocabulary.boundary_id is None else [self.vocabulary.boundary_id]
        self.max_text = self.context - len(self.start)  # the boundary token takes a position
        sites = walk(self.network.plan)
        self.attention = [site for site in _every(sites) if _attends(site)]
        self.softmax_last = activation_of(sites[-1].kind).function == "softmax"
        self.labels = [printable(self.vocabulary.decode([k])) for k in range(self.vocabulary.size)]
        self.lock = threading.Lock()  # for self.network
        self.generator_lock = threading.Lock()  # for self.generator
        self.loops_lock = threading.Lock()  # for self.loops

    def routes(self, query: Query, body: Body) -> Routes:
        """The API of the page (docs/serve.md): each path's methods and their handlers."""
        return {
            "/api/model": {"GET": self.info},
            "/api/text/predict": {"POST": lambda: self.predict(body())},
            "/api/text/terms": {"POST": lambda: self.terms(body())},
            "/api/text/generate": {"POST": lambda: self.generate(body())},
        }

    # ---- the answers ----

    def info(self) -> dict[str, Any]:
        """``GET /api/model``: what the page needs before the first key."""
        return {
            "model": self.path,
            "kind": "text",
            "architecture": notation.outline(self.architecture),
            "layout": "documents" if self.start else "running",
            "vocabulary": self.labels,
            "boundary": self.vocabulary.boundary_id,
            "context": self.context,
            "max_text": self.max_text,
            "attention": [
                {"place": site.prefix, "name": layer_name(site.kind, site.options), "heads": _heads(site)}
                for site in self.attention
            ],
            "limits": {"max_top": MAX_TOP, "max_generate": MAX_GENERATE, "default_generate": DEFAULT_GENERATE},
        }

    def predict(self, body: Any) -> dict[str, Any]:
        """``POST /api/text/predict``: the next character's probabilities after the text, and the
        weights of every head of every attention layer over its positions (eq. 20.3)."""
        fields = check_fields(body, {"text", "top"}, required={"text"})
        ids = self.ids_of(fields["text"])
        top = whole(fields.get("top", DEFAULT_TOP), "top", 1, MAX_TOP)
        started = time.perf_counter()
        with self.lock, np.errstate(all="ignore"):  # an overflow is answered below, in one line
            outputs = self.network.forward(np.asarray([ids]))
            last = np.asarray(outputs[0, -1], dtype=np.float64)
            heads = [self.head_weights(site) for site in self.attention]
        probabilities = last if self.softmax_last else _softmax(last)
        if not np.all(np.isfinite(probabilities)):
            raise RequestError("the model's outputs are not finite for this text: its weights are too large", 422)
        ranked = sorted(range(len(probabilities)), key=lambda k: (-probabilities[k], k))[:top]
        return {
            "ids": ids,
            "labels": [self.labels[i] for i in ids],
            "probabilities": probabilities.tolist(),
            "top": [{"id": k, "label": self.labels[k], "p": float(probabilities[k])} for k in ranked],
            "heads": [item for found in heads for item in found],
            "milliseconds": round(1000 * (time.perf_counter() - started), 2),
        }

    def terms(self, body: Any) -> dict[str, Any]:
        """``POST /api/text/terms``: head ``head`` of the attention layer at ``place`` at query position
        ``position``, term by term, from the loops backend as ``scratchnet explain --text`` prints it."""
        fields = check_fields(body, {"text", "place", "head", "position"}, required={"text", "place", "head"})
        text = fields["text"]
        ids = self.ids_of(text)
        place = fields["place"]
        site = next((s for s in self.attention if s.prefix == place), None)
        if site is None:
            places = ", ".join(s.prefix for s in self.attention) or "none"
            raise RequestError(f"'place' must name an attention layer ({places}), got {str(place)[:40]!r}")
        head = whole(fields["head"], "head", 0, _heads(site) - 1)
        position = whole(fields.get("position", len(ids) - 1), "position", 0, len(ids) - 1)
        if next(s for s in self.attention if s.path[0] == site.path[0]) is not site:
            raise RequestError(f"layer {place} shares its block with another attention layer: choose the first")
        started = time.perf_counter()
        with self.loops_lock:
            ex = explain_tokens(
                self.loops, text, self.vocabulary, layer=site.path[0], head=head, position=position, top=1
            )
        assert ex.terms is not None and ex.terms.place == place  # the first attention layer of its block
        answer = terms_json(ex, ex.terms)
        answer["milliseconds"] = round(1000 * (time.perf_counter() - started), 2)
        return answer

    def generate(self, body: Any) -> Stream:
        """``POST /api/text/generate``: a sample after the text, streamed a character at a time, then
        ``{"done": true, ...}``. Every setting is checked here, before the first character."""
        fields = check_fields(body, {"text", "length", "temperature", "top_k", "seed"}, required={"text"})
        text = fields["text"]
        self.ids_of(text, empty=True)
        length = whole(fields.get("length", DEFAULT_GENERATE), "length", 1, MAX_GENERATE)
        seed = whole(fields.get("seed", 0), "seed", 0, MAX_SEED)
        top_k = fields.get("top_k")
        if top_k is not None:
            top_k = whole(top_k, "top_k", 1, self.vocabulary.size)
        temperature = fields.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 100:
            raise RequestError(f"'temperature' must be a number from 0 to 100, got {str(temperature)[:20]}")
        policy = Policy(float(temperature), top_k)
        decoder = Decoder(self.generator)
        characters = sample_text(decoder, self.vocabulary, prefix=text, length=length, policy=policy, seed=seed)
        return Stream(self.stream(characters, len(text), length))

    # ---- the work ----

    def stream(self, characters: Iterator[str], skip: int, length: int) -> Iterator[dict[str, Any]]:
        """The new characters of a sample (after the ``skip`` of the prefix), one event each, then why it ended."""
        started = time.perf_counter()
        count, reason = 0, "length"
        for _ in range(skip):
            next(characters)
        while True:
            with self.generator_lock, np.errstate(all="ignore"):  # a token at a time: samples take turns
                character = next(characters, None)
            if character is None:
                if count < length:
                    reason = "boundary"
                break
            count += 1
            yield {"text": character}
            if time.perf_counter() - started > GENERATE_SECONDS:
                reason = "time"
                break
        seconds = time.perf_counter() - started
        yield {"done": True, "count": count, "reason": reason, "milliseconds": round(1000 * seconds, 2)}

    def ids_of(self, text: Any, *, empty: bool = False) -> list[int]:
        """The ids the model reads for ``text`` (the boundary token first for documents), with a
        one-line 400 for a text that is not a string, too long, empty, or has a character outside the
        vocabulary."""
        if not isinstance(text, str):
            raise RequestError(f"'text' must be a string, got {type(text).__name__}")
        if len(text) > self.max_text:
            extra = " (the boundary token takes one more position)" if self.start else ""
            raise RequestError(f"the text has {len(text)} characters; this model reads at most {self.max_text}{extra}")
        try:
            ids = self.start + self.vocabulary.encode(text, "the text")
        except ScratchnetError as error:  # "the text line 1: the character 'E' ... is not in the vocabulary"
            message = str(error) if "\n" in text else str(error).replace("the text line 1:", "the text:")
            raise RequestError(message) from None
        if not ids and not empty:
            raise RequestError("the text is empty: type at least one character")
        return ids

    def head_weights(self, site: LayerSite) -> list[dict[str, Any]]:
        """Every head of the attention layer at ``site`` after the latest forward pass: row t over s <= t."""
        found: Any = self.network.layers[site.path[0]]
        for index in site.path[1:]:
            found = found.layers[index]
        weights = np.round(np.asarray(found.attention_weights[0], dtype=np.float64), 6).tolist()  # (H, T, T)
        name = layer_name(site.kind, site.options)
        return [
            {"place": site.prefix, "name": name, "head": h, "weights": [row[: t + 1] for t, row in enumerate(rows)]}
            for h, rows in enumerate(weights)
        ]


def _every(sites: list[LayerSite] | tuple[LayerSite, ...]) -> list[LayerSite]:
    found: list[LayerSite] = []
    for site in sites:
        found.append(site)
        found.extend(_every(site.children))
    return found


def _attends(site: LayerSite) -> bool:
    entry = EXPLAINERS.get(site.kind)
    return entry is not None and bool(entry.attention)


def _heads(site: LayerSite) -> int:
    return int(site.options["heads"])


def _softmax(z: Any) -> Any:
    """(4.6) p = e^(z - m) / sum e^(z - m), in float64."""
    e = np.exp(z - z.max())
    return e / e.sum()
