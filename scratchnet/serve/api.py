"""The JSON API behind ``scratchnet serve``'s page: predict from an image, explain a unit, fetch a test image.

A :class:`Session` holds one model, loaded twice: into the vectorized backend, which computes the
predictions and the hidden layers' outputs that the page redraws while you draw, and into the loops
backend, which :mod:`scratchnet.teaching.explain` reads when you click a unit (the numbers of
``scratchnet explain``: one implementation). Its methods take the decoded JSON body (or query) of a
request and return the JSON-ready answer; anything wrong with a request raises
:class:`RequestError`, whose message and 4xx status the server sends back. docs/serve.md describes
every field.

Images come in bright ink on black, as MNIST draws digits: a list of rows of integers 0..255, or
the bytes of the rows, base64-encoded, with their ``width`` and ``height``. Unless told not to, they
go through :func:`scratchnet.data.preprocess.preprocess` (cropped, scaled to fit 20x20 and centred
by the centre of mass, as ``scratchnet predict --image`` does it) and then the model's recorded
input scaling (its Feeder).
"""

from __future__ import annotations

import base64
import binascii
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.checks.overflow import first_nonfinite, overflow_message
from scratchnet.core import notation
from scratchnet.core.errors import ConfigError, ScratchnetError
from scratchnet.core.registry import output_for_loss
from scratchnet.data import Dataset, load_dataset
from scratchnet.data.images import SIDE, Feeder, Images
from scratchnet.data.preprocess import Preprocessed, network_inputs, picture_style, prepare
from scratchnet.io.model import load_model
from scratchnet.serve.explanation_json import explanation_json
from scratchnet.serve.routes import Body, Query, Routes
from scratchnet.teaching.explain import (
    EXPLAINERS,
    blocks,
    class_names_of,
    dataset_of,
    explain_unit,
    layer_names,
    neuron_layers,
)
from scratchnet.training.inference import predict_classes

MAX_SIDE = 1024  # the largest image width or height the API takes
MAX_TOP = 100  # the most terms of a weighted sum an explanation lists one by one
DEFAULT_TOP = 10
MISCLASSIFIED_CHUNK = 500  # test images predicted per turn with the model when finding the misclassified ones


class RequestError(ScratchnetError):
    """A request the API refuses: ``status`` is the HTTP status (4xx), the message says why, in one line."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Shown:
    """A layer whose output the page draws: ``index`` is the layer whose output it is (the end of
    its block: a Dense or Conv2D layer with the BatchNorm, Dropout and activation layers after it),
    ``explained`` the layer whose units a click explains (the Dense or Conv2D layer itself)."""

    index: int
    explained: int
    name: str
    shape: tuple[int, ...]


class Session:
    """One model served: both backends, its input scaling and class names, and its test set (optional).

    The vectorized and loops layers keep the values of their last pass, so a lock per backend makes
    the requests, which the server handles in threads, take turns with each network (an explanation
    in the loops backend does not hold up the predictions).
    """

    def __init__(
        self,
        model: str,
        data_dir: str | None = None,
        *,
        test_set: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.path = model
        vectorized = load_model(model, backend="vectorized")
        loops = load_model(model, backend="loops")
        self.network = vectorized.network
        self.loops = loops.network
        self.metadata = vectorized.metadata
        self.architecture = vectorized.architecture
        shape = tuple(self.network.input_shape)
        if shape not in ((SIDE * SIDE,), (1, SIDE, SIDE)):
            raise ConfigError(f"{model} takes inputs of shape {shape}; serve shows models of 28x28 grey images")
        kinds = [layer.describe()["type"] for layer in self.network.layers]
        classes = self.network.plan.classes
        if kinds[-1] != output_for_loss("CrossEntropy") or classes < 2:  # the layer whose outputs are probabilities
            raise ConfigError(f"{model} does not end in a Softmax over classes; serve shows class probabilities")
        self.kinds = kinds
        self.classes = classes
        self.feeder = Feeder.from_metadata(self.metadata, "vectorized", vectorized.dtype, shape)
        self.loops_feeder = Feeder.from_metadata(self.metadata, "loops", "float64", shape)
        self.dataset = dataset_of(self.metadata)
        names = class_names_of(self.metadata)
        self.class_names = names if names is not None and len(names) == classes else tuple(map(str, range(classes)))
        self.names = layer_names(self.loops)
        self.output_layer = max(neuron_layers(self.loops), default=-1)  # whose neuron k is class k
        self.shown = self._shown()
        self.lock = threading.Lock()  # for self.network
        self.loops_lock = threading.Lock()  # for self.loops
        self.test: Dataset | None = None
        self.test_problem = "" if self.dataset else f"{model} does not record the dataset it was trained on"
        self._wrong: npt.NDArray[np.intp] | None = None
        if test_set and self.dataset:
            try:
                self.test = load_dataset(self.dataset, data_dir, splits=("test",))
            except ScratchnetError as error:
                self.test_problem = str(error)
        if self.test is not None and self.test.num_classes != classes:
            self.test_problem = f"{self.dataset} has {self.test.num_classes} classes, the model {classes}"
            self.test = None
        if log is not None and self.test is None:
            log(f"the test-set mode is off: {self.test_problem}")
        self._wrong_found = threading.Event()
        if self.test is not None:  # find the misclassified test images now, for "next misclassified"
            threading.Thread(target=self._find_misclassified, name="misclassified", daemon=True).start()

    def _shown(self) -> list[Shown]:
        """The hidden layers the page draws: the blocks headed by a layer whose explainer says the page
        draws it (each Dense but the output layer, each Conv2D with the layers of its block; each pooling layer)."""
        shown = []
        for block in blocks(self.network.plan):
            entry = EXPLAINERS.get(self.kinds[block.first])
            if entry is None or not entry.drawn or block.first == self.output_layer:
                continue
            name = " + ".join(self.names[block.first : block.last + 1])
            shown.append(Shown(block.last, block.first, name, tuple(self.network.plan.output_of(block.last))))
        return shown

    # ---- the answers ----

    page = "index.html"  # the page of an image model

    def routes(self, query: Query, body: Body) -> Routes:
        """The API of the page (docs/serve.md): each path's methods and their handlers."""
        return {
            "/api/model": {"GET": self.info},
            "/api/test": {"GET": lambda: self.test_image(query())},
            "/api/predict": {"POST": lambda: self.predict(body())},
            "/api/explain": {"POST": lambda: self.explain(body())},
        }

    def info(self) -> dict[str, Any]:
        """``GET /api/model``: what the page needs to know about the model before it draws anything."""
        return {
            "model": self.path,
            "architecture": notation.outline(self.architecture),
            "dataset": self.dataset,
            "class_names": list(self.class_names),
            "input_shape": list(self.network.input_shape),
            "output_layer": self.output_layer,
            "layers": [
                {"index": s.index, "explain": s.explained, "name": s.name, "shape": list(s.shape)} for s in self.shown
            ],
            "test_set": {
                "available": self.test is not None,
                "size": 0 if self.test is None else len(self.test.test_labels),
                "problem": self.test_problem,
            },
            "limits": {"max_side": MAX_SIDE, "max_top": MAX_TOP},
        }

    def predict(self, body: Any) -> dict[str, Any]:
        """``POST /api/predict``: the class probabilities and hidden layers for one image."""
        fields = check_fields(body, {"pixels", "width", "height", "preprocess"}, required={"pixels"})
        prepared, pixels = self.image_of(fields)
        return self.prediction(pixels, prepared)

    def explain(self, body: Any) -> dict[str, Any]:
        """``POST /api/explain``: one unit's weighted sum term by term, from scratchnet.teaching.explain."""
        fields = check_fields(
            body,
            {"pixels", "width", "height", "preprocess", "layer", "unit", "top", "label"},
            required={"pixels", "layer", "unit"},
        )
        _, pixels = self.image_of(fields)
        layer = whole(fields["layer"], "layer", 0, len(self.kinds) - 1)
        unit = fields["unit"]
        if not isinstance(unit, list) or not 1 <= len(unit) <= 3:
            raise RequestError(
                "'unit' must be a list of 1 to 3 indices: [j] of a Dense layer, [c, i, j] of feature maps"
            )
        where = [whole(k, "unit index", 0, 1 << 20) for k in unit]
        top = whole(fields.get("top", DEFAULT_TOP), "top", 1, MAX_TOP)
        label = fields.get("label")
        if label is not None:
            label = whole(label, "label", 0, self.classes - 1)
        inputs = network_inputs(pixels, self.loops_feeder)[0]
        started = time.perf_counter()
        with self.loops_lock:
            try:
                ex, item = explain_unit(
                    self.loops, inputs, layer, where, label, top=top, class_names=self.class_names, source="the drawing"
                )
            except ConfigError as error:
                raise RequestError(str(error)) from None
        answer = explanation_json(ex, item)
        answer["milliseconds"] = round(1000 * (time.perf_counter() - started), 2)
        return answer

    def test_image(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """``GET /api/test?index=N`` (or ``?random``, or ``?misclassified_after=N``): a test image,
        its label, and the prediction for it (test images are fed as they are: they are MNIST's)."""
        if self.test is None:
            raise RequestError(f"there is no test set: {self.test_problem}", 404)
        unknown = sorted(set(query) - {"index", "random", "misclassified_after"})
        if unknown:
            raise RequestError(f"unknown query parameter {unknown[0]!r}; give index, random or misclassified_after")
        if len(query) != 1 or any(len(values) != 1 for values in query.values()):
            raise RequestError("give exactly one of index=N, random and misclassified_after=N, once")
        count = len(self.test.test_labels)
        if "random" in query:
            index = random.randrange(count)
        else:
            key = next(iter(query))
            text = query[key][0]
            if not text.isascii() or not text.isdigit() or len(text) > 9:
                raise RequestError(f"{key} must be a whole number 0..{count - 1}, got {text[:20]!r}")
            index = int(text)
            if index >= count:
                raise RequestError(f"{key} {index} is out of range: the test set has images 0..{count - 1}")
            if key == "misclassified_after":
                index = self.next_misclassified(index)
        pixels = self.test.test_images[index]
        label = int(self.test.test_labels[index])
        answer = self.prediction(pixels, None)
        answer.update(index=index, label=label, label_name=self.test.class_names[label], count=count)
        return answer

    # ---- the work ----

    def image_of(self, fields: Mapping[str, Any]) -> tuple[Preprocessed | None, Images]:
        """The request's image, preprocessed unless ``"preprocess": false`` (then it must be 28x28)."""
        image = decode_image(fields)
        apply = fields.get("preprocess", True)
        if not isinstance(apply, bool):
            raise RequestError("'preprocess' must be true or false")
        if not apply:
            if image.shape != (SIDE, SIDE):
                raise RequestError(
                    f'with "preprocess": false the image must be 28x28, got {image.shape[1]}x{image.shape[0]}'
                )
            return None, image
        try:
            prepared = prepare(image, picture_style(self.dataset))  # as predict --image prepares a picture
        except ScratchnetError as error:
            raise RequestError(str(error)) from None
        return prepared, prepared.pixels

    def prediction(self, pixels: Images, prepared: Preprocessed | None) -> dict[str, Any]:
        """The model's outputs for a 28x28 image, and the outputs of the layers the page draws."""
        started = time.perf_counter()
        with self.lock, np.errstate(all="ignore"):  # an overflow is answered below, in one line
            outputs = self.layer_outputs(network_inputs(pixels, self.feeder))
        overflow = first_nonfinite([output[0] for output in outputs])
        if overflow is not None:  # large finite weights: JSON has no inf, and the page nothing to draw
            raise RequestError(overflow_message(self.network, overflow, self.names[overflow]), 422)
        probabilities = np.asarray(outputs[-1][0], dtype=np.float64)
        layers = []
        for s in self.shown:
            values = np.asarray(outputs[s.index][0], dtype=np.float64).ravel()
            layers.append(
                {
                    "index": s.index,
                    "low": float(values.min()),
                    "high": float(values.max()),
                    "values": rounded(values),
                }
            )
        return {
            "image": pixels.tolist(),
            "preprocessing": None if prepared is None else preprocessing_json(prepared),
            "probabilities": probabilities.tolist(),
            "predicted": int(np.argmax(probabilities)),
            "layers": layers,
            "milliseconds": round(1000 * (time.perf_counter() - started), 2),
        }

    def layer_outputs(self, inputs: Any) -> list[Any]:
        """``outputs[l]``: the output of layer l for a batch, as ``Network.forward`` computes it layer by layer."""
        outputs = []
        values = inputs
        for layer in self.network.layers:
            values = layer.forward(values, False)
            outputs.append(values)
        return outputs

    def _find_misclassified(self) -> None:
        """Predict every test image, a chunk at a time (so that the page's requests get their turns)."""
        assert self.test is not None
        images, labels = self.test.test_images, self.test.test_labels
        try:
            with np.errstate(all="ignore"):  # an overflow is said when a request meets it
                predicted = predict_classes(
                    self.network, images, self.feeder, guard=lambda: self.lock, most=MISCLASSIFIED_CHUNK
                )
            self._wrong = np.flatnonzero(predicted != labels)
        finally:
            self._wrong_found.set()

    def next_misclassified(self, after: int) -> int:
        """The first test image after ``after`` (wrapping round) that the model gets wrong."""
        self._wrong_found.wait()
        wrong = self._wrong
        if wrong is None:
            raise RuntimeError("predicting the test images failed; see the server's output")
        if len(wrong) == 0:
            raise RequestError("the model gets every test image right", 404)
        later = wrong[wrong > after]
        return int(later[0] if len(later) else wrong[0])


# ---- validation ----


def check_fields(body: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    """The request body as a dict: a JSON object with no field outside ``allowed`` and all of ``required``."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}; the fields are {', '.join(sorted(allowed))}")
    missing = sorted(required - set(body))
    if missing:
        raise RequestError(f"missing field {missing[0]!r}")
    return body


def whole(value: Any, name: str, low: int, high: int) -> int:
    """``value`` when it is a JSON integer in ``low..high``; RequestError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"'{name}' must be a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**20 else f"a number of {digits_of(value)} digits"  # not all of them
        raise RequestError(f"'{name}' must be in {low}..{high}, got {shown}")
    return value


def digits_of(value: int) -> int:
    """The number of decimal digits of ``value``, without ``str()`` (refused beyond 4,300 digits)."""
    magnitude = abs(value)
    digits = int((magnitude.bit_length() - 1) * math.log10(2)) + 1  # 2**(b-1) <= |value| < 2**b
    return digits + 1 if magnitude >= 10**digits else digits


def decode_image(fields: Mapping[str, Any]) -> Images:
    """The grey image of a request: ``pixels`` as a list of rows of integers 0..255 (``width`` and
    ``height``, when given, must agree), or a base64 string of ``height * width`` bytes, row by row."""
    pixels = fields["pixels"]
    width, height = fields.get("width"), fields.get("height")
    for name, value in (("width", width), ("height", height)):
        if value is not None:
            whole(value, name, 1, MAX_SIDE)
    if isinstance(pixels, str):
        if width is None or height is None:
            raise RequestError("base64 'pixels' need 'width' and 'height'")
        if len(pixels) > 4 * math.ceil(width * height / 3) + 4:
            raise RequestError(f"'pixels' holds more than the {width}x{height} bytes of the image")
        try:
            data = base64.b64decode(pixels, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("'pixels' is not valid base64") from None
        if len(data) != width * height:
            raise RequestError(f"'pixels' holds {len(data)} bytes; a {width}x{height} image has {width * height}")
        return np.frombuffer(data, np.uint8).reshape(height, width).copy()
    if not isinstance(pixels, list) or not pixels or not all(isinstance(row, list) for row in pixels):
        raise RequestError("'pixels' must be a list of rows (lists of integers 0..255) or a base64 string")
    rows, cols = len(pixels), len(pixels[0])
    if not 1 <= rows <= MAX_SIDE or not 1 <= cols <= MAX_SIDE:
        raise RequestError(f"the image must be 1 to {MAX_SIDE} pixels wide and high, got {cols}x{rows}")
    if any(len(row) != cols for row in pixels):
        raise RequestError("every row of 'pixels' must have the same length")
    if any(type(value) is not int for row in pixels for value in row):  # no floats, booleans, strings or lists
        raise RequestError("every pixel must be an integer 0..255")
    try:
        image = np.array(pixels, dtype=np.int64)
    except OverflowError:
        raise RequestError("every pixel must be an integer 0..255") from None
    if image.min() < 0 or image.max() > 255:
        raise RequestError("every pixel must be an integer 0..255")
    if (width is not None and width != cols) or (height is not None and height != rows):
        raise RequestError(f"'width' and 'height' say {width}x{height}, the rows of 'pixels' are {cols}x{rows}")
    return image.astype(np.uint8)


# ---- JSON ----


def rounded(values: npt.NDArray[np.float64]) -> list[float]:
    """The values with 4 significant digits at the scale of the largest (what a shade and a tooltip need)."""
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0 or not math.isfinite(largest):
        return [float(v) for v in values]
    decimals = max(0, 3 - math.floor(math.log10(largest)))
    result: list[float] = np.round(values, decimals).tolist()
    return result


def preprocessing_json(p: Preprocessed) -> dict[str, Any]:
    top, left, height, width = p.box
    return {
        "background": p.background,
        "box": {"top": top, "left": left, "height": height, "width": width},
        "size": list(p.size),
        "offset": list(p.offset),
        "unchanged": p.unchanged,
        "note": p.note(),
    }
