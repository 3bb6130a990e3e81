"""``scratchnet explain --backward``: the gradient it prints is the loops backend's, the vectorized
backend's (float64) and a finite difference computed here; its factors multiply to it.

The references are computed in the test: the two backends' own ``grads()`` on a copy of the network
and a central finite difference of the vectorized network's loss, never the printout's code.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet

from scratchnet.builders import build_network
from scratchnet.core import notation
from scratchnet.core.errors import ConfigError, LabelError
from scratchnet.teaching.explain_backward import explain_backward

LAST = re.compile(r"^dL/d(\S+)\[([0-9,]+)\] = (\S+); finite difference (\S+)$")

MLP = "input(12), dense(6), tanh, dropout(0.3), dense(5), relu, dense(3)"
CNN = "input(2x6x6), conv(3, 3, padding=1), batchnorm, relu, maxpool(2), flatten, dense(4)"
CNN_AVG = "input(1x7x7), conv(2, 2, stride=1), sigmoid, avgpool(2, stride=1), flatten, dense(3)"


def sample(size: int) -> list[float]:
    return [((k * 7) % 11 - 4) / 5 for k in range(size)]


def networks(text: str, seed: int = 3) -> tuple[Any, Any]:
    """The loops network, and a vectorized float64 network with the same arrays; a BatchNorm gets
    running statistics away from 0 and 1, so that its inference pass is not the identity."""
    arch = notation.parse(text)
    loops = build_network(arch, backend="loops", seed=seed)
    params = loops.params()
    for name in params:
        if name.endswith("running_mean"):
            params[name] = [0.1 * (k + 1) for k in range(len(params[name]))]
        if name.endswith("running_var"):
            params[name] = [0.5 + 0.3 * k for k in range(len(params[name]))]
        if name.endswith(".weight") and len(np.shape(params[name])) == 1:  # gamma
            params[name] = [1.0 + 0.2 * k for k in range(len(params[name]))]
    loops.set_params(params)
    vectorized = build_network(arch, backend="vectorized", dtype="float64", seed=seed)
    vectorized.set_params(params)
    return loops, vectorized


def reference_grads(vectorized: Any, x: list[float], label: int) -> dict[str, np.ndarray]:
    shape = tuple(vectorized.input_shape)
    batch = np.asarray(x, dtype=np.float64).reshape((1, *shape))
    vectorized.loss(vectorized.forward(batch), [label])
    vectorized.backward()
    return {name: np.array(value, dtype=np.float64) for name, value in vectorized.grads().items()}


def finite_difference(vectorized: Any, x: list[float], label: int, name: str, index: tuple[int, ...]) -> float:
    """(L(w + h) - L(w - h)) / 2h by the vectorized network in float64, h = 1e-6."""
    shape = tuple(vectorized.input_shape)
    batch = np.asarray(x, dtype=np.float64).reshape((1, *shape))
    params = {key: np.array(value, dtype=np.float64) for key, value in vectorized.params().items()}
    h = 1e-6
    losses = []
    for step in (h, -h):
        changed = {key: value.copy() for key, value in params.items()}
        changed[name][index] += step
        vectorized.set_params(changed)
        losses.append(vectorized.loss(vectorized.forward(batch), [label]))
    vectorized.set_params(params)
    return float((losses[0] - losses[1]) / (2 * h))


def last_line(text: str) -> tuple[str, tuple[int, ...], float, float]:
    match = LAST.match(text.splitlines()[-1])
    assert match is not None, text.splitlines()[-1]
    index = tuple(int(k) for k in match.group(2).split(","))
    return match.group(1), index, float(match.group(3)), float(match.group(4))


def close(printed: float, value: float, rel: float = 1e-5) -> bool:
    """Equal to printed precision (6 significant digits)."""
    return math.isclose(printed, value, rel_tol=rel, abs_tol=1e-9)


def value_row(text: str, start: str) -> list[str]:
    """The lines of the printout that start (after their indentation) with ``start``."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith(start)]


def trailing(line: str) -> float:
    return float(line.split()[-1])


CASES = [
    (MLP, 1, None),
    (MLP, 2, "0.weight[4,7]"),
    (MLP, 0, "0.bias[2]"),
    (MLP, 1, "3.weight[2,5]"),
    (MLP, 1, "5.bias[0]"),
    (CNN, 2, None),
    (CNN, 1, "0.weight[1,1,2,0]"),
    (CNN, 3, "0.bias[2]"),
    (CNN, 0, "1.weight[1]"),
    (CNN, 2, "1.bias[2]"),
    (CNN, 1, "5.weight[3,10]"),
    (CNN_AVG, 1, None),
    (CNN_AVG, 2, "0.weight[1,0,1,1]"),
]


@pytest.mark.parametrize(("text", "label", "weight"), CASES)
def test_the_printed_gradient_is_both_backends_and_a_finite_difference(
    text: str, label: int, weight: str | None
) -> None:
    loops, vectorized = networks(text)
    x = sample(int(np.prod(loops.input_shape)))
    out = explain_backward(loops, x, label, weight=weight, top=4)
    name, index, printed, printed_fd = last_line(out)
    if weight is not None:
        assert weight == f"{name}[{','.join(map(str, index))}]"
    fresh, _ = networks(text)  # the loops backend's own gradient, on a network the printout never saw
    fresh.loss(fresh.forward([np.reshape(x, fresh.input_shape).tolist()]), [label])
    fresh.backward()
    loops_grad = float(np.array(fresh.grads()[name], dtype=np.float64)[index])
    vectorized_grad = float(reference_grads(vectorized, x, label)[name][index])
    fd = finite_difference(vectorized, x, label, name, index)
    assert f"{loops_grad:.6g}" == f"{printed:.6g}"
    assert close(printed, vectorized_grad)
    assert close(printed, fd, 1e-4) and close(printed_fd, fd, 1e-4)
    assert abs(printed) > 1e-6  # the cases are chosen so that the check means something


def test_the_default_weight_is_the_largest_gradient_of_a_weight() -> None:
    for text, weights in ((MLP, ("0.weight", "3.weight", "5.weight")), (CNN, ("0.weight", "5.weight"))):
        loops, vectorized = networks(text)
        x = sample(int(np.prod(loops.input_shape)))
        name, index, printed, _ = last_line(explain_backward(loops, x, 1))
        grads = reference_grads(vectorized, x, 1)
        best = max(weights, key=lambda key: float(np.max(np.abs(grads[key]))))
        assert name == best
        assert index == tuple(int(k) for k in np.unravel_index(np.argmax(np.abs(grads[best])), grads[best].shape))
        assert close(printed, float(grads[best][index]))


def test_a_dense_weight_is_delta_times_a_with_delta_from_the_next_layer() -> None:
    loops, vectorized = networks(MLP)
    x = sample(12)
    out = explain_backward(loops, x, 1, weight="0.weight[4,7]", top=10)
    grads = reference_grads(vectorized, x, 1)
    _, _, printed, _ = last_line(out)
    # a[7] is input 7; delta[4] = dL/db[4], the vectorized backend's
    (a_line,) = value_row(out, "a[7] =")
    assert trailing(a_line) == pytest.approx(x[7], rel=1e-5)
    (product,) = value_row(out, "dL/dW[4][7] = delta[4] * a[7] =")
    factors = re.search(r"= (\S+) \* (\S+)\s+(\S+)$", product)
    assert factors is not None
    delta, a, value = (float(factors.group(k)) for k in (1, 2, 3))
    assert close(delta, float(grads["0.bias"][4])) and close(a, x[7])
    assert close(delta * a, value) and close(value, printed)
    # delta[4] = (sum_k W[k][4] * delta[k]) * f'(z[4]), through the Dropout (the identity at inference)
    (chain,) = value_row(out, "(4) Elementwise.backward: delta[4] = dL/da * f'(z) =")
    found = re.search(r"= (\S+) \* (\S+)\s+\S+$", chain)
    assert found is not None
    upstream, slope = float(found.group(1)), float(found.group(2))
    assert close(upstream * slope, trailing(chain)) and close(trailing(chain), delta)
    weights = vectorized.params()["3.weight"]
    deltas = grads["3.bias"]
    assert close(upstream, float(sum(weights[k][4] * deltas[k] for k in range(5))))
    rows = [line for line in out.splitlines() if re.match(r"^\s+\d+\s+\S+\s+\S+\s+\S+$", line)]
    assert len(rows) == int(np.count_nonzero(deltas))  # top is 10: every term that is not 0
    rest = value_row(out, "+ the other")
    assert all(line.endswith(" 0") for line in rest) and len(rest) == int(np.count_nonzero(deltas) < 5)
    assert close(math.fsum(float(row.split()[-1]) for row in rows), upstream)
    z = float(np.asarray(x) @ np.asarray(vectorized.params()["0.weight"])[4] + vectorized.params()["0.bias"][4])
    assert close(slope, 1 - math.tanh(z) ** 2)


def test_a_conv_weight_is_its_sum_over_the_windows() -> None:
    loops, _ = networks(CNN)
    x = sample(72)
    out = explain_backward(loops, x, 1, weight="0.weight[1,1,2,0]", top=3)
    _, _, printed, _ = last_line(out)
    terms = [line for line in value_row(out, "delta[1][") if " * x[1][" in line]
    assert len(terms) == 3
    for term in terms:
        delta, value, product = (float(v) for v in term.split()[-3:])
        assert close(delta * value, product)
    (rest,) = value_row(out, "+ the other")
    (total,) = value_row(out, "= dL/dw[1][1][2][0]")
    shown = math.fsum(float(term.split()[-1]) for term in terms)
    assert close(shown + trailing(rest), trailing(total), 1e-4) and close(trailing(total), printed)
    assert "on the zero padding (12.3)" in out  # padding 1: some windows put tap (2, 0) on it


def test_every_layer_type_has_its_backward_formula() -> None:
    for text, label, expected in (
        (
            MLP,
            1,
            [
                "(3.2-3.4) Dense.backward",
                "(4.4) Elementwise.backward",
                "(4.1) Elementwise.backward",
                "(7.3) Dropout.backward",
                "(5.3) CrossEntropy.gradient",
                "Softmax.backward (4.7) is skipped",
            ],
        ),
        (
            CNN,
            1,
            [
                "(12.5-12.7) Conv2D.backward",
                "(15.7, 15.8, 15.10) BatchNorm.backward",
                "(13.2) MaxPool2D.backward",
                "(14.2) Flatten.backward",
            ],
        ),
        (CNN_AVG, 1, ["(13.4) AvgPool2D.backward", "(4.3) Elementwise.backward"]),
    ):
        loops, _ = networks(text)
        out = explain_backward(loops, sample(int(np.prod(loops.input_shape))), label)
        for piece in expected:
            assert piece in out, piece
        assert "arrives" in out and "sends back" in out and "rms" in out


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (
            "9.weight[0,0]",
            "the model has no trained array '9.weight'; it has ['0.weight', '0.bias', '1.weight', '1.bias', ",
        ),
        ("1.running_mean[0]", "no trained array '1.running_mean'"),
        ("0.weight[1]", "0.weight has shape (3, 2, 3, 3), so 4 indices, got 1"),
        ("0.weight[3,0,0,0]", "index 3 is out of range for axis 0 of 0.weight, 0..2"),
        ("5.bias[0,1]", "5.bias has shape (4,), so 1 index, got 2"),
        ("0.weight[a,0,0,0]", "the indices must be whole numbers"),
        ("weight", "expected NAME[i,j,...] such as 0.weight[3,100]"),
    ],
)
def test_a_bad_weight_is_a_one_line_error_listing_the_model(weight: str, message: str) -> None:
    loops, _ = networks(CNN)
    with pytest.raises(ConfigError) as error:
        explain_backward(loops, sample(72), 1, weight=weight)
    text = str(error.value)
    assert message in text and "\n" not in text
    if "no trained array" in text:
        assert "... and 1 more]" in text  # 6 arrays: the list is capped at 5


def test_a_label_is_needed() -> None:
    loops, _ = networks(MLP)
    with pytest.raises(LabelError, match="needs the true label"):
        explain_backward(loops, sample(12), None)
    with pytest.raises(LabelError, match="not a class"):
        explain_backward(loops, sample(12), 3)


def test_the_cli_on_a_trained_model(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "tiny.json"
    env = {"SCRATCHNET_DATA_DIR": str(data_dir)}
    trained = run_scratchnet(
        "train", "--limit", "300", "--epochs", "1", "--hidden", "8", "--out", str(path), env=env, timeout=300
    )
    assert trained.returncode == 0, trained.stderr
    run = run_scratchnet("explain", str(path), "--backward", "--index", "0", env=env)
    assert run.returncode == 0, run.stderr
    name, _, gradient, fd = last_line(run.stdout.rstrip("\n"))
    assert name.endswith(".weight") and close(gradient, fd, 1e-4)
    assert "Backward pass of mnist test image 0" in run.stdout and "label 7 ('7')" in run.stdout
    chosen = run_scratchnet("explain", str(path), "--backward", "--index", "0", "--weight", "0.bias[3]", env=env)
    assert chosen.returncode == 0 and chosen.stdout.rstrip("\n").splitlines()[-1].startswith("dL/d0.bias[3] = ")
    for args, message in (
        (["--backward", "--weight", "0.weight[99,0]"], "index 99 is out of range for axis 0 of 0.weight, 0..7"),
        (["--weight", "0.weight[0,0]"], "--weight goes with --backward"),
        (["--backward", "--neuron", "3"], "--neuron chooses a unit of the forward explain"),
    ):
        bad = run_scratchnet("explain", str(path), "--index", "0", *args, env=env)
        assert bad.returncode == 1 and bad.stdout == ""
        assert message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
