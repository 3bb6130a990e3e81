"""``scratchnet predict``: drawing, top-3 probabilities, --index, --image (.npy, PNG), --misclassified."""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_evaluate import small_model  # noqa: F401  (the module-scoped fixture)

from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ScratchnetError, ShapeError
from scratchnet.data import load_dataset
from scratchnet.data.images import SHADES, draw, load_image
from scratchnet.io.model import load_model, save


def probabilities(model: Path, images: Any) -> Any:
    """Softmax outputs computed here from the saved weights (inputs normalised as the fixture trained)."""
    params = {k: np.asarray(v, np.float64) for k, v in load_model(model).network.params().items()}
    x = (images.reshape(len(images), -1).astype(np.float64) / 255.0 - 0.1307) / 0.3081
    logits = np.maximum(x @ params["0.weight"].T + params["0.bias"], 0.0) @ params["2.weight"].T + params["2.bias"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def predicted(capsys: pytest.CaptureFixture[str], model: Path, *args: str) -> str:
    """What ``scratchnet predict MODEL args...`` prints; it must exit 0."""
    assert main(["predict", str(model), *args]) == 0
    return capsys.readouterr().out


def top3(out: str) -> list[tuple[str, float]]:
    line = next(line for line in out.splitlines() if line.startswith("top 3: "))
    return [(name, float(p)) for name, p in re.findall(r"(\d) (\d+\.\d+)%", line)]


def test_predict_index_draws_the_image_and_gives_the_top_3(
    small_model: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data_dir = small_model
    out = predicted(capsys, model, "--data-dir", str(data_dir), "--index", "0")
    lines = out.splitlines()
    assert lines[0] == "mnist test image 0"
    image = load_dataset("mnist", data_dir).test_images[0]
    assert "\n".join(lines[1:31]) == draw(image)
    assert "true label: 7" in lines
    p = probabilities(model, image[None])[0]
    order = np.argsort(-p)[:3]
    assert next(line for line in lines if line.startswith("prediction: ")).split()[1] == str(order[0])
    assert [name for name, _ in top3(out)] == [str(k) for k in order]
    assert [value for _, value in top3(out)] == pytest.approx([100 * p[k] for k in order], abs=0.006)


def test_predict_image_files_match_the_test_image(
    small_model: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data_dir = small_model
    image = load_dataset("mnist", data_dir).test_images[1]
    expected = top3(predicted(capsys, model, "--data-dir", str(data_dir), "--index", "1"))
    np.save(tmp_path / "digit.npy", image)
    np.save(tmp_path / "digit_float.npy", image.astype(np.float32) / 255.0)
    files = [tmp_path / "digit.npy", tmp_path / "digit_float.npy"]
    try:
        from PIL import Image

        Image.fromarray(image).save(tmp_path / "digit.png")
        files.append(tmp_path / "digit.png")
    except ImportError:
        pass
    for path in files:
        out = predicted(capsys, model, "--image", str(path))
        assert "true label" not in out and out.splitlines()[0] == str(path)
        assert top3(out) == expected
    assert top3(predicted(capsys, model, "--image", str(files[0]), "--backend", "loops")) == expected


def test_predict_misclassified_lists_the_first_wrong_images(
    small_model: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data_dir = small_model
    out = predicted(capsys, model, "--data-dir", str(data_dir), "--misclassified", "2")
    data = load_dataset("mnist", data_dir)
    wrong = np.flatnonzero(np.argmax(probabilities(model, data.test_images), axis=1) != data.test_labels)
    shown = [int(n) for n in re.findall(r"^mnist test image (\d+)$", out, flags=re.M)]
    assert shown == [int(n) for n in wrong[:2]]
    assert out.count("(WRONG)") == 2
    assert re.match(rf"{len(wrong)} of 10000 test images are misclassified", out)


def test_predict_errors_are_one_line(
    small_model: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data_dir = small_model
    np.save(tmp_path / "wide.npy", np.zeros((28, 30), np.uint8))
    cases = [
        ["--data-dir", str(data_dir), "--index", "10000"],
        ["--image", str(tmp_path / "wide.npy")],
        ["--image", str(tmp_path / "absent.npy")],
        ["--image", str(tmp_path / "wide.bmp")],
    ]
    for argv in cases:
        assert main(["predict", str(model), *argv]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("scratchnet predict: error:"), err
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(model), "--index", "1", "--image", "x.npy"])
    assert exit_.value.code == 2


def test_png_without_pillow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    real_import = builtins.__import__

    def no_pillow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pillow)
    with pytest.raises(ScratchnetError, match=r"pip install scratchnet\[png\]"):
        load_image(tmp_path / "digit.png")
    digit = np.zeros((28, 28), np.uint8)
    digit[10:18, 12:16] = 200  # a blank image would be refused
    np.save(tmp_path / "digit.npy", digit)
    assert load_image(tmp_path / "digit.npy")[12, 13] == 200  # .npy needs no Pillow


def test_drawing_shades_and_image_checks(tmp_path: Path) -> None:
    image = np.zeros((28, 28), np.uint8)
    image[0, :5] = [0, 60, 120, 180, 255]
    text = draw(image).splitlines()
    assert len(text) == 30 and text[1] == "│" + "".join(c * 2 for c in SHADES) + "  " * 23 + "│"
    np.save(tmp_path / "flat.npy", np.arange(784, dtype=np.int64) % 256)
    assert load_image(tmp_path / "flat.npy").shape == (28, 28)
    assert load_image(tmp_path / "flat.npy", invert=True)[0, 0] == 255
    np.save(tmp_path / "bad.npy", np.full((28, 28), 300.0))
    with pytest.raises(ShapeError):
        load_image(tmp_path / "bad.npy")  # floats must be in [0, 1] (or 0..255)
    net = build_network(mlp([784, 3]), seed=0)
    save(net, tmp_path / "tiny.json")
    ok = np.zeros((28, 28), np.uint8)
    ok[5:20, 13] = 255  # a stroke: a blank image is refused
    np.save(tmp_path / "ok.npy", ok)
    assert main(["predict", str(tmp_path / "tiny.json"), "--image", str(tmp_path / "ok.npy")]) == 0
