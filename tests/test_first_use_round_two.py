"""First use, round two (issue 25): what a new user tripped over, each done as the user did it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from subprocesses import ROOT, run_scratchnet

import scratchnet
from scratchnet.core.architecture import mlp
from scratchnet.core.notation import parse
from scratchnet.data import load_dataset
from scratchnet.data.images import Feeder


def test_docs_list_what_a_run_prints_in_the_order_it_prints_it(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    args = ["train", "--recipe", "small", "--limit", "300", "--epochs", "3", "--data-dir", str(data_dir)]
    done = run_scratchnet(*args, "--out", str(out), "--no-check")
    assert done.returncode == 0, done.stderr
    printed = (done.stdout + done.stderr).splitlines()
    starts = {
        "test accuracy": "test accuracy ",
        "where the model was saved": "model saved to ",
        "a sparkline": "loss per epoch ",
    }
    order = [next(i for i, line in enumerate(printed) if line.startswith(start)) for start in starts.values()]
    assert order == sorted(order), printed
    section = (ROOT / "docs" / "training.md").read_text().split("## What a run prints and saves")[1]
    listed = re.findall(r"^\d+\. (.*)$", section.split("A progress bar")[0], flags=re.M)
    positions = [
        next(i for i, item in enumerate(listed) if item.startswith(what))
        for what in ("the test", "where", "with three")
    ]
    assert positions == sorted(positions), listed
    assert "lists them all" not in (ROOT / "docs" / "training.md").read_text()


def test_model_files_doc_names_the_versions_scratchnet_writes(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "model-files.md").read_text()
    scratchnet.save(scratchnet.build_network(mlp([4, 3, 2]), seed=0), tmp_path / "mlp")
    cnn = parse("input(1x6x6), conv(2, 3), relu, flatten, dense(3)")
    scratchnet.save(scratchnet.build_network(cnn, seed=0), tmp_path / "cnn")
    gpt = parse("input(tokens 5 x 4), embedding(4), residual(layernorm, attention(2)), dense(5)")
    scratchnet.save(scratchnet.build_network(gpt, seed=0), tmp_path / "gpt")
    names = ("mlp", "cnn", "gpt")
    versions = {name: json.loads((tmp_path / f"{name}.json").read_text())["version"] for name in names}
    assert versions == {"mlp": 1, "cnn": 2, "gpt": 3}
    assert "an MLP's file is version 1, a CNN's version 2 and a GPT's\nversion 3" in doc


# ---- item 30: a hand-edited model ----


def saved_model(tmp_path: Path) -> Path:
    net = scratchnet.build_network(mlp([4, 3, 2]), seed=0)
    scratchnet.save(net, tmp_path / "m", metadata={"class_names": ["cat", "dog"]})
    return tmp_path / "m.json"


def test_a_hand_edited_model_says_how_to_re_sign_it_and_inspect_does_after_asking(tmp_path: Path) -> None:
    path = saved_model(tmp_path)
    path.write_text(path.read_text().replace('"dog"', '"wolf"'))
    edited = path.read_bytes()
    refused = run_scratchnet("inspect", str(path))
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(f"(if you edited it on purpose: scratchnet inspect {path} --fix-checksum)")
    unasked = run_scratchnet("inspect", str(path), "--fix-checksum")  # no terminal to ask on, no --yes
    assert unasked.returncode == 1 and "give --yes" in unasked.stderr and path.read_bytes() == edited
    done = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: re-signed")
    assert scratchnet.load_model(path).metadata["class_names"] == ["cat", "wolf"]
    again = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert again.stdout.startswith(f"{path}: the checksum was right already")


def test_fix_checksum_rewrites_nothing_when_anything_else_is_wrong(tmp_path: Path) -> None:
    path = saved_model(tmp_path)
    document = json.loads(path.read_text())
    document["metadata"]["class_names"] = ["cat", "wolf"]
    document["unexpected"] = 1  # a rule other than the checksum
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    done = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert done.returncode == 1 and "unexpected" in done.stderr and path.read_bytes() == before
    path = saved_model(tmp_path / "arrays")
    path.write_text(path.read_text().replace('"dog"', '"wolf"'))
    npz = path.with_suffix(".npz")
    damaged = bytearray(npz.read_bytes())
    damaged[-200] ^= 0xFF  # inside the last array's bytes or the zip directory: either is refused
    npz.write_bytes(bytes(damaged))
    before = path.read_bytes()
    done = run_scratchnet("inspect", str(path), "--fix-checksum", "--yes")
    assert done.returncode == 1 and path.read_bytes() == before, done.stderr
    assert len(done.stderr.splitlines()) == 1


# ---- items 1 and 18: the tour ----

TOUR = (ROOT / "docs" / "tour.md").read_text()


def test_the_tour_never_writes_over_the_model_the_readme_trained() -> None:
    readme_out = "models/mnist.json"
    assert readme_out in (ROOT / "README.md").read_text()
    for line in TOUR.splitlines():
        if line.strip().startswith("scratchnet train"):
            assert "--out models/" in line and readme_out not in line, line


def test_the_tour_stops_at_every_layer_of_a_cnn_and_cites_real_code_and_equations() -> None:
    for file in ("convolution.py", "pooling.py", "normalization.py", "reshape.py"):
        assert f"`scratchnet/loops/{file}`" in TOUR
    import scratchnet.loops.attention
    import scratchnet.loops.convolution
    import scratchnet.loops.normalization
    import scratchnet.loops.pooling
    import scratchnet.loops.reshape

    modules = [scratchnet.loops.convolution, scratchnet.loops.normalization, scratchnet.loops.pooling]
    modules += [scratchnet.loops.reshape, scratchnet.loops.attention]  # and the attention stop after them
    stops = TOUR.split("## 8. Convolution")[1]
    named = re.findall(r"`(\w+)\.(forward|backward)`", stops) + [(f, "") for f in ("receptive_fields", "output_size")]
    assert len(named) >= 8
    for owner, method in named:
        found = [getattr(module, owner) for module in modules if hasattr(module, owner)]
        assert found and (not method or hasattr(found[0], method)), (owner, method)
    math = (ROOT / "spec" / "math.md").read_text()
    cited = set(re.findall(r"\((\d+\.\d+)", TOUR))
    assert {"12.1", "12.7", "13.2", "14.2", "15.9"} <= cited
    for number in cited:
        assert f"({number})" in math, number


def test_the_tours_hands_on_checks_pass() -> None:
    networks = re.findall(r'scratchnet check --network "([^"]+)"', TOUR)
    assert len(networks) >= 3
    for network in networks:
        done = run_scratchnet("check", "--network", network)
        assert done.returncode == 0 and "passed" in done.stdout, (network, done.stderr)


def test_the_tours_digit_npy_recipe_makes_what_explain_reads(data_dir: Path, tmp_path: Path) -> None:
    command = next(line.strip() for line in TOUR.splitlines() if "numpy.save('digit.npy'" in line)
    code = command.removeprefix('python -c "').removesuffix('"').replace("/path/to/data", str(data_dir))
    made = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    import numpy as np

    digit = np.load(tmp_path / "digit.npy")
    assert digit.shape == (28, 28) and digit.dtype == np.uint8 and digit.max() == 255


# ---- items 2, 3, 7 and 8: the picture a model sees ----


@pytest.fixture(scope="module")
def models(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    made = {}
    for dataset in ("mnist", "fashion-mnist"):
        out = folder / f"{dataset}.json"
        args = ["train", "--dataset", dataset, "--recipe", "small", "--limit", "3000", "--epochs", "2"]
        done = run_scratchnet(*args, "--data-dir", str(data_dir), "--out", str(out), "--no-check", timeout=300)
        assert done.returncode == 0, done.stderr
        made[dataset] = out
    return made


def classes_of(model: Path, images: np.ndarray) -> list[int]:
    """The classes the model gives ``images`` fed as its test images are: independent of any picture path."""
    loaded = scratchnet.load_model(model)
    feeder = Feeder.from_metadata(loaded.metadata, "vectorized", loaded.dtype, (784,))
    return [int(k) for k in np.argmax(loaded.network.forward(feeder.inputs(images)), axis=1)]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_pictures_of_test_images_get_the_class_the_test_images_get(
    dataset: str, models: dict[str, Path], data_dir: Path, tmp_path: Path
) -> None:
    from PIL import Image

    images = load_dataset(dataset, data_dir, splits=("test",)).test_images[:40]
    for k, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{k:02d}.png")
    out = tmp_path / "predictions.csv"
    done = run_scratchnet("predict", str(models[dataset]), "--folder", str(tmp_path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    names = scratchnet.load_model(models[dataset]).metadata["class_names"]
    from_pictures = [names.index(label) for _, label in sorted(rows)]
    agree = sum(a == b for a, b in zip(from_pictures, classes_of(models[dataset], images)))
    assert agree >= 39, (dataset, agree)


def corner_seven(data_dir: Path) -> np.ndarray:
    """MNIST's test image 0 (a 7), shrunk to 14x14 in the top-left corner of a 200x200 sheet of paper."""
    seven = load_dataset("mnist", data_dir, splits=("test",)).test_images[0]
    paper = np.full((200, 200), 255, np.uint8)
    small = seven.reshape(14, 2, 14, 2).mean(axis=(1, 3))
    paper[4:18, 4:18] = 255 - np.rint(small).astype(np.uint8)
    return paper


def prediction_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(("prediction:", "Predicted")))


def test_explain_prepares_a_picture_as_predict_does_and_says_so(
    models: dict[str, Path], data_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "corner.npy"
    np.save(picture, corner_seven(data_dir))
    model = str(models["mnist"])
    predicted = run_scratchnet("predict", model, "--image", str(picture))
    explained = run_scratchnet("explain", model, "--image", str(picture))
    assert predicted.returncode == 0 and explained.returncode == 0, (predicted.stderr, explained.stderr)
    assert prediction_line(predicted.stdout) == "prediction: 7"
    notes = [line for line in explained.stdout.splitlines() if line.startswith("note: ")]
    assert any("made to look like MNIST's digits" in note for note in notes), explained.stdout[:500]
    assert notes == [line for line in predicted.stdout.splitlines() if line.startswith("note: ")]
    probabilities = re.findall(r"^\s+7\s+('7')?\s*([\d.]+)", explained.stdout, flags=re.M)
    assert "Softmax" in explained.stdout and probabilities is not None


def test_a_picture_of_any_size_is_scaled_to_the_models_input_and_the_output_says_so(
    models: dict[str, Path], data_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "big.npy"
    seven = load_dataset("mnist", data_dir, splits=("test",)).test_images[0]
    np.save(picture, np.kron(seven, np.ones((4, 4), np.uint8)))  # 112x112: each pixel a 4x4 block
    done = run_scratchnet("predict", str(models["mnist"]), "--image", str(picture), "--no-preprocess")
    assert done.returncode == 0, done.stderr
    assert "note: scaled from 112x112 to 28x28" in done.stdout
    assert prediction_line(done.stdout) == f"prediction: {classes_of(models['mnist'], seven[None])[0]}"
    wide = tmp_path / "wide.npy"
    np.save(wide, np.kron(seven, np.ones((2, 4), np.uint8)))  # 56x112: kept in proportion
    done = run_scratchnet("predict", str(models["fashion-mnist"]), "--image", str(wide))
    assert done.returncode == 0 and "note: scaled from 56x112 to 14x28" in done.stdout, done.stdout + done.stderr


def test_invert_on_a_picture_that_needs_none_says_the_inversion_made_it_blank(
    models: dict[str, Path], data_dir: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "white_on_black.npy"
    np.save(picture, load_dataset("mnist", data_dir, splits=("test",)).test_images[0])
    done = run_scratchnet("predict", str(models["mnist"]), "--image", str(picture), "--invert")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"scratchnet predict: error: {picture}: --invert made the picture blank: it is light on a dark background "
        "already, as the training images are; leave --invert out"
    ]


# ---- item 14: a mistyped flag ----


def test_an_unknown_flag_is_reported_by_its_subcommand_with_the_closest_flag() -> None:
    done = run_scratchnet("train", "--hiden", "100")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: scratchnet train ")
    assert done.stderr.splitlines()[-1] == (
        "scratchnet train: error: unrecognized arguments: --hiden 100 (did you mean --hidden?)"
    )
    far = run_scratchnet("inspect", "m.json", "--zzz")
    assert far.stderr.splitlines()[-1] == (
        "scratchnet inspect: error: unrecognized arguments: --zzz (scratchnet inspect --help lists its flags)"
    )
