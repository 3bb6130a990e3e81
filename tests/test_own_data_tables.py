"""Tables of features (three Gaussian blobs in 4 dimensions) and .npz arrays, from training through
evaluate, predict, explain and plot; resume with --data; what a model records; bad input refused with
nothing written."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scratchnet.cli import main
from scratchnet.core.errors import ConfigError, DatasetError
from scratchnet.data.images import Feeder
from scratchnet.data.own import Layout
from scratchnet.data.own_sets import load_data
from scratchnet.io.model import load_model
from scratchnet.training.train import TrainConfig, TrainingInterrupted, resume, train

SPECIES = ("setosa", "versicolor", "virginica")
CENTRES = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, 0.0, -3.0, 1.0], [0.0, 5.0, 2.0, -4.0]])
OFFSET = np.array([100.0, -50.0, 0.5, 1000.0])  # far from 0, so that standardizing matters
SCALE = np.array([1.0, 10.0, 0.1, 3.0])


def blobs(n: int, seed: int) -> tuple[Any, Any]:
    """``n`` samples of three Gaussian blobs (unit spread around CENTRES), each feature then moved
    and stretched (OFFSET, SCALE); and their classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = (CENTRES[labels] + rng.normal(0.0, 1.0, (n, 4))) * SCALE + OFFSET
    return x, labels


def blobs_csv(path: Path, n: int = 600, seed: int = 0, label: bool = True) -> Path:
    x, labels = blobs(n, seed)
    lines = ["sepal_l,sepal_w,petal_l,petal_w" + (",species" if label else "")]
    for row, k in zip(x, labels):
        lines.append(",".join(f"{v:.6f}" for v in row) + (f",{SPECIES[k]}" if label else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def accuracy_line(out: str) -> float:
    line = next(line for line in out.splitlines() if line.startswith("test accuracy "))
    return float(line.split()[2].rstrip("%")) / 100


def quiet(line: str) -> None:
    pass


def test_a_table_trains_to_95_percent_and_records_its_standardization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = blobs_csv(tmp_path / "blobs.csv")
    model = tmp_path / "models" / "blobs.json"
    assert main(["train", "--data", str(data), "--label-column", "species", "--epochs", "10", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    held = sum(round(0.2 * count) for count in np.bincount(blobs(600, seed=0)[1]))  # a fifth of each class
    assert f"blobs: {600 - held} training rows, no validation split, {held} test" in out
    assert "a table of 4 features" in out
    assert "network 4-800-800-3 relu" in out and accuracy_line(out) >= 0.95

    metadata = json.loads(model.read_text())["metadata"]
    assert metadata["class_names"] == list(SPECIES)
    # The standardization is the training rows' own mean and deviation, each feature's.
    loaded = load_data(data, options=Layout.from_metadata(metadata).options)
    train_rows = loaded.train_images.astype(np.float64)
    assert np.allclose(metadata["input"]["mean"], train_rows.mean(axis=0), rtol=1e-12, atol=0)
    assert np.allclose(metadata["input"]["std"], train_rows.std(axis=0), rtol=1e-12, atol=0)
    assert metadata["input"]["kind"] == "features" and metadata["input"]["shape"] == [4]
    assert metadata["source"]["columns"] == ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    assert metadata["source"]["test_fraction"] == 0.2 and metadata["source"]["format"] == "csv"

    # evaluate: the held-out rows again (no --data), or a new file of blobs
    assert main(["evaluate", str(model)]) == 0
    assert f"{accuracy_line(capsys.readouterr().out):.6f}" == f"{accuracy_line(out):.6f}"
    fresh = blobs_csv(tmp_path / "fresh.csv", n=300, seed=5)
    assert main(["evaluate", str(model), "--data", str(fresh)]) == 0
    assert accuracy_line(capsys.readouterr().out) >= 0.95

    # predict a file without labels, columns in another order: one row per input, by name
    x, truth = blobs(200, seed=7)
    unlabelled = tmp_path / "unlabelled.csv"
    order = [3, 1, 0, 2]
    names = ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    unlabelled.write_text(
        ",".join(names[k] for k in order) + "\n" + "".join(",".join(f"{row[k]:.6f}" for k in order) + "\n" for row in x)
    )
    out_csv = tmp_path / "predictions.csv"
    assert (
        main(["predict", str(model), "--csv", str(unlabelled), "--out", str(out_csv), "--columns", "id,species"]) == 0
    )
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "id,species" and [line.split(",")[0] for line in lines[1:]] == [str(k) for k in range(1, 201)]
    predicted = [SPECIES.index(line.split(",")[1]) for line in lines[1:]]
    assert np.mean(np.array(predicted) == truth) >= 0.95

    # predict, explain and plot one test row: its values, and the class names of the metadata
    assert main(["predict", str(model), "--index", "0"]) == 0
    shown = capsys.readouterr().out
    assert "features: sepal_l=" in shown and any(f"prediction: {k} {name}" in shown for k, name in enumerate(SPECIES))
    assert main(["explain", str(model), "--index", "0"]) == 0
    assert "blobs test row 0" in capsys.readouterr().out
    assert main(["predict", str(model), "--image", str(unlabelled)]) == 1
    assert "takes a table of 4 features, not images; give its rows with --csv FILE" in capsys.readouterr().err


def test_shifts_and_mirroring_of_a_table_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = blobs_csv(tmp_path / "blobs.csv", n=60)
    for flag in (["--augment", "2"], ["--flip"]):
        assert main(["train", "--data", str(data), "--label-column", "species", *flag, "--out", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "--augment and --flip shift and mirror images; blobs is a table of 4 features" in err
        assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [data]  # nothing written


def test_nothing_is_written_when_the_input_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    models = tmp_path / "models"
    assert main(["train", "--data", str(bad), "--out", str(models / "m.json")]) == 1
    assert f"{bad} line 3, column 'b': 'oops' is not a number" in capsys.readouterr().err
    assert not models.exists() or list(models.iterdir()) == []

    data = blobs_csv(tmp_path / "blobs.csv", n=90)
    assert (
        main(["train", "--data", str(data), "--label-column", "species", "--epochs", "1", "--out", f"{models}/"]) == 0
    )
    capsys.readouterr()
    model = models / "blobs.json"
    submission = tmp_path / "submission.csv"
    submission.write_text("the previous submission\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("sepal_l,sepal_w,petal_l,petal_w\n1,2,3,4\n1,2,3\n")
    assert main(["predict", str(model), "--csv", str(ragged), "--out", str(submission), "--overwrite"]) == 1
    assert f"{ragged} line 3 has 3 cells, but the rows have 4" in capsys.readouterr().err
    assert submission.read_text() == "the previous submission\n"
    stranger = tmp_path / "stranger.csv"
    stranger.write_text("sepal_l,sepal_w,petal_l,petal_w,species\n1,2,3,4,setosa\n1,2,3,4,zebra\n")
    assert main(["evaluate", str(model), "--data", str(stranger)]) == 1
    err = capsys.readouterr().err
    assert f"{stranger} line 3: the label 'zebra' is not one of the 3 classes" in err and err.count("\n") == 1
    stranger.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.csv",
        "blobs.csv",
        "models",
        "ragged.csv",
        "submission.csv",
    ]


def test_npz_arrays_with_class_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, labels = blobs(400, seed=2)
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x.astype(np.float32), y=labels, class_names=np.array(["c", "b", "a"]))
    data = load_data(path)
    assert data.class_names == ("c", "b", "a")  # the file's order, not sorted
    assert (
        data.kind == "features"
        and np.bincount(data.test_labels).tolist() == np.round(0.2 * np.bincount(labels)).astype(int).tolist()
    )
    model = tmp_path / "models" / "npz.json"
    assert (
        main(
            [
                "train",
                "--data",
                str(path),
                "--hidden",
                "32",
                "--epochs",
                "20",
                "--batch-size",
                "16",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    assert accuracy_line(capsys.readouterr().out) >= 0.95
    images = np.random.default_rng(0).integers(0, 256, (30, 6, 5)).astype(np.uint8)
    np.savez(tmp_path / "images.npz", x=images, y=np.arange(30) % 2)
    loaded = load_data(tmp_path / "images.npz")
    assert loaded.sample_shape == (6, 5) and loaded.scale == 255.0 and loaded.train_images.dtype == np.uint8


BAD_NPZ = [
    ({"x": np.array([object(), 1], dtype=object), "y": np.array([0, 1])}, r": holds an object array"),
    ({"x": np.zeros((4, 3))}, r": no array y \(it holds x\)"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(3)}, r": y has shape \(3,\), but x has 4 samples"),
    ({"x": np.zeros(4), "y": np.zeros(4)}, r": x has shape \(4,\)"),
    ({"x": np.array([[0.0, np.inf], [1, 2]]), "y": np.array([0, 1])}, r": sample 0 of x holds a value that is not"),
    ({"x": np.zeros((2, 2)), "y": np.array([0, 3]), "class_names": np.array(["a", "b"])}, r": y\[1\] is 3"),
    ({"x": np.zeros((2, 2)), "y": np.array([1, 1])}, r": every sample has the label '1'"),
]


@pytest.mark.parametrize(("arrays", "message"), BAD_NPZ)
def test_bad_npz_files(tmp_path: Path, arrays: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=f"^{path}{message}"):
        load_data(path)


def test_flags_that_need_data_or_do_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = blobs_csv(tmp_path / "blobs.csv", n=60)
    cases = [
        (["--test-fraction", "0.1"], "--test-fraction say how to read your own data: give it with --data PATH"),
        (["--data", str(data), "--dataset", "mnist"], "--data and --dataset are two sources of data: give one"),
        (["--data", str(data), "--test", str(data), "--test-fraction", "0.1"], "give --test (a test file) or"),
        (["--data", str(data), "--label-column", "species", "--image-size", "8,8"], "are for folders of pictures"),
        (["--data", str(tmp_path / "nothing.csv")], "nothing.csv: no such file"),
        (["--data", str(tmp_path / "notes.txt")], "notes.txt: no such file or folder"),
    ]
    for argv, message in cases:
        assert main(["train", *argv, "--out", str(tmp_path / "m.json")]) == 1, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert main(["train", "--data", str(data), "--show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("recipe default for blobs") and "--validation" in out and "--data" in out


def test_the_default_model_name_is_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    blobs_csv(tmp_path / "data" / "train.csv", n=60)
    argv = ["train", "--data", "data/train.csv", "--label-column", "species", "--epochs", "1", "--no-check"]
    assert main(argv) == 0
    assert "model saved to models/train.json" in capsys.readouterr().out
    assert main(["evaluate", "models/train.json"]) == 0  # the recorded data/train.csv, relative to here


def interrupt_at(epoch: int, step: int) -> Any:
    def hook(e: int, s: int, network: Any) -> None:
        if (e, s) == (epoch, step):
            signal.raise_signal(signal.SIGINT)

    return hook


def test_resume_with_your_own_data_gives_the_uninterrupted_model(tmp_path: Path) -> None:
    data = blobs_csv(tmp_path / "blobs.csv", n=300)
    config = TrainConfig(
        data=str(data), label_column="species", hidden=(16,), dropout=0.2, epochs=3, batch_size=32, validation=40
    )
    whole = train(config, out=tmp_path / "a.json", log=quiet, check=False)
    with pytest.raises(TrainingInterrupted) as stop:
        train(config, out=tmp_path / "b.json", log=quiet, check=False, hook=interrupt_at(1, 2))
    resumed = resume(stop.value.checkpoint, log=quiet)
    a, b = whole.network.params(), resumed.network.params()
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert whole.test_accuracy == resumed.test_accuracy
    assert load_model(tmp_path / "b.json").metadata["input"] == load_model(tmp_path / "a.json").metadata["input"]


def test_settings_of_your_own_data_are_checked() -> None:
    with pytest.raises(ConfigError, match="test is for your own data: give data too"):
        TrainConfig(test="t.csv")
    with pytest.raises(ConfigError, match="image_shape must be C,H,W or H,W"):
        TrainConfig(data="d.csv", image_shape=(0, 4))
    with pytest.raises(ConfigError, match="channels must be 1"):
        TrainConfig(data="d", channels=2)
    config = TrainConfig(data="d/x.csv", image_shape=(3, 8, 8), test_fraction=0.1)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config and config.data_name == "x"


def test_old_models_are_fed_as_before() -> None:
    old = {"input": {"shape": [28, 28], "scale": 255.0, "mean": 0.1, "std": 0.3}}
    feeder = Feeder.from_metadata(old, "vectorized", "float32", (784,))
    pixels = np.arange(784, dtype=np.uint8).reshape(1, 28, 28) % 251
    expected = ((pixels.reshape(1, -1).astype(np.float32) / np.float32(255)) - np.float32(0.1)) / np.float32(0.3)
    assert np.array_equal(feeder.inputs(pixels), expected)
    layout = Layout.from_metadata(old)
    assert layout.kind == "image" and layout.shape == (28, 28) and layout.format is None
    assert Layout.from_metadata({}).shape == (28, 28)
    table = {"input": {"kind": "features", "shape": [2], "mean": [1.0, -2.0], "std": [2.0, 0.5]}}
    fed = Feeder.from_metadata(table, "vectorized", "float64", (2,)).inputs(np.array([[3.0, -1.0]], np.float32))
    assert fed.tolist() == [[1.0, 2.0]]
    with pytest.raises(ConfigError, match="input metadata is not understood"):
        Feeder.from_metadata({"input": {"kind": "features", "mean": [0.0], "std": [0.0]}}, "vectorized", "float32")


def test_evaluate_finds_the_test_set_from_any_folder_and_reads_a_file_without_a_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    blobs_csv(tmp_path / "work" / "blobs.csv")
    assert main(["train", "--data", "blobs.csv", "--label-column", "species", "--epochs", "3"]) == 0
    trained = accuracy_line(capsys.readouterr().out)
    monkeypatch.chdir(tmp_path)  # the model recorded where its data is, not where the run was
    assert main(["evaluate", "work/models/blobs.json"]) == 0
    assert accuracy_line(capsys.readouterr().out) == trained
    x, labels = blobs(300, seed=9)
    bare = tmp_path / "bare.csv"  # no header: the label is the fifth column, by position
    bare.write_text("".join(",".join(f"{v:.6f}" for v in row) + f",{SPECIES[k]}\n" for row, k in zip(x, labels)))
    assert main(["evaluate", "work/models/blobs.json", "--data", str(bare)]) == 1
    assert "--label-column N" in capsys.readouterr().err
    assert main(["evaluate", "work/models/blobs.json", "--data", str(bare), "--label-column", "4"]) == 0
    assert accuracy_line(capsys.readouterr().out) >= 0.95
    assert main(["evaluate", "work/models/blobs.json", "--label-column", "4"]) == 1
    assert "give the file with --data" in capsys.readouterr().err
