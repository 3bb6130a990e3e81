"""Folders of class folders: pictures drawn with Pillow (circles, squares, triangles at random places
and sizes) trained by an MLP and by a CNN, predicted and evaluated; bad pictures refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet.cli import main
from scratchnet.core.errors import DatasetError
from scratchnet.data.folders import read_folder
from scratchnet.data.own import DataOptions
from scratchnet.data.own_sets import load_data

Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

SHAPES = ("circle", "square", "triangle")


def draw_shape(shape: str, size: int, rng: np.random.Generator, mode: str = "L") -> Any:
    """One picture: a filled ``shape`` of radius 5..7 at a random place, in a random bright shade (a
    random colour in RGB) on black."""
    picture = Image.new(mode, (size, size), 0 if mode == "L" else (0, 0, 0))
    pen = ImageDraw.Draw(picture)
    r = int(rng.integers(5, 8))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    colour: Any = int(rng.integers(160, 256)) if mode == "L" else tuple(int(v) for v in rng.integers(120, 256, 3))
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return picture


def shapes_folder(root: Path, per_class: int = 150, size: int = 16, mode: str = "L", seed: int = 0) -> Path:
    """``root/circle/*.png``, ``root/square/*.png``, ``root/triangle/*.png``."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            draw_shape(shape, size, rng, mode).save(root / shape / f"{k:03d}.png")
    return root


def accuracy_line(out: str) -> float:
    line = next(line for line in out.splitlines() if line.startswith("test accuracy "))
    return float(line.split()[2].rstrip("%")) / 100


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_folder(tmp_path_factory.mktemp("data") / "shapes", per_class=150)


def test_the_folder_reads_as_grey_images_with_the_folder_names_as_classes(shapes: Path) -> None:
    folder = read_folder(shapes)
    assert folder.images.shape == (450, 1, 16, 16) and folder.channels == 1 and folder.size == (16, 16)
    assert folder.labels[:150] == ["circle"] * 150 and folder.labels[-1] == "triangle"
    with Image.open(shapes / "square" / "007.png") as picture:
        assert np.array_equal(folder.images[157, 0], np.asarray(picture))  # the pixels as Pillow reads them
    data = load_data(shapes)
    assert data.class_names == SHAPES and data.sample_shape == (16, 16) and data.train_images.dtype == np.uint8
    assert np.bincount(data.test_labels).tolist() == [30, 30, 30]
    # The training order is mixed: the last 30 (a --validation 30) are not one class.
    assert len(set(data.train_labels[-30:].tolist())) == 3


def test_an_mlp_and_a_cnn_learn_the_shapes(shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mlp = tmp_path / "mlp.json"
    argv = ["train", "--data", str(shapes), "--hidden", "256", "--epochs", "30", "--batch-size", "32"]
    assert main([*argv, "--out", str(mlp)]) == 0
    out = capsys.readouterr().out
    assert "shapes: 360 training images, no validation split, 90 test" in out and "16x16 grey images" in out
    assert accuracy_line(out) >= 0.95
    cnn = tmp_path / "cnn.json"
    layers = ["--layers", "conv(8, 3), relu, maxpool(2), flatten", "--lr", "0.005", "--batch-size", "16"]
    assert main(["train", "--data", str(shapes), *layers, "--epochs", "40", "--out", str(cnn), "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "input(1x16x16), conv(8, 3)" in out and accuracy_line(out) >= 0.95
    metadata = json.loads(cnn.read_text())["metadata"]
    assert metadata["class_names"] == list(SHAPES) and metadata["input"]["kind"] == "image"
    assert metadata["input"]["shape"] == [16, 16] and metadata["source"]["format"] == "folder"

    # evaluate with the test set the model records: the held-out pictures, the same accuracy
    assert main(["evaluate", str(cnn)]) == 0
    assert f"{accuracy_line(out):.4f}" == f"{accuracy_line(capsys.readouterr().out):.4f}"

    # predict pictures drawn afresh: a new circle in a folder of its own, named by the model's classes
    rng = np.random.default_rng(99)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    truth = {}
    for k in range(30):
        shape = SHAPES[k % 3]
        draw_shape(shape, 16, rng).save(fresh / f"{k:02d}.png")
        truth[f"{k:02d}.png"] = shape
    submission = tmp_path / "predictions.csv"
    assert main(["predict", str(cnn), "--folder", str(fresh), "--out", str(submission)]) == 0
    lines = submission.read_text().splitlines()
    assert lines[0] == "file,label" and len(lines) == 31
    right = sum(truth[name] == label for name, label in (line.split(",") for line in lines[1:]))
    assert right >= 27
    assert main(["predict", str(cnn), "--image", str(fresh / "00.png")]) == 0
    assert "prediction: 0 circle" in capsys.readouterr().out


def test_rgb_pictures_train_a_cnn_on_three_channels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shapes_folder(tmp_path / "rgb", per_class=100, mode="RGB", seed=1)
    assert load_data(folder).sample_shape == (3, 16, 16)
    out = tmp_path / "models" / "rgb.json"
    argv = ["--layers", "conv(8, 3), relu, maxpool(2), flatten", "--lr", "0.005", "--batch-size", "16"]
    assert main(["train", "--data", str(folder), *argv, "--epochs", "40", "--out", str(out), "--flip"]) == 0
    text = capsys.readouterr().out
    assert "input(3x16x16)" in text and "16x16 3-channel images" in text and accuracy_line(text) >= 0.9
    grey = load_data(folder, options=DataOptions(channels=1))
    assert grey.sample_shape == (16, 16)


def save_picture(path: Path, size: tuple[int, int], value: int = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8)).save(path)
    return path


def test_pictures_of_other_sizes_are_refused_unless_resized(tmp_path: Path) -> None:
    save_picture(tmp_path / "d" / "a" / "1.png", (10, 12))
    save_picture(tmp_path / "d" / "a" / "2.png", (10, 12))
    odd = save_picture(tmp_path / "d" / "b" / "1.png", (9, 12))
    save_picture(tmp_path / "d" / "b" / "2.png", (10, 12))
    with pytest.raises(DatasetError, match=f"^{odd}: 9x12 pixels.*is 10x12; give --image-size H,W"):
        load_data(tmp_path / "d")
    resized = load_data(tmp_path / "d", options=DataOptions(image_size=(6, 8)), test_fraction=0.0)
    assert resized.sample_shape == (6, 8) and resized.source is not None and resized.source["resized"] == 4


def test_bad_pictures_and_folders_are_one_line_naming_them(tmp_path: Path) -> None:
    save_picture(tmp_path / "d" / "a" / "1.png", (8, 8))
    save_picture(tmp_path / "d" / "b" / "1.png", (8, 8))
    truncated = tmp_path / "d" / "b" / "2.png"
    noise = np.random.default_rng(0).integers(0, 256, (8, 8)).astype(np.uint8)  # pixels that do not compress away
    Image.fromarray(noise).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])  # half its data
    with pytest.raises(DatasetError, match=f"^{truncated}: not a readable image"):
        load_data(tmp_path / "d")
    truncated.write_text("not a picture")
    with pytest.raises(DatasetError, match=f"^{truncated}: not a readable image"):
        load_data(tmp_path / "d")
    truncated.unlink()
    (tmp_path / "d" / "c").mkdir()
    with pytest.raises(DatasetError, match=r"/d/c: the class folder holds no pictures"):
        load_data(tmp_path / "d")
    flat = tmp_path / "flat"
    save_picture(flat / "1.png", (8, 8))
    with pytest.raises(DatasetError, match=r"flat: no class folders \(the pictures in it are not sorted"):
        load_data(flat)
    (tmp_path / "d" / "c").rmdir()
    data = load_data(tmp_path / "d")  # one picture of each class: both stay in the training part
    assert data.class_names == ("a", "b") and len(data.train_labels) == 2 and len(data.test_labels) == 0


def test_a_test_folder_with_a_class_the_model_does_not_know(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for k in range(3):
            save_picture(tmp_path / "train" / name / f"{k}.png", (8, 8), 50 + 100 * (name == "b"))
    save_picture(tmp_path / "test" / "a" / "0.png", (8, 8))
    stranger = save_picture(tmp_path / "test" / "zebra" / "0.png", (8, 8))
    with pytest.raises(DatasetError, match=f"^{stranger}: the label 'zebra' is not one of the 2 classes"):
        load_data(tmp_path / "train", test=tmp_path / "test")
