"""Sequence layers (spec/math.md, sections 16-20): the loops reference and the vectorized backend
agree (float64, relative 1e-12) on random transformer-like stacks, for the forward pass, the loss
with ignored positions, every gradient and the parameters after three steps of every optimizer;
both agree with central finite differences; bad token input is a one-line error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import transformer_architectures
from test_crosscheck import failures, record

from scratchnet import loops, vectorized
from scratchnet.builders import build_network, build_optimizer
from scratchnet.checks.crosscheck import CROSS_TOLERANCE, cross_check, full_check, random_tokens
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError, LabelError, ScratchnetError, ShapeError

BACKENDS = ("loops", "vectorized")


# Every optimizer, at the step sizes of a GPT's training (nanoGPT's Adam runs at 1e-3 to 6e-4): the
# shared OPTIMIZER_SPECS' SGD step of 0.1 with momentum 0.9 moves an N(0, 0.02) embedding row by
# hundreds of times its size, where the norm after it has a Hessian of 1 / rms^2 ~ 2500, so that three
# steps multiply the backends' 1e-16 roundings by 1e5: chaos, not a difference between the backends.
TRANSFORMER_OPTIMIZERS = (
    {"type": "sgd", "lr": 0.01, "momentum": 0.9},
    {"type": "adagrad", "lr": 0.01, "eps": 1e-3},
    {"type": "rmsprop", "lr": 0.001, "centered": True, "eps": 1e-3},
    {"type": "adam", "lr": 0.001, "eps": 1e-3},
    {"type": "adamw", "lr": 0.001, "weight_decay": 0.1, "eps": 1e-3},
)


@settings(max_examples=60, deadline=None)
@given(
    description=transformer_architectures(),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    spec=st.sampled_from(TRANSFORMER_OPTIMIZERS),
)
def test_backends_agree_on_random_transformer_stacks_with_every_optimizer(
    description: dict[str, Any], batch: int, seed: int, spec: dict[str, Any]
) -> None:
    comparisons = cross_check(
        description,
        batch=batch,
        seed=seed,
        steps=3,
        make_optimizers=lambda: (build_optimizer(spec, "loops"), build_optimizer(spec, "vectorized")),
    )
    record(comparisons)
    names = {c.name for c in comparisons}
    assert {"forward", "loss", "grad 0.weight"} <= names
    assert any(name.endswith("in_proj_weight") for name in names)
    assert all(c.passed for c in comparisons), failures(comparisons)
    assert max(c.max_rel for c in comparisons) <= CROSS_TOLERANCE


STACKS = [
    # (norm, its options, gelu, attention heads, dropout)
    ("LayerNorm", {}, "none", 2, 0.0),
    ("RMSNorm", {}, "tanh", 1, 0.0),
    ("LayerNorm", {"affine": False, "bias": False}, "tanh", 4, 0.0),
    ("RMSNorm", {"affine": False}, "none", 2, 0.0),
]


def stack(norm: str, options: dict[str, Any], approximate: str, heads: int, dropout: float) -> dict[str, Any]:
    """A stack whose activations are of order 1 (He and Glorot init), so that central differences
    with a step of 1e-5 are accurate."""
    dim, vocabulary, length = 4, 5, 4
    return {
        "vocabulary": vocabulary,
        "input_shape": [length],
        "layers": [
            {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim, "init": "he_normal"},
            {"type": "PositionEmbedding", "max_length": length, "dim": dim, "init": "he_normal"},
            {"type": norm, "dim": dim, **options},
            {"type": "CausalSelfAttention", "dim": dim, "heads": heads, "dropout": dropout, "init": "glorot_uniform"},
            {"type": "Dense", "in_features": dim, "out_features": 6, "init": "glorot_uniform"},
            {"type": "GELU", "approximate": approximate},
            {"type": "Dense", "in_features": 6, "out_features": vocabulary, "init": "glorot_uniform"},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


@pytest.mark.parametrize("layers", STACKS)
def test_finite_differences_agree_with_backprop_in_both_backends(layers: tuple[Any, ...]) -> None:
    report = full_check(stack(*layers), batch=3, seed=4, max_per_tensor=0)
    assert set(report.gradients) == set(BACKENDS)
    assert report.passed, [c for group in report.gradients.values() for c in group if not c.passed]


def test_the_finite_difference_check_catches_a_missing_attention_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: drop the 1/sqrt(d) from the query gradient of the vectorized backend."""
    from scratchnet.vectorized import attention

    original = attention.CausalSelfAttention.backward

    def buggy(self: Any, grad_outputs: Any, need_input_grad: bool = True) -> Any:
        result = original(self, grad_outputs, need_input_grad)
        self.grad_in_proj_weight[: self.dim] *= 1.5
        return result

    monkeypatch.setattr(attention.CausalSelfAttention, "backward", buggy)
    report = full_check(stack(*STACKS[0]), batch=2, seed=1, max_per_tensor=4, gradient_backends=("vectorized",))
    failed = {c.name for c in report.gradients["vectorized"] + report.cross if not c.passed}
    assert "grad 3.in_proj_weight" in failed


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_loss_averages_over_the_counted_positions_only(backend: str) -> None:
    """The loss is the mean of -log p over the counted positions, and its gradient with respect to
    the logits is (p - one-hot) / 2 there and 0 at the ignored ones (eq. 16.3, 16.4)."""
    import math

    net: Any = build_network(stack(*STACKS[0]), backend=backend, seed=2)
    ids, targets = [[1, 2, 3, 4]], [[0, -100, 3, -100]]
    out = net.forward(ids)
    loss = net.loss(out, targets)
    p = np.asarray(out)[0]
    assert loss == pytest.approx(-(math.log(p[0][0]) + math.log(p[2][3])) / 2, rel=1e-12)
    grad = np.asarray(net.loss_function.gradient(net.loss_inputs, out, net.labels))[0]
    expected = np.zeros_like(p)
    expected[0], expected[2] = p[0] / 2, p[2] / 2
    expected[0][0] -= 0.5
    expected[2][3] -= 0.5
    assert np.allclose(grad, expected, rtol=0, atol=1e-16)
    all_ignored = net.forward(ids)
    assert net.loss(all_ignored, [[-100, -100, -100, -100]]) == 0.0  # PyTorch would give NaN


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_on_a_sequence_is_dense_on_its_rows_bit_for_bit(backend: str) -> None:
    """nn.Linear on the last axis: the (N, T, C) path is the 2-D path on the N * T rows (eq. 16.1)."""
    module: Any = loops if backend == "loops" else vectorized
    layer = module.Dense(3, 2, seed=5)
    sequences = np.random.default_rng(0).normal(size=(2, 4, 3))
    rows = sequences.reshape(8, 3)

    def as_input(value: Any) -> Any:
        return value.tolist() if backend == "loops" else value

    out_rows = np.asarray(layer.forward(as_input(rows)))
    grad_rows = np.asarray(layer.backward(as_input(np.ones((8, 2)))))
    weight_grad = np.array(layer.grads()["weight"])
    out = np.asarray(layer.forward(as_input(sequences)))
    grad = np.asarray(layer.backward(as_input(np.ones((2, 4, 2)))))
    assert np.array_equal(out.reshape(8, 2), out_rows) and np.array_equal(grad.reshape(8, 3), grad_rows)
    assert np.array_equal(np.array(layer.grads()["weight"]), weight_grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_token_input_is_a_one_line_error(backend: str) -> None:
    net = build_network(stack(*STACKS[0]), backend=backend)
    cases: list[tuple[Any, type[ScratchnetError], str]] = [
        ([[0, 5, 1]], LabelError, "token id 5 (sample 0, position 1) is outside the vocabulary 0..4"),
        ([[0, -1]], LabelError, "token id -1 (sample 0, position 1) is outside the vocabulary 0..4"),
        ([[0, 1.5]], LabelError, "is not an integer id"),
        ([[0, 1, 2, 3, 4]], ShapeError, "sequences of 5 tokens, but the network reads at most 4"),
        ([[0, 1], [2]], ShapeError, "one length|not a rectangular batch"),
    ]
    for ids, error, message in cases:
        pattern = message if "|" in message else message.replace("(", r"\(").replace(")", r"\)")
        with pytest.raises(error, match=pattern) as caught:
            net.forward(ids)
        assert "\n" not in str(caught.value)
    out = net.forward([[0, 1]])
    with pytest.raises(LabelError, match="target 7 .* is outside 0..4 and is not the ignore_index -100"):
        net.loss(out, [[0, 7]])
    layer: Any = (loops if backend == "loops" else vectorized).PositionEmbedding(3, 2)
    with pytest.raises(ShapeError, match="a sequence of 4 positions, but the layer holds 3"):
        layer.forward(np.zeros((1, 4, 2)) if backend == "vectorized" else [[[0.0, 0.0]] * 4])
    embedding: Any = (loops if backend == "loops" else vectorized).Embedding(3, 2)
    with pytest.raises(LabelError, match="token id 3"):
        embedding.forward([[3]])


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda d: d["layers"][3].update(heads=3), "splits 4 values into 3 heads, which does not divide them"),
        (lambda d: d.update(vocabulary=6), "holds 5 ids, but the vocabulary has 6"),
        (lambda d: d.pop("vocabulary"), "reads token ids: it must be the network with a 'vocabulary'"),
        (lambda d: d["layers"][1].update(max_length=3), "holds 3 positions, but the sequences are 4 long"),
        (lambda d: d["layers"][2].update(dim=5), "normalizes the last axis of 5 values"),
        (lambda d: d["layers"][2].update(affine=1), "option 'affine' must be true or false, got 1"),
        (lambda d: d["layers"][5].update(approximate="erf"), "approximate must be 'none' or 'tanh'"),
        (lambda d: d.update(loss={"type": "MeanSquaredError"}), "is trained with CrossEntropy, not MeanSquaredError"),
        (lambda d: d["layers"].insert(2, dict(d["layers"][0])), "it must be the first layer of a network"),
    ],
)
def test_architectures_that_do_not_fit_are_refused_before_anything_is_built(change: Any, message: str) -> None:
    description = stack(*STACKS[0])
    plan(description)
    change(description)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(description)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_token_network_describes_and_rebuilds_itself(backend: str) -> None:
    description = stack(*STACKS[1])
    description["loss"] = {"type": "CrossEntropy", "ignore_index": -1}
    net = build_network(description, backend=backend, seed=9)
    described = net.describe()
    assert described["vocabulary"] == 5 and described["input_shape"] == [4]
    assert described["loss"] == {"type": "CrossEntropy", "ignore_index": -1}
    assert plan(described).options == plan(description).options  # every option, defaults filled in
    rebuilt = build_network(net.describe(), backend=backend, seed=9)
    ids, targets = random_tokens(4, 5, 5, 2, seed=3, ignore_index=-1)
    assert np.array_equal(np.asarray(rebuilt.forward(ids)), np.asarray(net.forward(ids)))
    assert np.asarray(net.predict(ids)).shape == (2, 4)
    assert net.loss(net.forward(ids), targets) > 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_records_its_weights_causally(backend: str) -> None:
    """Each row of the recorded weights sums to 1 over s <= t and is 0 above the diagonal."""
    net = build_network(stack(*STACKS[0]), backend=backend, seed=1)
    net.forward([[0, 1, 2, 3], [4, 3, 2, 1]])
    weights = np.asarray(net.layers[3].attention_weights)
    assert weights.shape == (2, 2, 4, 4)
    assert np.allclose(weights.sum(axis=-1), 1.0, rtol=0, atol=1e-15)
    assert np.all(np.triu(np.ones((4, 4)), k=1) * weights == 0.0)


NO_NUMPY = """
    from scratchnet.builders import build_network
    from scratchnet.loops import Adam

    description = {
        "vocabulary": 3,
        "input_shape": [3],
        "layers": [
            {"type": "Embedding", "num_embeddings": 3, "embedding_dim": 4},
            {"type": "PositionEmbedding", "max_length": 3, "dim": 4},
            {"type": "RMSNorm", "dim": 4},
            {"type": "CausalSelfAttention", "dim": 4, "heads": 2},
            {"type": "LayerNorm", "dim": 4},
            {"type": "Dense", "in_features": 4, "out_features": 8, "init": "he_normal"},
            {"type": "GELU"},
            {"type": "Dense", "in_features": 8, "out_features": 3, "init": "he_normal"},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }
    net = build_network(description, backend="loops", seed=1)
    ids, targets = [[0, 1, 2], [2, 1, 0]], [[1, 2, -100], [1, 0, -100]]
    optimizer = Adam(lr=0.05)
    first = net.loss(net.forward(ids), targets)
    for _ in range(30):
        net.loss(net.forward(ids, training=True), targets)
        net.backward()
        optimizer.step(net)
    last = net.loss(net.forward(ids), targets)
    assert last < first / 2, (first, last)
    assert "numpy" not in sys.modules
    print("a token network trained without numpy", first, last)
    """


def test_the_loops_backend_trains_a_token_network_without_numpy() -> None:
    from subprocesses import run_without

    result = run_without("numpy", NO_NUMPY)
    assert result.returncode == 0, result.stderr
    assert "trained without numpy" in result.stdout
