"""The text recipes (issue 27, item 5): each builds the network the issue describes (its parameters
counted here from the shapes), with the optimizer and run settings it names; microgpt's network computes
what tools/microgpt_reference.py computes from the same weights; and a tiny run of each trains through
the command line."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pytest
from subprocesses import run_scratchnet
from tool_modules import tool

from scratchnet.builders import build_network
from scratchnet.cli.train import add_arguments
from scratchnet.cli.train_text import text_config
from scratchnet.core.architecture import plan
from scratchnet.core.walk import every_layer, walk
from scratchnet.training.config import optimizer_spec
from scratchnet.training.text_recipes import TEXT_RECIPES
from scratchnet.training.text_train import TrainConfigView, text_architecture

ref = tool("microgpt_reference")


def configured(*argv: str) -> tuple[Any, Any]:
    """(TrainConfig, TextSettings) of ``scratchnet train ARGV`` as the command line reads them."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return text_config(parser.parse_args(list(argv)))


def layers_of(architecture: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(type, options) of every layer, containers' layers in place (after their container)."""
    return [(site.kind, site.options) for site in every_layer(walk(plan(architecture)))]


def test_microgpt_is_microgpts_network_optimizer_and_run() -> None:
    config, text = configured("--data", "names.txt", "--recipe", "microgpt")
    vocabulary, dim, context = 27, 16, 16
    architecture = text_architecture(config, vocabulary, text.context)
    # wte, wpe, the attention's q, k, v and output projections, the MLP's two layers, lm_head: no biases
    expected = vocabulary * dim + context * dim + 4 * dim * dim + 2 * 4 * dim * dim + vocabulary * dim
    assert expected == 4192 and plan(architecture).parameter_count == expected
    assert not [a.name for a in plan(architecture).arrays if "bias" in a.name]
    kinds = [kind for kind, _ in layers_of(architecture)]
    assert kinds == [
        "Embedding", "PositionEmbedding", "RMSNorm", "Residual", "RMSNorm", "CausalSelfAttention",
        "Residual", "RMSNorm", "Dense", "ReLU", "Dense", "Dense", "Softmax",
    ]  # fmt: skip
    for kind, options in layers_of(architecture):
        if kind == "RMSNorm":
            assert options["affine"] is False and options["eps"] == ref.RMS_EPS
        if "init" in options:
            assert options["init"] == "normal" and options["std"] == ref.INIT_STD, kind
    assert text.layout == "documents" and text.context == 16 and text.steps == 1000
    assert config.batch_size == 1 and config.backend == "loops"
    spec = optimizer_spec(TrainConfigView(config, 1), text.steps)
    assert spec == {
        "type": "Adam", "lr": 0.01, "betas": [0.85, 0.99], "eps": 1e-8,
        "schedule": {"type": "Linear", "total_steps": 1000},
    }  # fmt: skip


def test_microgpts_network_computes_the_reference_loss_from_the_same_weights() -> None:
    config, text = configured("--data", "names.txt", "--recipe", "microgpt")
    vocabulary = 27
    boundary = vocabulary - 1
    net: Any = build_network(text_architecture(config, vocabulary, text.context), backend="loops")
    w = ref.init_weights(ref.Config(vocab_size=vocabulary), 7)
    net.set_params(
        {
            "0.weight": w["wte"],
            "1.weight": w["wpe"],
            "3.1.in_proj_weight": w["h0.wq"] + w["h0.wk"] + w["h0.wv"],
            "3.1.out_proj.weight": w["h0.wo"],
            "4.1.weight": w["h0.fc1"],
            "4.3.weight": w["h0.fc2"],
            "5.weight": w["lm_head"],
        }
    )
    document = [4, 12, 12, 0]  # "emma", framed by the boundary token on both sides
    tokens = [boundary, *document, boundary]
    theirs = float(ref.document_loss(ref.as_params(w), tokens, ref.Config(vocab_size=vocabulary)).data)
    padding = 16 - (len(tokens) - 1)
    inputs = [tokens[:-1] + [0] * padding]
    targets = [tokens[1:] + [-100] * padding]  # padded positions are ignored
    ours = net.loss(net.forward(inputs), targets)
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_gpt_is_nanogpts_cpu_configuration_with_an_untied_head() -> None:
    config, text = configured("--data", "input.txt", "--recipe", "gpt")
    vocabulary, dim, layers, context = 65, 128, 4, 64
    architecture = text_architecture(config, vocabulary, text.context)
    block = 4 * dim * dim + 2 * 4 * dim * dim + 2 * dim  # attention, MLP, two LayerNorm gains: no biases
    expected = vocabulary * dim + context * dim + layers * block + dim + vocabulary * dim  # untied output layer
    assert plan(architecture).parameter_count == expected == 812_416
    assert not [a.name for a in plan(architecture).arrays if "bias" in a.name]
    residual_std = 0.02 / math.sqrt(2 * layers)
    found = layers_of(architecture)
    attention = [options for kind, options in found if kind == "CausalSelfAttention"]
    dense = [options for kind, options in found if kind == "Dense"]
    assert len(attention) == layers and all(a["std"] == 0.02 and a["out_std"] == residual_std for a in attention)
    assert [d["std"] for d in dense] == [0.02, residual_std] * layers + [0.02]
    assert all(options["bias"] is False for kind, options in found if kind in ("LayerNorm", "Dense"))
    assert all(options["approximate"] == "none" for kind, options in found if kind == "GELU")
    assert not [kind for kind, _ in found if kind == "Dropout"]
    assert text.context == 64 and text.steps == 2000 and text.eval_every == 250
    assert config.batch_size == 12 and config.backend == "vectorized" and config.dtype == "float32"
    spec = optimizer_spec(TrainConfigView(config, 1), text.steps)
    assert spec == {
        "type": "AdamW", "lr": 0.001, "weight_decay": 0.1, "betas": [0.9, 0.99], "max_grad_norm": 1.0,
        "decay_matrices_only": True,
        "schedule": {"type": "Cosine", "total_steps": 2000, "min_lr": 0.0001, "warmup_steps": 100},
    }  # fmt: skip
    assert "untied" in TEXT_RECIPES["gpt"].summary


def test_names_is_makemores_transformer() -> None:
    config, text = configured("--data", "names.txt", "--recipe", "names")
    vocabulary, dim, layers, context = 27, 64, 4, 16  # context: the longest name (15) + 1
    architecture = text_architecture(config, vocabulary, context)
    attention = 3 * dim * dim + 3 * dim + dim * dim + dim
    mlp = dim * 4 * dim + 4 * dim + 4 * dim * dim + dim
    block = attention + mlp + 2 * 2 * dim  # two LayerNorms with gains and shifts
    expected = vocabulary * dim + context * dim + layers * block + 2 * dim + vocabulary * dim  # lm_head: no bias
    assert plan(architecture).parameter_count == expected == 204_544
    assert text.layout == "documents" and text.context is None  # the longest document + 1
    assert config.batch_size == 64 and config.optimizer == "adamw" and config.lr == 5e-3  # makemore's 32, 5e-4
    assert config.weight_decay == 0.1 and config.betas == (0.9, 0.99) and text.steps == 7500  # makemore's 0.01


def test_flags_override_a_recipe_and_a_shorter_run_shortens_the_warmup() -> None:
    config, text = configured("--data", "input.txt", "--recipe", "gpt", "--steps", "400", "--batch-size", "4")
    assert text.steps == 400 and config.batch_size == 4 and config.lr_warmup == 20  # 100 of 2000 -> 20 of 400
    config, text = configured("--data", "input.txt", "--recipe", "gpt", "--steps", "3")
    assert config.lr_warmup is None
    config, text = configured("--data", "names.txt", "--recipe", "microgpt", "--epochs", "2")
    assert text.steps is None and config.epochs == 2


def test_a_text_recipe_with_images_and_an_image_recipe_with_text_are_one_line_errors(tmp_path: Path) -> None:
    text_file = tmp_path / "t.txt"
    text_file.write_text("ab\nba\n")
    for args, message in [
        (("--recipe", "gpt", "--dataset", "mnist"), "recipe 'gpt' trains a language model: give its text with --data"),
        (("--recipe", "cnn", "--data", str(text_file)), "recipe 'cnn' trains on images; a language model's recipes"),
    ]:
        done = run_scratchnet("train", *args, "--out", str(tmp_path / "m.json"), timeout=120)
        assert done.returncode != 0 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_the_help_names_the_text_recipes() -> None:
    done = run_scratchnet("train", "--help", timeout=60)
    flat = " ".join(done.stdout.split())
    assert done.returncode == 0 and "microgpt" in flat and "names (makemore's Transformer" in flat


FIRST = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"]
NAMES = "\n".join([*FIRST, "jaxon", "quinn", "zoe", "wyatt", "kyle", "cody", "felix"] * 3)  # a-z: 27 tokens
RUNNING = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


@pytest.mark.parametrize(
    "recipe,text,shown",
    [
        ("microgpt", NAMES, "4,192 parameters, loops"),
        ("names", NAMES, "vectorized"),
        ("gpt", RUNNING, "vectorized"),
    ],
)
def test_a_tiny_run_of_each_recipe_trains_through_the_command_line(
    recipe: str, text: str, shown: str, tmp_path: Path
) -> None:
    data = tmp_path / "data.txt"
    data.write_text(text + "\n")
    out = tmp_path / "m.json"
    done = run_scratchnet(
        "train", "--data", str(data), "--recipe", recipe, "--steps", "3", "--out", str(out), timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "cross-check passed" in done.stdout and shown in done.stdout
    assert "3 steps" in done.stdout and "held-out loss" in done.stdout and out.exists()


def test_show_prints_a_text_recipes_settings_and_trains_nothing(tmp_path: Path) -> None:
    done = run_scratchnet("train", "--data", "names.txt", "--recipe", "gpt", "--steps", "400", "--show", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "" and list(tmp_path.iterdir()) == []  # the file is not read
    lines = done.stdout.splitlines()
    assert lines[0].startswith("recipe gpt for names: nanoGPT's CPU") and "untied" in lines[0]
    assert lines[1].startswith(" network: embedding(128, init=normal, std=0.02)")
    assert '"warmup_steps": 20' in lines[2] and '"total_steps": 400' in lines[2]  # the warmup in proportion
    assert lines[3] == " run: batch 12, vectorized float32, seed 0" and "steps 400" in lines[4]
