"""The compact notation of token networks and containers: ``input(tokens V x T)``, an Embedding's
vocabulary from the input, ``positions`` and ``attention``, ``residual(...)`` nesting (written out
by hand below), the way back, narrowing inside containers, and ``scratchnet check --network`` on a
GPT and on a residual CNN, narrowed when it is big."""

from __future__ import annotations

import pytest
from subprocesses import run_scratchnet

from scratchnet.checks.narrow import narrowed_network
from scratchnet.core import notation
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError

MICROGPT = (
    "input(tokens 27 x 16), embedding(16), positions(16), residual(rmsnorm, attention(4)), "
    "residual(rmsnorm, dense(64), relu, dense(16)), dense(27)"
)


def test_a_microgpt_like_network_parses_to_its_layers() -> None:
    architecture = notation.parse(MICROGPT)
    assert architecture == {
        "vocabulary": 27,
        "input_shape": [16],
        "layers": [
            {"type": "Embedding", "num_embeddings": 27, "embedding_dim": 16},
            {"type": "PositionEmbedding", "dim": 16, "max_length": 16},
            {
                "type": "Residual",
                "layers": [{"type": "RMSNorm", "dim": 16}, {"type": "CausalSelfAttention", "dim": 16, "heads": 4}],
            },
            {
                "type": "Residual",
                "layers": [
                    {"type": "RMSNorm", "dim": 16},
                    {"type": "Dense", "in_features": 16, "out_features": 64},
                    {"type": "ReLU"},
                    {"type": "Dense", "in_features": 64, "out_features": 16},
                ],
            },
            {"type": "Dense", "in_features": 16, "out_features": 27},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
        "l2": 0.0,
        "l1": 0.0,
    }
    # By hand: 27*16 + 16*16 + (16 + 3*16*16 + 3*16 + 16*16 + 16) + (16 + 16*64 + 64 + 64*16 + 16) + 16*27 + 27
    assert plan(architecture).parameter_count == 432 + 256 + 1104 + 2144 + 459


def test_notation_writes_what_parse_reads_with_nesting() -> None:
    text = (
        "input(tokens 5 x 6), embedding(4, init=he_normal), positions(8), "
        "residual(layernorm(bias=false), attention(2, dropout=0.1)), "
        "residual(residual(gelu(tanh), dense(4)), dropout(0.2)), layernorm, dense(5)"
    )
    architecture = notation.parse(text)
    assert architecture["layers"][3] == {
        "type": "Residual",
        "layers": [
            {
                "type": "Residual",
                "layers": [
                    {"type": "GELU", "approximate": "tanh"},
                    {"type": "Dense", "in_features": 4, "out_features": 4},
                ],
            },
            {"type": "Dropout", "rate": 0.2},
        ],
    }
    written = notation.notation(architecture)
    assert written == (
        "input(tokens 5 x 6), embedding(4, init=he_normal), positions(8), "
        "residual(layernorm(bias=false), attention(2, dropout=0.1)), "
        "residual(residual(gelu(tanh), dense(4)), dropout(0.2)), layernorm, dense(5), softmax"
    )
    assert notation.parse(written) == architecture
    assert notation.outline(architecture) == written  # a summary line names a token network by its notation


def test_a_residual_cnn_in_the_notation() -> None:
    text = (
        "input(1x8x8), conv(4, 3, padding=1), residual(conv(4, 3, padding=1), batchnorm, relu), "
        "maxpool(2), flatten, dense(3)"
    )
    layers = notation.parse(text)["layers"]
    assert layers[1] == {
        "type": "Residual",
        "layers": [
            {"type": "Conv2D", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"type": "BatchNorm", "num_features": 4},
            {"type": "ReLU"},
        ],
    }
    assert layers[4] == {"type": "Dense", "in_features": 64, "out_features": 3}  # 4 channels of 4x4


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "input(tokens 5 x 4), embedding(4), residual(rmsnorm, dense(5))",
            "item 3 'residual(rmsnorm, dense(5))': adds its input (4, 4) to its layers' output (4, 5): "
            "they must have the same shape",
        ),
        (
            "input(tokens 5 x 4), embedding(4), residual(rmsnorm, dense(7, 3))",
            "item 3.2 'dense(7, 3)': Dense takes out_features",
        ),
        (
            "input(tokens 5 x 4), embedding(4), residual(residual(attention(3)))",
            "item 3.1.1 'attention(3)': splits 4 values into 3 heads, which does not divide them",
        ),
        ("input(4), embedding(3)", "item 2 'embedding(3)': reads token ids: start with input(tokens V x T)"),
        ("input(tokens 5 x 4), embedding(4, num_embeddings=3)", "num_embeddings comes from the input"),
        ("input(tokens 5 x 4), embedding(4), residual()", "item 3 'residual()': Residual holds at least one layer"),
        (
            "input(tokens 5 x 4), embedding(4), residual(input(4))",
            "item 3.1 'input(4)': input(C, H, W) or input(CxHxW) comes first",
        ),
        ("input(tokens 0 x 4), embedding(4)", "the vocabulary and the length must be at least 1"),
        (
            "input(1x6x6), residual(conv(2, 3))",
            "item 2 'residual(conv(2, 3))': adds its input (1, 6, 6) to its layers' output (2, 4, 4)",
        ),
    ],
)
def test_a_wrong_item_is_one_line_naming_it_by_its_place(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        notation.parse(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_narrowed_caps_widths_inside_containers_and_shortens_token_sequences() -> None:
    assert narrowed_network(MICROGPT, 4, 8) == (
        "input(tokens 27 x 8), embedding(4), positions(16), residual(rmsnorm, attention(4)), "
        "residual(rmsnorm, dense(4), relu, dense(4)), dense(4)"
    )
    narrowed = notation.parse(narrowed_network(MICROGPT, 4, 8))
    assert plan(narrowed).input_shape == (8,) and plan(narrowed).vocabulary == 27


def test_check_network_cross_checks_a_gpt_and_a_residual_cnn() -> None:
    gpt = run_scratchnet(
        "check",
        "--network",
        "input(tokens 5 x 3), embedding(4), positions(3), "
        "residual(layernorm, attention(2)), residual(layernorm, dense(8), gelu, dense(4)), "
        "layernorm, dense(5)",
        timeout=300,
    )
    assert gpt.returncode == 0, gpt.stdout + gpt.stderr
    for name in ("grad 0.weight", "grad 2.1.in_proj_weight", "grad 3.3.bias", "after 3 steps 2.0.weight"):
        assert name in gpt.stdout
    assert "passed in" in gpt.stdout and "FAIL" not in gpt.stdout
    cnn = run_scratchnet(
        "check",
        "--network",
        "input(1x6x6), conv(3, 3, padding=1), "
        "residual(conv(3, 3, padding=1), batchnorm, relu), maxpool(2), flatten, dense(3)",
        timeout=300,
    )
    assert cnn.returncode == 0, cnn.stdout + cnn.stderr
    assert "grad 1.1.weight" in cnn.stdout and "FAIL" not in cnn.stdout
    bad = run_scratchnet("check", "--network", "input(tokens 5 x 3), embedding(4), residual(dense(3))")
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "adds its input (3, 4) to its layers' output (3, 3)" in bad.stderr


def test_check_network_narrows_a_big_gpt() -> None:
    block = "residual(layernorm, attention(8)), residual(layernorm, dense(1024), gelu, dense(256))"
    text = f"input(tokens 65 x 64), embedding(256), positions(64), {block}, {block}, layernorm, dense(65)"
    assert plan(notation.parse(text)).parameter_count > 250_000
    result = run_scratchnet("check", "--network", text, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    # 8 heads do not divide 4 values: the copy is 8 wide; sequences of 8 tokens
    assert first.startswith(
        "checking input(tokens 65 x 8), embedding(8, init=he_normal), positions(64, init=he_normal)"
    )
    assert "residual(layernorm, dense(8), gelu, dense(8))" in first and "narrowed" in first
    assert "grad 3.1.weight" in result.stdout and "FAIL" not in result.stdout
