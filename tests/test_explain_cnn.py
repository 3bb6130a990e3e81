"""``scratchnet explain`` on a convolutional network: every number it prints for a Conv2D unit, a
pooling unit, a BatchNorm unit and the Dense neuron after the Flatten equals an independent
computation with ``math`` from the weights the test chose (spec/math.md, sections 12-15), never with
scratchnet.
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
from scratchnet.core import notation
from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.teaching.explain import (
    ConvUnitExplanation,
    FeatureMaps,
    draw_maps,
    explain,
    feature_maps,
    format_explanation,
)

SIDE, CHANNELS, CLASSES = 28, 2, 4
SCALE, MEAN, STD = 255.0, 0.1, 0.5
EPS = 1e-5
GAMMA, BETA = [1.5, 0.8], [-0.1, 0.2]
RUNNING_MEAN, RUNNING_VAR = [0.2, -0.3], [0.5, 2.0]
CONV_BIAS = [0.05, -0.1]
DENSE_BIAS = [0.1, 0.0, -0.1, 0.05]

Maps = list[list[list[float]]]


def kernel(o: int, c: int, u: int, v: int) -> float:
    return ((o * 5 + c * 2 + u * 3 + v * 7) % 11 - 5) / 10.0


def dense_weight(k: int, i: int) -> float:
    return ((k * 7 + i * 3) % 13 - 6) / 50.0


def pixels() -> list[list[int]]:
    """A 28x28 test image: a bright bar, a grey diagonal and a few dots on black."""
    image = [[0] * SIDE for _ in range(SIDE)]
    for r in range(5, 23):
        image[r][9] = 255
        image[r][10] = 180
        image[r][r] = 90 + 5 * r
    for r, s in ((2, 20), (25, 3), (14, 24)):
        image[r][s] = 200
    return image


def scaled(image: list[list[int]]) -> Maps:
    """The network input, (pixel / 255 - mean) / std, as one channel."""
    return [[[(p / SCALE - MEAN) / STD for p in row] for row in image]]


def convolve(x: Maps, out_channels: int, stride: int, padding: int) -> Maps:
    """z[o][i][j] = b[o] + sum_c sum_u sum_v w[o][c][u][v] * xp[c][i*s + u][j*s + v] (eq. 12.1-12.4)."""
    channels, height, width = len(x), len(x[0]), len(x[0][0])

    def xp(c: int, r: int, s: int) -> float:
        r, s = r - padding, s - padding
        return x[c][r][s] if 0 <= r < height and 0 <= s < width else 0.0

    size = (height + 2 * padding - 3) // stride + 1
    return [
        [
            [
                CONV_BIAS[o]
                + math.fsum(
                    kernel(o, c, u, v) * xp(c, i * stride + u, j * stride + v)
                    for c in range(channels)
                    for u in range(3)
                    for v in range(3)
                )
                for j in range(size)
            ]
            for i in range(size)
        ]
        for o in range(out_channels)
    ]


def normalize(z: Maps) -> Maps:
    """y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta (eq. 15.3, 15.4, 15.6)."""
    return [
        [[GAMMA[c] * (x - RUNNING_MEAN[c]) / math.sqrt(RUNNING_VAR[c] + EPS) + BETA[c] for x in row] for row in plane]
        for c, plane in enumerate(z)
    ]


def relu(x: Maps) -> Maps:
    return [[[max(0.0, v) for v in row] for row in plane] for plane in x]


def pool(x: Maps, reduce: Any) -> Maps:
    """2x2 windows, stride 2 (eq. 13.1, 13.3)."""
    size = len(x[0]) // 2
    return [
        [
            [reduce([plane[2 * i + u][2 * j + v] for u in (0, 1) for v in (0, 1)]) for j in range(size)]
            for i in range(size)
        ]
        for plane in x
    ]


def flat(x: Maps) -> list[float]:
    return [v for plane in x for row in plane for v in row]


def reference() -> dict[str, Any]:
    """The BatchNorm network's forward pass, with math only."""
    x = scaled(pixels())
    z = convolve(x, CHANNELS, 1, 0)
    y = normalize(z)
    a = relu(y)
    pooled = pool(a, max)
    features = flat(pooled)
    logits = [math.fsum(dense_weight(k, i) * f for i, f in enumerate(features)) + DENSE_BIAS[k] for k in range(CLASSES)]
    return {"x": x, "z": z, "y": y, "a": a, "pooled": pooled, "features": features, "logits": logits}


def conv_params(in_channels: int, layer: int = 0) -> dict[str, Any]:
    weight = [
        [[[kernel(o, c, u, v) for v in range(3)] for u in range(3)] for c in range(in_channels)]
        for o in range(CHANNELS)
    ]
    return {f"{layer}.weight": weight, f"{layer}.bias": CONV_BIAS}


def dense_params(layer: int, inputs: int) -> dict[str, Any]:
    return {
        f"{layer}.weight": [[dense_weight(k, i) for i in range(inputs)] for k in range(CLASSES)],
        f"{layer}.bias": DENSE_BIAS,
    }


def save(net: Any, path: Path) -> Path:
    scratchnet.save(
        net,
        path,
        metadata={
            "dataset": "mnist",
            "input": {"shape": [1, SIDE, SIDE], "scale": SCALE, "mean": MEAN, "std": STD},
        },
    )
    return path


def batch_norm_net() -> Any:
    """conv(2, 3), batchnorm, relu, maxpool(2), flatten, dense(4) with the test's weights."""
    arch = notation.parse("input(1x28x28), conv(2, 3), batchnorm, relu, maxpool(2), flatten, dense(4)")
    net = build_network(arch, backend="loops")
    net.set_params(
        {
            **conv_params(1),
            "1.weight": GAMMA,
            "1.bias": BETA,
            "1.running_mean": RUNNING_MEAN,
            "1.running_var": RUNNING_VAR,
            **dense_params(5, CHANNELS * 13 * 13),
        }
    )
    return net


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return save(batch_norm_net(), tmp_path / "cnn.json")


@pytest.fixture
def strided(tmp_path: Path) -> Path:
    """conv(2, 3, stride=2, padding=1), relu, avgpool(2), flatten, dense(4): windows on the padding."""
    arch = notation.parse("input(1x28x28), conv(2, 3, stride=2, padding=1), relu, avgpool(2), flatten, dense(4)")
    net = build_network(arch, backend="loops")
    net.set_params({**conv_params(1), **dense_params(4, CHANNELS * 7 * 7)})
    return save(net, tmp_path / "strided.json")


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.npy"
    np.save(path, np.array(pixels(), dtype=np.uint8))
    return path


def approx(expected: float) -> Any:
    return pytest.approx(expected, rel=5.1e-6, abs=1e-12)  # 6 significant digits are printed


def sections(out: str) -> dict[int, tuple[str, list[str]]]:
    """Each explained layer's (heading, lines), keyed by the layer's index."""
    found: dict[int, tuple[str, list[str]]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        head = re.match(r"Layer (\d+) \(", line)
        if head:
            current = []
            found[int(head.group(1))] = (line, current)
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return found


def unit_of(heading: str) -> tuple[int, int, int]:
    match = re.search(r"channel (\d+), row (\d+), col (\d+)", heading)
    assert match is not None, heading
    c, i, j = (int(g) for g in match.groups())
    return c, i, j


def last_number(lines: list[str], start: str) -> float:
    matches = [line for line in lines if line.strip().startswith(start)]
    assert len(matches) == 1, (start, matches)
    return float(matches[0].split()[-1])


TERM = re.compile(r"^\s+w\[(\d+)\]\[(\d+)\]\[(\d+)\]\[(\d+)\]\s+x\[(\d+)\]\[(\d+)\]\[(\d+)\]\s+(\S+)\s+(\S+)\s+(\S+)$")


def terms(lines: list[str]) -> list[tuple[tuple[int, ...], tuple[int, ...], float, float, float]]:
    """The rows of a Conv2D unit's table: (o, c, u, v), (c, r, s), w, x, w * x."""
    rows = []
    for line in lines:
        match = TERM.match(line)
        if match:
            g = match.groups()
            rows.append((tuple(map(int, g[:4])), tuple(map(int, g[4:7])), float(g[7]), float(g[8]), float(g[9])))
    return rows


def argmax(maps: Maps) -> tuple[int, int, int]:
    """The first largest value in C order."""
    values = flat(maps)
    best = max(range(len(values)), key=values.__getitem__)
    height, width = len(maps[0]), len(maps[0][0])
    return best // (height * width), best // width % height, best % width


def test_conv_unit_is_its_window_term_by_term(
    model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = reference()
    assert (
        main(["explain", str(model), "--image", str(image_file), "--no-preprocess", "--label", "1", "--top", "4"]) == 0
    )
    out = capsys.readouterr().out
    found = sections(out)
    assert sorted(found) == [0, 1, 3, 5]  # conv, batch norm, max pool, dense

    # The Conv2D unit: the most active unit of its feature maps (the ReLU after the BatchNorm).
    heading, lines = found[0]
    o, i, j = unit_of(heading)
    assert (o, i, j) == argmax(ref["a"])
    # Its 9 terms w[o][0][u][v] * x[0][i+u][j+v] (eq. 12.1), computed here, largest |w * x| first.
    window = {(u, v): kernel(o, 0, u, v) * ref["x"][0][i + u][j + v] for u in range(3) for v in range(3)}
    order = sorted(window, key=lambda uv: (-abs(window[uv]), uv))
    rows = terms(lines)
    assert [(row[0][2], row[0][3]) for row in rows] == order[:4]
    for (oo, c, u, v), (cc, r, s), w, x, product in rows:
        assert (oo, c, cc, r, s) == (o, 0, 0, i + u, j + v)
        assert w == approx(kernel(o, 0, u, v))
        assert x == approx(ref["x"][0][r][s])
        assert product == approx(window[(u, v)])
    products = [abs(row[4]) for row in rows]
    assert products == sorted(products, reverse=True)
    assert last_number(lines, "+ the other 5 terms") == approx(math.fsum(window[uv] for uv in order[4:]))
    assert last_number(lines, "= sum of w * x over the window") == approx(math.fsum(window.values()))
    assert last_number(lines, f"+ b[{o}] (bias)") == approx(CONV_BIAS[o])
    assert last_number(lines, "= z") == approx(ref["z"][o][i][j])
    assert any(line.strip() == "z: it goes on to layer 1 (BatchNorm(2))" for line in lines)
    for step in ("(12.1) Conv2D.forward", "(12.3, 12.4)", "(15.6) BatchNorm.forward", "(13.1) MaxPool2D.forward"):
        assert step in out

    # The Dense output neuron after the Flatten names each input by its place in the maps (14.1).
    heading, lines = found[5]
    assert heading.startswith("Layer 5 (Dense(338, 4)), neuron")
    for line in lines:
        match = re.match(r"^\s+(\d+) \(ch\s+(\d+), row\s+(\d+), col\s+(\d+)\)\s+(\S+)\s+(\S+)\s+(\S+)$", line)
        if match and "dL/dw" not in line:
            index, c, r, s = (int(g) for g in match.groups()[:4])
            assert index == (c * 13 + r) * 13 + s
            assert float(match.group(6)) == approx(ref["pooled"][c][r][s])
    winner = max(range(CLASSES), key=lambda k: ref["logits"][k])
    assert f"neuron {winner}" in heading
    assert last_number(lines, "= z") == approx(ref["logits"][winner])


def test_batch_norm_unit_is_the_formula(model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = reference()
    assert main(["explain", str(model), "--image", str(image_file), "--no-preprocess"]) == 0
    found = sections(capsys.readouterr().out)
    conv_unit = unit_of(found[0][0])
    heading, lines = found[1]
    c, i, j = unit_of(heading)
    assert (c, i, j) == conv_unit and "the unit that the unit explained above feeds" in heading
    x = ref["z"][c][i][j]
    x_hat = (x - RUNNING_MEAN[c]) / math.sqrt(RUNNING_VAR[c] + EPS)
    assert last_number(lines, "x = ") == approx(x)
    assert last_number(lines, f"mean = running_mean[{c}]") == approx(RUNNING_MEAN[c])
    assert last_number(lines, f"var = running_var[{c}]") == approx(RUNNING_VAR[c])
    assert last_number(lines, "(15.3) x_hat") == approx(x_hat)
    assert last_number(lines, f"gamma = weight[{c}]") == approx(GAMMA[c])
    assert last_number(lines, f"beta = bias[{c}]") == approx(BETA[c])
    assert last_number(lines, "(15.4) y") == approx(GAMMA[c] * x_hat + BETA[c])
    relu_line = next(line for line in lines if "(4.1) ReLU.f" in line)
    assert float(relu_line.split("a = ")[-1].split()[0]) == approx(max(0.0, GAMMA[c] * x_hat + BETA[c]))


def test_max_pool_unit_chooses_the_true_maximum(
    model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = reference()
    assert main(["explain", str(model), "--image", str(image_file), "--no-preprocess"]) == 0
    found = sections(capsys.readouterr().out)
    conv_c, conv_i, conv_j = unit_of(found[0][0])
    heading, lines = found[3]
    c, i, j = unit_of(heading)
    assert (c, i, j) == (conv_c, conv_i // 2, conv_j // 2)  # the window holding the conv unit
    window = {(2 * i + u, 2 * j + v): ref["a"][c][2 * i + u][2 * j + v] for u in (0, 1) for v in (0, 1)}
    printed = {}
    for line in lines:
        match = re.match(r"^\s+row (\d+)\s+(.*)$", line)
        if match:
            r = int(match.group(1))
            for s, cell in zip((2 * j, 2 * j + 1), match.group(2).split()):
                printed[(r, s)] = cell
    assert set(printed) == set(window)
    best = max(window.values())
    first = next(rs for rs in sorted(window) if window[rs] == best)  # row-major: the first maximum
    for rs, cell in printed.items():
        assert (cell.startswith("[") and cell.endswith("]")) == (rs == first)
        assert float(cell.strip("[]")) == approx(window[rs])
    assert f"x[{c}][{first[0]}][{first[1]}], in brackets" in next(line for line in lines if "= a = " in line)
    assert last_number([line.split(":")[0] for line in lines if "= a = " in line], "= a =") == approx(best)
    assert best == ref["pooled"][c][i][j]


def test_strided_padded_conv_and_average_pool(
    strided: Path, image_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = scaled(pixels())
    z = convolve(x, CHANNELS, 2, 1)  # 14x14
    a = relu(z)
    chosen = ["--layer", "0", "--channel", "1", "--row", "0", "--col", "13", "--top", "9"]
    assert main(["explain", str(strided), "--image", str(image_file), "--no-preprocess", *chosen]) == 0
    found = sections(capsys.readouterr().out)
    heading, lines = found[0]
    assert unit_of(heading) == (1, 0, 13) and heading.endswith(": chosen")
    # The window's top left is padded row -1, column 25: the three taps with u = 0 fall on the padding.
    text = "\n".join(lines)
    assert "its window: 6 inputs; 3 more taps fall on the zero padding (12.3)" in text
    assert "the 3x3 window at rows 0..1, cols 25..27" in text
    rows = terms(lines)
    assert sorted((row[0][2], row[0][3]) for row in rows) == [(u, v) for u in (1, 2) for v in (0, 1, 2)]
    for (_, _, u, v), (_, r, s), w, xv, _ in rows:
        assert (r, s) == (0 * 2 + u - 1, 13 * 2 + v - 1)  # r = i*sh + u - ph, s = j*sw + v - pw
        assert w == approx(kernel(1, 0, u, v)) and xv == approx(x[0][r][s])
    assert last_number(lines, "= z") == approx(z[1][0][13])
    assert sorted(found) == [0]

    assert (
        main(["explain", str(strided), "--image", str(image_file), "--no-preprocess", "--layer", "2", "--channel", "0"])
        == 0
    )
    heading, lines = sections(capsys.readouterr().out)[2]
    pooled = pool(a, lambda values: math.fsum(values) / 4)
    c, i, j = unit_of(heading)
    assert c == 0 and (c, i, j) == argmax([pooled[0]]) and "at the chosen channel 0" in heading
    mean_line = next(line for line in lines if "= a = sum / 4" in line)
    total = math.fsum(a[0][2 * i + u][2 * j + v] for u in (0, 1) for v in (0, 1))
    assert float(mean_line.split(" = ")[-2].split(" / ")[0]) == approx(total)
    assert float(mean_line.split()[-1]) == approx(total / 4)
    assert "(13.3) AvgPool2D.forward" in lines[0]


def test_feature_maps_are_the_block_output() -> None:
    net = batch_norm_net()
    ref = reference()
    image = [float(v) for plane in ref["x"] for row in plane for v in row]
    maps = feature_maps(net, image)  # flat input, reshaped to (1, 28, 28)
    assert (maps.layer, maps.name, len(maps.maps)) == (2, "ReLU", CHANNELS)
    assert flat(maps.maps) == pytest.approx(flat(ref["a"]), rel=1e-12, abs=1e-12)
    assert maps.low == 0.0 and maps.high == pytest.approx(max(flat(ref["a"])), rel=1e-12)
    assert flat(feature_maps(net, image, 0).maps) == flat(maps.maps)  # a Conv2D: its block's output
    assert flat(feature_maps(net, image, 1).maps) == pytest.approx(flat(ref["y"]), rel=1e-12, abs=1e-12)
    with pytest.raises(ConfigError, match="not \\(channels, height, width\\) feature maps"):
        feature_maps(net, image, 4)

    for count, channel, drawn, text in (
        (1, 1, [0, 1], "all"),
        (1, 0, [0], "the first 1"),
        (2, 1, [0, 1], "all"),
    ):
        ex = explain(net, image, channel=channel, maps=count)
        conv = ex.units[0]
        assert isinstance(conv, ConvUnitExplanation) and conv.drawn == drawn and conv.unit[0] == channel
        assert f"2 channels of 26x26; drawn: {text}, " in format_explanation(ex)
    text = format_explanation(explain(net, image, maps=0))
    assert "Feature maps" not in text and "│" not in text
    lines = format_explanation(explain(net, image, maps=2)).splitlines()
    drawing = [line for line in lines if line.startswith("    │")]
    assert len(drawing) == 13 and all(len(line) == 4 + 28 + 1 + 28 for line in drawing)  # 26 columns, 13 row pairs
    with pytest.raises(ShapeError, match="the input has 10 values, the network expects 784"):
        explain(net, [0.0] * 10)


def test_draw_maps_shades_on_one_scale() -> None:
    maps = FeatureMaps(0, "ReLU", [[[0.0, 1.0, 3.5]], [[2.0, 3.0, 5.0], [0.0, 0.0, 5.0]]], 0.0, 5.0)
    lines = draw_maps(maps)
    # Shade int(5 * value / 5) of " ░▒▓█" (the top one for 5 too); a line holds the mean of two rows.
    assert lines == [
        "ch 0  ch 1",
        "┌───┐ ┌───┐",
        "│ ░▓│ │░░█│",
        "└───┘ └───┘",
    ]
    assert draw_maps(maps, width=5)[:4] == ["ch 0", "┌───┐", "│ ░▓│", "└───┘"]  # one map per line
    assert draw_maps(maps, [1]) == ["ch 1", "┌───┐", "│░░█│", "└───┘"] and draw_maps(maps, []) == []


def test_choosing_units_and_one_line_errors(model: Path, image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = reference()
    image = ["explain", str(model), "--image", str(image_file), "--no-preprocess"]
    assert main([*image, "--channel", "1", "--maps", "0"]) == 0  # the first Conv2D layer's channel 1
    out = capsys.readouterr().out
    found = sections(out)
    assert list(found) == [0] and "│" not in out
    c, i, j = unit_of(found[0][0])
    assert (c, i, j) == (1, *argmax([ref["a"][1]])[1:])
    assert last_number(found[0][1], "= z") == approx(ref["z"][1][i][j])
    assert main([*image, "--row", "5", "--col", "7"]) == 0
    heading = sections(capsys.readouterr().out)[0][0]
    best = max(range(CHANNELS), key=lambda o: ref["a"][o][5][7])
    assert unit_of(heading) == (best, 5, 7)
    for args, message in (
        (["--layer", "2"], "--layer 2 is a ReLU; explain explains the units of layers 0 (Conv2D), 1 (BatchNorm), 3"),
        (["--layer", "0", "--neuron", "1"], "--neuron picks a Dense neuron; layer 0 is a Conv2D"),
        (["--layer", "5", "--channel", "1"], "layer 5 is Dense: give --neuron"),
        (["--channel", "2"], "--channel 2: layer 0 has channels 0..1"),
        (["--row", "3"], "--row and --col go together"),
        (["--row", "26", "--col", "0"], "--row 26 --col 0: layer 0's maps have rows 0..25 and columns 0..25"),
        (["--neuron", "1", "--channel", "0"], "give --layer too"),
    ):
        assert main([*image, *args]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_explain_a_real_test_image_with_a_cnn(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arch = notation.parse("input(1x28x28), conv(3, 5, stride=2), relu, maxpool(2), flatten, dense(10)")
    path = tmp_path / "cnn.json"
    scratchnet.save(build_network(arch, backend="loops", seed=2), path, metadata={"dataset": "mnist"})
    assert main(["explain", str(path), "--index", "0", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "mnist test image 0" in out and "label 7 ('7')" in out
    assert "Layer 0 (Conv2D(1 -> 3, 5x5, stride 2x2))" in out and "3 channels of 12x12; drawn: all" in out
    assert sorted(sections(out)) == [0, 2, 4] and "Loss for the true label" in out
    assert (
        main(["explain", str(path), "--index", "0", "--data-dir", str(data_dir), "--channel", "2", "--maps", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "drawn: the first 1 and channel 2 (the unit's)" in out and "ch 0" in out and "ch 2" in out
    assert "ch 1" not in out and list(sections(out)) == [0]
