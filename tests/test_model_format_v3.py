"""Model format version 3 (spec/model-format.md, section 5): token inputs, CrossEntropy's
ignore_index and Residual's nested layer lists are written as version 3, round trip through both
backends (optimizer state included, under nested names), are refused in a version 1 or 2 document,
validate against the schema, and ``scratchnet inspect`` shows the nesting with parameter counts.
MLPs are still written as version 1 and CNNs as version 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from strategies import residual_cnn
from test_model_format import ROOT, reseal

import scratchnet
from scratchnet.builders import BACKENDS, build_network, build_optimizer
from scratchnet.checks.crosscheck import random_inputs
from scratchnet.cli import main
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ModelFormatError
from scratchnet.io import load_model


def gpt(ignore_index: int | None = None) -> dict[str, Any]:
    """Embedding 6 x 4, positions, two residual blocks, a final norm and the scores."""
    loss: dict[str, Any] = {"type": "CrossEntropy"}
    if ignore_index is not None:
        loss["ignore_index"] = ignore_index
    return {
        "vocabulary": 6,
        "input_shape": [5],
        "layers": [
            {"type": "Embedding", "num_embeddings": 6, "embedding_dim": 4},
            {"type": "PositionEmbedding", "max_length": 5, "dim": 4},
            {
                "type": "Residual",
                "layers": [
                    {"type": "LayerNorm", "dim": 4},
                    {"type": "CausalSelfAttention", "dim": 4, "heads": 2, "dropout": 0.1},
                ],
            },
            {
                "type": "Residual",
                "layers": [
                    {"type": "RMSNorm", "dim": 4},
                    {"type": "Dense", "in_features": 4, "out_features": 16},
                    {"type": "GELU"},
                    {"type": "Dense", "in_features": 16, "out_features": 4},
                    {"type": "Dropout", "rate": 0.2},
                ],
            },
            {"type": "LayerNorm", "dim": 4},
            {"type": "Dense", "in_features": 4, "out_features": 6},
            {"type": "Softmax"},
        ],
        "loss": loss,
    }


def cnn() -> dict[str, Any]:
    description = residual_cnn()
    description["layers"].pop(1)
    return description


def version_of(path: Path) -> int:
    return int(json.loads(path.with_suffix(".json").read_text())["version"])


@pytest.mark.parametrize(
    "description,version",
    [
        (mlp([4, 3, 2]), 1),
        (cnn(), 2),
        ({**gpt(), "layers": [*gpt()["layers"][:2], *gpt()["layers"][4:]]}, 3),  # tokens, no container
        ({**residual_cnn()}, 3),  # a container, no tokens
        (gpt(ignore_index=-1), 3),
    ],
)
def test_the_lowest_version_that_holds_the_model_is_written(
    tmp_path: Path, description: dict[str, Any], version: int
) -> None:
    scratchnet.save(build_network(description, backend="loops"), tmp_path / "m")
    assert version_of(tmp_path / "m") == version


def test_ignore_index_alone_makes_version_3(tmp_path: Path) -> None:
    description = mlp([3, 2])
    description["loss"] = {"type": "CrossEntropy", "ignore_index": -1}
    scratchnet.save(build_network(description, backend="vectorized"), tmp_path / "m")
    assert version_of(tmp_path / "m") == 3


@pytest.mark.parametrize("writer", BACKENDS)
@pytest.mark.parametrize("reader", BACKENDS)
@pytest.mark.parametrize("make", [gpt, residual_cnn])
def test_token_and_residual_models_round_trip_between_backends(
    tmp_path: Path, writer: str, reader: str, make: Any
) -> None:
    description = make() if make is residual_cnn else make(ignore_index=-1)
    net = build_network(description, backend=writer, seed=4)
    inputs, labels = random_inputs(description, 3, seed=2)
    optimizer = build_optimizer({"type": "adam", "lr": 0.01}, writer)
    for _ in range(2):  # train a little: BatchNorm's running statistics and Adam's moments are set
        net.loss(net.forward(inputs, training=True), labels)
        net.backward()
        optimizer.step(net)
    scratchnet.save(net, tmp_path / "m", optimizer=optimizer)
    loaded = load_model(tmp_path / "m", reader)
    assert loaded.architecture == net.describe()
    before, after = net.params(), loaded.network.params()
    assert list(after) == list(before)
    assert any(name.count(".") >= 2 and name.split(".")[1].isdigit() for name in after)  # "2.1.in_proj_weight"
    for name in before:
        assert np.array_equal(np.asarray(after[name]), np.asarray(before[name])), name
    # The same network: the same outputs, to the last bit in one backend, to rounding across (section 6).
    expected, outputs = np.asarray(net.forward(inputs)), np.asarray(loaded.network.forward(inputs))
    assert np.array_equal(outputs, expected) if writer == reader else np.allclose(outputs, expected, rtol=1e-12)
    assert loaded.optimizer_state is not None
    slots = set(loaded.optimizer_state["arrays"])
    nested = "2.1.in_proj_weight.exp_avg" if make is gpt else "1.0.weight.exp_avg"
    assert nested in slots and len(slots) == 2 * len(net.grads())
    resumed = build_optimizer(loaded.optimizer_spec or {}, reader)
    resumed.import_state(loaded.optimizer_state)
    # One more step each, the same (without dropout: its mask counters are a checkpoint's metadata).
    for model, step in ((net, optimizer), (loaded.network, resumed)):
        model.loss(model.forward(inputs), labels)
        model.backward()
        step.step(model)
    # Adam divides by sqrt(v): where a gradient is a rounding-sized 1e-17, another backend's rounding
    # moves that parameter by up to lr; so across backends the check is relative to all parameters' scale.
    scale = max(float(np.abs(np.asarray(value)).max()) for value in net.params().values())
    for name, value in net.params().items():
        difference = np.abs(np.asarray(loaded.network.params()[name]) - np.asarray(value)).max()
        assert difference == 0.0 if writer == reader else difference <= 1e-12 * scale, (name, difference)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda doc: doc.update(version=2), "'vocabulary' (token inputs) needs format version 3 or later"),
        (lambda doc: (doc.update(version=2), doc["architecture"].pop("vocabulary")), "reads token ids"),
    ],
)
def test_a_version_2_document_with_version_3_members_is_refused(tmp_path: Path, edit: Any, message: str) -> None:
    scratchnet.save(build_network(gpt(), backend="loops"), tmp_path / "m")
    reseal(tmp_path / "m.json", edit)
    with pytest.raises(ModelFormatError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_model(tmp_path / "m", "loops")
    assert "\n" not in str(error.value)


def test_a_version_2_document_with_a_residual_or_ignore_index_is_refused(tmp_path: Path) -> None:
    scratchnet.save(build_network(residual_cnn(), backend="loops"), tmp_path / "r")
    reseal(tmp_path / "r.json", lambda doc: doc.update(version=2))
    with pytest.raises(ModelFormatError, match="layer 1's list of layers needs format version 3 or later"):
        load_model(tmp_path / "r", "loops")
    description = mlp([3, 2])
    description["loss"] = {"type": "CrossEntropy", "ignore_index": 7}
    scratchnet.save(build_network(description, backend="loops"), tmp_path / "i")
    reseal(tmp_path / "i.json", lambda doc: doc.update(version=1))
    with pytest.raises(ModelFormatError, match="the loss's 'ignore_index' needs format version 3"):
        load_model(tmp_path / "i", "loops")


def test_a_residual_whose_layers_change_the_shape_is_refused_in_one_line(tmp_path: Path) -> None:
    scratchnet.save(build_network(gpt(), backend="loops"), tmp_path / "m")

    def widen(doc: dict[str, Any]) -> None:
        doc["architecture"]["layers"][3]["layers"][3]["out_features"] = 5

    reseal(tmp_path / "m.json", widen)
    with pytest.raises(ModelFormatError, match=r"layer 3 \(Residual\) adds its input \(5, 4\) to its layers' output"):
        load_model(tmp_path / "m", "vectorized")


def test_version_3_documents_validate_against_the_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "spec" / "model-format.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for name, description in (("g", gpt(ignore_index=-1)), ("r", residual_cnn())):
        scratchnet.save(build_network(description, backend="vectorized"), tmp_path / name)
        document = json.loads((tmp_path / f"{name}.json").read_text())
        assert [error.message for error in validator.iter_errors(document)] == []
        assert not validator.is_valid(dict(document, version=2))  # version 3's members in version 2
    nested = json.loads((tmp_path / "r.json").read_text())
    nested["architecture"]["layers"][1]["layers"][0]["surprise"] = 1  # a held layer is checked as a layer
    assert not validator.is_valid(nested)


def test_inspect_shows_the_nested_layers_and_their_parameter_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scratchnet.save(build_network(gpt(ignore_index=-1), backend="loops"), tmp_path / "m")
    assert main(["inspect", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "format: scratchnet-model version 3" in out
    assert "input: sequences of up to 5 token ids, 0..5 (vocabulary 6)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    # By hand: LayerNorm 4 + 4; attention 3*4*4 + 3*4 + 4*4 + 4 = 80; block 88.
    assert rows["2"].split()[1] == "Residual" and rows["2"].split()[-1] == "88"
    assert rows["2.1"].split()[1] == "CausalSelfAttention" and rows["2.1"].split()[-1] == "80"
    assert "out_proj.weight (4, 4)" in rows["2.1"]
    # RMSNorm 4; Dense 4*16 + 16 = 80; Dense 16*4 + 4 = 68; block 152.
    assert rows["3"].split()[-1] == "152" and rows["3.1"].split()[-1] == "80" and rows["3.3"].split()[-1] == "68"
    assert rows["3.4"].split()[1] == "Dropout"
    # Embedding 24, positions 20, blocks 88 + 152, LayerNorm 8, Dense 4*6 + 6 = 30.
    assert f"total: {24 + 20 + 88 + 152 + 8 + 30} parameters" in out
    assert "loss: CrossEntropy (ignore_index -1)" in out
