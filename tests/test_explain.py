"""``scratchnet explain``: every number it prints equals an independent computation with ``math``.

The reference values here are computed with plain Python and the math module from the weights the
test chose, never with scratchnet.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scratchnet
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError, LabelError, ShapeError
from scratchnet.teaching.explain import explain, format_explanation

HIDDEN, CLASSES, PIXELS = 3, 4, 784
SCALE, MEAN, STD = 255.0, 0.1, 0.5


def weights1(j: int, i: int) -> float:
    return ((i * 7 + j * 13) % 23 - 11) / 400.0


def weights2(k: int, j: int) -> float:
    return ((k * 5 + j * 3) % 7 - 3) / 4.0


B1 = [0.3, -0.02, 0.5]  # neuron 2 fires most, neuron 1 not at all
B2 = [0.1, -0.1, 0.0, 0.2]


def pixels() -> list[int]:
    """A 28x28 test image: a bright bar and a few grey dots on black."""
    image = [0] * PIXELS
    for r in range(6, 22):
        image[r * 28 + 14] = 255
        image[r * 28 + 13] = 128
    for i in (100, 300, 500, 650):
        image[i] = 40 + i % 200
    return image


def reference(image: list[int], label: int) -> dict[str, Any]:
    """Forward, loss and gradients of the test network, with math only."""
    x = [(p / SCALE - MEAN) / STD for p in image]
    z1 = [math.fsum(weights1(j, i) * x[i] for i in range(PIXELS)) + B1[j] for j in range(HIDDEN)]
    a1 = [max(0.0, z) for z in z1]
    z2 = [math.fsum(weights2(k, j) * a1[j] for j in range(HIDDEN)) + B2[k] for k in range(CLASSES)]
    m = max(z2)
    exps = [math.exp(z - m) for z in z2]
    p = [e / math.fsum(exps) for e in exps]
    loss = -math.log(p[label])
    delta2 = [p[k] - (1.0 if k == label else 0.0) for k in range(CLASSES)]
    grad_a1 = [math.fsum(delta2[k] * weights2(k, j) for k in range(CLASSES)) for j in range(HIDDEN)]
    delta1 = [grad_a1[j] * (1.0 if z1[j] > 0 else 0.0) for j in range(HIDDEN)]
    return {
        "x": x,
        "z1": z1,
        "a1": a1,
        "z2": z2,
        "p": p,
        "loss": loss,
        "delta2": delta2,
        "grad_a1": grad_a1,
        "delta1": delta1,
    }


@pytest.fixture
def model(tmp_path: Path) -> Path:
    net = build_network(mlp([PIXELS, HIDDEN, CLASSES]), backend="loops")
    net.set_params(
        {
            "0.weight": [[weights1(j, i) for i in range(PIXELS)] for j in range(HIDDEN)],
            "0.bias": B1,
            "2.weight": [[weights2(k, j) for j in range(HIDDEN)] for k in range(CLASSES)],
            "2.bias": B2,
        }
    )
    path = tmp_path / "tiny.json"
    scratchnet.save(
        net,
        path,
        metadata={
            "dataset": "mnist",
            "class_names": ["zero", "one", "two", "three"],
            "input": {"shape": [28, 28], "scale": SCALE, "mean": MEAN, "std": STD},
        },
    )
    return path


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.npy"
    np.save(path, np.array(pixels(), dtype=np.uint8).reshape(28, 28))
    return path


def value(text: str) -> float:
    return float(text)


def sections(out: str) -> dict[tuple[int, int], list[str]]:
    """The lines of each neuron's section, keyed by (layer, neuron)."""
    found: dict[tuple[int, int], list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        head = re.match(r"Layer (\d+) \(Dense\(\d+, \d+\)\), neuron (\d+)", line)
        if head:
            current = found.setdefault((int(head.group(1)), int(head.group(2))), [])
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return found


def last_number(lines: list[str], start: str) -> float:
    matches = [line for line in lines if line.strip().startswith(start)]
    assert len(matches) == 1, (start, matches)
    return value(matches[0].split()[-1])


def table(lines: list[str], header: str) -> list[list[str]]:
    """Rows of the table under the line ending with ``header``: index first, then the numbers."""
    start = next(n for n, line in enumerate(lines) if line.rstrip().endswith(header))
    rows = []
    for line in lines[start + 1 :]:
        match = re.match(r"\s+(\d+)(?: \(row\s*(\d+), col\s*(\d+)\))?((?:\s+\S+)+)$", line)
        if not match or line.strip().startswith(("+", "=")):
            break
        rows.append([match.group(1), *(match.group(4).split())])
    return rows


def approx(expected: float) -> Any:
    return pytest.approx(expected, rel=5.1e-6, abs=1e-12)  # 6 significant digits are printed


def test_explain_cli_prints_the_independently_computed_numbers(
    model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label = 2
    ref = reference(pixels(), label)
    assert (
        main(
            ["explain", str(model), "--image", str(image_file), "--no-preprocess", "--label", str(label), "--top", "5"]
        )
        == 0
    )
    out = capsys.readouterr().out
    found = sections(out)
    hidden = max(range(HIDDEN), key=lambda j: ref["a1"][j])
    winner = max(range(CLASSES), key=lambda k: ref["p"][k])
    assert set(found) == {(0, hidden), (2, winner)}

    # The hidden neuron: its five largest terms w[i] * x[i], the rest summed, the bias, z, a = relu(z).
    lines = found[(0, hidden)]
    products = {i: weights1(hidden, i) * ref["x"][i] for i in range(PIXELS)}
    biggest = sorted(products, key=lambda i: (-abs(products[i]), i))[:5]
    rows = table(lines, "w[i] * x[i]")
    assert [int(row[0]) for row in rows] == biggest
    for row in rows:
        i = int(row[0])
        assert value(row[1]) == approx(weights1(hidden, i))
        assert value(row[2]) == approx(ref["x"][i])
        assert value(row[3]) == approx(products[i])
    rest = math.fsum(products[i] for i in range(PIXELS) if i not in biggest)
    assert last_number(lines, "+ the other 779 terms") == approx(rest)
    assert last_number(lines, "= sum_i w[i] * x[i]") == approx(ref["z1"][hidden] - B1[hidden])
    assert last_number(lines, "+ b (bias)") == approx(B1[hidden])
    assert last_number(lines, "= z") == approx(ref["z1"][hidden])
    assert last_number(lines, "(4.1) ReLU.f") == approx(ref["a1"][hidden])
    # Its gradients: dL/da from the next layer (3.4), relu' (4.1), delta, dL/db and the largest dL/dw.
    assert last_number(lines, "(3.4) Dense.backward") == approx(ref["grad_a1"][hidden])
    assert ref["z1"][hidden] > 0 and last_number(lines, "(4.1) ReLU.derivative") == 1.0
    assert last_number(lines, "(2.2) Neuron.backward: dL/db") == approx(ref["delta1"][hidden])
    grads = {i: ref["delta1"][hidden] * ref["x"][i] for i in range(PIXELS)}
    grad_rows = table(lines, "dL/dw[i]")
    assert len(grad_rows) == 5
    assert [int(row[0]) for row in grad_rows] == sorted(grads, key=lambda i: (-abs(grads[i]), i))[:5]
    for row in grad_rows:
        i = int(row[0])
        assert value(row[1]) == approx(ref["x"][i])
        assert value(row[2]) == approx(grads[i])

    # The winning output neuron: every term (3 inputs), z, p, delta = p - t (5.3) and its gradients.
    lines = found[(2, winner)]
    rows = table(lines, "w[i] * x[i]")
    assert sorted(int(row[0]) for row in rows) == [0, 1, 2]
    for row in rows:
        j = int(row[0])
        assert value(row[1]) == approx(weights2(winner, j))
        assert value(row[2]) == approx(ref["a1"][j])
        assert value(row[3]) == approx(weights2(winner, j) * ref["a1"][j])
    assert last_number(lines, "= z") == approx(ref["z2"][winner])
    assert last_number(lines, "(5.3) CrossEntropy.gradient") == approx(ref["delta2"][winner])
    assert last_number(lines, "(2.2) Neuron.backward: dL/db") == approx(ref["delta2"][winner])
    for row in table(lines, "dL/dw[i]"):
        j = int(row[0])
        assert value(row[2]) == approx(ref["delta2"][winner] * ref["a1"][j])

    # The softmax outputs, the prediction and the loss for the true label.
    outputs = re.findall(r"^\s+(\d) '(\w+)'\s+z =\s+(\S+)\s+p = (\S+)", out, re.M)
    assert [name for _, name, _, _ in outputs] == ["zero", "one", "two", "three"]
    for k, _, z, p in outputs:
        assert value(z) == approx(ref["z2"][int(k)])
        assert value(p) == approx(ref["p"][int(k)])
    loss = re.search(r"= (\S+)  \(= -log p\[2\]\)", out)
    assert loss is not None and value(loss.group(1)) == approx(ref["loss"])
    assert f"Prediction: {winner}" in out
    for step in (
        "(2.1) Neuron.forward",
        "(3.1) Dense.forward",
        "(4.6) softmax",
        "(5.2) CrossEntropy.value",
        "(6.2) Network.backward",
        "(2.2) Neuron.backward",
    ):
        assert step in out


def test_explain_chosen_neuron_and_no_label(model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = reference(pixels(), 0)
    assert (
        main(["explain", str(model), "--image", str(image_file), "--no-preprocess", "--layer", "2", "--neuron", "3"])
        == 0
    )
    out = capsys.readouterr().out
    found = sections(out)
    assert list(found) == [(2, 3)]
    assert last_number(found[(2, 3)], "= z") == approx(ref["z2"][3])
    assert "no label, so no loss and no gradients" in out
    assert "Loss for the true label" not in out


def test_explain_a_neuron_that_did_not_fire(model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = reference(pixels(), 1)
    assert ref["z1"][1] < 0
    assert (
        main(
            [
                "explain",
                str(model),
                "--image",
                str(image_file),
                "--no-preprocess",
                "--label",
                "1",
                "--layer",
                "0",
                "--neuron",
                "1",
            ]
        )
        == 0
    )
    lines = sections(capsys.readouterr().out)[(0, 1)]
    assert last_number(lines, "= z") == approx(ref["z1"][1])
    assert last_number(lines, "(4.1) ReLU.f") == 0.0
    assert last_number(lines, "(3.4) Dense.backward") == approx(ref["grad_a1"][1])
    assert last_number(lines, "(4.1) ReLU.derivative") == 0.0
    assert last_number(lines, "(2.2) Neuron.backward: dL/db") == 0.0
    assert all(value(row[2]) == 0.0 for row in table(lines, "dL/dw[i]"))


def test_explain_errors_are_one_line(model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(model), "--image", str(image_file), "--layer", "1"]) == 1
    err = capsys.readouterr().err
    assert "--layer 1 is not a Dense layer; the Dense layers are 0, 2" in err and err.count("\n") == 1
    assert main(["explain", str(model), "--image", str(image_file), "--layer", "2", "--neuron", "4"]) == 1
    assert "--neuron 4: layer 2 has neurons 0..3" in capsys.readouterr().err
    assert main(["explain", str(model), "--image", str(image_file), "--label", "4"]) == 1
    assert "label 4 is not a class" in capsys.readouterr().err
    assert main(["explain", str(model), "--image", str(model.parent / "missing.npy")]) == 1
    assert "missing.npy" in capsys.readouterr().err


def test_worked_example_of_the_spec() -> None:
    """spec/math.md section 11, through the structured function."""
    net = build_network(mlp([2, 2, 2]), backend="loops")
    net.set_params(
        {
            "0.weight": [[0.1, 0.2], [-0.3, 0.4]],
            "0.bias": [0.0, 0.1],
            "2.weight": [[0.5, -0.6], [0.7, 0.8]],
            "2.bias": [0.0, 0.0],
        }
    )
    ex = explain(net, [1.0, 2.0], 1, top=1)
    hidden, output = ex.neurons
    assert (hidden.layer, hidden.neuron, output.layer, output.neuron) == (0, 1, 2, 1)
    assert [t.index for t in hidden.terms] == [1] and hidden.terms[0].product == pytest.approx(0.8)
    assert hidden.rest_count == 1 and hidden.rest_sum == pytest.approx(-0.3)
    assert hidden.z == pytest.approx(0.6) and hidden.a == pytest.approx(0.6)
    assert output.z == pytest.approx(0.83)
    assert ex.outputs == pytest.approx([0.280900, 0.719100], abs=1e-6)
    assert ex.loss == pytest.approx(0.329755, abs=1e-6)
    assert hidden.backprop is not None and output.backprop is not None
    assert hidden.backprop.grad_bias == pytest.approx(-0.393260, abs=1e-6)
    assert [g.gradient for g in hidden.backprop.largest] == pytest.approx([-0.786521, -0.393260], abs=1e-6)
    assert output.backprop.delta == pytest.approx(-0.280900, abs=1e-6)
    assert [g.gradient for g in output.backprop.largest] == pytest.approx([-0.168540, -0.140450], abs=1e-6)
    text = format_explanation(ex)
    assert "= 0.329755" in text and "(5.3) CrossEntropy.gradient" in text
    with pytest.raises(ShapeError):
        explain(net, [1.0], 0)
    with pytest.raises(LabelError):
        explain(net, [1.0, 2.0], 2)
    with pytest.raises(ConfigError):
        explain(net, [1.0, 2.0], 0, layer=1)


def test_explain_a_real_test_image(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mnist.json"
    scratchnet.save(build_network(mlp([PIXELS, 8, 10]), backend="loops", seed=1), path, metadata={"dataset": "mnist"})
    assert main(["explain", str(path), "--index", "0", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "mnist test image 0" in out and "label 7 ('7')" in out and "(row" in out
    assert main(["explain", str(path), "--index", "10000", "--data-dir", str(data_dir)]) == 1
    assert "--index 10000: mnist has test images 0..9999" in capsys.readouterr().err


def test_a_one_output_sigmoid_network_is_explained_for_either_class() -> None:
    from scratchnet.teaching.explain import format_explanation

    net = build_network(mlp([4, 3, 1], loss="bce"), backend="loops", seed=0)
    for x, label in (([5.0] * 4, 1), ([-5.0] * 4, 0)):
        probability = net.forward([x])[0][0]
        text = format_explanation(explain(net, x, label))
        predicted = int(probability > 0.5)
        assert f"Prediction: {predicted} ('{predicted}')" in text
        assert "Loss for the true label (5.5)" in text
