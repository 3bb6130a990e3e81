"""Sampling (spec/math.md, section 24): temperature, top-k and top-p by hand, the seeded draw, the window
that slides past the context, text from a prefix that stops at the boundary token and streams, and both
backends sampling the identical string from the same weights and seed."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from subprocesses import run_without
from test_decoding import gpt_stack

from scratchnet.builders import build_network
from scratchnet.core import rng
from scratchnet.core.decoding import Decoder
from scratchnet.core.errors import ConfigError, DatasetError, ScratchnetError
from scratchnet.core.sampling import Policy, draw, generate, sample_text, uniform
from scratchnet.data.text import Vocabulary

LOGITS = [math.log(1.0), math.log(2.0), math.log(3.0), math.log(4.0)]  # probabilities 0.1 0.2 0.3 0.4


class Stub:
    """A model of ``length`` positions whose next-token logits are ``scores(tokens in its cache)``."""

    def __init__(self, length: int, scores: Callable[[tuple[int, ...]], list[float]]) -> None:
        self.length, self.scores = length, scores
        self.cache: list[int] = []
        self.logits: list[list[float]] = []
        self.steps = 0

    def reset(self) -> None:
        self.cache = []

    def step(self, tokens: Sequence[int]) -> list[list[float]]:
        assert len(tokens) == 1 and len(self.cache) < self.length
        self.cache.append(tokens[0])
        self.steps += 1
        self.logits = [self.scores(tuple(self.cache))]
        return self.logits


def one_hot(token: int, size: int = 10) -> list[float]:
    return [10.0 if i == token else 0.0 for i in range(size)]


def test_temperature_divides_the_logits() -> None:
    assert Policy().probabilities(LOGITS) == pytest.approx([0.1, 0.2, 0.3, 0.4], rel=1e-12)
    # T = 1/2 squares each probability, T = 2 takes its square root, before normalizing (eq. 24.4)
    assert Policy(0.5).probabilities(LOGITS) == pytest.approx([1 / 30, 4 / 30, 9 / 30, 16 / 30], rel=1e-12)
    roots = [1.0, math.sqrt(2.0), math.sqrt(3.0), 2.0]
    assert Policy(2.0).probabilities(LOGITS) == pytest.approx([r / sum(roots) for r in roots], rel=1e-12)
    assert Policy(0.0).probabilities(LOGITS) == [0.0, 0.0, 0.0, 1.0]  # greedy
    assert Policy(0.0).probabilities([1.0, 3.0, 3.0]) == [0.0, 1.0, 0.0]  # ties: the first


def test_top_k_keeps_the_k_likeliest_and_ties_with_the_kth() -> None:
    assert Policy(top_k=2).probabilities(LOGITS) == pytest.approx([0.0, 0.0, 3 / 7, 4 / 7], rel=1e-12)
    assert Policy(top_k=1).probabilities(LOGITS) == pytest.approx([0.0, 0.0, 0.0, 1.0])
    assert Policy(top_k=9).probabilities(LOGITS) == pytest.approx([0.1, 0.2, 0.3, 0.4], rel=1e-12)
    tied = [math.log(1.0), math.log(3.0), math.log(3.0), math.log(4.0)]
    assert Policy(top_k=2).probabilities(tied) == pytest.approx([0.0, 0.3, 0.3, 0.4], rel=1e-12)


def test_top_p_keeps_the_smallest_likeliest_set_that_reaches_p() -> None:
    assert Policy(top_p=0.5).probabilities(LOGITS) == pytest.approx([0.0, 0.0, 3 / 7, 4 / 7], rel=1e-12)  # 0.4 + 0.3
    assert Policy(top_p=0.35).probabilities(LOGITS) == pytest.approx([0.0, 0.0, 0.0, 1.0])  # 0.4 reaches it
    assert Policy(top_p=0.8).probabilities(LOGITS) == pytest.approx([0.0, 2 / 9, 3 / 9, 4 / 9], rel=1e-12)
    assert Policy(top_p=1.0).probabilities(LOGITS) == pytest.approx([0.1, 0.2, 0.3, 0.4], rel=1e-12)
    # top-p reads the distribution top-k left, renormalized: 4/7 = 0.571 reaches 0.55 alone (of the
    # original distribution it would take 0.4 + 0.3)
    assert Policy(top_k=2, top_p=0.55).probabilities(LOGITS) == pytest.approx([0.0, 0.0, 0.0, 1.0])
    # after the temperature: at T = 1/2 the probabilities are 1, 4, 9, 16 over 30; 16/30 < 0.6 <= 25/30
    assert Policy(0.5, top_p=0.6).probabilities(LOGITS) == pytest.approx([0.0, 0.0, 9 / 25, 16 / 25], rel=1e-12)


def test_the_draw_takes_the_first_token_whose_cumulative_weight_exceeds_u() -> None:
    weights = [0.0, 1.0, 0.0, 3.0]  # cumulative 0, 1, 1, 4
    assert [draw(weights, u) for u in (0.0, 0.2, 0.2499, 0.25, 0.9, 1.0 - 2**-53)] == [1, 1, 1, 3, 3, 3]
    assert draw([0.0, 0.0, 2.0, 0.0], 0.999) == 2


def test_bad_settings_are_one_line_errors() -> None:
    for settings in ({"temperature": -1.0}, {"temperature": math.inf}, {"top_k": 0}, {"top_k": 2.5}):
        with pytest.raises(ConfigError):
            Policy(**settings)
    for top_p in (0.0, 1.5, math.nan, True):
        with pytest.raises(ConfigError, match="top-p"):
            Policy(top_p=top_p)
    model = Stub(4, lambda cache: one_hot(0))
    for settings in ({"length": -1}, {"length": 3, "keep": 0}, {"length": 3, "keep": 5}, {"length": 3, "seed": -1}):
        with pytest.raises(ConfigError) as error:
            generate(model, [0], **settings)  # type: ignore[arg-type]
        assert "\n" not in str(error.value)


def test_scores_that_are_not_finite_are_a_one_line_error() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ScratchnetError, match=f"score of token 2 is {bad}"):
            Policy().weights([0.0, 1.0, bad])


def test_draws_follow_the_distribution_and_the_seed() -> None:
    model = Stub(8, lambda cache: LOGITS)
    tokens = list(generate(model, [0], length=8000, seed=3))
    counts = Counter(tokens)
    assert [counts[i] / 8000 for i in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.02)
    again = list(generate(model, [0], length=8000, seed=3))
    assert again == tokens
    assert list(generate(model, [0], length=50, seed=4)) != tokens[:50]
    assert list(generate(model, [0], length=50, seed=3, sample=1)) != tokens[:50]
    # the i-th draw of sample j is the uniform of index i of stream j (eq. 10.2): counter-based
    assert [uniform(3, 1, i) for i in range(5)] == rng.uniforms(3, 1, 5)


def test_the_window_slides_when_the_context_is_full() -> None:
    """Greedy, the next token is (sum of the tokens in the cache + 1) mod 10, worked by hand: context 3."""
    model = Stub(3, lambda cache: one_hot((sum(cache) + 1) % 10))
    # keep 2: caches [0], [0 1], [0 1 2], then [2 4] (full: the last 2 again), [2 4 7], [7 4]
    assert list(generate(model, [0], length=6, policy=Policy(0.0), keep=2)) == [1, 2, 4, 7, 4, 2]
    # keep 3, nanoGPT's crop: [0], [0 1], [0 1 2], then always the last 3: [1 2 4], [2 4 8], [4 8 5]
    assert list(generate(model, [0], length=6, policy=Policy(0.0), keep=3)) == [1, 2, 4, 8, 5, 8]
    # a start longer than the context: its last 3 tokens, [5 6 7] -> 9
    assert list(generate(model, [4, 5, 6, 7], length=1, policy=Policy(0.0))) == [9]


def test_documents_start_at_the_boundary_and_stop_there_and_stream() -> None:
    vocabulary = Vocabulary("abc", boundary=True)  # a b c = 0 1 2, the boundary 3
    after = {(3, 0): 1, (3, 0, 1): 2, (3, 0, 1, 2): 3}  # "ab" -> "c", then the boundary

    model = Stub(8, lambda cache: one_hot(after.get(cache, 0), 4))
    pieces = sample_text(model, vocabulary, prefix="ab", length=10, policy=Policy(0.0))
    assert model.steps == 0  # nothing is computed before the first character is asked for
    assert [next(pieces), next(pieces)] == ["a", "b"]
    assert next(pieces) == "c"
    assert model.steps == 3  # the boundary and the prefix: "c" came before anything after it
    assert list(pieces) == []  # the boundary ends the sample, and is not part of it
    model = Stub(8, lambda cache: one_hot(1, 4))  # never the boundary: the length ends it
    assert "".join(sample_text(model, vocabulary, prefix="c", length=4, policy=Policy(0.0))) == "cbbbb"


def test_running_text_starts_from_a_newline_without_a_prefix() -> None:
    model = Stub(8, lambda cache: one_hot(cache[0], 3))  # repeats the first token
    assert "".join(sample_text(model, Vocabulary("\nab"), length=3, policy=Policy(0.0))) == "\n\n\n"
    assert "".join(sample_text(model, Vocabulary("\nab"), prefix="b", length=2, policy=Policy(0.0))) == "bbb"
    with pytest.raises(ConfigError, match="give a prefix"):
        sample_text(model, Vocabulary("ab"), length=3)


def test_a_prefix_outside_the_vocabulary_is_a_one_line_error_at_once() -> None:
    with pytest.raises(DatasetError, match="the prefix line 1: the character 'z'") as error:
        sample_text(Stub(8, lambda cache: one_hot(0, 4)), Vocabulary("abc", boundary=True), prefix="az", length=3)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("boundary", [False, True])
def test_both_backends_sample_the_identical_string(boundary: bool) -> None:
    """From the same weights and seed, through the cache and past the context (6 positions)."""
    vocabulary = Vocabulary("abcdef", boundary=True) if boundary else Vocabulary("\nabcdef")
    description = gpt_stack(vocabulary=7, length=6)
    decoders = [Decoder(build_network(description, backend=backend, seed=21)) for backend in ("loops", "vectorized")]
    policies = [Policy(), Policy(0.7, top_k=4), Policy(1.3, top_p=0.8), Policy(0.0)]
    samples = set()
    for seed, policy in enumerate(policies):
        texts = [
            "".join(sample_text(d, vocabulary, prefix="ab", length=30, policy=policy, seed=seed)) for d in decoders
        ]
        assert texts[0] == texts[1]
        assert texts[0].startswith("ab")
        samples.add(texts[0])
    assert len(samples) == len(policies)  # the settings and seeds matter


SAMPLE_WITHOUT_NUMPY = """
    import sys

    from scratchnet.builders import build_network
    from scratchnet.core.decoding import Decoder
    from scratchnet.core.sampling import Policy, sample_text
    from scratchnet.data.text import Vocabulary

    vocabulary = Vocabulary("abc", boundary=True)
    layers = [
        {"type": "Embedding", "num_embeddings": 4, "embedding_dim": 4},
        {"type": "PositionEmbedding", "max_length": 5, "dim": 4},
        {"type": "RMSNorm", "dim": 4, "affine": False},
        {"type": "CausalSelfAttention", "dim": 4, "heads": 2, "bias": False},
        {"type": "Dense", "in_features": 4, "out_features": 4, "init": "he_normal"},
        {"type": "Softmax"},
    ]
    description = {"vocabulary": 4, "input_shape": [5], "layers": layers, "loss": {"type": "CrossEntropy"}}
    decoder = Decoder(build_network(description, backend="loops", seed=1))
    text = "".join(sample_text(decoder, vocabulary, prefix="a", length=12, policy=Policy(top_p=0.9), seed=2))
    assert "numpy" not in sys.modules
    print("sampled without numpy", repr(text))
    """


def test_the_loops_backend_samples_without_numpy() -> None:
    result = run_without("numpy", SAMPLE_WITHOUT_NUMPY)
    assert result.returncode == 0, result.stderr
    assert "sampled without numpy 'a" in result.stdout
