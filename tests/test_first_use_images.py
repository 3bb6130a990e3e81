"""Issue 15, items 7 and 16 (images): your own image, drawn as a person draws it.

A digit drawn dark on white is inverted (and the output says so), a transparent PNG is composited
onto a background its ink stands out on, a blank image is refused, and a file that is not a .npy
is named as such (never with NumPy's advice about pickles). The reference for every case is an MNIST
test image, as the model saw it in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_evaluate import small_model  # noqa: F401  (the module-scoped fixture)

from scratchnet.cli import main
from scratchnet.core.errors import ScratchnetError
from scratchnet.data import load_dataset
from scratchnet.data.images import read_image

PIL = pytest.importorskip("PIL.Image")


def digit(data_dir: Path, index: int = 0) -> Any:
    """MNIST test image ``index``: uint8, bright ink on black."""
    return load_dataset("mnist", data_dir, splits=("test",)).test_images[index]


def save_png(path: Path, array: Any, mode: str) -> Path:
    PIL.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode=mode).save(path)
    return path


def test_dark_ink_on_white_paper_is_inverted_and_the_output_says_so(data_dir: Path, tmp_path: Path) -> None:
    original = digit(data_dir)
    loaded = read_image(save_png(tmp_path / "paper.png", 255 - original, "L"))
    assert np.array_equal(loaded.pixels, original)
    assert loaded.notes == (
        "light background: inverted to light ink on dark, as the training images are (--no-invert keeps it)",
    )
    kept = read_image(tmp_path / "paper.png", invert=False)
    assert np.array_equal(kept.pixels, 255 - original) and "light background kept" in kept.notes[0]
    assert np.array_equal(read_image(save_png(tmp_path / "mnist.png", original, "L")).pixels, original)


@pytest.mark.parametrize("ink", [0, 255])
def test_a_transparent_png_is_composited_where_its_ink_shows(data_dir: Path, tmp_path: Path, ink: int) -> None:
    original = digit(data_dir, 1)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = ink  # one colour everywhere: the digit is only in the alpha channel
    rgba[..., 3] = original
    loaded = read_image(save_png(tmp_path / "drawn.png", rgba, "RGBA"))
    assert np.array_equal(loaded.pixels, original)
    background = "white" if ink == 0 else "black"
    assert loaded.notes[0] == f"transparent pixels drawn as {background} (the background the ink stands out on)"


@pytest.mark.parametrize("value", [0, 255, 128])
def test_a_blank_image_is_refused(tmp_path: Path, value: int) -> None:
    np.save(tmp_path / "blank.npy", np.full((28, 28), value, np.uint8))
    with pytest.raises(ScratchnetError, match=f"the image is blank .*between {value} and {value}"):
        read_image(tmp_path / "blank.npy")
    rgba = np.zeros((28, 28, 4), np.uint8)  # fully transparent: nothing drawn at all
    with pytest.raises(ScratchnetError, match="the image is blank"):
        read_image(save_png(tmp_path / "empty.png", rgba, "RGBA"))


def test_predict_your_own_image_on_white_gives_the_test_images_answer(
    small_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data_dir = small_model
    original = digit(data_dir)
    np.save(tmp_path / "digit.npy", original)
    save_png(tmp_path / "paper.png", 255 - original, "L")
    assert main(["predict", str(model), "--image", str(tmp_path / "digit.npy")]) == 0
    reference = capsys.readouterr().out.splitlines()
    assert main(["predict", str(model), "--image", str(tmp_path / "paper.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("note: light background: inverted")
    assert lines[2:] == reference[1:]  # the same drawing, prediction and top 3


def test_a_text_file_named_npy_is_not_blamed_on_pickles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "digit.npy").write_text("0 0 0 255 255\n")
    with pytest.raises(ScratchnetError) as caught:
        read_image(tmp_path / "digit.npy")
    assert str(caught.value) == (
        f"{tmp_path / 'digit.npy'}: not a .npy file (it does not begin as one does); save images with numpy.save"
    )
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ScratchnetError) as objects:
        read_image(tmp_path / "objects.npy")
    assert "holds Python objects, not numbers" in str(objects.value) and "allow_pickle" not in str(objects.value)
