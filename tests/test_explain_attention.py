"""``explain --text``: a language model's next-character probabilities, its attention heads' weights as
heat maps and one head's output term by term (issue 27, item 6), checked against the loops network and
against q . k / sqrt(d), the softmax and the weighted sum recomputed here with NumPy from the layer's
arrays (spec/math.md, eq. 20.1-20.4)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet, run_without

from scratchnet import loops
from scratchnet.builders import build_network
from scratchnet.core import notation, registry
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.data.text import Vocabulary
from scratchnet.io.model import load_model, save
from scratchnet.teaching.explain_tokens import explain_tokens
from scratchnet.teaching.explainers import EXPLAINERS, Explainer
from scratchnet.teaching.sequence_text import format_token_explanation

CHARACTERS = "aemn"
VOCABULARY = Vocabulary(CHARACTERS, boundary=True)  # ids: a 0, e 1, m 2, n 3, the boundary 4
CONTEXT = 6
ATTENTION = (3, 6)  # the attention layers' indices in ARCHITECTURE
SHADE_STEPS = " ░▒▓█"  # docs/explain.md: ' ' below 0.2, '░' from 0.2, '▒' from 0.4, '▓' from 0.6, '█' from 0.8


def architecture(vocabulary: int) -> dict[str, Any]:
    """Two attention layers (2 and 4 heads); uniform initial weights, so that the heads are not uniform."""
    return {
        "vocabulary": vocabulary,
        "input_shape": [CONTEXT],
        "layers": [
            {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": 8, "init": "uniform"},
            {"type": "PositionEmbedding", "max_length": CONTEXT, "dim": 8, "init": "uniform"},
            {"type": "LayerNorm", "dim": 8},
            {"type": "CausalSelfAttention", "dim": 8, "heads": 2, "init": "glorot_uniform"},
            {"type": "RMSNorm", "dim": 8},
            {"type": "Dense", "in_features": 8, "out_features": 8},
            {"type": "CausalSelfAttention", "dim": 8, "heads": 4, "init": "glorot_uniform"},
            {"type": "GELU"},
            {"type": "Dense", "in_features": 8, "out_features": vocabulary},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


def network(vocabulary: Vocabulary = VOCABULARY, seed: int = 3) -> Any:
    return build_network(architecture(vocabulary.size), backend="loops", seed=seed)


def ids_of(text: str) -> list[int]:
    """The ids by hand: the boundary token (4) first, then each character's place in CHARACTERS."""
    return [4] + [CHARACTERS.index(character) for character in text]


@pytest.fixture(scope="module")
def token_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lm") / "names"
    save(network(), path, metadata={"vocabulary": VOCABULARY.to_dict()})
    return path


def printed_probabilities(output: str) -> dict[str, float]:
    """``{character: p}`` from the printout's next-token lines (``   0 'a'  p = 0.25 ...``)."""
    found = re.findall(r"^\s+\d+ '(.+?)'\s+p = (\S+)", output, flags=re.MULTILINE)
    return {character: float(p) for character, p in found}


def entropy(row: np.ndarray) -> float:
    return float(-sum(a * math.log(a) for a in row if a > 0))


def numpy_head(layer: Any, h: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head h at position t recomputed from the layer's input and arrays: the scores q_t . k_s / sqrt(d)
    for s <= t (eq. 20.1, 20.2), their softmax (20.3) and the weighted sum of the values (20.4)."""
    x = np.array(layer.inputs[0])  # (T, D): what the layer read on the last forward pass
    weight, bias = np.array(layer.in_proj_weight), np.array(layer.in_proj_bias)
    dim, d = weight.shape[1], weight.shape[1] // layer.heads
    qkv = x @ weight.T + bias
    cols = slice(h * d, (h + 1) * d)
    q, k, v = qkv[:, :dim][:, cols], qkv[:, dim : 2 * dim][:, cols], qkv[:, 2 * dim :][:, cols]
    scores = k[: t + 1] @ q[t] / math.sqrt(d)
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return scores, weights, weights @ v[: t + 1]


def test_the_printed_probabilities_are_the_loops_networks_on_the_encoded_text(token_model: Path) -> None:
    result = run_scratchnet("explain", str(token_model), "--text", "emma", "--top", "5")
    assert result.returncode == 0, result.stderr
    printed = printed_probabilities(result.stdout)
    net = load_model(token_model, backend="loops").network
    last = net.forward([ids_of("emma")])[0][-1]  # the scores after 'a', the last of \n e m m a
    expected = {("\\n" if k == 4 else CHARACTERS[k]): p for k, p in enumerate(last)}
    assert set(printed) == set(expected) and len(printed) == 5
    for character, p in printed.items():
        assert p == pytest.approx(expected[character], rel=1e-5)
    assert list(printed.values()) == sorted(printed.values(), reverse=True)  # most likely first
    assert "the boundary: the document ends" in result.stdout


def test_the_top_k_are_the_most_likely_next_tokens_of_the_last_position() -> None:
    net = network()
    ex = explain_tokens(net, "me", VOCABULARY, top=2)
    p = np.array(net.forward([ids_of("me")])[0][-1])
    assert ex.probabilities == list(p) and math.fsum(ex.probabilities) == pytest.approx(1.0, abs=1e-12)
    assert [k for k, _ in ex.top] == list(np.argsort(-p, kind="stable")[:2])


def test_each_heat_map_row_is_the_layers_attention_weights_and_sums_to_one() -> None:
    net = network()
    ex = explain_tokens(net, "emma", VOCABULARY)
    text = format_token_explanation(ex)
    assert [(item.place, item.head) for item in ex.heads] == [("3", 0), ("3", 1), *(("6", h) for h in range(4))]
    labels = ["\\n", "e", "m", "m", "a"]
    lines = text.splitlines()
    for item in ex.heads:
        recorded = net.layers[int(item.place)].attention_weights[0][item.head]
        for t, row in enumerate(item.weights):
            assert row == recorded[t][: t + 1] and all(a == 0.0 for a in recorded[t][t + 1 :])
            assert math.fsum(row) == pytest.approx(1.0, abs=1e-12)
            # the drawn row: its label, then each weight's shade, as wide as the widest label (\n: 2)
            drawn = labels[t].rjust(2) + " " + "".join(SHADE_STEPS[min(4, int(a * 5))] * 2 for a in row)
            heading = next(i for i, line in enumerate(lines) if line.startswith(f"  layer {item.place} ("))
            assert any(drawn.rstrip() in line for line in lines[heading : heading + 10]), (item, t, drawn)
    assert len({tuple(map(tuple, item.weights)) for item in ex.heads}) == len(ex.heads)  # the heads differ


def test_the_terms_are_q_dot_k_over_sqrt_d_its_softmax_and_the_weighted_sum_of_the_values() -> None:
    net = network()
    ex = explain_tokens(net, "emma", VOCABULARY, layer=6, head=2, position=3)
    terms = ex.terms
    assert terms is not None and (terms.place, terms.head, terms.position, terms.head_dim) == ("6", 2, 3, 2)
    layer = net.layers[6]
    scores, weights, output = numpy_head(layer, 2, 3)
    assert [term.score for term in terms.terms] == pytest.approx(list(scores), abs=1e-12)
    assert [term.weight for term in terms.terms] == pytest.approx(list(weights), abs=1e-12)
    assert [term.weight for term in terms.terms] == pytest.approx(layer.attention_weights[0][2][3][:4], abs=1e-15)
    assert terms.weighted_sum == pytest.approx(list(output), abs=1e-12)
    assert terms.layer_output == pytest.approx(list(output), abs=1e-12)  # the layer's own o_t, head 2's values
    assert terms.layer_output == layer.outputs[0][3][4:6]
    o = np.array(layer.outputs[0][3])  # the 4 heads' o_3 side by side, through W_o (20.6)
    assert terms.projected == pytest.approx(list(np.array(layer.out_proj_weight) @ o + layer.out_proj_bias), abs=1e-12)
    text = format_token_explanation(ex)
    assert "Layer 6 (CausalSelfAttention(8, 4 heads)), head 2, position 3 ('m'): chosen with --layer and --head" in text
    for s, score in enumerate(scores):  # each score printed to 6 digits on its key position's line
        line = next(line for line in text.splitlines() if re.match(rf"\s+{s} '.{{1,2}}'\s+\[", line))
        assert float(line.split()[-1]) == pytest.approx(score, rel=1e-5, abs=1e-9)
    for equation in ("(20.1)", "(20.2)", "(20.3)", "(20.4)", "(20.6)"):
        assert equation in text


def test_by_default_the_last_position_and_the_sharpest_head() -> None:
    net = network()
    ex = explain_tokens(net, "emma", VOCABULARY)
    assert ex.terms is not None and ex.terms.position == 4
    rows = [
        (place, h, np.array(net.layers[place].attention_weights[0][h][4]))
        for place, heads in zip(ATTENTION, (2, 4))
        for h in range(heads)
    ]
    best = min(rows, key=lambda row: entropy(row[2]))
    assert (ex.terms.place, ex.terms.head) == (str(best[0]), best[1])
    scores, weights, output = numpy_head(net.layers[best[0]], best[1], 4)
    assert [term.score for term in ex.terms.terms] == pytest.approx(list(scores), abs=1e-12)
    assert [term.weight for term in ex.terms.terms] == pytest.approx(list(weights), abs=1e-12)
    assert ex.terms.layer_output == pytest.approx(list(output), abs=1e-12)
    only = explain_tokens(net, "emma", VOCABULARY, layer=3, position=1)  # the sharpest of layer 3's heads
    assert only.terms is not None and only.terms.place == "3" and only.terms.position == 1
    sharpest = min(range(2), key=lambda h: entropy(np.array(net.layers[3].attention_weights[0][h][1])))
    assert only.terms.head == sharpest


def test_running_text_has_no_boundary_and_escapes_what_it_prints() -> None:
    vocabulary = Vocabulary("\n\x1bab")  # running text: a newline and an ESC are characters
    net = network(vocabulary)
    ex = explain_tokens(net, "ab\n\x1b", vocabulary, top=4)
    assert ex.ids == [2, 3, 0, 1] and ex.boundary is None
    text = format_token_explanation(ex)
    assert "\x1b" not in text and "\\x1b" in text and "'ab\\n\\x1b'" in text
    assert "the boundary" not in text


@pytest.mark.parametrize(
    ("text", "options", "error", "message"),
    [
        ("emx", {}, DatasetError, "--text line 1: the character 'x' (U+0078) is not in the vocabulary of 4"),
        (
            "emm",
            {"head": 2, "layer": 3},
            ConfigError,
            "--head 2: layer 3 (CausalSelfAttention(8, 2 heads)) has heads 0..1",
        ),
        ("emm", {"position": 4}, ConfigError, "--position 4: the input has positions 0..3"),
        (
            "emm",
            {"layer": 2},
            ConfigError,
            "--layer 2 is not an attention layer and holds none; the attention layers: 3, 6",
        ),
        ("emmaaa", {}, ConfigError, "--text has 6 characters and the boundary token before it: 7 tokens, but the"),
    ],
)
def test_wrong_choices_are_one_line_errors(text: str, options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        explain_tokens(network(), text, VOCABULARY, **options)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_the_cli_errors_are_one_line(token_model: Path, tmp_path: Path) -> None:
    image_model = tmp_path / "mlp"
    save(build_network(notation.parse("dense(3)", input_shape=(4,)), backend="loops"), image_model)
    cases = [
        (["explain", str(token_model), "--text", "emx"], "the character 'x' (U+0078) is not in the vocabulary"),
        (
            ["explain", str(token_model), "--text", "em", "--head", "5"],
            "--head 5: layer 3 (CausalSelfAttention(8, 2 heads))",
        ),
        (
            ["explain", str(token_model), "--text", "em", "--position", "3"],
            "--position 3: the input has positions 0..2",
        ),
        (["explain", str(image_model), "--text", "em"], "--text goes with a language model"),
        (["explain", str(token_model)], "is a language model: give --text TEXT"),
        (["explain", str(token_model), "--text", "em", "--neuron", "1"], "--neuron goes with an image model"),
    ]
    for args, message in cases:
        result = run_scratchnet(*args)
        assert result.returncode != 0 and result.stdout == "", (args, result.stdout)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_model_without_a_recorded_vocabulary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare"
    save(network(), path)
    result = run_scratchnet("explain", str(path), "--text", "em")
    assert result.returncode != 0 and "records no vocabulary" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---- a container: walked into with core.walk, as the residual block will be ----


def block_children(options: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    dim = options["dim"]
    return [
        {"type": "LayerNorm", "dim": dim},
        {"type": "CausalSelfAttention", "dim": dim, "heads": options["heads"], "init": "glorot_uniform"},
    ]


def block_arrays(options: Mapping[str, Any], shape: registry.Shape) -> dict[str, registry.Shape]:
    dim = options["dim"]
    return {
        "0.weight": (dim,),
        "0.bias": (dim,),
        "1.in_proj_weight": (3 * dim, dim),
        "1.in_proj_bias": (3 * dim,),
        "1.out_proj.weight": (dim, dim),
        "1.out_proj.bias": (dim,),
    }


class AddBlock:
    """y = x + attention(norm(x)), a container defined here and nowhere in the package; it keeps the
    layers it holds in ``layers`` (docs/layers.md), which is all explain needs of it."""

    def __init__(self, dim: int, heads: int, seed: int = 0) -> None:
        self.dim, self.heads = dim, heads
        self.layers = [
            loops.LAYERS["LayerNorm"](dim=dim),
            loops.LAYERS["CausalSelfAttention"](dim=dim, heads=heads, init="glorot_uniform", seed=seed),
        ]

    def forward(self, inputs: Any, training: bool = False) -> Any:
        inner = inputs
        for layer in self.layers:
            inner = layer.forward(inner, training)
        return [[[a + b for a, b in zip(x, f)] for x, f in zip(xs, fs)] for xs, fs in zip(inputs, inner)]

    def params(self) -> dict[str, Any]:
        return {f"{i}.{name}": value for i, layer in enumerate(self.layers) for name, value in layer.params().items()}

    def describe(self) -> dict[str, Any]:
        return {"type": "AddBlock", "dim": self.dim, "heads": self.heads}


ADD_BLOCK = registry.LayerType(
    name="AddBlock",
    options=(registry.Option("dim", "int"), registry.Option("heads", "int")),
    output_shape=lambda options, shape: tuple(shape),
    arrays=block_arrays,
    math="(a test container)",
    seeded=True,
    children=block_children,
)


def test_an_attention_layer_inside_a_container_is_found_by_the_walk_and_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.LAYER_TYPES, "AddBlock", ADD_BLOCK)
    monkeypatch.setitem(loops.LAYERS, "AddBlock", AddBlock)
    monkeypatch.setitem(EXPLAINERS, "AddBlock", Explainer("AddBlock", name=lambda o: f"AddBlock({o['dim']})"))
    described = architecture(VOCABULARY.size)
    described["layers"][2:4] = [{"type": "AddBlock", "dim": 8, "heads": 2}]
    net = build_network(described, backend="loops", seed=5)
    ex = explain_tokens(net, "emma", VOCABULARY, layer=2, head=1)
    assert [line.place for line in ex.forward][:5] == ["0", "1", "2", "2.0", "2.1"]
    assert [(item.place, item.head) for item in ex.heads] == [("2.1", 0), ("2.1", 1), *(("5", h) for h in range(4))]
    block: Any = net.layers[2]
    inner = block.layers[1]
    assert ex.heads[1].weights == [row[: t + 1] for t, row in enumerate(inner.attention_weights[0][1])]
    terms = ex.terms
    assert terms is not None and (terms.place, terms.head, terms.position) == ("2.1", 1, 4)
    scores, weights, output = numpy_head(inner, 1, 4)
    assert [term.score for term in terms.terms] == pytest.approx(list(scores), abs=1e-12)
    assert [term.weight for term in terms.terms] == pytest.approx(list(weights), abs=1e-12)
    assert terms.weighted_sum == pytest.approx(list(output), abs=1e-12)
    probabilities = net.forward([ids_of("emma")])[0][-1]
    assert ex.probabilities == probabilities
    text = format_token_explanation(ex)
    assert (
        "  layer 2.1   CausalSelfAttention(8, 2 heads)" in text
        and "Layer 2.1 (CausalSelfAttention(8, 2 heads))" in text
    )


def test_the_explanation_needs_no_numpy(token_model: Path) -> None:
    """The library side (the model read into the loops backend, explained and printed); the CLI's explain
    imports NumPy for its image paths, so it is run here as a library."""
    script = f"""
        from scratchnet.io.model import load_model
        from scratchnet.teaching.explain_tokens import explain_tokens, vocabulary_of
        from scratchnet.teaching.sequence_text import format_token_explanation

        loaded = load_model({str(token_model)!r}, backend="loops")
        vocabulary = vocabulary_of(loaded.metadata)
        print(format_token_explanation(explain_tokens(loaded.network, "emma", vocabulary, top=3)))
        assert "numpy" not in sys.modules
        """
    result = run_without("numpy", script)
    assert result.returncode == 0, result.stderr
    assert "Next character after 'emma'" in result.stdout and "(20.4) the weighted sum" in result.stdout
