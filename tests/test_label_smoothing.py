"""CrossEntropy's label_smoothing (spec/math.md eq. 5.7, 5.8, 16.5) in both backends: a value worked
by hand, the two backends against each other, the gradient against finite differences of the loss,
eps = 0 as eq. 5.2-5.3 exactly, the option in the loss description, the model file and the CLI.
The gold tests against PyTorch are in test_label_smoothing_gold.py."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from subprocesses import ROOT, run_scratchnet

import scratchnet
from scratchnet import loops, vectorized
from scratchnet.builders import build_network
from scratchnet.core import notation
from scratchnet.core.architecture import mlp, validate
from scratchnet.core.errors import ConfigError, ModelFormatError
from scratchnet.loops.activations import softmax_and_log_sum_exp as loops_softmax
from scratchnet.vectorized.activations import softmax_and_log_sum_exp as vectorized_softmax

BACKENDS = ("loops", "vectorized")


def module_of(backend: str) -> Any:
    return loops if backend == "loops" else vectorized


def evaluate(backend: str, loss: Any, logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss and its gradient dL/dz in ``backend``, from the softmax that backend computes."""
    if backend == "loops":
        z = logits.tolist()
        p: Any = [[loops_softmax(r)[0] for r in s] for s in z] if logits.ndim == 3 else [loops_softmax(r)[0] for r in z]
        y = labels.tolist()
        return loss.value(z, y), np.asarray(loss.gradient(z, p, y))
    p_array = vectorized_softmax(logits)[0]
    return loss.value(logits, labels), np.asarray(loss.gradient(logits, p_array, labels))


# --- a value by hand --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_classes_by_hand(backend: str) -> None:
    """K = 3, eps = 0.3, z = (2, 1, 0), y = 0: q = (0.8, 0.1, 0.1) and, with
    logsumexp(z) = log(e^2 + e + 1) = 2.4076059644443801, -log p = (0.40760596, 1.40760596, 2.40760596),
    so L = 0.8 * 0.40760596 + 0.1 * (1.40760596 + 2.40760596) = 0.70760596... and
    dL/dz = p - q = (0.66524096 - 0.8, 0.24472847 - 0.1, 0.09003057 - 0.1)."""
    loss = module_of(backend).CrossEntropy(label_smoothing=0.3)
    value, grad = evaluate(backend, loss, np.array([[2.0, 1.0, 0.0]]), np.array([0]))
    assert value == pytest.approx(0.7076059644443801, rel=1e-15)
    expected = [0.665240955774822 - 0.8, 0.2447284710547977 - 0.1, 0.09003057317038048 - 0.1]
    assert grad[0].tolist() == pytest.approx(expected, abs=1e-15)
    assert grad.sum() == pytest.approx(0.0, abs=1e-15)  # p and q both sum to 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_smoothing_one_trains_towards_the_uniform_distribution(backend: str) -> None:
    """eps = 1: q = 1/K whatever the label, so L = logsumexp(z) - mean(z), the label plays no part."""
    logits = np.array([[3.0, -1.0, 0.5, 2.0]])
    loss = module_of(backend).CrossEntropy(label_smoothing=1.0)
    values = [evaluate(backend, loss, logits, np.array([y]))[0] for y in range(4)]
    expected = math.log(sum(math.exp(z) for z in logits[0])) - logits[0].mean()
    assert values == pytest.approx([expected] * 4, rel=1e-15)


# --- eps = 0 is eq. 5.2-5.3 and 16.3-16.4, bit for bit ---------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5)])
def test_eps_zero_is_the_plain_cross_entropy_bit_for_bit(backend: str, shape: tuple[int, ...]) -> None:
    """eps = 0 computes (1/M) sum (logsumexp(z) - z[y]) and (p - one-hot(y)) / M with the same rounding
    as that formula written out here: the code of eq. 5.2-5.3 (16.3-16.4) runs as before."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 4.0, shape)
    labels = rng.integers(0, shape[-1], shape[:-1])
    if len(shape) == 3:
        labels[0, 1] = labels[2, 3] = -100  # ignored positions
    loss = module_of(backend).CrossEntropy(label_smoothing=0.0)
    value, grad = evaluate(backend, loss, logits, labels)
    rows, targets = logits.reshape(-1, shape[-1]), labels.ravel()
    kept = [n for n, y in enumerate(targets) if y != -100]
    expected_grad: Any
    if backend == "loops":  # Python floats summed in order, as the loops backend does
        from scratchnet.loops.activations import log_sum_exp

        total = 0.0
        for n in kept:
            total += log_sum_exp(rows[n].tolist()) - float(rows[n][targets[n]])
        p = [loops_softmax(row.tolist())[0] for row in rows]
        expected_grad = [
            [(p_k - (1.0 if k == targets[n] else 0.0)) / len(kept) for k, p_k in enumerate(p[n])]
            if n in kept
            else [0.0] * shape[-1]
            for n in range(len(rows))
        ]
    else:
        from scratchnet.vectorized.activations import log_sum_exp as lse

        total = float((lse(rows)[kept] - rows[kept, targets[kept]]).sum())
        expected_grad = vectorized_softmax(rows)[0]
        expected_grad[kept, targets[kept]] -= 1.0
        expected_grad[[n for n in range(len(rows)) if n not in kept]] = 0.0
        expected_grad /= len(kept)
    assert value == total / len(kept)
    assert np.array_equal(grad.reshape(-1, shape[-1]), np.asarray(expected_grad))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eps_zero_describes_and_trains_as_a_loss_without_the_option(backend: str) -> None:
    """A description with ``"label_smoothing": 0`` builds the network one without it builds: the same
    description back (nothing written), and bit-identical parameters after a few steps."""
    plain = mlp([4, 5, 3])
    zero = dict(plain, loss={"type": "CrossEntropy", "label_smoothing": 0})
    inputs = np.random.default_rng(1).normal(size=(6, 4))
    labels = [0, 2, 1, 1, 0, 2]
    results = []
    for description in (plain, zero):
        net = build_network(description, backend=backend, dtype="float64", seed=7)
        assert net.describe()["loss"] == {"type": "CrossEntropy"}
        optimizer = scratchnet.build_optimizer({"type": "Adam", "lr": 0.01}, backend)
        x = inputs.tolist() if backend == "loops" else inputs
        for _ in range(3):
            out = net.forward(x, training=True)
            net.loss(out, labels)
            net.backward()
            optimizer.step(net)
        results.append({name: np.asarray(value).tobytes() for name, value in net.params().items()})
    assert results[0] == results[1]


# --- the two backends, and finite differences -------------------------------------------------------


@st.composite
def scores(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Logits (N, K) or (N, T, K), their targets with some ignored, eps in [0, 1] and the ignore_index."""
    classes, batch = draw(st.integers(2, 7)), draw(st.integers(1, 5))
    shape = (batch, classes) if draw(st.booleans()) else (batch, draw(st.integers(1, 4)), classes)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, draw(st.sampled_from([0.1, 1.0, 10.0])), shape)
    ignore = draw(st.sampled_from([-100, -1]))
    labels = rng.integers(0, classes, shape[:-1])
    labels[rng.random(shape[:-1]) < draw(st.sampled_from([0.0, 0.3]))] = ignore
    eps = draw(st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(0.0, 1.0)))
    return logits, labels, eps, ignore


@settings(max_examples=150, deadline=None)
@given(case=scores())
def test_the_backends_agree_to_1e_12(case: tuple[np.ndarray, np.ndarray, float, int]) -> None:
    logits, labels, eps, ignore = case
    results = [evaluate(b, module_of(b).CrossEntropy(ignore, eps), logits, labels) for b in BACKENDS]
    (value_a, grad_a), (value_b, grad_b) = results
    assert abs(value_a - value_b) <= 1e-12 * max(1.0, abs(value_b))
    assert grad_a.shape == grad_b.shape == logits.shape
    assert np.abs(grad_a - grad_b).max() <= 1e-12 * max(1.0, np.abs(grad_b).max())
    counted = labels != ignore
    assert np.all(grad_b[~counted] == 0.0)  # an ignored row has no gradient
    if counted.any():
        assert np.allclose(grad_b[counted].sum(axis=-1), 0.0, atol=1e-15)  # p and q each sum to 1
    else:
        assert value_b == 0.0


@settings(max_examples=40, deadline=None)
@given(case=scores(), backend=st.sampled_from(BACKENDS))
def test_the_gradient_is_the_derivative_of_the_loss(
    case: tuple[np.ndarray, np.ndarray, float, int], backend: str
) -> None:
    """Central differences of the loss value, every logit, against dL/dz (eq. 5.8, 16.5)."""
    logits, labels, eps, ignore = case
    logits = logits / max(1.0, float(np.abs(logits).max()) / 3.0)  # a scale at which h = 1e-5 resolves
    loss = module_of(backend).CrossEntropy(ignore, eps)
    _, grad = evaluate(backend, loss, logits, labels)
    h = 1e-5
    numeric = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (evaluate(backend, loss, up, labels)[0] - evaluate(backend, loss, down, labels)[0]) / (2 * h)
    assert np.abs(numeric - grad).max() <= 1e-8


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_with_smoothing_passes_the_full_check(backend: str) -> None:
    """The cross-check and finite differences of scratchnet check, on a small LM with ignored targets."""
    from scratchnet.checks.crosscheck import full_check

    description = {
        "vocabulary": 5,
        "input_shape": [4],
        "layers": [
            {"type": "Embedding", "num_embeddings": 5, "embedding_dim": 3},
            {"type": "Dense", "in_features": 3, "out_features": 5},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy", "ignore_index": -1, "label_smoothing": 0.2},
    }
    report = full_check(description, batch=3, seed=backend == "loops", steps=2)
    assert report.passed


# --- the loss description ---------------------------------------------------------------------------


def test_builders_write_the_option_only_when_not_zero() -> None:
    assert mlp([4, 3])["loss"] == {"type": "CrossEntropy"}
    assert mlp([4, 3], label_smoothing=0.0)["loss"] == {"type": "CrossEntropy"}
    assert mlp([4, 3], label_smoothing=0.1)["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
    parsed = notation.parse("input(4), dense(3)", label_smoothing=0.25)
    assert parsed["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.25}
    assert notation.parse("input(4), dense(3)")["loss"] == {"type": "CrossEntropy"}
    for backend in BACKENDS:
        loss = module_of(backend).CrossEntropy(ignore_index=-1, label_smoothing=1)
        assert loss.describe() == {"type": "CrossEntropy", "ignore_index": -1, "label_smoothing": 1.0}
        assert module_of(backend).CrossEntropy(label_smoothing=0).describe() == {"type": "CrossEntropy"}


@pytest.mark.parametrize(
    "loss,message",
    [
        ({"type": "CrossEntropy", "label_smoothing": -0.1}, r"label_smoothing must be a number in \[0, 1\], got -0.1"),
        ({"type": "CrossEntropy", "label_smoothing": 1.5}, r"label_smoothing must be a number in \[0, 1\], got 1.5"),
        (
            {"type": "CrossEntropy", "label_smoothing": "0.1"},
            r"label_smoothing must be a number in \[0, 1\], got '0.1'",
        ),
        ({"type": "CrossEntropy", "label_smoothing": True}, r"label_smoothing must be a number in \[0, 1\], got True"),
        (
            {"type": "CrossEntropy", "label_smoothing": math.nan},
            r"label_smoothing must be a number in \[0, 1\], got nan",
        ),
        ({"type": "CrossEntropy", "label_smoothing": None}, r"label_smoothing must be a number in \[0, 1\], got None"),
        ({"type": "MeanSquaredError", "label_smoothing": 0.1}, "'label_smoothing' is an option of CrossEntropy only"),
        ({"type": "BinaryCrossEntropy", "ignore_index": -1}, "'ignore_index' is an option of CrossEntropy only"),
        ({"type": "CrossEntropy", "smoothing": 0.1}, r"'loss' \(CrossEntropy\) has unknown option 'smoothing'"),
        ({"type": "CrossEntropy", "ignore_index": 1.5}, "'ignore_index' is an integer option of CrossEntropy only"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(loss: dict[str, Any], message: str) -> None:
    description = dict(mlp([4, 3]), loss=loss)
    with pytest.raises(ConfigError, match=message) as caught:
        validate(description)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("eps", [-0.5, 2.0, math.inf, "0.1"])
def test_the_constructors_refuse_a_bad_eps(backend: str, eps: Any) -> None:
    with pytest.raises(ConfigError, match=r"label_smoothing must be a number in \[0, 1\]"):
        module_of(backend).CrossEntropy(label_smoothing=eps)
    with pytest.raises(ConfigError, match="option of CrossEntropy only"):
        mlp([4, 3], loss="mse", label_smoothing=0.1)


# --- the model file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_smoothed_model_saves_and_loads_with_its_option(tmp_path: Path, backend: str) -> None:
    net = build_network(mlp([4, 3], label_smoothing=0.1), backend=backend, seed=2)
    scratchnet.save(net, tmp_path / "m")
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["architecture"]["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
    assert document["version"] == 1  # an option older readers refuse needs no new version (section 5)
    for other in BACKENDS:
        loaded = scratchnet.load(tmp_path / "m", backend=other)
        assert loaded.describe()["loss"] == {"type": "CrossEntropy", "label_smoothing": 0.1}
        assert loaded.loss_function.label_smoothing == 0.1
    plain = build_network(mlp([4, 3]), backend=backend, seed=2)
    scratchnet.save(plain, tmp_path / "p")
    assert json.loads((tmp_path / "p.json").read_text())["architecture"]["loss"] == {"type": "CrossEntropy"}


def test_inspect_shows_the_option_and_a_file_with_a_bad_eps_is_refused_in_one_line(tmp_path: Path) -> None:
    from scratchnet.io.manifest import dump_document

    scratchnet.save(build_network(mlp([4, 3], label_smoothing=0.1), backend="vectorized", seed=2), tmp_path / "m")
    shown = run_scratchnet("inspect", str(tmp_path / "m.json"))
    assert shown.returncode == 0, shown.stderr
    assert "loss: CrossEntropy (label_smoothing 0.1), l2 0, l1 0" in shown.stdout
    document = json.loads((tmp_path / "m.json").read_text())
    document["architecture"]["loss"]["label_smoothing"] = 1.25
    (tmp_path / "m.json").write_bytes(dump_document(document))  # resealed: only the option is wrong
    with pytest.raises(ModelFormatError, match=r"label_smoothing must be a number in \[0, 1\], got 1.25"):
        scratchnet.load(tmp_path / "m")
    refused = run_scratchnet("inspect", str(tmp_path / "m.json"))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "m.json" in refused.stderr and "label_smoothing" in refused.stderr


def test_the_schema_takes_the_loss_options() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "spec" / "model-format.schema.json").read_text())
    loss_schema = dict(schema["$defs"]["architecture"]["properties"]["loss"], **{"$defs": schema["$defs"]})
    validator = jsonschema.Draft202012Validator(loss_schema)
    good = [
        {"type": "CrossEntropy"},
        {"type": "CrossEntropy", "label_smoothing": 0.1},
        {"type": "CrossEntropy", "label_smoothing": 1, "ignore_index": -1},
        {"type": "MeanSquaredError"},
    ]
    bad = [
        {"type": "CrossEntropy", "label_smoothing": 1.5},
        {"type": "CrossEntropy", "label_smoothing": -0.1},
        {"type": "CrossEntropy", "label_smoothing": "0.1"},
        {"type": "MeanSquaredError", "label_smoothing": 0.1},
        {"type": "BinaryCrossEntropy", "ignore_index": -1},
        {"type": "CrossEntropy", "smoothing": 0.1},
    ]
    assert [validator.is_valid(loss) for loss in good] == [True] * len(good)
    assert [validator.is_valid(loss) for loss in bad] == [False] * len(bad)


# --- the command line -------------------------------------------------------------------------------


def test_check_takes_label_smoothing() -> None:
    ok = run_scratchnet("check", "--layers", "4,3,3", "--label-smoothing", "0.1", "--batch", "3")
    assert ok.returncode == 0, ok.stderr
    assert "passed" in ok.stdout
    wrong_loss = run_scratchnet("check", "--layers", "4,3,3", "--loss", "mse", "--label-smoothing", "0.1")
    assert wrong_loss.returncode == 1 and wrong_loss.stdout == ""
    assert wrong_loss.stderr.count("\n") == 1 and "option of CrossEntropy only" in wrong_loss.stderr
    too_big = run_scratchnet("check", "--layers", "4,3,3", "--label-smoothing", "1.5")
    assert too_big.returncode == 2 and "Traceback" not in too_big.stderr
    assert "--label-smoothing: expected a number in [0, 1], got '1.5'" in too_big.stderr


# --- the teaching tools -----------------------------------------------------------------------------


def test_explain_shows_the_smoothed_target_and_its_equations() -> None:
    """explain and explain --backward name eq. 5.7/5.8 and print p - q, q = (1 - eps) one-hot + eps/K."""
    from scratchnet.teaching.explain import explain
    from scratchnet.teaching.explain_backward import explain_backward
    from scratchnet.teaching.explain_text import format_explanation

    net = build_network(mlp([4, 3, 3], label_smoothing=0.3), backend="loops", seed=1)
    x = [0.5, -1.0, 0.25, 2.0]
    text = format_explanation(explain(net, x, 2, layer=2, neuron=1))
    backward = explain_backward(net, x, 2, weight="2.bias[1]")
    p = net.forward([x])[0]
    for output in (text, backward):
        found = re.search(r"p\[1\] - q\[1\] = (\S+) - (\S+)\s+(?:= )?(\S+)$", output, re.M)
        assert found is not None, output
        p_1, q_1, delta = (float(found.group(k)) for k in (1, 2, 3))
        assert p_1 == pytest.approx(p[1], rel=1e-5) and q_1 == 0.1  # 0.3 / 3
        assert delta == pytest.approx(p[1] - 0.1, rel=1e-5)
    assert "(5.7) CrossEntropy.value" in text and "label smoothing eps = 0.3" in text
    assert "(5.8) CrossEntropy.gradient (one sample, B = 1)" in backward
    loss_line = next(line for line in text.splitlines() if line.startswith("Loss for the true label"))
    z = net.loss_inputs[0]
    lse = math.log(sum(math.exp(v) for v in z))
    expected = 0.7 * (lse - z[2]) + 0.1 * sum(lse - v for v in z)
    assert float(loss_line.split()[-1]) == pytest.approx(expected, rel=1e-5)
